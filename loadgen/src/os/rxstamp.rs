//! Kernel receive timestamps (SO_TIMESTAMPING, software RX): when a reply reached the
//! socket, so a run can tell the time it spent waiting for loadgen's reader from the time
//! the network and the server took. The kernel stamps each arriving packet (CLOCK_REALTIME,
//! in the receive softirq); a `recvmsg` returns the stamp of the last packet it read, and
//! the reader's delay is the realtime clock right after it minus that stamp.

use std::io;
use std::os::fd::RawFd;

/// Asks the kernel to stamp the packets arriving on `fd` and to hand the stamps to
/// `recvmsg`. The first socket on a host to ask turns stamping on through deferred work, so
/// the packets of the next instant may come unstamped: those reads record nothing.
pub fn enable(fd: RawFd) -> io::Result<()> {
    let flags: libc::c_uint = libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
    // SAFETY: setsockopt reads `size_of::<c_uint>()` bytes from a live local.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            (&flags as *const libc::c_uint).cast(),
            size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `recv` on `fd` into `buf`: the bytes read and, when the kernel stamped them, the
/// stamp of the last packet read (realtime ns).
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    // Room for one SCM_TIMESTAMPING message (three timespecs) and its header, aligned.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: `msg` points at `iov` (into `buf`) and `control`, both live and writable.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, stamp(&msg)))
}

/// The software receive stamp among `msg`'s control messages, in realtime ns.
fn stamp(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: recvmsg filled `msg_controllen` bytes of the control buffer it points at.
    let control = unsafe { std::slice::from_raw_parts(msg.msg_control.cast::<u8>(), msg.msg_controllen) };
    stamp_in(control)
}

/// Bytes of control data a receive needs for one stamp: CMSG_SPACE of three timespecs.
pub const CONTROL_LEN: usize = 64;

/// The software receive stamp in control data `control` (a sequence of `cmsghdr`s, as
/// `recvmsg` or io_uring's multishot `recvmsg` leave them), in realtime ns.
pub fn stamp_in(control: &[u8]) -> Option<u64> {
    const HDR: usize = size_of::<libc::cmsghdr>();
    let align = |n: usize| n.next_multiple_of(size_of::<usize>());
    let mut at = 0;
    while at + HDR <= control.len() {
        // SAFETY: HDR bytes at `at` are inside `control`; read unaligned into a local.
        let h: libc::cmsghdr = unsafe { std::ptr::read_unaligned(control[at..].as_ptr().cast()) };
        let len = h.cmsg_len as usize;
        if len < HDR || at + len > control.len() {
            return None; // truncated or malformed
        }
        if h.cmsg_level == libc::SOL_SOCKET
            && h.cmsg_type == libc::SO_TIMESTAMPING
            && len >= HDR + size_of::<libc::timespec>()
        {
            // struct scm_timestamping { struct timespec ts[3]; }: [0] is the software stamp.
            // SAFETY: a timespec's bytes follow the header inside `control` (checked above).
            let ts: libc::timespec = unsafe { std::ptr::read_unaligned(control[at + align(HDR)..].as_ptr().cast()) };
            if ts.tv_sec == 0 && ts.tv_nsec == 0 {
                return None;
            }
            return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
        }
        at += align(len);
    }
    None
}

/// CLOCK_REALTIME now, ns (the clock the kernel stamps with).
#[inline]
pub fn realtime_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_stamped_read_carries_when_the_bytes_arrived() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        enable(client.as_raw_fd()).unwrap();
        // The first socket to ask turns the kernel's stamping on through deferred work: a
        // packet arriving in that instant goes unstamped (loadgen then records nothing for
        // it). Give it a moment.
        std::thread::sleep(std::time::Duration::from_millis(100));
        server.write_all(b"hello").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut buf = [0u8; 16];
        let (n, at) = recv(client.as_raw_fd(), &mut buf).unwrap();
        let now = realtime_ns();
        assert_eq!(&buf[..n], b"hello");
        let at = at.expect("the kernel stamped the packet");
        // Read 20 ms after it arrived (generously bounded: the machine may be slow).
        let delay = now - at;
        assert!(
            (15_000_000..5_000_000_000).contains(&delay),
            "reader's delay {delay} ns"
        );
    }
}
