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
            std::thread::sleep(wait);
        }
    }
}

/// mio: replies held until their wait is over, in a heap by due time. Each holds a copy of
/// its datagram (a buffer from a free list, so a steady load allocates nothing).
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(std::time::Instant, u64, usize)>>,
    held: Vec<Option<(Vec<u8>, std::net::SocketAddr)>>,
    free: Vec<usize>,
    spare: Vec<Vec<u8>>,
    seq: u64,
}

impl Deferred {
    /// Replies held at most: beyond, the loop stops reading (the kernel's receive queue
    /// holds the rest) until some are sent.
    pub(crate) const MAX: usize = 65_536;

    /// Holds `data` for `to` until `due`.
    pub(crate) fn hold(&mut self, due: std::time::Instant, data: &[u8], to: std::net::SocketAddr) {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        let slot = match self.free.pop() {
            Some(i) => {
                self.held[i] = Some((buf, to));
                i
            }
            None => {
                self.held.push(Some((buf, to)));
                self.held.len() - 1
            }
        };
        self.seq += 1; // ties leave in arrival order
        self.heap.push(std::cmp::Reverse((due, self.seq, slot)));
    }

    /// Whether the heap is full.
    pub(crate) fn full(&self) -> bool {
        self.heap.len() >= Self::MAX
    }

    /// How long until the next reply is due (zero if one is); `None` when none is held.
    pub(crate) fn next_in(&self, now: std::time::Instant) -> Option<Duration> {
        self.heap.peek().map(|r| r.0 .0.saturating_duration_since(now))
    }

    /// Sends every reply due by `now` with `send` (false: no room in the send buffer; the
    /// reply stays and the rest wait). Returns false when one could not be sent.
    pub(crate) fn send_due(
        &mut self,
        now: std::time::Instant,
        mut send: impl FnMut(&[u8], std::net::SocketAddr) -> std::io::Result<bool>,
    ) -> std::io::Result<bool> {
        while let Some(&std::cmp::Reverse((due, _, slot))) = self.heap.peek() {
            if due > now {
                break;
            }
            let Some((buf, to)) = &self.held[slot] else {
                self.heap.pop();
                continue;
            };
            if !send(buf, *to)? {
                return Ok(false);
            }
            self.heap.pop();
            if let Some((buf, _)) = self.held[slot].take() {
                self.spare.push(buf);
            }
            self.free.push(slot);
        }
        Ok(true)
    }
}
