//! `--stages`: the list parsed into a [`Profile`], and its checks against the rest of the
//! run (the rate it replaces, the connections that must cover it, the interval its
//! boundaries must fall on).

use std::time::Duration;

use super::profile::rate_with_stages;
use super::RunConfig;
use crate::error::{flag_error as invalid, Error};
use crate::measure::schedule::Profile;

/// The greatest common divisor of the stages' lengths, in whole milliseconds: the longest
/// interval whose boundaries fall on every stage's.
fn common_interval(p: &Profile) -> Duration {
    let gcd = |mut a: u128, mut b: u128| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let ms = p.stages().iter().map(|s| s.duration.as_millis()).fold(0, gcd);
    Duration::from_millis(ms as u64)
}

/// A length as one shell word a flag takes (`500ms`, `2s`): humantime's `1s 500ms` would
/// split into two arguments.
fn flag_value(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl RunConfig {
    /// `--stages` against the rest: open loop, the rate is the stages' (so `--rate` is
    /// refused) and `--conn-rate` is another schedule; closed loop, `--conns` must cover the
    /// most connections a stage asks for. Either way every stage starts on an interval's
    /// boundary (its statistics are the intervals it holds).
    pub(super) fn check_stages(&self, rate_given: Option<&str>) -> Result<(), Error> {
        let Some(p) = &self.stages else {
            return Ok(());
        };
        let spec = p.to_string();
        if let Some(rate) = rate_given {
            return Err(rate_with_stages(rate));
        }
        if let Some((rate, _)) = self.churn.conn_rate() {
            return Err(invalid(
                "--conn-rate",
                rate,
                "is a schedule of its own and cannot take --stages: use one of them",
            ));
        }
        if self.rate.is_none() && p.peak() > self.conns as f64 {
            return Err(invalid(
                "--conns",
                self.conns,
                format!(
                    "is the most connections --stages may open, and a stage asks for {}: raise --conns to at least that",
                    p.peak().ceil()
                ),
            ));
        }
        let every = self.interval.as_nanos();
        for (i, s) in p.stages().iter().enumerate() {
            if s.duration.as_nanos() % every != 0 {
                return Err(invalid(
                    "--interval",
                    humantime::format_duration(self.interval),
                    format!(
                        "must divide every stage's length, and stage {} `{}` of --stages {spec} lasts {}: use --interval {}",
                        i + 1,
                        s.spec,
                        humantime::format_duration(s.duration),
                        flag_value(common_interval(p))
                    ),
                ));
            }
        }
        Ok(())
    }
}
