//! The live progress line on stderr (only when it is a terminal and not `--quiet`): during
//! the connection phase, connections opened and failed attempts; then throughput, p99 and
//! errors of the latest interval.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::aggregate::Aggregator;
use crate::config::RunConfig;
use crate::report::units::us;
use crate::run::driver::Shared;

/// The progress line (a no-op when not shown).
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    conns: usize,
    warmup: Duration,
    interval: Duration,
}

impl Progress {
    /// A progress line for `cfg`'s run, shown only on a terminal.
    pub(crate) fn new(cfg: &RunConfig) -> Self {
        let bar = (!cfg.quiet && std::io::stderr().is_terminal()).then(|| {
            let total = (cfg.warmup + cfg.duration).as_millis() as u64;
            let bar = ProgressBar::new(total);
            bar.set_style(
                // The bar counts milliseconds of the run: `{eta}` is the time left.
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {percent:>3}%, {eta} left  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            conns: cfg.my_conns(),
            warmup: cfg.warmup,
            interval: cfg.interval,
        }
    }

    /// Shows where the run is: `elapsed` since the load started (`None`: still connecting).
    pub(crate) fn update(&self, elapsed: Option<Duration>, shared: &Shared, agg: &Aggregator) {
        let Some(bar) = &self.bar else { return };
        let msg = match (elapsed, agg.latest()) {
            (None, _) => format!(
                "connecting: {} of {} open, {} failed attempts",
                shared.up.load(Ordering::Relaxed),
                self.conns,
                shared.connect_failures.load(Ordering::Relaxed)
            ),
            (Some(_), None) => format!("warmup {:.1}s", self.warmup.as_secs_f64()),
            (Some(_), Some((msgs, p99_us))) => format!(
                "{:.0} msg/s  p99 {}  errors {}",
                msgs as f64 / self.interval.as_secs_f64(),
                us(p99_us),
                agg.errors_so_far()
            ),
        };
        if let Some(e) = elapsed {
            bar.set_position(e.as_millis() as u64);
        }
        bar.set_message(msg);
    }

    /// Removes the line.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
