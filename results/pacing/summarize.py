#!/usr/bin/env python3
"""Tables of results/pacing/README.md from the runs of run.sh (runs/*.json): the median and
range over the repeats of each configuration."""
import glob
import json
import os
import re
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))


def load(*patterns):
    """(label, rate) -> list of reports, from the files matching any of `patterns`."""
    groups = {}
    paths = sorted(p for pat in patterns for p in glob.glob(os.path.join(HERE, "runs", pat)))
    for path in paths:
        with open(path) as f:
            rep = json.load(f)
        groups.setdefault((rep.get("label") or "", rep["rate"]), []).append(rep)
    return groups


def cell(values, fmt="{:.1f}"):
    """Median, with the range when there are several values."""
    if not values:
        return "-"
    med = fmt.format(statistics.median(values))
    if len(values) == 1:
        return med
    return f"{med} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(groups, title):
    print(f"### {title}\n")
    print("| label | rate (msg/s) | runs | client lag p50 (µs) | client lag p99 (µs) | corrected p50 - raw p50 (µs) | raw p50 (µs) | client CPU (cores) | pacing warnings |")
    print("|---|---|---|---|---|---|---|---|---|")
    order = {"sleep": 0, "hybrid": 1, "spin": 2}
    def key(k):
        mode = re.search(r"pacing=(\w+)", k[0])
        return (k[1], k[0].split(",")[1:] if "," in k[0] else [], order.get(mode.group(1) if mode else "", 9), k[0])
    for (label, rate) in sorted(groups, key=key):
        reps = groups[(label, rate)]
        lag50 = [r["client_lag"]["p50_us"] for r in reps]
        lag99 = [r["client_lag"]["p99_us"] for r in reps]
        gap = [r["latency"]["p50_us"] - r["raw"]["p50_us"] for r in reps]
        raw = [r["raw"]["p50_us"] for r in reps]
        cpu = [r["client_cpu_s"] / r["duration_s"] for r in reps]
        warned = sum(any("client's pacing" in w for w in r["warnings"]) for r in reps)
        print(f"| {label} | {rate:,.0f} | {len(reps)} | {cell(lag50)} | {cell(lag99)} | {cell(gap)} | {cell(raw)} | {cell(cpu, '{:.2f}')} | {warned} of {len(reps)} |")
    print()


def light():
    runs = load("light-*.json")
    reps = [r for v in runs.values() for r in v]
    if not reps:
        return
    print("### Light load: 50 msg/s over 1000 connections, 5 s\n")
    print("| run | client lag p50 / p99 / max (µs) | corrected p99 (µs) | warnings | starved |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(reps, 1):
        lag = r["client_lag"]
        warns = "; ".join(w.split(":")[0] for w in r["warnings"]) or "none"
        print(f"| {i} | {lag['p50_us']:.1f} / {lag['p99_us']:.1f} / {lag['max_us']:.1f} | {r['latency']['p99_us']:.1f} | {warns} | {len(r['starved_conns'])} |")
    print()


if __name__ == "__main__":
    table(load("sleep-*.json", "hybrid-*.json", "spin-*.json"), "Pacing modes (mio, 100 connections, 64 B)")
    light()
    halt = load("haltpoll-*.json")
    if halt:
        table(halt, "The VM's idle policy: guest_halt_poll_ns 0 (halt at once) against 200000")
