//! The thread-per-connection model: std blocking sockets, one OS thread per accepted
//! connection, with a small stack.
//!
//! It knows its thread budget ([`crate::budget`]) and logs it at start. Past the budget a
//! new connection is refused (closed at once, with a rate-limited log line) while the
//! connections it has go on being served; a spawn that fails anyway closes only that
//! connection. Nothing in a connection thread can abort the process: the echo loop does
//! not panic, and staying within the budget keeps std's own thread start (its signal
//! stack mapping) from failing.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::accept::RateLimitedLog;
use crate::blocking::{echo, Acceptor};
use crate::budget::thread_budget;
use crate::registry::Registry;
use crate::running::Running;
use crate::stream::Listener;

pub(crate) mod udp;

/// Every this many accepted connections the thread budget is taken again.
const BUDGET_EVERY: u64 = 256;

/// A running thread-per-connection server.
pub(crate) struct ThreadPerConn {
    acceptor: Acceptor,
    registry: Arc<Registry>,
}

/// Starts accepting on `listeners[0]`; each connection gets a thread with `stack_size`.
pub(crate) fn start(
    mut listeners: Vec<Listener>,
    stack_size: usize,
    work: Option<Arc<crate::work::Work>>,
) -> io::Result<ThreadPerConn> {
    let registry = Arc::new(Registry::default());
    let reg = Arc::clone(&registry);
    let mut budget = thread_budget();
    eprintln!("echo-server: thread-per-conn: thread budget {budget}");
    let live = Arc::new(AtomicU64::new(0));
    let mut accepted = 0u64;
    let spawn_log = Mutex::new(RateLimitedLog::new(Duration::from_secs(1)));
    let acceptor = Acceptor::spawn(listeners.swap_remove(0), move |mut stream| {
        let refuse = |why: &dyn std::fmt::Display| {
            let mut log = spawn_log.lock().unwrap_or_else(|e| e.into_inner());
            log.log(format_args!("{why}; connection closed, the others are still served"));
        };
        accepted += 1;
        if accepted.is_multiple_of(BUDGET_EVERY) {
            // Pids are machine-wide: other processes (other servers of --procs) use them too.
            let now = thread_budget();
            budget.threads = now.threads.saturating_add(live.load(Ordering::Relaxed));
        }
        if live.load(Ordering::Relaxed) >= budget.threads {
            // `stream` is dropped: only this client is refused.
            return refuse(&format_args!("at the thread budget ({} threads)", budget.threads));
        }
        // Registered before the thread starts, so shutdown reaches it even before it runs.
        let Some(entry) = reg.register(&stream) else {
            return;
        };
        live.fetch_add(1, Ordering::Relaxed);
        let done = Arc::clone(&live);
        let work = work.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(stack_size)
            .spawn(move || {
                echo(&mut stream, work.as_deref());
                drop(entry); // leave the registry before `stream` closes
                done.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            // The closure (and with it the connection) is dropped: only this client is refused.
            live.fetch_sub(1, Ordering::Relaxed);
            refuse(&format_args!("cannot spawn a connection thread: {e}"));
        }
    })?;
    Ok(ThreadPerConn { acceptor, registry })
}

impl Running for ThreadPerConn {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.acceptor.stop();
        self.registry.shut_down("connection")
    }
}
