//! The io_uring engine (`--engine uring`): the same loop, with its socket I/O as io_uring
//! operations, submitted together by one `io_uring_enter` per loop iteration (which also
//! waits for completions).
//!
//! - Receives: one multishot receive per connection into a provided-buffer ring shared by
//!   the thread's connections; `recv` hands out those bytes and gives each buffer back as
//!   soon as it is consumed, so the pool bounds memory whatever the connection count.
//! - Sends: `send` copies the bytes into the connection's own send buffer and queues one
//!   send (the kernel reads the buffer until the operation completes); a short send is
//!   resubmitted from where it stopped; while one is in flight `send` says WouldBlock and
//!   the completion counts as writable.
//! - Connects start as before (a nonblocking `connect`); a poll operation for POLLOUT says
//!   when the handshake is over. The open-loop timer is polled the same way.
//! - What the engine keeps per connection ([`UringConn`]) is in its own table, by the
//!   connection's token, with a generation that tells a completion for a closed
//!   connection from one for the connection now in its slot. A connection closed with
//!   operations in flight is shut down and kept, socket and all (its buffers are the
//!   kernel's until then), until their completions have come.
//!
//! - Datagrams (UDP): the connect probe's echo is awaited with a POLLIN poll (re-armed
//!   while other datagrams come first); each receive completion is one datagram, and
//!   `recv` hands out one per call; up to [`DGRAM_SENDS`] sends are in flight per
//!   connection, each from its own buffer, so a burst of datagrams is one submission.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types};
use kit::ring::{BufRing, Ring};

use super::ready::TIMER;
use crate::run::driver::socket::Sock;

mod complete;

/// Buffers in the receive pool of one thread.
const BUFFERS: u16 = 4096;
/// Bytes per receive buffer (streams; a datagram's buffer holds the largest datagram).
const BUF_LEN: usize = 4096;
/// The most a thread's receive pool takes when its buffers are sized to datagrams.
const POOL_BYTES: usize = 16 << 20;
const BGID: u16 = 0;
/// Datagram sends in flight per connection (each from its own buffer).
const DGRAM_SENDS: usize = 64;
/// Operation kinds from this one up are datagram sends, the kind naming the send's buffer.
const DGRAM_KIND: u8 = 128;

/// What an operation was, in the top byte of its user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Recv,
    Send,
    Connect,
    Timer,
    /// A datagram send, from the connection's send buffer of that index.
    Datagram(u8),
}

fn ud(op: Op, id: u32, token: usize) -> u64 {
    let kind = match op {
        Op::Recv => 1,
        Op::Send => 2,
        Op::Connect => 3,
        Op::Timer => 4,
        Op::Datagram(slot) => DGRAM_KIND + slot,
    };
    kit::ring::pack(kind, id, token)
}

fn decode(ud: u64) -> (Option<Op>, u32, usize) {
    let (kind, id, token) = kit::ring::unpack(ud);
    let op = match kind {
        1 => Some(Op::Recv),
        2 => Some(Op::Send),
        3 => Some(Op::Connect),
        4 => Some(Op::Timer),
        k if k >= DGRAM_KIND => Some(Op::Datagram(k - DGRAM_KIND)),
        _ => None,
    };
    (op, id, token)
}

/// One thread's ring, receive pool, and what it keeps of each connection.
pub(crate) struct UringIo {
    // Declared before `bufs`: the ring is dropped first, so no operation outlives the pool.
    ring: Ring,
    bufs: BufRing,
    /// The connections the ring serves, by token.
    /// Boxed: `with_conn` takes one out and puts it back per completion, a pointer's move.
    conns: Vec<Option<Box<UringConn>>>,
    next_id: u32,
    /// Closed connections the kernel still owes completions, with their sockets.
    graveyard: Vec<(Box<UringConn>, Sock)>,
    done: Vec<(u64, i32, u32)>,
    /// Connections whose multishot receive ended for want of buffers: re-armed next round.
    starved: Vec<usize>,
    /// The open-loop timer's descriptor, once watched.
    timer: Option<RawFd>,
    /// `--rx-timestamps on`: receives are multishot `recvmsg` with room for the kernel's
    /// receive stamp (the kernel reads this header when it takes the operation).
    stamp_msg: Option<Box<libc::msghdr>>,
}

/// What the engine keeps of one connection's socket.
struct UringConn {
    fd: RawFd,
    /// Generation: told apart from the earlier connections of the same token.
    id: u32,
    /// Operations in flight on it.
    ops: u32,
    recv_armed: bool,
    /// Received buffers not yet read: (buffer id, read so far, length).
    rx: VecDeque<(u16, usize, usize)>,
    /// EOF (`Some(0)`) or an errno, after the bytes in `rx`.
    rx_end: Option<i32>,
    tx: Vec<u8>,
    tx_off: usize,
    tx_busy: bool,
    tx_err: Option<i32>,
    /// The kernel's receive stamp of the latest bytes received (realtime ns), until read.
    stamp: Option<u64>,
    /// A datagram socket: one datagram per receive, sends from `dgram_tx`.
    datagram: bool,
    /// The poll that waits for the connect's end (or the probe's echo) is in flight.
    connect_armed: bool,
    /// Datagram sends' buffers, and the indexes of those not in flight.
    dgram_tx: Vec<Vec<u8>>,
    dgram_free: Vec<u8>,
    /// With stamps: each received datagram's, in the order of `rx`.
    dgram_stamps: VecDeque<Option<u64>>,
}

impl UringIo {
    /// A ring (SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them) and its pool;
    /// `datagram`: the largest datagram to receive, when the sockets are UDP (the pool's
    /// buffers then hold one each, with room for a stamp's header and control data).
    pub(super) fn new(rx_stamps: bool, datagram: Option<usize>) -> io::Result<UringIo> {
        kit::ring::available()?;
        let ring = kit::ring::new_ring()?;
        let buf_len = datagram.map_or(BUF_LEN, |n| (n + 256).next_power_of_two().max(BUF_LEN));
        // Fewer, larger buffers for large datagrams: the pool stays within POOL_BYTES.
        let count = (POOL_BYTES / buf_len).clamp(16, usize::from(BUFFERS));
        let count = 1u16 << (usize::BITS - 1 - count.leading_zeros());
        let bufs = BufRing::new(ring.io(), count, buf_len, BGID)?;
        let stamp_msg = rx_stamps.then(|| {
            // SAFETY: an all-zero msghdr is valid: no name, no iovec (the buffer is the
            // pool's), room for the control data only.
            let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
            msg.msg_controllen = crate::os::rxstamp::CONTROL_LEN;
            msg
        });
        Ok(UringIo {
            ring,
            bufs,
            conns: Vec::new(),
            next_id: 0,
            graveyard: Vec::new(),
            done: Vec::with_capacity(1024),
            starved: Vec::new(),
            timer: None,
            stamp_msg,
        })
    }

    /// Takes connection `token`'s socket, whose nonblocking connect has started; the loop
    /// hears writable when the handshake is over.
    pub(super) fn watch(&mut self, sock: &Sock, token: usize) -> io::Result<()> {
        let datagram = matches!(sock, Sock::Dgram(..));
        self.next_id = self.next_id.wrapping_add(1) & 0x00FF_FFFF;
        let mut c = UringConn {
            fd: sock.fd(),
            id: self.next_id,
            ops: 0,
            recv_armed: false,
            rx: VecDeque::new(),
            rx_end: None,
            tx: Vec::new(),
            tx_off: 0,
            tx_busy: false,
            tx_err: None,
            stamp: None,
            datagram,
            connect_armed: false,
            dgram_tx: Vec::new(),
            dgram_free: if datagram {
                (0..DGRAM_SENDS as u8).rev().collect()
            } else {
                Vec::new()
            },
            dgram_stamps: VecDeque::new(),
        };
        self.arm_connect(&mut c, token)?;
        if self.conns.len() <= token {
            self.conns.resize_with(token + 1, || None);
        }
        // The loop closes a connection (through `close`) before it reopens its token.
        debug_assert!(self.conns[token].is_none(), "token {token} watched twice");
        self.conns[token] = Some(Box::new(c));
        Ok(())
    }

    /// A poll for the connect's end: writable for a stream; readable for a datagram socket
    /// (the probe's echo, or the ICMP error of a closed port).
    fn arm_connect(&mut self, c: &mut UringConn, token: usize) -> io::Result<()> {
        if c.connect_armed {
            return Ok(());
        }
        let events = if c.datagram { libc::POLLIN } else { libc::POLLOUT };
        let poll = opcode::PollAdd::new(types::Fd(c.fd), events as u32)
            .build()
            .user_data(ud(Op::Connect, c.id, token));
        self.ring.push(&poll)?;
        c.ops += 1;
        c.connect_armed = true;
        Ok(())
    }

    /// Connection `token` is still connecting after its poll fired (a datagram socket read
    /// something other than its probe's echo): the poll is armed again.
    pub(super) fn still_connecting(&mut self, token: usize) -> io::Result<()> {
        self.with_conn(token, None, |io, c| io.arm_connect(c, token))
            .unwrap_or(Ok(()))
    }

    /// Connection `token` is open: it starts receiving.
    pub(super) fn opened(&mut self, token: usize) -> io::Result<()> {
        self.with_conn(token, None, |io, c| io.start(c, token))
            .unwrap_or(Ok(()))
    }

    /// Polls the open-loop timer `fd` (reported with token [`TIMER`]) from now on.
    pub(super) fn watch_timer(&mut self, fd: RawFd) -> io::Result<()> {
        self.timer = Some(fd);
        let poll = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(ud(Op::Timer, 0, TIMER));
        self.ring.push(&poll)
    }

    /// Queues `data` as one send on connection `token`: all of it is taken, or WouldBlock
    /// while a send is in flight; a failed send is reported by the next call. (Borrows the
    /// connection in place, beside the ring: nothing is moved per message.)
    #[inline]
    pub(super) fn send(&mut self, token: usize, data: &[u8]) -> io::Result<usize> {
        let Some(c) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        queue_send(&mut self.ring, c, token, data)
    }

    /// Reads what the receive completions brought for connection `token` (and, with
    /// `stamped`, the receive stamp of the latest): WouldBlock when nothing is left (the
    /// receive stays armed), `Ok(0)` at EOF.
    #[inline]
    pub(super) fn recv(&mut self, token: usize, out: &mut [u8], stamped: bool) -> io::Result<(usize, Option<u64>)> {
        let Some(c) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if c.datagram {
            return match c.rx.pop_front() {
                // One datagram per call (cut to `out`, as recv(2) would).
                Some((bid, from, to)) => {
                    let n = (to - from).min(out.len());
                    out[..n].copy_from_slice(self.bufs.bytes(bid, from, from + n));
                    self.bufs.give_back(bid);
                    let stamp = c.dgram_stamps.pop_front().flatten();
                    Ok((n, if stamped { stamp } else { None }))
                }
                None => match c.rx_end {
                    Some(errno) if errno != 0 => Err(io::Error::from_raw_os_error(errno)),
                    _ => Err(io::ErrorKind::WouldBlock.into()),
                },
            };
        }
        let mut n = 0;
        while n < out.len() {
            let Some(front) = c.rx.front_mut() else { break };
            let take = (front.2 - front.1).min(out.len() - n);
            out[n..n + take].copy_from_slice(self.bufs.bytes(front.0, front.1, front.1 + take));
            front.1 += take;
            n += take;
            if front.1 == front.2 {
                let (bid, _, _) = c.rx.pop_front().expect("front exists");
                self.bufs.give_back(bid);
            }
        }
        let stamp = if stamped { c.stamp.take() } else { None };
        match (n, c.rx_end) {
            (0, Some(0)) => Ok((0, stamp)),
            (0, Some(errno)) => Err(io::Error::from_raw_os_error(errno)),
            (0, None) => Err(io::ErrorKind::WouldBlock.into()),
            (n, _) => Ok((n, stamp)),
        }
    }

    /// Closes connection `token`'s socket: at once when the kernel holds nothing of it,
    /// else after shutting it down (which ends its operations) once their completions
    /// have come.
    pub(super) fn close(&mut self, token: usize, sock: Sock) {
        let Some(mut c) = self.conns.get_mut(token).and_then(Option::take) else {
            return; // never watched (its connect failed at once): it closes as it drops
        };
        for (bid, _, _) in c.rx.drain(..) {
            self.bufs.give_back(bid);
        }
        if c.ops > 0 {
            // SAFETY: shutting down a descriptor `sock` owns (still open).
            unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) };
            self.graveyard.push((c, sock));
        }
    }

    /// Runs `f` on connection `token`'s state (of generation `id`, when given), taken out
    /// of the table meanwhile so `f` may use the rest of the engine; `None` when there is
    /// no such connection.
    fn with_conn<R>(
        &mut self,
        token: usize,
        id: Option<u32>,
        f: impl FnOnce(&mut Self, &mut UringConn) -> R,
    ) -> Option<R> {
        let slot = self.conns.get_mut(token)?;
        let mut c = slot.take_if(|c| id.is_none_or(|id| c.id == id))?;
        let r = f(self, &mut c);
        self.conns[token] = Some(c);
        Some(r)
    }

    /// Starts receiving on a connected socket.
    fn start(&mut self, c: &mut UringConn, token: usize) -> io::Result<()> {
        if c.recv_armed || c.rx_end.is_some() {
            return Ok(());
        }
        let fd = types::Fd(c.fd);
        let recv = match &self.stamp_msg {
            // Each completion's buffer then holds a header, the control data, the payload.
            Some(msg) => opcode::RecvMsgMulti::new(fd, &**msg, BGID).build(),
            None => opcode::RecvMulti::new(fd, BGID).build(),
        }
        .user_data(ud(Op::Recv, c.id, token));
        self.ring.push(&recv)?;
        c.recv_armed = true;
        c.ops += 1;
        Ok(())
    }
}

impl Drop for UringIo {
    fn drop(&mut self) {
        // Nothing in flight may outlive the sockets' buffers.
        self.ring.drain();
    }
}

/// Queues `data` on connection `c`: a stream's one send (WouldBlock while one is in flight),
/// or one datagram from a free send buffer (WouldBlock while all are in flight).
fn queue_send(ring: &mut Ring, c: &mut UringConn, token: usize, data: &[u8]) -> io::Result<usize> {
    if let Some(errno) = c.tx_err {
        if c.datagram {
            c.tx_err = None; // a datagram's failure is its own: reported once
        }
        return Err(io::Error::from_raw_os_error(errno));
    }
    if c.datagram {
        let Some(slot) = c.dgram_free.pop() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let k = usize::from(slot);
        if c.dgram_tx.len() <= k {
            c.dgram_tx.resize_with(k + 1, Vec::new);
        }
        c.dgram_tx[k].clear();
        c.dgram_tx[k].extend_from_slice(data);
        if let Err(e) = push_send(ring, c, &c.dgram_tx[k], Op::Datagram(slot), token) {
            c.dgram_free.push(slot);
            return Err(e);
        }
    } else {
        if c.tx_busy {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        c.tx.clear();
        c.tx.extend_from_slice(data);
        c.tx_off = 0;
        c.tx_busy = true;
        push_send(ring, c, &c.tx, Op::Send, token)?;
    }
    c.ops += 1;
    Ok(data.len())
}

/// Submits the rest of a stream's send after a short one.
fn resend(ring: &mut Ring, c: &mut UringConn, token: usize) -> io::Result<()> {
    push_send(ring, c, &c.tx[c.tx_off..], Op::Send, token)?;
    c.ops += 1;
    Ok(())
}

/// Pushes one send of `bytes` (which the connection owns until its completion).
fn push_send(ring: &mut Ring, c: &UringConn, bytes: &[u8], op: Op, token: usize) -> io::Result<()> {
    let send = opcode::Send::new(types::Fd(c.fd), bytes.as_ptr(), bytes.len() as u32)
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(ud(op, c.id, token));
    ring.push(&send)
}
