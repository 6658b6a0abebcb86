//! The io_uring model over UDP: each ring keeps [`SLOTS`] `recvmsg` operations in flight on
//! its own SO_REUSEPORT socket; a completed one is answered with `sendmsg` from the same
//! buffer to the source it names, and re-armed once that send completes.
//!
//! `--work`: CPU and block on the ring's thread when the receive completes; a wait submits a
//! timeout operation for the slot and the send follows its completion, while the ring serves
//! the other slots. A waiting slot receives nothing, so with a `wait` step a ring keeps
//! [`SLOTS_WAITING`] slots instead of [`SLOTS`]: that many datagrams wait at once per ring.

use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use io_uring::{opcode, types};

use crate::datagram::{Guard, Service, DATAGRAM_BUF};
use kit::ring::{Kind, Ring, Ud};

/// Receives in flight per ring.
pub(crate) const SLOTS: usize = 16;
/// Receives in flight per ring when datagrams wait (`--work wait:`): at 1 ms each, 128
/// slots carry 128,000 datagrams a second (8 MiB of buffers).
pub(crate) const SLOTS_WAITING: usize = 128;

/// One receive-then-send slot: its buffer and the message header that names it.
struct Slot {
    buf: Box<[u8]>,
    iov: libc::iovec,
    addr: libc::sockaddr_storage,
    msg: libc::msghdr,
    /// The timeout of this slot's `--work` wait, while it runs.
    ts: types::Timespec,
    /// When that wait began and what it asked (recorded as done when it completes).
    waited: Option<(std::time::Instant, std::time::Duration)>,
}

/// The loop's state; the slots are boxed so the kernel's pointers into them stay valid.
pub(super) struct UdpLoop {
    ring: Ring,
    socket: UdpSocket,
    // Boxed: the kernel and each slot's own header point into it, so it must never move.
    #[allow(clippy::vec_box)]
    slots: Vec<Box<Slot>>,
    guard: Guard,
    service: Service,
    wake_fd: RawFd,
    wake_buf: Box<[u8; 8]>,
}

impl UdpLoop {
    pub(super) fn new(
        ring: Ring,
        socket: UdpSocket,
        wake_fd: RawFd,
        guard: Guard,
        service: Service,
        waits: bool,
    ) -> UdpLoop {
        let slots = (0..if waits { SLOTS_WAITING } else { SLOTS })
            .map(|_| {
                // SAFETY: all-zero is a valid value of these plain C structs.
                let mut slot = Box::new(Slot {
                    buf: vec![0u8; DATAGRAM_BUF].into_boxed_slice(),
                    iov: unsafe { std::mem::zeroed() },
                    addr: unsafe { std::mem::zeroed() },
                    msg: unsafe { std::mem::zeroed() },
                    ts: types::Timespec::new(),
                    waited: None,
                });
                slot.iov.iov_base = slot.buf.as_mut_ptr().cast();
                slot.msg.msg_iov = &mut slot.iov;
                slot.msg.msg_iovlen = 1;
                slot.msg.msg_name = (&mut slot.addr as *mut libc::sockaddr_storage).cast();
                slot
            })
            .collect();
        UdpLoop {
            ring,
            socket,
            slots,
            guard,
            service,
            wake_fd,
            wake_buf: Box::new([0; 8]),
        }
    }

    pub(super) fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        for i in 0..self.slots.len() {
            self.arm_recv(i)?;
        }
        let read = opcode::Read::new(types::Fd(self.wake_fd), self.wake_buf.as_mut_ptr(), 8)
            .build()
            .user_data(Ud::of(Kind::Wake, 0, 0));
        self.ring.push(&read)?;
        let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(64);
        while !stop.load(Ordering::Acquire) {
            done.clear();
            self.ring.wait(&mut done, None)?;
            for &(ud, res, _) in &done {
                let ud = Ud::decode(ud);
                match ud.kind {
                    Kind::Recv if res >= 0 => self.answer(ud.index, res as usize)?,
                    // An error queued by an earlier send (ICMP), or EINTR: receive again.
                    Kind::Recv => self.arm_recv(ud.index)?,
                    // Sent, or failed (one datagram lost, as UDP may): the slot receives again.
                    Kind::Send => self.arm_recv(ud.index)?,
                    // The wait is over (-ETIME is how a timeout completes): send the echo.
                    Kind::Work => {
                        if let Some((started, asked)) = self.slots[ud.index].waited.take() {
                            crate::work::done::record_since(crate::work::Kind::Wait, asked, started);
                        }
                        self.send(ud.index)?
                    }
                    _ => {}
                }
            }
        }
        // Every operation cancelled and completed: then the port is free when this returns.
        self.ring.drain();
        Ok(())
    }

    fn arm_recv(&mut self, i: usize) -> io::Result<()> {
        let slot = &mut self.slots[i];
        slot.iov.iov_len = slot.buf.len();
        slot.msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let recv = opcode::RecvMsg::new(types::Fd(self.socket.as_raw_fd()), &mut slot.msg)
            .build()
            .user_data(Ud::of(Kind::Recv, 0, i));
        self.ring.push(&recv)
    }

    /// Echoes the `n` bytes slot `i` received to their source, if the guard admits it.
    fn answer(&mut self, i: usize, n: usize) -> io::Result<()> {
        let slot = &mut self.slots[i];
        // SAFETY: the kernel filled `addr` and set `msg_namelen` to its length.
        let src = unsafe { socket2::SockAddr::new(slot.addr, slot.msg.msg_namelen) }.as_socket();
        if !src.is_some_and(|s| self.guard.admit(s)) {
            return self.arm_recv(i);
        }
        slot.iov.iov_len = n;
        let wait = self.service.inline();
        if !wait.is_zero() {
            slot.ts = types::Timespec::from(wait);
            slot.waited = Some((std::time::Instant::now(), wait));
            let timeout = opcode::Timeout::new(&slot.ts)
                .build()
                .user_data(Ud::of(Kind::Work, 0, i));
            return self.ring.push(&timeout);
        }
        self.send(i)
    }

    /// Sends slot `i`'s datagram back to its source.
    fn send(&mut self, i: usize) -> io::Result<()> {
        let slot = &mut self.slots[i];
        let send = opcode::SendMsg::new(types::Fd(self.socket.as_raw_fd()), &slot.msg)
            .build()
            .user_data(Ud::of(Kind::Send, 0, i));
        self.ring.push(&send)
    }
}
