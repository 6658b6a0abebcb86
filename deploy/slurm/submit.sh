#!/usr/bin/env bash
# Submits one load run to Slurm: the shards as a job array (one task per shard, a node
# each, no requeue), the merge as a job that depends on the array, and optionally the
# server with its agent on a node of its own. Everything lands in RESULTS/<array job id>/.
#
#   deploy/slurm/submit.sh --addr HOST:PORT --conns 150000 --shards 3 [options]
#   deploy/slurm/submit.sh --server 'echo-server --model mio --addr 0.0.0.0:7000' --conns 150000 --shards 3
#
# Options:
#   --addr HOST:PORT      the server to load (or --server: start one under Slurm)
#   --server CMD          submit server.sbatch: CMD (which prints `listening ADDR`) and
#                         `loadgen agent` beside it; `--server default` runs
#                         `loadgen serve --model mio --addr 0.0.0.0:7000`
#   --agent-args ARGS     with --server: the agent's flags (default `--listen 0.0.0.0:9464
#                         --allow-remote`; add `--token FILE` on a shared network)
#   --agent HOST:PORT     with --addr: the server host's agent (`--agent-token FILE` too)
#   --conns N --shards K  connections of the whole run, split over K array tasks
#   --duration D --warmup W   the window (default 60s) and warm-up (default 5s)
#   --lead S              seconds from submission to the common start (default 60): long
#                         enough for the scheduler to start every shard and for each to
#                         connect; a shard that starts later refuses (exit 2) and the merge
#                         reports the run partial, naming it
#   --results DIR         shared results directory (default ./echo-bench-results)
#   --loadgen PATH        the loadgen binary every node runs (default: the one on PATH)
#   --sbatch-args ARGS    more sbatch options for every job, e.g. '--partition=net --time=30'
#   --wait                wait for the merge, print its output, exit with its code
#   -- FLAGS...           more loadgen flags for every shard (e.g. --rate 50k --msg-size 256)
set -euo pipefail

addr= server= agent_args= agent= token= conns= shards= duration=60s warmup=5s lead=60
results=./echo-bench-results loadgen=$(command -v loadgen || true) sbatch_args= wait=0
extra=()
die() { echo "submit: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --addr) addr=$2; shift 2 ;;
    --server) server=$2; shift 2 ;;
    --agent-args) agent_args=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --agent-token) token=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --lead) lead=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --loadgen) loadgen=$2; shift 2 ;;
    --sbatch-args) sbatch_args=$2; shift 2 ;;
    --wait) wait=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown option $1 (see the comment at the top of $0)" ;;
    esac
done
[ -n "$conns" ] || die "--conns N is required"
[[ "$shards" =~ ^[1-9][0-9]*$ ]] || die "--shards K is required (a count from 1)"
[[ "$lead" =~ ^[0-9]+$ ]] || die "--lead takes whole seconds"
if [ -n "$addr" ] && [ -n "$server" ]; then die "give --addr or --server, not both"; fi
if [ -z "$addr" ] && [ -z "$server" ]; then die "give --addr HOST:PORT or --server CMD"; fi
[ -x "$loadgen" ] || die "no loadgen binary: give --loadgen PATH (every node must reach it)"
loadgen=$(realpath "$loadgen")
mkdir -p "$results"
results=$(realpath "$results")
here=$(cd "$(dirname "$0")" && pwd)
export LOADGEN=$loadgen RESULTS=$results CONNS=$conns DURATION=$duration WARMUP=$warmup
[ -n "$token" ] && export AGENT_TOKEN=$(realpath "$token")

# The array is held until its run directory holds the target and the start time.
# shellcheck disable=SC2086
array=$(sbatch --parsable --hold --array=0-$((shards - 1)) $sbatch_args \
    --output="$results/%A/shard-%a.out" "$here/load.sbatch")
array=${array%%;*}
dir=$results/$array
mkdir -p "$dir"
printf '%s\n' "${extra[@]}" | grep . > "$dir/args" || true

server_job=
if [ -n "$server" ]; then
    [ "$server" = default ] && server=
    # shellcheck disable=SC2086
    server_job=$(sbatch --parsable $sbatch_args --output="$dir/server-job.out" \
        --export=ALL,RUN_DIR="$dir",SERVER="$server",AGENT_ARGS="$agent_args" "$here/server.sbatch")
    server_job=${server_job%%;*}
    for _ in $(seq 1200); do # up to 120 s for the scheduler and the server to start
        [ -s "$dir/target" ] && [ -s "$dir/agent" ] && break
        if ! squeue -h -j "$server_job" 2>/dev/null | grep -q .; then break; fi
        sleep 0.1
    done
    if ! [ -s "$dir/target" ]; then
        scancel "$array" "$server_job" 2>/dev/null || true
        echo "submit: the server job $server_job did not come up; its output:" >&2
        cat "$dir/server-job.out" "$dir/server.out" "$dir/agent.out" >&2 2>/dev/null || true
        exit 1
    fi
else
    echo "$addr" > "$dir/target"
    [ -n "$agent" ] && echo "$agent" > "$dir/agent"
fi
echo $(( $(date +%s) + lead )) > "$dir/start-at"

# shellcheck disable=SC2086
merge=$(sbatch --parsable $sbatch_args --dependency=afterany:"$array" --output="$dir/merge.out" \
    --export=ALL,RUN_DIR="$dir",SHARDS="$shards",ARRAY_JOB="$array",SERVER_JOB="$server_job" \
    "$here/merge.sbatch")
merge=${merge%%;*}
scontrol release "$array"

echo "load array $array ($shards shards), merge job $merge${server_job:+, server job $server_job}"
echo "target $(cat "$dir/target")${server_job:+, agent $(cat "$dir/agent")}; start at $(cat "$dir/start-at") (in $lead s)"
echo "results in $dir (run.csv and run.json once the merge has run)"
[ "$wait" = 1 ] || exit 0

# --wait: bounded by the lead, the window and 5 minutes for queueing and the merge.
secs=$(( lead + 300 + $(python3 -c "import re,sys; m=re.fullmatch(r'(\d+)(ms|s|m|h)?', sys.argv[1]); n=int(m.group(1)) if m else 0; print({'ms': n // 1000, 'm': n * 60, 'h': n * 3600}.get(m.group(2) if m else 's', n))" "$duration") ))
deadline=$(( $(date +%s) + secs ))
while squeue -h -j "$merge" 2>/dev/null | grep -q .; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "submit: the merge job $merge has not ended after $secs s; the queue and the jobs:" >&2
        squeue >&2 || true
        scontrol show job "$array" "$merge" >&2 || true
        exit 1
    fi
    sleep 0.5
done
cat "$dir/merge.out"
code=$(scontrol show job "$merge" 2>/dev/null | sed -n 's/.* ExitCode=\([0-9]*\):.*/\1/p' | head -n 1)
exit "${code:-1}"
