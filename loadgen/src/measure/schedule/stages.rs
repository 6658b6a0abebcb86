//! `--stages`: a load that changes over time, as a piecewise-linear target (a rate in open
//! loop, a number of open connections in closed loop).
//!
//! A stage `D:T` moves linearly from the previous stage's target (0 before the first) to
//! `T` over `D`; `D@T` steps to `T` at its start and holds it. The open loop does not get a
//! second scheduler: its intended send times are those of the constant-rate schedule at the
//! profile's mean rate `R̄`, time-warped. With `Λ(t)` the messages the profile offers by
//! `t` (the integral of its rate), the message the constant schedule sends at `u` is sent at
//! `Λ⁻¹(R̄ u)`. Uniform sends stay evenly spaced in `Λ`, so they follow the ramp exactly;
//! Poisson sends become a Poisson process of rate `λ(t)` (the time-change theorem).
//!
//! The warp costs a send a binary search over the stages and a square root: in `cargo
//! bench` (`schedule_next_send_uniform_stages`, 64 ramps) about 33 ns a send against 7 ns
//! without stages, 0.3% of a core at 100k msg/s per thread.

use std::fmt;
use std::time::Duration;

/// One stage of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Where it ends: messages per second, or open connections.
    pub target: f64,
    /// `@`: jump to the target at the start and hold it (else a linear ramp to it).
    pub step: bool,
    /// As the user wrote it (`30s:1k`, `10s@5k`).
    pub spec: String,
}

/// A piece of the profile: a stage placed in time, its target at both ends and what was
/// offered before it.
#[derive(Debug, Clone, PartialEq)]
struct Piece {
    start_ns: f64,
    len_ns: f64,
    from: f64,
    to: f64,
    /// ∫ target dt before the piece, in target-seconds (messages in open loop).
    before: f64,
}

impl Piece {
    /// ∫ target dt over the piece's first `tau` ns, target-seconds.
    fn area(&self, tau: f64) -> f64 {
        let tau = tau.clamp(0.0, self.len_ns);
        let slope = (self.to - self.from) / self.len_ns;
        (self.from * tau + 0.5 * slope * tau * tau) / 1e9
    }

    /// The `tau` (ns into the piece) at which the area reaches `a` target-seconds: the root
    /// of `slope/2 tau² + from tau = a·1e9`, in the form that is stable for every slope's
    /// sign (and for a flat piece, where it is `a / from`).
    fn tau_of_area(&self, a: f64) -> f64 {
        let slope = (self.to - self.from) / self.len_ns;
        let a = a * 1e9;
        let disc = (self.from * self.from + 2.0 * slope * a).max(0.0);
        let denom = self.from + disc.sqrt();
        if denom <= 0.0 {
            0.0
        } else {
            (2.0 * a / denom).clamp(0.0, self.len_ns)
        }
    }
}

/// A checked list of stages, placed in time.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    stages: Vec<Stage>,
    pieces: Vec<Piece>,
}

impl Profile {
    /// The interval log's note naming the stages and what they count (`rate` or
    /// `conns`), for `report` and `plot` to draw them.
    pub fn log_note(&self, of: &str) -> String {
        format!("Stages: {self} of={of}")
    }

    /// The profile of `stages` (not empty, each longer than zero, targets finite and ≥ 0).
    pub fn new(stages: Vec<Stage>) -> Self {
        let (mut start_ns, mut before, mut prev) = (0.0, 0.0, 0.0);
        let mut pieces = Vec::with_capacity(stages.len());
        for s in &stages {
            let len_ns = s.duration.as_nanos() as f64;
            let from = if s.step { s.target } else { prev };
            let piece = Piece {
                start_ns,
                len_ns,
                from,
                to: s.target,
                before,
            };
            before += piece.area(len_ns);
            start_ns += len_ns;
            prev = s.target;
            pieces.push(piece);
        }
        Profile { stages, pieces }
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// When stage `i` starts, after the start of the run.
    pub fn start_of(&self, i: usize) -> Duration {
        self.stages[..i].iter().map(|s| s.duration).sum()
    }

    /// The whole profile's length.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// ∫ target dt over the whole profile: the messages it offers (open loop).
    pub fn area(&self) -> f64 {
        self.pieces.last().map_or(0.0, |p| p.before + p.area(p.len_ns))
    }

    /// The mean target over the profile (the open loop's mean rate).
    pub fn mean(&self) -> f64 {
        self.area() / self.total().as_secs_f64().max(1e-9)
    }

    /// The highest target any stage reaches.
    pub fn peak(&self) -> f64 {
        self.stages.iter().map(|s| s.target).fold(0.0, f64::max)
    }

    /// Stage `i`'s target at its start and its end.
    pub fn ends(&self, i: usize) -> (f64, f64) {
        (self.pieces[i].from, self.pieces[i].to)
    }

    /// Stage `i`'s mean target (its offered rate in open loop).
    pub fn stage_mean(&self, i: usize) -> f64 {
        let p = &self.pieces[i];
        p.area(p.len_ns) / (p.len_ns / 1e9).max(1e-18)
    }

    /// The piece at `t_ns` (the last one from its end on).
    fn piece_at(&self, t_ns: f64) -> &Piece {
        let i = self.pieces.partition_point(|p| p.start_ns <= t_ns);
        &self.pieces[i.saturating_sub(1)]
    }

    /// The target at `t_ns` after the start (the last stage's beyond the end).
    pub fn target_at(&self, t_ns: u64) -> f64 {
        let p = self.piece_at(t_ns as f64);
        let tau = (t_ns as f64 - p.start_ns).clamp(0.0, p.len_ns);
        p.from + (p.to - p.from) * tau / p.len_ns
    }

    /// ∫ target dt from the start to `t_ns`, target-seconds; beyond the end the last
    /// target goes on (so that the warp stays increasing past the run's end).
    pub fn area_until(&self, t_ns: f64) -> f64 {
        let p = self.piece_at(t_ns);
        let tau = t_ns - p.start_ns;
        let beyond = (tau - p.len_ns).max(0.0);
        p.before + p.area(tau) + p.to * beyond / 1e9
    }

    /// The time (ns after the start) by which the profile has offered `a` target-seconds:
    /// the inverse of [`area_until`](Self::area_until). Past the end it goes on at the last
    /// target, or at the mean where the profile ends at zero.
    pub fn time_of_area(&self, a: f64) -> f64 {
        let i = self.pieces.partition_point(|p| p.before <= a).saturating_sub(1);
        let p = &self.pieces[i];
        let inside = p.before + p.area(p.len_ns);
        if i + 1 == self.pieces.len() && a >= inside {
            let rate = if p.to > 0.0 { p.to } else { self.mean().max(1e-9) };
            return p.start_ns + p.len_ns + (a - inside) / rate * 1e9;
        }
        p.start_ns + p.tau_of_area(a - p.before)
    }

    /// The stage running at `t` after the start (the last one from its end on).
    pub fn stage_at(&self, t: Duration) -> usize {
        self.pieces
            .partition_point(|p| p.start_ns <= t.as_nanos() as f64)
            .saturating_sub(1)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let specs: Vec<&str> = self.stages.iter().map(|s| s.spec.as_str()).collect();
        f.write_str(&specs.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(secs: f64, target: f64, step: bool) -> Stage {
        Stage {
            duration: Duration::from_secs_f64(secs),
            target,
            step,
            spec: String::new(),
        }
    }

    #[test]
    fn ramps_and_steps_offer_their_areas() {
        // 0 -> 1000 over 2 s (1000 msgs), 1000 -> 5000 over 2 s (6000), 20000 held 2 s
        // (40000), 20000 -> 0 over 2 s (20000).
        let p = Profile::new(vec![
            stage(2.0, 1000.0, false),
            stage(2.0, 5000.0, false),
            stage(2.0, 20_000.0, true),
            stage(2.0, 0.0, false),
        ]);
        assert!((p.area() - 67_000.0).abs() < 1e-6, "{}", p.area());
        assert_eq!(p.total(), Duration::from_secs(8));
        let means: Vec<f64> = (0..4).map(|i| p.stage_mean(i)).collect();
        assert_eq!(means, [500.0, 3000.0, 20_000.0, 10_000.0]);
        assert_eq!(p.target_at(1_000_000_000), 500.0);
        assert_eq!(p.target_at(5_000_000_000), 20_000.0);
        assert_eq!(p.stage_at(Duration::from_secs(4)), 2);
        assert_eq!(p.start_of(3), Duration::from_secs(6));
    }

    #[test]
    fn the_warp_inverts_the_area_on_every_slope_and_beyond_the_end() {
        let p = Profile::new(vec![
            stage(1.0, 100.0, false),
            stage(1.0, 100.0, false),
            stage(1.0, 0.0, false),
            stage(0.5, 0.0, false),
            stage(1.0, 50.0, true),
        ]);
        let mut last = -1.0;
        for k in 0..=1000 {
            let t = k as f64 * 5e6;
            let a = p.area_until(t);
            assert!(a >= last, "the area never falls");
            last = a;
            let back = p.time_of_area(a);
            // Inside the flat zero stage every time has the same area: the inverse gives
            // its start.
            if !(3.0e9..3.5e9).contains(&t) {
                assert!((back - t).abs() < 1.0, "t {t} -> area {a} -> {back}");
            }
        }
        let end = p.area();
        assert!(
            (p.time_of_area(end + 50.0) - 5.5e9).abs() < 1.0,
            "past the end at the last target"
        );
    }
}
