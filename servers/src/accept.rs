//! What to do when `accept` fails, shared by every model, and a rate-limited logger.
//!
//! The policy: running out of descriptors or kernel memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)
//! must not busy-loop, because the pending connection stays in the queue and the listener
//! stays readable. The server pauses accepting with an exponential back-off, keeps serving
//! its open connections, and accepts again once descriptors free up. Errors that belong to
//! one connection (ECONNABORTED, EPROTO, EPERM from a firewall, ...) are skipped.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

/// First pause after a resource error.
pub const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause: how late the server may notice that descriptors are free again.
pub const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// How a model should react to one `accept` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptAction {
    /// The queue is empty (WouldBlock): wait for readiness.
    Drained,
    /// Interrupted by a signal (EINTR): try again at once.
    Retry,
    /// Out of descriptors or memory: stop accepting for this long, then try again.
    Pause(Duration),
    /// This one connection failed (e.g. ECONNABORTED: the peer gave up while queued): skip it.
    Skip,
}

/// Tracks consecutive resource errors to compute the back-off, and logs at a limited rate.
#[derive(Debug)]
pub struct AcceptPolicy {
    backoff: Duration,
    log: RateLimitedLog,
}

impl Default for AcceptPolicy {
    fn default() -> Self {
        AcceptPolicy {
            backoff: BACKOFF_MIN,
            log: RateLimitedLog::new(Duration::from_secs(1)),
        }
    }
}

impl AcceptPolicy {
    /// Call after every successful accept: resets the back-off.
    pub fn accepted(&mut self) {
        self.backoff = BACKOFF_MIN;
    }

    /// Classifies an accept error and logs it (rate-limited) when it is worth a line.
    pub fn on_error(&mut self, err: &io::Error) -> AcceptAction {
        if err.kind() == io::ErrorKind::WouldBlock {
            return AcceptAction::Drained;
        }
        if err.kind() == io::ErrorKind::Interrupted {
            return AcceptAction::Retry;
        }
        match err.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                let pause = self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                self.log.log(format_args!(
                    "accept: {err}; pausing accepts for {pause:?}, open connections keep being served"
                ));
                AcceptAction::Pause(pause)
            }
            // The peer reset or gave up while queued, or a per-connection protocol error.
            Some(
                libc::ECONNABORTED
                | libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH,
            ) => AcceptAction::Skip,
            _ => {
                self.log.log(format_args!("accept: {err}; skipped"));
                AcceptAction::Skip
            }
        }
    }
}

/// Writes a line to stderr at most once per period, counting the lines it held back.
#[derive(Debug)]
pub struct RateLimitedLog {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// A logger that prints at most one line per `period`.
    pub fn new(period: Duration) -> Self {
        RateLimitedLog {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// Logs `msg` unless a line was logged less than a period ago. Returns whether it printed.
    pub fn log(&mut self, msg: fmt::Arguments<'_>) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < self.period) {
            self.suppressed += 1;
            return false;
        }
        if self.suppressed > 0 {
            eprintln!("echo-server: {msg} ({} similar lines suppressed)", self.suppressed);
        } else {
            eprintln!("echo-server: {msg}");
        }
        self.last = Some(now);
        self.suppressed = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emfile_backs_off_exponentially_and_resets() {
        let mut p = AcceptPolicy::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(p.on_error(&emfile), AcceptAction::Pause(BACKOFF_MIN));
        assert_eq!(p.on_error(&emfile), AcceptAction::Pause(BACKOFF_MIN * 2));
        for _ in 0..20 {
            p.on_error(&emfile);
        }
        assert_eq!(p.on_error(&emfile), AcceptAction::Pause(BACKOFF_MAX));
        p.accepted();
        assert_eq!(p.on_error(&emfile), AcceptAction::Pause(BACKOFF_MIN));
    }

    #[test]
    fn per_connection_errors_are_skipped() {
        let mut p = AcceptPolicy::default();
        assert_eq!(
            p.on_error(&io::Error::from_raw_os_error(libc::ECONNABORTED)),
            AcceptAction::Skip
        );
        assert_eq!(p.on_error(&io::ErrorKind::WouldBlock.into()), AcceptAction::Drained);
        assert_eq!(p.on_error(&io::ErrorKind::Interrupted.into()), AcceptAction::Retry);
    }

    #[test]
    fn log_is_rate_limited() {
        let mut log = RateLimitedLog::new(Duration::from_secs(60));
        assert!(log.log(format_args!("first")));
        assert!(!log.log(format_args!("second")));
        assert_eq!(log.suppressed, 1);
    }
}
