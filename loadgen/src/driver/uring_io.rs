//! The client driver's io_uring engine (`--engine uring`): the same loop, with its socket
//! I/O as io_uring operations, submitted together by one `io_uring_enter` per loop
//! iteration (which also waits for completions).
//!
//! - Receives: one multishot receive per connection into a provided-buffer ring shared by
//!   the thread's connections; `read` hands out those bytes and gives each buffer back as
//!   soon as it is consumed, so the pool bounds memory whatever the connection count.
//! - Sends: `write` copies the bytes into the connection's own send buffer and queues one
//!   send (the kernel reads the buffer until the operation completes); a short send is
//!   resubmitted from where it stopped; while one is in flight `write` says WouldBlock and
//!   the completion counts as WRITABLE.
//! - Connects start as before (a nonblocking `connect`); a poll operation for POLLOUT says
//!   when the handshake is over. The open-loop timer is polled the same way.
//! - A connection closed with operations in flight is shut down and kept (its buffers
//!   are the kernel's until then) until their completions have come.
//!
//! Only stream sockets (TCP, Unix) run on this engine; UDP runs on epoll.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, types};
use servers::ring::{BufRing, Ring};

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
    Cancel = 5,
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
        5 => Some(Op::Cancel),
        _ => None,
    };
    (op, id, token)
}

/// What the ring needs of the event loop's connections: each one's uring socket, by the
/// token its operations carry. The loop's connections implement it, so the engine does not
/// know what a connection is.
pub(super) trait UringSocks {
    /// Connection `token`'s socket, if it is a uring one.
    fn uring_sock(&mut self, token: usize) -> Option<&mut UringSock>;
}

fn sock_of(conns: &mut (impl UringSocks + ?Sized), token: usize) -> Option<&mut UringSock> {
    conns.uring_sock(token)
}

/// What a completion means to the loop, per connection (its token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ready {
    /// The connection (or the timer's token).
    pub(super) token: usize,
    /// Bytes (or EOF, or an error) can be read.
    pub(super) readable: bool,
    /// A send completed (or the connect's handshake ended).
    pub(super) writable: bool,
    /// The peer's FIN or an error came.
    pub(super) closed: bool,
}

/// One thread's ring, receive pool and the sockets still owed completions.
pub(super) struct UringIo {
    // Declared before `bufs`: the ring is dropped first, so no operation outlives the pool.
    ring: Ring,
    bufs: BufRing,
    next_id: u32,
    graveyard: Vec<UringSock>,
    done: Vec<(u64, i32, u32)>,
    /// Sockets whose multishot receive ended for want of buffers: re-armed next round.
    starved: Vec<usize>,
    timer: Option<(RawFd, usize)>,
    /// `--rx-timestamps on`: receives are multishot `recvmsg` with room for the kernel's
    /// receive stamp (the kernel reads this header when it takes the operation).
    stamp_msg: Option<Box<libc::msghdr>>,
}

/// A stream socket driven by io_uring.
pub(crate) struct UringSock {
    fd: OwnedFd,
    id: u32,
    token: usize,
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

impl UringSock {
    /// The descriptor.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Reads what the receive completions brought: WouldBlock when nothing is left (the
    /// receive stays armed), `Ok(0)` at EOF.
    pub(super) fn read(&mut self, out: &mut [u8], io: &mut UringIo) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            let Some(front) = self.rx.front_mut() else { break };
            let take = (front.2 - front.1).min(out.len() - n);
            out[n..n + take].copy_from_slice(io.bufs.bytes(front.0, front.1, front.1 + take));
            front.1 += take;
            n += take;
            if front.1 == front.2 {
                let (bid, _, _) = self.rx.pop_front().expect("front exists");
                io.bufs.give_back(bid);
            }
        }
        match (n, self.rx_end) {
            (0, Some(0)) => Ok(0),
            (0, Some(errno)) => Err(io::Error::from_raw_os_error(errno)),
            (0, None) => Err(io::ErrorKind::WouldBlock.into()),
            (n, _) => Ok(n),
        }
    }

    /// The kernel's receive stamp of the latest bytes received, once (realtime ns).
    pub(super) fn take_stamp(&mut self) -> Option<u64> {
        self.stamp.take()
    }

    /// Queues `data` as one send: all of it is taken, or WouldBlock while a send is in
    /// flight; a failed send is reported by the next call.
    pub(super) fn write(&mut self, data: &[u8], io: &mut UringIo) -> io::Result<usize> {
        if let Some(errno) = self.tx_err {
            return Err(io::Error::from_raw_os_error(errno));
        }
        if self.tx_busy {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.tx.clear();
        self.tx.extend_from_slice(data);
        self.tx_off = 0;
        self.tx_busy = true;
        io.submit_send(self)?;
        Ok(data.len())
    }
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
            next_id: 0,
            graveyard: Vec::new(),
            done: Vec::with_capacity(1024),
            starved: Vec::new(),
            timer: None,
            stamp_msg,
        })
    }

    /// Takes a socket whose nonblocking connect has started; the loop hears WRITABLE
    /// (token `token`) when the handshake is over.
    pub(super) fn adopt(&mut self, fd: OwnedFd, token: usize) -> io::Result<UringSock> {
        self.next_id = self.next_id.wrapping_add(1) & 0x00FF_FFFF;
        let mut s = UringSock {
            fd,
            id: self.next_id,
            token,
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
        let poll = opcode::PollAdd::new(types::Fd(s.fd.as_raw_fd()), libc::POLLOUT as u32)
            .build()
            .user_data(ud(Op::Connect, s.id, token));
        self.ring.push(&poll)?;
        s.ops += 1;
        Ok(s)
    }

    /// Starts receiving on a connected socket.
    pub(super) fn start(&mut self, s: &mut UringSock) -> io::Result<()> {
        if s.recv_armed || s.rx_end.is_some() {
            return Ok(());
        }
        let fd = types::Fd(s.fd.as_raw_fd());
        let recv = match &self.stamp_msg {
            // Each completion's buffer then holds a header, the control data, the payload.
            Some(msg) => opcode::RecvMsgMulti::new(fd, &**msg, BGID).build(),
            None => opcode::RecvMulti::new(fd, BGID).build(),
        }
        .user_data(ud(Op::Recv, s.id, s.token));
        self.ring.push(&recv)?;
        s.recv_armed = true;
        s.ops += 1;
        Ok(())
    }

    /// Polls the open-loop timer `fd` (reported with `token`) from now on.
    pub(super) fn watch_timer(&mut self, fd: RawFd, token: usize) -> io::Result<()> {
        self.timer = Some((fd, token));
        let poll = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(ud(Op::Timer, 0, token));
        self.ring.push(&poll)
    }

    fn submit_send(&mut self, s: &mut UringSock) -> io::Result<()> {
        let rest = &s.tx[s.tx_off..];
        let send = opcode::Send::new(types::Fd(s.fd.as_raw_fd()), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(ud(Op::Send, s.id, s.token));
        self.ring.push(&send)?;
        s.ops += 1;
        Ok(())
    }

    /// Closes a socket: at once when the kernel holds nothing of it, else after shutting
    /// it down (which ends its operations) once their completions have come.
    pub(super) fn close(&mut self, mut s: UringSock) {
        for (bid, _, _) in s.rx.drain(..) {
            self.bufs.give_back(bid);
        }
        if s.ops > 0 {
            // SAFETY: shutting down a descriptor this socket owns (still open).
            unsafe { libc::shutdown(s.fd.as_raw_fd(), libc::SHUT_RDWR) };
            self.graveyard.push(s);
        }
    }

    /// Buffer `bid` came back holding `n` bytes for `s`: its payload joins the socket's
    /// received bytes. With stamps (a multishot `recvmsg`) the buffer holds a header and the
    /// control data before the payload, and the stamp is kept for the reader.
    fn received(&mut self, s: &mut UringSock, bid: u16, n: usize) {
        let Some(msg) = &self.stamp_msg else {
            s.rx.push_back((bid, 0, n));
            return;
        };
        match types::RecvMsgOut::parse(self.bufs.bytes(bid, 0, n), msg) {
            // The payload comes last in the buffer.
            Ok(out) if !out.payload_data().is_empty() => {
                s.stamp = crate::rxstamp::stamp_in(out.control_data()).or(s.stamp);
                let len = out.payload_data().len();
                s.rx.push_back((bid, n - len, n));
            }
            // No payload: the peer's FIN (the multishot ends).
            _ => {
                self.bufs.give_back(bid);
                s.rx_end = Some(0);
            }
        }
    }

    /// Submits everything queued and waits, at most `timeout`, for completions; applies
    /// each to its connection's socket and appends what the loop must hear to `out`.
    pub(super) fn wait(
        &mut self,
        timeout: Duration,
        conns: &mut (impl UringSocks + ?Sized),
        out: &mut Vec<Ready>,
    ) -> io::Result<()> {
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
                self.timer_fired(token, more, out)?;
                continue;
            }
            let bid = cqueue::buffer_select(flags);
            let live = sock_of(conns, token).filter(|s| s.id == id);
            let Some(s) = live else {
                self.bury(id, more, bid);
                continue;
            };
            if !more {
                s.ops -= 1;
            }
            match op {
                Some(Op::Connect) => out.push(Ready {
                    token,
                    readable: false,
                    writable: true,
                    closed: false,
                }),
                Some(Op::Recv) => {
                    if let Some(ready) = self.recv_done(s, token, res, more, bid)? {
                        out.push(ready);
                    }
                }
                Some(Op::Send) => {
                    if let Some(ready) = self.send_done(s, token, res)? {
                        out.push(ready);
                    }
                }
                Some(Op::Timer) | Some(Op::Cancel) | None => {}
            }
        }
        for token in std::mem::take(&mut self.starved) {
            if let Some(s) = sock_of(conns, token) {
                self.start(s)?;
            }
        }
        Ok(())
    }

    /// The open-loop timer's poll fired: the loop hears it; a multishot poll that ended is
    /// armed again.
    fn timer_fired(&mut self, token: usize, more: bool, out: &mut Vec<Ready>) -> io::Result<()> {
        out.push(Ready {
            // The timer's own token: a connection's fits the user data, its may not.
            token: self.timer.map_or(token, |(_, t)| t),
            readable: true,
            writable: false,
            closed: false,
        });
        if !more {
            // The multishot poll ended: poll again.
            if let Some((fd, token)) = self.timer {
                self.watch_timer(fd, token)?;
            }
        }
        Ok(())
    }

    /// A receive completed on `s` (`res` bytes, or EOF, or an error): what the loop must
    /// hear, if anything (an empty pool is retried next round, silently).
    fn recv_done(
        &mut self,
        s: &mut UringSock,
        token: usize,
        res: i32,
        more: bool,
        bid: Option<u16>,
    ) -> io::Result<Option<Ready>> {
        if !more {
            s.recv_armed = false;
        }
        match res {
            n if n > 0 => {
                if let Some(bid) = bid {
                    self.received(s, bid, n as usize);
                }
                if !more && s.rx_end.is_none() {
                    self.start(s)?; // the kernel ended the multishot: renew it
                }
            }
            0 => s.rx_end = Some(0),
            e if -e == libc::ENOBUFS => {
                if !more {
                    self.starved.push(token); // the pool ran dry: re-armed next round
                }
                return Ok(None);
            }
            e => s.rx_end = Some(-e),
        }
        Ok(Some(Ready {
            token,
            readable: true,
            writable: false,
            closed: s.rx_end.is_some(),
        }))
    }

    /// A send completed on `s`: a short one goes on at once (nothing to hear yet).
    fn send_done(&mut self, s: &mut UringSock, token: usize, res: i32) -> io::Result<Option<Ready>> {
        if res < 0 {
            s.tx_err = Some(-res);
            s.tx_busy = false;
        } else {
            s.tx_off += res as usize;
            if s.tx_off < s.tx.len() {
                self.submit_send(s)?; // a short send: the rest goes now
                return Ok(None);
            }
            s.tx_busy = false;
        }
        Ok(Some(Ready {
            token,
            readable: false,
            writable: true,
            closed: false,
        }))
    }

    /// A completion for a socket closed meanwhile: its buffer goes back, and the socket is
    /// freed with its last completion.
    fn bury(&mut self, id: u32, more: bool, bid: Option<u16>) {
        if let Some(bid) = bid {
            self.bufs.give_back(bid);
        }
        if more {
            return;
        }
        if let Some(k) = self.graveyard.iter().position(|s| s.id == id) {
            let s = &mut self.graveyard[k];
            s.ops = s.ops.saturating_sub(1);
            if s.ops == 0 {
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
