//! The client of `loadgen agent`: reads the server's process figures and the host's CPU from
//! an agent on the server's host, in the Prometheus text format (`ureq` reads it,
//! `prometheus-parse` parses it). Built without the `agent` feature, `--agent` is refused
//! before a run and [`read`] answers that it cannot.

#[cfg(feature = "agent")]
use std::time::Duration;

#[cfg(feature = "agent")]
use crate::os::proc::HostCpu;
use crate::os::proc::ProcSample;

/// Why an agent could not be read.
#[derive(Debug)]
#[cfg_attr(not(feature = "agent"), allow(dead_code))] // only a real client meets them all
pub enum AgentError {
    /// It answered 401: the token is missing or wrong.
    Unauthorized,
    /// It could not be reached or answered something else.
    Unreachable(String),
    /// It answered, but nothing listens on the server's port on its host.
    NoServer,
}

/// Reads the agent at `addr` for the server on `port`: its process reading.
#[cfg(feature = "agent")]
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
#[cfg(feature = "agent")]
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
            (Some(max), Some(queued), Some(n)) => Some(crate::os::listener::Backlog {
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
#[cfg(feature = "agent")]
pub(crate) fn host_modes(scrape: &prometheus_parse::Scrape) -> Option<HostCpu> {
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

/// Built without the `agent` feature: never reached (`--agent` is refused), and says why.
#[cfg(not(feature = "agent"))]
pub(crate) fn read(_addr: &str, _port: u16, _token: Option<&str>) -> Result<ProcSample, AgentError> {
    Err(AgentError::Unreachable(
        "this loadgen was built without the 'agent' feature".into(),
    ))
}
