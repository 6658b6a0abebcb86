//! `loadgen agent`: a small read-only service on the server's host that reports what the
//! server costs, in the Prometheus text exposition format (so Prometheus and Grafana can
//! read it too). Its client, which loadgen uses with `--agent ADDR`, is `run::remote`.
//!
//! Crates, and why: `hyper` serves HTTP (on one thread, a current-thread tokio runtime:
//! it parses the requests, not us, and bounds a request's head in size and time, which
//! `tiny_http`, used before, could not: an endless header line grew its memory);
//! `prometheus-client` (the Prometheus project's own Rust client) encodes the
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

use crate::os::proc::ProcSample;

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
        if let Some(b) = crate::os::listener::backlog_on_port(port) {
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
    let listener = crate::os::proc::find_listener(&addr)?;
    crate::os::proc::sample_exact(listener.pid)
}

/// The host's CPU seconds by mode, over all CPUs.
fn host_cpu() -> Option<Vec<(&'static str, f64)>> {
    use procfs::CurrentSI;
    let t = procfs::KernelStats::current().ok()?.total;
    let hz = crate::os::sys::clock_ticks_per_sec();
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

/// Connections served at once. A new one beyond it (or beyond [`MAX_PER_PEER`]) takes the
/// slot of the connection idle longest: clients that hold a connection without sending a
/// request (a slow-client flood) cannot keep out one that asks at once, such as loadgen's
/// own scrape.
const MAX_CONNECTIONS: usize = 32;
/// Connections one peer address holds at once; beyond it, its own idlest gives way.
const MAX_PER_PEER: usize = 16;
/// The most a request's line and headers may take: hyper answers 431 beyond it (an endless
/// header line must not grow the agent's memory).
const MAX_HEAD: usize = 16 * 1024;
/// A request's head must arrive within this (a client that sends it byte by byte, or
/// never, holds one of the connections for no longer).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer, whatever it does.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Requests answered, on average, per second (bursts of [`BURST`]): a scrape costs a walk
/// over /proc, and a flood must not load the host whose cost is being measured.
/// Beyond that: 429.
const RATE: f64 = 20.0;
/// The burst [`RATE`] allows.
const BURST: f64 = 40.0;

/// The agent's token bucket over every connection's requests.
struct Bucket {
    tokens: f64,
    refilled: std::time::Instant,
}

impl Bucket {
    /// Takes a token if there is one.
    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * RATE).min(BURST);
        self.refilled = now;
        let ok = self.tokens >= 1.0;
        if ok {
            self.tokens -= 1.0;
        }
        ok
    }
}

/// Serves until the process is stopped; prints `listening ADDR` once bound. One thread
/// (a current-thread tokio runtime) reads every connection concurrently with hyper, which
/// bounds a request's head in size and time, so no client can stall the others or grow
/// the agent's memory.
pub fn serve(cfg: &AgentConfig) -> anyhow::Result<()> {
    use anyhow::Context;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the agent's runtime")?;
    let cfg = cfg.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let bound = listener.local_addr().map_or(cfg.listen, |a| a);
        println!("listening {bound}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        accept_loop(
            listener,
            std::sync::Arc::new(move |request: &Request| answer(&cfg, request)),
        )
        .await
    })
}

/// A request as hyper hands it over.
type Request = hyper::Request<hyper::body::Incoming>;
/// What answers a request: its status and body.
type Answer = std::sync::Arc<dyn Fn(&Request) -> (u16, String) + Send + Sync>;

/// `--metrics-listen`: serves `snapshot()` at `GET /metrics` from a thread of its own, with
/// the agent's bounds (connections, head size and time, rate); returns the address bound.
pub fn spawn_metrics(listen: SocketAddr, snapshot: fn() -> String) -> anyhow::Result<SocketAddr> {
    use anyhow::Context;
    let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<SocketAddr>>();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return drop(tx.send(Err(e.into()))),
            };
            runtime.block_on(async move {
                match tokio::net::TcpListener::bind(listen).await {
                    Ok(listener) => {
                        let _ = tx.send(Ok(listener.local_addr().unwrap_or(listen)));
                        let answer: Answer = std::sync::Arc::new(move |request: &Request| {
                            if request.method() != hyper::Method::GET {
                                (405, "only GET\n".into())
                            } else if request.uri().path() != "/metrics" {
                                (404, "only /metrics\n".into())
                            } else {
                                (200, snapshot())
                            }
                        });
                        let _ = accept_loop(listener, answer).await;
                    }
                    Err(e) => drop(tx.send(Err(anyhow::Error::new(e).context(format!("cannot listen on {listen}"))))),
                }
            })
        })
        .context("cannot start the metrics thread")?;
    rx.recv().context("the metrics thread ended before it listened")?
}

/// A connection being served: its peer, when it last asked anything (ms since the loop
/// started), and how to end it.
struct Open {
    id: u64,
    peer: std::net::IpAddr,
    active_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    abort: tokio::task::AbortHandle,
}

/// The connections being served.
type Slots = std::sync::Arc<std::sync::Mutex<Vec<Open>>>;

/// Makes room for a connection from `peer`: when every slot, or every slot `peer` may hold,
/// is taken, the connection idle longest (of `peer`'s, when it is at its own cap) is ended.
fn make_room(slots: &Slots, peer: std::net::IpAddr) {
    let Ok(mut open) = slots.lock() else { return };
    let own = open.iter().filter(|o| o.peer == peer).count();
    if open.len() < MAX_CONNECTIONS && own < MAX_PER_PEER {
        return;
    }
    let at_own_cap = own >= MAX_PER_PEER;
    let idlest = open
        .iter()
        .enumerate()
        .filter(|(_, o)| !at_own_cap || o.peer == peer)
        .min_by_key(|(_, o)| o.active_ms.load(std::sync::atomic::Ordering::Relaxed))
        .map(|(i, _)| i);
    if let Some(i) = idlest {
        open.swap_remove(i).abort.abort();
    }
}

/// Removes its connection from the slots when its task ends (or is aborted).
struct Leave(Slots, u64);

impl Drop for Leave {
    fn drop(&mut self) {
        if let Ok(mut open) = self.0.lock() {
            open.retain(|o| o.id != self.1);
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, answer: Answer) -> anyhow::Result<()> {
    let bucket = std::sync::Arc::new(std::sync::Mutex::new(Bucket {
        tokens: BURST,
        refilled: std::time::Instant::now(),
    }));
    let slots: Slots = std::sync::Arc::default();
    let started = std::time::Instant::now();
    let now_ms = move || started.elapsed().as_millis() as u64;
    for id in 0u64.. {
        let (stream, peer) = match listener.accept().await {
            Ok((stream, peer)) => (stream, peer.ip()),
            // EMFILE or ENFILE (out of descriptors), ECONNABORTED: wait a moment instead
            // of spinning on the error, then accept again.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        make_room(&slots, peer);
        let active_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(now_ms()));
        let (answer, bucket) = (std::sync::Arc::clone(&answer), std::sync::Arc::clone(&bucket));
        let (active, leave) = (
            std::sync::Arc::clone(&active_ms),
            Leave(std::sync::Arc::clone(&slots), id),
        );
        // The lock is held over the spawn: on this one-thread runtime the task cannot run,
        // and end, before it is listed.
        let Ok(mut open) = slots.lock() else { continue };
        let task = tokio::spawn(async move {
            let _leave = leave;
            let service = hyper::service::service_fn(move |request: Request| {
                active.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
                let allowed = bucket.lock().map_or(true, |mut b| b.take());
                let (status, body) = if allowed {
                    answer(&request)
                } else {
                    (429, "too many requests: at most 20 a second\n".into())
                };
                let response = hyper::Response::builder()
                    .status(status)
                    .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)));
                async move { response }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .max_buf_size(MAX_HEAD)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // A client gone, too slow or too large costs only its own connection.
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
        });
        open.push(Open {
            id,
            peer,
            active_ms,
            abort: task.abort_handle(),
        });
    }
    Ok(())
}

/// The status and body for one request.
fn answer<B>(cfg: &AgentConfig, request: &hyper::Request<B>) -> (u16, String) {
    if request.method() != hyper::Method::GET {
        return (405, "only GET\n".into());
    }
    if let Some(token) = &cfg.token {
        let given = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(format!("Bearer {token}").as_str()) {
            return (401, "a bearer token is required\n".into());
        }
    }
    if request.uri().path() != "/metrics" {
        return (404, "only /metrics\n".into());
    }
    let port = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("port="))
        .map(|p| p.parse::<u16>().map_err(|_| ()))
        .transpose();
    match port {
        Ok(port) => (200, metrics_text(port.or(cfg.port))),
        Err(()) => (400, "port= takes a port number\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::remote::{host_modes, parse};

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
