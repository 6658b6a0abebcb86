//! `--stages` parsed into a [`Profile`], the window a run of stages has, and the stages an
//! interval log's note names.

use std::sync::Arc;
use std::time::Duration;

use super::defaults::WARMUP_AUTO_CAP;
use super::parse::{parse_duration, parse_si, positive_duration};
use crate::cli::choice::StageTarget;
use crate::cli::LoadArgs;
use crate::error::{flag_error as invalid, Error};
use crate::measure::schedule::{Profile, Stage};

/// At most this many stages: each keeps a whole interval's histograms until the run's end.
pub const MAX_STAGES: usize = 64;

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
#[cfg_attr(not(feature = "html"), allow(dead_code))] // read by the charts
pub fn stages_of_log(notes: &[String]) -> Option<(Profile, String)> {
    let rest = notes.iter().find_map(|n| n.strip_prefix("Stages: "))?;
    let (spec, of) = rest.rsplit_once(" of=")?;
    Some((parse_profile(spec, usize::MAX).ok()?, of.to_string()))
}

/// `--rate` given with `--stages`: refused, by name.
pub fn rate_with_stages(rate: &str) -> Error {
    invalid(
        "--rate",
        rate,
        "the stages set the rate over time: leave --rate out (or use --stage-target conns for stages of connections)",
    )
}

/// The stages (`None` without `--stages`), the window (duration, warm-up, `--warmup auto`'s
/// cap) and the open loop's rate they make: the stages are the run, with no warm-up (a
/// warm-up is a stage of its own), and a rate's stages give their mean.
#[allow(clippy::type_complexity)]
pub(super) fn window(load: &LoadArgs) -> Result<(Option<Arc<Profile>>, Window, Option<f64>), Error> {
    let stages = stages(load.stages.as_deref(), load.stage_target)?;
    let Some(p) = &stages else {
        return Ok((None, base_window(load)?, None));
    };
    let rate = (load.stage_target == StageTarget::Rate).then(|| p.mean());
    Ok((stages.clone(), (p.total(), Duration::ZERO, None), rate))
}

/// Measured time, warm-up, and `--warmup auto`'s cap.
pub(super) type Window = (Duration, Duration, Option<Duration>);

/// `--stages` parsed, if given; `--stage-target conns` without them is refused (it would
/// do nothing).
fn stages(s: Option<&str>, of: StageTarget) -> Result<Option<Arc<Profile>>, Error> {
    if s.is_none() && of == StageTarget::Conns {
        return Err(invalid(
            "--stage-target",
            "conns",
            "says what --stages count, and there are none: add --stages (e.g. 30s:100,1m:100,10s:0)",
        ));
    }
    s.map(|s| parse_stages(s).map(Arc::new)).transpose()
}

/// The run's length, its warm-up, and with `--warmup auto` the most MSER may cut: the run
/// measures from the start for `--duration` plus that cap and cuts the warm-up at the end,
/// so the window keeps at least `--duration`.
fn base_window(load: &LoadArgs) -> Result<(Duration, Duration, Option<Duration>), Error> {
    let duration = positive_duration("--duration", &load.duration)?;
    let auto = (load.warmup.trim() == "auto").then(|| (duration / 2).clamp(Duration::from_secs(1), WARMUP_AUTO_CAP));
    let warmup = match auto {
        Some(_) => Duration::ZERO,
        None => parse_duration("--warmup", &load.warmup)?,
    };
    Ok((duration + auto.unwrap_or_default(), warmup, auto))
}
