//! Network namespaces standing in for hosts: a server "host" linked to each client "host"
//! by its own veth pair, addresses from 198.18.0.0/15 (RFC 2544's benchmarking range).
//! Needs root and `ip` (iproute2); [`Hosts::create`] says why not otherwise, so the
//! caller can skip with that message. Everything is deleted on drop.

use std::net::Ipv4Addr;
use std::process::Command;

/// A server namespace and `clients` client namespaces, each linked to the server.
pub struct Hosts {
    /// The server's namespace.
    pub server: String,
    /// The client namespaces, each with the server address it reaches it at.
    pub clients: Vec<(String, Ipv4Addr)>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    crate::run_tool("ip", args).map_err(|e| format!("{e} (needs root and iproute2)"))
}

impl Hosts {
    /// Creates the namespaces and links: client `i` is `198.18.(i+1).2`, and reaches the
    /// server at `198.18.(i+1).1`.
    pub fn create(clients: usize) -> Result<Hosts, String> {
        // Unique per process and per call: tests of one binary run in parallel threads.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("{}n{n}", std::process::id());
        let mut hosts = Hosts {
            server: format!("ebs{tag}"),
            clients: Vec::new(),
        };
        ip(&["netns", "add", &hosts.server])?;
        ip(&["-n", &hosts.server, "link", "set", "lo", "up"])?;
        for i in 0..clients {
            let name = format!("ebc{i}x{tag}");
            ip(&["netns", "add", &name])?;
            hosts
                .clients
                .push((name.clone(), Ipv4Addr::new(198, 18, i as u8 + 1, 1)));
            let (a, b) = (format!("ebv{i}a{tag}"), format!("ebv{i}b{tag}"));
            ip(&[
                "link",
                "add",
                &a,
                "netns",
                &hosts.server,
                "type",
                "veth",
                "peer",
                "name",
                &b,
                "netns",
                &name,
            ])?;
            ip(&[
                "-n",
                &hosts.server,
                "addr",
                "add",
                &format!("198.18.{}.1/24", i + 1),
                "dev",
                &a,
            ])?;
            ip(&["-n", &name, "addr", "add", &format!("198.18.{}.2/24", i + 1), "dev", &b])?;
            ip(&["-n", &hosts.server, "link", "set", &a, "up"])?;
            ip(&["-n", &name, "link", "set", &b, "up"])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    /// `program args...` run inside namespace `ns`.
    pub fn command(ns: &str, program: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of each veth pair, and with it the pair.
        for (name, _) in &self.clients {
            let _ = ip(&["netns", "delete", name]);
        }
        let _ = ip(&["netns", "delete", &self.server]);
    }
}
