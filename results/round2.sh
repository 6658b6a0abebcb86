#!/usr/bin/env bash
# Re-makes this round's results: pacing precision, connection churn, scale past one
# process, the fan-out's cost. About 15 minutes on the 2-core development machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p loadgen
lg=target/release/loadgen

# Pacing: mio, 100 connections, open loop, each pacing mode (default client threads).
rm -f results/pacing/pacing.csv
for rate in 1000 10000 50000; do
  for pacing in sleep hybrid spin; do
    $lg --target mio --conns 100 --rate $rate --pacing $pacing --duration 5s --warmup 1s \
        --label "pacing=$pacing" --csv results/pacing/pacing.csv --json results/pacing/$pacing-$rate.json --quiet > /dev/null || true
  done
  # spin with the client on its own core (and the server on the other)
  $lg --target mio --conns 100 --rate $rate --pacing spin --threads 1 --pin-client 0 --pin-server 1 \
      --duration 5s --warmup 1s --label "pacing=spin pinned" --csv results/pacing/pacing.csv \
      --json results/pacing/spin-pinned-$rate.json --quiet > /dev/null || true
done
$lg --target mio --conns 1000 --rate 50 --duration 5s > results/pacing/light-load.txt || true

# Churn: a new connection per round trip, every model; and an open loop of new connections.
rm -f results/churn/sweep.csv
$lg sweep --targets all --conns 1,10,100 --reconnect-every 1 --repeat 3 --duration 3s --warmup 500ms \
    --csv results/churn/sweep.csv
$lg --target mio --conns 200 --conn-rate 2000 --duration 60s --warmup 2s \
    --csv results/churn/connrate-2000.csv --json results/churn/connrate-2000.json > results/churn/connrate-2000.txt || true

# Scale: connection capacity of every model, 3 server and 3 loadgen processes.
rm -f results/scale/capacity.csv
$lg sweep --targets all --conns 1000,10000,30000,50000 --procs 3 --server-procs 3 --duration 5s --warmup 1s \
    --csv results/scale/capacity.csv || true

# The fan-out's cost: 10k connections in 1 loadgen process or 3, interleaved, 3 times.
rm -f results/scale/fanout.csv
for r in 1 2 3; do
  for p in 1 3; do
    $lg --target mio --conns 10000 --procs $p --duration 5s --warmup 1s --label "procs=$p" \
        --csv results/scale/fanout.csv --quiet > /dev/null || true
  done
done
results/pages.sh   # the study pages (loadgen report) from the data just made
