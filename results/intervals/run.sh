#!/usr/bin/env bash
# Whether a run's confidence interval for p99 speaks for the next run: 8 runs each of one
# configuration (mio, 100 connections, closed loop) in one sitting, three ways:
#   12 s in 1 s intervals  (12 batches: the batch-means interval),
#   2 s in 200 ms intervals (10 batches: the batch-means interval),
#   2 s in 1 s intervals   (2 intervals: the order-statistics interval, which assumes
#                           independent samples).
# containment.py counts, per way, the ordered pairs of runs (i, j) in which run j's p99
# falls inside run i's interval. The ways are interleaved so that a slow minute of the
# machine falls on all three.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
L=target/release/loadgen
out=results/intervals
rm -f $out/runs.csv
for i in 1 2 3 4 5 6 7 8; do
  $L --target mio --conns 100 --duration 12s --warmup 1s --interval 1s --label "12s/1s" --quiet --csv $out/runs.csv
  $L --target mio --conns 100 --duration 2s --warmup 1s --interval 200ms --label "2s/200ms" --quiet --csv $out/runs.csv
  $L --target mio --conns 100 --duration 2s --warmup 1s --interval 1s --label "2s/1s" --quiet --csv $out/runs.csv
done
python3 $out/containment.py
