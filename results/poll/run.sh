#!/usr/bin/env bash
# poll(2) against epoll (mio), one loop each: 100, 1000 and 10,000 connections, 64 B, depth
# 1, closed loop and an open loop of 20,000 msg/s in total, 3 repeats, one sitting.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
L=target/release/loadgen
out=results/poll
rm -f $out/poll.csv
$L sweep --targets mio,poll --conns 100,1000,10000 --repeat 3 --duration 2s --warmup 500ms --csv $out/poll.csv
$L sweep --targets mio,poll --conns 100,1000,10000 --rate 20000 --repeat 3 --duration 2s --warmup 500ms \
  --csv $out/poll.csv
