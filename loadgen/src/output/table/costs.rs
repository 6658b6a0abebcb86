//! The summary's cost lines: what the server, the machine and the client spent.

use std::fmt::Write;

use crate::report::units::us;
use crate::report::Report;

/// What the server cost.
pub(super) fn server(o: &mut String, r: &Report) {
    match (&r.server, r.server_us_per_msg()) {
        (Some(s), _) if s.cpu_s.is_none() && s.peak_rss_kib.is_none() && s.peak_threads.is_none() => {
            // Nothing was read (an agent that did not answer, a /proc that vanished): one
            // plain line, not a row of "unknown"s; the WARNING above says why.
            let source = r
                .server_source
                .as_deref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            let _ = writeln!(o, "  server     cost unknown: nothing could be read{source}");
        }
        (Some(s), per) => {
            let source = r.server_source.as_deref().map(|w| format!("; {w}")).unwrap_or_default();
            let _ = writeln!(
                o,
                "  server     {} CPU ({} per msg), peak RSS {}, peak {} threads{source}",
                s.cpu_s.map_or("unknown".into(), |v| format!("{v:.2} s")),
                per.map_or("-".into(), |v| format!("{v:.2} us")),
                s.peak_rss_kib.map_or("unknown".into(), |v| format!("{v} KiB")),
                s.peak_threads.map_or("unknown".into(), |v| v.to_string())
            );
            if let Some(h) = s.host_cpu {
                let busy = h.user_s + h.system_s + h.softirq_s + h.irq_s;
                let _ = writeln!(
                    o,
                    "  its host   {:.2} s CPU busy in the window: user {:.2}, system {:.2}, softirq {:.2}, irq {:.2} s; idle {:.2} s",
                    busy, h.user_s, h.system_s, h.softirq_s, h.irq_s, h.idle_s
                );
            }
        }
        // No process answers an ICMP echo: the kernel does, in the packets' softirq.
        (None, _) if r.addr.starts_with("icmp://") => o.push_str(
            "  server     the kernel (ICMP echo): no process to measure; its work is in the machine line's interrupts\n",
        ),
        (None, _) => {
            let _ = writeln!(
                o,
                "  server     cost unknown (no process on this machine listens at {}; give --server-pid if it is here)",
                r.addr
            );
        }
    }
    for k in r.work_done.iter().flatten() {
        let _ = writeln!(o, "{}", k.line(us));
    }
}

/// How busy the client's machine was in the window, and with what besides the run.
pub(super) fn machine(o: &mut String, r: &Report) {
    let Some(m) = r.machine.filter(|m| m.capacity_s > 0.0) else {
        return;
    };
    let pct = |s: f64| s / m.capacity_s * 100.0;
    let least = if m.others_at_least { "at least " } else { "" };
    let others = m
        .others_s
        .map_or("unknown".into(), |s| format!("{least}{:.0}% ({s:.2} s)", pct(s)));
    let _ = writeln!(
        o,
        "  machine    {} CPUs, {:.0}% busy in the window ({:.0}% in interrupts, mostly the run's packets); other processes {others}; steal {:.0}%",
        m.cpus,
        pct(m.tasks_s + m.irq_s),
        pct(m.irq_s),
        pct(m.steal_s)
    );
}

/// What the client cost.
pub(super) fn client(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "  client     {:.2} s CPU ({} per msg), busiest thread {:.0}% of a core{}, peak RSS {} KiB",
        r.client_cpu_s,
        r.client_us_per_msg().map_or("-".into(), |v| format!("{v:.2} us")),
        r.client_thread_busy_max * 100.0,
        spin_note(r),
        r.client_rss_kib
    );
}

/// ` (N% of it pacing spin)` when client threads spun a visible share of their CPU to pace
/// their sends, so a busy thread is not read as a saturated one.
fn spin_note(r: &Report) -> String {
    let spin = r.client_thread_busy_max - r.client_thread_work_max;
    if spin >= 0.01 {
        format!(" ({:.0}% work, the rest pacing spin)", r.client_thread_work_max * 100.0)
    } else {
        String::new()
    }
}
