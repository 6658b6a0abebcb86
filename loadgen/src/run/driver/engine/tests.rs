//! The seam's contract, checked the same way for both engines: a connection closed with
//! I/O in flight, and its token given to a new connection, leaves the new one whole (no
//! completion or event of the old one reaches it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use servers::ListenAddr;

use super::{Io, Ready};
use crate::config::Engine;
use crate::run::driver::socket::Sock;

/// Waits (at most 5 s) until the engine reports `what` for `token`.
fn wait_for(io: &mut Io, token: usize, what: impl Fn(&Ready) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ready = Vec::new();
    while Instant::now() < deadline {
        ready.clear();
        io.wait(Duration::from_millis(20), &mut ready).unwrap();
        if ready.iter().any(|r| r.token == token && what(r)) {
            return;
        }
    }
    panic!("token {token}: nothing came within 5 s");
}

/// Connects to `listener` as connection `token`: (the socket, the server's end).
fn open(io: &mut Io, listener: &TcpListener, token: usize) -> (Sock, TcpStream) {
    let addr = ListenAddr::Tcp(listener.local_addr().unwrap());
    let sock = Sock::connect(&addr, None, None, (token as u32, 0)).unwrap();
    io.watch(&sock, token).unwrap();
    let (peer, _) = listener.accept().unwrap();
    wait_for(io, token, |r| r.writable);
    io.opened(token).unwrap();
    (sock, peer)
}

#[test]
fn a_token_reused_after_a_close_with_io_in_flight_serves_only_the_new_connection() {
    for engine in [Engine::Epoll, Engine::Uring] {
        if let (Engine::Uring, Err(e)) = (engine, kit::ring::available()) {
            testkit::skip("engine::tests::a_token_reused_after_a_close (uring)", &e.to_string());
            continue;
        }
        let mut io = Io::new(engine, false, None).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut old, old_peer) = open(&mut io, &listener, 0);
        // 4 MiB its peer never reads: a send still in flight (io_uring) or a full buffer
        // (epoll) when the connection is closed.
        let sent = io.send(0, &mut old, &vec![7u8; 4 << 20]).unwrap();
        assert!(sent > 0, "{engine:?}");
        let mut ready = Vec::new();
        io.wait(Duration::from_millis(10), &mut ready).unwrap();
        io.close(0, old);
        drop(old_peer);
        let (mut new, mut peer) = open(&mut io, &listener, 0);
        peer.write_all(b"hello").unwrap();
        wait_for(&mut io, 0, |r| r.readable);
        let mut buf = [0u8; 64];
        let (n, _) = io.recv(0, &mut new, &mut buf, false).unwrap();
        assert_eq!(
            &buf[..n],
            b"hello",
            "{engine:?}: the new connection's bytes, not the old one's end"
        );
        assert_eq!(
            io.send(0, &mut new, b"world").unwrap(),
            5,
            "{engine:?}: no error of the old send"
        );
        io.wait(Duration::from_millis(10), &mut ready).unwrap(); // io_uring submits here
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = [0u8; 5];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"world", "{engine:?}");
        io.close(0, new);
    }
}

#[test]
fn udp_round_trip_through_each_engine() {
    for engine in [Engine::Epoll, Engine::Uring] {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let at = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let mut io = Io::new(engine, false, Some(64)).unwrap();
        let mut sock = Sock::connect(&ListenAddr::Udp(at), None, None, (7, 0)).unwrap();
        io.watch(&sock, 0).unwrap();
        wait_for(&mut io, 0, |r| r.readable);
        assert!(sock.connected(7).unwrap(), "{engine:?}: the probe's echo");
        io.opened(0).unwrap();
        let msg = [5u8; 40];
        assert_eq!(io.send(0, &mut sock, &msg).unwrap(), 40, "{engine:?}");
        wait_for(&mut io, 0, |r| r.readable);
        let mut buf = [0u8; 64];
        let (n, _) = io
            .recv(0, &mut sock, &mut buf, false)
            .unwrap_or_else(|e| panic!("{engine:?}: {e}"));
        assert_eq!(&buf[..n], &msg[..], "{engine:?}");
        io.close(0, sock);
    }
}
