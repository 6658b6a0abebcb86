#!/usr/bin/env bash
# Server work: every model x {none, cpu:20us, wait:1ms, block:1ms, cpu:20us+wait:exp:1ms}
# x 1, 100, 1000 connections, 3 interleaved repeats; 64 B closed loop, 1.5 s after 0.3 s
# warm-up; threadpool with a worker per connection (loadgen's default), the others with
# their default single worker; then the charts and the pages.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p loadgen
L=target/release/loadgen
out=results/work
rm -f $out/work.csv
$L sweep --targets all --conns 1,100,1000 --repeat 3 --duration 1500ms --warmup 300ms \
  --work 'none;cpu:20us;wait:1ms;block:1ms;cpu:20us+wait:exp:1ms' --seed 1 --csv $out/work.csv
$L plot $out/work.csv --out $out/work.svg
python3 results/gen.py --write
results/pages.sh
