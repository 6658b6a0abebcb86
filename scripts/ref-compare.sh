#!/usr/bin/env bash
# Measures every model against the C reference server (scripts/ref/epoll_echo.c) under
# the same client (loadgen) and connection counts; appends to a CSV (default
# results/ref-compare.csv). Usage: scripts/ref-compare.sh [CSV] [DURATION] [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/.."
csv=${1:-results/ref-compare.csv}
duration=${2:-5s}
repeat=${3:-1}
ref_src=${REF_SRC:-scripts/ref/epoll_echo.c}
cargo build --release -q -p loadgen
mkdir -p target/ref
gcc -O2 -pthread -o target/ref/epoll_echo "$ref_src"
lg=target/release/loadgen
# A free port for the reference server: bind port 0 and read it back.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/ref/epoll_echo "$port" 1 >/dev/null 2>&1 &
ref_pid=$!
trap 'kill $ref_pid 2>/dev/null || true' EXIT
sleep 0.3
for r in $(seq "$repeat"); do
  for conns in 1 100 1000; do
    $lg --addr "127.0.0.1:$port" --server-pid "$ref_pid" --conns "$conns" --duration "$duration" \
        --label c-epoll-ref --csv "$csv" --quiet | sed -n '1,2p;/server/p;/client/p'
    for model in mio tokio threadpool thread-per-conn; do
      $lg --target "$model" --server-threads "$([ "$model" = threadpool ] && echo 1000 || echo 1)" \
          --conns "$conns" --duration "$duration" --csv "$csv" --quiet | sed -n '1,2p;/server/p;/client/p'
    done
  done
done
