#!/usr/bin/env bash
# Queueing theory against measurement: one server thread (mio, one worker), one connection
# with room for 64 messages in flight, Poisson arrivals (--arrivals poisson) at 30%, 50% and
# 70% of 1,000 msg/s, and a blocking service per message of mean 1 ms: exponential
# (block:exp:1ms, an M/M/1 queue) or fixed (block:1ms, M/D/1). Per repeat, interleaved:
# the same rates without work (the baseline: network and server path), and two closed-loop
# calibration runs (one connection, no work and block:1ms) that measure how much longer than
# asked this machine's sleep lasts. Each repeat has its own --seed (its own arrivals and
# service times). Writes results/queueing/runs.csv; results/queueing/table.py reads it.
#   results/queueing/run.sh [REPEATS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
L=${LOADGEN:-target/release/loadgen}
REPEATS=${1:-3}
SECS=${2:-20}
out=results/queueing/runs.csv
rm -f "$out"
common=(--target mio --server-workers 1 -c 1 -q --csv "$out")
for rep in $(seq "$REPEATS"); do
  for work in none block:1ms; do
    "$L" "${common[@]}" --duration 10s --warmup 1s --seed "$rep" --work "$work" --label calibration >/dev/null
  done
  for rate in 300 500 700; do
    for work in none block:exp:1ms block:1ms; do
      "$L" "${common[@]}" --depth 64 --rate "$rate" --arrivals poisson --duration "${SECS}s" --warmup 2s \
        --seed "$rep" --work "$work" --label queue >/dev/null
    done
  done
done
echo "wrote $out"
