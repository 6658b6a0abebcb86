#!/usr/bin/env bash
# The study that decides which model to build on: every model x work {none, cpu:20us,
# wait:1ms, block:1ms} x 10, 100, 1000 connections, closed loop, repeated until the mean
# throughput is known within 2.5% (3 to 5 interleaved runs), 2 s after 0.3 s of warm-up;
# each model at its own default workers (the pool: a worker per connection). Then the
# latency-versus-load curve: at 1000 connections, work none and wait:1ms, an offered-rate
# ladder judged by p99 <= 5 ms (3 repeats; rungs above a miss skipped). Then the charts and
# the pages. About 25 minutes on a 2-core VM.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p loadgen
L=target/release/loadgen
out=results/work
rm -f $out/work.csv $out/curve.csv
$L sweep --targets all --conns 10,100,1000 --repeat auto --max-repeat 5 --duration 2s --warmup 300ms \
  --work 'none;cpu:20us;wait:1ms;block:1ms' --seed 1 -q --csv $out/work.csv
$L sweep --targets all --conns 1000 --rate 5k..150k/8 --slo p99=5ms --repeat 3 --duration 2s --warmup 300ms \
  --work 'none;wait:1ms' --seed 1 -q --csv $out/curve.csv
# Little's law: a 16-worker pool against the loops' one worker, 3 interleaved rounds.
rm -f $out/littles-law.csv
for _ in 1 2 3; do
  $L sweep --targets threadpool --server-workers 16 --conns 100 --work wait:1ms --duration 2s --warmup 300ms \
    --seed 1 -q --csv $out/littles-law.csv
  $L sweep --targets mio,tokio --conns 100 --work wait:1ms --duration 2s --warmup 300ms --seed 1 -q \
    --csv $out/littles-law.csv
done
$L plot $out/work.csv --out $out/work.svg
$L plot $out/curve.csv --out $out/curve.svg
python3 results/gen.py --write
results/pages.sh
