//! The tokio model: one task per connection. `threads == 1` runs tokio's current-thread
//! runtime on one dedicated thread; `threads > 1` the multi-thread runtime with that many
//! workers. Shutdown stops the accept loop, then shuts the runtime down, which drops every
//! connection task (closing its socket) and joins the workers.

use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::accept::{AcceptAction, AcceptPolicy};
use crate::stream::Listener;
use crate::Running;

/// Per-connection buffer of a task.
const TASK_BUF: usize = 16 * 1024;

/// A running tokio server.
pub(crate) struct TokioServer {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

/// Starts the runtime and the accept loop on `listeners[0]`.
pub(crate) fn start(mut listeners: Vec<Listener>, threads: usize) -> io::Result<TokioServer> {
    let listener = listeners.swap_remove(0);
    listener.set_nonblocking(true)?;
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("tokio-worker")
            .enable_all()
            .build()?
    };
    // Converting needs a runtime context (it registers with the reactor).
    let listener = {
        let _guard = runtime.enter();
        AsyncListener::new(listener)?
    };
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new().name("tokio-main".into()).spawn(move || {
        runtime.block_on(accept_loop(listener, stopped));
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

    /// Accepts one connection and spawns its echo task.
    async fn accept_and_spawn(&self) -> io::Result<()> {
        match self {
            AsyncListener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                // A failed setsockopt only costs latency: keep the connection.
                let _ = s.set_nodelay(true);
                tokio::spawn(echo(s));
            }
            AsyncListener::Unix(l) => {
                let (s, _) = l.accept().await?;
                tokio::spawn(echo(s));
            }
        }
        Ok(())
    }
}

async fn accept_loop(listener: AsyncListener, mut stopped: watch::Receiver<bool>) {
    let mut policy = AcceptPolicy::default();
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            result = listener.accept_and_spawn() => match result {
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

/// Echoes until EOF or an error. `write_all` waits when the peer stops reading, and nothing
/// is read meanwhile, so memory stays bounded at one buffer.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = vec![0u8; TASK_BUF];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return, // EOF (all echoed; drop sends FIN) or reset
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
