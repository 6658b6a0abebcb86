//! The conformance suite: every behaviour test, run against every server model, over TCP
//! and Unix streams here and over UDP in `conformance/udp.rs`.
//!
//! Each test is a function taking a [`Model`]; the `conformance!` macro at the bottom expands
//! every test once per model, so a new model gets the whole suite by adding one line there
//! (and `every_model_is_covered` fails until it does).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use servers::{start, ListenAddr, Model, ServerConfig, ServerHandle};
use testkit::ServerProcess;

#[path = "conformance/udp.rs"]
mod udp;
use udp::*;

const IO_TIMEOUT: Duration = Duration::from_secs(20);

fn start_model(model: Model, addr: &str, threads: Option<usize>) -> ServerHandle {
    let config = ServerConfig {
        addr: addr.parse().unwrap(),
        threads,
        ..ServerConfig::default()
    };
    start(model, &config).unwrap_or_else(|e| panic!("{model}: start failed: {e}"))
}

fn tcp_addr(server: &ServerHandle) -> std::net::SocketAddr {
    match server.local_addr() {
        ListenAddr::Tcp(a) => *a,
        other => panic!("not a TCP address: {other}"),
    }
}

fn connect(server: &ServerHandle) -> TcpStream {
    let s = TcpStream::connect(tcp_addr(server)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

/// Writes `payload` from a second thread while reading the echo here, so large payloads
/// cannot deadlock on full socket buffers; returns what came back.
fn echo_through<S: Read + Write + Send + 'static>(stream: S, writer: S, payload: Vec<u8>) -> Vec<u8> {
    let len = payload.len();
    let w = std::thread::spawn(move || {
        let mut writer = writer;
        writer.write_all(&payload).unwrap();
        payload
    });
    let mut stream = stream;
    let mut back = vec![0u8; len];
    stream.read_exact(&mut back).unwrap();
    w.join().unwrap();
    back
}

// ---------------------------------------------------------------------------------------
// The tests. Each takes the model under test.
// ---------------------------------------------------------------------------------------

fn echoes_random_payloads_byte_exact(model: Model) {
    let server = start_model(model, "127.0.0.1:0", None);
    for (i, size) in [1, 2, 63, 64, 1000, 4096, 65_537, 1 << 20, 8 << 20]
        .into_iter()
        .enumerate()
    {
        let s = connect(&server);
        let payload = random_bytes(size, i as u64);
        let back = echo_through(s.try_clone().unwrap(), s, payload.clone());
        assert!(back == payload, "{model}: {size} B payload came back different");
    }
    server.shutdown().unwrap();
}

fn many_messages_on_one_connection(model: Model) {
    let server = start_model(model, "127.0.0.1:0", None);
    let mut s = connect(&server);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut back = vec![0u8; 4096];
    for i in 0..5_000u64 {
        let msg = random_bytes(rng.usize(1..=4096), i);
        s.write_all(&msg).unwrap();
        s.read_exact(&mut back[..msg.len()]).unwrap();
        assert!(back[..msg.len()] == msg[..], "{model}: message {i} differs");
    }
    server.shutdown().unwrap();
}

/// A server with per-message work (`cpu:10us+wait:100us`, 64 B messages).
fn start_worked(model: Model, spec: &str) -> ServerHandle {
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        threads: (model == Model::ThreadPool).then_some(64),
        work: Some(std::sync::Arc::new(servers::work::Work {
            spec: spec.parse().unwrap(),
            seed: 1,
            msg_size: 64,
        })),
        ..ServerConfig::default()
    };
    start(model, &config).unwrap_or_else(|e| panic!("{model}: start failed: {e}"))
}

/// With work, every byte still comes back, in order: messages pipelined many deep on one
/// connection (in one write, so reads split them anywhere), a partial message, and many
/// connections at once whose waits overlap.
fn work_keeps_bytes_and_order_under_pipelining(model: Model) {
    let server = start_worked(model, "cpu:10us+wait:100us");
    // 200 messages of 64 B in one write, then half a message and its rest.
    let s = connect(&server);
    let payload = random_bytes(200 * 64 + 32, 99);
    let back = echo_through(s.try_clone().unwrap(), s, payload.clone());
    assert!(back == payload, "{model}: pipelined messages came back different");
    // 20 connections, 10 messages each in flight at once.
    let mut conns: Vec<TcpStream> = (0..20).map(|_| connect(&server)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(&random_bytes(640, 1000 + i as u64)).unwrap();
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let mut back = vec![0u8; 640];
        c.read_exact(&mut back).unwrap();
        assert!(back == random_bytes(640, 1000 + i as u64), "{model}: conn {i} differs");
    }
    server.shutdown().unwrap();
}

/// A wait holds only its own connection in the event-driven models (the others are
/// served meanwhile), and every connection's round trip takes at least the wait.
fn a_wait_delays_its_message_by_at_least_the_wait(model: Model) {
    let server = start_worked(model, "wait:20ms");
    let mut s = connect(&server);
    let msg = random_bytes(64, 5);
    let t = std::time::Instant::now();
    s.write_all(&msg).unwrap();
    let mut back = [0u8; 64];
    s.read_exact(&mut back).unwrap();
    let took = t.elapsed();
    assert!(back[..] == msg[..]);
    assert!(
        took >= Duration::from_millis(20),
        "{model}: echoed after {took:?}, before its 20 ms wait"
    );
    assert!(took < Duration::from_secs(2), "{model}: {took:?}");
    server.shutdown().unwrap();
}

fn serves_500_concurrent_connections(model: Model) {
    let server = start_model(
        model,
        "127.0.0.1:0",
        Some(if model == Model::ThreadPool { 500 } else { 2 }),
    );
    let mut conns: Vec<TcpStream> = (0..500).map(|_| connect(&server)).collect();
    for round in 0..3u64 {
        // Every connection has a message in flight at once.
        for (i, c) in conns.iter_mut().enumerate() {
            c.write_all(&random_bytes(100, round * 1000 + i as u64)).unwrap();
        }
        for (i, c) in conns.iter_mut().enumerate() {
            let mut back = [0u8; 100];
            c.read_exact(&mut back).unwrap();
            assert_eq!(
                back[..],
                random_bytes(100, round * 1000 + i as u64)[..],
                "{model}: conn {i} round {round}"
            );
        }
    }
    server.shutdown().unwrap();
}

fn half_close_returns_everything_then_eof(model: Model) {
    let server = start_model(model, "127.0.0.1:0", None);
    let mut s = connect(&server);
    let payload = random_bytes(300_000, 3);
    let mut writer = s.try_clone().unwrap();
    let sent = payload.clone();
    let w = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap(); // returns only at EOF
    w.join().unwrap();
    assert_eq!(back.len(), payload.len(), "{model}");
    assert!(back == payload, "{model}: half-closed echo differs");
    server.shutdown().unwrap();
}

fn data_and_fin_together_are_both_seen(model: Model) {
    // A small message and the FIN often arrive in one readiness event: the server must
    // echo the bytes and then notice the EOF, not wait for an event that never comes.
    let server = start_model(model, "127.0.0.1:0", None);
    for i in 0..200u64 {
        let mut s = connect(&server);
        let msg = random_bytes(1 + (i as usize % 50), i);
        s.write_all(&msg).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, msg, "{model}: connection {i}");
    }
    server.shutdown().unwrap();
}

/// One echo of 5000 random bytes on `s`, which must come back exact.
fn bystander_is_served(model: Model, s: &mut TcpStream, seed: u64) {
    let msg = random_bytes(5000, seed);
    s.write_all(&msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert!(back == msg, "{model}: bystander's echo differs");
}

fn reset_mid_stream_does_not_disturb_others(model: Model) {
    let server = start_model(model, "127.0.0.1:0", Some(8));
    let mut good = connect(&server);
    let check = |s: &mut TcpStream, seed: u64| bystander_is_served(model, s, seed);
    check(&mut good, 1);
    for i in 0..20 {
        let bad = connect(&server);
        (&bad).write_all(&random_bytes(200_000, 100 + i)).unwrap_or(()); // the echo is never read
                                                                         // SO_LINGER 0: close sends RST with data in flight both ways.
        socket2::SockRef::from(&bad).set_linger(Some(Duration::ZERO)).unwrap();
        drop(bad);
        check(&mut good, 2 + i);
    }
    // New connections are still served.
    check(&mut connect(&server), 99);
    server.shutdown().unwrap();
}

fn close_with_unread_data_does_not_disturb_others(model: Model) {
    let server = start_model(model, "127.0.0.1:0", Some(8));
    let mut good = connect(&server);
    let check = |s: &mut TcpStream, seed: u64| bystander_is_served(model, s, seed);
    for i in 0..20 {
        let mut bad = connect(&server);
        bad.write_all(&random_bytes(300_000, 200 + i)).unwrap();
        // Let the echo start arriving, then a plain close with it unread: the kernel answers
        // with RST while the server is still writing (it sees EPIPE or ECONNRESET).
        std::thread::sleep(Duration::from_millis(5));
        drop(bad);
        check(&mut good, 300 + i);
    }
    check(&mut connect(&server), 999);
    server.shutdown().unwrap();
}

fn tiny_socket_buffers_still_echo_byte_exact(model: Model) {
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        threads: Some(2),
        sock_buf: Some(2048),
        ..ServerConfig::default()
    };
    let server = start(model, &config).unwrap();
    for seed in 0..3 {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_send_buffer_size(2048).unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        socket.connect(&tcp_addr(&server).into()).unwrap();
        let s: TcpStream = socket.into();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let payload = random_bytes(1 << 20, 500 + seed);
        let back = echo_through(s.try_clone().unwrap(), s, payload.clone());
        assert!(
            back == payload,
            "{model}: 1 MiB through 2 KiB buffers came back different"
        );
    }
    server.shutdown().unwrap();
}

fn shutdown_with_open_connections_is_prompt(model: Model) {
    let server = start_model(model, "127.0.0.1:0", Some(64));
    let addr = tcp_addr(&server);
    let mut conns: Vec<TcpStream> = (0..50).map(|_| connect(&server)).collect();
    for c in &mut conns {
        c.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).unwrap();
    }
    let t = Instant::now();
    server.shutdown().unwrap();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "{model}: shutdown took {took:?}");
    // Every connection was closed by the server: EOF or reset, not a hang.
    for c in &mut conns {
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("{model}: connection still open after shutdown: {other:?}"),
        }
    }
    // The port is free again.
    std::net::TcpListener::bind(addr).unwrap_or_else(|e| panic!("{model}: port still taken: {e}"));
}

fn serves_unix_sockets(model: Model) {
    let path = std::env::temp_dir().join(format!("echo-bench-{}-{}.sock", model, std::process::id()));
    let server = start_model(model, &format!("unix:{}", path.display()), None);
    assert_eq!(server.local_addr(), &ListenAddr::Unix(path.clone()));
    let s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let payload = random_bytes(1 << 20, 11);
    let back = echo_through(s.try_clone().unwrap(), s, payload.clone());
    assert!(back == payload, "{model}: unix echo differs");
    server.shutdown().unwrap();
    assert!(!path.exists(), "{model}: socket file left behind");
}

/// `seqpacket:/path`: each packet comes back whole and alone (its boundaries kept), in
/// order, on two connections at once, up to 4 KiB (the smallest read buffer of a model:
/// uring's provided buffers).
fn serves_seqpacket_keeping_message_boundaries(model: Model) {
    use socket2::{Domain, SockAddr, Socket, Type};
    let path = std::env::temp_dir().join(format!("echo-bench-seq-{}-{}.sock", model, std::process::id()));
    let server = start_model(model, &format!("seqpacket:{}", path.display()), None);
    assert_eq!(server.local_addr(), &ListenAddr::SeqPacket(path.clone()));
    let conns: Vec<Socket> = (0..2)
        .map(|_| {
            let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
            s.connect(&SockAddr::unix(&path).unwrap()).unwrap();
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            s
        })
        .collect();
    let sizes = [1usize, 100, 4096, 7, 3000];
    for (i, c) in conns.iter().enumerate() {
        // Pipelined: every packet sent before any is read, so a server that merged them as
        // a stream would answer with fewer, larger packets.
        for (k, &n) in sizes.iter().enumerate() {
            assert_eq!(c.send(&random_bytes(n, (i * 10 + k) as u64)).unwrap(), n);
        }
    }
    for (i, c) in conns.iter().enumerate() {
        for (k, &n) in sizes.iter().enumerate() {
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 8192];
            let got = c.recv(&mut buf).unwrap_or_else(|e| panic!("{model}: packet {k}: {e}"));
            // SAFETY: recv initialised the first `got` bytes.
            let back: Vec<u8> = buf[..got].iter().map(|b| unsafe { b.assume_init() }).collect();
            assert_eq!(got, n, "{model}: packet {k} of connection {i} came back as {got} bytes");
            assert!(
                back == random_bytes(n, (i * 10 + k) as u64),
                "{model}: packet {k} differs"
            );
        }
    }
    drop(conns);
    server.shutdown().unwrap();
    assert!(!path.exists(), "{model}: socket file left behind");
}

fn serves_ipv6(model: Model) {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        testkit::skip(&format!("serves_ipv6 ({model})"), "no IPv6 loopback on this machine");
        return;
    }
    let server = start_model(model, "[::1]:0", None);
    assert_eq!(server.local_addr().transport(), servers::Transport::Tcp6);
    let mut s = connect(&server);
    s.write_all(b"over v6").unwrap();
    let mut back = [0u8; 7];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"over v6");
    server.shutdown().unwrap();
}

// ---- tests against the `echo-server` binary in its own process --------------------------

/// The `echo-server` binary in its own process.
struct ChildServer(ServerProcess);

impl ChildServer {
    fn spawn(model: Model, nofile: Option<u64>) -> ChildServer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_echo-server"));
        cmd.args(["--model", model.name(), "--addr", "127.0.0.1:0", "--threads", "4"])
            .stderr(Stdio::null());
        if let Some(limit) = nofile {
            testkit::with_nofile(&mut cmd, limit, limit);
        }
        ChildServer(ServerProcess::spawn(&mut cmd))
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.0.addr
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr()).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    fn rss_kib(&self) -> u64 {
        testkit::proc::rss_kib(self.0.pid())
    }

    fn cpu(&self) -> Duration {
        testkit::proc::cpu(self.0.pid())
    }

    /// SIGTERM, then the exit status must be success within 2 s.
    fn stop(self) {
        self.0.stop(Duration::from_secs(2));
    }
}

fn reader_that_stops_reading_keeps_memory_bounded(model: Model) {
    const TOTAL: usize = 64 << 20;
    let server = ChildServer::spawn(model, None);
    let rss_before = server.rss_kib();
    let s = server.connect();
    let mut writer = s.try_clone().unwrap();
    let pattern = |i: usize| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()[3];
    let w = std::thread::spawn(move || {
        let chunk: Vec<u8> = (0..1 << 16).map(|_| 0).collect();
        let mut buf = chunk;
        let mut sent = 0;
        while sent < TOTAL {
            for (k, b) in buf.iter_mut().enumerate() {
                *b = pattern(sent + k);
            }
            writer.write_all(&buf).unwrap();
            sent += buf.len();
        }
    });
    // Give the writer time to fill every buffer on the way while nobody reads.
    std::thread::sleep(Duration::from_millis(1500));
    let growth_kib = server.rss_kib().saturating_sub(rss_before);
    assert!(
        growth_kib < 32 * 1024,
        "{model}: RSS grew by {growth_kib} KiB while the client did not read"
    );
    // Now read: every byte comes back, in order.
    let mut reader = s;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    while got < TOTAL {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "{model}: EOF after {got} bytes");
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, pattern(got + k), "{model}: byte {} differs", got + k);
        }
        got += n;
    }
    w.join().unwrap();
    server.stop();
}

fn descriptor_exhaustion_neither_spins_nor_stops_serving(model: Model) {
    let server = ChildServer::spawn(model, Some(48));
    // A burst well beyond the limit: the kernel completes the handshakes (backlog), the
    // server can accept only some of them.
    let burst: Vec<TcpStream> = (0..150)
        .filter_map(|_| TcpStream::connect(server.addr()).ok())
        .collect();
    assert!(burst.len() > 48, "too few connects for the test to mean anything");
    std::thread::sleep(Duration::from_millis(300)); // let it hit EMFILE
    let cpu_before = server.cpu();
    std::thread::sleep(Duration::from_millis(1500));
    let cpu = server.cpu() - cpu_before;
    // Spinning would burn ~1.5 s of CPU; backing off costs next to nothing.
    assert!(
        cpu < Duration::from_millis(300),
        "{model}: {cpu:?} of CPU in 1.5 s while out of descriptors"
    );
    drop(burst);
    // Once descriptors are free it serves new clients again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> io::Result<()> {
            let mut s = server.connect();
            s.set_read_timeout(Some(Duration::from_millis(500)))?;
            s.write_all(b"again")?;
            let mut back = [0u8; 5];
            s.read_exact(&mut back)?;
            assert_eq!(&back, b"again");
            Ok(())
        })();
        match attempt {
            Ok(()) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{model}: not serving after descriptors freed: {e}"
            ),
        }
    }
    server.stop();
}

fn churn_leaves_no_threads_or_descriptors_behind(model: Model) {
    let server = ChildServer::spawn(model, None);
    let pid = server.0.pid();
    // Settle: a first connection starts whatever the model starts lazily.
    let mut first = server.connect();
    bystander_is_served(model, &mut first, 1);
    drop(first);
    std::thread::sleep(Duration::from_millis(200));
    let (threads, fds) = (testkit::proc::threads(pid), testkit::proc::open_fds(pid));
    std::thread::scope(|s| {
        for t in 0..4 {
            let server = &server;
            s.spawn(move || {
                for i in 0..250 {
                    let mut c = server.connect();
                    c.write_all(b"churn").unwrap();
                    let mut back = [0u8; 5];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(&back, b"churn", "{model}: connection {t}/{i}");
                    if i % 2 == 0 {
                        // Half of them close with RST, the rest with FIN.
                        socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO)).unwrap();
                    }
                }
            });
        }
    });
    // Back to where it started: no thread or descriptor left per closed connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = (testkit::proc::threads(pid), testkit::proc::open_fds(pid));
        if now == (threads, fds) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{model}: after 1000 connections came and went, threads/fds are {now:?}, were {:?}",
            (threads, fds)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop();
}

fn echo_server_binary_serves_and_exits_cleanly(model: Model) {
    let server = ChildServer::spawn(model, None);
    let mut s = server.connect();
    s.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    server.stop(); // with the connection still open
}

// ---------------------------------------------------------------------------------------

/// Why `model` cannot run on this machine (io_uring missing or disabled), if it cannot.
fn unavailable(model: Model) -> Option<String> {
    match model {
        Model::Uring => kit::ring::available().err().map(|e| e.to_string()),
        _ => None,
    }
}

macro_rules! conformance {
    (models: [$($module:ident => $model:ident),* $(,)?], tests: $tests:tt) => {
        $( conformance!(@model $module, $model, $tests); )*

        /// Fails when a model was added to `Model::ALL` but not to the list above.
        #[test]
        fn every_model_is_covered() {
            let covered = [$(Model::$model),*];
            for m in Model::ALL {
                assert!(covered.contains(&m), "model {m} is missing from the conformance! list");
            }
        }
    };
    (@model $module:ident, $model:ident, [$($test:ident),* $(,)?]) => {
        mod $module {
            $( #[test] fn $test() {
                if let Some(why) = super::unavailable(servers::Model::$model) {
                    testkit::skip(concat!(stringify!($module), "::", stringify!($test)), &why);
                    return;
                }
                super::$test(servers::Model::$model)
            } )*
        }
    };
}

conformance! {
    models: [
        thread_per_conn => ThreadPerConn,
        threadpool => ThreadPool,
        mio => Mio,
        poll => Poll,
        tokio => Tokio,
        uring => Uring,
    ],
    tests: [
        echoes_random_payloads_byte_exact,
        many_messages_on_one_connection,
        serves_500_concurrent_connections,
        half_close_returns_everything_then_eof,
        data_and_fin_together_are_both_seen,
        reset_mid_stream_does_not_disturb_others,
        close_with_unread_data_does_not_disturb_others,
        tiny_socket_buffers_still_echo_byte_exact,
        shutdown_with_open_connections_is_prompt,
        serves_unix_sockets,
        serves_seqpacket_keeping_message_boundaries,
        serves_ipv6,
        reader_that_stops_reading_keeps_memory_bounded,
        descriptor_exhaustion_neither_spins_nor_stops_serving,
        echo_server_binary_serves_and_exits_cleanly,
        churn_leaves_no_threads_or_descriptors_behind,
        udp_echoes_random_payloads_byte_exact,
        udp_serves_many_peers,
        udp_binds_the_sockets_its_table_row_says,
        udp_serves_ipv6,
        udp_shutdown_is_prompt_and_frees_the_port,
        udp_binds_loopback_unless_allowed,
        udp_echo_server_binary_says_udp,
        udp_work_answers_every_datagram_after_its_work,
        work_keeps_bytes_and_order_under_pipelining,
        a_wait_delays_its_message_by_at_least_the_wait,
    ]
}

/// thread-per-conn in a cgroup whose `pids.max` leaves room for two connection threads:
/// the connections whose thread cannot start are closed, the others are served, the
/// server stays up and says so on stderr.
#[test]
fn thread_per_conn_survives_failed_thread_spawns() {
    let cgroup = match testkit::cgroup::Cgroup::create("spawn") {
        Ok(c) => c,
        Err(why) => {
            testkit::skip("thread_per_conn_survives_failed_thread_spawns", &why);
            return;
        }
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echo-server"));
    cmd.args(["--model", "thread-per-conn", "--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped());
    let mut server = ServerProcess::spawn(&mut cmd);
    let pid = server.pid();
    let threads = testkit::proc::threads(pid);
    cgroup.add(pid).unwrap();
    cgroup.set_pids_max(threads + 2).unwrap();
    let serves = |s: &mut TcpStream| -> bool {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut back = [0u8; 4];
        s.write_all(b"ping").is_ok() && s.read_exact(&mut back).is_ok() && &back == b"ping"
    };
    let mut conns: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
    let served = conns.iter_mut().map(&serves).filter(|&ok| ok).count();
    assert_eq!(served, 2, "two connection threads fit under pids.max");
    assert!(cgroup.pids_max_events() > 0, "pids.max refused a spawn");
    assert!(!server.exited(), "the server died");
    drop(conns);
    std::thread::sleep(Duration::from_millis(200)); // the two threads end
    let mut again = TcpStream::connect(server.addr).unwrap();
    assert!(serves(&mut again), "a new connection is served once threads are free");
    drop(again);
    let stderr = server.take_stderr();
    server.stop(Duration::from_secs(2));
    let log = std::io::read_to_string(stderr).unwrap();
    assert!(log.contains("cannot spawn a connection thread"), "{log}");
}

#[test]
fn echo_server_rejects_unknown_model_with_choices() {
    let out = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--model", "fibers"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("thread-per-conn, threadpool, mio, tokio"), "{err}");
}

#[test]
fn echo_server_rejects_bad_address() {
    let out = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--model", "mio", "--addr", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--addr") && err.contains("HOST:PORT"), "{err}");
}

/// `echo-server --procs 3` on TCP and UDP (SO_REUSEPORT) and on a Unix socket (one listener shared):
/// three processes serve, and stopping the first stops them all.
#[test]
fn several_processes_share_one_address() {
    let sock = std::env::temp_dir().join(format!("eb-procs-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    for addr in [
        "127.0.0.1:0".to_string(),
        format!("unix:{}", sock.display()),
        "udp://127.0.0.1:0".to_string(),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_echo-server"));
        cmd.args(["--model", "mio", "--procs", "3", "--addr", &addr]);
        // `ServerProcess` parses a TCP address; read the line ourselves for Unix.
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        io::BufRead::read_line(&mut io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let listening: ListenAddr = line.trim().strip_prefix("listening ").unwrap().parse().unwrap();
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
        assert_eq!(children.split_whitespace().count(), 2, "{addr}: two more processes");
        for i in 0..30u64 {
            let msg = random_bytes(100, i);
            let back = match &listening {
                ListenAddr::Tcp(a) => {
                    let s = TcpStream::connect(a).unwrap();
                    echo_through(s.try_clone().unwrap(), s, msg.clone())
                }
                ListenAddr::Unix(p) => {
                    let s = UnixStream::connect(p).unwrap();
                    echo_through(s.try_clone().unwrap(), s, msg.clone())
                }
                ListenAddr::Udp(a) => udp::round_trip(&udp::client(*a), &msg),
                ListenAddr::Icmp(_) | ListenAddr::SeqPacket(_) => unreachable!("the test listens on TCP, Unix or UDP"),
            };
            assert_eq!(back, msg, "{addr}");
        }
        testkit::signal(child.id(), testkit::Signal::TERM);
        let status = child.wait().unwrap();
        assert!(status.success(), "{addr}: {status}");
        for pid in children.split_whitespace() {
            assert!(
                testkit::proc::is_gone(pid.parse().unwrap()),
                "{addr}: process {pid} left behind"
            );
        }
    }
}

/// Without io_uring (here: made unavailable through the environment, as a kernel without
/// it or with `kernel.io_uring_disabled` would), the uring model refuses with one line and
/// exit 3; the other models are unaffected.
#[test]
fn uring_refuses_cleanly_where_io_uring_is_unavailable() {
    let out = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--model", "uring", "--addr", "127.0.0.1:0"])
        .env(kit::ring::DISABLE_ENV, "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("io_uring"), "{err}");
    let mio = ServerProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_echo-server"))
            .args(["--model", "mio", "--addr", "127.0.0.1:0"])
            .env(kit::ring::DISABLE_ENV, "1"),
    );
    mio.stop(Duration::from_secs(5));
}
