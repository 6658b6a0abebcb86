//! The schedules' times, counts and walks.

use super::*;

/// Stages 1s:1k, 500ms@3k, 1s:0, 500ms@0, 1s@500 over 10 connections.
fn staged(arrivals: Arrival) -> Schedule {
    let stage = |ms: u64, target: f64, step: bool| Stage {
        duration: std::time::Duration::from_millis(ms),
        target,
        step,
        spec: String::new(),
    };
    let p = Profile::new(vec![
        stage(1000, 1000.0, false),
        stage(500, 3000.0, true),
        stage(1000, 0.0, false),
        stage(500, 0.0, true),
        stage(1000, 500.0, true),
    ]);
    Schedule::Open {
        rate: p.mean(),
        conns: 10,
        arrivals,
        seed: 7,
        profile: Some(std::sync::Arc::new(p)),
    }
}

#[test]
fn staged_sends_follow_the_stages_and_none_falls_in_a_pause() {
    for arrivals in [Arrival::Uniform, Arrival::Poisson] {
        let s = staged(arrivals);
        let mut times: Vec<u64> = (0..10u32)
            .flat_map(|c| (0..2000).map(move |k| (c, k)))
            .filter_map(|(c, k)| s.intended_ns(c, k))
            .filter(|&t| t < 4_000_000_000)
            .collect();
        times.sort_unstable();
        let count = |from_ms: u64, to_ms: u64| {
            times
                .iter()
                .filter(|&&t| t >= from_ms * 1_000_000 && t < to_ms * 1_000_000)
                .count() as f64
        };
        // Offered: 500 in the first second, 1500 in the step, 1500 in the ramp down, 0 in
        // the pause, 500 in the last second.
        for (from, to, want) in [
            (0, 1000, 500.0),
            (1000, 1500, 1500.0),
            (1500, 2500, 1500.0),
            (3000, 4000, 500.0_f64),
        ] {
            let got = count(from, to);
            let slack = if arrivals == Arrival::Uniform {
                2.0
            } else {
                5.0 * want.sqrt()
            };
            assert!(
                (got - want).abs() <= slack,
                "{arrivals:?} [{from}, {to}) ms: {got} sends, {want} offered"
            );
        }
        assert_eq!(count(2500, 3000), 0.0, "{arrivals:?}: nothing in the pause");
        // The ramp's first half offers a quarter of its sends.
        let first_half = count(0, 500);
        assert!(
            (first_half - 125.0).abs() <= if arrivals == Arrival::Uniform { 2.0 } else { 40.0 },
            "{first_half}"
        );
    }
}

fn open(rate: f64, conns: usize, arrivals: Arrival) -> Schedule {
    Schedule::Open {
        rate,
        conns,
        arrivals,
        seed: 7,
        profile: None,
    }
}

#[test]
fn arrivals_of_all_threads_interleave_at_the_total_rate() {
    let mut all: Vec<u64> = (0..3)
        .flat_map(|t| {
            let mut a = Arrivals::new(1000.0, t, 3);
            (0..10)
                .map(|_| {
                    let at = a.peek();
                    a.advance();
                    at
                })
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort_unstable();
    for (k, at) in all.iter().take(30).enumerate() {
        assert_eq!(*at, k as u64 * 1_000_000);
    }
}

#[test]
fn due_counts_follow_each_connections_own_schedule() {
    // 50 msg/s over 1000 connections: each is due once every 20 s.
    let s = open(50.0, 1000, Arrival::Uniform);
    let window = (1_000_000_000, 6_000_000_000);
    let due: Vec<u64> = (0..1000)
        .map(|c| s.due_between(c, window.0, window.1).unwrap())
        .collect();
    assert_eq!(due.iter().sum::<u64>(), 250, "5 s at 50 msg/s");
    assert_eq!(due.iter().filter(|&&d| d == 0).count(), 750);
    assert_eq!(Schedule::Closed.due_between(0, 0, 1), None);
}

#[test]
fn poisson_due_counts_match_the_intended_times() {
    // Counted by search = counted by listing, and the total is near rate x time.
    let s = open(10_000.0, 20, Arrival::Poisson);
    let (from, to) = (300_000_000, 2_300_000_000);
    let mut total = 0;
    for c in 0..20 {
        let listed = (0..10_000)
            .filter_map(|k| s.intended_ns(c, k))
            .filter(|&at| at >= from && at < to)
            .count() as u64;
        let counted = s.due_between(c, from, to).unwrap();
        assert_eq!(counted, listed, "connection {c}");
        total += counted;
    }
    // 20,000 expected; a Poisson count's sd is about 141.
    assert!((19_400..=20_600).contains(&total), "{total}");
}

#[test]
fn poisson_gaps_are_exponential_at_the_connections_rate() {
    // One connection of 4 at 4,000 msg/s: mean gap 1 ms, and P(gap > 1 ms) = 1/e.
    let s = open(4000.0, 4, Arrival::Poisson);
    let times: Vec<u64> = (0..20_000).map(|k| s.intended_ns(2, k).unwrap()).collect();
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<u64>() as f64 / gaps.len() as f64;
    assert!((mean - 1e6).abs() < 0.03e6, "mean gap {mean} ns");
    let over = gaps.iter().filter(|&&g| g > 1_000_000).count() as f64 / gaps.len() as f64;
    assert!((over - (-1f64).exp()).abs() < 0.02, "P(gap > mean) = {over}");
    // Another seed, another stream.
    let other = Schedule::Open {
        rate: 4000.0,
        conns: 4,
        arrivals: Arrival::Poisson,
        seed: 8,
        profile: None,
    };
    assert_ne!(other.intended_ns(2, 5), s.intended_ns(2, 5));
}

#[test]
fn open_schedule_spreads_the_total_rate() {
    let s = open(1000.0, 4, Arrival::Uniform);
    assert_eq!(s.intended_ns(0, 0), Some(0));
    assert_eq!(s.intended_ns(1, 0), Some(1_000_000));
    assert_eq!(s.intended_ns(0, 1), Some(4_000_000));
    assert_eq!(Schedule::Closed.intended_ns(0, 5), None);
}

#[test]
fn catching_up_lands_where_walking_would() {
    // Thread 1 of 3 over 10 connections (1, 4, 7), at an odd rate, both arrival kinds.
    // And the same warped onto stages (a ramp, a step, a ramp down to 0, a pause).
    let schedules = [Arrival::Uniform, Arrival::Poisson]
        .into_iter()
        .flat_map(|a| [open(777.0, 10, a), staged(a)]);
    for s in schedules {
        let arrivals = format!("{s:?}");
        for t in [0, 1, 1_286_000, 5_000_000, 99_999_999, 1_000_000_000, 2_500_000_000] {
            let mut walk = ThreadSchedule::new(s.clone(), vec![1, 4, 7]);
            while let Some((_, _, at)) = walk.peek() {
                if at > t {
                    break;
                }
                walk.advance();
            }
            let mut jumped = ThreadSchedule::new(s.clone(), vec![1, 4, 7]);
            jumped.catch_up(t);
            assert_eq!(jumped.position(), walk.position(), "{arrivals} t {t}");
            for slot in 0..3 {
                assert_eq!(jumped.next_seq(slot), walk.next_seq(slot), "t {t}, slot {slot}");
            }
            assert_eq!(jumped.peek(), walk.peek(), "the next message after t {t}");
        }
    }
}

#[test]
fn a_thread_far_behind_says_so() {
    // 10 connections at 1000 msg/s: a connection's period is 10 ms.
    let walk = ThreadSchedule::new(open(1000.0, 10, Arrival::Uniform), vec![0, 5]);
    assert!(!walk.behind(30_000_000, 4), "3 periods late");
    assert!(walk.behind(50_000_000, 4), "5 periods late");
    assert!(!ThreadSchedule::new(Schedule::Closed, vec![0]).behind(u64::MAX, 0));
}

#[test]
fn thread_walk_is_time_ordered_and_complete() {
    // 10 connections over 3 threads; merged, the threads' walks give 1 message per 1/R
    // (uniform), and every message exactly once in time order (Poisson).
    for arrivals in [Arrival::Uniform, Arrival::Poisson] {
        let s = open(10_000.0, 10, arrivals);
        let mut all = Vec::new();
        for t in 0..3u32 {
            let ids: Vec<u32> = (t..10).step_by(3).collect();
            let mut w = ThreadSchedule::new(s.clone(), ids.clone());
            let mut last = 0;
            for _ in 0..300 {
                let (slot, seq, at) = w.peek().unwrap();
                assert!(at >= last, "not time-ordered");
                assert_eq!(Some(at), s.intended_ns(ids[slot], seq));
                last = at;
                all.push((at, ids[slot], seq));
                w.advance();
            }
        }
        all.sort();
        if arrivals == Arrival::Uniform {
            let horizon = 200; // every thread has walked past 20 ms
            for (i, (at, _, _)) in all.iter().take(horizon).enumerate() {
                assert_eq!(*at, i as u64 * 100_000, "message {i}");
            }
        }
        // Per connection, sequence numbers come in order without a gap.
        for c in 0..10 {
            let seqs: Vec<u64> = all.iter().filter(|m| m.1 == c).map(|m| m.2).collect();
            assert!(seqs.iter().enumerate().all(|(i, &s)| s == i as u64), "connection {c}");
        }
    }
}

#[test]
fn the_promised_poisson_schedule_passes_the_arrivals_check() {
    // The intended send times a thread walks, as the check would see them sent on time.
    for (seed, conns) in [(0u64, 4usize), (1, 4), (2, 100), (3, 1)] {
        let s = Schedule::Open {
            rate: 2000.0,
            conns,
            arrivals: Arrival::Poisson,
            seed,
            profile: None,
        };
        let mut walk = ThreadSchedule::new(s, (0..conns as u32).collect());
        let mut times = Vec::new();
        while let Some((_, _, at)) = walk.peek() {
            if at >= 6_000_000_000 {
                break;
            }
            if at >= 1_000_000_000 {
                times.push(at);
            }
            walk.advance();
        }
        let mut gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64 / 500_000.0).collect();
        let (d, p) = crate::stats::ks_exponential(&mut gaps).unwrap();
        eprintln!("seed {seed} conns {conns}: {} gaps, D {d:.4}, p {p:.3}", gaps.len());
        assert!(p >= 0.001, "seed {seed}, {conns} conns: D {d}, p {p}");
    }
}
