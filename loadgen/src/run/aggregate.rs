//! Merging the client threads' intervals as they arrive, in memory that does not grow with
//! the run's duration.
//!
//! Each thread hands over one [`Interval`] per reporting interval. An interval stays
//! pending until every thread has reported it; then it is complete: it is handed out once
//! (for the interval log), folded into the running totals, and kept only as its summary
//! numbers (for the JSON series). So at most a few intervals' histograms are held at any
//! time, however long the run.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::measure::record::{Counters, Interval, Percentiles};
use crate::report::IntervalRow;

/// One completed interval's summary (its histograms are folded into the totals).
#[derive(Debug, Clone, Copy)]
struct Summary {
    index: u32,
    msgs: u64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
}

/// What [`Aggregator::settle`] chose.
pub(crate) struct Cut {
    /// Leading intervals cut as warm-up.
    pub(crate) cut: u32,
    /// In intervals, how long the warm-up looked when that was more than the held ones.
    pub(crate) warmup_beyond: Option<u32>,
}

/// The threads' intervals, merged.
#[derive(Debug)]
pub(crate) struct Aggregator {
    /// Warmup (and connection phase) counts.
    warmup: Interval,
    /// Intervals not yet reported by every thread, by index, merged over the threads so far.
    pending: BTreeMap<u32, (Interval, usize)>,
    /// Every completed interval merged.
    total: Interval,
    /// Completed intervals' summaries, in order.
    done: Vec<Summary>,
    /// Threads reporting.
    threads: usize,
    /// `--warmup auto`: the first intervals are held whole (not folded) until the run's end
    /// decides how many of them were warm-up; at most this many.
    hold: u32,
    /// The held intervals, in order.
    held: Vec<Interval>,
    /// `--stages`: the index of each stage's first interval, and each stage's intervals
    /// merged (one interval's histograms a stage, however long the run).
    stages: Vec<(u32, Interval)>,
}

impl Aggregator {
    /// An aggregator for `threads` reporting threads.
    pub(crate) fn new(threads: usize) -> Self {
        Aggregator {
            warmup: Interval::new(None),
            pending: BTreeMap::new(),
            total: Interval::new(None),
            done: Vec::new(),
            threads,
            hold: 0,
            held: Vec::new(),
            stages: Vec::new(),
        }
    }

    /// Also merges the intervals of each stage apart; `starts` holds the index of each
    /// stage's first interval, increasing (see `run::staged`).
    pub(crate) fn staged(mut self, starts: &[u32]) -> Self {
        self.stages = starts.iter().map(|&i| (i, Interval::new(None))).collect();
        self
    }

    /// `--stages`: each stage's intervals merged; the first also holds the errors of the
    /// connection phase, as the totals do.
    pub(crate) fn stages(&self) -> Vec<Interval> {
        let mut out: Vec<Interval> = self.stages.iter().map(|(_, iv)| iv.clone()).collect();
        if let Some(first) = out.first_mut() {
            first.counters += self.warmup_errors();
        }
        out
    }

    /// The warm-up's (and connection phase's) error counts, nothing else.
    fn warmup_errors(&self) -> Counters {
        Counters {
            msgs: 0,
            bytes: 0,
            sent: 0,
            conns_opened: 0,
            conns_closed: 0,
            ..self.warmup.counters
        }
    }

    /// Holds the first `n` intervals whole, for [`Aggregator::settle`] (`--warmup auto`).
    /// Memory: `n` intervals' histograms, bounded by the cap, not by the run's length.
    pub(crate) fn holding(mut self, n: u32) -> Self {
        self.hold = n;
        self
    }

    /// `--warmup auto`, once every interval is complete: chooses how many leading
    /// intervals were warm-up (MSER over the per-interval message counts, at most the held
    /// ones; all of them when the warm-up outlasted them), counts their errors with the
    /// warm-up, folds the rest into the totals, and drops the warm-up ones from the series. Returns how many were cut, and how long the
    /// warm-up looked when that was past the held ones ([`crate::stats::steady::warmup_beyond`]).
    pub(crate) fn settle(&mut self) -> Cut {
        let (series, held) = (self.settle_series(), self.held.len());
        // A warm-up longer than the cap: MSER's choice under the cap is meaningless then
        // (it may cut nothing), and all that may be cut is the least wrong.
        let beyond = crate::stats::steady::warmup_beyond(&series, held);
        let cut = match beyond {
            Some(_) => held,
            None => crate::stats::steady::mser_truncation(&series, held).min(held),
        };
        for (i, iv) in std::mem::take(&mut self.held).into_iter().enumerate() {
            if i < cut {
                self.warmup.counters += iv.counters;
            } else {
                self.total.merge(&iv);
            }
        }
        self.done.drain(..cut);
        for s in &mut self.done {
            s.index -= cut as u32;
        }
        Cut {
            cut: cut as u32,
            warmup_beyond: beyond.map(|d| d as u32),
        }
    }

    /// The per-interval message counts MSER chooses from: the last interval may be short,
    /// so it is left out.
    fn settle_series(&self) -> Vec<f64> {
        let n = self.done.len().saturating_sub(1);
        self.done[..n].iter().map(|s| s.msgs as f64).collect()
    }

    /// Adds one thread's interval.
    pub(crate) fn add(&mut self, iv: &Interval) {
        match iv.index {
            None => self.warmup.merge(iv),
            Some(i) => {
                let (merged, arrived) = self.pending.entry(i).or_insert_with(|| (Interval::new(Some(i)), 0));
                merged.merge(iv);
                *arrived += 1;
            }
        }
    }

    /// Completes the earliest pending interval if every thread has reported it (with
    /// `all`, at the end of a run: whether or not they have), folds it into the totals and
    /// hands it to `sink` (for the interval log). Call until it returns `false`.
    pub(crate) fn complete_next(&mut self, all: bool, sink: impl FnOnce(&Interval)) -> bool {
        let Some(entry) = self.pending.first_entry() else {
            return false;
        };
        if !all && entry.get().1 < self.threads {
            return false;
        }
        let (iv, _) = entry.remove();
        sink(&iv);
        let p = Percentiles::of(&iv.latency);
        self.done.push(Summary {
            index: iv.index.unwrap_or(0),
            msgs: iv.counters.msgs,
            p50_us: p.p50_us,
            p99_us: p.p99_us,
            errors: iv.counters.errors(),
        });
        if let Some(i) = iv.index {
            // The last stage starting at or before this interval.
            let k = self.stages.partition_point(|&(start, _)| start <= i);
            if let Some((_, stage)) = k.checked_sub(1).and_then(|k| self.stages.get_mut(k)) {
                stage.merge(&iv);
            }
        }
        if iv.index.is_some_and(|i| i < self.hold) {
            self.held.push(iv);
        } else {
            self.total.merge(&iv);
        }
        true
    }

    /// Everything completed, merged: window latencies and message counts; error counts of
    /// warmup and window together.
    pub(crate) fn total(&self) -> Interval {
        let mut total = self.total.clone();
        total.counters += self.warmup_errors();
        total
    }

    /// Messages of the window so far, held intervals included.
    pub(crate) fn total_with_held_msgs(&self) -> u64 {
        self.total.counters.msgs + self.held.iter().map(|iv| iv.counters.msgs).sum::<u64>()
    }

    /// Errors counted so far (warmup, completed and pending intervals).
    pub(crate) fn errors_so_far(&self) -> u64 {
        self.warmup.counters.errors()
            + self.total.counters.errors()
            + self.held.iter().map(|iv| iv.counters.errors()).sum::<u64>()
            + self.pending.values().map(|(iv, _)| iv.counters.errors()).sum::<u64>()
    }

    /// The latest completed interval: (messages, latency p99 in µs).
    pub(crate) fn latest(&self) -> Option<(u64, f64)> {
        self.done.last().map(|s| (s.msgs, s.p99_us))
    }

    /// Per-interval series; the last interval may be shorter than `interval`.
    pub(crate) fn rows(&self, interval: Duration, measured: Duration) -> Vec<IntervalRow> {
        let len = interval.as_secs_f64();
        let measured = measured.as_secs_f64();
        self.done
            .iter()
            .filter_map(|s| {
                let start = f64::from(s.index) * len;
                let end = (start + len).min(measured);
                (end > start).then(|| IntervalRow {
                    t_s: end,
                    msgs_s: s.msgs as f64 / (end - start),
                    p50_us: s.p50_us,
                    p99_us: s.p99_us,
                    errors: s.errors,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(index: u32, latency_ns: u64) -> Interval {
        let mut iv = Interval::new(Some(index));
        iv.latency.record(latency_ns).unwrap();
        iv.counters.msgs = 1;
        iv
    }

    #[test]
    fn completes_in_order_once_every_thread_reported() {
        let mut agg = Aggregator::new(2);
        agg.add(&iv(0, 1000));
        agg.add(&iv(1, 2000));
        assert!(!agg.complete_next(false, |_| {}), "interval 0 lacks a thread");
        agg.add(&iv(0, 3000));
        let mut seen = Vec::new();
        while agg.complete_next(false, |iv| seen.push(iv.index)) {}
        assert_eq!(seen, vec![Some(0)]);
        while agg.complete_next(true, |iv| seen.push(iv.index)) {}
        assert_eq!(seen, vec![Some(0), Some(1)]);
        let total = agg.total();
        assert_eq!((total.counters.msgs, total.latency.len()), (3, 3));
        assert_eq!(agg.rows(Duration::from_secs(1), Duration::from_secs(2)).len(), 2);
    }

    #[test]
    fn settle_cuts_the_ramp_and_keeps_the_rest() {
        let mut agg = Aggregator::new(1).holding(4);
        for (i, n) in [10u64, 50, 100, 100, 101, 99, 100, 100, 100, 100]
            .into_iter()
            .enumerate()
        {
            let mut v = iv(i as u32, 1000);
            v.counters.msgs = n;
            agg.add(&v);
            while agg.complete_next(false, |_| {}) {}
        }
        assert_eq!(agg.settle().cut, 2);
        let total = agg.total();
        assert_eq!(total.counters.msgs, 100 + 100 + 101 + 99 + 100 * 4);
        let rows = agg.rows(Duration::from_secs(1), Duration::from_secs(8));
        assert_eq!(rows.len(), 8, "the series starts after the warm-up");
        assert_eq!(rows[0].msgs_s, 100.0);
    }

    #[test]
    fn stages_merge_their_own_intervals() {
        let mut agg = Aggregator::new(1).staged(&[0, 2, 3]);
        agg.warmup.counters.timeouts = 1;
        for i in 0..5 {
            agg.add(&iv(i, 1000 * (u64::from(i) + 1)));
            while agg.complete_next(false, |_| {}) {}
        }
        let stages = agg.stages();
        let msgs: Vec<u64> = stages.iter().map(|s| s.counters.msgs).collect();
        assert_eq!(msgs, [2, 1, 2]);
        assert_eq!(
            stages[0].counters.timeouts, 1,
            "the connection phase's errors go with the first stage"
        );
        assert_eq!(stages[2].latency.max(), agg.total().latency.max());
    }

    #[test]
    fn holds_no_histograms_of_completed_intervals() {
        let mut agg = Aggregator::new(1);
        for i in 0..300 {
            agg.add(&iv(i, 1000 + u64::from(i)));
            while agg.complete_next(false, |_| {}) {}
        }
        assert!(agg.pending.is_empty());
        assert_eq!(agg.total().latency.len(), 300);
    }
}
