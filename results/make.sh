#!/usr/bin/env bash
# Re-makes the committed results: a sweep of every model, then its charts.
# Takes about 8 minutes on the 2-core development machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p loadgen
rm -f results/sweep.csv
target/release/loadgen sweep --targets all --conns 1,10,100,1000 --msg-size 64,4096 --repeat 3 \
    --duration 3s --warmup 1s --csv results/sweep.csv
target/release/loadgen plot results/sweep.csv --msg-size 64 --out results/sweep-64B.svg
target/release/loadgen plot results/sweep.csv --msg-size 4096 --out results/sweep-4KiB.svg
results/pages.sh   # the study pages (loadgen report) from the data just made
