//! The server's `--work` as it did it: per kind, the duration asked beside the one the
//! server measured.

use serde::Serialize;

/// One kind of `--work` step as the server did it (`servers::work::done`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WorkDone {
    /// `cpu`, `wait` or `block`.
    pub kind: &'static str,
    /// Steps done.
    pub n: u64,
    /// Mean duration asked, µs.
    pub asked_mean_us: f64,
    /// Mean duration realised, µs.
    pub done_mean_us: f64,
    /// 99th percentile of the realised duration, µs (within 1/16).
    pub done_p99_us: f64,
}

impl WorkDone {
    /// From the server's tally.
    pub fn of(k: &servers::work::done::KindDone) -> WorkDone {
        WorkDone {
            kind: k.kind,
            n: k.n,
            asked_mean_us: k.asked_mean_us,
            done_mean_us: k.done_mean_us,
            done_p99_us: k.done_p99_us,
        }
    }

    /// Realised over asked (1.0: exact).
    pub fn ratio(&self) -> f64 {
        self.done_mean_us / self.asked_mean_us
    }
}

impl WorkDone {
    /// The summary's line, durations shown by `us`: `  work       wait: asked 1.00 ms ...`.
    pub fn line(&self, us: impl Fn(f64) -> String) -> String {
        let (asked, done, p99) = (us(self.asked_mean_us), us(self.done_mean_us), us(self.done_p99_us));
        let off = (self.ratio() - 1.0) * 100.0;
        format!(
            "  work       {}: asked {asked} mean, done {done} mean (p99 {p99}; {off:+.1}%) over {} messages",
            self.kind, self.n
        )
    }
}
