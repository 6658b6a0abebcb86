//! Pieces shared by the blocking models: the accept thread and the per-connection echo loop.
//!
//! The accept thread waits on a mio `Poll` holding the (nonblocking) listener and a `Waker`,
//! so shutdown wakes it at once and an accept pause (EMFILE) is a poll timeout, not a spin.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::accept::{AcceptAction, AcceptPolicy};
use crate::stream::{Listener, Stream};

/// Per-connection read buffer of the blocking models: small, so 10k+ threads fit.
const CONN_BUF: usize = 16 * 1024;

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);

/// A running accept thread and the means to stop it.
pub(crate) struct Acceptor {
    stop: Arc<AtomicBool>,
    waker: Waker,
    thread: JoinHandle<()>,
}

impl Acceptor {
    /// Starts a thread that accepts from `listener` and hands each connection to `on_conn`.
    pub(crate) fn spawn(listener: Listener, mut on_conn: impl FnMut(Stream) + Send + 'static) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&listener.as_raw_fd()), LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("accept".into()).spawn(move || {
            let mut events = Events::with_capacity(8);
            let mut policy = AcceptPolicy::default();
            let mut pause: Option<Duration> = None;
            while !stop2.load(Ordering::Acquire) {
                if let Err(e) = poll.poll(&mut events, pause) {
                    // EINTR: a signal arrived; poll again.
                    if e.kind() != io::ErrorKind::Interrupted {
                        eprintln!("echo-server: accept poll failed: {e}");
                        return;
                    }
                }
                if stop2.load(Ordering::Acquire) {
                    return;
                }
                // Edge-triggered: drain the queue until it would block (or a pause starts).
                pause = None;
                loop {
                    match listener.accept() {
                        Ok(stream) => {
                            policy.accepted();
                            on_conn(stream);
                        }
                        Err(e) => match policy.on_error(&e) {
                            AcceptAction::Drained => break,
                            AcceptAction::Retry | AcceptAction::Skip => continue,
                            AcceptAction::Pause(d) => {
                                pause = Some(d);
                                break;
                            }
                        },
                    }
                }
            }
        })?;
        Ok(Acceptor { stop, waker, thread })
    }

    /// Stops accepting and joins the thread (dropping `on_conn` and what it owns).
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        let _ = self.thread.join();
    }
}

/// Echoes everything read from `stream` back to it until EOF or an error. Used by both
/// blocking models: a blocking write naturally stops reading from a peer that stops reading.
/// With `work`, each message's work runs on this thread before the bytes that complete it
/// are written back; a blocking model waits by blocking, whatever the kind.
pub(crate) fn echo(stream: &mut Stream, work: Option<&crate::work::Work>) {
    // Accepted sockets do not inherit O_NONBLOCK on Linux; make sure anyway.
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let mut state = work.map(|w| w.for_conn(crate::work::next_conn()));
    let mut buf = vec![0u8; CONN_BUF];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return, // EOF: everything read has been written back; closing sends FIN.
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry.
            Err(_) => return,                                             // reset or shut down.
        };
        let Some((sampler, framer)) = state.as_mut() else {
            // write_all retries short writes and EINTR; any other error ends the connection.
            if stream.write_all(&buf[..n]).is_err() {
                return;
            }
            continue;
        };
        let mut at = 0;
        while at < n {
            let (len, completes) = framer.next_piece(n - at);
            if completes {
                let wait = sampler.draw().run_inline();
                if !wait.is_zero() {
                    crate::work::done::sleep(crate::work::Kind::Wait, wait); // a blocking model has no other way to wait
                }
            }
            if stream.write_all(&buf[at..at + len]).is_err() {
                return;
            }
            at += len;
        }
    }
}
