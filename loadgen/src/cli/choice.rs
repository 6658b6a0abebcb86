//! The fixed choices a flag offers (`--close`, `--pacing`, `--engine`): clap takes them by
//! name, reports print the same names, and sweep parses its lists with them. A leaf both
//! the command line and the checked configuration use.

/// How the client closes a connection it is done with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CloseMode {
    /// An orderly close (FIN); the client's side of the connection sits in TIME_WAIT.
    Fin,
    /// SO_LINGER 0: close sends RST, and no TIME_WAIT is left.
    Rst,
}

impl CloseMode {
    /// The name `--close` takes and reports show.
    pub fn name(self) -> &'static str {
        match self {
            CloseMode::Fin => "fin",
            CloseMode::Rst => "rst",
        }
    }
}

/// How open-loop sends are timed (see the driver's pacer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pacing {
    /// Sleep on a timer until the send time.
    Sleep,
    /// Sleep until a margin before the send time, then spin (the default).
    Hybrid,
    /// Never sleep while a send is pending.
    Spin,
}

impl Pacing {
    /// The name `--pacing` takes and reports show.
    pub fn name(self) -> &'static str {
        match self {
            Pacing::Sleep => "sleep",
            Pacing::Hybrid => "hybrid",
            Pacing::Spin => "spin",
        }
    }
}

/// The client driver's I/O engine (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Readiness: mio (epoll), a system call per send and per receive.
    Epoll,
    /// Completion: io_uring, every send and receive of a loop iteration in one system call.
    Uring,
}

impl Engine {
    /// The name `--engine` takes and reports show.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Epoll => "epoll",
            Engine::Uring => "uring",
        }
    }
}

/// What `--stages`' targets count: `--stage-target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StageTarget {
    /// Messages per second: an open loop whose rate follows the stages.
    #[default]
    Rate,
    /// Open connections: a closed loop; `--conns` is the most.
    Conns,
}
