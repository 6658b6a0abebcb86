//! Waits that last what they ask for. mio's poll timeout is whole milliseconds (rounded
//! up) and tokio's timer wheel ticks every millisecond, so a `wait:200us` would last 1 ms
//! and a `wait:1ms` up to 2 ms. A timerfd has the kernel's high-resolution timers behind
//! it: an event loop registers one and arms it to its next deadline; a tokio task awaits
//! one. Server threads also take the smallest timer slack, so a sleep is not rounded up by
//! the default 50 µs.

use std::io;
use std::num::NonZeroU64;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};

/// Sets this thread's timer slack to 1 ns (threads it spawns inherit it). Best effort: the
/// default slack only makes sleeps up to 50 µs late.
pub fn least_timer_slack() {
    let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(1));
}

fn spec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// A nonblocking, one-shot monotonic timerfd.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
    armed: Option<Instant>,
}

impl TimerFd {
    /// A disarmed timer.
    pub fn new() -> io::Result<TimerFd> {
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        Ok(TimerFd { fd, armed: None })
    }

    /// Arms it to fire at `at` (`None` disarms). Re-arming to the deadline it already has
    /// costs no system call, so a loop may call this every round.
    pub fn arm(&mut self, at: Option<Instant>) -> io::Result<()> {
        if self.armed == at {
            return Ok(());
        }
        let value = match at {
            // Zero would disarm it: a deadline already passed fires in 1 ns.
            Some(t) => spec(t.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1))),
            None => spec(Duration::ZERO),
        };
        let new = Itimerspec {
            it_interval: spec(Duration::ZERO),
            it_value: value,
        };
        rustix::time::timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &new)?;
        self.armed = at;
        Ok(())
    }

    /// Arms it to fire after `d`.
    pub fn arm_in(&mut self, d: Duration) -> io::Result<()> {
        self.armed = None;
        self.arm(Some(Instant::now() + d))
    }

    /// Reads its expirations: true when it fired. After this it must be armed again.
    pub fn fired(&mut self) -> bool {
        let mut buf = [0u8; 8];
        match rustix::io::read(&self.fd, &mut buf) {
            Ok(8) => {
                self.armed = None;
                true
            }
            // WouldBlock: not fired yet (or read already); nothing else is expected of a timerfd.
            _ => false,
        }
    }
}

impl AsFd for TimerFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// tokio: a wait on a timerfd, so it lasts what it asks to the kernel's resolution rather
/// than the 1 ms of tokio's timer wheel. One per task that waits, made on its first wait.
#[derive(Debug, Default)]
pub struct TaskTimer(Option<tokio::io::unix::AsyncFd<TimerFd>>);

impl TaskTimer {
    /// Waits `d` and records it as a `wait` step done. Without a timerfd (out of
    /// descriptors) it falls back to tokio's own sleep.
    pub async fn wait(&mut self, d: Duration) {
        let started = Instant::now();
        if self.0.is_none() {
            self.0 = TimerFd::new()
                .and_then(|t| {
                    // SAFETY: a TimerFd owns its descriptor and never changes it, so the fd
                    // stays open and the same for as long as the AsyncFd holds it.
                    unsafe { tokio::io::unix::AsyncFd::register_with_interest(t, tokio::io::Interest::READABLE) }
                        .map_err(io::Error::from)
                })
                .ok();
        }
        let precise = match &mut self.0 {
            Some(fd) => Self::wait_on(fd, d).await.is_ok(),
            None => false,
        };
        if !precise {
            // No timerfd: tokio's sleep (late by up to its 1 ms tick), not no wait at all.
            tokio::time::sleep_until((started + d).into()).await;
        }
        super::done::record_since(super::Kind::Wait, d, started);
    }

    async fn wait_on(fd: &mut tokio::io::unix::AsyncFd<TimerFd>, d: Duration) -> io::Result<()> {
        fd.get_mut().arm_in(d)?;
        loop {
            let mut ready = fd.readable_mut().await?;
            if ready.get_inner_mut().fired() {
                return Ok(());
            }
            ready.clear_ready(); // a stale readiness: the timer has not fired yet
        }
    }
}
