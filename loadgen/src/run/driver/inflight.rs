//! A UDP connection's datagrams in flight (its [`InFlight`] set). A reply resolves its
//! datagram (latency recorded; `reordered` when a later datagram was answered first); a
//! datagram unanswered after `--timeout` is counted `lost` and its slot freed, so a loss
//! never stalls the connection for longer than the timeout. A reply to a datagram already
//! answered is a `duplicate`; one to a datagram already counted lost is `late`. Closed loop
//! keeps `--depth` datagrams in flight; open loop sends on schedule, held back only when the
//! set is full of unresolved datagrams (sized to hold a timeout's worth of sends).

use std::collections::VecDeque;

/// Most slots of one connection's window.
const MAX_WINDOW: usize = 65_536;
/// Lost sequence numbers remembered per connection, to tell a late reply from a duplicate.
const LOST_MEMORY: usize = 1024;
/// Most datagrams one connection keeps waiting outside its window (see [`InFlight::room`]).
const MAX_PARKED: usize = 4096;

/// InFlight slots for one connection: closed loop twice the depth; open loop a timeout's
/// worth of this connection's sends on top (a loss then holds nothing back).
pub(super) fn in_flight_slots(depth: usize, per_conn_rate: Option<f64>, timeout_s: f64) -> usize {
    let extra = per_conn_rate.map_or(0.0, |r| (r * timeout_s).ceil());
    (2 * depth + extra.min(MAX_WINDOW as f64) as usize).clamp(16, MAX_WINDOW)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Sent, no reply yet.
    InFlight,
    /// Answered, or given up as lost (then in the lost memory).
    Resolved,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) seq: u64,
    pub(super) sent_ns: u64,
    /// When it was resolved (the next datagram in this slot could go from then on).
    pub(super) resolved_ns: u64,
    pub(super) state: State,
}

/// One connection's datagrams in flight.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) slots: Box<[Slot]>,
    /// Every sequence number below this one is resolved.
    pub(super) tail: u64,
    pub(super) in_flight: u64,
    /// Closed loop: `--depth`; open loop: no limit but the window.
    pub(super) depth: u64,
    /// Highest sequence number answered so far (`None`: none yet).
    pub(super) highest: Option<u64>,
    pub(super) lost: VecDeque<u64>,
    /// Datagrams still waiting for a reply whose slot the window needed: (seq, sent).
    pub(super) parked: Vec<(u64, u64)>,
}

/// What a reply turned out to be.
pub(super) enum Reply {
    /// The first reply to a datagram in flight: (send time, reordered).
    Fresh(u64, bool),
    Duplicate,
    Late,
}

impl InFlight {
    /// A window of `slots` datagrams, at most `depth` in flight (`u64::MAX`: no limit).
    pub(super) fn new(slots: usize, depth: u64) -> InFlight {
        InFlight {
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
    pub(super) fn slot(&mut self, seq: u64) -> &mut Slot {
        let n = self.slots.len() as u64;
        &mut self.slots[(seq % n) as usize]
    }

    /// Every datagram below this sequence number is resolved.
    #[cfg(test)]
    pub(super) fn tail(&self) -> u64 {
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
    pub(super) fn room(&mut self, seq: u64) -> Option<u64> {
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
    pub(super) fn unresolved_from(&self) -> u64 {
        self.parked.iter().map(|p| p.0).fold(self.tail, u64::min)
    }

    /// Advances the tail past resolved datagrams.
    pub(super) fn advance(&mut self, sent_up_to: u64) {
        while self.tail < sent_up_to {
            let tail = self.tail;
            let slot = *self.slot(tail);
            if slot.seq == tail && slot.state == State::InFlight {
                return;
            }
            self.tail += 1;
        }
    }

    pub(super) fn classify(&mut self, seq: u64) -> Reply {
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
    pub(super) fn lose(&mut self, seq: u64) {
        self.in_flight -= 1;
        if self.lost.len() == LOST_MEMORY {
            self.lost.pop_front();
        }
        self.lost.push_back(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_tells_fresh_reordered_duplicate_and_late() {
        let mut w = InFlight::new(16, u64::MAX);
        for seq in 0..4 {
            *w.slot(seq) = Slot {
                seq,
                sent_ns: seq * 10,
                resolved_ns: 0,
                state: State::InFlight,
            };
            w.in_flight += 1;
        }
        let answer = |w: &mut InFlight, seq: u64| {
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
        let mut w = InFlight::new(16, 2);
        assert_eq!(w.room(0), Some(0));
        w.in_flight = 2;
        assert_eq!(w.room(2), None, "depth reached");
        let mut open = InFlight::new(16, u64::MAX);
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
        assert!(in_flight_slots(1, Some(1000.0), 1.0) >= 1000);
        assert_eq!(in_flight_slots(4, None, 1.0), 16);
    }
}
