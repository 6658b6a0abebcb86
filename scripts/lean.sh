#!/usr/bin/env bash
# The lean loadgen (`--no-default-features`: no agent, no HTML or plots, no sock_diag) builds,
# runs, writes CSV and JSON, and compares; each left-out part exits 2 naming its feature.
# CI runs this. Usage: scripts/lean.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p loadgen --no-default-features
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Copied out: the next default build relinks target/debug/loadgen with every feature.
cp target/debug/loadgen "$dir/loadgen"
lean="$dir/loadgen"

"$lean" --target mio --conns 100 -d 2s --csv "$dir/x.csv" --json "$dir/x.json" --quiet
test "$(wc -l < "$dir/x.csv")" -eq 2 || { echo "lean: expected a header and one CSV row"; exit 1; }
grep -q '"throughput_msgs_s"' "$dir/x.json" || { echo "lean: the JSON has no throughput"; exit 1; }
"$lean" compare "$dir/x.csv" "$dir/x.csv" > "$dir/compare.txt"
grep -q 'throughput' "$dir/compare.txt" || { echo "lean: compare printed no throughput row"; cat "$dir/compare.txt"; exit 1; }

refused() { # $1: the feature the message must name; the rest: the command
    local feature=$1; shift
    set +e
    "$lean" "$@" > "$dir/out.txt" 2>&1
    local code=$?
    set -e
    if [ "$code" -ne 2 ] || ! grep -q "'$feature' feature" "$dir/out.txt"; then
        echo "lean: 'loadgen $*' should exit 2 naming the '$feature' feature; got $code:"
        cat "$dir/out.txt"
        exit 1
    fi
}
refused agent agent
refused agent --addr 127.0.0.1:9 --agent 127.0.0.1:9464 -d 1s
refused html report --html "$dir/x.html" "$dir/x.csv"
refused html plot "$dir/x.csv" --out "$dir/x.svg"
echo "lean: runs, writes CSV and JSON, compares; agent, --agent, report and plot exit 2 naming their feature"
