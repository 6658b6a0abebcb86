//! What an open-loop thread sends and when: the messages (or `--conn-rate` arrivals) whose
//! time has come, catching up at once when far behind, and the account of the time the
//! thread spun waiting for them (pacing spin, which is not work).

use std::time::Instant;

use super::super::conn::Link;
use super::super::pacer;
use super::super::shared::CONNECT_WINDOW;
use super::Client;

/// Open loop: a thread more than this many of a connection's mean periods behind the
/// schedule catches up at once (see `send_due`).
const CATCH_UP_AFTER: u64 = 4;

impl Client<'_> {
    /// Open loop: marks every message whose time has come as due and sends it; returns the
    /// time of the next one.
    pub(super) fn send_due(&mut self, t: u64) -> Option<u64> {
        if self.walk.behind(t, CATCH_UP_AFTER) {
            // Far behind the schedule (a rate beyond what the thread can send): every
            // connection's messages due by now are marked at once, O(connections), instead
            // of walked one by one (at 1e9 msg/s the walk alone took the thread, and no
            // reply was ever read).
            self.walk.catch_up(t);
            for slot in 0..self.conns.len() {
                let due = self.walk.next_seq(slot);
                self.conns[slot].due = self.conns[slot].due.max(due);
            }
            for slot in 0..self.conns.len() {
                self.send(slot);
            }
        }
        while let Some((slot, seq, at)) = self.walk.peek() {
            if at > t {
                return Some(at);
            }
            self.conns[slot].due = seq + 1;
            self.send(slot);
            self.walk.advance();
        }
        None
    }

    /// `--conn-rate`: starts every arrival whose time has come, while a slot and the connect
    /// window allow; returns the time of the next one (`None` while arrivals wait for room,
    /// which a closing connection or a finished connect makes).
    pub(super) fn start_arrivals(&mut self, now: Instant, t: u64) -> Option<u64> {
        loop {
            let at = self.arrivals.as_ref()?.peek();
            if at > t {
                return Some(at);
            }
            if self.connecting >= CONNECT_WINDOW {
                return None;
            }
            let i = self.idle.pop()?;
            if let Some(a) = self.arrivals.as_mut() {
                a.advance();
            }
            self.conns[i].intended_ns = Some(at);
            if self.ctx.in_window(t) {
                // Waiting for a slot to come free is backpressure; the rest is the client's.
                let sendable = at.max(self.conns[i].idle_since);
                self.ctx.cur.record_lag(at, sendable, t);
            }
            self.conns[i].link = Link::Down { retry_at: now };
            self.connect(i, now);
        }
    }

    /// Counts `ns` spent spinning at `at` (ns after the start), inside the measured window.
    pub(super) fn spun(&mut self, ns: u64, at: u64) {
        if self.window_cpu_start.is_some() && at < self.ctx.end_ns {
            self.window_spin_ns += ns;
        }
    }

    /// The time since `from` of a loop iteration that found nothing to do, as spin; none if
    /// it took longer than a spin's step (the thread was off the CPU for most of it).
    pub(super) fn idle_since(&self, from: u64) -> u64 {
        let ns = self.ctx.now_ns().saturating_sub(from);
        if ns < pacer::OFF_CPU_GAP_NS {
            ns
        } else {
            0
        }
    }
}
