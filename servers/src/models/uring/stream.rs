//! One io_uring event loop over a stream listener (TCP or Unix): multishot accept,
//! multishot receive into the provided-buffer ring, and echo straight from the received
//! buffer (no copy), one send in flight per connection so bytes keep their order, the rest
//! of a short send resubmitted. A buffer goes back to the pool once its bytes are sent.
//!
//! Memory is bounded by the pool ([`BUFFERS`] x [`BUF_LEN`]); a connection holding
//! [`MAX_QUEUED`] unsent buffers (a peer that stops reading) has its receive cancelled
//! until it drains, so one slow peer cannot take the whole pool. Accept errors follow the
//! shared policy ([`AcceptPolicy`]): out of descriptors, accepting pauses (a timeout
//! operation) instead of spinning.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use io_uring::{cqueue, opcode, squeue, types};
use slab::Slab;

use crate::accept::{AcceptAction, AcceptPolicy};
use crate::stream::Listener;
use crate::work::{Framer, Sampler, Work};
use kit::ring::BufRing;
use kit::ring::{Kind, Ring, Ud};
use std::sync::Arc;

/// Buffers in the pool of one loop.
const BUFFERS: u16 = 4096;
/// Bytes per buffer.
const BUF_LEN: usize = 4096;
/// The buffer group of the pool.
const BGID: u16 = 0;
/// Unsent buffers a connection may hold before its receive is paused.
const MAX_QUEUED: usize = 16;

/// A connection's socket: a descriptor, or a slot of the ring's registered file table
/// (the kernel then skips the descriptor lookup on every operation).
enum Handle {
    Fd(OwnedFd),
    Fixed(u32),
}

/// Builds an operation on a [`Handle`], whichever kind it is.
macro_rules! on {
    ($handle:expr, |$t:ident| $build:expr) => {
        match $handle {
            Handle::Fd(fd) => {
                let $t = types::Fd(fd.as_raw_fd());
                $build
            }
            Handle::Fixed(i) => {
                let $t = types::Fixed(*i);
                $build
            }
        }
    };
}

struct Conn {
    fd: Handle,
    gen: u32,
    /// A multishot receive is armed.
    recv_armed: bool,
    /// Its receive was cancelled because too much waits to be sent.
    paused: bool,
    /// The peer closed its side (or an error ended the receive): close once all is sent.
    read_closed: bool,
    /// A send is in flight (for the front of `queue`).
    sending: bool,
    /// Received buffers to echo: (buffer id, bytes already sent, length).
    queue: VecDeque<(u16, usize, usize)>,
    /// With `--work`: the connection's work and how far the front buffer is released.
    work: Option<Box<Worked>>,
}

/// A connection's per-message work in the io_uring model. Bytes of the front buffer up to
/// `released` may be sent; a message whose work is a wait holds the bytes that complete it
/// until a timeout operation completes, while the ring serves the others.
struct Worked {
    sampler: Sampler,
    framer: Framer,
    /// Offset in the front buffer up to which bytes are worked and may be sent.
    released: usize,
    /// A wait is in flight; when it completes, `released` becomes this. With it, when the
    /// wait began and what it asked (recorded as done when it completes).
    waiting: Option<(usize, std::time::Instant, std::time::Duration)>,
    /// The wait's duration, alive until the kernel is done with it.
    ts: Box<types::Timespec>,
}

/// The loop's state.
pub(super) struct StreamLoop {
    ring: Ring,
    bufs: BufRing,
    listener: Listener,
    conns: Slab<Conn>,
    gen: u32,
    policy: AcceptPolicy,
    pause: types::Timespec,
    wake_fd: RawFd,
    wake_buf: Box<[u8; 8]>,
    /// Connections whose receive ended for want of buffers (ENOBUFS): re-armed when some
    /// come back.
    starved: Vec<usize>,
    /// Sends still in flight for connections closed meanwhile: (their user data, buffer),
    /// so the buffer goes back only when the kernel is done with it.
    orphans: Vec<(u64, u16)>,
    /// Accepted sockets go straight into the registered file table.
    fixed: bool,
    /// `--work`: the work of every connection.
    work: Option<Arc<Work>>,
    /// Timespecs of waits whose connection closed before the ring submitted them: kept
    /// until the next submission has been made (the kernel reads them then).
    // Boxed on purpose: the kernel reads each box's address, which moving the box keeps.
    #[allow(clippy::vec_box)]
    retired: Vec<Box<types::Timespec>>,
}

impl StreamLoop {
    /// A loop on `listener`, woken for shutdown through the eventfd `wake_fd`.
    pub(super) fn new(
        ring: Ring,
        listener: Listener,
        wake_fd: RawFd,
        work: Option<Arc<Work>>,
    ) -> io::Result<StreamLoop> {
        let bufs = BufRing::new(ring.io(), BUFFERS, BUF_LEN, BGID)?;
        if let Listener::Tcp(l) = &listener {
            // Accepted sockets inherit TCP_NODELAY from the listener: no call per accept.
            // Without it, Nagle would hold small echoes back (latency, not correctness).
            socket2::SockRef::from(l).set_nodelay(true)?;
        }
        // A registered file table as large as the descriptor limit allows (the kernel caps
        // it there): where the kernel has it, accepts fill it directly.
        let table = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(65_536)
            .min(65_536) as u32;
        let fixed = ring.io().submitter().register_files_sparse(table).is_ok();
        Ok(StreamLoop {
            ring,
            bufs,
            listener,
            conns: Slab::new(),
            gen: 0,
            policy: AcceptPolicy::default(),
            pause: types::Timespec::new(),
            wake_fd,
            wake_buf: Box::new([0; 8]),
            starved: Vec::new(),
            orphans: Vec::new(),
            fixed,
            work,
            retired: Vec::new(),
        })
    }

    /// Serves until `stop` is set (and the eventfd written).
    pub(super) fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        self.arm_accept()?;
        self.arm_wake()?;
        let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
        while !stop.load(Ordering::Acquire) {
            done.clear();
            self.ring.wait(&mut done, None)?;
            self.retired.clear(); // submitted: the kernel has read them
            for &(ud, res, flags) in &done {
                self.complete(Ud::decode(ud), res, flags)?;
            }
            if !self.starved.is_empty() {
                for i in std::mem::take(&mut self.starved) {
                    self.arm_recv(i)?;
                }
            }
            self.bufs.publish();
        }
        // Every socket shut, every operation cancelled and completed: then the listener's
        // port is free when this returns.
        let open: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for i in open {
            self.close(i);
        }
        self.ring.drain();
        Ok(())
    }

    fn complete(&mut self, ud: Ud, res: i32, flags: u32) -> io::Result<()> {
        match ud.kind {
            Kind::Accept => self.accepted(res, flags),
            Kind::Recv => self.received(ud, res, flags),
            Kind::Send => self.sent(ud, res),
            Kind::Timer => self.arm_accept(), // the accept pause is over
            Kind::Work => self.waited(ud),
            Kind::Wake | Kind::Cancel => Ok(()), // the loop checks the stop flag
        }
    }

    fn accepted(&mut self, res: i32, flags: u32) -> io::Result<()> {
        if res >= 0 {
            self.policy.accepted();
            let fd = if self.fixed {
                Handle::Fixed(res as u32) // the slot the kernel chose in the file table
            } else {
                // SAFETY: a successful accept completion carries a new descriptor we now own.
                Handle::Fd(unsafe { OwnedFd::from_raw_fd(res) })
            };
            self.gen = self.gen.wrapping_add(1);
            let i = self.conns.insert(Conn {
                fd,
                gen: self.gen,
                recv_armed: false,
                paused: false,
                read_closed: false,
                sending: false,
                queue: VecDeque::new(),
                work: self.work.as_ref().map(|w| {
                    let (sampler, framer) = w.for_conn(crate::work::next_conn());
                    Box::new(Worked {
                        sampler,
                        framer,
                        released: 0,
                        waiting: None,
                        ts: Box::new(types::Timespec::new()),
                    })
                }),
            });
            self.arm_recv(i)?;
            if !cqueue::more(flags) {
                self.arm_accept()?;
            }
            return Ok(());
        }
        if cqueue::more(flags) {
            return Ok(()); // one connection failed; the multishot accept goes on
        }
        // The multishot accept has ended. Out of descriptors or memory: resume it after the
        // back-off, not at once (the pending connection would fail again: a spin). Any
        // other error: after the shortest pause, so an error that persists cannot spin.
        let pause = match self.policy.on_error(&io::Error::from_raw_os_error(-res)) {
            AcceptAction::Pause(d) => d,
            _ => crate::accept::BACKOFF_MIN,
        };
        self.pause = types::Timespec::from(pause);
        let timeout = opcode::Timeout::new(&self.pause)
            .build()
            .user_data(Ud::of(Kind::Timer, 0, 0));
        self.ring.push(&timeout)
    }

    fn received(&mut self, ud: Ud, res: i32, flags: u32) -> io::Result<()> {
        let bid = cqueue::buffer_select(flags);
        let live = self.conns.get(ud.index).is_some_and(|c| c.gen == ud.gen);
        if !live {
            // A closed connection's last completion: only its buffer matters.
            if let Some(bid) = bid {
                self.bufs.give_back(bid);
            }
            return Ok(());
        }
        let more = cqueue::more(flags);
        let conn = &mut self.conns[ud.index];
        if !more {
            conn.recv_armed = false;
        }
        match res {
            n if n > 0 => {
                let Some(bid) = bid else { return Ok(()) }; // data always comes in a buffer
                conn.queue.push_back((bid, 0, n as usize));
                if conn.queue.len() >= MAX_QUEUED && conn.recv_armed && !conn.paused {
                    // The peer is not reading: stop taking buffers for it until it drains.
                    conn.paused = true;
                    let cancel = opcode::AsyncCancel::new(Ud::of(Kind::Recv, ud.gen, ud.index))
                        .build()
                        .user_data(Ud::of(Kind::Cancel, 0, 0));
                    self.ring.push(&cancel)?;
                }
                self.send_next(ud.index)?;
                if !more && !self.conns[ud.index].paused {
                    self.arm_recv(ud.index)?; // the kernel ended the multishot: renew it
                }
            }
            0 => {
                // EOF: the peer shut its side; echo what is left, then close.
                conn.read_closed = true;
                self.close_if_done(ud.index);
            }
            e if -e == libc::ENOBUFS => {
                // The pool ran dry: re-armed once this iteration has given buffers back.
                if !more {
                    self.starved.push(ud.index);
                }
            }
            e if -e == libc::ECANCELED => {} // paused on purpose; re-armed when drained
            _ => self.close(ud.index),       // reset or another error: this connection only
        }
        Ok(())
    }

    fn sent(&mut self, ud: Ud, res: i32) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(ud.index).filter(|c| c.gen == ud.gen) else {
            // Closed meanwhile: the buffer this send read from can go back now.
            if let Some(k) = self.orphans.iter().position(|&(u, _)| u == ud.encode()) {
                let (_, bid) = self.orphans.swap_remove(k);
                self.bufs.give_back(bid);
            }
            return Ok(());
        };
        conn.sending = false;
        if res < 0 {
            // EPIPE or ECONNRESET: the peer is gone; only this connection ends.
            self.close(ud.index);
            return Ok(());
        }
        let front = conn.queue.front_mut().expect("a send was in flight for the front");
        front.1 += res as usize;
        if front.1 >= front.2 {
            let (bid, _, _) = conn.queue.pop_front().expect("front exists");
            self.bufs.give_back(bid);
            if let Some(w) = conn.work.as_deref_mut() {
                w.released = 0; // the next buffer starts unworked
            }
        } // else a short send (or the released part of a worked buffer): the rest goes next
        let conn = &mut self.conns[ud.index];
        if conn.paused && conn.queue.len() < MAX_QUEUED / 2 {
            conn.paused = false;
            if !conn.recv_armed && !conn.read_closed {
                self.arm_recv(ud.index)?;
            }
        }
        self.send_next(ud.index)?;
        self.close_if_done(ud.index);
        Ok(())
    }

    /// A message's wait is over: its bytes may go.
    fn waited(&mut self, ud: Ud) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(ud.index).filter(|c| c.gen == ud.gen) else {
            return Ok(()); // closed meanwhile
        };
        if let Some(w) = conn.work.as_deref_mut() {
            if let Some((to, started, asked)) = w.waiting.take() {
                crate::work::done::record_since(crate::work::Kind::Wait, asked, started);
                w.released = to;
            }
        }
        self.send_next(ud.index)?;
        self.close_if_done(ud.index);
        Ok(())
    }

    /// With `--work`: how far the front buffer (bytes `off..len`) may be sent, working the
    /// messages it completes (CPU and block on this thread; a wait submits a timeout and
    /// holds the rest). `None` while a wait is in flight.
    fn release(&mut self, i: usize, off: usize, len: usize) -> io::Result<Option<usize>> {
        let gen = self.conns[i].gen;
        let Some(w) = self.conns[i].work.as_deref_mut() else {
            return Ok(Some(len));
        };
        if w.waiting.is_some() {
            return Ok(None);
        }
        let mut at = w.released.max(off);
        while at < len {
            let (piece, completes) = w.framer.next_piece(len - at);
            if completes {
                let cost = w.sampler.draw();
                let inline = !cost.cpu.is_zero() || !cost.block.is_zero();
                let wait = cost.run_inline();
                if wait.is_zero() && inline {
                    // Worked on this thread: its echo goes now, before the next message's
                    // work (its completion sends the next); not after the whole buffer.
                    w.released = at + piece;
                    return Ok(Some(at + piece));
                }
                if !wait.is_zero() {
                    // The bytes that complete this message wait for the timeout; those
                    // before it (earlier messages, already worked) may go now.
                    *w.ts = types::Timespec::from(wait);
                    w.waiting = Some((at + piece, std::time::Instant::now(), wait));
                    w.released = at;
                    let timeout = opcode::Timeout::new(&*w.ts)
                        .build()
                        .user_data(Ud::of(Kind::Work, gen, i));
                    self.ring.push(&timeout)?;
                    return Ok((at > off).then_some(at));
                }
            }
            at += piece;
        }
        w.released = at;
        Ok(Some(at))
    }

    /// Starts the send of the front buffer, unless one is in flight.
    fn send_next(&mut self, i: usize) -> io::Result<()> {
        let conn = &mut self.conns[i];
        if conn.sending {
            return Ok(());
        }
        let Some(&(bid, off, len)) = conn.queue.front() else {
            return Ok(());
        };
        let Some(len) = self.release(i, off, len)? else {
            return Ok(()); // a wait holds the rest; its completion sends it
        };
        if len <= off {
            return Ok(());
        }
        let conn = &mut self.conns[i];
        let bytes = self.bufs.bytes(bid, off, len);
        let (ptr, len) = (bytes.as_ptr(), bytes.len() as u32);
        let send = on!(&conn.fd, |t| opcode::Send::new(t, ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build())
        .user_data(Ud::of(Kind::Send, conn.gen, i));
        conn.sending = true;
        self.ring.push(&send)
    }

    fn arm_recv(&mut self, i: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(i) else {
            return Ok(());
        };
        if conn.recv_armed || conn.read_closed {
            return Ok(());
        }
        conn.recv_armed = true;
        let recv =
            on!(&conn.fd, |t| opcode::RecvMulti::new(t, BGID).build()).user_data(Ud::of(Kind::Recv, conn.gen, i));
        self.ring.push(&recv)
    }

    fn arm_accept(&mut self) -> io::Result<()> {
        // Direct descriptors take no flags (the kernel refuses SOCK_CLOEXEC with EINVAL):
        // they are not in the descriptor table, so exec cannot inherit them anyway.
        let flags = if self.fixed { 0 } else { libc::SOCK_CLOEXEC };
        let accept = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
            .allocate_file_index(self.fixed)
            .flags(flags)
            .build()
            .user_data(Ud::of(Kind::Accept, 0, 0));
        self.ring.push(&accept)
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let read = opcode::Read::new(types::Fd(self.wake_fd), self.wake_buf.as_mut_ptr(), 8)
            .build()
            .flags(squeue::Flags::empty())
            .user_data(Ud::of(Kind::Wake, 0, 0));
        self.ring.push(&read)
    }

    fn close_if_done(&mut self, i: usize) {
        let c = &self.conns[i];
        if c.read_closed && c.queue.is_empty() && !c.sending {
            self.close(i);
        }
    }

    /// Closes connection `i`: its buffers go back, and a shutdown ends its armed receive
    /// (an io_uring request holds the socket open until it completes).
    fn close(&mut self, i: usize) {
        let mut conn = self.conns.remove(i);
        if let Some(w) = conn.work.take() {
            if w.waiting.is_some() {
                self.retired.push(w.ts);
            }
        }
        for (k, (bid, _, _)) in conn.queue.into_iter().enumerate() {
            if k == 0 && conn.sending {
                // The kernel may still read it: back when the send completes.
                self.orphans.push((Ud::of(Kind::Send, conn.gen, i), bid));
            } else {
                self.bufs.give_back(bid);
            }
        }
        match &conn.fd {
            // SAFETY: the descriptor is open (owned by `conn.fd`, closed when it drops below).
            Handle::Fd(fd) => unsafe {
                libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR);
            },
            Handle::Fixed(slot) => {
                // Its armed receive is cancelled (it holds the socket open), then the slot
                // is freed; the socket closes with its last operation. Not a shutdown
                // operation: the kernel runs that on a worker thread it starts for it.
                // Failing to queue these (the ring is going away) leaves the slot to the
                // ring's own teardown.
                let done = Ud::of(Kind::Cancel, 0, 0);
                if conn.recv_armed {
                    let recv = Ud::of(Kind::Recv, conn.gen, i);
                    let _ = self.ring.push(&opcode::AsyncCancel::new(recv).build().user_data(done));
                }
                let close = opcode::Close::new(types::Fixed(*slot)).build().user_data(done);
                let _ = self.ring.push(&close);
            }
        }
    }
}
