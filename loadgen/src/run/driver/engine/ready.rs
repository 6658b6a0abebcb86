//! What an engine reports of a wait, whatever the engine: a leaf both engines and the
//! event loop use.

/// Token of the open-loop timer; connections use their index in the thread's table.
pub(crate) const TIMER: usize = u32::MAX as usize;

/// What a wait found for one connection (or the timer), whatever the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ready {
    /// The connection's token (or [`TIMER`]).
    pub(crate) token: usize,
    /// Bytes (or EOF, or an error) can be read.
    pub(crate) readable: bool,
    /// The socket can take more bytes (or its connect's handshake ended).
    pub(crate) writable: bool,
    /// The peer's FIN or an error came.
    pub(crate) closed: bool,
}
