//! Serving one nonblocking stream connection, for the readiness models (mio over epoll,
//! poll over poll(2)): read into the loop's scratch buffer and write straight back; only
//! what a short write leaves over is kept, and while it is the connection is not read
//! from, so a peer that stops reading stops being read and memory per connection stays
//! bounded (at most 64 KiB). With `--work`, each message's work runs or holds its bytes
//! until its wait is over ([`drive_worked`]).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use crate::stream::Stream;
use crate::work::{Framer, Kind, Sampler, Work};

/// Read/write rounds per connection per wake-up before it yields to the others.
pub(crate) const MAX_ROUNDS: usize = 16;

pub(crate) struct Conn {
    pub(crate) stream: Stream,
    /// Bytes read but not yet written back (only after a short write).
    pub(crate) pending: Vec<u8>,
    /// How much of `pending` has been written.
    pub(crate) written: usize,
    /// On the ready list (budget ran out with work left).
    pub(crate) queued: bool,
    /// The peer's FIN (or an error) has been signalled: read until EOF, never stop at a
    /// short read.
    pub(crate) read_closed: bool,
    /// With `--work`: the connection's work, and how far its bytes may go out.
    pub(crate) work: Option<Box<Worked>>,
}

/// A connection's per-message work in the mio model. With work, every byte read goes
/// through `pending`; `pending[..released]` may be written; a message whose work is a wait
/// holds the bytes that complete it (and everything after) until its timer fires, while
/// the loop serves the other connections. Nothing more is read while bytes are held.
pub(crate) struct Worked {
    pub(crate) sampler: Sampler,
    pub(crate) framer: Framer,
    /// Bytes of `pending` that may be written.
    pub(crate) released: usize,
    /// A wait in progress: until then, the bytes up to the second field stay held; the
    /// third is when it began (what it took is recorded when it ends).
    pub(crate) hold: Option<(Instant, usize, Instant)>,
    /// EOF was read: close once everything is written.
    pub(crate) eof: bool,
}

/// What a connection needs after being served.
pub(crate) enum After {
    /// It would block: wait for the next readiness edge.
    Wait,
    /// Budget exhausted with work left: serve again after the others.
    MoreWork,
    /// EOF or error: close it.
    Close,
    /// A message's wait holds its bytes until then (`--work`).
    Held(Instant),
}

impl Conn {
    /// A connection just accepted, with its share of `work` when there is work.
    pub(crate) fn new(stream: Stream, work: Option<&Arc<Work>>) -> Conn {
        let work = work.map(|w| {
            let (sampler, framer) = w.for_conn(crate::work::next_conn());
            Box::new(Worked {
                sampler,
                framer,
                released: 0,
                hold: None,
                eof: false,
            })
        });
        Conn {
            stream,
            pending: Vec::new(),
            written: 0,
            queued: false,
            read_closed: false,
            work,
        }
    }

    /// Whether a short write left bytes to send: the connection waits to be writable.
    pub(crate) fn has_output(&self) -> bool {
        self.written < self.pending.len()
    }

    /// Whether a `--work` wait holds its bytes: nothing to read or write until it ends.
    pub(crate) fn is_held(&self) -> bool {
        self.work.as_ref().is_some_and(|w| w.hold.is_some())
    }
}

/// Echoes on one connection until it would block, closes, or uses up its budget.
pub(crate) fn drive(conn: &mut Conn, scratch: &mut [u8]) -> After {
    for _ in 0..MAX_ROUNDS {
        // First write back what a short write left over; read nothing new until it is gone.
        while conn.written < conn.pending.len() {
            match conn.stream.write(&conn.pending[conn.written..]) {
                Ok(0) => return After::Close,
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Wait, // peer's window full
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,          // EINTR: retry
                Err(_) => return After::Close,
            }
        }
        conn.pending.clear();
        conn.written = 0;
        let n = match conn.stream.read(scratch) {
            Ok(0) => return After::Close, // EOF with nothing pending: all echoed; close sends FIN
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return After::Close,
        };
        let mut sent = 0;
        while sent < n {
            match conn.stream.write(&scratch[sent..n]) {
                Ok(0) => return After::Close,
                Ok(w) => sent += w,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Short write: keep the rest and wait for WRITABLE (bounded by scratch size).
                    conn.pending.extend_from_slice(&scratch[sent..n]);
                    return After::Wait;
                }
                Err(_) => return After::Close,
            }
        }
        // A read shorter than the buffer emptied the socket: new data raises a new edge,
        // so skip the read that would only say EAGAIN (one syscall less per message).
        // Not once the peer has closed: its FIN raised no edge of its own after this read.
        if n < scratch.len() && !conn.read_closed {
            return After::Wait;
        }
    }
    After::MoreWork
}

/// [`drive`] with per-message work: reads append to `pending`; each message's CPU and
/// block run here (on the loop's thread, holding up every connection of the loop); a wait
/// holds the message's bytes and returns [`After::Held`], and the loop serves the others
/// until the wait is over.
pub(crate) fn drive_worked(conn: &mut Conn, scratch: &mut [u8]) -> After {
    for _ in 0..MAX_ROUNDS {
        let Some(w) = conn.work.as_deref_mut() else {
            return After::Close;
        };
        if let Some((until, to, started)) = w.hold {
            let now = Instant::now();
            if now < until {
                return After::Held(until);
            }
            crate::work::done::record(Kind::Wait, until - started, now - started);
            w.hold = None;
            w.released = to;
        }
        // The bytes not yet released: their messages' work, until a wait holds the rest.
        let mut at = w.released;
        while at < conn.pending.len() {
            let (len, completes) = w.framer.next_piece(conn.pending.len() - at);
            if completes {
                let cost = w.sampler.draw();
                let inline = !cost.cpu.is_zero() || !cost.block.is_zero();
                let wait = cost.run_inline();
                if !wait.is_zero() {
                    let now = Instant::now();
                    w.hold = Some((now + wait, at + len, now));
                    break;
                }
                if inline {
                    // Worked on this thread: its echo goes out before the next message's
                    // work, not after the whole read.
                    at += len;
                    break;
                }
            }
            at += len;
        }
        w.released = at;
        while conn.written < w.released {
            match conn.stream.write(&conn.pending[conn.written..w.released]) {
                Ok(0) => return After::Close,
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Wait, // peer's window full
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,          // EINTR: retry
                Err(_) => return After::Close,
            }
        }
        if let Some((until, ..)) = w.hold {
            return After::Held(until); // read nothing more while bytes are held
        }
        if w.released < conn.pending.len() {
            continue; // more messages read and not yet worked: the next round works them
        }
        conn.pending.clear();
        conn.written = 0;
        w.released = 0;
        if w.eof {
            return After::Close; // everything worked and written back: close sends FIN
        }
        let n = match conn.stream.read(scratch) {
            Ok(0) => {
                w.eof = true;
                return After::Close;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return After::Close,
        };
        conn.pending.extend_from_slice(&scratch[..n]);
    }
    After::MoreWork
}

/// A readiness loop's connections and what it owes them: the ready list (connections whose
/// budget ran out with work left) and the timers of `--work` waits that hold bytes.
pub(crate) struct Conns {
    /// The open connections, by key.
    pub(crate) slab: slab::Slab<Conn>,
    ready: std::collections::VecDeque<usize>,
    /// When held connections may go on (a min-heap of deadlines and keys; a key whose
    /// connection closed or moved on meanwhile is skipped).
    timers: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, usize)>>,
    scratch: Box<[u8]>,
    work: Option<Arc<Work>>,
}

impl Conns {
    /// No connections yet; each accepted one gets its share of `work`.
    pub(crate) fn new(work: Option<Arc<Work>>) -> Conns {
        Conns {
            slab: slab::Slab::new(),
            ready: std::collections::VecDeque::new(),
            timers: std::collections::BinaryHeap::new(),
            scratch: vec![0; crate::running::BUF_SIZE].into_boxed_slice(),
            work,
        }
    }

    /// Whether connections wait to be served again at once: the loop must not sleep.
    pub(crate) fn owed_now(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The end of the next `--work` wait.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|std::cmp::Reverse((t, _))| *t)
    }

    /// Serves connection `key` until it would block, closes or spends its budget; returns
    /// the connection when it closed, for the loop to forget (deregister) it.
    pub(crate) fn serve(&mut self, key: usize) -> Option<Conn> {
        let conn = self.slab.get_mut(key)?; // closed meanwhile: a stale event
        let after = if conn.work.is_some() {
            drive_worked(conn, &mut self.scratch)
        } else {
            drive(conn, &mut self.scratch)
        };
        match after {
            After::Wait => None,
            After::Held(until) => {
                self.timers.push(std::cmp::Reverse((until, key)));
                None
            }
            After::MoreWork => {
                if !conn.queued {
                    conn.queued = true;
                    self.ready.push_back(key);
                }
                None
            }
            After::Close => Some(self.slab.remove(key)),
        }
    }

    /// Serves what is owed: connections whose wait is over, then the ready list (once
    /// round). `closed` gets every connection that closed meanwhile.
    pub(crate) fn serve_owed(&mut self, mut closed: impl FnMut(Conn)) {
        let now = Instant::now();
        while let Some(&std::cmp::Reverse((t, key))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            self.serve(key).map(&mut closed);
        }
        for _ in 0..self.ready.len() {
            let Some(key) = self.ready.pop_front() else { break };
            if let Some(conn) = self.slab.get_mut(key) {
                conn.queued = false;
                self.serve(key).map(&mut closed);
            }
        }
    }

    /// Accepts every pending connection of `listener` (nonblocking), `register`ing each by
    /// its key before it is kept; returns when to try again if descriptors ran out.
    pub(crate) fn accept_all(
        &mut self,
        listener: &crate::stream::Listener,
        policy: &mut crate::accept::AcceptPolicy,
        mut register: impl FnMut(usize, &Stream) -> io::Result<()>,
    ) -> io::Result<Option<Instant>> {
        use crate::accept::AcceptAction;
        loop {
            match listener.accept() {
                Ok(stream) => {
                    policy.accepted();
                    if stream.set_nonblocking(true).is_err() {
                        continue; // cannot serve it without blocking the loop: drop it
                    }
                    let entry = self.slab.vacant_entry();
                    register(entry.key(), &stream)?;
                    entry.insert(Conn::new(stream, self.work.as_ref()));
                }
                Err(e) => match policy.on_error(&e) {
                    AcceptAction::Drained => return Ok(None),
                    AcceptAction::Retry | AcceptAction::Skip => continue,
                    // Out of descriptors: the listener stays readable but accepting now
                    // would fail again; the loop retries after a back-off.
                    AcceptAction::Pause(d) => return Ok(Some(Instant::now() + d)),
                },
            }
        }
    }
}
