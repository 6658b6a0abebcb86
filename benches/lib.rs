//! Support crate for the criterion benches in `benches/echo.rs` (`cargo bench`).
