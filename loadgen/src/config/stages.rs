//! `--stages`: the list parsed into a [`Profile`], and its checks against the rest of the
//! run (the rate it replaces, the connections that must cover it, the interval its
//! boundaries must fall on).

use std::sync::Arc;
use std::time::Duration;

use super::parse::{parse_duration, parse_si};
use super::RunConfig;
use crate::error::{flag_error as invalid, Error};
use crate::measure::schedule::{Profile, Stage};

/// At most this many stages: each keeps a whole interval's histograms until the run's end.
pub const MAX_STAGES: usize = 64;

/// What `--stages`' targets count: `--stage-target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StageTarget {
    /// Messages per second: an open loop whose rate follows the stages.
    #[default]
    Rate,
    /// Open connections: a closed loop; `--conns` is the most.
    Conns,
}

/// Parses `--stages` (see [`parse_profile`]); an error names the flag and the stage.
pub fn parse_stages(s: &str) -> Result<Profile, Error> {
    parse_profile(s, MAX_STAGES).map_err(|why| invalid("--stages", s, why))
}

/// Parses `D:T` (a ramp to T over D) and `D@T` (a step to T, held for D), comma-separated,
/// at most `max` of them; `T` with an SI suffix (`10k`). An error names the stage.
pub fn parse_profile(s: &str, max: usize) -> Result<Profile, String> {
    let items: Vec<&str> = s.split(',').map(str::trim).collect();
    if items.len() > max {
        return Err(format!("{} stages; at most {max}", items.len()));
    }
    let mut stages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let bad = |why: String| format!("stage {} `{item}`: {why}", i + 1);
        let (d, t, step) = match (item.split_once(':'), item.split_once('@')) {
            (Some((d, t)), None) => (d, t, false),
            (None, Some((d, t))) => (d, t, true),
            _ => {
                return Err(bad(
                    "expected DURATION:TARGET (a ramp) or DURATION@TARGET (a step), e.g. 30s:1k or 10s@5k".into(),
                ))
            }
        };
        let duration =
            parse_duration("--stages", d).map_err(|_| bad(format!("`{d}` is not a duration (e.g. 500ms, 30s, 2m)")))?;
        if duration.is_zero() {
            return Err(bad("lasts no time; a stage lasts at least 1ms".into()));
        }
        if duration.as_nanos() % 1_000_000 != 0 {
            return Err(bad("stages last whole milliseconds".into()));
        }
        let target = match parse_si(t) {
            Some(v) if (0.0..=1e9).contains(&v) => v,
            _ => {
                return Err(bad(format!(
                    "`{t}` is not a target: a number at least 0 and at most 1e9, e.g. 0, 500 or 10k"
                )))
            }
        };
        stages.push(Stage {
            duration,
            target,
            step,
            spec: (*item).to_string(),
        });
    }
    let profile = Profile::new(stages);
    if profile.peak() <= 0.0 {
        return Err("every stage's target is 0: nothing would be sent".into());
    }
    if profile.total() > Duration::from_secs(7 * 24 * 3600) {
        return Err("the stages last over a week together".into());
    }
    Ok(profile)
}

/// The stages of an interval log's notes (see [`Profile::log_note`]) and what they count
/// (`rate` or `conns`), if it has them.
pub fn stages_of_log(notes: &[String]) -> Option<(Profile, String)> {
    let rest = notes.iter().find_map(|n| n.strip_prefix("Stages: "))?;
    let (spec, of) = rest.rsplit_once(" of=")?;
    Some((parse_profile(spec, usize::MAX).ok()?, of.to_string()))
}

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
            return Err(invalid(
                "--rate",
                rate,
                "the stages set the rate over time: leave --rate out (or use --stage-target conns for stages of connections)",
            ));
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
                        humantime::format_duration(common_interval(p))
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `--stages` parsed, if given; `--stage-target conns` without them is refused (it would
/// do nothing).
pub(super) fn stages(s: Option<&str>, of: StageTarget) -> Result<Option<Arc<Profile>>, Error> {
    if s.is_none() && of == StageTarget::Conns {
        return Err(invalid(
            "--stage-target",
            "conns",
            "says what --stages count, and there are none: add --stages (e.g. 30s:100,1m:100,10s:0)",
        ));
    }
    s.map(|s| parse_stages(s).map(Arc::new)).transpose()
}
