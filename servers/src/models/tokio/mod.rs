//! The tokio model: one task per connection. `threads == 1` runs tokio's current-thread
//! runtime on one dedicated thread; `threads > 1` the multi-thread runtime with that many
//! workers. Shutdown stops the accept loop, then shuts the runtime down, which drops every
//! connection task (closing its socket) and joins the workers.

use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use std::sync::Arc;

use crate::accept::{AcceptAction, AcceptPolicy};
use crate::running::Running;
use crate::stream::Listener;
use crate::work::timer::Timers;
use crate::work::Work;

pub(crate) mod udp;

/// A running tokio server.
pub(crate) struct TokioServer {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

/// The runtime of `threads` workers: the current-thread runtime for one, else the
/// multi-thread one (TCP/Unix here, UDP in `udp::tokio_udp`).
pub(crate) fn runtime(threads: usize) -> io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("tokio-worker")
            .enable_all()
            .build()
    }
}

/// Starts the runtime and the accept loop on `listeners[0]`.
pub(crate) fn start(mut listeners: Vec<Listener>, threads: usize, work: Option<Arc<Work>>) -> io::Result<TokioServer> {
    let listener = listeners.swap_remove(0);
    listener.set_nonblocking(true)?;
    let runtime = runtime(threads)?;
    // Converting needs a runtime context (it registers with the reactor).
    let listener = {
        let _guard = runtime.enter();
        AsyncListener::new(listener)?
    };
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new().name("tokio-main".into()).spawn(move || {
        runtime.block_on(async move {
            // The runtime's waits end on one timerfd (tokio's own timer ticks every ms).
            let work = work.map(|w| (w, Timers::start()));
            accept_loop(listener, stopped, work).await
        });
        // Drops every connection task and joins the workers.
        runtime.shutdown_timeout(Duration::from_millis(500));
    })?;
    Ok(TokioServer { stop, thread })
}

impl Running for TokioServer {
    fn stop(self: Box<Self>) -> io::Result<()> {
        let _ = self.stop.send(true);
        self.thread
            .join()
            .map_err(|_| io::Error::other("tokio server thread panicked"))
    }
}

enum AsyncListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl AsyncListener {
    fn new(listener: Listener) -> io::Result<Self> {
        Ok(match listener {
            Listener::Tcp(l) => AsyncListener::Tcp(tokio::net::TcpListener::from_std(l)?),
            Listener::Unix(l) => AsyncListener::Unix(tokio::net::UnixListener::from_std(l)?),
        })
    }

    /// Accepts one connection and spawns its echo task (with `work`, the worked echo).
    async fn accept_and_spawn(&self, work: &Option<(Arc<Work>, Arc<Timers>)>) -> io::Result<()> {
        match self {
            AsyncListener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                // A failed setsockopt only costs latency: keep the connection.
                let _ = s.set_nodelay(true);
                match work {
                    Some((w, t)) => tokio::spawn(echo_worked(s, Arc::clone(w), Arc::clone(t))),
                    None => tokio::spawn(echo(s)),
                };
            }
            AsyncListener::Unix(l) => {
                let (s, _) = l.accept().await?;
                match work {
                    Some((w, t)) => tokio::spawn(echo_worked(s, Arc::clone(w), Arc::clone(t))),
                    None => tokio::spawn(echo(s)),
                };
            }
        }
        Ok(())
    }
}

async fn accept_loop(
    listener: AsyncListener,
    mut stopped: watch::Receiver<bool>,
    work: Option<(Arc<Work>, Arc<Timers>)>,
) {
    let mut policy = AcceptPolicy::default();
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            result = listener.accept_and_spawn(&work) => match result {
                Ok(()) => policy.accepted(),
                Err(e) => match policy.on_error(&e) {
                    AcceptAction::Drained | AcceptAction::Retry | AcceptAction::Skip => {}
                    AcceptAction::Pause(d) => {
                        // Out of descriptors: wait (open connections keep running), then retry.
                        tokio::select! {
                            _ = stopped.changed() => return,
                            _ = tokio::time::sleep(d) => {}
                        }
                    }
                },
            },
        }
    }
}

/// The readiness-based I/O the echo task needs, for TCP and Unix streams alike.
trait ReadyStream: AsyncWrite + Unpin {
    /// Waits until the stream may be readable.
    async fn wait_readable(&self) -> io::Result<()>;
    /// Reads what is there without waiting (WouldBlock when nothing is).
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes what fits without waiting.
    fn write_now(&self, buf: &[u8]) -> io::Result<usize>;
}

macro_rules! ready_stream {
    ($t:ty) => {
        impl ReadyStream for $t {
            async fn wait_readable(&self) -> io::Result<()> {
                self.readable().await
            }
            fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.try_read(buf)
            }
            fn write_now(&self, buf: &[u8]) -> io::Result<usize> {
                self.try_write(buf)
            }
        }
    };
}
ready_stream!(tokio::net::TcpStream);
ready_stream!(tokio::net::UnixStream);

thread_local! {
    /// One read buffer per runtime thread, shared by every task on it (as the mio model
    /// shares one per event loop): an idle connection holds no buffer.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0; crate::running::BUF_SIZE].into_boxed_slice());
}

/// What one read-and-write-back step left.
enum Step {
    /// Everything read was written back.
    Done,
    /// Nothing to read yet (a spurious wake-up).
    Nothing,
    /// A short write left these bytes to send first.
    Pending(Vec<u8>),
    /// EOF or an error: close.
    Close,
}

/// Echoes until EOF or an error. Reads go into the thread's shared buffer and are written
/// back at once; only what a short write leaves over is kept by the task, and nothing is
/// read until it is written (`write_all` waits while the peer does not read), so memory per
/// connection stays bounded by one buffer and is zero while idle.
async fn echo<S: ReadyStream>(mut stream: S) {
    loop {
        if stream.wait_readable().await.is_err() {
            return;
        }
        let step = SCRATCH.with_borrow_mut(|buf| {
            let n = match stream.read_now(buf) {
                Ok(0) => return Step::Close, // EOF: all echoed; dropping the stream sends FIN
                Ok(n) => n,
                // WouldBlock: readiness was stale; EINTR cannot happen on a nonblocking read
                // but is harmless to retry.
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                    return Step::Nothing
                }
                Err(_) => return Step::Close,
            };
            match stream.write_now(&buf[..n]) {
                Ok(w) if w == n => Step::Done,
                Ok(w) => Step::Pending(buf[w..n].to_vec()), // short write: the rest waits
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Pending(buf[..n].to_vec()),
                Err(_) => Step::Close,
            }
        });
        match step {
            Step::Done | Step::Nothing => {}
            Step::Close => return,
            Step::Pending(rest) => {
                if stream.write_all(&rest).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Echoes with per-message work: CPU is burnt and a block slept on the runtime's thread (a
/// blocking call in a task holds up every task of that thread: the mistake, measured); a
/// wait awaits the runtime's [`Timers`] (tokio's own sleep ticks in whole milliseconds),
/// so the runtime serves the other connections meanwhile.
/// The bytes that complete a message are written once its work is done, in order.
async fn echo_worked<S: ReadyStream>(mut stream: S, work: Arc<Work>, timers: Arc<Timers>) {
    let (mut sampler, mut framer) = work.for_conn(crate::work::next_conn());
    // A task-owned buffer: the bytes of a read outlive the waits between its messages.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if stream.wait_readable().await.is_err() {
            return;
        }
        let n = match stream.read_now(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            // WouldBlock: readiness was stale; EINTR: harmless to retry.
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => continue,
            Err(_) => return,
        };
        let mut at = 0;
        while at < n {
            let (len, completes) = framer.next_piece(n - at);
            if completes {
                let wait = sampler.draw().run_inline();
                if !wait.is_zero() {
                    timers.wait(wait).await;
                }
            }
            if stream.write_all(&buf[at..at + len]).await.is_err() {
                return;
            }
            at += len;
        }
    }
}
