//! Shared helpers for the criterion benches live in `benches/echo.rs`; this library is empty.
