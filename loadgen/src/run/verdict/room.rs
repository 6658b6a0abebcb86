//! The machine a run had to share, and when a client thread counts as saturated: a leaf
//! the verdicts (closed and open loop) both read.

/// A client thread busier than this is taken as saturated.
pub(crate) const SATURATED: f64 = 0.9;

/// The cores a run had to share: advice about a saturated client depends on them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Room {
    /// CPUs of this machine.
    pub cores: usize,
    /// Client threads that ran.
    pub client_threads: usize,
    /// Threads of a server on this machine (its workers, or the peak observed); `None`
    /// when the server is elsewhere.
    pub server_threads: Option<usize>,
}

impl Room {
    /// What to do about a saturated client thread, in words that fit the machine: more
    /// client threads only help when they do not take the server's cores.
    pub fn advice(&self) -> String {
        let Room {
            cores,
            client_threads,
            server_threads,
        } = *self;
        match server_threads {
            None if client_threads < cores => {
                format!("add --threads: {client_threads} of {cores} cores in use")
            }
            None => format!("all {cores} cores run client threads: load from a second host (--shard)"),
            Some(server) => {
                let over = if client_threads + server > cores {
                    format!("; {client_threads} client and {server} server threads already exceed the {cores} cores")
                } else {
                    String::new()
                };
                format!(
                    "client and server share {cores} cores: more --threads would take the server's{over}; \
                     give each side its own cores (--pin-client, --pin-server), lower the load (--rate), \
                     or run the client on another host (--shard)"
                )
            }
        }
    }
}
