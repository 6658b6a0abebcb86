//! The ephemeral-port budget of connection churn. Every connection the client closes first
//! with FIN leaves its side in TIME_WAIT for 60 s, holding its port towards that server
//! address; one source address has `ip_local_port_range` ports (28,232 here). At `R` new
//! connections per second the ports run out after about `ports / R` seconds, unless:
//! - the client closes with RST (`--close rst`: no TIME_WAIT);
//! - the server is on loopback and `net.ipv4.tcp_tw_reuse` is 1 or 2 (2, the default, means
//!   loopback only): the kernel reuses a TIME_WAIT port after a second;
//! - there are several source addresses (`--bind`), each with its own ports.
//!
//! Before a `--conn-rate` run loadgen estimates this. On IPv4 loopback without `--bind` it
//! spreads the connections over as many 127.0.0.x source addresses as needed by itself;
//! elsewhere it warns with the time left and the fix.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use servers::ListenAddr;

use crate::config::{Churn, CloseMode, RunConfig};

/// How long a closed connection's port stays in TIME_WAIT (Linux: fixed).
pub(crate) const TIME_WAIT: Duration = Duration::from_secs(60);
/// Head room over the estimated need when spreading over source addresses.
const MARGIN: f64 = 1.25;

/// The budget of one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Budget {
    /// Enough ports (or none held).
    Enough,
    /// Spread over this many source addresses (127.0.0.2 on): enough then.
    Spread(usize),
    /// The ports run out after about this long: a warning, with the fix.
    RunsOut(Duration),
}

/// The budget of `rate` new connections/s for `run`, from `sources` source addresses
/// (0: the kernel's choice, i.e. one), with `ports` ephemeral ports each.
pub(crate) fn budget(
    rate: f64,
    run: Duration,
    sources: usize,
    ports: u64,
    reuse: bool,
    close: CloseMode,
    can_spread: bool,
) -> Budget {
    if close == CloseMode::Rst || reuse {
        return Budget::Enough;
    }
    let held = rate * TIME_WAIT.as_secs_f64().min(run.as_secs_f64());
    let have = ports as f64 * sources.max(1) as f64;
    if held <= have {
        return Budget::Enough;
    }
    if can_spread {
        return Budget::Spread((held * MARGIN / ports as f64).ceil() as usize);
    }
    Budget::RunsOut(Duration::from_secs_f64(have / rate))
}

fn sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{name}")).ok()
}

/// Ephemeral ports per source address (`ip_local_port_range`).
fn ephemeral_ports() -> u64 {
    sysctl("net/ipv4/ip_local_port_range")
        .and_then(|r| {
            let mut it = r.split_whitespace().map(|v| v.parse::<u64>().ok());
            Some(it.next()??.abs_diff(it.next()??) + 1)
        })
        .unwrap_or(28_232)
}

/// Checks the port budget of a `--conn-rate` run against `addr`: returns the
/// configuration to run (with source addresses added when spreading) and a line to print.
pub(crate) fn plan(cfg: &RunConfig, addr: &ListenAddr) -> (Option<Vec<IpAddr>>, Option<String>) {
    let Churn::ConnRate { rate, .. } = cfg.churn else {
        return (None, None);
    };
    let ListenAddr::Tcp(target) = addr else {
        return (None, None); // Unix sockets have no ports
    };
    let loopback = target.ip().is_loopback();
    let tw_reuse = sysctl("net/ipv4/tcp_tw_reuse")
        .and_then(|v| v.trim().parse::<u8>().ok())
        .unwrap_or(0);
    let reuse = tw_reuse == 1 || (tw_reuse == 2 && loopback);
    let can_spread = loopback && target.is_ipv4() && cfg.bind.is_empty();
    let ports = ephemeral_ports();
    match budget(
        rate,
        cfg.warmup + cfg.duration,
        cfg.bind.len(),
        ports,
        reuse,
        cfg.close,
        can_spread,
    ) {
        Budget::Enough => (None, None),
        Budget::Spread(n) => {
            let ips: Vec<IpAddr> = (0..n.min(250))
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)))
                .collect();
            let line = format!(
                "note: at {rate:.0} new connections/s with FIN close one source address runs out of its {ports} ports \
                 (TIME_WAIT holds each for 60 s): spreading over {} source addresses 127.0.0.2 on",
                ips.len()
            );
            (Some(ips), Some(line))
        }
        Budget::RunsOut(after) => (
            None,
            Some(format!(
                "warning: at {rate:.0} new connections/s with FIN close the ports towards {target} run out in ~{:.0} s \
                 (TIME_WAIT holds each for 60 s); add --bind with more source addresses or --close rst",
                after.as_secs_f64()
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn ports_run_out_only_when_time_wait_holds_them() {
        assert_eq!(
            budget(2000.0, MIN, 0, 28_232, false, CloseMode::Rst, false),
            Budget::Enough
        );
        assert_eq!(
            budget(2000.0, MIN, 0, 28_232, true, CloseMode::Fin, false),
            Budget::Enough
        );
        assert_eq!(
            budget(400.0, MIN, 0, 28_232, false, CloseMode::Fin, false),
            Budget::Enough
        );
        assert_eq!(
            budget(2000.0, MIN, 0, 28_232, false, CloseMode::Fin, false),
            Budget::RunsOut(Duration::from_secs_f64(14.116))
        );
        // 120k ports held over 60 s, with a quarter more: 6 addresses of 28k.
        assert_eq!(
            budget(2000.0, MIN, 0, 28_232, false, CloseMode::Fin, true),
            Budget::Spread(6)
        );
        assert_eq!(
            budget(2000.0, Duration::from_secs(5), 0, 28_232, false, CloseMode::Fin, true),
            Budget::Enough
        );
    }
}
