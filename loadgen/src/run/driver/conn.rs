//! One connection's framing: which message goes out next and how much of it is written,
//! which must come back next and whether its bytes match, and when each was sent. Also the
//! per-thread context the connections share (buffers, the schedule, the interval being
//! recorded), kept apart from them so both can be borrowed at once.

use std::io;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::engine::Io;
use super::inflight::InFlight;
use super::socket::{classify, Sock};
use crate::measure::payload;
use crate::measure::record::{Failure, Fault, Interval};
use crate::measure::schedule::Schedule;

/// Where a connection stands.
pub(super) enum Link {
    /// Closed; (re)connect once `retry_at` has passed.
    Down {
        /// Not before this.
        retry_at: Instant,
    },
    /// Connect in progress.
    Connecting {
        /// Since then.
        since: Instant,
    },
    /// Open.
    Up,
    /// Closed and not wanted now: a `--conn-rate` slot waiting for its next arrival.
    Idle,
}

/// Per-message context shared by a thread's connections (split from the connections so
/// both can be borrowed at once).
pub(super) struct Ctx {
    /// Bytes per message.
    pub(super) msg_size: usize,
    /// Messages in flight per connection.
    pub(super) depth: u64,
    /// When messages are due.
    pub(super) schedule: Schedule,
    /// Open loop (by messages or by connections): raw service times are recorded too.
    pub(super) open_loop: bool,
    /// The common start of the load.
    pub(super) start: Instant,
    /// End of warmup, ns after the start.
    pub(super) warm_ns: u64,
    /// End of the measured window, ns after the start.
    pub(super) end_ns: u64,
    /// The load has begun.
    pub(super) sending: bool,
    /// The interval being recorded.
    pub(super) cur: Interval,
    /// Time from a connection's start (intended start with `--conn-rate`) to its first
    /// echoed byte, ns; window only.
    pub(super) first_byte: Histogram<u64>,
    /// The thread's read buffer.
    pub(super) rbuf: Box<[u8]>,
    /// The thread's write buffer.
    pub(super) wbuf: Box<[u8]>,
    /// The thread's I/O engine: every socket's bytes go through it.
    pub(super) io: Io,
    /// Open loop: the times (ns after the start) of the thread's first
    /// [`SEND_SAMPLE`] sends in the window, for the arrivals check; preallocated.
    pub(super) send_times: Vec<u64>,
    /// `--rx-timestamps on`: reads take the kernel's receive stamp.
    pub(super) rx_stamps: bool,
    /// Streams or datagrams: decided once, from the target's address.
    pub(super) framing: Framing,
}

/// How the thread's connections carry messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Bytes on a stream (TCP, Unix): messages follow each other, framed by their size.
    Stream,
    /// One datagram per message (UDP), each with its header (see `wire`).
    Datagram,
    /// A connection that keeps message boundaries (Unix SOCK_SEQPACKET): bytes read as on
    /// a stream, but each write carries exactly one message, so each is one packet.
    Packet,
}

/// Sends per thread whose times the arrivals check keeps.
pub(super) const SEND_SAMPLE: usize = 20_000;

impl Ctx {
    #[inline]
    pub(super) fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Whether `t` (ns after the start) lies in the measured window.
    #[inline]
    pub(super) fn in_window(&self, t: u64) -> bool {
        t >= self.warm_ns && t < self.end_ns
    }

    /// A read at `now` (ns after the start) of bytes the kernel stamped at `stamp`
    /// (realtime ns): the reader's delay, inside the window.
    #[inline]
    pub(super) fn note_rx(&mut self, stamp: Option<u64>, now: u64) {
        if let Some(at) = stamp {
            if self.in_window(now) {
                let delay = crate::os::rxstamp::realtime_ns().saturating_sub(at);
                self.cur.rx_delay.saturating_record(delay);
            }
        }
    }

    /// Open loop, inside the window: a message intended at `intended`, sendable at
    /// `sendable` (its slot under --depth free), went out at `now`.
    #[inline]
    pub(super) fn record_send(&mut self, intended: u64, sendable: u64, now: u64) {
        self.cur.record_lag(intended, sendable, now);
        if self.send_times.len() < self.send_times.capacity() {
            self.send_times.push(now);
        }
    }
}

/// One connection of the thread: its socket, where it stands, and its framing state.
pub(super) struct Conn {
    /// Its id over the run (the payload's key, the schedule's index).
    pub(super) id: u32,
    /// Its index in the thread's table: its token with the engine.
    pub(super) token: usize,
    pub(super) sock: Option<Sock>,
    pub(super) link: Link,
    /// Consecutive failed connects (for the back-off).
    pub(super) failures: u32,
    /// Its first connect attempt has ended (opened or failed): the connection phase waits
    /// for this on every connection, and first attempts go before any retry.
    pub(super) tried: bool,
    /// Next message to send, and bytes of it already written.
    pub(super) send_seq: u64,
    pub(super) send_off: usize,
    /// Open loop: messages whose intended time has come (closed loop: unlimited).
    pub(super) due: u64,
    /// Next message to receive, and bytes of it already received.
    pub(super) recv_seq: u64,
    pub(super) recv_off: usize,
    /// The message being received had a wrong byte.
    pub(super) recv_bad: bool,
    /// Actual send time (ns) of each message in flight, by `seq % depth`.
    pub(super) sent_at: Box<[u64]>,
    /// When each slot under `--depth` was last freed (its reply completed), by
    /// `seq % depth`: the message after it may go from then on.
    pub(super) freed_at: Box<[u64]>,
    /// `--conn-rate`: when this slot became idle (free for the next arrival), ns.
    pub(super) idle_since: u64,
    /// Messages completed inside the window.
    pub(super) msgs: u64,
    /// The server's FIN (or an error) was signalled: read to EOF, never stop at a short read.
    pub(super) read_closed: bool,
    /// First sequence number of the current connection's life, and the one past its last
    /// (`u64::MAX`: no churn, the connection lives for the run).
    pub(super) life_start: u64,
    pub(super) life_end: u64,
    /// `--conn-rate`: this connection's intended start, ns after the start.
    pub(super) intended_ns: Option<u64>,
    /// When its connect began, ns after the start (for the time to first byte).
    pub(super) opened_ns: u64,
    /// No byte has come back on this connection yet.
    pub(super) awaiting_first_byte: bool,
    /// UDP: the datagrams in flight (`None` on a stream).
    pub(super) in_flight: Option<Box<InFlight>>,
}

impl Conn {
    /// Connection `id` (the thread's `token`-th), closed and due to connect from `now`; `depth` messages in flight,
    /// every message due at once in closed loop; over UDP with `window`.
    pub(super) fn new(
        (id, token): (u32, usize),
        depth: usize,
        closed_loop: bool,
        now: Instant,
        in_flight: Option<InFlight>,
    ) -> Conn {
        Conn {
            id,
            token,
            sock: None,
            link: Link::Down { retry_at: now },
            failures: 0,
            tried: false,
            send_seq: 0,
            send_off: 0,
            due: if closed_loop { u64::MAX } else { 0 },
            recv_seq: 0,
            recv_off: 0,
            recv_bad: false,
            sent_at: vec![0; depth].into_boxed_slice(),
            freed_at: vec![0; depth].into_boxed_slice(),
            idle_since: 0,
            msgs: 0,
            read_closed: false,
            life_start: 0,
            life_end: u64::MAX,
            intended_ns: None,
            opened_ns: 0,
            awaiting_first_byte: false,
            in_flight: in_flight.map(Box::new),
        }
    }

    /// Starts a new life on a fresh connection: at most `lifetime` round trips from the
    /// next sequence number on.
    pub(super) fn begin_life(&mut self, lifetime: u64, opened_ns: u64) {
        self.life_start = self.send_seq;
        self.life_end = self.send_seq.saturating_add(lifetime);
        self.opened_ns = opened_ns;
        self.awaiting_first_byte = true;
    }

    /// Every round trip of this life is done: time to close it.
    #[inline]
    pub(super) fn life_over(&self) -> bool {
        self.recv_seq >= self.life_end
    }

    /// Messages whose first byte has been written.
    #[inline]
    fn started(&self) -> u64 {
        self.send_seq + u64::from(self.send_off > 0)
    }

    /// Writes as many messages as the window and the schedule allow, until the socket
    /// would block.
    pub(super) fn send(&mut self, ctx: &mut Ctx) -> Result<(), Failure> {
        if ctx.framing == Framing::Datagram {
            return self.send_datagrams(ctx);
        }
        let size = ctx.msg_size;
        let Some(sock) = self.sock.as_mut() else {
            return Ok(());
        };
        loop {
            let limit = (self.recv_seq + ctx.depth).min(self.due).min(self.life_end);
            if self.send_seq >= limit {
                return Ok(());
            }
            // One packet, one message: a SEQPACKET write is whole or not at all.
            let limit = if ctx.framing == Framing::Packet {
                limit.min(self.send_seq + 1)
            } else {
                limit
            };
            // Lay out the bytes still to send, message after message, in the write buffer.
            let (mut len, mut seq, mut off) = (0, self.send_seq, self.send_off);
            while seq < limit && len < ctx.wbuf.len() {
                let take = (size - off).min(ctx.wbuf.len() - len);
                payload::fill(payload::key(self.id, seq), off, &mut ctx.wbuf[len..len + take]);
                len += take;
                off += take;
                if off == size {
                    seq += 1;
                    off = 0;
                }
            }
            let now = ctx.now_ns();
            let n = match ctx.io.send(self.token, sock, &ctx.wbuf[..len]) {
                Ok(0) => return Err(Fault::Other.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()), // send buffer full: wait for WRITABLE
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,     // EINTR: retry
                Err(e) => return Err(classify(&e)),
            };
            // Account the written bytes; a message is sent from its first byte on.
            let mut left = n;
            while left > 0 {
                if self.send_off == 0 {
                    self.sent_at[(self.send_seq % ctx.depth) as usize] = now;
                    if ctx.in_window(now) {
                        ctx.cur.counters.sent += 1;
                        if let Some(intended) = ctx.schedule.intended_ns(self.id, self.send_seq) {
                            // Sendable once due and its slot under --depth was free.
                            let freed = if self.send_seq >= self.life_start + ctx.depth {
                                self.freed_at[(self.send_seq % ctx.depth) as usize]
                            } else {
                                self.opened_ns
                            };
                            ctx.record_send(intended, intended.max(freed), now);
                        }
                    }
                }
                let take = (size - self.send_off).min(left);
                self.send_off += take;
                left -= take;
                if self.send_off == size {
                    self.send_seq += 1;
                    self.send_off = 0;
                }
            }
            if n < len {
                return Ok(()); // short write: the send buffer is full; WRITABLE comes later
            }
        }
    }

    /// Reads and checks everything available.
    pub(super) fn receive(&mut self, ctx: &mut Ctx) -> Result<(), Failure> {
        if ctx.framing == Framing::Datagram {
            self.note_first_byte(ctx);
            return self.receive_datagrams(ctx);
        }
        loop {
            let Some(sock) = self.sock.as_mut() else {
                return Ok(());
            };
            let (n, stamp) = match ctx.io.recv(self.token, sock, &mut ctx.rbuf, ctx.rx_stamps) {
                Ok((0, _)) => return Err(Fault::Reset.into()), // the server closed the connection
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(classify(&e)),
            };
            let now = self.note_first_byte(ctx);
            ctx.note_rx(stamp, now);
            let mut i = 0;
            while i < n {
                // Only bytes that were sent can come back.
                let allowed = match self.recv_seq.cmp(&self.send_seq) {
                    std::cmp::Ordering::Less => ctx.msg_size - self.recv_off,
                    std::cmp::Ordering::Equal => self.send_off.saturating_sub(self.recv_off),
                    std::cmp::Ordering::Greater => 0,
                };
                let take = allowed.min(n - i);
                if take == 0 {
                    return Err(Fault::Other.into()); // more bytes back than were sent
                }
                if !payload::verify(
                    payload::key(self.id, self.recv_seq),
                    self.recv_off,
                    &ctx.rbuf[i..i + take],
                ) {
                    self.recv_bad = true;
                }
                self.recv_off += take;
                i += take;
                if self.recv_off == ctx.msg_size {
                    self.complete(now, ctx);
                }
            }
            // A read shorter than the buffer emptied the socket; with edge-triggered
            // readiness new data raises a new event, so skip the read that would say EAGAIN
            // (unless the server's FIN came with it: that raises no further event).
            if n < ctx.rbuf.len() && !self.read_closed {
                return Ok(());
            }
        }
    }

    /// Records the time to the first byte back, if this is it; returns the time now.
    #[inline]
    fn note_first_byte(&mut self, ctx: &mut Ctx) -> u64 {
        let now = ctx.now_ns();
        if self.awaiting_first_byte {
            self.awaiting_first_byte = false;
            if ctx.in_window(now) {
                let from = self.intended_ns.unwrap_or(self.opened_ns);
                ctx.first_byte.saturating_record(now.saturating_sub(from));
            }
        }
        now
    }

    #[inline]
    fn complete(&mut self, now: u64, ctx: &mut Ctx) {
        let sent = self.sent_at[(self.recv_seq % ctx.depth) as usize];
        if self.recv_bad {
            ctx.cur.counters.mismatches += 1;
        } else {
            self.record_round_trip(self.recv_seq, sent, now, ctx);
        }
        self.freed_at[(self.recv_seq % ctx.depth) as usize] = now;
        self.recv_seq += 1;
        self.recv_off = 0;
        self.recv_bad = false;
    }

    /// Records round trip `seq`, sent at `sent` and verified back at `now`, when `now`
    /// lies in the window.
    #[inline]
    pub(super) fn record_round_trip(&mut self, seq: u64, sent: u64, now: u64, ctx: &mut Ctx) {
        if !ctx.in_window(now) {
            return;
        }
        // Open loop: from the intended send time; `--conn-rate`: a connection's first
        // round trip from its intended start (connect and any wait included).
        let intended = ctx
            .schedule
            .intended_ns(self.id, seq)
            .or(self.intended_ns.filter(|_| seq == self.life_start));
        ctx.cur
            .latency
            .saturating_record(now.saturating_sub(intended.unwrap_or(sent)));
        if ctx.open_loop {
            ctx.cur.raw.saturating_record(now.saturating_sub(sent));
        }
        ctx.cur.counters.msgs += 1;
        ctx.cur.counters.bytes += ctx.msg_size as u64;
        self.msgs += 1;
    }

    /// The oldest message in flight has waited longer than `timeout_ns`.
    /// (Not over UDP, where a missing reply is a loss, not a failure.)
    pub(super) fn timed_out(&self, now_ns: u64, timeout_ns: u64, ctx: &Ctx) -> bool {
        ctx.framing != Framing::Datagram
            && self.recv_seq < self.started()
            && now_ns.saturating_sub(self.sent_at[(self.recv_seq % ctx.depth) as usize]) > timeout_ns
    }
}
