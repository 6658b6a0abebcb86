//! The measured window's edges in a client thread: its start (the thread's CPU and
//! TCP_INFO readings), each interval boundary, its end (over UDP, the wait for datagrams
//! still in flight), and the gaps of the sends it sampled for the arrivals check.

use std::io;
use std::time::Instant;

use super::{Client, SCAN_EVERY};
use crate::os::sys::thread_cpu;

impl Client<'_> {
    /// After the load, over UDP: datagrams of the window still in flight are either
    /// answered or lost within a timeout; one wait for that (sending nothing), so the
    /// window's loss count is complete. False when there is nothing left to wait for.
    pub(super) fn drain_datagrams(&mut self, now: Instant, t: u64, next_scan: &mut Instant) -> io::Result<bool> {
        let timeout_ns = self.cfg.reply_timeout().as_nanos() as u64;
        let in_flight = self
            .conns
            .iter()
            .any(|c| c.in_flight.as_ref().is_some_and(|w| w.in_flight() > 0));
        if !in_flight || t >= self.ctx.end_ns + timeout_ns + 2 * SCAN_EVERY.as_nanos() as u64 {
            return Ok(false);
        }
        self.ctx.sending = false;
        self.next_send = None;
        if now >= *next_scan {
            self.maintain(now);
            *next_scan = now + SCAN_EVERY;
        }
        self.poll_once(next_scan.saturating_duration_since(now))?;
        Ok(true)
    }

    /// At an interval's boundary (`t`): the window's starting readings the first time (the
    /// thread's CPU, TCP_INFO), and the interval handed over.
    pub(super) fn cross_boundary(&mut self, t: u64) {
        if self.window_cpu_start.is_none() {
            self.window_cpu_start = Some(thread_cpu());
            // Once per run, not per message: the window's starting point of TCP_INFO.
            self.retrans_start = self.tcp_infos().map(|(id, retrans, _)| (id, retrans)).collect();
        }
        self.flush_interval(Some(t));
    }

    /// The gaps between the thread's sampled sends, in units of the thread's mean gap (a
    /// connection's period over its connections): mean 1 when the schedule was kept.
    pub(super) fn send_gaps(&mut self) -> Vec<f64> {
        let Some(period) = self.ctx.schedule.period_ns() else {
            return Vec::new();
        };
        let mean_gap = period / self.conns.len().max(1) as f64;
        let times = &mut self.ctx.send_times;
        times.sort_unstable();
        times.windows(2).map(|w| (w[1] - w[0]) as f64 / mean_gap).collect()
    }
}
