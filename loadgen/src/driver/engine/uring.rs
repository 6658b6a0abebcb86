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
//! Only stream sockets (TCP, Unix) run on this engine; UDP runs on epoll.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{cqueue, opcode, types};
use servers::ring::{BufRing, Ring};

use super::ready::{Ready, TIMER};
use crate::driver::socket::Sock;

/// Buffers in the receive pool of one thread.
const BUFFERS: u16 = 4096;
/// Bytes per receive buffer.
const BUF_LEN: usize = 4096;
const BGID: u16 = 0;

/// What an operation was, in the top byte of its user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Recv = 1,
    Send = 2,
    Connect = 3,
    Timer = 4,
}

fn ud(op: Op, id: u32, token: usize) -> u64 {
    servers::ring::pack(op as u8, id, token)
}

fn decode(ud: u64) -> (Option<Op>, u32, usize) {
    let (op, id, token) = servers::ring::unpack(ud);
    let op = match op {
        1 => Some(Op::Recv),
        2 => Some(Op::Send),
        3 => Some(Op::Connect),
        4 => Some(Op::Timer),
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
    conns: Vec<Option<UringConn>>,
    next_id: u32,
    /// Closed connections the kernel still owes completions, with their sockets.
    graveyard: Vec<(UringConn, Sock)>,
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
}

impl UringIo {
    /// A ring (SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them) and its pool.
    pub(super) fn new(rx_stamps: bool) -> io::Result<UringIo> {
        servers::ring::available()?;
        let ring = servers::ring::new_ring()?;
        let bufs = BufRing::new(ring.io(), BUFFERS, BUF_LEN, BGID)?;
        let stamp_msg = rx_stamps.then(|| {
            // SAFETY: an all-zero msghdr is valid: no name, no iovec (the buffer is the
            // pool's), room for the control data only.
            let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
            msg.msg_controllen = crate::rxstamp::CONTROL_LEN;
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
        if matches!(sock, Sock::Udp(_)) {
            // The configuration refuses --engine uring over UDP; this is its backstop.
            return Err(io::Error::other("the io_uring engine drives streams only"));
        }
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
        };
        let poll = opcode::PollAdd::new(types::Fd(c.fd), libc::POLLOUT as u32)
            .build()
            .user_data(ud(Op::Connect, c.id, token));
        self.ring.push(&poll)?;
        c.ops += 1;
        if self.conns.len() <= token {
            self.conns.resize_with(token + 1, || None);
        }
        // The loop closes a connection (through `close`) before it reopens its token.
        debug_assert!(self.conns[token].is_none(), "token {token} watched twice");
        self.conns[token] = Some(c);
        Ok(())
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
    /// while a send is in flight; a failed send is reported by the next call.
    #[inline]
    pub(super) fn send(&mut self, token: usize, data: &[u8]) -> io::Result<usize> {
        let Some(mut c) = self.conns.get_mut(token).and_then(Option::take) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let sent = self.queue_send(&mut c, token, data);
        self.conns[token] = Some(c);
        sent
    }

    fn queue_send(&mut self, c: &mut UringConn, token: usize, data: &[u8]) -> io::Result<usize> {
        if let Some(errno) = c.tx_err {
            return Err(io::Error::from_raw_os_error(errno));
        }
        if c.tx_busy {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        c.tx.clear();
        c.tx.extend_from_slice(data);
        c.tx_off = 0;
        c.tx_busy = true;
        self.submit_send(c, token)?;
        Ok(data.len())
    }

    /// Reads what the receive completions brought for connection `token` (and, with
    /// `stamped`, the receive stamp of the latest): WouldBlock when nothing is left (the
    /// receive stays armed), `Ok(0)` at EOF.
    #[inline]
    pub(super) fn recv(&mut self, token: usize, out: &mut [u8], stamped: bool) -> io::Result<(usize, Option<u64>)> {
        let Some(c) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
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

    fn submit_send(&mut self, c: &mut UringConn, token: usize) -> io::Result<()> {
        let rest = &c.tx[c.tx_off..];
        let send = opcode::Send::new(types::Fd(c.fd), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(ud(Op::Send, c.id, token));
        self.ring.push(&send)?;
        c.ops += 1;
        Ok(())
    }

    /// Buffer `bid` came back holding `n` bytes for `c`: its payload joins the connection's
    /// received bytes. With stamps (a multishot `recvmsg`) the buffer holds a header and the
    /// control data before the payload, and the stamp is kept for the reader.
    fn received(&mut self, c: &mut UringConn, bid: u16, n: usize) {
        let Some(msg) = &self.stamp_msg else {
            c.rx.push_back((bid, 0, n));
            return;
        };
        match types::RecvMsgOut::parse(self.bufs.bytes(bid, 0, n), msg) {
            // The payload comes last in the buffer.
            Ok(out) if !out.payload_data().is_empty() => {
                c.stamp = crate::rxstamp::stamp_in(out.control_data()).or(c.stamp);
                let len = out.payload_data().len();
                c.rx.push_back((bid, n - len, n));
            }
            // No payload: the peer's FIN (the multishot ends).
            _ => {
                self.bufs.give_back(bid);
                c.rx_end = Some(0);
            }
        }
    }

    /// Submits everything queued and waits, at most `timeout` (zero: not at all), for
    /// completions; applies each to its connection and appends what the loop must hear to
    /// `out`.
    pub(super) fn wait(&mut self, timeout: Duration, out: &mut Vec<Ready>) -> io::Result<()> {
        self.bufs.publish();
        self.done.clear();
        if timeout.is_zero() {
            // A poll that must not block (spinning to pace): no wait, not even a zero one.
            self.ring.reap(&mut self.done)?;
        } else {
            self.ring.wait(&mut self.done, Some(&types::Timespec::from(timeout)))?;
        }
        for k in 0..self.done.len() {
            let (user, res, flags) = self.done[k];
            let (op, id, token) = decode(user);
            let more = cqueue::more(flags);
            if op == Some(Op::Timer) {
                self.timer_fired(more, out)?;
                continue;
            }
            let bid = cqueue::buffer_select(flags);
            let applied = self.with_conn(token, Some(id), |io, c| {
                if !more {
                    c.ops -= 1;
                }
                match op {
                    Some(Op::Connect) => Ok(Some(Ready {
                        token,
                        readable: false,
                        writable: true,
                        closed: false,
                    })),
                    Some(Op::Recv) => io.recv_done(c, token, res, more, bid),
                    Some(Op::Send) => io.send_done(c, token, res),
                    Some(Op::Timer) | None => Ok(None),
                }
            });
            match applied {
                Some(ready) => out.extend(ready?),
                None => self.bury(id, more, bid),
            }
        }
        for token in std::mem::take(&mut self.starved) {
            self.with_conn(token, None, |io, c| io.start(c, token)).transpose()?;
        }
        Ok(())
    }

    /// The open-loop timer's poll fired: the loop hears it; a multishot poll that ended is
    /// armed again.
    fn timer_fired(&mut self, more: bool, out: &mut Vec<Ready>) -> io::Result<()> {
        out.push(Ready {
            token: TIMER,
            readable: true,
            writable: false,
            closed: false,
        });
        match self.timer {
            // The multishot poll ended: poll again.
            Some(fd) if !more => self.watch_timer(fd),
            _ => Ok(()),
        }
    }

    /// A receive completed on `c` (`res` bytes, or EOF, or an error): what the loop must
    /// hear, if anything (an empty pool is retried next round, silently).
    fn recv_done(
        &mut self,
        c: &mut UringConn,
        token: usize,
        res: i32,
        more: bool,
        bid: Option<u16>,
    ) -> io::Result<Option<Ready>> {
        if !more {
            c.recv_armed = false;
        }
        match res {
            n if n > 0 => {
                if let Some(bid) = bid {
                    self.received(c, bid, n as usize);
                }
                if !more && c.rx_end.is_none() {
                    self.start(c, token)?; // the kernel ended the multishot: renew it
                }
            }
            0 => c.rx_end = Some(0),
            e if -e == libc::ENOBUFS => {
                if !more {
                    self.starved.push(token); // the pool ran dry: re-armed next round
                }
                return Ok(None);
            }
            e => c.rx_end = Some(-e),
        }
        Ok(Some(Ready {
            token,
            readable: true,
            writable: false,
            closed: c.rx_end.is_some(),
        }))
    }

    /// A send completed on `c`: a short one goes on at once (nothing to hear yet).
    fn send_done(&mut self, c: &mut UringConn, token: usize, res: i32) -> io::Result<Option<Ready>> {
        if res < 0 {
            c.tx_err = Some(-res);
            c.tx_busy = false;
        } else {
            c.tx_off += res as usize;
            if c.tx_off < c.tx.len() {
                self.submit_send(c, token)?; // a short send: the rest goes now
                return Ok(None);
            }
            c.tx_busy = false;
        }
        Ok(Some(Ready {
            token,
            readable: false,
            writable: true,
            closed: false,
        }))
    }

    /// A completion for a connection closed meanwhile: its buffer goes back, and the
    /// socket is closed with its last completion.
    fn bury(&mut self, id: u32, more: bool, bid: Option<u16>) {
        if let Some(bid) = bid {
            self.bufs.give_back(bid);
        }
        if more {
            return;
        }
        if let Some(k) = self.graveyard.iter().position(|(c, _)| c.id == id) {
            let c = &mut self.graveyard[k].0;
            c.ops = c.ops.saturating_sub(1);
            if c.ops == 0 {
                self.graveyard.swap_remove(k);
            }
        }
    }
}

impl Drop for UringIo {
    fn drop(&mut self) {
        // Nothing in flight may outlive the sockets' buffers.
        self.ring.drain();
    }
}
