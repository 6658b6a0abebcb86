//! The thread-pool model: std blocking sockets and a fixed pool of workers fed by a queue of
//! accepted connections. A connection holds its worker until it closes, so with more open
//! connections than workers the extra ones wait in the queue, accepted but unserved, until a
//! worker frees up. Give it at least as many workers as concurrent connections.

use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::blocking::{echo, Acceptor};
use crate::budget::refuse_beyond_budget;
use crate::registry::Registry;
use crate::running::Running;
use crate::stream::{Listener, Stream};

pub(crate) mod udp;

/// A running thread-pool server.
pub(crate) struct ThreadPool {
    acceptor: Acceptor,
    registry: Arc<Registry>,
    workers: Vec<JoinHandle<()>>,
}

/// Starts `workers` threads with `stack_size` and an accept thread feeding them.
/// More workers than the thread budget ([`crate::budget`]) is refused with
/// `InvalidInput`: the pool would die when a worker's start fails, not degrade.
pub(crate) fn start(
    mut listeners: Vec<Listener>,
    workers: usize,
    stack_size: usize,
    work: Option<Arc<crate::work::Work>>,
) -> io::Result<ThreadPool> {
    refuse_beyond_budget("threadpool", workers)?;
    let registry = Arc::new(Registry::default());
    let (tx, rx) = mpsc::channel::<Stream>();
    let rx = Arc::new(Mutex::new(rx));
    let workers = (0..workers)
        .map(|i| {
            let rx = Arc::clone(&rx);
            let registry = Arc::clone(&registry);
            let work = work.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .stack_size(stack_size)
                .spawn(move || loop {
                    // The lock is taken once per connection, not per message.
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(mut stream) = next else { return }; // queue closed: shutting down
                                                               // None: shutting down; the queued connection is closed unserved.
                    if let Some(entry) = registry.register(&stream) {
                        echo(&mut stream, work.as_deref());
                        drop(entry);
                    }
                })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let acceptor = Acceptor::spawn(listeners.swap_remove(0), move |stream| {
        // Only fails when every worker has exited, i.e. during shutdown.
        let _ = tx.send(stream);
    })?;
    Ok(ThreadPool {
        acceptor,
        registry,
        workers,
    })
}

impl Running for ThreadPool {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.acceptor.stop(); // drops the queue's sender: idle workers see it closed
        self.registry.close_all();
        for worker in self.workers {
            let _ = worker.join();
        }
        Ok(())
    }
}
