//! `--slo` on any run: each objective judged on the finished report (a latency
//! percentile's bound, the most errors, the least throughput), the verdicts written into the
//! report, and the exit code a breach gives (99, as k6 gives for a failed threshold).

use crate::config::Goal;
use crate::report::{Objective, ObjectiveResult, Report};

/// The exit code of a run that breached an objective (k6's for a failed threshold); it
/// takes precedence over 1 (errors), since the objectives are the verdict the user asked for.
pub const BREACHED_EXIT: u8 = 99;

/// The verdict of every objective on `r`. A run that completed no round trip meets no
/// latency or throughput objective: nothing was measured to meet it with.
pub fn judge(goals: &[Goal], r: &Report) -> Vec<ObjectiveResult> {
    let measured = r.counters.msgs > 0;
    goals
        .iter()
        .map(|g| {
            let (value, met) = match g {
                Goal::Latency(slo) => {
                    let v = measured.then(|| slo.value(r));
                    (v, v.is_some_and(|v| v <= slo.bound_us))
                }
                Goal::Errors(most) => {
                    let n = r.counters.errors();
                    (Some(n as f64), n <= *most)
                }
                Goal::Throughput(least) => {
                    let v = measured.then_some(r.throughput_msgs_s);
                    (v, v.is_some_and(|v| v >= *least))
                }
            };
            ObjectiveResult {
                objective: g.to_string(),
                measured: value,
                met,
            }
        })
        .collect()
}

/// Judges `r` by `goals` and writes the verdicts into it: every objective (JSON
/// `objectives`), and the list as one with its verdict (CSV `slo`, `slo_met`). With
/// `--stages` each stage is judged on its own (a stage that asked for nothing, a pause at
/// 0, only by the errors objective), and the run's verdicts are the stages', each named
/// with its stage.
pub fn apply(goals: &[Goal], r: &mut Report) {
    if goals.is_empty() {
        return;
    }
    if r.stages.is_empty() {
        let results = judge(goals, r);
        write(goals, r, results);
        return;
    }
    let mut results = Vec::new();
    for s in &mut r.stages {
        let idle = s.stage.as_ref().is_some_and(|i| i.from <= 0.0 && i.to <= 0.0);
        let judged: Vec<Goal> = goals
            .iter()
            .filter(|g| !idle || matches!(g, Goal::Errors(_)))
            .cloned()
            .collect();
        let mine = judge(&judged, s);
        let name = s.stage.as_ref().map(|i| i.cell()).unwrap_or_default();
        results.extend(mine.iter().map(|o| ObjectiveResult {
            objective: format!("{} in stage {name}", o.objective),
            ..o.clone()
        }));
        write(&judged, s, mine);
    }
    write(goals, r, results);
}

/// Writes `results` (judged by `goals`) into `r`.
fn write(goals: &[Goal], r: &mut Report, results: Vec<ObjectiveResult>) {
    let breach = results.iter().find(|o| !o.met).map(|o| {
        format!(
            "{}: measured {}",
            o.objective,
            o.measured
                .map_or("nothing (no round trip)".to_string(), |v| format!("{v:.1}"))
        )
    });
    r.objective = Some(Objective {
        slo: goals.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        met: breach.is_none(),
        reason: breach,
    });
    r.objectives = results;
}

/// Whether `r` breached an objective it was judged by.
pub fn breached(r: &Report) -> bool {
    r.objectives.iter().any(|o| !o.met)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_goals;
    use crate::report::Status;

    fn report(msgs: u64, p99: f64, tput: f64, timeouts: u64) -> Report {
        let mut r = Report::empty("mio", "127.0.0.1:1", None);
        r.counters.msgs = msgs;
        r.counters.timeouts = timeouts;
        r.latency.p99_us = p99;
        r.throughput_msgs_s = tput;
        r.status = Status::Ok;
        r
    }

    #[test]
    fn each_kind_is_judged_and_a_run_without_round_trips_meets_no_measured_goal() {
        let goals = parse_goals("p99=5ms, errors=0, throughput>=50k").unwrap();
        let mut ok = report(1000, 4000.0, 60_000.0, 0);
        apply(&goals, &mut ok);
        assert!(!breached(&ok), "{:?}", ok.objectives);
        assert_eq!(
            ok.objective.as_ref().unwrap().slo,
            "p99 <= 5000 us, errors <= 0, throughput >= 50000 msg/s"
        );
        let mut bad = report(1000, 6000.0, 40_000.0, 3);
        apply(&goals, &mut bad);
        let met: Vec<bool> = bad.objectives.iter().map(|o| o.met).collect();
        assert_eq!(met, [false, false, false]);
        assert_eq!(bad.objectives[1].measured, Some(3.0));
        assert!(bad
            .objective
            .unwrap()
            .reason
            .unwrap()
            .starts_with("p99 <= 5000 us: measured 6000.0"));
        let mut none = report(0, 0.0, 0.0, 0);
        apply(&goals, &mut none);
        let met: Vec<bool> = none.objectives.iter().map(|o| o.met).collect();
        assert_eq!(
            met,
            [false, true, false],
            "nothing measured meets no latency or throughput bound"
        );
        assert_eq!(none.objectives[0].measured, None);
    }

    #[test]
    fn the_list_is_checked_item_by_item() {
        for (bad, says) in [
            ("p99=5ms,", "empty objective"),
            ("errors=some", "errors=N"),
            ("throughput>=fast", "throughput>=RATE"),
            ("throughput=5k", "throughput>=RATE"),
            ("p42=1ms", "unknown percentile"),
        ] {
            let e = parse_goals(bad).unwrap_err().to_string();
            assert!(e.starts_with("--slo") && e.contains(says), "{bad}: {e}");
        }
        assert_eq!(parse_goals("errors<=5").unwrap(), [Goal::Errors(5)]);
    }
}
