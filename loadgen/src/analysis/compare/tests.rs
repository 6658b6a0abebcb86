//! The comparison maths: outcomes, the gate, and seeded simulations of its error rates.

use super::*;

fn row(target: &str, conns: u32, tput: f64, p99: f64) -> Row {
    row_without(target, conns, tput, p99, "")
}

/// [`row`] without the column `left_out`.
fn row_without(target: &str, conns: u32, tput: f64, p99: f64, left_out: &str) -> Row {
    Row::new(
        [
            ("schema", "1".to_string()),
            ("target", target.to_string()),
            ("transport", "tcp".into()),
            ("mode", "closed".into()),
            ("conns", conns.to_string()),
            ("msg_size", "64".into()),
            ("depth", "1".into()),
            ("rate", String::new()),
            ("msgs", "100000".into()),
            ("throughput_msgs_s", tput.to_string()),
            ("lat_p99_us", p99.to_string()),
        ]
        .into_iter()
        .filter(|(k, _)| *k != left_out)
        .map(|(k, v)| (k.to_string(), v)),
    )
}

fn metrics() -> Vec<Metric> {
    ["throughput", "p99"].map(Metric::parse).to_vec()
}

fn rows(tputs: &[f64]) -> Vec<Row> {
    tputs.iter().map(|&t| row("mio", 10, t, 100.0)).collect()
}

#[test]
fn single_runs_are_inconclusive_and_a_bad_point_estimate_fails_the_gate() {
    let base = [row("mio", 10, 1000.0, 100.0)];
    let new = [row("mio", 10, 1200.0, 150.0)];
    let c = compare(&base, &new, &metrics(), 5.0);
    let (t, p) = (&c.changes[0], &c.changes[1]);
    assert!((t.ratio() - 1.2).abs() < 1e-11 && (p.ratio() - 1.5).abs() < 1e-11);
    assert_eq!((t.outcome, p.outcome), (Outcome::Inconclusive, Outcome::Inconclusive));
    assert_eq!(t.advice, Some(Advice::MeasureNoise));
    assert!(!t.fails_gate(), "better throughput never fails");
    assert!(p.fails_gate(), "p99 +50% with one run a side cannot be cleared");
}

#[test]
fn four_outcomes() {
    let base = rows(&[1000.0, 1010.0, 990.0, 1005.0, 995.0]);
    let c = |new: &[f64]| compare(&base, &rows(new), &metrics()[..1], 10.0).changes[0].clone();
    assert_eq!(c(&[1003.0, 997.0, 1001.0, 999.0, 1000.0]).outcome, Outcome::Same);
    assert_eq!(c(&[800.0, 810.0, 790.0, 805.0, 795.0]).outcome, Outcome::Worse);
    assert_eq!(c(&[1300.0, 1310.0, 1290.0, 1305.0, 1295.0]).outcome, Outcome::Better);
    let unclear = c(&[930.0, 1030.0, 830.0, 980.0, 880.0]);
    assert_eq!(unclear.outcome, Outcome::Inconclusive);
    assert!(
        // Near the band's edge with this noise: many more runs, or more than 50.
        matches!(unclear.advice, Some(Advice::Repeats(n)) if n > 5) || unclear.advice == Some(Advice::Impractical),
        "{:?}",
        unclear.advice
    );
    // Lower is better for latency: a higher p99 is worse.
    let slow: Vec<Row> = (0..5).map(|i| row("mio", 10, 1000.0, 200.0 + i as f64)).collect();
    let fast: Vec<Row> = (0..5).map(|i| row("mio", 10, 1000.0, 100.0 + i as f64)).collect();
    assert_eq!(
        compare(&fast, &slow, &metrics(), 10.0).changes[1].outcome,
        Outcome::Worse
    );
}

#[test]
fn a_report_against_itself_passes() {
    let base = rows(&[1000.0, 1300.0, 700.0]);
    let c = compare(&base, &base, &metrics(), 5.0);
    assert!(c.changes.iter().all(|ch| !ch.fails_gate()));
}

#[test]
fn missing_rows_are_listed() {
    let base = [row("mio", 10, 1.0, 1.0), row("mio", 100, 1.0, 1.0)];
    let new = [row("mio", 10, 1.0, 1.0), row("tokio", 10, 1.0, 1.0)];
    let c = compare(&base, &new, &metrics(), 5.0);
    assert_eq!((c.only_base.len(), c.only_new.len()), (1, 1));
    assert!(c.only_base[0].describe(&[]).contains("conns=100"));
    assert_eq!(c.changes.len(), 2);
}

#[test]
fn relative_to_a_baseline_model() {
    let rows = [
        row("mio", 10, 1000.0, 100.0),
        row("mio", 10, 1000.0, 100.0),
        row("tokio", 10, 900.0, 110.0),
        row("tokio", 10, 940.0, 110.0),
    ];
    let (rel, _, _) = relative(&rows, "target", "mio", &[Metric::parse("throughput")], 5.0);
    assert_eq!(rel.len(), 1);
    assert_eq!(rel[0].value, "tokio");
    assert!((rel[0].change.ratio() - (900.0f64 * 940.0).sqrt() / 1000.0).abs() < 1e-9);
}

#[test]
fn percentiles_of_short_runs_are_named() {
    let mut short = row("mio", 10, 1000.0, 100.0);
    short = Row::new(
        [
            "schema",
            "target",
            "transport",
            "mode",
            "conns",
            "msg_size",
            "depth",
            "rate",
            "lat_p99_us",
        ]
        .iter()
        .map(|c| (c.to_string(), short.get(c).to_string()))
        .chain([("msgs".to_string(), "500".to_string())]),
    );
    let c = compare(&[short.clone()], &[short], &[Metric::parse("p99")], 5.0);
    assert!(c.changes[0].not_estimable.as_deref().unwrap().contains("needs 1000"));
}

/// Seeded lognormal noise: `n` runs of a metric whose true value is `mean`, with
/// coefficient of variation `cv`.
fn noisy(rng: &mut fastrand::Rng, n: usize, mean: f64, cv: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            // Box–Muller.
            let (u1, u2) = (rng.f64().max(1e-300), rng.f64());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            mean * (cv * z).exp()
        })
        .collect()
}

/// The share of `trials` synthetic comparisons (one configuration, throughput, `n` runs a
/// side, new = base × `factor`) that fail the gate at `threshold` %.
fn gate_failure_rate(seed: u64, trials: usize, n: usize, cv: f64, factor: f64, threshold: f64) -> f64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let fails = (0..trials)
        .filter(|_| {
            let base = rows(&noisy(&mut rng, n, 100_000.0, cv));
            let new = rows(&noisy(&mut rng, n, 100_000.0 * factor, cv));
            compare(&base, &new, &[Metric::parse("throughput")], threshold).changes[0].fails_gate()
        })
        .count();
    let rate = fails as f64 / trials as f64;
    // Shown with --nocapture: the figures docs/statistics.md quotes.
    println!("n={n} cv={cv} factor={factor} threshold={threshold}%: gate fails {rate:.4}");
    rate
}

#[test]
fn simulation_no_change_at_n5_cv5_passes_the_gate_at_least_95_percent() {
    let rate = gate_failure_rate(1, 2000, 5, 0.05, 1.0, 10.0);
    assert!(rate <= 0.05, "false failures {rate}");
}

#[test]
fn simulation_a_20_percent_loss_at_n5_cv5_fails_the_gate_at_least_90_percent() {
    let rate = gate_failure_rate(2, 2000, 5, 0.05, 0.8, 10.0);
    assert!(rate >= 0.90, "detected {rate}");
}

#[test]
fn simulation_a_halving_at_n2_fails_the_gate_up_to_cv30() {
    for (seed, cv) in [(3, 0.05), (4, 0.15), (5, 0.30)] {
        let rate = gate_failure_rate(seed, 2000, 2, cv, 0.5, 5.0);
        assert!(rate >= 0.95, "cv {cv}: detected {rate}");
    }
}

/// The columns the test rows below are built of (a run's key and three measurements).
const ROW_COLUMNS: [&str; 10] = [
    "schema",
    "target",
    "transport",
    "mode",
    "conns",
    "msg_size",
    "depth",
    "msgs",
    "throughput_msgs_s",
    "lat_p99_us",
];

/// A row of `target` at 1000 connections with `server_workers` as loadgen records it.
fn with_workers(target: &str, workers: &str, tput: f64) -> Row {
    let mut fields: Vec<(String, String)> = ROW_COLUMNS
        .iter()
        .chain(&["rate", "server_workers"])
        .map(|&c| (c.to_string(), String::new()))
        .collect();
    for (c, v) in fields.iter_mut() {
        *v = match c.as_str() {
            "target" => target.into(),
            "server_workers" => workers.into(),
            "throughput_msgs_s" => tput.to_string(),
            _ => row(target, 1000, tput, 100.0).get(c).to_string(),
        };
    }
    Row::new(fields)
}

#[test]
fn models_are_compared_at_their_own_defaults() {
    // A sweep's rows: mio's 1 loop, the pool's worker per connection, thread-per-conn's none.
    let rows: Vec<Row> = [
        ("mio", "1"),
        ("threadpool", "1000"),
        ("thread-per-conn", ""),
        ("tokio", "1"),
    ]
    .iter()
    .flat_map(|&(t, w)| [with_workers(t, w, 1000.0), with_workers(t, w, 1010.0)])
    .collect();
    let (rel, _, left) = relative(&rows, "target", "mio", &[Metric::parse("throughput")], 5.0);
    let mut values: Vec<&str> = rel.iter().map(|r| r.value.as_str()).collect();
    values.sort_unstable();
    assert_eq!(
        values,
        ["thread-per-conn", "threadpool", "tokio"],
        "every model pairs with mio"
    );
    assert!(left.is_empty(), "{left:?}");
    assert!(rel[0].change.key.describe(&[]).contains("server_workers=default"));

    // A pool given 16 workers is not at its default: left out, and the column is named.
    let rows: Vec<Row> = [("mio", "1"), ("threadpool", "16")]
        .iter()
        .flat_map(|&(t, w)| [with_workers(t, w, 1000.0), with_workers(t, w, 1010.0)])
        .collect();
    let (rel, _, left) = relative(&rows, "target", "mio", &[Metric::parse("throughput")], 5.0);
    assert!(rel.is_empty());
    assert_eq!(left.len(), 1);
    let said = left[0].describe("target");
    assert!(
        said.starts_with("target=threadpool") && said.contains("server_workers=16 (target=mio: default)"),
        "{said}"
    );
}

/// An interval of new / base from (base, new, alpha), as [`stats::ratio_interval`] makes.
type IntervalFn = fn(&[f64], &[f64], f64) -> Option<RatioInterval>;

/// Over `families` simulated families of m = 4 configurations (true ratios 0.8, 1.0, 1.1
/// and 1.5; 4 runs a side; 10% lognormal noise), each interval at 1 − 5%/m as `compare`
/// asks: (share of families whose every interval covers its truth, share of single
/// intervals that cover theirs).
fn coverage(interval: IntervalFn, seed: u64, families: usize) -> (f64, f64) {
    let truths = [0.8, 1.0, 1.1, 1.5];
    let alpha = ALPHA / truths.len() as f64;
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut all, mut each) = (0usize, 0usize);
    for _ in 0..families {
        let mut every = true;
        for &t in &truths {
            let base = noisy(&mut rng, 4, 1000.0, 0.1);
            let new = noisy(&mut rng, 4, 1000.0 * t, 0.1);
            let covers = interval(&base, &new, alpha).is_some_and(|i| i.lo <= t && t <= i.hi);
            each += usize::from(covers);
            every &= covers;
        }
        all += usize::from(every);
    }
    (
        all as f64 / families as f64,
        each as f64 / (families * truths.len()) as f64,
    )
}

/// The mean log ratio with a normal quantile: Welch's degrees of freedom ignored.
fn z_interval(base: &[f64], new: &[f64], alpha: f64) -> Option<RatioInterval> {
    let logs = |xs: &[f64]| xs.iter().map(|x| x.ln()).collect::<Vec<_>>();
    let ((mb, sb), (mn, sn)) = (stats::mean_sd(&logs(base)), stats::mean_sd(&logs(new)));
    let se = (sb * sb / base.len() as f64 + sn * sn / new.len() as f64).sqrt();
    let z =
        statrs::distribution::ContinuousCDF::inverse_cdf(&statrs::distribution::Normal::standard(), 1.0 - alpha / 2.0);
    let d = mn - mb;
    Some(RatioInterval {
        ratio: d.exp(),
        lo: (d - z * se).exp(),
        hi: (d + z * se).exp(),
        log_sd: None,
    })
}

#[test]
fn simultaneous_intervals_cover_every_truth_and_broken_ones_are_caught() {
    // 2000 families: the simulation's own error on a 95% share is about 0.5 points.
    let (all, each) = coverage(stats::ratio_interval, 21, 2000);
    assert!(all >= 0.935, "every truth covered in {all:.3} of families (95% asked)");
    assert!(
        each >= 1.0 - ALPHA / 4.0 - 0.005,
        "each interval covers {each:.4} (98.75% asked)"
    );
    // Mutants this suite must catch:
    // a gate on the point estimate alone (no interval),
    let point: IntervalFn = |b, n, _| {
        let r = stats::ratio_interval(b, n, 0.05)?.ratio;
        Some(RatioInterval {
            ratio: r,
            lo: r,
            hi: r,
            log_sd: None,
        })
    };
    let (all, _) = coverage(point, 21, 2000);
    assert!(all < 0.01, "a point-only gate covers nothing: {all:.3}");
    // the Bonferroni split left out (each interval at 95%: the family holds far less often),
    let unsplit: IntervalFn = |b, n, _| stats::ratio_interval(b, n, ALPHA);
    let (all, _) = coverage(unsplit, 21, 2000);
    assert!(all < 0.9, "without the split the family holds {all:.3}");
    // and Welch's degrees of freedom replaced by a normal quantile (too narrow at n = 4).
    let (_, each) = coverage(z_interval, 21, 2000);
    assert!(each < 0.97, "a z interval covers {each:.4}, short of 98.75%");
}

#[test]
fn following_the_advice_settles_most_cases_and_never_asks_for_what_was_done() {
    // A real 15% loss, 10% noise, 3 runs a side: mostly inconclusive; then the advised
    // number of fresh runs a side, and the verdict again.
    let mut rng = fastrand::Rng::with_seed(31);
    let (mut advised, mut settled) = (0usize, 0usize);
    for _ in 0..300 {
        let base = rows(&noisy(&mut rng, 3, 100_000.0, 0.10));
        let new = rows(&noisy(&mut rng, 3, 85_000.0, 0.10));
        let c = compare(&base, &new, &[Metric::parse("throughput")], 5.0);
        let Some(Advice::Repeats(n)) = c.changes[0].advice else {
            continue;
        };
        assert!(n > 3, "an inconclusive cell with 3 runs is never told 3 would do");
        advised += 1;
        let base = rows(&noisy(&mut rng, n, 100_000.0, 0.10));
        let new = rows(&noisy(&mut rng, n, 85_000.0, 0.10));
        let again = compare(&base, &new, &[Metric::parse("throughput")], 5.0);
        settled += usize::from(again.changes[0].outcome != Outcome::Inconclusive);
    }
    assert!(
        advised >= 50,
        "{advised} advised (the rest settled already, or need more than 50)"
    );
    let share = settled as f64 / advised as f64;
    println!("following the advice settled {settled} of {advised} ({share:.2})");
    assert!(share >= 0.7, "following the advice settled {share:.2}");
}

#[test]
fn no_change_at_n2_cv30_fails_the_gate_often() {
    // docs/statistics.md quotes this share (it once said "about a third").
    let rate = gate_failure_rate(7, 4000, 2, 0.30, 1.0, 5.0);
    assert!((0.35..=0.5).contains(&rate), "{rate}");
}

/// A row of a rate ladder judged by an objective (`slo_met`).
fn rung(target: &str, rate: f64, met: bool) -> Row {
    let r = row(target, 100, rate, 100.0);
    let mut fields: Vec<(String, String)> = ROW_COLUMNS
        .iter()
        .map(|&c| (c.to_string(), r.get(c).to_string()))
        .collect();
    fields.push(("rate".into(), rate.to_string()));
    fields.push(("slo_met".into(), if met { "yes" } else { "no" }.into()));
    Row::new(fields)
}

#[test]
fn capacities_of_a_rate_ladder_are_compared_like_any_metric() {
    // Two models, a ladder of three rates, three repeats each: mio meets the objective up
    // to 3000 in every repeat, the pool up to 1000.
    let mut rows = Vec::new();
    for _ in 0..3 {
        for (rate, mio, pool) in [(1000.0, true, true), (2000.0, true, false), (3000.0, true, false)] {
            rows.push(rung("mio", rate, mio));
            rows.push(rung("threadpool", rate, pool));
        }
    }
    let (rel, _, _) = relative(&rows, "target", "mio", &[Metric::parse("capacity")], 5.0);
    assert_eq!(rel.len(), 1, "{rel:?}");
    assert_eq!(rel[0].value, "threadpool");
    assert!(
        (rel[0].change.ratio() - 1.0 / 3.0).abs() < 0.01,
        "{}",
        rel[0].change.ratio()
    );
    assert_eq!(rel[0].change.outcome, Outcome::Worse);
    assert!(
        !rel[0].change.key.describe(&[]).contains("rate="),
        "a ladder is one configuration"
    );
}

#[test]
fn capacities_of_two_reports_are_compared_ladder_by_ladder() {
    // The same ladder before and after: the old build met 3000 in every repeat, the new one
    // only 1000; p99 is compared per rate beside it.
    let ladder = |top_met: f64| -> Vec<Row> {
        (0..3)
            .flat_map(|_| [1000.0, 2000.0, 3000.0].map(|rate| rung("mio", rate, rate <= top_met)))
            .collect()
    };
    let (base, new) = (ladder(3000.0), ladder(1000.0));
    let c = compare(&base, &new, &[Metric::parse("capacity")], 5.0);
    assert_eq!(c.changes.len(), 1, "one ladder: {:?}", c.changes);
    assert!(
        (c.changes[0].ratio() - 1.0 / 3.0).abs() < 0.01,
        "{}",
        c.changes[0].ratio()
    );
    assert_eq!(c.changes[0].outcome, Outcome::Worse);
    assert!(
        !c.changes[0].key.describe(&[]).contains("rate="),
        "a ladder is one configuration"
    );
    assert!(
        c.unmeasured.is_empty(),
        "no rung is 'not compared' for want of a capacity column"
    );
    let both = compare(&base, &new, &[Metric::parse("capacity"), Metric::parse("p99")], 5.0);
    assert_eq!(both.changes.len(), 4, "the capacity and a p99 per rate");
}

#[test]
fn a_gated_metric_without_a_valid_value_on_a_side_is_named_for_the_gate() {
    let base = rows(&[1000.0, 1010.0, 990.0]);
    // The new runs measured, but every p99 cell was left out (NaN read as no value).
    let new: Vec<Row> = (0..3)
        .map(|_| row_without("mio", 10, 1000.0, 100.0, "lat_p99_us"))
        .collect();
    let mut ms = metrics();
    for m in &mut ms {
        m.gated = true;
    }
    let c = compare(&base, &new, &ms, 5.0);
    assert_eq!(c.changes.len(), 1, "throughput is still compared");
    assert_eq!(c.valueless.len(), 1);
    assert_eq!((c.valueless[0].1.as_str(), c.valueless[0].2), ("p99", "new"));
    // Not gated: nothing to say.
    ms[1].gated = false;
    assert!(compare(&base, &new, &ms, 5.0).valueless.is_empty());
}
