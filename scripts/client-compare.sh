#!/usr/bin/env bash
# loadgen's client cost against a minimal C epoll client, both loading the C reference
# server (scripts/ref/epoll_echo.c) at 1, 100 and 1000 connections, 64 B, closed loop.
# Prints throughput and client CPU per message of each. Usage: scripts/client-compare.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
ref_src=${REF_SRC:-scripts/ref/epoll_echo.c}
cargo build --release -q -p loadgen
mkdir -p target/ref
gcc -O2 -pthread -o target/ref/epoll_echo "$ref_src"
gcc -O2 -o target/ref/c_client scripts/c_client.c
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/ref/epoll_echo "$port" 1 >/dev/null 2>&1 &
ref_pid=$!
trap 'kill $ref_pid 2>/dev/null || true' EXIT
sleep 0.3
for conns in 1 100 1000; do
  printf 'conns %-5s C client:  %s\n' "$conns" "$(target/ref/c_client "$port" "$conns" "$secs")"
  out=$(target/release/loadgen --addr "127.0.0.1:$port" --conns "$conns" --threads 1 --duration "${secs}s" --warmup 0s --quiet)
  printf 'conns %-5s loadgen:   %s msg/s, %s us/msg client cpu (1 thread)\n' "$conns" \
    "$(echo "$out" | awk '/throughput/ {print $2}')" "$(echo "$out" | sed -n 's/.*client .*(\([0-9.]*\) us per msg).*/\1/p')"
done
