//! criterion suites over the echo servers and the load generator's per-message path.
//!
//! Groups:
//! - `round_trip`: one connection, one message in flight, per model x message size. The
//!   server is started and the connection made outside the timed code (`iter_custom`).
//!   Measures the latency of a blocking client's round trip over loopback, i.e. the
//!   server's wake-up and echo path plus the kernel's; not throughput under load.
//! - `throughput`: per model x connection count, one 64 B message on every connection per
//!   iteration (all written, then all read). Measures how a model handles many ready
//!   connections at once; not open-loop latency (use `loadgen --rate` for that).
//! - `hot_path`: the load generator's per-message work without I/O: recording a latency,
//!   filling and checking a payload, computing the next fixed-rate send time. Each must stay
//!   far below the few microseconds a message costs in the kernel.
//!
//! Client and server share the machine's cores; compare models within one run.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use loadgen::measure::payload;
use loadgen::measure::record::new_histogram;
use loadgen::measure::schedule::{Arrival, Profile, Schedule, Stage, ThreadSchedule};
use servers::{start, ListenAddr, Model, ServerConfig, ServerHandle};

/// Message sizes of the round-trip group.
const ROUND_TRIP_SIZES: [usize; 3] = [64, 1024, 16 * 1024];
/// Connection counts of the throughput group.
const THROUGHPUT_CONNS: [usize; 3] = [1, 16, 128];
/// Message size of the throughput group.
const THROUGHPUT_MSG: usize = 64;
/// Time criterion measures each benchmark.
const MEASUREMENT: Duration = Duration::from_secs(2);
/// Warm-up per benchmark.
const WARM_UP: Duration = Duration::from_millis(500);
/// Samples per benchmark.
const SAMPLES: usize = 20;

/// Every model this machine can run: uring only where io_uring is available (else it is
/// skipped, and says why).
fn runnable() -> Vec<Model> {
    Model::ALL
        .into_iter()
        .filter(|&m| match (m, kit::ring::available()) {
            (Model::Uring, Err(e)) => {
                eprintln!("skipping the uring benchmarks: {e}");
                false
            }
            _ => true,
        })
        .collect()
}

fn server(model: Model, conns: usize) -> ServerHandle {
    // The thread pool needs a worker per connection, or the extra connections wait.
    let threads = (model == Model::ThreadPool).then_some(conns.max(4));
    start(
        model,
        &ServerConfig {
            threads,
            ..ServerConfig::default()
        },
    )
    .expect("server starts")
}

fn connect(server: &ServerHandle) -> TcpStream {
    let ListenAddr::Tcp(addr) = server.local_addr() else {
        unreachable!("benches use TCP")
    };
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    group
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP)
        .sample_size(SAMPLES);
    for size in ROUND_TRIP_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for model in runnable() {
            let srv = server(model, 1);
            let mut conn = connect(&srv);
            let msg = vec![0xA5u8; size];
            let mut back = vec![0u8; size];
            group.bench_function(BenchmarkId::new(model.name(), size), |b| {
                b.iter_custom(|iters| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        conn.write_all(&msg).expect("write");
                        conn.read_exact(&mut back).expect("read");
                    }
                    let took = t.elapsed();
                    // Outside the timed part: the echo is the message, byte for byte.
                    assert!(back == msg, "{model} echoed other bytes");
                    took
                })
            });
            drop(conn);
            srv.shutdown().expect("shutdown");
        }
    }
    group.finish();
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput");
    group
        .measurement_time(MEASUREMENT)
        .warm_up_time(WARM_UP)
        .sample_size(SAMPLES);
    for conns in THROUGHPUT_CONNS {
        group.throughput(Throughput::Elements(conns as u64));
        for model in runnable() {
            let srv = server(model, conns);
            let mut clients: Vec<TcpStream> = (0..conns).map(|_| connect(&srv)).collect();
            let msg = [0x5Au8; THROUGHPUT_MSG];
            let mut back = [0u8; THROUGHPUT_MSG];
            group.bench_function(BenchmarkId::new(model.name(), conns), |b| {
                b.iter_custom(|iters| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        for c in clients.iter_mut() {
                            c.write_all(&msg).expect("write");
                        }
                        for c in clients.iter_mut() {
                            c.read_exact(&mut back).expect("read");
                        }
                    }
                    let took = t.elapsed();
                    // Outside the timed part: the last echo is the message, byte for byte.
                    assert!(back == msg, "{model} echoed other bytes");
                    took
                })
            });
            drop(clients);
            srv.shutdown().expect("shutdown");
        }
    }
    group.finish();
}

fn hot_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_path");
    group.measurement_time(MEASUREMENT).warm_up_time(WARM_UP);
    let mut hist = new_histogram();
    let mut v = 1u64;
    group.bench_function("histogram_record", |b| {
        b.iter(|| {
            v = v.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            hist.saturating_record(black_box(v >> 40));
        })
    });
    let mut buf = [0u8; 64];
    let mut seq = 0u64;
    group.bench_function("payload_fill_verify_64B", |b| {
        b.iter(|| {
            seq += 1;
            let key = payload::key(black_box(7), seq);
            payload::fill(key, 0, &mut buf);
            assert!(payload::verify(key, 0, black_box(&buf)));
        })
    });
    // `--stages`: 64 ramps warp every intended time (a search over the stages and a root).
    let stages: Vec<Stage> = (0..64)
        .map(|i| Stage {
            duration: std::time::Duration::from_secs(1),
            target: if i % 2 == 0 { 150_000.0 } else { 50_000.0 },
            step: false,
            spec: String::new(),
        })
        .collect();
    let profile = std::sync::Arc::new(Profile::new(stages));
    for (arrivals, profile, name) in [
        (Arrival::Uniform, None, "uniform"),
        (Arrival::Poisson, None, "poisson"),
        (Arrival::Uniform, Some(profile.clone()), "uniform_stages"),
    ] {
        let schedule = Schedule::Open {
            rate: profile.as_ref().map_or(100_000.0, |p| p.mean()),
            conns: 1000,
            arrivals,
            seed: 1,
            profile,
        };
        // A thread's walk over 500 connections: a heap step and an intended time per send.
        let mut walk = ThreadSchedule::new(schedule, (0..1000).step_by(2).collect());
        group.bench_function(format!("schedule_next_send_{name}"), |b| {
            b.iter(|| {
                let next = walk.peek();
                walk.advance();
                black_box(next)
            })
        });
    }
    group.finish();
}

/// What `--rx-timestamps` costs a read: a 64 B message written and read back on a loopback
/// TCP pair with `read(2)`, with `recvmsg` (room for control data, no stamps yet), then with
/// `recvmsg` taking the kernel's receive stamp and the realtime clock (the kernel stamping
/// every packet from then on included).
fn rx_timestamps(c: &mut Criterion) {
    use std::os::fd::AsRawFd;
    let mut group = c.benchmark_group("rx_timestamps");
    group.measurement_time(MEASUREMENT).warm_up_time(WARM_UP);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut tx = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut rx, _) = listener.accept().unwrap();
    tx.set_nodelay(true).unwrap();
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    group.bench_function("write_read_64B", |b| {
        b.iter(|| {
            tx.write_all(&msg).unwrap();
            rx.read_exact(&mut buf).unwrap();
        })
    });
    // recvmsg with room for control data, before any socket asks for stamps.
    group.bench_function("write_recvmsg_64B", |b| {
        b.iter(|| {
            tx.write_all(&msg).unwrap();
            black_box(loadgen::os::rxstamp::recv(rx.as_raw_fd(), &mut buf).unwrap())
        })
    });
    loadgen::os::rxstamp::enable(rx.as_raw_fd()).unwrap();
    group.bench_function("write_recvmsg_stamped_64B", |b| {
        b.iter(|| {
            tx.write_all(&msg).unwrap();
            let (n, at) = loadgen::os::rxstamp::recv(rx.as_raw_fd(), &mut buf).unwrap();
            black_box((n, loadgen::os::rxstamp::realtime_ns().saturating_sub(at.unwrap_or(0))))
        })
    });
    group.finish();
}

// The macro generates an undocumented pub fn.
#[allow(missing_docs)]
mod groups {
    use super::*;
    criterion_group!(benches, round_trip, throughput, hot_path, rx_timestamps);
}
criterion_main!(groups::benches);
