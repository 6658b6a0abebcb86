#!/usr/bin/env bash
# The HTML page of every study (loadgen report) and results/index.html linking them, from
# the committed data; no load is run. Each study's script calls this at its end too.
set -euo pipefail
cd "$(dirname "$0")/.."
L=${LOADGEN:-target/release/loadgen}
[ -x "$L" ] || cargo build --release -q -p loadgen
page() { # DIR TITLE ARGS...
  local dir=$1 title=$2; shift 2
  "$L" report "$@" --title "$title" --html "$dir/report.html" > /dev/null
}
page results "The original four models over TCP" results/sweep.csv --hlog results/open-loop-mio-50k.hlog
page results/udp "UDP and TCP side by side" results/udp/tcp-vs-udp.csv --by transport
page results/uring "io_uring on both sides: servers" results/uring/servers.csv
page results/scaling "Scaling with server workers" results/scaling/scaling.csv --by server_workers
page results/scale "Scale: connection capacity" results/scale/capacity.csv
page results/churn "Connection churn" results/churn/sweep.csv
page results/pacing "Pacing precision" results/pacing/pacing.csv --by label
[ -f results/work/work.csv ] && page results/work "Which model to build on: server work and load" results/work/work.csv results/work/curve.csv --by target
{
  echo '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>echo-bench results</title>'
  echo '<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:800px}li{margin:0.4em 0}</style></head><body>'
  echo '<h1>echo-bench results</h1><p>One page per study, made by <code>loadgen report</code> from the committed data (<code>results/pages.sh</code>). Each folder'"'"'s README says what the study asks and how to remake it.</p><ul>'
  echo '<li><a href="report.html">The original four models over TCP</a> (and an open-loop interval log)</li>'
  echo '<li><a href="udp/report.html">UDP and TCP side by side</a></li>'
  echo '<li><a href="uring/report.html">io_uring on both sides</a></li>'
  echo '<li><a href="scaling/report.html">Scaling with server workers</a></li>'
  echo '<li><a href="scale/report.html">Connection capacity</a></li>'
  echo '<li><a href="churn/report.html">Connection churn</a></li>'
  echo '<li><a href="pacing/report.html">Pacing precision</a></li>'
  echo '<li><a href="work/report.html">Which model to build on: server work, scale and the load curve</a></li>'
  echo '</ul></body></html>'
} > results/index.html
