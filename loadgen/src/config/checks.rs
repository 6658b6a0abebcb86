//! The checks of a [`RunConfig`] before it runs, one step per concern: the sizes, UDP's
//! limits, the engine, the open loop, the source addresses, and where the load and the
//! server run.

use std::net::IpAddr;

use servers::{ListenAddr, Model};

use super::parse::check_rate;
use super::{
    Churn, CloseMode, Engine, RunConfig, SockKind, TargetSpec, MAX_CONNS, MAX_DEPTH, MAX_MSG_SIZE, MAX_UDP_PAYLOAD_V4,
};
use crate::error::{flag_error as invalid, Error};

impl RunConfig {
    /// Checks the values that vary between runs (connections, message size, depth, rate,
    /// source addresses) and fits the client threads to the connections.
    pub fn checked(self) -> Result<RunConfig, Error> {
        self.checked_with_stages(None)
    }

    /// [`checked`](Self::checked), and `--stages` against the rest (`rate_given`: the
    /// `--rate` on the command line too, if any).
    pub fn checked_with_stages(mut self, rate_given: Option<&str>) -> Result<RunConfig, Error> {
        self.check_stages(rate_given)?;
        self.check_sizes()?;
        self.check_udp()?;
        self.check_engine()?;
        self.check_open_loop()?;
        self.check_bind()?;
        self.check_placement()?;
        self.threads = self.threads.min(self.my_conns());
        Ok(self)
    }

    /// Connections, message size and depth within their bounds.
    fn check_sizes(&self) -> Result<(), Error> {
        if !(1..=MAX_CONNS).contains(&self.conns) {
            return Err(invalid(
                "--conns",
                self.conns,
                format!("must be between 1 and {MAX_CONNS}"),
            ));
        }
        if !(1..=MAX_MSG_SIZE).contains(&self.msg_size) {
            return Err(invalid(
                "--msg-size",
                self.msg_size,
                format!("must be between 1 and {MAX_MSG_SIZE} bytes"),
            ));
        }
        if !(1..=MAX_DEPTH).contains(&self.depth) {
            return Err(invalid(
                "--depth",
                self.depth,
                format!("must be between 1 and {MAX_DEPTH}"),
            ));
        }
        Ok(())
    }

    /// Over UDP: no reset to close with, and a message fits one datagram. Over SEQPACKET a
    /// message is one packet, which a reader takes whole or truncates: it must fit the
    /// client's read buffer, and a spawned model's (uring's provided buffers are 4 KiB).
    fn check_udp(&self) -> Result<(), Error> {
        if self.transport == SockKind::SeqPacket {
            let (max, whose) = match self.target {
                TargetSpec::Model(_) => (4096, "the models' smallest read buffer (uring's provided buffers)"),
                TargetSpec::Addr(_) => (64 * 1024, "loadgen's read buffer"),
            };
            if self.msg_size > max {
                return Err(invalid(
                    "--msg-size",
                    self.msg_size,
                    format!("over seqpacket a message is one packet, read whole or cut: at most {max} bytes, {whose}"),
                ));
            }
        }
        if self.is_datagram() && self.close == CloseMode::Rst {
            return Err(invalid(
                "--close",
                "rst",
                "resets a TCP connection; a datagram socket (UDP, ICMP) has no connection to reset (leave --close out)",
            ));
        }
        if self.is_datagram() {
            let v6 = matches!(&self.target, TargetSpec::Addr(a) if a.socket_addr().is_some_and(|a| a.is_ipv6()));
            let max = MAX_UDP_PAYLOAD_V4 + if v6 { 20 } else { 0 } - self.wire_prefix();
            let header = crate::measure::wire::HEADER;
            if !(header..=max).contains(&self.msg_size) {
                return Err(invalid(
                    "--msg-size",
                    self.msg_size,
                    format!(
                        "over {} a message is one datagram: between {header} bytes (its header: sequence \
                         number, send time, connection id) and {max} bytes",
                        if self.is_udp() { "UDP" } else { "ICMP" }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// io_uring: available on this kernel.
    fn check_engine(&self) -> Result<(), Error> {
        // The kernel stamps what arrives from the network stack; a Unix socket's data
        // never passes through it, so the flag would silently give nothing.
        if self.rx_timestamps && matches!(self.transport, SockKind::Unix | SockKind::SeqPacket) {
            return Err(invalid(
                "--rx-timestamps",
                "on",
                "the kernel stamps TCP and UDP receives only; a Unix socket has none (leave it out over unix)",
            ));
        }
        if self.engine == Engine::Uring {
            if let Err(e) = kit::ring::available() {
                return Err(Error::CannotRun(format!("--engine uring: {e}")));
            }
        }
        Ok(())
    }

    /// Poisson arrivals need a rate; one open loop at a time.
    fn check_open_loop(&self) -> Result<(), Error> {
        if self.arrivals == crate::measure::schedule::Arrival::Poisson && self.rate.is_none() && self.search.is_none() {
            return Err(invalid(
                "--arrivals",
                "poisson",
                "spaces an open loop's sends; add --rate R (messages per second in total)",
            ));
        }
        if let Some(r) = self.rate {
            check_rate(r, &r.to_string())?;
            if let Churn::ConnRate { rate, .. } = self.churn {
                return Err(invalid(
                    "--conn-rate",
                    rate,
                    "cannot be combined with --rate: one open loop at a time (each new connection's round trips run closed loop)",
                ));
            }
        }
        Ok(())
    }

    /// Every `--bind` address can reach the target.
    fn check_bind(&self) -> Result<(), Error> {
        let target = &self.target;
        let family_ok = |ip: &IpAddr| match target {
            TargetSpec::Addr(ListenAddr::Tcp(t) | ListenAddr::Udp(t)) => ip.is_ipv4() == t.is_ipv4(),
            TargetSpec::Addr(ListenAddr::Icmp(t)) => ip.is_ipv4() == t.is_ipv4(),
            TargetSpec::Addr(ListenAddr::Unix(_) | ListenAddr::SeqPacket(_)) => false,
            // Spawned servers listen on 127.0.0.1 (or a Unix socket).
            TargetSpec::Model(_) => ip.is_ipv4() && !matches!(self.transport, SockKind::Unix | SockKind::SeqPacket),
        };
        if let Some(bad) = self.bind.iter().find(|ip| !family_ok(ip)) {
            let list: Vec<String> = self.bind.iter().map(IpAddr::to_string).collect();
            return Err(invalid(
                "--bind",
                list.join(","),
                format!("{bad} cannot reach the target (other address family, or a Unix socket)"),
            ));
        }
        Ok(())
    }

    /// The server's size and processes, and this shard's share.
    fn check_placement(&self) -> Result<(), Error> {
        if let (TargetSpec::Model(Model::ThreadPool), Some(n)) = (&self.target, self.server_threads) {
            let budget = servers::thread_budget();
            if u64::from(n) > budget.threads {
                return Err(invalid(
                    "--server-workers",
                    n,
                    format!("a pool that large would exceed this machine's thread budget of {budget}"),
                ));
            }
        }
        if self.server_procs > 1 && matches!(self.target, TargetSpec::Addr(_)) {
            return Err(invalid(
                "--server-procs",
                self.server_procs,
                "only applies with --target",
            ));
        }
        if self.shard.count > 1 && self.start_at.is_none() {
            return Err(invalid(
                "--shard",
                self.shard,
                "a run in several shards needs --start-at TIME, the same on every shard",
            ));
        }
        if self.my_conns() == 0 {
            return Err(invalid(
                "--shard",
                self.shard,
                format!("gets none of the {} connections", self.conns),
            ));
        }
        Ok(())
    }
}
