//! Watching a run for reasons to stop early: Ctrl-C or SIGTERM, the spawned server
//! exiting, or no connection open and none opened for a while after the start (the server
//! went away, even when it is not our child; with connection churn, connections are
//! mostly closed between round trips, and new ones opening show the server is there).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::run::driver::Shared;
use crate::run::target::Target;

/// With no connection open for this long after the start, the server is taken as gone.
pub(crate) const ALL_DOWN_LIMIT: Duration = Duration::from_secs(1);

/// The watcher's state between checks.
#[derive(Debug)]
pub(crate) struct Watch {
    interrupted: &'static AtomicBool,
    all_down_since: Option<Instant>,
    /// Successful connects at the last check.
    connects: u64,
    /// When and why the run was stopped, once it was.
    stopped: Option<(Instant, String)>,
    /// How long before the stop was decided the window was ended (the wait for lost
    /// connections to come back).
    backdated: Duration,
}

impl Watch {
    /// A watcher of the process-wide interrupt flag.
    pub(crate) fn new() -> Self {
        Watch {
            interrupted: crate::os::signals::flag(),
            all_down_since: None,
            connects: 0,
            stopped: None,
            backdated: Duration::ZERO,
        }
    }

    /// Checks once; on a reason to stop, tells the client threads and remembers why.
    /// `load_end` is when the load is planned to end: past it the threads close their
    /// connections, which says nothing about the server.
    pub(crate) fn check(&mut self, now: Instant, load_end: Option<Instant>, shared: &Shared, target: &mut Target) {
        let connects = shared.connects.load(Ordering::Relaxed);
        let opened = std::mem::replace(&mut self.connects, connects) != connects;
        let loading = load_end.is_some_and(|end| now < end);
        self.all_down_since = match (loading, shared.up.load(Ordering::Relaxed), opened) {
            (true, 0, false) => self.all_down_since.or(Some(now)),
            _ => None,
        };
        if self.stopped.is_some() {
            return;
        }
        let stop = outside_reason(self.interrupted, target).map(|r| (now, r)).or_else(|| {
            // The window ends when the last connection went down, not a limit later: that
            // wait measured only failed reconnects, and counting it as load time would read
            // as a client that sent too slowly.
            self.all_down_since
                .filter(|t| now.duration_since(*t) >= ALL_DOWN_LIMIT)
                .map(|t| (t, format!("no connection to the server for {ALL_DOWN_LIMIT:?}")))
        });
        if let Some(stop) = stop {
            shared.stop.store(true, Ordering::Relaxed);
            self.backdated = now.saturating_duration_since(stop.0);
            self.stopped = Some(stop);
        }
    }

    /// How long after the window's end the stop was decided: the CPU readings at the end
    /// are that much later by design, not late.
    pub(crate) fn backdated(&self) -> Duration {
        self.backdated
    }

    /// When and why the run stopped early, if it did.
    pub(crate) fn stopped(&self) -> Option<&(Instant, String)> {
        self.stopped.as_ref()
    }
}

/// A reason to stop that comes from outside the load, for a run and for the parent of
/// shard processes alike: Ctrl-C or SIGTERM, or the spawned server exiting.
pub(crate) fn outside_reason(interrupted: &AtomicBool, target: &mut Target) -> Option<String> {
    if interrupted.load(Ordering::Relaxed) {
        return Some("interrupted".to_string());
    }
    target
        .server
        .as_mut()
        .and_then(|s| s.exited())
        .map(|st| format!("the server exited ({st})"))
}
