//! UDP framing: every datagram carries a header (sequence number, send time, connection
//! id) and the message's payload pattern after it, so each reply is matched to its
//! datagram on its own, whatever order replies come in, and checked byte for byte.
//!
//! A connection keeps a window of datagrams in flight. A reply resolves its datagram
//! (latency recorded; `reordered` when a later datagram was answered first); a datagram
//! unanswered after `--timeout` is counted `lost` and its slot freed, so a loss never stalls
//! the connection for longer than the timeout. A reply to a datagram already answered is a
//! `duplicate`; one to a datagram already counted lost is `late`. Closed loop keeps
//! `--depth` datagrams in flight; open loop sends on schedule, held back only when the
//! window is full of unresolved datagrams (sized to hold a timeout's worth of sends).

use std::collections::VecDeque;
use std::io;

use super::conn::{Conn, Ctx};
use super::socket::classify;
use crate::payload;
use crate::record::Failure;

/// Bytes of the header: sequence number (8), send time in ns since the run's start (8),
/// connection id (4), little-endian. `--msg-size` must hold it.
pub(crate) const HEADER: usize = 20;
/// The sequence number of a connect probe (header only).
const PROBE: u64 = u64::MAX;
/// Most slots of one connection's window.
const MAX_WINDOW: usize = 65_536;
/// Lost sequence numbers remembered per connection, to tell a late reply from a duplicate.
const LOST_MEMORY: usize = 1024;
/// Most datagrams one connection keeps waiting outside its window (see [`Window::room`]).
const MAX_PARKED: usize = 4096;

/// Writes a header into `out[..HEADER]`.
#[inline]
pub(super) fn write_header(out: &mut [u8], seq: u64, sent_ns: u64, id: u32) {
    out[..8].copy_from_slice(&seq.to_le_bytes());
    out[8..16].copy_from_slice(&sent_ns.to_le_bytes());
    out[16..20].copy_from_slice(&id.to_le_bytes());
}

/// Reads (sequence number, send time, connection id) from a datagram, if it holds a header.
#[inline]
pub(super) fn read_header(d: &[u8]) -> Option<(u64, u64, u32)> {
    let d = d.get(..HEADER)?;
    let u64_at = |i: usize| u64::from_le_bytes(d[i..i + 8].try_into().expect("8 bytes"));
    Some((
        u64_at(0),
        u64_at(8),
        u32::from_le_bytes(d[16..20].try_into().expect("4 bytes")),
    ))
}

/// The connect probe of connection `id`: a header with the probe's sequence number.
pub(super) fn probe(id: u32, now_ns: u64) -> [u8; HEADER] {
    let mut p = [0u8; HEADER];
    write_header(&mut p, PROBE, now_ns, id);
    p
}

/// Whether `d` is the echo of connection `id`'s probe.
pub(super) fn is_probe_echo(d: &[u8], id: u32) -> bool {
    d.len() == HEADER && matches!(read_header(d), Some((PROBE, _, i)) if i == id)
}

/// Window slots for one connection: closed loop twice the depth; open loop a timeout's
/// worth of this connection's sends on top (a loss then holds nothing back).
pub(super) fn window_slots(depth: usize, per_conn_rate: Option<f64>, timeout_s: f64) -> usize {
    let extra = per_conn_rate.map_or(0.0, |r| (r * timeout_s).ceil());
    (2 * depth + extra.min(MAX_WINDOW as f64) as usize).clamp(16, MAX_WINDOW)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Sent, no reply yet.
    InFlight,
    /// Answered, or given up as lost (then in the lost memory).
    Resolved,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u64,
    sent_ns: u64,
    /// When it was resolved (the next datagram in this slot could go from then on).
    resolved_ns: u64,
    state: State,
}

/// One connection's datagrams in flight.
#[derive(Debug)]
pub(super) struct Window {
    slots: Box<[Slot]>,
    /// Every sequence number below this one is resolved.
    tail: u64,
    in_flight: u64,
    /// Closed loop: `--depth`; open loop: no limit but the window.
    depth: u64,
    /// Highest sequence number answered so far (`None`: none yet).
    highest: Option<u64>,
    lost: VecDeque<u64>,
    /// Datagrams still waiting for a reply whose slot the window needed: (seq, sent).
    parked: Vec<(u64, u64)>,
}

/// What a reply turned out to be.
enum Reply {
    /// The first reply to a datagram in flight: (send time, reordered).
    Fresh(u64, bool),
    Duplicate,
    Late,
}

impl Window {
    /// A window of `slots` datagrams, at most `depth` in flight (`u64::MAX`: no limit).
    pub(super) fn new(slots: usize, depth: u64) -> Window {
        Window {
            slots: vec![
                Slot {
                    seq: 0,
                    sent_ns: 0,
                    resolved_ns: 0,
                    state: State::Resolved,
                };
                slots
            ]
            .into_boxed_slice(),
            tail: 0,
            in_flight: 0,
            depth,
            highest: None,
            lost: VecDeque::new(),
            parked: Vec::new(),
        }
    }

    #[inline]
    fn slot(&mut self, seq: u64) -> &mut Slot {
        let n = self.slots.len() as u64;
        &mut self.slots[(seq % n) as usize]
    }

    /// Every datagram below this sequence number is resolved.
    #[cfg(test)]
    fn tail(&self) -> u64 {
        self.tail
    }

    /// Datagrams without a reply (and not yet lost).
    pub(super) fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Whether datagram `seq` may go now; if so, since when its slot was free (0: not
    /// known). A datagram still waiting in the slot (one that will be lost, or is very
    /// slow) is parked outside the window rather than holding the connection back.
    #[inline]
    fn room(&mut self, seq: u64) -> Option<u64> {
        if self.in_flight >= self.depth {
            return None;
        }
        let slot = *self.slot(seq);
        if slot.state == State::Resolved {
            return Some(slot.resolved_ns);
        }
        if self.parked.len() >= MAX_PARKED {
            return None; // thousands unanswered: let the timeout free them
        }
        self.parked.push((slot.seq, slot.sent_ns));
        self.slot(seq).state = State::Resolved;
        Some(0)
    }

    /// The lowest sequence number not resolved: every datagram below it is answered or lost.
    fn unresolved_from(&self) -> u64 {
        self.parked.iter().map(|p| p.0).fold(self.tail, u64::min)
    }

    /// Advances the tail past resolved datagrams.
    fn advance(&mut self, sent_up_to: u64) {
        while self.tail < sent_up_to {
            let tail = self.tail;
            let slot = *self.slot(tail);
            if slot.seq == tail && slot.state == State::InFlight {
                return;
            }
            self.tail += 1;
        }
    }

    fn classify(&mut self, seq: u64) -> Reply {
        let highest = self.highest;
        let slot = self.slot(seq);
        if slot.seq == seq && slot.state == State::InFlight {
            let sent = slot.sent_ns;
            return Reply::Fresh(sent, highest.is_some_and(|h| seq < h));
        }
        if let Some(i) = self.parked.iter().position(|p| p.0 == seq) {
            let (_, sent) = self.parked.swap_remove(i);
            return Reply::Fresh(sent, highest.is_some_and(|h| seq < h));
        }
        match self.lost.iter().position(|&l| l == seq) {
            Some(i) => {
                self.lost.remove(i);
                Reply::Late
            }
            None => Reply::Duplicate,
        }
    }

    /// Forgets everything in flight (the socket is closed): the next datagram is `next`.
    pub(super) fn reset(&mut self, next: u64) {
        for s in self.slots.iter_mut() {
            s.state = State::Resolved;
        }
        self.tail = next;
        self.in_flight = 0;
        self.lost.clear();
        self.parked.clear();
    }

    /// Counts datagram `seq` as lost (remembered, to tell a late reply from a duplicate).
    fn lose(&mut self, seq: u64) {
        self.in_flight -= 1;
        if self.lost.len() == LOST_MEMORY {
            self.lost.pop_front();
        }
        self.lost.push_back(seq);
    }
}

impl Conn {
    /// Sends every datagram the schedule and the window allow, until the socket would block.
    pub(super) fn send_datagrams(&mut self, ctx: &mut Ctx) -> Result<(), Failure> {
        let (Some(sock), Some(w)) = (self.sock.as_mut(), self.window.as_mut()) else {
            return Ok(());
        };
        let size = ctx.msg_size;
        loop {
            let seq = self.send_seq;
            if seq >= self.due || seq >= self.life_end {
                return Ok(());
            }
            let Some(freed) = w.room(seq) else {
                return Ok(()); // window full: a reply or a loss frees a slot
            };
            let now = ctx.now_ns();
            write_header(&mut ctx.wbuf[..HEADER], seq, now, self.id);
            payload::fill(payload::key(self.id, seq), HEADER, &mut ctx.wbuf[HEADER..size]);
            let dropped = match io::Write::write(sock, &ctx.wbuf[..size]) {
                Ok(_) => None,
                // Send buffer full: WRITABLE comes when there is room.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry
                // ECONNREFUSED: an ICMP port unreachable came back, nobody serves the port.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Err(classify(&e)),
                // The kernel dropped this one datagram (a firewall rule answers EPERM, a
                // full device queue ENOBUFS): lost on the way out, counted below.
                Err(e) => Some(e.raw_os_error()),
            };
            if let Some(errno) = dropped {
                if ctx.in_window(now) {
                    ctx.cur.counters.sent += 1;
                    ctx.cur.counters.lost += 1;
                    if let Some(errno) = errno {
                        ctx.cur.counters.errnos.count(errno);
                    }
                }
                self.send_seq += 1;
                // Not in a loop: a send that keeps failing is tried again at the next
                // event or scan, not spun on.
                return Ok(());
            }
            *w.slot(seq) = Slot {
                seq,
                sent_ns: now,
                resolved_ns: 0,
                state: State::InFlight,
            };
            w.in_flight += 1;
            if ctx.in_window(now) {
                ctx.cur.counters.sent += 1;
                if let Some(intended) = ctx.schedule.intended_ns(self.id, seq) {
                    // Sendable once due and its window slot was free.
                    let freed = if freed == 0 { self.opened_ns } else { freed };
                    ctx.record_send(intended, intended.max(freed), now);
                }
            }
            self.send_seq += 1;
        }
    }

    /// Reads and checks every datagram waiting on the socket.
    pub(super) fn receive_datagrams(&mut self, ctx: &mut Ctx) -> Result<(), Failure> {
        loop {
            let (Some(sock), Some(w)) = (self.sock.as_mut(), self.window.as_mut()) else {
                return Ok(());
            };
            let read = if ctx.rx_stamps {
                sock.recv_stamped(&mut ctx.rbuf, None)
            } else {
                io::Read::read(sock, &mut ctx.rbuf).map(|n| (n, None))
            };
            let (n, stamp) = match read {
                Ok(got) => got,
                // Drained: the next datagram raises a new READABLE edge.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry
                // ECONNREFUSED: the server's port closed (ICMP port unreachable).
                Err(e) => return Err(classify(&e)),
            };
            let now = ctx.now_ns();
            ctx.note_rx(stamp, now);
            let d = &ctx.rbuf[..n];
            let header = read_header(d);
            let seq = match header {
                Some((PROBE, _, _)) => continue, // a connect probe's echo, arriving late
                Some((seq, _, id)) if id == self.id && seq < self.send_seq => seq,
                // Too short for a header, another connection's, or never sent: corrupted.
                _ => {
                    if ctx.in_window(now) {
                        ctx.cur.counters.mismatches += 1;
                    }
                    continue;
                }
            };
            let intact = n == ctx.msg_size && payload::verify(payload::key(self.id, seq), HEADER, &d[HEADER..]);
            let sent_header = header.map_or(0, |h| h.1);
            match w.classify(seq) {
                Reply::Fresh(sent, reordered) => {
                    let slot = w.slot(seq);
                    slot.state = State::Resolved;
                    slot.resolved_ns = now;
                    w.in_flight -= 1;
                    w.highest = Some(w.highest.map_or(seq, |h| h.max(seq)));
                    w.advance(self.send_seq);
                    self.recv_seq = w.unresolved_from();
                    if !intact {
                        if ctx.in_window(sent) {
                            ctx.cur.counters.mismatches += 1;
                        }
                    } else {
                        if reordered && ctx.in_window(sent) {
                            ctx.cur.counters.reordered += 1;
                        }
                        self.record_round_trip(seq, sent, now, ctx);
                    }
                }
                Reply::Duplicate if ctx.in_window(sent_header) => ctx.cur.counters.duplicates += 1,
                Reply::Late if ctx.in_window(sent_header) => ctx.cur.counters.late += 1,
                Reply::Duplicate | Reply::Late => {}
            }
        }
    }

    /// Counts datagrams unanswered for longer than `timeout_ns` as lost and frees their
    /// slots (they are remembered, so a reply that comes after all counts as late).
    pub(super) fn expire_datagrams(&mut self, now_ns: u64, timeout_ns: u64, ctx: &mut Ctx) {
        let Some(w) = self.window.as_mut() else { return };
        let mut lost_in_window = 0;
        while w.tail < self.send_seq {
            let tail = w.tail;
            let slot = w.slot(tail);
            if slot.seq == tail && slot.state == State::InFlight {
                if now_ns.saturating_sub(slot.sent_ns) <= timeout_ns {
                    break; // later ones were sent later still
                }
                slot.state = State::Resolved;
                slot.resolved_ns = now_ns;
                lost_in_window += u64::from(ctx.in_window(slot.sent_ns));
                w.lose(tail);
            }
            w.tail += 1;
        }
        let mut i = 0;
        while i < w.parked.len() {
            let (seq, sent) = w.parked[i];
            if now_ns.saturating_sub(sent) > timeout_ns {
                w.parked.swap_remove(i);
                lost_in_window += u64::from(ctx.in_window(sent));
                w.lose(seq);
            } else {
                i += 1;
            }
        }
        ctx.cur.counters.lost += lost_in_window;
        self.recv_seq = w.unresolved_from();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut d = [0u8; 64];
        write_header(&mut d, 7, 123_456, 42);
        assert_eq!(read_header(&d), Some((7, 123_456, 42)));
        assert_eq!(read_header(&d[..HEADER - 1]), None);
        assert!(is_probe_echo(&probe(3, 9), 3));
        assert!(!is_probe_echo(&probe(3, 9), 4));
    }

    #[test]
    fn window_tells_fresh_reordered_duplicate_and_late() {
        let mut w = Window::new(16, u64::MAX);
        for seq in 0..4 {
            *w.slot(seq) = Slot {
                seq,
                sent_ns: seq * 10,
                resolved_ns: 0,
                state: State::InFlight,
            };
            w.in_flight += 1;
        }
        let answer = |w: &mut Window, seq: u64| {
            let r = w.classify(seq);
            if let Reply::Fresh(..) = r {
                w.slot(seq).state = State::Resolved;
                w.in_flight -= 1;
                w.highest = Some(w.highest.map_or(seq, |h| h.max(seq)));
                w.advance(4);
            }
            r
        };
        assert!(matches!(answer(&mut w, 1), Reply::Fresh(10, false)));
        assert!(
            matches!(answer(&mut w, 0), Reply::Fresh(0, true)),
            "0 after 1: reordered"
        );
        assert!(matches!(answer(&mut w, 1), Reply::Duplicate));
        assert_eq!(w.tail(), 2);
        // 2 is given up as lost; its reply then is late, and a second one a duplicate.
        w.slot(2).state = State::Resolved;
        w.lose(2);
        assert!(matches!(answer(&mut w, 2), Reply::Late));
        assert!(matches!(answer(&mut w, 2), Reply::Duplicate));
        assert!(matches!(answer(&mut w, 3), Reply::Fresh(30, false)));
        assert_eq!((w.tail(), w.in_flight()), (4, 0));
    }

    #[test]
    fn closed_loop_depth_and_a_full_window_hold_sends_back() {
        let mut w = Window::new(16, 2);
        assert_eq!(w.room(0), Some(0));
        w.in_flight = 2;
        assert_eq!(w.room(2), None, "depth reached");
        let mut open = Window::new(16, u64::MAX);
        *open.slot(0) = Slot {
            seq: 0,
            sent_ns: 0,
            resolved_ns: 0,
            state: State::InFlight,
        };
        // Datagram 16 needs slot 0, where 0 still waits: 0 is parked, not in the way.
        assert_eq!(open.room(16), Some(0));
        assert_eq!(open.parked, vec![(0, 0)]);
        assert!(matches!(open.classify(0), Reply::Fresh(0, false)));
        assert!(open.parked.is_empty());
        assert!(window_slots(1, Some(1000.0), 1.0) >= 1000);
        assert_eq!(window_slots(4, None, 1.0), 16);
    }
}
