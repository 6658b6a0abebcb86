"""Ratios from results/uring/{servers,clients}.csv and clients-c.txt, as markdown tables:
means over the repeats, and the per-repeat range, of throughput and CPU per message."""
import csv
import re
import statistics
from collections import defaultdict
from pathlib import Path

here = Path(__file__).parent


def rows(name):
    with open(here / name) as f:
        return list(csv.DictReader(f))


def mean_range(xs):
    return statistics.mean(xs), min(xs), max(xs)


def fmt(m):
    return f"{m[0]:.2f} ({m[1]:.2f}-{m[2]:.2f})"


print("## Servers (client: loadgen, 1 thread, epoll)\n")
print("| msg | conns | server | msg/s | server us/msg | x C ref msg/s | x C ref CPU/msg | x mio msg/s | x mio CPU/msg |")
print("|---|---|---|---|---|---|---|---|---|")
runs = defaultdict(list)
for r in rows("servers.csv"):
    if r["status"] != "ok":
        continue
    runs[(int(r["msg_size"]), int(r["conns"]), r["label"])].append(
        (float(r["throughput_msgs_s"]), float(r["server_cpu_us_per_msg"] or "nan")))
for size in (64, 4096):
    for conns in (1, 100, 1000, 10000):
        base = runs.get((size, conns, "c-epoll-ref"))
        mio = runs.get((size, conns, "mio"))
        for label in ("c-epoll-ref", "mio", "uring"):
            got = runs.get((size, conns, label))
            if not got:
                continue
            tput = statistics.mean(t for t, _ in got)
            cpu = statistics.mean(c for _, c in got)
            def ratio(other, k):
                if not other or len(other) != len(got):
                    return "-"
                return fmt(mean_range([a[k] / b[k] for a, b in zip(got, other)]))
            print(f"| {size} | {conns} | {label} | {tput:,.0f} | {cpu:.2f} | {ratio(base, 0)} | {ratio(base, 1)} | {ratio(mio, 0)} | {ratio(mio, 1)} |")

print("\n## Clients (server: the C reference; 1 client thread)\n")
print("| conns | client | msg/s | client us/msg | x epoll msg/s | x epoll CPU/msg | x C client CPU/msg |")
print("|---|---|---|---|---|---|---|")
cl = defaultdict(list)
for r in rows("clients.csv"):
    cl[(int(r["conns"]), r["label"])].append((float(r["throughput_msgs_s"]), float(r["client_cpu_us_per_msg"])))
for line in (here / "clients-c.txt").read_text().splitlines():
    m = re.match(r"repeat \d+ conns (\d+) ([\d.]+) msg/s, ([\d.]+) us/msg", line)
    if m:
        cl[(int(m.group(1)), "c-client")].append((float(m.group(2)), float(m.group(3))))
for conns in (100, 1000):
    epoll = cl.get((conns, "engine-epoll"))
    cc = cl.get((conns, "c-client"))
    for label in ("c-client", "engine-epoll", "engine-uring"):
        got = cl.get((conns, label))
        if not got:
            continue
        def ratio(other, k):
            if not other or len(other) != len(got):
                return "-"
            return fmt(mean_range([a[k] / b[k] for a, b in zip(got, other)]))
        print(f"| {conns} | {label} | {statistics.mean(t for t, _ in got):,.0f} | {statistics.mean(c for _, c in got):.2f} | {ratio(epoll, 0)} | {ratio(epoll, 1)} | {ratio(cc, 1)} |")
