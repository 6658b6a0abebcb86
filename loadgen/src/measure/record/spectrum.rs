//! The detailed latency percentile spectrum (`--latency`, as wrk2 prints it): HdrHistogram's
//! percentile iteration, five steps per halving of the distance to 100%, so the tail gets
//! as many rows as the body.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Steps per halving of the remaining distance to 100% (HdrHistogram's default).
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One row of the spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpectrumPoint {
    /// The latency at this percentile, µs.
    pub value_us: f64,
    /// The fraction of messages at or below it (0 to 1).
    pub quantile: f64,
    /// Messages at or below it.
    pub total_count: u64,
}

/// The spectrum of a nanosecond histogram (empty when the histogram is).
pub fn spectrum(h: &Histogram<u64>) -> Vec<SpectrumPoint> {
    let mut total = 0;
    h.iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|v| {
            total += v.count_since_last_iteration();
            SpectrumPoint {
                value_us: h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0,
                quantile: v.quantile_iterated_to(),
                total_count: total,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spectrum_rises_to_the_maximum_and_counts_every_message() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for i in 1..=10_000u64 {
            h.record(i * 1_000).unwrap();
        }
        let s = spectrum(&h);
        assert!(s.len() > 20, "{}", s.len());
        assert!(s
            .windows(2)
            .all(|w| w[0].quantile <= w[1].quantile && w[0].value_us <= w[1].value_us));
        let last = s.last().unwrap();
        assert_eq!((last.quantile, last.total_count), (1.0, 10_000));
        assert!((last.value_us - 10_000.0).abs() / 10_000.0 < 0.001, "{}", last.value_us);
        let median = s.iter().find(|p| p.quantile >= 0.5).unwrap();
        assert!(
            (median.value_us - 5_000.0).abs() / 5_000.0 < 0.01,
            "{}",
            median.value_us
        );
        assert!(spectrum(&Histogram::<u64>::new(3).unwrap()).is_empty());
    }
}
