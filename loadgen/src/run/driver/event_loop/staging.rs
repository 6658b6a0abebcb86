//! `--stages` of connections (closed loop, `--stage-target conns`): at each scan the thread
//! opens the connections the stages want open and ends the others. Connection `id` (ids
//! are global, spread over the threads) is wanted while the target is above `id`, so the
//! threads together hold the target's count without talking to each other.
//!
//! A connection that is no longer wanted sends nothing more, and is closed once the
//! replies it waits for are in (its life ends at its last sent message): no message in
//! flight is cut off, and none is counted as an error.

use std::time::Instant;

use super::super::conn::Link;
use super::Client;

impl Client<'_> {
    /// How many connections of the whole run the stages want open at `t` (ns after the
    /// start); `None` without stages of connections.
    pub(super) fn wanted(&self, t: u64) -> Option<u64> {
        let p = self.cfg.stages.as_ref().filter(|_| self.cfg.rate.is_none())?;
        Some((p.target_at(t) + 1e-9).floor() as u64)
    }

    /// Whether connection `i` is one the stages do not want open now.
    pub(super) fn unwanted(&self, i: usize) -> bool {
        self.wanted(self.ctx.now_ns())
            .is_some_and(|n| u64::from(self.conns[i].id) >= n)
    }

    /// Before the load: the connections not wanted at the start stay closed (idle), tried
    /// already, so the connection phase does not wait for them.
    pub(super) fn idle_unwanted_at_start(&mut self) {
        let Some(n) = self.wanted(0) else { return };
        for c in self.conns.iter_mut().filter(|c| u64::from(c.id) >= n) {
            c.link = Link::Idle;
            c.tried = true;
        }
    }

    /// At a scan: wanted idle connections are opened (the connect path picks them up, at
    /// its pace), unwanted open ones stop sending and close once their replies are in,
    /// and unwanted closed ones stay closed.
    pub(super) fn follow_stages(&mut self, now: Instant, t: u64) {
        let Some(n) = self.wanted(t) else { return };
        for i in 0..self.conns.len() {
            let wanted = u64::from(self.conns[i].id) < n;
            let c = &mut self.conns[i];
            match c.link {
                Link::Idle if wanted => c.link = Link::Down { retry_at: now },
                Link::Down { .. } if !wanted => c.link = Link::Idle,
                Link::Up if !wanted && c.life_end == u64::MAX => {
                    // A message partly written is finished; nothing after it is sent.
                    c.life_end = c.send_seq + u64::from(c.send_off > 0);
                    if c.life_over() {
                        self.retire(i);
                    }
                }
                _ => {}
            }
        }
    }
}
