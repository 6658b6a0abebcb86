//! `loadgen agent`: serves the server host's costs ([`crate::scale::agent`]) until stopped.

use crate::cli::AgentArgs;
use crate::error::flag_error;
use crate::scale::agent::{self, AgentConfig};

/// `loadgen agent`.
pub(super) fn run(a: &AgentArgs) -> anyhow::Result<u8> {
    let listen: std::net::SocketAddr = a
        .listen
        .parse()
        .map_err(|_| flag_error("--listen", &a.listen, "expected IP:PORT, e.g. 127.0.0.1:9464"))?;
    if !listen.ip().is_loopback() && !a.allow_remote {
        return Err(flag_error(
            "--listen",
            &a.listen,
            "is not loopback: the metrics would reach the network; add --allow-remote (and --token FILE) to mean it",
        )
        .into());
    }
    let token = a
        .token
        .as_ref()
        .map(|p| crate::config::token::read_token("--token", p))
        .transpose()?;
    agent::serve(&AgentConfig {
        listen,
        token,
        port: a.port,
    })?;
    Ok(0)
}
