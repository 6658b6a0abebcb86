//! The io_uring model: one ring per worker (each with its own SO_REUSEPORT listener), a
//! completion-driven loop with multishot accept, multishot receive into a provided-buffer
//! ring, and echo sent straight from the received buffer ([`stream`]). Over UDP each ring
//! keeps [`udp::SLOTS`] `recvmsg` operations in flight on its own SO_REUSEPORT socket and
//! answers each with `sendmsg` ([`udp`]). The ring toolkit is [`kit::ring`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::datagram::{Guard, GuardConfig};
use crate::running::{stop_started, Running};
use crate::stream::Listener;
use kit::ring::{available, new_ring, Ring};

mod stream;
pub(crate) mod udp;

/// Running io_uring loops.
pub(crate) struct UringServer {
    stop: Arc<AtomicBool>,
    loops: Vec<(OwnedFd, JoinHandle<()>)>,
}

/// Starts one ring per listener (streams) or per socket (UDP).
pub(crate) fn start_stream(listeners: Vec<Listener>, work: Option<Arc<crate::work::Work>>) -> io::Result<UringServer> {
    available()?;
    spawn_loops(listeners, move |ring, listener, wake, stop| {
        stream::StreamLoop::new(ring, listener, wake, work.clone())?.run(stop)
    })
}

/// Starts one ring per UDP socket.
pub(crate) fn start_udp(
    sockets: Vec<std::net::UdpSocket>,
    guard: GuardConfig,
    work: Option<std::sync::Arc<crate::work::Work>>,
) -> io::Result<UringServer> {
    available()?;
    let n = sockets.len();
    spawn_loops(sockets, move |ring, socket, wake, stop| {
        let service = crate::datagram::Service::new(work.as_ref());
        let waits = work.as_ref().is_some_and(|w| w.waits());
        udp::UdpLoop::new(ring, socket, wake, Guard::new(guard, n), service, waits).run(stop)
    })
}

fn spawn_loops<T: Send + 'static>(
    items: Vec<T>,
    body: impl Fn(Ring, T, std::os::fd::RawFd, &AtomicBool) -> io::Result<()> + Send + Sync + Clone + 'static,
) -> io::Result<UringServer> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut server = UringServer {
        stop: Arc::clone(&stop),
        loops: Vec::new(),
    };
    for (i, item) in items.into_iter().enumerate() {
        // SAFETY: eventfd has no memory preconditions; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(raw) };
        let wake_raw = wake.as_raw_fd();
        let stop = Arc::clone(&stop);
        // The ring is built inside its thread: SINGLE_ISSUER binds it to its creator.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let body = body.clone();
        let spawned = std::thread::Builder::new().name(format!("uring-{i}")).spawn(move || {
            let ring = match new_ring() {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            if let Err(e) = body(ring, item, wake_raw, &stop) {
                eprintln!("echo-server: uring loop {i} failed: {e}");
            }
        });
        match spawned.map(|t| (t, ready_rx.recv())) {
            Ok((t, Ok(Ok(())))) => server.loops.push((wake, t)),
            Ok((t, Ok(Err(e)))) => {
                let _ = t.join();
                return Err(stop_started(Box::new(server), e));
            }
            Ok((t, Err(_))) => {
                let _ = t.join();
                Box::new(server).stop()?;
                return Err(io::Error::other("uring loop thread ended before its ring was ready"));
            }
            Err(e) => return Err(stop_started(Box::new(server), e)),
        }
    }
    Ok(server)
}

impl Running for UringServer {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        for (wake, _) in &self.loops {
            // SAFETY: writing 8 bytes from a live local to our own eventfd.
            unsafe {
                libc::write(wake.as_raw_fd(), (&1u64 as *const u64).cast(), 8);
            }
        }
        for (_, thread) in self.loops {
            let _ = thread.join();
        }
        Ok(())
    }
}
