#!/usr/bin/env bash
# io_uring on both sides, measured in one sitting (results/uring/README.md has the findings).
#
# 1. Servers: uring against the C epoll reference server (scripts/ref/epoll_echo.c, one
#    thread) and against mio, all loaded by the same client (loadgen, one client thread,
#    epoll engine): 1/100/1000/10000 connections, 64 B and 4 KiB, closed loop, 3 interleaved
#    repeats (every server of a configuration back to back). Server CPU per message from
#    /proc/<pid> of each server.
# 2. Clients: loadgen --engine uring against --engine epoll and the minimal C epoll client
#    (scripts/c_client.c), all loading the C reference server at 100 and 1000 connections,
#    64 B, one client thread, 3 interleaved repeats; client CPU per message.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${SECS:-4}
repeat=${REPEAT:-3}
out=results/uring
cargo build --release -q -p loadgen
mkdir -p target/ref
gcc -O2 -pthread -o target/ref/epoll_echo scripts/ref/epoll_echo.c
gcc -O2 -o target/ref/c_client scripts/c_client.c
L=target/release/loadgen
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/ref/epoll_echo "$port" 1 >/dev/null 2>&1 &
ref=$!
trap 'kill $ref 2>/dev/null || true' EXIT
sleep 0.3
rm -f $out/servers.csv $out/clients.csv $out/clients-c.txt
common=(--threads 1 --duration "${secs}s" --warmup 1s --quiet)
for r in $(seq "$repeat"); do
  for size in 64 4096; do
    for conns in 1 100 1000 10000; do
      $L --addr "127.0.0.1:$port" --server-pid "$ref" --label c-epoll-ref --conns "$conns" --msg-size "$size" \
        "${common[@]}" --csv $out/servers.csv >/dev/null || true
      for model in mio uring; do
        $L --target $model --label $model --conns "$conns" --msg-size "$size" "${common[@]}" \
          --csv $out/servers.csv >/dev/null || true
      done
      echo "servers: repeat $r, $size B, $conns conns done" >&2
    done
  done
done
for r in $(seq "$repeat"); do
  for conns in 100 1000; do
    echo "repeat $r conns $conns $(target/ref/c_client "$port" "$conns" "$secs")" >> $out/clients-c.txt
    for engine in epoll uring; do
      $L --addr "127.0.0.1:$port" --server-pid "$ref" --label "engine-$engine" --engine $engine --conns "$conns" \
        "${common[@]}" --csv $out/clients.csv >/dev/null || true
    done
    echo "clients: repeat $r, $conns conns done" >&2
  done
done
python3 results/uring/summarize.py   # the tables of README.md (results/gen.py --write puts them there)
results/pages.sh   # the study pages (loadgen report) from the data just made
