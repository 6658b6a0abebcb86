#!/usr/bin/env python3
"""Cross-run containment of p99's confidence interval (results/intervals/runs.csv), per
way of running (the `label`: duration/interval): over the ordered pairs of distinct runs
(i, j), how often run j's p99 lies inside run i's [p99_ci_lo, p99_ci_hi]. Runs that did not
end `ok` are left out and counted. Reads committed data only; prints a Markdown table."""
import csv, os, statistics
from collections import OrderedDict

rows = list(csv.DictReader(open(os.path.join(os.path.dirname(__file__), 'runs.csv'))))
ways = OrderedDict()
for r in rows:
    ways.setdefault(r['label'], []).append(r)
print('| duration/interval | runs ok | p99 range over the runs (us) | p99 CV | median half-width of a run\'s interval | another run\'s p99 inside a run\'s interval |')
print('|---|---|---|---|---|---|')
for way, rs in ways.items():
    ok = [r for r in rs if r['status'] == 'ok' and r['p99_ci_lo_us'] and r['p99_ci_hi_us']]
    p99 = [float(r['lat_p99_us']) for r in ok]
    ci = [(float(r['p99_ci_lo_us']), float(r['p99_ci_hi_us'])) for r in ok]
    pairs = [(i, j) for i in range(len(ok)) for j in range(len(ok)) if i != j]
    inside = sum(1 for i, j in pairs if ci[i][0] <= p99[j] <= ci[i][1])
    half = [(hi - lo) / 2 / p for (lo, hi), p in zip(ci, p99)]
    cv = statistics.stdev(p99) / statistics.mean(p99) * 100 if len(p99) > 1 else float('nan')
    share = f'{inside} of {len(pairs)} ({inside / len(pairs) * 100:.0f}%)' if pairs else 'no pairs'
    print(f'| {way} | {len(ok)} of {len(rs)} | {min(p99):.0f} to {max(p99):.0f} | {cv:.1f}% | '
          f'{statistics.median(half) * 100:.1f}% | {share} |')
