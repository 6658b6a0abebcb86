//! Counts compared as counts (the columns are [`super::metric::COUNT_COLUMNS`]). Errors, losses, duplicates, reorderings, retransmissions and
//! resets are events per message, often zero on one side: a ratio of means is undefined
//! there, and the log scale of [`crate::stats::ratio_interval`] drops the zeros, so a rise
//! from zero would pass a gate unseen. Each side's events are pooled over its runs and
//! divided by its messages, and two intervals at the family's confidence decide:
//!
//! - the difference of the per-message rates (Newcombe's hybrid score interval, from a
//!   Wilson interval per side: defined when a side counted nothing);
//! - the ratio of the rates (Katz's log interval, a half added to each count).
//!
//! `same` when the whole difference lies within ±[`COUNT_TOLERANCE`] per message; `worse`
//! (or `better`) when the ratio's interval lies beyond the band and the difference's
//! excludes zero; else `inconclusive`, which a longer run (more messages) settles.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use super::outcome::Outcome;
use crate::report::read::Row;
use crate::stats::RatioInterval;

/// Two per-message rates closer than this are the same: one event in 100,000 messages.
pub const COUNT_TOLERANCE: f64 = 1e-5;

/// One run of a count: (events, messages).
pub type Counted = (f64, f64);

/// A count's two sides, pooled, and the interval of their difference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CountTest {
    /// Base events per message.
    pub base_rate: f64,
    /// New events per message.
    pub new_rate: f64,
    /// Lower end of the difference (new − base) per message.
    pub diff_lo: f64,
    /// Upper end.
    pub diff_hi: f64,
}

/// (events, messages) of each measured row that has both.
pub fn values(rows: &[&Row], column: &str) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| super::status::measured(r))
        .filter_map(|r| Some((r.num(column)?, r.num("msgs")?)))
        .filter(|&(c, m)| c >= 0.0 && m > 0.0)
        .collect()
}

/// Wilson's score interval of `x` events in `n` at normal quantile `z`.
fn wilson(x: f64, n: f64, z: f64) -> (f64, f64) {
    let p = x / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Judges `new` against `base` (events, messages per run) at error `alpha` with the band
/// ±`band_pct`% on the rate ratio; a count is better when lower.
pub fn judge(
    base: &[(f64, f64)],
    new: &[(f64, f64)],
    alpha: f64,
    band_pct: f64,
) -> (RatioInterval, Outcome, CountTest) {
    let sum = |s: &[(f64, f64)]| s.iter().fold((0.0, 0.0), |(c, m), &(x, n)| (c + x, m + n));
    let ((cb, mb), (cn, mn)) = (sum(base), sum(new));
    let z = Normal::standard().inverse_cdf(1.0 - alpha / 2.0);
    let (pb, pn) = (cb / mb, cn / mn);
    let ((lb, ub), (ln, un)) = (wilson(cb, mb, z), wilson(cn, mn, z));
    let d = pn - pb;
    let test = CountTest {
        base_rate: pb,
        new_rate: pn,
        diff_lo: d - ((pn - ln).powi(2) + (ub - pb).powi(2)).sqrt(),
        diff_hi: d + ((un - pn).powi(2) + (pb - lb).powi(2)).sqrt(),
    };
    let ratio = ((cn + 0.5) / mn) / ((cb + 0.5) / mb);
    let se = (1.0 / (cn + 0.5) + 1.0 / (cb + 0.5)).sqrt();
    let interval = RatioInterval {
        ratio,
        lo: ratio * (-z * se).exp(),
        hi: ratio * (z * se).exp(),
        log_sd: None,
    };
    let band = band_pct / 100.0;
    let outcome = if test.diff_lo >= -COUNT_TOLERANCE && test.diff_hi <= COUNT_TOLERANCE {
        Outcome::Same
    } else if interval.lo > 1.0 + band && test.diff_lo > 0.0 {
        Outcome::Worse
    } else if interval.hi < 1.0 - band && test.diff_hi < 0.0 {
        Outcome::Better
    } else {
        Outcome::Inconclusive
    };
    (interval, outcome, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: f64 = 1_000_000.0;

    fn runs(counts: &[f64]) -> Vec<(f64, f64)> {
        counts.iter().map(|&c| (c, M)).collect()
    }

    #[test]
    fn a_rise_from_zero_is_worse_and_zero_against_zero_is_same() {
        let (i, o, t) = judge(&runs(&[0.0, 0.0, 0.0]), &runs(&[5000.0, 5000.0, 5000.0]), 0.05, 5.0);
        assert_eq!(o, Outcome::Worse, "{i:?} {t:?}");
        assert!(i.lo > 100.0 && t.diff_lo > 0.0);
        let (_, o, _) = judge(&runs(&[0.0, 0.0, 0.0]), &runs(&[0.0, 0.0, 0.0]), 0.05, 5.0);
        assert_eq!(o, Outcome::Same);
        // 3 against 4 in a million: the same, per message.
        let (_, o, t) = judge(&[(3.0, M)], &[(4.0, M)], 0.05, 5.0);
        assert_eq!(o, Outcome::Same, "{t:?}");
        // A fall to zero is better.
        let (_, o, _) = judge(&runs(&[5000.0; 3]), &runs(&[0.0; 3]), 0.05, 5.0);
        assert_eq!(o, Outcome::Better);
        // Too few messages to tell: 1 against 0 in a thousand.
        let (_, o, _) = judge(&[(0.0, 1000.0)], &[(1.0, 1000.0)], 0.05, 5.0);
        assert_eq!(o, Outcome::Inconclusive);
    }

    #[test]
    fn the_difference_interval_covers_at_its_level() {
        // Simulated Poisson-like counts (binomial draws) with equal true rates: the
        // difference interval holds zero in at least 95% of 2000 trials.
        let mut rng = fastrand::Rng::with_seed(5);
        let p = 2e-4;
        let n = 20_000.0;
        let draw = |rng: &mut fastrand::Rng| (0..20_000).filter(|_| rng.f64() < p).count() as f64;
        let mut covered = 0;
        for _ in 0..400 {
            let (b, c) = (draw(&mut rng), draw(&mut rng));
            let (_, _, t) = judge(&[(b, n)], &[(c, n)], 0.05, 5.0);
            covered += usize::from(t.diff_lo <= 0.0 && t.diff_hi >= 0.0);
        }
        assert!(covered >= 375, "covered {covered} of 400");
    }
}
