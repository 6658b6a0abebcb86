//! `--work` over UDP: every datagram is one message. A [`Service`] belongs to one thread (or
//! one peer's thread) and draws each datagram's cost from its own seeded sampler.
//!
//! CPU and block are taken on the serving thread in every model; the wait is the model's:
//! the blocking models sleep it on the thread, mio defers the reply on a timer
//! ([`Deferred`]), tokio sleeps in a task of its own, uring submits a timeout. Replies leave
//! when their work is done, so a datagram with a shorter wait overtakes one with a longer
//! (there is no order to keep between datagrams; loadgen counts it as `reordered`).

use std::time::Duration;

use crate::work::{Sampler, Work};

/// One thread's source of per-datagram costs; none without `--work`.
#[derive(Debug)]
pub(crate) struct Service(Option<Sampler>);

impl Service {
    /// A service for a new thread or peer, seeded by `--seed` and a number of its own.
    pub(crate) fn new(work: Option<&std::sync::Arc<Work>>) -> Service {
        Service(work.map(|w| w.for_conn(crate::work::next_conn()).0))
    }

    /// Takes the next datagram's CPU and block on this thread; returns its wait.
    #[inline]
    pub(crate) fn inline(&mut self) -> Duration {
        match &mut self.0 {
            Some(s) => s.draw().run_inline(),
            None => Duration::ZERO,
        }
    }

    /// A blocking model: the whole cost on this thread, the wait slept too.
    #[inline]
    pub(crate) fn blocking(&mut self) {
        let wait = self.inline();
        if !wait.is_zero() {
            crate::work::done::sleep(crate::work::Kind::Wait, wait);
        }
    }
}

/// One reply waiting out its wait: ordered by due time, then by arrival.
#[derive(Debug)]
struct Held {
    due: std::time::Instant,
    /// When its wait began (what the wait took is recorded when it is sent).
    started: std::time::Instant,
    seq: u64,
    data: Vec<u8>,
    to: std::net::SocketAddr,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// mio: replies held until their wait is over, in a heap by due time. Each holds a copy of
/// its datagram (buffers are reused, so a steady load allocates nothing).
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Held>>,
    spare: Vec<Vec<u8>>,
    seq: u64,
}

impl Deferred {
    /// Replies held at most: beyond, the loop stops reading (the kernel's receive queue
    /// holds the rest) until some are sent.
    pub(crate) const MAX: usize = 65_536;

    /// Holds `data` for `to` until `due`, its wait having begun now.
    pub(crate) fn hold(&mut self, due: std::time::Instant, data: &[u8], to: std::net::SocketAddr) {
        let started = std::time::Instant::now().min(due);
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        self.seq += 1; // ties leave in arrival order
        self.heap.push(std::cmp::Reverse(Held {
            due,
            started,
            seq: self.seq,
            data: buf,
            to,
        }));
    }

    /// Whether the heap is full.
    pub(crate) fn full(&self) -> bool {
        self.heap.len() >= Self::MAX
    }

    /// When the next reply is due; `None` when none is held.
    pub(crate) fn next_due(&self) -> Option<std::time::Instant> {
        self.heap.peek().map(|r| r.0.due)
    }

    /// How long until the next reply is due (zero if one is); `None` when none is held.
    pub(crate) fn next_in(&self, now: std::time::Instant) -> Option<Duration> {
        self.heap.peek().map(|r| r.0.due.saturating_duration_since(now))
    }

    /// Sends every reply due by `now` with `send` (false: no room in the send buffer; the
    /// reply stays and the rest wait). Returns false when one could not be sent.
    pub(crate) fn send_due(
        &mut self,
        now: std::time::Instant,
        mut send: impl FnMut(&[u8], std::net::SocketAddr) -> std::io::Result<bool>,
    ) -> std::io::Result<bool> {
        while let Some(std::cmp::Reverse(next)) = self.heap.peek() {
            if next.due > now {
                break;
            }
            if !send(&next.data, next.to)? {
                return Ok(false);
            }
            if let Some(std::cmp::Reverse(sent)) = self.heap.pop() {
                let done = now.saturating_duration_since(sent.started);
                crate::work::done::record(crate::work::Kind::Wait, sent.due - sent.started, done);
                self.spare.push(sent.data);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn held_replies_leave_in_due_order_and_wait_for_room() {
        let to: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Deferred::default();
        d.hold(t0 + ms(3), b"c", to);
        d.hold(t0 + ms(1), b"a", to);
        d.hold(t0 + ms(1), b"b", to); // a tie leaves after the earlier arrival
        assert_eq!(d.next_in(t0), Some(ms(1)));
        let mut sent = Vec::new();
        // The send buffer takes one reply, then is full: the rest stay held.
        let mut room = 1;
        let ok = d
            .send_due(t0 + ms(2), |b, _| {
                if room == 0 {
                    return Ok(false);
                }
                room -= 1;
                sent.push(b.to_vec());
                Ok(true)
            })
            .unwrap();
        assert!(!ok);
        assert_eq!(sent, [b"a".to_vec()]);
        assert!(d
            .send_due(t0 + ms(2), |b, _| {
                sent.push(b.to_vec());
                Ok(true)
            })
            .unwrap());
        assert_eq!(sent, [b"a".to_vec(), b"b".to_vec()], "c is not due yet");
        assert_eq!(d.next_in(t0 + ms(2)), Some(ms(1)));
    }
}
