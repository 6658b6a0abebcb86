//! `--warmup auto`: the run measured from its start, for `--duration` plus a cap; at the
//! end MSER ([`crate::stats::steady::mser_truncation`]) chooses how many leading intervals were
//! warm-up, and the report is made of the rest. The rule is in `docs/statistics.md`.

use std::time::Duration;

use super::aggregate::Aggregator;
use crate::config::RunConfig;
use crate::report::{MachineUse, ServerCost};

/// How many leading intervals the aggregator must hold whole for `cfg` (0 without
/// `--warmup auto`).
pub(super) fn intervals_to_hold(cfg: &RunConfig) -> u32 {
    cfg.warmup_auto.map_or(0, |cap| {
        (cap.as_nanos().div_ceil(cfg.interval.as_nanos().max(1))) as u32
    })
}

/// The window after an automatic warm-up was cut.
pub(super) struct Settled {
    /// The configuration as the report should see it: the chosen warm-up, the window after it.
    pub cfg: RunConfig,
    /// The measured window after the warm-up.
    pub measured: Duration,
    /// Client CPU seconds, scaled to the kept window's share of the messages.
    pub client_cpu_s: f64,
    /// Server cost, its CPU scaled the same way.
    pub server: Option<ServerCost>,
    /// The machine's use, scaled the same way.
    pub machine: Option<MachineUse>,
    /// What was chosen, for the report (`None` without `--warmup auto`).
    pub rule: Option<String>,
    /// A WARNING when the warm-up looked longer than the cap, so the window still holds
    /// some of it.
    pub warning: Option<String>,
}

/// Cuts the warm-up MSER finds (with `--warmup auto`; otherwise changes nothing). CPU was
/// sampled over the whole run: it is scaled by the kept share of the messages, so CPU per
/// message stays exactly the whole run's.
pub(super) fn settle(
    cfg: &RunConfig,
    agg: &mut Aggregator,
    measured: Duration,
    client_cpu_s: f64,
    server: Option<ServerCost>,
    machine: Option<MachineUse>,
) -> Settled {
    let Some(cap) = cfg.warmup_auto else {
        return Settled {
            cfg: cfg.clone(),
            measured,
            client_cpu_s,
            server,
            machine,
            rule: None,
            warning: None,
        };
    };
    let all_msgs = agg.total_with_held_msgs();
    let super::aggregate::Cut {
        cut,
        warmup_beyond: beyond,
    } = agg.settle();
    let warm = cfg.interval * cut;
    let kept = agg.total().counters.msgs;
    let share = if all_msgs > 0 {
        kept as f64 / all_msgs as f64
    } else {
        1.0
    };
    Settled {
        cfg: RunConfig {
            warmup: warm,
            duration: cfg.duration.saturating_sub(warm),
            ..cfg.clone()
        },
        measured: measured.saturating_sub(warm),
        client_cpu_s: client_cpu_s * share,
        server: server.map(|s| ServerCost {
            cpu_s: s.cpu_s.map(|c| c * share),
            host_cpu: s.host_cpu.map(|h| h.scaled(share)),
            ..s
        }),
        machine: machine.map(|m| m.scaled(share)),
        rule: Some(format!(
            "auto: MSER cut {cut} interval(s) of {} (at most {:.1} s)",
            humantime::format_duration(cfg.interval),
            cap.as_secs_f64()
        )),
        warning: beyond.map(|d| {
            let looked = cfg.interval * d;
            format!(
                "the warm-up outlasted what --warmup auto may cut: the throughput settled after about {:.1} s, \
                 past the {:.1} s cap, so the window still holds part of the warm-up; give it yourself \
                 with a margin (--warmup {:.0}s)",
                looked.as_secs_f64(),
                cap.as_secs_f64(),
                (looked.as_secs_f64() * 1.5).ceil()
            )
        }),
    }
}

/// The aggregator of `cfg`'s run over `threads` threads: holding what `--warmup auto`
/// decides on, and with `--stages` each stage's intervals apart.
pub(super) fn aggregator(threads: usize, cfg: &RunConfig) -> Aggregator {
    Aggregator::new(threads)
        .holding(intervals_to_hold(cfg))
        .staged(&super::staged::starts(cfg))
}
