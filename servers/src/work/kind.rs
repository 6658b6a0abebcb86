//! The kinds of per-message work: what a step costs the serving thread.

/// What a step costs the serving thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Burns CPU on the serving thread.
    Cpu,
    /// Waits without CPU; an event loop or runtime keeps serving other connections.
    Wait,
    /// Sleeps on the serving thread (`std::thread::sleep`), whatever the model.
    Block,
}
