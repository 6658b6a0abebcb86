#!/usr/bin/env python3
"""The floor table of results/floor/README.md, from results/floor/floor.csv only.

The kernel's ICMP echo (target `external`, transport `icmp`) is the floor: no echo server on
the machine can answer sooner. For every model, transport and connection count it prints the
round trip (median over the repeats of each run's p50 and p99) and what the model and its
transport add to the floor at the same connection count, and the CPU each message cost the
machine: client plus server (for the kernel's echo the client alone: on loopback the kernel
answers in the sender's own system time and softirqs).

    python3 results/floor/floor.py          the table
    python3 results/floor/floor.py --line   one line: the floor at one connection, and the
                                            least any model adds to it over TCP
"""
import csv
import statistics
import sys
from collections import defaultdict

PATH = "results/floor/floor.csv"
ORDER = ["thread-per-conn", "threadpool", "mio", "tokio", "uring"]


def num(row, col):
    v = row.get(col, "")
    return float(v) if v not in ("", None) else None


def cells():
    """{(name, transport, conns): [(p50, p99, cpu per msg)]} over the ok rows."""
    out = defaultdict(list)
    with open(PATH, newline="") as f:
        for r in csv.DictReader(f):
            if r["status"] != "ok":
                continue
            name = "kernel (ICMP echo)" if r["transport"].startswith("icmp") else r["target"]
            cpu = num(r, "client_cpu_us_per_msg")
            server = num(r, "server_cpu_us_per_msg")
            if cpu is not None and server is not None:
                cpu += server
            elif not r["transport"].startswith("icmp"):
                cpu = None  # a model's server cost unknown: no total
            out[(name, r["transport"], int(r["conns"]))].append((num(r, "lat_p50_us"), num(r, "lat_p99_us"), cpu))
    return out


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summary(runs):
    return tuple(median([r[i] for r in runs]) for i in range(3)), len(runs)


def fmt(v, digits=1):
    return "" if v is None else f"{v:.{digits}f}"


def table(c):
    floors = {conns: summary(runs)[0] for (name, _, conns), runs in c.items() if name.startswith("kernel")}
    print("| conns | server | transport | p50 µs | p99 µs | p50 added to the floor, µs | p99 added, µs | CPU per message, µs | runs |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    key = lambda k: (k[2], 0 if k[0].startswith("kernel") else 1, k[1], ORDER.index(k[0]) if k[0] in ORDER else -1)
    for k in sorted(c, key=key):
        name, transport, conns = k
        (p50, p99, cpu), n = summary(c[k])
        floor = floors.get(conns)
        add50 = add99 = None
        if floor and not name.startswith("kernel") and p50 is not None:
            add50, add99 = p50 - floor[0], p99 - floor[1]
        print(f"| {conns} | {name} | {transport} | {fmt(p50)} | {fmt(p99)} | {fmt(add50)} | {fmt(add99)} | {fmt(cpu, 2)} | {n} |")


def line(c):
    floor = [summary(runs)[0] for (name, _, conns), runs in c.items() if name.startswith("kernel") and conns == 1]
    if not floor:
        print("No floor measured at one connection.")
        return
    p50, p99, _ = floor[0]
    tcp = [(summary(runs)[0][0] - p50, name) for (name, t, conns), runs in c.items() if t == "tcp" and conns == 1]
    least, who = min(tcp) if tcp else (None, None)
    added = f"; over TCP the least a model adds to its p50 is {least:.1f} µs ({who})" if least is not None else ""
    print(f"The floor on this machine, the kernel's own ICMP echo at one connection: p50 {p50:.1f} µs, p99 {p99:.1f} µs{added} "
          f"({disturbed()} runs of the sitting were disturbed: see floor/).")


def disturbed():
    """'N of M': runs beside which the hypervisor or other processes took over 10% of the
    machine's CPU (compare's rule)."""
    n = total = 0
    with open(PATH, newline="") as f:
        for r in csv.DictReader(f):
            total += 1
            cap = float(r["cpus"]) * float(r["duration_s"])
            taken = sum(num(r, c) or 0.0 for c in ("steal_cpu_s", "others_cpu_s"))
            n += cap > 0 and taken / cap > 0.10
    return f"{n} of {total}"


if __name__ == "__main__":
    c = cells()
    line(c) if "--line" in sys.argv[1:] else table(c)
