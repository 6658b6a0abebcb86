//! Watching a run for reasons to stop early: Ctrl-C or SIGTERM, the spawned server
//! exiting, or no connection open for a while after the start (the server went away,
//! even when it is not our child).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::driver::Shared;
use crate::target::Target;

/// With no connection open for this long after the start, the server is taken as gone.
pub(crate) const ALL_DOWN_LIMIT: Duration = Duration::from_secs(1);

/// The watcher's state between checks.
#[derive(Debug)]
pub(crate) struct Watch {
    interrupted: &'static AtomicBool,
    all_down_since: Option<Instant>,
    /// When and why the run was stopped, once it was.
    stopped: Option<(Instant, String)>,
}

impl Watch {
    /// A watcher of the process-wide interrupt flag.
    pub(crate) fn new() -> Self {
        Watch {
            interrupted: crate::signals::flag(),
            all_down_since: None,
            stopped: None,
        }
    }

    /// Checks once; on a reason to stop, tells the client threads and remembers why.
    pub(crate) fn check(&mut self, now: Instant, shared: &Shared, target: &mut Target) {
        self.all_down_since = match (shared.start.get(), shared.up.load(Ordering::Relaxed)) {
            (Some(_), 0) => self.all_down_since.or(Some(now)),
            _ => None,
        };
        if self.stopped.is_some() {
            return;
        }
        let reason = if self.interrupted.load(Ordering::Relaxed) {
            Some("interrupted".to_string())
        } else if let Some(st) = target.server.as_mut().and_then(|s| s.exited()) {
            Some(format!("the server exited ({st})"))
        } else {
            self.all_down_since
                .filter(|t| now.duration_since(*t) >= ALL_DOWN_LIMIT)
                .map(|_| format!("no connection to the server for {ALL_DOWN_LIMIT:?}"))
        };
        if let Some(reason) = reason {
            shared.stop.store(true, Ordering::Relaxed);
            self.stopped = Some((now, reason));
        }
    }

    /// When and why the run stopped early, if it did.
    pub(crate) fn stopped(&self) -> Option<&(Instant, String)> {
        self.stopped.as_ref()
    }
}
