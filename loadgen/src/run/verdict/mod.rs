//! The verdicts of a run, in plain words: how it ended (its status), whether the schedule
//! was kept and who is to blame if not, whether the generator may have been the
//! bottleneck, and why connections could not be opened.

mod open_loop;
mod room;

use crate::measure::record::Counters;
use crate::report::Status;

/// How a run ended: `failed` when nothing could be measured (no connection opened, or a
/// whole run with neither a round trip nor an error: replies slower than the run), `partial`
/// when it stopped early, `errors` when any error was counted, `behind` when an open loop
/// sent under [`crate::report::BEHIND_SHARE`] of its rate (`behind`), else `ok`.
pub(crate) fn status(conns_ok: usize, counters: &Counters, stopped_early: bool, behind: bool) -> Status {
    if conns_ok == 0 && counters.msgs == 0 {
        Status::Failed
    } else if stopped_early {
        Status::Partial
    } else if counters.errors() > 0 {
        Status::Errors
    } else if counters.msgs == 0 {
        Status::Failed
    } else if behind {
        Status::Behind
    } else {
        Status::Ok
    }
}

/// The server's `--work` that took over 10% more (or less) than asked, each in a sentence
/// naming the likely cause: a wait or block is late by the timer's lateness (`loadgen
/// doctor` measures this machine's floor); a CPU burn, timed by the wall clock, by the
/// serving thread being preempted (CPU contention).
pub(crate) fn work_warnings(done: &[crate::report::WorkDone]) -> Vec<String> {
    done.iter()
        .filter(|k| k.asked_mean_us > 0.0 && (k.ratio() - 1.0).abs() > 0.10)
        .map(|k| {
            let cause = match k.kind {
                "cpu" => "the serving threads were preempted while burning (CPU contention: the server had fewer cores than busy threads)",
                _ => "the timer fired late (this machine's timer lateness: `loadgen doctor` measures its floor) or the serving thread waited for a CPU",
            };
            format!(
                "the server's {} work took {:.1} us per message on average, {:+.0}% of the {:.1} us asked: {cause}",
                k.kind,
                k.done_mean_us,
                (k.ratio() - 1.0) * 100.0,
                k.asked_mean_us
            )
        })
        .collect()
}

/// UDP: `Some(sentence)` when a datagram of `msg_size` bytes would be fragmented on a
/// 1500-byte MTU (IPv4), which this run, on loopback's 64 KiB MTU, does not show.
pub(crate) fn fragment_verdict(msg_size: usize) -> Option<String> {
    (msg_size > crate::config::UDP_UNFRAGMENTED).then(|| {
        format!(
            "{msg_size} B datagrams exceed {} B: on a 1500-byte MTU they travel as IP fragments, and losing one \
             fragment loses the datagram (loopback's MTU is 64 KiB: a run here does not show it)",
            crate::config::UDP_UNFRAGMENTED
        )
    })
}

/// UDP: `Some(sentence)` when full socket receive buffers dropped datagrams on this
/// machine during the run (`RcvbufErrors`), which is where `lost` datagrams went on
/// loopback: the receiver's queue, the server's or the client's, not the network.
pub(crate) fn rcvbuf_verdict(drops: u64, lost: u64) -> Option<String> {
    (drops > 0).then(|| {
        format!(
            "{drops} datagrams were dropped by full socket receive buffers on this machine (Udp RcvbufErrors; \
             {lost} counted lost): the receiver's queue overflowed, the server's or the client's. Fewer datagrams \
             in flight, or a larger --sock-buf (capped by net.core.rmem_max), keeps them"
        )
    })
}

/// ICMP over raw sockets: `Some(sentence)` past 8 connections, where the kernel's cost of
/// a packet grows with the connections (every raw ICMP socket's filter sees every packet).
pub(crate) fn raw_icmp_verdict(conns: usize) -> Option<String> {
    (crate::os::icmp::raw_opened() && conns > 8).then(|| {
        format!(
            "ICMP over raw sockets (ping sockets are off): every packet passes each of the {conns} sockets' filters, \
             so the client's cost per message grows with --conns; allow ping sockets (`loadgen doctor --tune` as root) \
             to measure the kernel's echo, not this"
        )
    })
}

/// `Some(sentence)` when connects failed for want of ephemeral ports.
pub(crate) fn ports_verdict(counters: &Counters) -> Option<String> {
    let n = counters.errnos.get(libc::EADDRNOTAVAIL);
    (n > 0).then(|| {
        format!(
            "{n} connects failed with EADDRNOTAVAIL: the ephemeral ports towards the server ran out \
             (closed connections hold theirs in TIME_WAIT for 60 s); add --bind with more source \
             addresses (e.g. 127.0.0.2,127.0.0.3) or --close rst"
        )
    })
}

/// `Some(sentence)` when listeners' accept queues overflowed during the run: the kernel
/// dropped those SYNs and the clients retried after 1 s (connects near 1 s).
pub(crate) fn backlog_verdict(
    overflows: u64,
    connect_max_us: f64,
    backlog: Option<crate::os::listener::Backlog>,
) -> Option<String> {
    (overflows > 0).then(|| {
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        // Name the real backlog when the listener is in view: a server that asked for 5
        // overflows at the sixth waiting connection, whatever somaxconn allows.
        let why = match backlog {
            Some(b) if b.max.to_string() != somaxconn => format!(
                "the server listens with a backlog of {} (what its listen() asked for; net.core.somaxconn = {somaxconn} \
                 would allow more): a larger listen() backlog, or a server that accepts faster",
                b.max
            ),
            Some(b) => format!(
                "the server listens with a backlog of {}, the most net.core.somaxconn allows: raise net.core.somaxconn \
                 (and the server's listen() backlog)",
                b.max
            ),
            None => format!("its listen backlog is capped by net.core.somaxconn = {somaxconn}"),
        };
        format!(
            "accept queues on this machine overflowed {overflows} times during the run (TcpExtListenOverflows): those connects were \
             dropped and retried after 1 s (connect max {:.0} ms); the server accepts slower than connections arrive, and {why}",
            connect_max_us / 1000.0
        )
    })
}

/// `Some(sentence)` when fewer than `conns` connections were open when the load started.
pub(crate) fn unopened_verdict(conns: usize, conns_ok: usize, counters: &Counters) -> Option<String> {
    (conns_ok < conns).then(|| {
        format!(
            "{} of {conns} connections could not be opened ({} failed connect attempts): the server stopped \
             accepting (descriptor limit? backlog?) or refused them; the load ran on the {conns_ok} that were open \
             and the others kept retrying",
            conns - conns_ok,
            counters.connect_errors
        )
    })
}

pub(crate) use open_loop::*;
pub(crate) use room::{Room, SATURATED};

/// TCP's minimum retransmission timeout on Linux, ns.
pub(crate) const MIN_RTO_NS: u64 = 200_000_000;

/// `Some(sentence)` when the service times (ns) cluster at TCP's retransmission timeout
/// (more of them just above 200 ms, up to 240 ms, than in the whole 50-200 ms range below,
/// with the median far below) and TCP did retransmit on this machine during the run
/// (`retransmits`): the signature of lost packets. A server that stalls can make a similar
/// tail, but no retransmissions.
pub(crate) fn loss_verdict(service: &hdrhistogram::Histogram<u64>, retransmits: u64) -> Option<String> {
    if service.is_empty() || retransmits == 0 {
        return None;
    }
    let at_rto = service.count_between(MIN_RTO_NS, MIN_RTO_NS * 6 / 5);
    let below = service.count_between(MIN_RTO_NS / 4, MIN_RTO_NS - 1);
    let median = service.value_at_quantile(0.5);
    (at_rto > 0 && at_rto > below && median < MIN_RTO_NS / 20).then(|| {
        format!(
            "{at_rto} replies took 200-240 ms while the median is {:.0} us, and TCP retransmitted {retransmits} segments \
             on this machine during the run: the retransmission timeout, a likely sign of packet loss",
            median as f64 / 1000.0
        )
    })
}

/// Closed loop: `Some(warning)` when a client thread was near a full core, so the
/// throughput may be the generator's limit rather than the server's.
pub(crate) fn closed_loop_verdict(busiest_thread: f64, room: &Room) -> Option<String> {
    (busiest_thread >= SATURATED).then(|| {
        format!(
            "the GENERATOR may be the bottleneck: its busiest client thread used {:.0}% of a core ({})",
            busiest_thread * 100.0,
            room.advice()
        )
    })
}

/// Connections that were open but never served in the window, named as what they most
/// often are: a server that gives each connection a worker until it closes (a thread pool
/// smaller than the connection count) leaves the rest waiting, accepted and unanswered,
/// while the served ones make the latency look fine.
pub(crate) fn starved_verdict(starved: u64, conns_ok: usize, target: &str) -> Option<String> {
    // Connections that never opened are named by the unopened verdict.
    (starved > 0 && conns_ok > 0).then(|| {
        let pool = if target == servers::Model::ThreadPool.name() {
            "; threadpool serves only as many connections as it has workers: give it --server-workers at least --conns"
        } else {
            ""
        };
        let (n, them) = if starved == 1 {
            ("1 connection", "its")
        } else {
            ("connections", "their")
        };
        let n = if starved == 1 {
            n.to_string()
        } else {
            format!("{starved} {n}")
        };
        format!(
            "{n} of {conns_ok} got no reply in the whole window: {them} wait is in no percentile, so the latency \
             speaks for the served ones only{pool}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: Room = Room {
        cores: 8,
        client_threads: 2,
        server_threads: None,
    };

    #[test]
    fn advice_counts_the_cores_client_and_server_share() {
        let small = Room {
            cores: 2,
            client_threads: 1,
            server_threads: Some(1),
        };
        let a = small.advice();
        assert!(
            a.contains("share 2 cores") && a.contains("--pin-client") && !a.contains("exceed"),
            "{a}"
        );
        let over = Room {
            client_threads: 2,
            ..small
        };
        assert!(over
            .advice()
            .contains("2 client and 1 server threads already exceed the 2 cores"));
        assert!(ROOM.advice().starts_with("add --threads: 2 of 8 cores"));
    }

    #[test]
    fn verdict_blames_the_busy_side() {
        let lag = |total, client, backpressure| Lags {
            total_p99_us: total,
            client_p99_us: client,
            backpressure_p99_us: backpressure,
        };
        assert_eq!(
            keep_up_verdict(1000.0, 999.0, "msg/s", lag(200.0, 5.0, 190.0), 0.2, &ROOM),
            None
        );
        assert!(
            keep_up_verdict(1000.0, 900.0, "msg/s", lag(200.0, 5.0, 190.0), 0.97, &ROOM)
                .unwrap()
                .contains("GENERATOR could not keep up")
        );
        assert!(
            keep_up_verdict(1000.0, 900.0, "msg/s", lag(200.0, 5.0, 190.0), 0.3, &ROOM)
                .unwrap()
                .starts_with("replies were late (server or network)")
        );
        assert!(
            keep_up_verdict(1000.0, 1000.0, "msg/s", lag(5000.0, 4000.0, 10.0), 0.3, &ROOM)
                .unwrap()
                .starts_with("the GENERATOR's pacing was late")
        );
        // Rates under 10 keep their decimals: "0 of 0" said nothing.
        assert!(keep_up_verdict(0.5, 0.25, "msg/s", lag(0.0, 0.0, 0.0), 0.1, &ROOM)
            .unwrap()
            .contains("achieved 0.25 of 0.50 msg/s"));
        // Client lag: 1000 sends on time, `n` sends 20 µs late; corrected p99 100 µs.
        let lag = |n: u64| {
            let mut h = crate::measure::record::new_histogram();
            h.record_n(100, 1000).unwrap();
            h.record_n(20_000, n).unwrap();
            h
        };
        assert!(pacing_verdict(&lag(20), 100.0, None, None)
            .unwrap()
            .contains("--pacing spin"));
        assert!(!pacing_verdict(&lag(20), 100.0, Some(200_000), None)
            .unwrap()
            .contains("haltpoll"));
        assert!(pacing_verdict(&lag(20), 100.0, Some(0), None)
            .unwrap()
            .contains("guest_halt_poll_ns = 0"));
        assert_eq!(pacing_verdict(&lag(0), 100.0, Some(0), None), None, "on time");
        assert_eq!(
            pacing_verdict(&lag(20), 1000.0, None, None),
            None,
            "late by less than a tenth"
        );
        // Three late sends out of 250 make a p99, not a pattern.
        let mut few = crate::measure::record::new_histogram();
        few.record_n(100, 247).unwrap();
        few.record_n(150_000, 3).unwrap();
        assert!(few.value_at_quantile(0.99) > 100_000);
        assert_eq!(pacing_verdict(&few, 200.0, None, None), None);
        // Against the machine's timer floor: 20 µs of lag at a 15 µs floor is the machine's;
        // at a 2 µs floor it is the client's.
        let at_floor = pacing_verdict(&lag(20), 100.0, None, Some(15.0)).unwrap();
        assert!(
            at_floor.contains("1.3x this machine's timer floor (p99 15.0 us): at the machine's floor"),
            "{at_floor}"
        );
        let short = pacing_verdict(&lag(20), 100.0, None, Some(2.0)).unwrap();
        assert!(
            short.contains("10.0x this machine's timer floor (p99 2.0 us): the client is short of CPU"),
            "{short}"
        );
        let mut lossy = crate::measure::record::new_histogram();
        lossy.record_n(30_000, 1000).unwrap();
        lossy.record_n(205_000_000, 20).unwrap();
        assert!(loss_verdict(&lossy, 20).unwrap().contains("packet loss"));
        assert_eq!(loss_verdict(&lossy, 0), None, "no retransmission, no loss");
        // A server frozen for 300 ms: waits spread evenly from 0 to 300 ms.
        let mut frozen = crate::measure::record::new_histogram();
        frozen.record_n(30_000, 1000).unwrap();
        for ms in 0..300u64 {
            frozen.record(ms * 1_000_000 + 1).unwrap();
        }
        assert_eq!(loss_verdict(&frozen, 20), None);
        assert_eq!(closed_loop_verdict(0.5, &ROOM), None);
        assert!(closed_loop_verdict(0.95, &ROOM).unwrap().contains("GENERATOR"));
    }

    #[test]
    fn status_follows_the_contract() {
        let errs = Counters {
            msgs: 5,
            timeouts: 1,
            ..Counters::default()
        };
        assert_eq!(status(0, &Counters::default(), false, false), Status::Failed);
        assert_eq!(
            status(5, &Counters::default(), false, false),
            Status::Failed,
            "no round trip at all"
        );
        assert_eq!(status(5, &Counters::default(), true, false), Status::Partial);
        assert_eq!(status(3, &errs, true, false), Status::Partial);
        assert_eq!(status(3, &errs, false, false), Status::Errors);
        assert_eq!(
            status(
                3,
                &Counters {
                    msgs: 5,
                    ..Counters::default()
                },
                false,
                false
            ),
            Status::Ok
        );
        let fine = Counters {
            msgs: 5,
            ..Counters::default()
        };
        assert_eq!(
            status(3, &fine, false, true),
            Status::Behind,
            "a rate not offered is not ok"
        );
        assert_eq!(status(3, &errs, false, true), Status::Errors, "errors say more");
        assert!(unopened_verdict(300, 66, &errs)
            .unwrap()
            .starts_with("234 of 300 connections"));
        assert_eq!(unopened_verdict(3, 3, &errs), None);
    }
}
