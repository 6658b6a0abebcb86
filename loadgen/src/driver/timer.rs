//! A nonblocking timerfd for sub-millisecond waits in open loop (the poll timeout has
//! millisecond precision).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::sys;

/// Timer slack asked for on threads that use a timer (the kernel's default is 50 µs).
const TIMER_SLACK: Duration = Duration::from_micros(1);

/// A one-shot timer registered with the thread's poller.
pub(super) struct Timer {
    fd: OwnedFd,
    /// When it is set to fire (ns after the start), so it is not re-armed needlessly.
    armed_at: Option<u64>,
}

impl Timer {
    /// A disarmed timer; also makes the calling thread's timed wake-ups punctual.
    pub(super) fn new() -> io::Result<Timer> {
        sys::set_timer_slack(TIMER_SLACK);
        Ok(Timer {
            fd: sys::timerfd()?,
            armed_at: None,
        })
    }

    /// The descriptor, to register with the poller.
    pub(super) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes it fire `after` from `now` (ns after the start), unless it already fires
    /// earlier than that.
    pub(super) fn arm(&mut self, now: u64, after: Duration) {
        let at = now + after.as_nanos() as u64;
        if self.armed_at.is_some_and(|a| a > now && a <= at) {
            return;
        }
        self.armed_at = Some(at);
        // Cannot fail on a valid timerfd with a valid time; if it did, the poll timeout
        // (the caller's fallback) still wakes the loop, only later.
        let _ = sys::timerfd_arm(&self.fd, after);
    }

    /// Consumes its expiry after it fired.
    pub(super) fn clear(&mut self) {
        self.armed_at = None;
        sys::timerfd_clear(&self.fd);
    }
}
