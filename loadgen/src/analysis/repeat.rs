//! Repeating a configuration: a fixed number of times (`--repeat N`), or until the 95%
//! confidence interval of its mean throughput is narrow enough (`--repeat auto`, as
//! netperf's `-I 95,5 -i 10,3`), with at least 3 and at most `--max-repeat` runs. `run` and
//! `sweep` share it; `sweep` interleaves the repeats of its configurations.

use crate::config::parse_percent;
use crate::error::{flag_error, Error};
use crate::report::units::per_s;
use crate::stats;

/// Fewest runs `--repeat auto` makes: two runs give an interval, but one with a single
/// degree of freedom (t = 12.7) that only luck makes narrow.
pub const AUTO_MIN: usize = 3;

/// How many runs a configuration gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Repeat {
    /// Exactly this many.
    Fixed(usize),
    /// Until the 95% interval's half-width is within `target_pct` of the mean, between
    /// [`AUTO_MIN`] and `max` runs.
    Auto {
        /// Most runs.
        max: usize,
        /// Target half-width, percent of the mean.
        target_pct: f64,
    },
}

impl Repeat {
    /// Checks `--repeat N|auto`, `--max-repeat N` and `--ci-target PCT`.
    pub fn parse(repeat: &str, max_repeat: u32, ci_target: &str) -> Result<Repeat, Error> {
        let target_pct = parse_percent("--ci-target", ci_target)?;
        if target_pct <= 0.0 {
            return Err(flag_error("--ci-target", ci_target, "must be above 0%, e.g. 2.5%"));
        }
        match repeat.trim() {
            "auto" => {
                if (max_repeat as usize) < AUTO_MIN {
                    return Err(flag_error(
                        "--max-repeat",
                        max_repeat,
                        format!("--repeat auto makes at least {AUTO_MIN} runs; give {AUTO_MIN} or more"),
                    ));
                }
                Ok(Repeat::Auto {
                    max: max_repeat as usize,
                    target_pct,
                })
            }
            // A count as every count flag takes it: 3, 1e2, 1k.
            n => match crate::config::parse_count("--repeat", n) {
                Ok(n) if n >= 1 => Ok(Repeat::Fixed(usize::try_from(n).unwrap_or(usize::MAX))),
                _ => Err(flag_error(
                    "--repeat",
                    repeat,
                    "expected a count of at least 1 (e.g. 3, or 1e2), or auto",
                )),
            },
        }
    }

    /// Most runs a configuration can get.
    pub fn max(self) -> usize {
        match self {
            Repeat::Fixed(n) => n,
            Repeat::Auto { max, .. } => max,
        }
    }
}

/// The throughputs of one configuration's runs so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Runs made, failed ones included.
    pub runs: usize,
    /// Throughput of every run that measured something, msg/s.
    pub throughputs: Vec<f64>,
    /// Skipped on purpose (a `sweep --slo` rung above one that missed): done, and said.
    pub skipped: bool,
}

impl Tally {
    /// Records one run (`None`: it measured nothing).
    pub fn add(&mut self, throughput: Option<f64>) {
        self.runs += 1;
        self.throughputs.extend(throughput);
    }

    /// Mean throughput and the 95% interval's half-width in percent of it (Student t,
    /// n − 1 degrees of freedom); `None` with fewer than two measured runs.
    pub fn interval(&self) -> Option<(f64, f64)> {
        let n = self.throughputs.len();
        if n < 2 {
            return None;
        }
        let (mean, sd) = stats::mean_sd(&self.throughputs);
        let half = stats::t_quantile(0.05, (n - 1) as f64) * sd / (n as f64).sqrt();
        (mean > 0.0).then(|| (mean, half / mean * 100.0))
    }

    /// Whether the target was met (always true for a fixed count).
    pub fn met(&self, repeat: Repeat) -> bool {
        match repeat {
            Repeat::Fixed(_) => true,
            Repeat::Auto { target_pct, .. } => {
                self.throughputs.len() >= AUTO_MIN && self.interval().is_some_and(|(_, hw)| hw <= target_pct)
            }
        }
    }

    /// Whether this configuration needs no more runs.
    pub fn done(&self, repeat: Repeat) -> bool {
        self.skipped || self.runs >= repeat.max() || (matches!(repeat, Repeat::Auto { .. }) && self.met(repeat))
    }

    /// Marks it skipped: no more runs, and no shortfall warning.
    pub fn skip(&mut self) {
        self.skipped = true;
    }

    /// `n=7, throughput 96210 msg/s ± 1.9% (95% CI)`.
    /// A run that measured nothing is said, not hidden in a smaller n.
    pub fn describe(&self) -> String {
        let n = self.throughputs.len();
        let unmeasured = match self.runs - n {
            0 => String::new(),
            k => format!(" ({k} of {} runs measured nothing)", self.runs),
        };
        match self.interval() {
            Some((mean, hw)) => format!(
                "n={n}, throughput {} msg/s ± {hw:.1}% (95% CI){unmeasured}",
                per_s(mean)
            ),
            None => format!("n={n}, no interval (fewer than 2 measured runs){unmeasured}"),
        }
    }

    /// The warning when `--repeat auto` stopped at the maximum without reaching its target.
    pub fn shortfall(&self, repeat: Repeat, what: &str) -> Option<String> {
        match repeat {
            Repeat::Auto { max, target_pct } if !self.met(repeat) && !self.skipped => Some(format!(
                "WARNING: {what}: the 95% interval did not reach ±{target_pct}% in {max} runs ({}); \
                 the machine is noisier than the target: raise --max-repeat or --duration, or quiet the machine",
                self.describe()
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_and_auto() {
        assert_eq!(Repeat::parse("3", 10, "2.5%").unwrap(), Repeat::Fixed(3));
        assert_eq!(
            Repeat::parse("3e0", 10, "2.5%").unwrap(),
            Repeat::Fixed(3),
            "counts take exponents"
        );
        assert_eq!(
            Repeat::parse("auto", 10, "2.5%").unwrap(),
            Repeat::Auto {
                max: 10,
                target_pct: 2.5
            }
        );
        assert!(Repeat::parse("0", 10, "2.5%")
            .unwrap_err()
            .to_string()
            .starts_with("--repeat"));
        assert!(Repeat::parse("auto", 2, "2.5%")
            .unwrap_err()
            .to_string()
            .starts_with("--max-repeat"));
        assert!(Repeat::parse("auto", 10, "0")
            .unwrap_err()
            .to_string()
            .starts_with("--ci-target"));
    }

    #[test]
    fn auto_stops_when_the_interval_is_narrow_or_at_the_maximum() {
        let auto = Repeat::Auto {
            max: 5,
            target_pct: 2.5,
        };
        let mut quiet = Tally::default();
        for t in [1000.0, 1001.0] {
            quiet.add(Some(t));
        }
        assert!(!quiet.done(auto), "at least 3 runs");
        quiet.add(Some(999.0));
        assert!(quiet.done(auto) && quiet.shortfall(auto, "x").is_none());
        let mut noisy = Tally::default();
        for t in [1000.0, 1500.0, 700.0, 1200.0] {
            noisy.add(Some(t));
        }
        assert!(!noisy.done(auto));
        noisy.add(None);
        assert!(noisy.done(auto), "a failed run counts towards the maximum");
        assert!(noisy.shortfall(auto, "mio conns=10").unwrap().contains("mio conns=10"));
        assert!(
            noisy.describe().starts_with("n=4, throughput 1100 msg/s ± ")
                && noisy.describe().ends_with("(1 of 5 runs measured nothing)"),
            "{}",
            noisy.describe()
        );
        assert!(!quiet.describe().contains("measured nothing"));
    }
}
