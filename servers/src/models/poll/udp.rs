//! The poll model over UDP: each loop `poll(2)`s its own SO_REUSEPORT socket (readable; writable too
//! while a reply waits for room) and the wake fd, and serves the socket with
//! [`crate::datagram::echo`], the same echo as mio's; `--work` waits end at `ppoll`'s
//! timeout, to the nanosecond.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{drain, pollfd, ppoll, PollServer};
use crate::datagram::echo::Echo;
use crate::datagram::{Guard, GuardConfig, Service};

/// Starts one loop per socket.
pub(crate) fn start(
    sockets: Vec<UdpSocket>,
    guard: GuardConfig,
    work: Option<Arc<crate::work::Work>>,
) -> io::Result<PollServer> {
    let threads = sockets.len();
    let mut server = PollServer::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        socket.set_nonblocking(true)?;
        let mut echo = Echo::new(socket, Guard::new(guard, threads), Service::new(work.as_ref()));
        server = server.spawn(format!("poll-udp-{i}"), move |stop, wake| {
            let mut more = false;
            let mut fds = Vec::with_capacity(2);
            while !stop.load(Ordering::Acquire) {
                // With datagrams left from the last batch, only look, do not sleep; with
                // replies held, sleep no longer than until the next is due.
                let timeout = if more {
                    Some(Duration::ZERO)
                } else {
                    echo.deferred.next_in(Instant::now())
                };
                let events = if echo.wants_writable() {
                    libc::POLLIN | libc::POLLOUT
                } else {
                    libc::POLLIN
                };
                fds.clear();
                fds.extend([
                    pollfd(echo.socket.as_raw_fd(), events),
                    pollfd(wake.as_raw_fd(), libc::POLLIN),
                ]);
                ppoll(&mut fds, timeout)?;
                if fds[1].revents != 0 {
                    drain(wake);
                }
                more = echo.step()?;
            }
            Ok(())
        })?;
    }
    Ok(server)
}
