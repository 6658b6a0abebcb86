//! The tokio model over UDP: one task per runtime worker, each owning a `UdpSocket` bound
//! with SO_REUSEPORT to the same address (the kernel spreads peers over them), looping
//! `recv_from` then `send_to`. `threads == 1` runs the current-thread runtime. Shutdown
//! drops the runtime, which drops the tasks and closes their sockets. `--work`: CPU and
//! block on the task's thread; a wait moves the reply (a copy of the datagram) to a task
//! of its own that waits (on the runtime's timerfd: `Timers`) and sends, while the loop goes on.

use std::io;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::TokioServer;
use crate::datagram::{Guard, GuardConfig, Service, DATAGRAM_BUF};

/// Starts the runtime and one echo task per socket; stopped like the stream server (the
/// same [`TokioServer`]: a stop signal, then the runtime thread joined).
pub(crate) fn start(
    sockets: Vec<UdpSocket>,
    threads: usize,
    guard: GuardConfig,
    work: Option<std::sync::Arc<crate::work::Work>>,
) -> io::Result<TokioServer> {
    let runtime = super::runtime(threads)?;
    let tasks = sockets.len();
    let sockets = {
        // Converting needs a runtime context (it registers with the reactor).
        let _guard = runtime.enter();
        sockets
            .into_iter()
            .map(|s| {
                s.set_nonblocking(true)?;
                tokio::net::UdpSocket::from_std(s)
            })
            .collect::<io::Result<Vec<_>>>()?
    };
    let (stop, mut stopped) = watch::channel(false);
    let thread = std::thread::Builder::new().name("tokio-main".into()).spawn(move || {
        runtime.block_on(async move {
            let timers = crate::work::timer::Timers::start();
            for socket in sockets {
                tokio::spawn(echo(
                    Arc::new(socket),
                    Guard::new(guard, tasks),
                    Service::new(work.as_ref()),
                    Arc::clone(&timers),
                ));
            }
            // Until stop is sent (or its sender dropped).
            let _ = stopped.wait_for(|s| *s).await;
        });
        // Drops every echo task (closing its socket) and joins the workers.
        runtime.shutdown_timeout(Duration::from_millis(500));
    })?;
    Ok(TokioServer { stop, thread })
}

async fn echo(
    socket: Arc<tokio::net::UdpSocket>,
    mut guard: Guard,
    mut service: Service,
    timers: Arc<crate::work::timer::Timers>,
) {
    let mut buf = vec![0u8; DATAGRAM_BUF];
    loop {
        let Ok((n, src)) = socket.recv_from(&mut buf).await else {
            continue; // an error queued by an earlier send (ICMP): the socket is still good
        };
        if !guard.admit(src) {
            continue;
        }
        let wait = service.inline();
        if wait.is_zero() {
            // A failed send loses one datagram, as UDP may.
            let _ = socket.send_to(&buf[..n], src).await;
        } else {
            let (socket, data, timers) = (Arc::clone(&socket), buf[..n].to_vec(), Arc::clone(&timers));
            tokio::spawn(async move {
                timers.wait(wait).await;
                let _ = socket.send_to(&data, src).await;
            });
        }
    }
}
