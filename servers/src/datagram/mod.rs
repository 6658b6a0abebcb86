//! What every model's UDP side shares: the datagram buffer size, a shutdown-safe
//! `recv_from`, the loopback rule and the source [`Guard`], and for the readiness models the
//! echo of one nonblocking socket ([`echo`]). Each model's UDP mapping lives
//! in its own folder (`models/<name>/udp.rs`).
//!
//! UDP echo: every model mapped onto datagrams. A datagram is echoed back to its source as
//! it came (a reply is never larger than its request); receive buffers hold datagrams up to
//! 64 KiB ([`DATAGRAM_BUF`]).
//!
//! | model | UDP mapping |
//! |---|---|
//! | threadpool | N threads blocking in `recv_from` on one socket |
//! | mio | one nonblocking SO_REUSEPORT socket per event loop |
//! | tokio | one `UdpSocket` task per runtime worker, SO_REUSEPORT sockets |
//! | uring | one SO_REUSEPORT socket per ring, 16 `recvmsg` in flight, each answered by `sendmsg` |
//! | thread-per-conn | a dispatcher thread on the bound socket; each new peer gets a thread with its own socket connected to that peer on the same port; idle peers time out |
//! | poll | one nonblocking SO_REUSEPORT socket per `poll(2)` loop, served by [`echo`] as mio's are |
//!
//! Echo over UDP is a reflection vector (RFC 862; CVE-1999-0103, CVE-2024-2169): a spoofed
//! source makes the server send to a victim, or two echo/chargen services loop forever.
//! So UDP servers bind loopback only, unless `ServerConfig::allow_remote` says otherwise,
//! and then every datagram passes a [`Guard`] first.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

pub(crate) mod echo;
mod guard;
mod service;

pub use guard::{Guard, GuardConfig};
pub(crate) use service::{Deferred, Service};

/// Largest datagram a server receives whole (IPv6's largest payload fits too).
pub const DATAGRAM_BUF: usize = 64 * 1024;

/// `recv_from` on a blocking socket that the server may shut down to wake it: `Ok(None)`
/// when the kernel returned no source address (the wake-up of a shutdown). std's
/// `recv_from` asserts on that and panics, so this goes through rustix.
pub(crate) fn recv_from(socket: &std::net::UdpSocket, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
    let (n, _, from) = rustix::net::recvfrom(socket, buf, rustix::net::RecvFlags::empty())?;
    Ok(from.and_then(|a| SocketAddr::try_from(a).ok()).map(|a| (n, a)))
}

/// Refuses a UDP address beyond loopback unless `allow_remote` (echo over UDP answers
/// anyone: see the module's note).
pub(crate) fn check_bind(addr: SocketAddr, allow_remote: bool) -> io::Result<()> {
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "UDP echo binds loopback only: udp://{addr} would answer anyone (a reflection \
                 vector, RFC 862); use udp://127.0.0.1:PORT, or pass --allow-remote to accept \
                 the risk with source filtering and a per-source rate limit"
            ),
        ));
    }
    Ok(())
}

/// Wakes every thread blocked on `socket`: receives return at once from now on.
pub(crate) fn wake_all(socket: &impl AsRawFd) {
    // SAFETY: shutdown on a descriptor this server owns (still open) has no memory effects.
    // On an unconnected UDP socket it fails with ENOTCONN but still marks the receive side
    // shut and wakes the waiters, which is all we want.
    unsafe {
        libc::shutdown(socket.as_raw_fd(), libc::SHUT_RDWR);
    }
}
