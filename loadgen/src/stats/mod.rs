//! The statistics behind every verdict: mean and standard deviation, an interval for the
//! ratio of two samples (Welch's t on log values), how many repeats would narrow it enough,
//! distribution-free intervals for percentiles, and a goodness-of-fit test of send gaps
//! against the exponential (Kolmogorov-Smirnov). The reasoning is in
//! `docs/statistics.md`; the t and binomial distributions come from `statrs`. [`steady`]
//! finds where a run's warm-up ends. May import: nothing of the crate.

pub(crate) mod steady;

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, StudentsT};

/// Mean and sample standard deviation (0 for a single value, NaN for none).
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The two-sided Student t quantile for error `alpha` with `df` degrees of freedom
/// (`t_{1-alpha/2}`); infinite when `df` is not positive.
pub fn t_quantile(alpha: f64, df: f64) -> f64 {
    if df.is_nan() || df <= 0.0 {
        return f64::INFINITY;
    }
    StudentsT::new(0.0, 1.0, df).map_or(f64::INFINITY, |t| t.inverse_cdf(1.0 - alpha / 2.0))
}

/// A confidence interval of `new / base` (ratio of geometric means).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RatioInterval {
    /// Point estimate: exp(mean log new − mean log base).
    pub ratio: f64,
    /// Lower bound (0 when nothing can be said).
    pub lo: f64,
    /// Upper bound (infinite when nothing can be said).
    pub hi: f64,
    /// The run-to-run standard deviation of log values, pooled over both sides (≈ the
    /// coefficient of variation); `None` with fewer than two values on a side.
    pub log_sd: Option<f64>,
}

fn logs(xs: &[f64]) -> Vec<f64> {
    xs.iter()
        .filter(|x| **x > 0.0 && x.is_finite())
        .map(|x| x.ln())
        .collect()
}

/// The least log-scale standard deviation a sample can be said to have: the rounding of its
/// values (half a unit of the last decimal they carry, up to 6 decimals, relative to the
/// smallest), and at least HdrHistogram's resolution of 3 significant digits (0.1%): a
/// rounding error uniform over ±h has standard deviation h/√3. Two repeats that printed
/// `62.0` and `62.0` vary by up to 0.05 unseen, not by nothing.
pub fn log_resolution(xs: &[f64]) -> f64 {
    let min = xs
        .iter()
        .copied()
        .filter(|x| *x > 0.0 && x.is_finite())
        .fold(f64::INFINITY, f64::min);
    if !min.is_finite() {
        return 0.0;
    }
    let decimals = (0..=6)
        .find(|&d| {
            let scale = 10f64.powi(d);
            xs.iter()
                .all(|x| ((x * scale) - (x * scale).round()).abs() < 1e-6 * scale.max(1.0))
        })
        .unwrap_or(6);
    let half_unit = 0.5 * 10f64.powi(-decimals);
    (half_unit / min).max(0.001) / 3f64.sqrt()
}

/// The `1 - alpha` interval of `new / base` from Welch's t on the logarithms: run-to-run
/// noise of throughput and latency is multiplicative, so the log scale makes it symmetric
/// and the interval of a ratio is the exponential of an interval of a difference. Values
/// that are not positive are left out; `None` when a side has none.
pub fn ratio_interval(base: &[f64], new: &[f64], alpha: f64) -> Option<RatioInterval> {
    let (lb, ln) = (logs(base), logs(new));
    if lb.is_empty() || ln.is_empty() {
        return None;
    }
    let ((mb, sb), (mn, sn)) = (mean_sd(&lb), mean_sd(&ln));
    // Equal values are not certainty: a side's spread is at least its values' resolution.
    let (sb, sn) = (sb.max(log_resolution(base)), sn.max(log_resolution(new)));
    let d = mn - mb;
    let ratio = d.exp();
    if lb.len() < 2 || ln.len() < 2 {
        return Some(RatioInterval {
            ratio,
            lo: 0.0,
            hi: f64::INFINITY,
            log_sd: None,
        });
    }
    let (nb, nn) = (lb.len() as f64, ln.len() as f64);
    let (vb, vn) = (sb * sb / nb, sn * sn / nn);
    let log_sd = Some(((sb * sb + sn * sn) / 2.0).sqrt());
    let se = (vb + vn).sqrt();
    if se == 0.0 {
        return Some(RatioInterval {
            ratio,
            lo: ratio,
            hi: ratio,
            log_sd,
        });
    }
    // Welch–Satterthwaite degrees of freedom.
    let df = (vb + vn).powi(2) / (vb * vb / (nb - 1.0) + vn * vn / (nn - 1.0));
    let h = t_quantile(alpha, df) * se;
    Some(RatioInterval {
        ratio,
        lo: (d - h).exp(),
        hi: (d + h).exp(),
        log_sd,
    })
}

/// Most repeats a side the advice considers; beyond, it says "more than" this.
pub const MAX_ADVICE: usize = 50;

/// What an inconclusive comparison looks like now, for [`repeats_to_settle`].
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// The log ratio estimated (mean log new − mean log base).
    pub d: f64,
    /// Its standard error.
    pub se: f64,
    /// The run-to-run standard deviation of log values.
    pub log_sd: f64,
    /// Repeats a side so far.
    pub n: usize,
}

/// The repeats a side at which the same kind of interval (Welch's t on log values at
/// `alpha`, the family's share) would settle the change, beyond the band
/// `(ln lo_edge, ln hi_edge)` or inside it, in 80% of simulated outcomes. The truth is
/// not taken to be the estimate: each simulation draws it around the estimate with the
/// estimate's own standard error, then draws `n` runs a side with the observed noise and
/// forms the interval from those runs' spread (drawn as its chi-square; the t quantile at
/// `n − 1` degrees of freedom, the least Welch's can be with `n` a side, so the advice errs
/// towards more runs). Seeded, so the advice repeats. Always more than the
/// repeats so far; `None` when [`MAX_ADVICE`] would not do.
pub fn repeats_to_settle(seen: Seen, band: (f64, f64), alpha: f64) -> Option<usize> {
    const TRIALS: usize = 400;
    let sd = seen.log_sd.max(1e-9);
    // The share of outcomes settled with `n` a side. Each outcome draws its sufficient
    // statistics: the truth, the difference of the sides' mean logs, and their pooled
    // variance (chi-square with 2n − 2 degrees of freedom, by Wilson and Hilferty's cube).
    // The same seed for every n (common random numbers), so the share grows smoothly in n.
    let settles = |n: usize| {
        let mut rng = fastrand::Rng::with_seed(0x5EED);
        let mut normal = move || {
            let (u1, u2) = (rng.f64().max(1e-300), rng.f64());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        let t = t_quantile(alpha, n as f64 - 1.0);
        let k = 2.0 * n as f64 - 2.0;
        let settled = (0..TRIALS)
            .filter(|_| {
                let truth = seen.d + seen.se * normal();
                let diff = truth + sd * (2.0 / n as f64).sqrt() * normal();
                let cube = (1.0 - 2.0 / (9.0 * k) + normal() * (2.0 / (9.0 * k)).sqrt()).max(0.0);
                let var = sd * sd * cube.powi(3);
                let h = t * (2.0 * var / n as f64).sqrt();
                let (lo, hi) = (diff - h, diff + h);
                lo > band.1 || hi < band.0 || (lo >= band.0 && hi <= band.1)
            })
            .count();
        settled * 10 >= TRIALS * 8
    };
    let (mut lo, mut hi) = (seen.n.max(1) + 1, MAX_ADVICE);
    if lo > hi || !settles(hi) {
        return None;
    }
    // The least n that settles: the share rises with n, so a bisection finds it.
    while lo < hi {
        let mid = (lo + hi) / 2;
        if settles(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// The 1-based ranks `(lo, hi)` of the order statistics that bound the `q` quantile of `n`
/// samples with confidence at least `1 - alpha` (the binomial, distribution-free interval:
/// the count of samples below the true quantile is Binomial(n, q)). `None` when `n` is too
/// small for the interval to exist. Past a million samples with at least 100 expected on
/// each side of the quantile the binomial is its normal approximation (to well under a rank
/// in a thousand), which holds for any count a u64 can hold; the exact inverse is not
/// defined that far (statrs failed on 3e10 samples).
pub fn quantile_ranks(n: u64, q: f64, alpha: f64) -> Option<(u64, u64)> {
    if n == 0 || !(0.0..1.0).contains(&q) || !(0.0..1.0).contains(&alpha) || alpha == 0.0 {
        return None;
    }
    let nf = n as f64;
    if n > 1_000_000 && nf * q * (1.0 - q) >= 100.0 {
        let z = statrs::distribution::Normal::standard().inverse_cdf(1.0 - alpha / 2.0);
        let (mean, sd) = (nf * q, (nf * q * (1.0 - q)).sqrt());
        let lo = (mean - z * sd).floor().max(0.0);
        let hi = (mean + z * sd).ceil() + 1.0;
        return (lo >= 1.0 && hi <= nf).then_some((lo as u64, hi as u64));
    }
    let b = Binomial::new(q, n).ok()?;
    // lo: the largest l with P(B <= l-1) <= alpha/2; hi: the smallest u with P(B <= u-1) >= 1 - alpha/2.
    let lo = b.inverse_cdf(alpha / 2.0);
    let hi = b.inverse_cdf(1.0 - alpha / 2.0) + 1;
    (lo >= 1 && hi <= n).then_some((lo, hi))
}

/// Whether `n` samples are enough to estimate the `q` quantile at all: at least
/// `10 / (1 - q)`, i.e. ten samples beyond it (p99 needs 1,000, p99.99 100,000).
pub fn quantile_estimable(n: u64, q: f64) -> bool {
    (n as f64) * (1.0 - q) >= 10.0 - 1e-6
}

/// A Kolmogorov-Smirnov test of `gaps` (in units of their promised mean) against the
/// exponential distribution of mean 1: (statistic D, p-value), `None` for fewer than 20
/// gaps. The mean is the schedule's, not estimated from the sample, so the classic
/// Kolmogorov distribution applies; its p-value uses Stephens' correction for finite n
/// (accurate to a few percent from n = 20, as Numerical Recipes gives it).
pub fn ks_exponential(gaps: &mut [f64]) -> Option<(f64, f64)> {
    if gaps.len() < 20 {
        return None;
    }
    gaps.sort_unstable_by(f64::total_cmp);
    let n = gaps.len() as f64;
    let d = gaps
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = 1.0 - (-x.max(0.0)).exp();
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max);
    let sqrt_n = n.sqrt();
    Some((d, kolmogorov_q((sqrt_n + 0.12 + 0.11 / sqrt_n) * d)))
}

/// P(K > lambda) for the Kolmogorov distribution: 2 sum (-1)^(j-1) exp(-2 j^2 lambda^2).
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0; // the series converges slowly here, and the tail probability is 1 - 1e-18
    }
    let mut sum = 0.0;
    for j in 1..=100u32 {
        let term = (-2.0 * f64::from(j * j) * lambda * lambda).exp();
        sum += if j % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Batches a series must be cut into for [`batch_interval`]: fewer give a t interval too
/// wide to be worth it, and too few degrees of freedom to trust its spread.
pub const MIN_BATCHES: usize = 10;

/// The batch-means interval of a quantile (Seila's batch quantile method): the series cut
/// into batches long enough to be nearly independent, each batch's own estimate of the
/// quantile taken, and `estimate ± t(1 − alpha/2, b − 1) · sd / √b` over them. Unlike the
/// order-statistics interval ([`quantile_ranks`]), which assumes independent samples, it
/// holds when a run's latencies are correlated (a queue that builds and drains, a GC
/// pause): on an AR(1) series it covers at its level where the other does not (tested).
/// `None` under [`MIN_BATCHES`] batches.
pub fn batch_interval(estimate: f64, batches: &[f64], alpha: f64) -> Option<(f64, f64)> {
    let b = batches.len();
    if b < MIN_BATCHES || !estimate.is_finite() {
        return None;
    }
    let (_, sd) = mean_sd(batches);
    let half = t_quantile(alpha, (b - 1) as f64) * sd / (b as f64).sqrt();
    half.is_finite()
        .then_some(((estimate - half).max(0.0), estimate + half))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sd() {
        let (m, s) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        assert!((s - 2.138).abs() < 1e-3);
    }

    #[test]
    fn t_quantiles_match_tables() {
        assert!((t_quantile(0.05, 10.0) - 2.228).abs() < 1e-3);
        assert!((t_quantile(0.05, 1.0) - 12.706).abs() < 1e-2);
        assert!((t_quantile(0.05, 1e6) - 1.960).abs() < 1e-3);
        assert!(t_quantile(0.05, 0.0).is_infinite());
        // docs/statistics.md: a Bonferroni interval at 99.95% (m = 100) widens a 9-df t
        // interval by t(0.99975; 9) / t(0.975; 9) = 2.34x, not the 1.7x it once said.
        let widening = t_quantile(0.0005, 9.0) / t_quantile(0.05, 9.0);
        assert!((widening - 2.34).abs() < 0.01, "{widening}");
    }

    #[test]
    fn ratio_interval_of_constant_samples_has_their_resolution_and_single_runs_are_open() {
        let r = ratio_interval(&[100.0, 100.0], &[50.0, 50.0], 0.05).unwrap();
        assert!((r.ratio - 0.5).abs() < 1e-12 && r.lo < r.ratio && r.hi > r.ratio && r.hi < 0.6);
        let r = ratio_interval(&[100.0], &[50.0, 51.0], 0.05).unwrap();
        assert!((r.lo, r.hi.is_infinite(), r.log_sd) == (0.0, true, None));
        assert!(ratio_interval(&[0.0], &[1.0], 0.05).is_none());
    }

    #[test]
    fn ratio_interval_matches_a_hand_computation() {
        // logs: base ln(100), ln(110); new ln(50), ln(55): d = ln 0.5, sd of each side
        // (ln 1.1)/sqrt 2, se = ln(1.1)/sqrt 2, df = 2, t_{0.975}(2) = 4.303.
        let r = ratio_interval(&[100.0, 110.0], &[50.0, 55.0], 0.05).unwrap();
        let h = 4.3027 * (1.1f64).ln() / 2f64.sqrt();
        assert!((r.ratio - 0.5).abs() < 1e-9);
        assert!((r.lo - 0.5 * (-h).exp()).abs() < 1e-3, "{r:?}");
        assert!((r.hi - 0.5 * h.exp()).abs() < 1e-3, "{r:?}");
    }

    #[test]
    fn repeats_to_settle_grow_with_noise_and_shrink_with_distance() {
        let band = (0.95f64.ln(), 1.05f64.ln());
        let at = |d: f64, sd: f64| {
            repeats_to_settle(
                Seen {
                    d,
                    se: sd * (2.0f64 / 3.0).sqrt(),
                    log_sd: sd,
                    n: 3,
                },
                band,
                0.05,
            )
        };
        let (a, b, c) = (at(0.12, 0.05), at(0.12, 0.08), at(0.3, 0.05));
        // More noise, more runs (None: more than 50); further from the band, fewer.
        let (a, c) = (a.unwrap(), c.unwrap());
        assert!(b.is_none_or(|b| b > a) && c <= a && c > 3, "{a} {b:?} {c}");
        assert_eq!(
            at(1.05f64.ln(), 1.0),
            None,
            "on the band's edge with wild noise: more than 50"
        );
    }

    #[test]
    fn ties_are_not_certainty() {
        // Two repeats each, identical as printed: the interval has the width of the rounding.
        let i = ratio_interval(&[62.0, 62.0], &[65.5, 65.5], 0.05).unwrap();
        assert!(i.lo < i.ratio && i.ratio < i.hi, "{i:?}");
        assert!(i.hi / i.lo > 1.001, "wider than nothing: {i:?}");
        // Coarse values (whole thousands) carry more doubt than fine ones.
        assert!(log_resolution(&[52000.0, 52000.0]) < log_resolution(&[5.0, 5.0]));
        assert!((log_resolution(&[100.0]) - 0.005 / 3f64.sqrt()).abs() < 1e-12);
        // Ordinary noise is untouched by the floor.
        let (a, b) = ([100.0, 110.0, 95.0], [120.0, 130.0, 125.0]);
        let i = ratio_interval(&a, &b, 0.05).unwrap();
        assert!(i.lo > 1.0 && i.hi < 1.6, "{i:?}");
    }

    #[test]
    fn quantile_ranks_cover_the_quantile() {
        // n = 1000, q = 0.99: the expected rank is 990, sd ~ 3.1: ranks about 984..997.
        let (lo, hi) = quantile_ranks(1000, 0.99, 0.05).unwrap();
        assert!((982..=986).contains(&lo) && (995..=998).contains(&hi), "{lo} {hi}");
        // The median of 100: about ranks 40..61 (the classic table gives 40 and 61).
        let (lo, hi) = quantile_ranks(100, 0.5, 0.05).unwrap();
        assert!((39..=41).contains(&lo) && (60..=62).contains(&hi), "{lo} {hi}");
        assert_eq!(quantile_ranks(50, 0.999, 0.05), None, "no rank above the 999th of 50");
        // Huge counts (a long run, a merged fleet): defined, ordered, around n q.
        for n in [3e10 as u64, 1e12 as u64, 1e13 as u64, 1e15 as u64, u64::MAX] {
            let (lo, hi) = quantile_ranks(n, 0.99, 0.05).unwrap_or_else(|| panic!("{n}"));
            let expect = n as f64 * 0.99;
            assert!(
                lo < hi && (lo as f64) < expect && (hi as f64) > expect && hi <= n,
                "{n}: {lo} {hi}"
            );
        }
        // Where the exact and the approximate meet, they agree to a rank in ten thousand.
        let exact = {
            let b = Binomial::new(0.99, 1_000_000).unwrap();
            (b.inverse_cdf(0.025), b.inverse_cdf(0.975) + 1)
        };
        let approx = quantile_ranks(1_000_001, 0.99, 0.05).unwrap();
        assert!(
            exact.0.abs_diff(approx.0) < 100 && exact.1.abs_diff(approx.1) < 100,
            "{exact:?} {approx:?}"
        );
        assert!(quantile_estimable(1000, 0.99) && !quantile_estimable(2000, 0.9999));
        assert!(quantile_estimable(100_000, 0.9999));
    }

    #[test]
    fn exponential_gaps_pass_and_uniform_ones_fail() {
        // Seeded exponential gaps pass at any sensible level; the same count of evenly
        // spaced sends (every gap = the mean), tested as if Poisson, fails outright, and so
        // does a schedule whose gaps are exponential but 20% shorter.
        let mut rng = fastrand::Rng::with_seed(11);
        let mut exp: Vec<f64> = (0..5000).map(|_| -(1.0 - rng.f64()).ln()).collect();
        let mut fast: Vec<f64> = exp.iter().map(|g| g * 0.8).collect();
        let (d, p) = ks_exponential(&mut exp).unwrap();
        assert!(p > 0.01, "exponential: D {d}, p {p}");
        let mut even = vec![1.0; 5000];
        let (d, p) = ks_exponential(&mut even).unwrap();
        assert!(
            (d - (1.0 - (-1f64).exp())).abs() < 1e-3 && p < 1e-9,
            "uniform: D {d}, p {p}"
        );
        let (_, p) = ks_exponential(&mut fast).unwrap();
        assert!(p < 1e-6, "20% fast: p {p}");
        assert!(ks_exponential(&mut [1.0; 19]).is_none());
        // The Kolmogorov tail at its textbook points: P(K > 1.36) = 0.049, P(K > 1.63) = 0.010.
        assert!((kolmogorov_q(1.36) - 0.049).abs() < 0.001);
        assert!((kolmogorov_q(1.63) - 0.0098).abs() < 0.0005);
    }

    /// Latencies whose logs follow an AR(1) (lognormal marginal, exp of a unit normal, so the
    /// true p99 is exp(z_0.99)): the batch-means interval covers the truth at 95% or near it;
    /// the order-statistics interval, which takes the samples for independent, does not.
    #[test]
    fn batch_means_cover_a_correlated_series_where_order_statistics_do_not() {
        let (phi, batches, per_batch, reps) = (0.95f64, 20, 2500, 200);
        let truth = (2.326_347_874_040_841_f64).exp();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut normal = move || {
            let (u, v) = (rng.f64().max(1e-300), rng.f64());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        };
        let q99 = |xs: &mut Vec<f64>| {
            xs.sort_by(f64::total_cmp);
            xs[((xs.len() as f64) * 0.99).ceil() as usize - 1]
        };
        let (mut batch_cover, mut order_cover) = (0, 0);
        let mut x = normal();
        for _ in 0..reps {
            let mut all = Vec::with_capacity(batches * per_batch);
            let mut estimates = Vec::with_capacity(batches);
            for _ in 0..batches {
                let mut batch: Vec<f64> = (0..per_batch)
                    .map(|_| {
                        x = phi * x + (1.0 - phi * phi).sqrt() * normal();
                        x.exp()
                    })
                    .collect();
                all.extend_from_slice(&batch);
                estimates.push(q99(&mut batch));
            }
            let estimate = q99(&mut all);
            let (lo, hi) = batch_interval(estimate, &estimates, 0.05).unwrap();
            batch_cover += usize::from(lo <= truth && truth <= hi);
            let (l, u) = quantile_ranks(all.len() as u64, 0.99, 0.05).unwrap();
            order_cover += usize::from(all[l as usize - 1] <= truth && truth <= all[u as usize - 1]);
        }
        let (batch, order) = (batch_cover as f64 / reps as f64, order_cover as f64 / reps as f64);
        eprintln!("coverage of a 95% interval on AR(1) phi {phi}: batch means {batch:.3}, order statistics {order:.3}");
        assert!(batch >= 0.90, "batch means covered {batch}");
        assert!(
            order < 0.75,
            "order statistics covered {order}: the test would not tell them apart"
        );
    }
}
