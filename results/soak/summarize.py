#!/usr/bin/env python3
"""The memory table of results/soak/README.md from rss.log: VmHWM and VmRSS of the loadgen
process (KiB), read from /proc every minute (columns: unix time, VmHWM, VmRSS)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
rows = []
with open(os.path.join(HERE, "rss.log")) as f:
    for line in f:
        parts = line.split()
        if len(parts) >= 3:
            rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
t0 = rows[0][0]
print("| minute | VmHWM (peak RSS) KiB | VmRSS KiB |")
print("|---|---|---|")
for t, hwm, rss in rows:
    minute = (t - t0) // 60
    if minute % 5 == 0:
        print(f"| {minute} | {hwm} | {rss} |")
after_first = [hwm for t, hwm, _ in rows if t - t0 >= 60]
print()
print(
    f"Peak RSS {rows[-1][1]} KiB at the end; {after_first[0]} KiB after the first minute "
    f"({(rows[-1][1] - after_first[0]) / after_first[0] * 100:+.1f}% over the rest of the hour); "
    f"{len(rows)} readings."
)
