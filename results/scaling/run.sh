#!/usr/bin/env bash
# How each model scales with its workers on this machine: every model x server workers
# 1, 2, 4 (4 oversubscribes 2 cores) x 10, 100, 1000 connections, 3 interleaved repeats,
# 64 B closed loop, 2 s after 0.5 s warm-up, loadgen's default client threads (half the
# cores). thread-per-conn takes no worker count (a thread per connection): its rows are
# the same configuration three times over. Then the charts.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p loadgen
L=target/release/loadgen
out=results/scaling
rm -f $out/scaling.csv
$L sweep --targets all --server-workers 1,2,4 --conns 10,100,1000 --repeat 3 \
  --duration 2s --warmup 500ms --csv $out/scaling.csv
$L plot $out/scaling.csv --out $out/scaling.svg
python3 results/gen.py --write
results/pages.sh
