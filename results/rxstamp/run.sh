#!/usr/bin/env bash
# What kernel receive timestamps cost the client: the same runs with --rx-timestamps on and
# off, interleaved, REPEATS of each: mio, 4 connections, closed loop, over TCP and over UDP.
# Writes results/rxstamp/runs.csv.
#   results/rxstamp/run.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/../.."
L=${LOADGEN:-target/release/loadgen}
REPEATS=${1:-6}
out=results/rxstamp/runs.csv
rm -f "$out"
for i in $(seq "$REPEATS"); do
  for rx in on off; do
    "$L" --target mio -c 4 -d 5s --rx-timestamps "$rx" --label "$rx" -q --csv "$out" >/dev/null
    "$L" --target mio --transport udp -c 4 -d 5s --rx-timestamps "$rx" --label "$rx" -q --csv "$out" >/dev/null
  done
done
echo "wrote $out"
