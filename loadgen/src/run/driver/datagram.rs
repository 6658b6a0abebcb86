//! A connection over datagrams (UDP, or ICMP echo behind its header): it sends datagrams in the [wire format](crate::measure::wire) as the
//! schedule and its [in-flight set](super::inflight) allow, and reads and checks every
//! reply, byte for byte.

use std::io;

use super::conn::{Conn, Ctx};
use super::inflight::{Reply, Slot, State};
use super::socket::classify;
use crate::measure::payload;
use crate::measure::record::Failure;
use crate::measure::wire::{read_header, write_header, HEADER, PROBE};

impl Conn {
    /// Sends every datagram the schedule and the window allow, until the socket would block.
    pub(super) fn send_datagrams(&mut self, ctx: &mut Ctx) -> Result<(), Failure> {
        let (Some(sock), Some(w)) = (self.sock.as_mut(), self.in_flight.as_mut()) else {
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
            // Over ICMP the message goes behind the echo header (`pre` bytes; 0 over UDP).
            let pre = sock.prefix();
            write_header(&mut ctx.wbuf[pre..pre + HEADER], seq, now, self.id);
            payload::fill(
                payload::key(self.id, seq),
                HEADER,
                &mut ctx.wbuf[pre + HEADER..pre + size],
            );
            sock.frame(&mut ctx.wbuf[..pre + size], seq);
            let dropped = match ctx.io.send(self.token, sock, &ctx.wbuf[..pre + size]) {
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
            let (Some(sock), Some(w)) = (self.sock.as_mut(), self.in_flight.as_mut()) else {
                return Ok(());
            };
            let (n, stamp) = match ctx.io.recv(self.token, sock, &mut ctx.rbuf, ctx.rx_stamps) {
                Ok(got) => got,
                // Drained: the next datagram raises a new READABLE edge.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry
                // ECONNREFUSED: the server's port closed (ICMP port unreachable).
                Err(e) => return Err(classify(&e)),
            };
            let now = ctx.now_ns();
            ctx.note_rx(stamp, now);
            // Not an echo reply to this socket (a raw socket's filter lets none through).
            let Some(start) = sock.reply_start(&ctx.rbuf[..n]) else {
                continue;
            };
            let d = &ctx.rbuf[start..n];
            let n = d.len();
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
        let Some(w) = self.in_flight.as_mut() else { return };
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
