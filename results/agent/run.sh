#!/usr/bin/env bash
# The server's cost read through `loadgen agent` against the same server read directly
# (--server-pid), in one sitting: two network namespaces stand in for hosts (the server's
# runs `loadgen serve --model mio` and the agent; the client's runs loadgen), runs
# interleaved, REPEATS of each. Needs root and iproute2. Writes results/agent/runs.csv.
#   results/agent/run.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/../.."
L=${LOADGEN:-target/release/loadgen}
REPEATS=${1:-5}
S=ebagS$$ C=ebagC$$
ip netns add $S
ip netns add $C
SP= AP=
cleanup() {
  [ -n "$SP" ] && kill "$SP" 2>/dev/null
  [ -n "$AP" ] && kill "$AP" 2>/dev/null
  ip netns delete $S 2>/dev/null || true
  ip netns delete $C 2>/dev/null || true
}
trap cleanup EXIT
ip link add ebag$$a netns $S type veth peer name ebag$$b netns $C
ip -n $S addr add 198.18.1.1/24 dev ebag$$a
ip -n $C addr add 198.18.1.2/24 dev ebag$$b
for ns in $S $C; do ip -n $ns link set lo up; done
ip -n $S link set ebag$$a up
ip -n $C link set ebag$$b up
ip netns exec $S "$L" serve --model mio --addr 198.18.1.1:7000 >/dev/null &
SP=$!
ip netns exec $S "$L" agent --allow-remote --listen 198.18.1.1:9464 >/dev/null &
AP=$!
sleep 1
# The server's pid (ip netns exec execs it, so $! is the server itself).
out=results/agent/runs.csv
rm -f "$out"
for i in $(seq "$REPEATS"); do
  ip netns exec $C "$L" --addr 198.18.1.1:7000 --agent 198.18.1.1:9464 -c 4 -d 5s -q \
    --csv "$out" --label agent >/dev/null
  ip netns exec $C "$L" --addr 198.18.1.1:7000 --server-pid "$SP" -c 4 -d 5s -q \
    --csv "$out" --label local >/dev/null
done
echo "wrote $out"
