#!/usr/bin/env bash
# Pacing precision (issue #14), measured in one sitting; findings in results/pacing/README.md.
#
# 1. --pacing sleep|hybrid|spin x 1k/10k/50k msg/s, mio, 100 conns, 64 B, 5 s after 1 s
#    warmup, REPEAT interleaved repeats (every mode and rate once per round).
# 2. The light load of the issue: 50 msg/s over 1000 connections, 5 s, LIGHT runs.
# 3. Where the machine is a VM with the haltpoll idle driver and its guest_halt_poll_ns can
#    be written (root): hybrid and sleep with the vCPU halting at once (0, this VM's
#    setting) against polling up to 200 µs first, interleaved; the setting is restored on
#    exit. Skipped (with a line) elsewhere.
#
# 0. The machine itself (probes/*.c): how often a spinning thread loses its CPU, and how
#    late a bare timerfd wakes a sleeping one (machine.txt).
#
# Output: machine.txt, pacing.csv, light-load.txt, haltpoll.csv, runs/*.json;
# `summarize.py` prints the tables of the README from them.
set -euo pipefail
cd "$(dirname "$0")/../.."
repeat=${REPEAT:-3}
light=${LIGHT:-5}
out=results/pacing
cargo build --release -q -p loadgen
L=target/release/loadgen
rm -rf $out/runs $out/pacing.csv $out/haltpoll.csv $out/light-load.txt $out/machine.txt $out/*.json
mkdir -p $out/runs target/pacing-probes
gcc -O2 -Wall -o target/pacing-probes/gaps $out/probes/gaps.c
gcc -O2 -Wall -o target/pacing-probes/timer_lateness $out/probes/timer_lateness.c
probe() {
  {
    echo "== CPU 0 and 1, each spun on alone:"
    taskset -c 0 target/pacing-probes/gaps
    taskset -c 1 target/pacing-probes/gaps
    target/pacing-probes/timer_lateness 100 20000
    target/pacing-probes/timer_lateness 1000 3000
  } >>$out/machine.txt
}
echo "# $(date -u +%FT%TZ), $(uname -r), idle driver $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown)" >$out/machine.txt
probe
common=(--target mio --conns 100 --duration 5s --warmup 1s --quiet)

for r in $(seq "$repeat"); do
  for rate in 1000 10000 50000; do
    for mode in sleep hybrid spin; do
      $L "${common[@]}" --rate $rate --pacing $mode --label "pacing=$mode" \
        --csv $out/pacing.csv --json $out/runs/$mode-$rate-$r.json >/dev/null || true
    done
  done
  echo "pacing: round $r done" >&2
done

for r in $(seq "$light"); do
  {
    echo "== run $r: loadgen --target mio --conns 1000 --rate 50 --duration 5s"
    $L --target mio --conns 1000 --rate 50 --duration 5s --json $out/runs/light-$r.json 2>&1 || true
  } >>$out/light-load.txt
done
echo "light load done" >&2

knob=/sys/module/haltpoll/parameters/guest_halt_poll_ns
driver=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || true)
if [[ $driver == haltpoll && -w $knob ]]; then
  before=$(cat $knob)
  trap 'echo "$before" > '"$knob" EXIT
  for r in $(seq "$repeat"); do
    for poll in 0 200000; do
      echo $poll >$knob
      if [[ $r == 1 ]]; then
        echo "== guest_halt_poll_ns = $poll" >>$out/machine.txt
        probe
      fi
      for run in "hybrid 1000" "hybrid 10000" "sleep 10000"; do
        set -- $run
        $L "${common[@]}" --rate "$2" --pacing "$1" --label "pacing=$1,halt_poll_ns=$poll" \
          --csv $out/haltpoll.csv --json $out/runs/haltpoll-$poll-$1-$2-$r.json >/dev/null || true
      done
    done
    echo "haltpoll: round $r done" >&2
  done
else
  echo "haltpoll comparison skipped: idle driver '${driver:-unknown}', $knob not writable" >&2
fi
python3 $out/summarize.py
results/pages.sh   # the study pages (loadgen report) from the data just made
