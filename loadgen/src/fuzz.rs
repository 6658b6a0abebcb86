//! Property tests of every reader of outside input: whatever the bytes, none panics,
//! loops or allocates without bound, and what it accepts is within its stated limits. Run
//! by `cargo test` on stable Rust (proptest); each property tries `PROPTEST_CASES` inputs
//! (1,000 by default, a few seconds in all); a failing input is kept in
//! `proptest-regressions/` and committed, so it is tried first from then on.
//!
//! Covered: the CSV report reader, the interval-log reader (random bytes and single-byte
//! mutations of a real log), the `--work` spec parser, the address parser, the duration,
//! size, count and rate parsers, and the agent's metrics parser.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;

use crate::config::{parse_addr, parse_count, parse_duration, parse_rate, parse_size};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1000),
        max_shrink_iters: 500,
        ..ProptestConfig::default()
    }
}

/// A fresh temporary file holding `bytes`.
fn temp(bytes: &[u8], ext: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let p = std::env::temp_dir().join(format!(
        "fuzz-{}-{}.{ext}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A real interval log of two intervals, as loadgen writes it.
fn real_log() -> Vec<u8> {
    let p = temp(b"", "hlog");
    let mut w = crate::measure::hlog::HlogWriter::create(&p, std::time::UNIX_EPOCH).unwrap();
    let mut h = crate::measure::record::new_histogram();
    for v in 1..200u64 {
        h.record(v * 1000).unwrap();
    }
    w.interval(std::time::Duration::ZERO, std::time::Duration::from_secs(1), &h, None);
    w.interval(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(1),
        &h,
        Some("raw"),
    );
    w.finish().unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let _ = std::fs::remove_file(&p);
    bytes
}

const HEADER: &str =
    "schema,target,transport,mode,conns,msg_size,depth,rate,throughput_msgs_s,lat_p99_us,msgs,status\n";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_csv_reader_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let p = temp(&bytes, "csv");
        let _ = crate::report::read::read_report(&p);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn the_csv_reader_admits_only_finite_bounded_numbers(
        cells in proptest::collection::vec("[-+0-9.eEnaNifINF]{0,10}", 12),
        extra in "[a-z,\"]{0,12}",
    ) {
        let row = cells.join(",");
        let p = temp(format!("{HEADER}1,mio,tcp,closed,{row}{extra}\n").as_bytes(), "csv");
        if let Ok(rows) = crate::report::read::read_report(&p) {
            for r in &rows {
                for c in ["conns", "throughput_msgs_s", "lat_p99_us", "msgs"] {
                    if let Some(v) = r.num(c) {
                        prop_assert!(v.is_finite() && v.abs() <= crate::report::read::MAX_VALUE);
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn the_interval_log_reader_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4000)) {
        let p = temp(&bytes, "hlog");
        let _ = crate::measure::hlog::read(&p);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn the_interval_log_reader_and_merge_survive_any_mutation(at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let mut bytes = real_log();
        let i = at % bytes.len();
        bytes[i] = byte;
        bytes.truncate(bytes.len() - cut % 8);
        let p = temp(&bytes, "hlog");
        if let Ok(log) = crate::measure::hlog::read(&p) {
            let merged = crate::scale::merge::merge(&[log]);
            prop_assert!(merged.latency.len() < u64::MAX);
        }
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn the_work_parser_survives_any_text(s in "\\PC{0,40}") {
        let _ = s.parse::<servers::work::WorkSpec>();
    }

    #[test]
    fn the_work_parser_accepts_only_positive_durations_under_an_hour(
        s in "(cpu|wait|block|nap):(exp:|bimodal:)?[-0-9.e]{0,8}(ns|us|ms|s|h)?(,[0-9.]{0,5}(us|ms)){0,2}(,[-0-9.]{0,4}%)?(\\+cpu:1us)?"
    ) {
        if let Ok(w) = s.parse::<servers::work::WorkSpec>() {
            let mut sampler = servers::work::Sampler::new(&w, 1, 0);
            for _ in 0..10 {
                let c = sampler.draw();
                prop_assert!(c.cpu + c.wait + c.block < std::time::Duration::from_secs(3 * 3600 * 40));
            }
        }
    }

    #[test]
    fn the_address_parser_survives_any_text(s in "\\PC{0,60}") {
        let _ = parse_addr(&s);
    }

    #[test]
    fn the_address_parser_on_address_shapes(s in "(udp://|unix:|seqpacket:|icmp://)?\\[?[0-9a-f.:]{0,20}\\]?(:[0-9]{0,6})?") {
        let _ = parse_addr(&s);
    }

    #[test]
    fn number_parsers_survive_and_bound_what_they_accept(s in "[-+0-9.eE kKMGTiBbsmuhn_]{0,16}") {
        if let Ok(d) = parse_duration("--duration", &s) {
            prop_assert!(d < std::time::Duration::from_secs(u64::MAX / 2));
        }
        let _ = parse_size("--msg-size", &s);
        let _ = parse_count("--conns", &s);
        if let Ok(r) = parse_rate("--rate", &s) {
            prop_assert!(r > 0.0 && r <= 1e9);
        }
    }

    #[cfg(feature = "agent")]
    #[test]
    fn the_agent_metrics_parser_survives_any_text(s in "(# (TYPE|HELP) [a-z_]{1,20} [a-z]{0,8}\\n|[a-z_]{1,24}(\\{[a-z]{1,5}=\"[^\"\\n]{0,8}\"\\})? [-0-9.eE+NaInf]{0,12}\\n|\\PC{0,20}\\n){0,12}") {
        let _ = crate::run::remote::parse(&s);
    }
}
