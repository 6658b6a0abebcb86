#!/usr/bin/env bash
# A Slurm cluster of NODES nodes on this one host, for trying deploy/slurm/ and for its CI
# test: munged, slurmctld and NODES `slurmd -N nI` daemons, every file (configuration, munge
# key and socket, state, logs, pid files) in DIR, every port picked free on loopback.
#
#   deploy/slurm/local-cluster.sh start DIR [NODES]   # prints `export SLURM_CONF=DIR/slurm.conf`
#   deploy/slurm/local-cluster.sh stop DIR            # stops what start started, by pid
#
# Needs root and the Debian packages slurm-wlm and munge (slurmd built with multiple-slurmd
# support, as Debian's is). A real cluster has its own configuration: nothing here is
# needed there.
set -euo pipefail

cmd=${1:?usage: local-cluster.sh start|stop DIR [NODES]}
dir=${2:?usage: local-cluster.sh start|stop DIR [NODES]}
nodes=${3:-3}

free_port() { # a port the kernel just gave out and took back (loopback only)
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
    # Daemons we started, by the pids they wrote; never by name.
    for pidfile in "$dir"/slurmd-*.pid "$dir"/slurmctld.pid "$dir"/munged.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

case "$cmd" in
stop)
    stop
    exit 0
    ;;
start) ;;
*)
    echo "usage: local-cluster.sh start|stop DIR [NODES]" >&2
    exit 2
    ;;
esac

for tool in munged slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || { echo "local-cluster: $tool is missing: apt-get install slurm-wlm munge" >&2; exit 3; }
done
[ "$(id -u)" = 0 ] || { echo "local-cluster: needs root (slurmd runs jobs as their user)" >&2; exit 3; }

mkdir -p "$dir/state"
chmod 700 "$dir"
host=$(hostname -s)
cpus=$(nproc)

# munge: its own key, socket and files (the host's munged, if any, is left alone).
dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge.key"
munged --force --key-file="$dir/munge.key" --socket="$dir/munge.sock" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed"

ctld_port=$(free_port)
{
    echo "ClusterName=echobench"
    echo "SlurmctldHost=$host(127.0.0.1)"
    echo "SlurmctldPort=$ctld_port"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$dir/munge.sock"
    echo "CredType=cred/munge"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "StateSaveLocation=$dir/state"
    echo "SlurmdSpoolDir=$dir/spool-%n"
    echo "SlurmctldPidFile=$dir/slurmctld.pid"
    echo "SlurmdPidFile=$dir/slurmd-%n.pid"
    echo "SlurmctldLogFile=$dir/slurmctld.log"
    echo "SlurmdLogFile=$dir/slurmd-%n.log"
    # Processes tracked through /proc; no cgroup or affinity plugin (a VM or container may
    # not offer them).
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "MpiDefault=none"
    echo "SchedulerType=sched/backfill"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_CPU"
    echo "ReturnToService=2"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobCompType=jobcomp/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    # Finished jobs stay visible to scontrol for 10 minutes (no accounting database here).
    echo "MinJobAge=600"
    echo "SlurmdTimeout=60"
    for i in $(seq 1 "$nodes"); do
        echo "NodeName=n$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$(free_port) CPUs=$cpus State=UNKNOWN"
    done
    echo "PartitionName=echo Nodes=n[1-$nodes] Default=YES MaxTime=60 State=UP OverSubscribe=NO"
} > "$dir/slurm.conf"
export SLURM_CONF="$dir/slurm.conf"

slurmctld -f "$SLURM_CONF"
for i in $(seq 1 "$nodes"); do
    mkdir -p "$dir/spool-n$i"
    slurmd -f "$SLURM_CONF" -N "n$i"
done

# Up when every node is idle (bounded: 60 s).
for _ in $(seq 120); do
    idle=$(sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | grep -c . || true)
    [ "$idle" -ge "$nodes" ] && break
    sleep 0.5
done
if [ "${idle:-0}" -lt "$nodes" ]; then
    echo "local-cluster: only ${idle:-0} of $nodes nodes came up; sinfo and the logs:" >&2
    sinfo -N >&2 || true
    tail -n 20 "$dir"/*.log >&2 || true
    stop
    exit 1
fi
echo "export SLURM_CONF=$SLURM_CONF"
