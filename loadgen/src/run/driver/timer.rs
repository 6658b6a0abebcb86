//! A nonblocking timerfd for sub-millisecond waits in open loop (the poll timeout has
//! millisecond precision).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::os::sys;

/// Timer slack asked for on threads that use a timer (the kernel's default is 50 µs).
const TIMER_SLACK: Duration = Duration::from_micros(1);

/// A one-shot timer registered with the thread's poller, armed in the run's own time (ns
/// after its start).
pub(super) struct Timer {
    fd: OwnedFd,
    /// The monotonic clock's reading at the run's start.
    origin: Duration,
    /// When it is set to fire (ns after the start), so it is not re-armed needlessly.
    armed_at: Option<u64>,
}

impl Timer {
    /// A disarmed timer; also makes the calling thread's timed wake-ups punctual.
    pub(super) fn new() -> io::Result<Timer> {
        sys::set_timer_slack(TIMER_SLACK);
        Ok(Timer {
            fd: sys::timerfd()?,
            origin: sys::monotonic_now(),
            armed_at: None,
        })
    }

    /// Sets the run's start, which the times given to [`Timer::arm`] count from.
    pub(super) fn set_start(&mut self, start: Instant) {
        // `Instant` reads the same monotonic clock; the two readings are ns apart.
        let (mono, now) = (sys::monotonic_now(), Instant::now());
        self.origin = match now.checked_duration_since(start) {
            Some(since) => mono.saturating_sub(since),
            None => mono + start.duration_since(now), // a `--start-at` still ahead
        };
        self.armed_at = None;
    }

    /// The descriptor, to register with the poller.
    pub(super) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes it fire at `at` (ns after the start), unless it already fires between `now`
    /// and then. The time is absolute: the work the loop did since it read `now` does not
    /// delay the wake-up (a relative timer armed after a send fired that send's cost late).
    pub(super) fn arm(&mut self, now: u64, at: u64) {
        if self.armed_at.is_some_and(|a| a > now && a <= at) {
            return;
        }
        self.armed_at = Some(at);
        // Cannot fail on a valid timerfd with a valid time; if it did, the poll timeout
        // (the caller's fallback) still wakes the loop, only later.
        let _ = sys::timerfd_arm_at(&self.fd, self.origin + Duration::from_nanos(at));
    }

    /// Consumes its expiry after it fired.
    pub(super) fn clear(&mut self) {
        self.armed_at = None;
        sys::timerfd_clear(&self.fd);
    }
}
