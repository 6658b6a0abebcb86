//! The human summary printed at the end of a run.

use std::fmt::Write;

use crate::measure::record::{Ci, Percentiles};
use crate::report::units::{per_s, us};
use crate::report::Report;

mod costs;
mod stages;
use costs::{client, machine, server};
use stages::stages;

fn percentiles(out: &mut String, name: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "  {name:<10} p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  (mean {}, stdev {})",
        us(p.p50_us),
        us(p.p90_us),
        us(p.p99_us),
        us(p.p999_us),
        us(p.p9999_us),
        us(p.max_us),
        us(p.mean_us),
        us(p.stdev_us)
    );
}

/// The 95% intervals of p50 and p99, and the percentiles too few samples could not estimate.
fn intervals(out: &mut String, p: &Percentiles) {
    if p.count == 0 {
        return;
    }
    let one = |name: &str, c: Ci| match c {
        Ci::Interval { lo_us, hi_us } => format!("{name} [{}, {}]", us(lo_us), us(hi_us)),
        Ci::NotEstimable => format!("{name} not estimable"),
    };
    let _ = write!(out, "  95% CI     {}  {}", one("p50", p.ci.p50), one("p99", p.ci.p99));
    let missing = p.ci.not_estimable();
    if !missing.is_empty() {
        let _ = write!(
            out,
            "; not estimable from {} samples: {} (a percentile q needs 10/(1-q))",
            p.count,
            missing.join(", ")
        );
    }
    // What the interval covers: this run's sampling, not the next run's.
    let _ = match p.ci.batches {
        // results/intervals/: under ten intervals, far narrower than the spread between runs.
        0 => write!(
            out,
            " (order statistics: assumes independent samples, so narrower than the spread between runs; ten or more --intervals give batch means)"
        ),
        b => write!(out, " (batch means over {b} intervals)"),
    };
    let _ = writeln!(out);
}

/// The summary as text: its sections in order.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    for section in SECTIONS {
        section(&mut o, r);
    }
    o
}

/// The summary's sections, in the order they print.
const SECTIONS: [fn(&mut String, &Report); 14] = [
    headline, throughput, latency, stages, schedule, connect, warnings, errors, fairness, server, client, machine,
    setup, status,
];

/// What ran: target, address, transport, load, window.
fn headline(o: &mut String, r: &Report) {
    let mode = match (r.rate, r.conn_rate, r.reconnect_every) {
        _ if r.settings.stages.is_some() => {
            let spec = r.settings.stages.as_ref().map_or("", |(spec, _)| spec.as_str());
            match r.rate {
                Some(rate) => format!("open loop in stages {spec} (mean {} msg/s)", per_s(rate)),
                None => format!("closed loop in stages of connections {spec}"),
            }
        }
        (Some(rate), _, _) => format!("open loop at {} msg/s", per_s(rate)),
        (None, Some((rate, n)), _) => {
            format!(
                "open loop of {rate:.0} new connections/s, {n} round trips each (at most {} at once)",
                r.conns
            )
        }
        (None, None, Some(n)) => format!("closed loop, a new connection every {n} round trips"),
        (None, None, None) => "closed loop".into(),
    };
    let _ = writeln!(
        o,
        "{} at {} ({}{}): {} conns, {} B messages, depth {}, {}, {:.2} s measured after {:.2} s warmup{}",
        r.target,
        r.addr,
        r.transport.map_or("?", servers::Transport::name),
        if r.engine == "uring" {
            ", client on io_uring"
        } else {
            ""
        },
        r.conns,
        r.msg_size,
        r.depth,
        mode,
        r.duration_s,
        r.warmup_s,
        r.warmup_rule.as_deref().map(|w| format!(" ({w})")).unwrap_or_default()
    );
}

/// Round trips and bytes per second.
fn throughput(o: &mut String, r: &Report) {
    if r.counters.msgs == 0 {
        let _ = writeln!(o, "  throughput not measured: no round trip completed (latency too)");
        return;
    }
    let _ = writeln!(
        o,
        "  throughput {} msg/s, {:.2} MiB/s each way ({} round trips)",
        per_s(r.throughput_msgs_s),
        r.throughput_mib_s,
        r.counters.msgs
    );
}

/// Latency percentiles, their intervals, steadiness, and the raw view in open loop.
fn latency(o: &mut String, r: &Report) {
    if r.counters.msgs == 0 {
        return; // said on the throughput line
    }
    let label = if r.raw.is_some() { "latency*" } else { "latency" };
    percentiles(o, label, &r.latency);
    intervals(o, &r.latency);
    if r.raw.is_none() && r.rate.is_none() && r.conn_rate.is_none() && r.counters.msgs > 0 {
        let _ = writeln!(
            o,
            "  (closed loop: latency is what each connection waited for its reply; there is no schedule, so nothing to correct for coordinated omission)"
        );
    }
    // A run behind its rate is not judged steady: its status line says why.
    if let Some(s) = r.steadiness().filter(|_| r.status != crate::report::Status::Behind) {
        let _ = match s.reason {
            Some(why) => writeln!(
                o,
                "  WARNING    not steady: {why}; one average over two regimes describes neither"
            ),
            None if s.p99_known => writeln!(o, "  steady: throughput and p99 held between the halves of the window"),
            None => writeln!(o, "  steady: throughput held; p99 unknown (under 1000 samples a half)"),
        };
    }
    if let Some(raw) = &r.raw {
        percentiles(o, "raw", raw);
        let _ = writeln!(
            o,
            "  (* from the intended send time, coordinated omission corrected; raw: from the actual send)"
        );
    }
    if let Some(rx) = &r.rx_delay {
        // The round trip from the actual send, whichever the mode: raw in open loop.
        let (what, rtt) = match &r.raw {
            Some(raw) => ("raw", raw.p99_us),
            None => ("latency", r.latency.p99_us),
        };
        let _ = writeln!(
            o,
            "  rx delay   of {what} p99 {}, the reader's own delay (kernel receive stamp to loadgen's read) p50 {}  p99 {}  max {}",
            us(rtt),
            us(rx.p50_us),
            us(rx.p99_us),
            us(rx.max_us)
        );
    }
}

/// A shard's report: the rate asked is the whole run's, of which it sends its share.
fn whole_run(r: &Report) -> String {
    r.shard.as_ref().map_or(String::new(), |s| {
        format!(" by the whole run (this is shard {s}, which sends its share)")
    })
}

/// Open loop: how the schedule was kept, and who is to blame if not.
fn schedule(o: &mut String, r: &Report) {
    match (&r.send_lag, r.conn_rate) {
        (Some(lag), Some((rate, _))) => {
            let _ = writeln!(
                o,
                "  schedule   opened {} connections/s of {} asked{}; start lag p50 {}  p99 {}  max {}",
                per_s(r.conn_rate_s),
                per_s(rate),
                whole_run(r),
                us(lag.p50_us),
                us(lag.p99_us),
                us(lag.max_us)
            );
        }
        (Some(lag), None) => {
            let _ = writeln!(
                o,
                "  schedule   sent {} msg/s of {} asked{}; send lag p50 {}  p99 {}  max {}",
                per_s(r.achieved_rate.unwrap_or(0.0)),
                per_s(r.rate.unwrap_or(0.0)),
                whole_run(r),
                us(lag.p50_us),
                us(lag.p99_us),
                us(lag.max_us)
            );
        }
        _ => {}
    }
    if let (Some(client), Some(waits)) = (&r.client_lag, &r.backpressure) {
        let _ = writeln!(
            o,
            "  lag split  client (sendable, sent late) p50 {}  p99 {}  max {}; waiting for replies under --depth p99 {}  max {}",
            us(client.p50_us),
            us(client.p99_us),
            us(client.max_us),
            us(waits.p99_us),
            us(waits.max_us)
        );
    }
    if let Some(a) = &r.arrivals_check {
        let _ = writeln!(
            o,
            "  arrivals   poisson; the sends' gaps against the exponential: Kolmogorov-Smirnov D {:.4}, p {:.3} over {} \
             gaps (mean {:.3}x the promised): {}",
            a.statistic,
            a.p_value,
            a.gaps,
            a.mean_gap_ratio,
            if a.ok { "kept" } else { "NOT kept (see the WARNING)" }
        );
    }
    if let Some(verdict) = &r.keep_up {
        let _ = writeln!(o, "  WARNING    {verdict}");
    }
}

/// Connect times and how many connections opened; churn.
fn connect(o: &mut String, r: &Report) {
    let conn_stages = r.rate.is_none() && !r.stages.is_empty();
    let open = match r.conn_rate {
        Some(_) => format!("connections opened as they arrive, {} at most at once", r.conns),
        None if conn_stages => format!(
            "{} of at most {} connections open at the start, then as the stages ask (opened and closed below)",
            r.conns_ok, r.conns
        ),
        None => format!("{} of {} connections open", r.conns_ok, r.conns),
    };
    let _ = writeln!(
        o,
        "  connect    p50 {}  p99 {}  max {}; {open}",
        us(r.connect.p50_us),
        us(r.connect.p99_us),
        us(r.connect.max_us),
    );
    if r.counters.conns_opened > 0 {
        let _ = writeln!(
            o,
            "  churn      {} connections opened, {} closed when done ({:.0}/s, {}); connect p99.9 {}; first byte p50 {}  p99 {}  max {}",
            r.counters.conns_opened,
            r.counters.conns_closed,
            r.conn_rate_s,
            if r.transport.is_some_and(servers::Transport::is_datagram) {
                "a new UDP socket each".to_string()
            } else {
                format!("closed with {}", r.close.to_uppercase())
            },
            us(r.connect.p999_us),
            us(r.first_byte.p50_us),
            us(r.first_byte.p99_us),
            us(r.first_byte.max_us)
        );
    }
    if let Some(b) = &r.listen {
        let _ = writeln!(
            o,
            "  listen     the server listens with a backlog of {} ({} listening socket{}); {} waiting to be accepted at the end",
            b.max,
            b.listeners,
            if b.listeners == 1 { "" } else { "s" },
            b.queued
        );
    }
}

/// The run's other findings.
fn warnings(o: &mut String, r: &Report) {
    for warning in &r.warnings {
        let _ = writeln!(o, "  WARNING    {warning}");
    }
}

/// Error counts, datagram counts over UDP, errnos.
fn errors(o: &mut String, r: &Report) {
    let c = &r.counters;
    let _ = writeln!(
        o,
        "  errors     connect {}, timeouts {}, resets {}, mismatches {}, other {}",
        c.connect_errors, c.timeouts, c.resets, c.mismatches, c.other_errors
    );
    if r.transport.is_some_and(servers::Transport::is_datagram) {
        let share = |n: u64| {
            if c.sent == 0 {
                String::new()
            } else {
                format!(" ({:.3}% of {} sent)", n as f64 * 100.0 / c.sent as f64, c.sent)
            }
        };
        let _ = writeln!(
            o,
            "  datagrams  lost {}{}, late {}, duplicates {}, reordered {}  (lost: no reply within --timeout)",
            c.lost,
            share(c.lost),
            c.late,
            c.duplicates,
            c.reordered
        );
    }
    let errnos = c.errnos.seen();
    if !errnos.is_empty() {
        let list: Vec<String> = errnos.iter().map(|(name, n)| format!("{name} {n}")).collect();
        let _ = writeln!(o, "  errno      {}", list.join(", "));
    }
}

/// The spread of messages over connections, and the starved ones.
fn fairness(o: &mut String, r: &Report) {
    let f = &r.fairness;
    let conn_stages = r.rate.is_none() && !r.stages.is_empty();
    if r.conn_rate.is_none() && !conn_stages {
        // `--conn-rate` slots carry many short connections each, and `--stages` of
        // connections keep some open longer on purpose: no per-connection spread.
        let _ = writeln!(
            o,
            "  fairness   per connection min {} / median {} / max {} msgs, Jain index {:.3}",
            f.min, f.median, f.max, f.jain
        );
    }
    if f.starved > 0 {
        let ids: Vec<String> = r.starved_conns.iter().map(u32::to_string).collect();
        let more = if f.starved as usize > ids.len() { ", ..." } else { "" };
        let _ = writeln!(
            o,
            "  starved    {} connections had no message: {}{more}",
            f.starved,
            ids.join(", ")
        );
    }
}

/// Client threads and server workers, and why a default applied.
fn setup(o: &mut String, r: &Report) {
    if r.settings.client_threads > 0 {
        let s = &r.settings;
        let why = s
            .client_threads_default
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        let workers = s
            .server_workers
            .map(|w| format!("; server workers {w}"))
            .unwrap_or_default();
        let procs = if s.server_procs > 1 {
            format!(" in {} processes", s.server_procs)
        } else {
            String::new()
        };
        let plural = if s.client_threads == 1 { "" } else { "s" };
        let _ = writeln!(
            o,
            "  setup      {} client thread{plural}{why}{workers}{procs}",
            s.client_threads
        );
    }
    if let Some(shard) = &r.shard {
        let from = r
            .shard_source
            .as_deref()
            .map(|s| format!(", from {s}"))
            .unwrap_or_default();
        let _ = writeln!(o, "  shard      {shard}{from}");
    }
    if !r.shards.is_empty() {
        let each: Vec<String> = r
            .shards
            .iter()
            .map(|s| match s.msgs {
                Some(n) => format!("{} {} {n} msgs", s.shard, s.status),
                None => format!("{} MISSING", s.shard),
            })
            .collect();
        let _ = writeln!(o, "  shards     {}", each.join(", "));
    }
}

/// Outputs not written, and how the run ended.
fn status(o: &mut String, r: &Report) {
    for obj in &r.objectives {
        let value = obj
            .measured
            .map_or("nothing (no round trip)".to_string(), |v| format!("{v:.1}"));
        if obj.met {
            let _ = writeln!(o, "  objective  {}: met ({value})", obj.objective);
        } else {
            let _ = writeln!(o, "  OBJECTIVE NOT MET  {}: measured {value}", obj.objective);
        }
    }
    for e in &r.output_errors {
        let _ = writeln!(o, "  output     NOT WRITTEN: {e}");
    }
    let behind = match (r.status, r.achieved_rate, r.rate) {
        (crate::report::Status::Behind, Some(sent), Some(asked)) => Some(format!(
            "sent {} of {} msg/s asked, under {:.0}%: the load asked for was not offered",
            crate::report::units::per_s(sent),
            crate::report::units::per_s(asked),
            crate::report::BEHIND_SHARE * 100.0
        )),
        _ => None,
    };
    let reason = r
        .stop_reason
        .clone()
        .or(behind)
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let _ = writeln!(o, "  status     {}{reason}", r.status);
}
