//! The thread-pool model over UDP: N threads block in `recv_from` on one socket and echo
//! each datagram with `send_to`. The kernel hands each datagram to one waiting thread.
//! `--work`: the worker takes the datagram's whole cost (CPU, block and wait) before the
//! echo.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::budget::refuse_beyond_budget;
use crate::datagram::{Guard, GuardConfig, Service, DATAGRAM_BUF};
use crate::running::{stop_started, Running};

/// A running UDP thread pool.
pub(crate) struct Pool {
    stop: Arc<AtomicBool>,
    socket: UdpSocket,
    workers: Vec<JoinHandle<()>>,
}

/// Starts `workers` threads on `sockets[0]`.
pub(crate) fn start(
    mut sockets: Vec<UdpSocket>,
    workers: usize,
    stack_size: usize,
    guard: GuardConfig,
    work: Option<std::sync::Arc<crate::work::Work>>,
) -> io::Result<Pool> {
    refuse_beyond_budget("threadpool", workers)?;
    let socket = sockets.swap_remove(0);
    let stop = Arc::new(AtomicBool::new(false));
    let mut pool = Pool {
        stop: Arc::clone(&stop),
        socket: socket.try_clone()?,
        workers: Vec::with_capacity(workers),
    };
    for i in 0..workers {
        let socket = socket.try_clone()?;
        let stop = Arc::clone(&stop);
        let service = Service::new(work.as_ref());
        let spawned = std::thread::Builder::new()
            .name(format!("udp-worker-{i}"))
            .stack_size(stack_size)
            .spawn(move || serve(&socket, &stop, Guard::new(guard, workers), service));
        match spawned {
            Ok(t) => pool.workers.push(t),
            Err(e) => {
                return Err(stop_started(Box::new(pool), e));
            }
        }
    }
    Ok(pool)
}

/// Echoes datagrams on `socket` until `stop` is set (and the socket shut down to wake it).
fn serve(socket: &UdpSocket, stop: &AtomicBool, mut guard: Guard, mut service: Service) {
    let mut buf = vec![0u8; DATAGRAM_BUF];
    loop {
        match crate::datagram::recv_from(socket, &mut buf) {
            // Shutdown wakes a blocked receive with 0 bytes and no source: the flag tells
            // it from an empty datagram, which is echoed like any other.
            Ok(_) if stop.load(Ordering::Acquire) => return,
            Ok(None) => continue, // no source address: nothing to answer
            Ok(Some((n, src))) => {
                if guard.admit(src) {
                    service.blocking();
                    // A failed send loses one datagram, as UDP may: nothing to clean up.
                    let _ = socket.send_to(&buf[..n], src);
                }
            }
            Err(_) if stop.load(Ordering::Acquire) => return,
            // EINTR, or an error queued by an earlier send (ICMP): the socket is still good.
            Err(_) => continue,
        }
    }
}

impl Running for Pool {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        crate::datagram::wake_all(&self.socket);
        for worker in self.workers {
            let _ = worker.join();
        }
        Ok(())
    }
}
