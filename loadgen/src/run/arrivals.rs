//! The arrivals check of a Poisson open loop: the client threads' sampled send gaps,
//! pooled and thinned to a fixed number, tested against the exponential.

use crate::run::driver::ThreadOutput;

/// Gaps the arrivals check tests: a fixed number, so that its power does not grow with the
/// run. At 2,000 it finds a distance of 0.044 between the distribution functions at the
/// 0.001 level (a rate 7% off, bunched or evenly spaced sends) but not the client's own send
/// resolution: two sends of a thread are never closer than a few µs (8 µs on the 2-core VM),
/// a distance of about 0.015 at 2,000 msg/s per thread that 20,000 gaps would call
/// significant although no queue slower than that can tell.
pub(crate) const ARRIVALS_GAPS: usize = 2000;

/// The threads' send gaps pooled (what a shard hands on for the merged check).
pub(crate) fn pooled_gaps(outputs: &[ThreadOutput]) -> Vec<f64> {
    outputs.iter().flat_map(|o| o.send_gaps.iter().copied()).collect()
}

/// At most [`ARRIVALS_GAPS`] of `pooled`, evenly spread over it: every k-th gap.
pub(crate) fn thin_gaps(pooled: &[f64]) -> Vec<f64> {
    let stride = pooled.len().div_ceil(ARRIVALS_GAPS).max(1);
    pooled.iter().copied().step_by(stride).collect()
}

/// Pooled send gaps tested against the exponential (`None` with too few): the threads'
/// gaps of one process, or the shards' samples of a merged run.
pub(crate) fn check_gaps(pooled: &[f64]) -> Option<crate::report::ArrivalsCheck> {
    let mean_gap_ratio = pooled.iter().sum::<f64>() / pooled.len().max(1) as f64;
    let mut gaps = thin_gaps(pooled);
    let (statistic, p_value) = crate::stats::ks_exponential(&mut gaps)?;
    Some(crate::report::ArrivalsCheck {
        test: "kolmogorov-smirnov",
        gaps: gaps.len(),
        mean_gap_ratio,
        statistic,
        p_value,
        ok: p_value >= crate::report::ARRIVALS_ALPHA,
    })
}
