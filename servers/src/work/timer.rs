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

/// tokio: the waits of one runtime's tasks, ended by a single timerfd, so a wait lasts
/// what it asks to the kernel's resolution rather than to the 1 ms of tokio's timer wheel.
/// A heap of deadlines and wakers; one driver task arms the timerfd to the first deadline
/// and wakes the tasks that are due (the same design as the mio loop's heap, so a message
/// costs no system call of its own).
#[derive(Debug, Default)]
pub struct Timers {
    state: std::sync::Mutex<State>,
    /// An earlier deadline than the armed one was added: the driver re-arms.
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct State {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Due>>,
    seq: u64,
}

#[derive(Debug)]
struct Due {
    at: Instant,
    seq: u64,
    waker: std::task::Waker,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Timers {
    /// The timers of the current runtime, with their driver task spawned on it. Without a
    /// timerfd (out of descriptors) the driver sleeps with tokio's own timer instead.
    pub fn start() -> std::sync::Arc<Timers> {
        let timers = std::sync::Arc::new(Timers::default());
        let fd = TimerFd::new()
            .and_then(|t| {
                // SAFETY: a TimerFd owns its descriptor and never changes it, so the fd
                // stays open and the same for as long as the AsyncFd holds it.
                unsafe { tokio::io::unix::AsyncFd::register_with_interest(t, tokio::io::Interest::READABLE) }
                    .map_err(io::Error::from)
            })
            .ok();
        tokio::spawn(std::sync::Arc::clone(&timers).drive(fd));
        timers
    }

    /// Waits `d` and records it as a `wait` step done.
    pub async fn wait(&self, d: Duration) {
        let started = Instant::now();
        Wait {
            timers: self,
            at: started + d,
        }
        .await;
        super::done::record_since(super::kind::Kind::Wait, d, started);
    }

    /// Wakes the tasks that are due; returns the next deadline.
    fn wake_due(&self) -> Option<Instant> {
        let mut due = Vec::new();
        let next = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            while st.heap.peek().is_some_and(|d| d.0.at <= now) {
                if let Some(d) = st.heap.pop() {
                    due.push(d.0.waker);
                }
            }
            st.heap.peek().map(|d| d.0.at)
        };
        due.into_iter().for_each(std::task::Waker::wake);
        next
    }

    async fn drive(self: std::sync::Arc<Self>, mut fd: Option<tokio::io::unix::AsyncFd<TimerFd>>) {
        loop {
            // Made before the heap is read: a deadline added meanwhile leaves a permit.
            let changed = self.changed.notified();
            let next = self.wake_due();
            match (&mut fd, next) {
                (Some(fd), next) => {
                    if fd.get_mut().arm(next).is_err() {
                        return; // a timerfd that cannot be armed: nothing else is expected
                    }
                    tokio::select! {
                        ready = fd.readable_mut() => match ready {
                            Ok(mut ready) => {
                                if !ready.get_inner_mut().fired() {
                                    ready.clear_ready(); // stale readiness: not fired yet
                                }
                            }
                            Err(_) => return,
                        },
                        _ = changed => {}
                    }
                }
                (None, Some(at)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = changed => {}
                    }
                }
                (None, None) => changed.await,
            }
        }
    }
}

/// One task's wait: due at `at`, its waker in the heap until then.
struct Wait<'a> {
    timers: &'a Timers,
    at: Instant,
}

impl std::future::Future for Wait<'_> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if Instant::now() >= self.at {
            return std::task::Poll::Ready(());
        }
        // Every poll before the deadline (re)registers the current waker; an entry left by
        // an earlier poll only wakes the task once more, harmlessly.
        let first = {
            let mut st = self.timers.state.lock().unwrap_or_else(|e| e.into_inner());
            st.seq += 1;
            let seq = st.seq;
            st.heap.push(std::cmp::Reverse(Due {
                at: self.at,
                seq,
                waker: cx.waker().clone(),
            }));
            st.heap.peek().is_some_and(|d| d.0.seq == seq)
        };
        if first {
            self.timers.changed.notify_one();
        }
        std::task::Poll::Pending
    }
}
