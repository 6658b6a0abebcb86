#!/usr/bin/env bash
# The floor under every echo: the kernel's own ICMP echo beside every model over TCP, Unix
# and UDP, at 1 and 100 connections, 64 B, closed loop, depth 1, 3 repeats. The kernel's
# echo runs over ping sockets (a raw socket's filter cost grows with the connections), so
# this needs root to allow them for the run; the range is restored on exit.
# Then results/gen.py --write regenerates the README's table (results/floor/floor.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
L=target/release/loadgen
out=results/floor
range=/proc/sys/net/ipv4/ping_group_range
saved=$(cat $range)
trap 'echo "$saved" > $range' EXIT
echo "0 2147483647" > $range
rm -f $out/floor.csv
# Interleaved: each repeat runs the kernel's echo, then every model and transport.
for r in 1 2 3; do
  $L sweep --addr icmp://127.0.0.1 --conns 1,100 --duration 2s --warmup 500ms --csv $out/floor.csv
  $L sweep --targets all --transport tcp,unix,udp --conns 1,100 --duration 2s --warmup 500ms \
    --csv $out/floor.csv
done
