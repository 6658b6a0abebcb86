//! `loadgen agent`: a small read-only service on the server's host that reports what the
//! server costs, in the Prometheus text exposition format (so Prometheus and Grafana can
//! read it too), and the client side that loadgen uses with `--agent ADDR`.
//!
//! Crates, and why: `tiny_http` serves HTTP (a well-kept synchronous server: one request
//! at a time is all an agent read twice per run needs, and it parses the requests, not
//! us); `prometheus-client` (the Prometheus project's own Rust client) encodes the
//! exposition format; `ureq` (blocking, small) reads it, and `prometheus-parse` parses it.
//!
//! Metrics, named as node_exporter and the client libraries name them:
//! - per server process, found by the port it listens on (`?port=N`, or `--port`):
//!   `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//!   `process_resident_memory_max_bytes` (its peak, VmHWM), `process_threads`,
//!   `process_open_fds`, labelled `port`; and its listening sockets (sock_diag, as
//!   `ss -ltn` shows them): `listen_backlog` (the backlog its listen() got),
//!   `listen_queue_length` (connections waiting to be accepted), `listen_sockets`;
//! - for the host: `node_cpu_seconds_total{mode}` (user, nice, system, idle, iowait, irq,
//!   softirq, steal), summed over the CPUs.
//!
//! Safety: it answers `GET /metrics` only (anything else is 404, other methods 405), reads
//! nothing but `/proc` figures of the process that listens on the asked port, never a
//! command line or an environment, and with `--token FILE` wants `Authorization: Bearer`
//! that token (401 otherwise).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::proc::ProcSample;
use crate::report::HostCpu;

/// The agent's default address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabel {
    port: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabel {
    mode: String,
}

/// The exposition text for the server on `port` (its metrics left out when nothing on
/// this host listens there) and for the host.
pub fn metrics_text(port: Option<u16>) -> String {
    let mut registry = Registry::default();
    if let Some(port) = port {
        if let Some(s) = server_sample(port) {
            let label = PortLabel { port };
            let cpu = Family::<PortLabel, Counter<f64, AtomicU64>>::default();
            cpu.get_or_create(&label).inc_by(s.cpu_s);
            registry.register(
                "process_cpu_seconds",
                "CPU time of the server process, user and system",
                cpu,
            );
            let gauge = |v: u64| {
                let g = Family::<PortLabel, Gauge>::default();
                g.get_or_create(&label).set(v as i64);
                g
            };
            registry.register(
                "process_resident_memory_bytes",
                "Resident memory of the server process",
                gauge(s.rss_kib * 1024),
            );
            registry.register(
                "process_resident_memory_max_bytes",
                "Peak resident memory of the server process (VmHWM)",
                gauge(s.peak_rss_kib * 1024),
            );
            registry.register("process_threads", "Threads of the server process", gauge(s.threads));
            registry.register(
                "process_open_fds",
                "Open descriptors of the server process",
                gauge(s.fds),
            );
        }
        if let Some(b) = crate::listener::backlog_on_port(port) {
            let gauge = |v: u32| {
                let g = Family::<PortLabel, Gauge>::default();
                g.get_or_create(&PortLabel { port }).set(i64::from(v));
                g
            };
            registry.register(
                "listen_backlog",
                "The smallest listen() backlog of the sockets listening on the port (sock_diag)",
                gauge(b.max),
            );
            registry.register(
                "listen_queue_length",
                "Connections waiting in the accept queues of the port's listening sockets",
                gauge(b.queued),
            );
            registry.register("listen_sockets", "Sockets listening on the port", gauge(b.listeners));
        }
    }
    if let Some(modes) = host_cpu() {
        let family = Family::<ModeLabel, Counter<f64, AtomicU64>>::default();
        for (mode, secs) in modes {
            family.get_or_create(&ModeLabel { mode: mode.to_string() }).inc_by(secs);
        }
        registry.register(
            "node_cpu_seconds",
            "CPU seconds of the host by mode, summed over its CPUs",
            family,
        );
    }
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

/// The reading of the server process listening on `port` of this host.
fn server_sample(port: u16) -> Option<ProcSample> {
    let addr = servers::ListenAddr::Tcp(SocketAddr::from(([0, 0, 0, 0], port)));
    // 0.0.0.0: the listener on that port whatever address it is bound to.
    let listener = crate::proc::find_listener(&addr)?;
    crate::proc::sample(listener.pid)
}

/// The host's CPU seconds by mode, over all CPUs.
fn host_cpu() -> Option<Vec<(&'static str, f64)>> {
    use procfs::CurrentSI;
    let t = procfs::KernelStats::current().ok()?.total;
    let hz = crate::sys::clock_ticks_per_sec();
    let s = |v: u64| v as f64 / hz;
    Some(vec![
        ("user", s(t.user)),
        ("nice", s(t.nice)),
        ("system", s(t.system)),
        ("idle", s(t.idle)),
        ("iowait", s(t.iowait.unwrap_or(0))),
        ("irq", s(t.irq.unwrap_or(0))),
        ("softirq", s(t.softirq.unwrap_or(0))),
        ("steal", s(t.steal.unwrap_or(0))),
    ])
}

/// The agent's settings, checked.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The bearer token requests must carry, if any.
    pub token: Option<String>,
    /// The port whose listener is reported when a request names none.
    pub port: Option<u16>,
}

/// Serves until the process is stopped; prints `listening ADDR` once bound.
pub fn serve(cfg: &AgentConfig) -> anyhow::Result<()> {
    let server =
        tiny_http::Server::http(cfg.listen).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let bound = server
        .server_addr()
        .to_ip()
        .map_or(cfg.listen.to_string(), |a| a.to_string());
    println!("listening {bound}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // Requests are answered one at a time, at most RATE a second on average (bursts of
    // BURST): a scrape costs a walk over /proc, and a flood must not load the host whose
    // cost is being measured. Beyond that: 429.
    const RATE: f64 = 20.0;
    const BURST: f64 = 40.0;
    let (mut tokens, mut refilled) = (BURST, std::time::Instant::now());
    for request in server.incoming_requests() {
        let now = std::time::Instant::now();
        tokens = (tokens + now.duration_since(refilled).as_secs_f64() * RATE).min(BURST);
        refilled = now;
        let (status, body) = if tokens >= 1.0 {
            tokens -= 1.0;
            answer(cfg, &request)
        } else {
            (429, "too many requests: at most 20 a second\n".into())
        };
        let response = tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(
                tiny_http::Header::from_bytes("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    .expect("a valid static header"),
            );
        // A client gone before the answer costs only its own request.
        let _ = request.respond(response);
    }
    Ok(())
}

/// The status and body for one request.
fn answer(cfg: &AgentConfig, request: &tiny_http::Request) -> (u16, String) {
    if *request.method() != tiny_http::Method::Get {
        return (405, "only GET\n".into());
    }
    if let Some(token) = &cfg.token {
        let given = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str().to_string());
        if given.as_deref() != Some(format!("Bearer {token}").as_str()) {
            return (401, "a bearer token is required\n".into());
        }
    }
    let url = request.url();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path != "/metrics" {
        return (404, "only /metrics\n".into());
    }
    let port = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("port="))
        .map(|p| p.parse::<u16>().map_err(|_| ()))
        .transpose();
    match port {
        Ok(port) => (200, metrics_text(port.or(cfg.port))),
        Err(()) => (400, "port= takes a port number\n".into()),
    }
}

/// Reads the bearer token in `path`, given with `flag`: trimmed, and refused when empty (an
/// empty token would let any request in).
pub(crate) fn read_token(flag: &str, path: &std::path::Path) -> Result<String, crate::error::Error> {
    let input = |why: String| crate::error::Error::Input(format!("{flag} {}: {why}", path.display()));
    let token = std::fs::read_to_string(path).map_err(|e| input(e.to_string()))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(input("the file is empty: write the token in it".to_string()));
    }
    Ok(token.to_string())
}

/// Why an agent could not be read.
#[derive(Debug)]
pub enum AgentError {
    /// It answered 401: the token is missing or wrong.
    Unauthorized,
    /// It could not be reached or answered something else.
    Unreachable(String),
    /// It answered, but nothing listens on the server's port on its host.
    NoServer,
}

/// Reads the agent at `addr` for the server on `port`: its process reading.
pub(crate) fn read(addr: &str, port: u16, token: Option<&str>) -> Result<ProcSample, AgentError> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
    let mut req = agent.get(&format!("http://{addr}/metrics?port={port}"));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let text = match req.call() {
        Ok(r) => r.into_string().map_err(|e| AgentError::Unreachable(e.to_string()))?,
        Err(ureq::Error::Status(401, _)) => return Err(AgentError::Unauthorized),
        Err(e) => return Err(AgentError::Unreachable(e.to_string())),
    };
    parse(&text).ok_or(AgentError::NoServer)
}

/// The server process's reading from exposition text.
pub(crate) fn parse(text: &str) -> Option<ProcSample> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).ok()?;
    let value = |name: &str| {
        scrape.samples.iter().find(|s| s.metric == name).map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
    };
    Some(ProcSample {
        cpu_s: value("process_cpu_seconds_total")?,
        peak_rss_kib: (value("process_resident_memory_max_bytes")? / 1024.0) as u64,
        threads: value("process_threads")? as u64,
        rss_kib: (value("process_resident_memory_bytes").unwrap_or(0.0) / 1024.0) as u64,
        fds: value("process_open_fds").unwrap_or(0.0) as u64,
        host: host_modes(&scrape),
        listen: match (
            value("listen_backlog"),
            value("listen_queue_length"),
            value("listen_sockets"),
        ) {
            (Some(max), Some(queued), Some(n)) => Some(crate::listener::Backlog {
                listeners: n as u32,
                max: max as u32,
                queued: queued as u32,
            }),
            _ => None,
        },
    })
}

/// The host's CPU by mode from the `node_cpu_seconds_total{mode}` samples, when all the
/// modes it sums are there.
fn host_modes(scrape: &prometheus_parse::Scrape) -> Option<HostCpu> {
    let mode = |m: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == "node_cpu_seconds_total" && s.labels.get("mode") == Some(m))
            .and_then(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => Some(v),
                _ => None,
            })
    };
    Some(HostCpu {
        user_s: mode("user")? + mode("nice")?,
        system_s: mode("system")?,
        softirq_s: mode("softirq")?,
        irq_s: mode("irq")?,
        idle_s: mode("idle")? + mode("iowait")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_metrics_parse_and_a_missing_server_is_none() {
        let text = metrics_text(Some(1)); // nothing listens on port 1
        assert!(text.contains("node_cpu_seconds_total{mode=\"user\"}"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(parse(&text).is_none());
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        let host = host_modes(&scrape).unwrap();
        assert!(host.user_s > 0.0 && host.idle_s > 0.0, "{host:?}");
    }
}
