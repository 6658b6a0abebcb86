#!/usr/bin/env bash
# Every model over TCP and over UDP, side by side: 1/10/100 connections, 64 B, closed
# loop, depth 1, 3 interleaved repeats (every model and transport of one configuration back
# to back). Then one open-loop run per transport at a fixed rate for latency, and a
# closed-loop run at 2000 connections that overflows a default receive buffer.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
L=target/release/loadgen
out=results/udp
rm -f $out/tcp-vs-udp.csv $out/open-loop.csv
$L sweep --targets all --transport tcp,udp --conns 1,10,100 --repeat 3 --duration 3s --warmup 1s \
  --csv $out/tcp-vs-udp.csv
$L plot $out/tcp-vs-udp.csv --out $out/tcp-vs-udp.svg
# Open loop: the same rate over TCP and UDP, client and server pinned to a core each (on
# this VM latency at low load is bimodal with the two sharing a core), 3 interleaved repeats.
for r in 1 2 3; do
  for t in tcp udp; do
    $L --target mio --transport $t --conns 100 --rate 20000 --duration 5s --warmup 1s --quiet \
      --pin-server 1 --pin-client 0 --csv $out/open-loop.csv > $out/open-loop-$t-$r.txt
  done
done
$L --target mio --transport udp --conns 2000 --duration 3s --warmup 1s --quiet > $out/c2000-default-buffers.txt || true
$L --target mio --transport udp --conns 2000 --duration 3s --warmup 1s --quiet --sock-buf 4000000 \
  > $out/c2000-4MB-buffers.txt || true
results/pages.sh   # the study pages (loadgen report) from the data just made
