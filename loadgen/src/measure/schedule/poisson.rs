//! Poisson send times with random access: `--arrivals poisson`.
//!
//! A connection's messages are a Poisson process: independent exponential gaps. Their sum
//! has no closed form, and the driver asks for the intended time of any message of any
//! connection at any moment (when it is due, sent, and answered, and over the window at the
//! end), so the gaps are drawn once into a cycle of [`CYCLE`] unit-mean gaps whose running
//! sums are kept: message `s` of a connection is at `mean_gap * (sum of the cycle's gaps
//! from the connection's own starting point, s + 1 of them)`, one lookup. Each connection
//! starts at its own seeded point in the cycle (mutilate's per-connection generators,
//! without a generator per connection), so connections send independent-looking streams;
//! the cycle is long (2^18 gaps) against any connection's share of a run, and a stream that
//! does wrap around repeats its gaps at a new phase, which a queue cannot tell apart.
//!
//! The cycle is normalised to sum to exactly [`CYCLE`], so the long-run rate is exactly the
//! promised one (the unnormalised sum is off by about 1/512 = 0.2%).

use std::sync::OnceLock;

/// Gaps in the cycle.
pub const CYCLE: u64 = 1 << 18;

/// The cycle's seed: fixed, so a run's schedule depends only on `--seed` (which picks every
/// connection's starting point) and is the same on every machine.
const CYCLE_SEED: u64 = 0x005E_ED0F_A771_BA15;

/// `sums[i]`: the sum of the cycle's first `i` gaps (`sums[0] = 0`), in units of the mean.
fn sums() -> &'static [f64] {
    static SUMS: OnceLock<Box<[f64]>> = OnceLock::new();
    SUMS.get_or_init(|| {
        let mut rng = fastrand::Rng::with_seed(CYCLE_SEED);
        // -ln(U), U uniform in (0, 1]: exponential with mean 1.
        let gaps: Vec<f64> = (0..CYCLE).map(|_| -(1.0 - rng.f64()).ln()).collect();
        let scale = CYCLE as f64 / gaps.iter().sum::<f64>();
        let mut acc = 0.0;
        std::iter::once(0.0)
            .chain(gaps.iter().map(|g| {
                acc += g * scale;
                acc
            }))
            .take(CYCLE as usize)
            .collect()
    })
}

/// Where connection `conn`'s walk through the cycle starts under `seed`.
#[inline]
pub fn start(seed: u64, conn: u32) -> u64 {
    // splitmix64 of (seed, conn): a well-spread point per connection.
    let mut z = seed
        .wrapping_add(u64::from(conn).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % CYCLE
}

/// The sum of `n` consecutive gaps of the cycle from position `from`, in units of the mean.
#[inline]
pub fn span(from: u64, n: u64) -> f64 {
    let s = sums();
    let end = from + n;
    (end / CYCLE) as f64 * CYCLE as f64 + s[(end % CYCLE) as usize] - s[from as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_exponential_with_mean_one() {
        // The cycle's gaps: mean 1 exactly, and the exponential's quartiles (ln 4/3, ln 2,
        // ln 4) within 1% in probability.
        let gaps: Vec<f64> = (0..CYCLE).map(|i| span(i, 1)).collect();
        let mean = gaps.iter().sum::<f64>() / CYCLE as f64;
        assert!((mean - 1.0).abs() < 1e-9, "mean {mean}");
        for q in [0.25f64, 0.5, 0.75] {
            let x = -(1.0 - q).ln();
            let below = gaps.iter().filter(|&&g| g <= x).count() as f64 / CYCLE as f64;
            assert!((below - q).abs() < 0.01, "P(gap <= {x:.3}) = {below:.4}, want {q}");
        }
    }

    #[test]
    fn spans_wrap_around_the_cycle() {
        assert_eq!(span(5, 0), 0.0);
        let whole = span(7, CYCLE);
        assert!((whole - CYCLE as f64).abs() < 1e-6, "{whole}");
        let a = span(CYCLE - 3, 10);
        let b = span(CYCLE - 3, 3) + span(0, 7);
        assert!((a - b).abs() < 1e-9);
        assert_ne!(start(1, 0), start(1, 1));
        assert_ne!(start(1, 0), start(2, 0));
    }
}
