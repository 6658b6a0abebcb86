//! The thread-per-connection model: std blocking sockets, one OS thread per accepted
//! connection, with a small stack. A failed spawn closes that one connection and is logged.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::accept::RateLimitedLog;
use crate::blocking::{echo, Acceptor};
use crate::registry::Registry;
use crate::server::Running;
use crate::stream::Listener;

/// A running thread-per-connection server.
pub(crate) struct ThreadPerConn {
    acceptor: Acceptor,
    registry: Arc<Registry>,
}

/// Starts accepting on `listeners[0]`; each connection gets a thread with `stack_size`.
pub(crate) fn start(mut listeners: Vec<Listener>, stack_size: usize) -> io::Result<ThreadPerConn> {
    let registry = Arc::new(Registry::default());
    let reg = Arc::clone(&registry);
    let spawn_log = Mutex::new(RateLimitedLog::new(Duration::from_secs(1)));
    let acceptor = Acceptor::spawn(listeners.swap_remove(0), move |mut stream| {
        // Registered before the thread starts, so shutdown reaches it even before it runs.
        let Some(entry) = reg.register(&stream) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(stack_size)
            .spawn(move || {
                echo(&mut stream);
                drop(entry); // leave the registry before `stream` closes
            });
        if let Err(e) = spawned {
            // The closure (and with it the connection) is dropped: only this client is refused.
            let mut log = spawn_log.lock().unwrap_or_else(|e| e.into_inner());
            log.log(format_args!("cannot spawn a connection thread: {e}; connection closed"));
        }
    })?;
    Ok(ThreadPerConn { acceptor, registry })
}

impl Running for ThreadPerConn {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.acceptor.stop();
        self.registry.close_all();
        if self.registry.wait_empty(Duration::from_millis(900)) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection threads did not finish within 900 ms",
            ))
        }
    }
}
