//! Random packet loss on loopback with nftables (no `tc netem` here): a table of this
//! test's own that drops a share of the packets to one TCP port, removed on drop. Needs
//! root and the `nft` command; [`Loss::to_port`] says why not otherwise, so the caller can
//! skip with that message.

use std::sync::atomic::{AtomicU32, Ordering};

/// A loss rule in force until dropped.
pub struct Loss {
    table: String,
}

fn nft(args: &[&str]) -> Result<(), String> {
    crate::run_tool("nft", args).map_err(|e| format!("{e} (needs root and nftables)"))
}

impl Loss {
    /// Drops `percent` % (at random) of the TCP packets sent to `port` on this machine.
    pub fn to_port(port: u16, percent: u32) -> Result<Loss, String> {
        Loss::of("tcp", port, percent)
    }

    /// Drops `percent` % (at random) of the UDP datagrams sent to `port` on this machine.
    pub fn to_udp_port(port: u16, percent: u32) -> Result<Loss, String> {
        Loss::of("udp", port, percent)
    }

    fn of(protocol: &str, port: u16, percent: u32) -> Result<Loss, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let table = format!(
            "echo_bench_loss_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        nft(&["add", "table", "inet", &table])?;
        let loss = Loss { table };
        nft(&[
            "add",
            "chain",
            "inet",
            &loss.table,
            "out",
            "{ type filter hook output priority 0; policy accept; }",
        ])?;
        nft(&[
            "add",
            "rule",
            "inet",
            &loss.table,
            "out",
            protocol,
            "dport",
            &port.to_string(),
            "numgen",
            "random",
            "mod",
            "100",
            "<",
            &percent.to_string(),
            "drop",
        ])?;
        Ok(loss)
    }
}

impl Drop for Loss {
    fn drop(&mut self) {
        // Best effort: the table is this test's own; a failure leaves it for the next boot.
        let _ = nft(&["delete", "table", "inet", &self.table]);
    }
}
