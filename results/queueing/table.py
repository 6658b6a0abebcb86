#!/usr/bin/env python3
"""The queueing table of results/queueing/README.md, from results/queueing/runs.csv only.

One server thread, Poisson arrivals at rate lambda, a blocking service of mean M = 1 ms per
message: exponential (M/M/1) or fixed (M/D/1). For each utilisation rho = lambda * M it
prints the measured time in the server (the run's latency minus the same rate's no-work
baseline) against theory:

- nominal: the service exactly as asked. M/M/1: mean M / (1 - rho), p99 ln(100) M / (1 - rho).
  M/D/1: mean M + rho M / (2 (1 - rho)) (Pollaczek-Khinchine); its p99 has no closed form.
- with this machine's sleep: a sleep lasts longer than asked by a fixed delta, measured in
  the same sitting by the closed-loop calibration runs (one connection: block:1ms minus no
  work, minus 1 ms). The service is then M + delta (M/D/1) or Exp(M) + delta (M/G/1), the
  mean from Pollaczek-Khinchine: W = lambda E[S^2] / (2 (1 - rho')), rho' = lambda E[S].

Every p99 of a model comes from a Lindley-recursion simulation of 400,000 arrivals of that
model (seeded, so this script prints the same table every time); the nominal M/M/1 p99 is
also the closed form. Measured values are the mean +- standard deviation over the repeats.
"""
import csv
import math
import random
import statistics
import sys

PATH = "results/queueing/runs.csv"
M_US = 1000.0
KINDS = [("block:exp:1ms", "M/M/1"), ("block:1ms", "M/D/1")]


def lindley(rate_per_us, service, n=400_000, seed=1):
    """Mean and p99 of the time in system of a FIFO single-server queue with Poisson
    arrivals at `rate_per_us` and service times drawn by `service(rng)`, in µs."""
    rng = random.Random(seed)
    w, times = 0.0, []
    for _ in range(n):
        s = service(rng)
        times.append(w + s)
        w = max(0.0, w + s - rng.expovariate(rate_per_us))
    times = times[n // 10 :]  # without the empty-queue start
    times.sort()
    return statistics.fmean(times), times[int(0.99 * len(times))]


def theory(kind, rho, delta):
    """(mean, p99) in µs of the time in the server for `kind` at nominal utilisation `rho`,
    with each service `delta` µs longer than asked."""
    lam = rho / M_US
    if kind == "M/M/1":
        es, es2 = M_US + delta, 2 * M_US**2 + 2 * M_US * delta + delta**2
        service = lambda r: r.expovariate(1 / M_US) + delta  # noqa: E731
    else:
        es, es2 = M_US + delta, (M_US + delta) ** 2
        service = lambda r: M_US + delta  # noqa: E731
    rho_eff = lam * es
    mean = es + lam * es2 / (2 * (1 - rho_eff))
    _, p99 = lindley(lam, service)
    return mean, p99


def mean_sd(xs):
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main():
    rows = list(csv.DictReader(open(PATH)))
    for r in rows:
        if r["status"] != "ok":
            sys.exit(f"{PATH}: a run ended {r['status']}: not a basis for the table")
    calib = {w: [float(r["lat_mean_us"]) for r in rows if r["label"] == "calibration" and r["work"] == w]
             for w in ("", "block:1ms")}
    delta = statistics.fmean(calib["block:1ms"]) - statistics.fmean(calib[""]) - M_US
    n_rep = len(calib[""])
    queue = [r for r in rows if r["label"] == "queue"]
    rates = sorted({float(r["rate"]) for r in queue})
    base = {rate: [float(r["lat_mean_us"]) for r in queue if float(r["rate"]) == rate and r["work"] == ""]
            for rate in rates}
    secs = statistics.fmean(float(r["duration_s"]) for r in queue)
    checks = [r for r in queue if r["work"]]
    print(f"Calibration ({n_rep} repeats, closed loop, one connection): a round trip without work "
          f"{statistics.fmean(calib['']):.1f} us; with `block:1ms` {statistics.fmean(calib['block:1ms']):.1f} us, "
          f"so a 1 ms sleep lasts {delta:.0f} us longer than asked on this machine (delta).")
    print()
    print("| rho | queue | mean: measured | theory | with delta | error | p99: measured | theory | with delta | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rate in rates:
        rho = rate * M_US / 1e6
        b = statistics.fmean(base[rate])
        for work, kind in KINDS:
            runs = [r for r in checks if float(r["rate"]) == rate and r["work"] == work]
            if not runs:
                continue
            mean_m, mean_sd_ = mean_sd([float(r["lat_mean_us"]) - b for r in runs])
            p99_m, p99_sd = mean_sd([float(r["lat_p99_us"]) - b for r in runs])
            nom_mean, nom_p99 = theory(kind, rho, 0.0)
            if kind == "M/M/1":
                nom_p99 = math.log(100) * M_US / (1 - rho)
            d_mean, d_p99 = theory(kind, rho, delta)
            print(f"| {rho:.1f} | {kind} | {mean_m / 1000:.2f} ± {mean_sd_ / 1000:.2f} ms | {nom_mean / 1000:.2f} ms "
                  f"| {d_mean / 1000:.2f} ms | {100 * (mean_m - d_mean) / d_mean:+.0f}% "
                  f"| {p99_m / 1000:.2f} ± {p99_sd / 1000:.2f} ms | {nom_p99 / 1000:.2f} ms | {d_p99 / 1000:.2f} ms "
                  f"| {100 * (p99_m - d_p99) / d_p99:+.0f}% |")
    print()
    print(f"Measured: the run's latency (from the intended send time) minus the mean latency of the same rate "
          f"without work ({', '.join(f'{statistics.fmean(base[r]):.0f} us at {r:.0f}/s' for r in rates)}), "
          f"mean ± sd over {n_rep} repeats of {secs:.0f} s, each with its own seed. Error: measured against "
          f"theory with delta. Data: `{PATH}`.")


if __name__ == "__main__":
    main()
