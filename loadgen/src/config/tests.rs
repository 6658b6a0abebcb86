//! Unit tests of the checked configuration: defaults, and errors that name the flag.
use super::*;
use clap::Parser;

fn config(args: &[&str]) -> Result<RunConfig, Error> {
    let cli = crate::cli::Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied())).unwrap();
    RunConfig::try_from(&cli.run)
}

#[test]
fn defaults_follow_the_contract() {
    let c = config(&["--target", "mio"]).unwrap();
    assert_eq!(c.target, TargetSpec::Model(Model::Mio));
    assert_eq!((c.conns, c.msg_size, c.depth, c.rate), (100, 64, 1, None));
    assert_eq!(
        (c.duration, c.warmup),
        (Duration::from_secs(10), Duration::from_secs(1))
    );
    assert_eq!(
        (c.reply_timeout(), c.connect_timeout),
        (Duration::from_secs(5), Duration::from_secs(5))
    );
}

#[test]
fn udp_has_its_own_timeout_and_message_bounds() {
    let udp = |extra: &[&str]| config(&[&["--target", "mio", "--transport", "udp"][..], extra].concat());
    assert_eq!(udp(&[]).unwrap().reply_timeout(), Duration::from_secs(1));
    assert_eq!(
        udp(&["--timeout", "3s"]).unwrap().reply_timeout(),
        Duration::from_secs(3)
    );
    for (size, ok) in [("19", false), ("20", true), ("65507", true), ("65508", false)] {
        let r = udp(&["--msg-size", size]);
        assert_eq!(r.is_ok(), ok, "--msg-size {size}: {r:?}");
        if let Err(e) = r {
            assert!(e.to_string().contains("--msg-size"), "{e}");
        }
    }
    let over_v6 = config(&["--addr", "udp://[::1]:7", "--msg-size", "65527"]);
    assert!(over_v6.is_ok(), "{over_v6:?}");
    let e = config(&["--addr", "udp://127.0.0.1:7", "--transport", "udp"]).unwrap_err();
    assert!(e.to_string().contains("only applies with --target"), "{e}");
    let e = config(&["--target", "mio", "--transport", "sctp"]).unwrap_err();
    assert!(e.to_string().contains("--transport"), "{e}");
}

#[test]
fn errors_name_the_flag() {
    let msg = |args: &[&str]| config(args).unwrap_err().to_string();
    assert!(msg(&["--target", "fibers"]).starts_with("--target 'fibers'"));
    assert!(msg(&["--addr", "nowhere"]).starts_with("--addr 'nowhere'"));
    assert_eq!(config(&["--addr", "nowhere"]).unwrap_err().exit_code(), 2);
    assert_eq!(
        config(&["--addr", "no-such-host.invalid:80"]).unwrap_err().exit_code(),
        3
    );
    assert!(msg(&["--target", "mio", "--threads", "0"]).starts_with("--threads"));
    assert!(msg(&["--target", "mio", "--duration", "10x"]).starts_with("--duration '10x'"));
    assert!(msg(&["--target", "mio", "--duration", "0s"]).contains("greater than zero"));
    assert!(msg(&["--target", "mio", "--conns", "0"]).starts_with("--conns"));
    assert!(msg(&["--target", "mio", "--rate", "fast"]).starts_with("--rate"));
    assert!(msg(&["--target", "mio", "--rate", "auto"]).contains("--slo"));
    assert!(msg(&["--target", "mio", "--pacing", "spin"]).starts_with("--pacing"));
    assert!(config(&["--target", "mio", "--pacing", "spin", "--rate", "100"]).is_ok());
    assert!(config(&["--target", "mio", "--pacing", "sleep", "--conn-rate", "10"]).is_ok());
    assert!(msg(&["--target", "mio", "--rate", "auto", "--slo", "p42=1ms"]).starts_with("--slo"));
    assert_eq!(
        config(&["--target", "mio", "--slo", "p99=1ms,errors=0"])
            .unwrap()
            .objectives
            .len(),
        2
    );
    assert!(msg(&["--target", "mio", "--rate", "auto", "--slo", "p99=1ms,errors=0"]).contains("one latency objective"));
    assert!(msg(&["--target", "mio", "--bind", "::1"]).starts_with("--bind"));
    assert!(msg(&["--target", "mio", "--bind", "nope"]).starts_with("--bind"));
    assert_eq!(
        config(&["--target", "mio", "--bind", "127.0.0.2, 127.0.0.3"])
            .unwrap()
            .bind
            .len(),
        2
    );
    let c = config(&["--target", "mio", "--rate", "auto", "--slo", "p99.9=2ms"]).unwrap();
    assert_eq!((c.rate, c.search.unwrap().bound_us), (None, 2000.0));
    assert!(msg(&["--target", "mio", "--msg-size", "0"]).starts_with("--msg-size"));
    assert!(msg(&["--target", "mio", "--reconnect-every", "0"]).starts_with("--reconnect-every"));
    assert!(msg(&["--target", "mio", "--conn-rate", "0"]).starts_with("--conn-rate"));
    assert!(msg(&["--target", "mio", "--conn-rate", "10", "--msgs-per-conn", "0"]).starts_with("--msgs-per-conn"));
    assert!(msg(&["--target", "mio", "--conn-rate", "10", "--rate", "100"]).starts_with("--conn-rate"));
    assert!(msg(&["--target", "mio", "--msgs-per-conn", "3"]).starts_with("--msgs-per-conn"));
    let c = config(&["--target", "mio", "--conn-rate", "500", "--close", "rst"]).unwrap();
    assert_eq!(
        (c.churn, c.close),
        (
            Churn::ConnRate {
                rate: 500.0,
                msgs_per_conn: 1
            },
            CloseMode::Rst
        )
    );
    assert!(msg(&[]).contains("--target MODEL"));
}

#[test]
fn threads_never_exceed_connections() {
    assert_eq!(
        config(&["--target", "mio", "--conns", "1", "--threads", "4"])
            .unwrap()
            .threads,
        1
    );
}

#[test]
fn flags_that_would_silently_do_nothing_are_refused_by_name() {
    let e = config(&["--target", "mio", "--transport", "unix", "--rx-timestamps", "on"]).unwrap_err();
    assert!(
        e.to_string().starts_with("--rx-timestamps") && e.to_string().contains("Unix"),
        "{e}"
    );
    assert!(config(&["--target", "mio", "--rx-timestamps", "on"]).is_ok());
    // Below the kernel's floor a socket buffer is raised without a word.
    let e = config(&["--target", "mio", "--sock-buf", "1"]).unwrap_err();
    assert!(
        e.to_string().starts_with("--sock-buf '1'") && e.to_string().contains("4096"),
        "{e}"
    );
    assert_eq!(
        config(&["--target", "mio", "--sock-buf", "4KiB"]).unwrap().sock_buf,
        Some(4096)
    );
}
