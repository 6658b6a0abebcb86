//! The thread-per-connection model over UDP: a dispatcher thread receives on the bound
//! socket; the first datagram of a new peer gets that peer a thread of its own, with its own
//! socket bound to the same address (SO_REUSEPORT) and connected to the peer, so the kernel
//! delivers the peer's next datagrams straight to it (a connected socket wins the lookup
//! over the unconnected one). A peer thread that hears nothing for the idle time closes its
//! socket and ends; the peer's next datagram starts a new one.
//!
//! Datagrams that reach the dispatcher while their peer already has a thread (sent before
//! the peer's socket existed) are echoed by the dispatcher. So is every datagram of a new
//! peer past the thread budget ([`crate::budget`]): it is served, not refused, and logged.

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::accept::RateLimitedLog;
use crate::budget::thread_budget;
use crate::datagram::{Guard, GuardConfig, Service, DATAGRAM_BUF};
use crate::registry::Registry;
use crate::running::Running;

/// A running UDP thread-per-peer server.
pub(crate) struct PerPeer {
    stop: Arc<AtomicBool>,
    socket: UdpSocket,
    dispatcher: JoinHandle<()>,
    registry: Arc<Registry>,
}

/// Peers that have a thread now.
type Peers = Arc<Mutex<HashSet<SocketAddr>>>;

/// Starts the dispatcher on `sockets[0]`; peer threads get `stack_size` and end after
/// `idle` without a datagram.
pub(crate) fn start(
    mut sockets: Vec<UdpSocket>,
    stack_size: usize,
    idle: Duration,
    guard: GuardConfig,
    work: Option<std::sync::Arc<crate::work::Work>>,
) -> io::Result<PerPeer> {
    let socket = sockets.swap_remove(0);
    let stop = Arc::new(AtomicBool::new(false));
    let registry = Arc::new(Registry::default());
    let budget = thread_budget();
    eprintln!("echo-server: thread-per-conn (udp): thread budget {budget}");
    let dispatcher = {
        let socket = socket.try_clone()?;
        let stop = Arc::clone(&stop);
        let registry = Arc::clone(&registry);
        std::thread::Builder::new().name("udp-dispatch".into()).spawn(move || {
            let peers: Peers = Arc::default();
            let spawn = Spawn {
                local: socket.local_addr().ok(),
                stack_size,
                idle,
                budget: budget.threads,
                registry,
                peers,
                stop: Arc::clone(&stop),
                guard,
                log: RateLimitedLog::new(Duration::from_secs(1)),
                work,
            };
            dispatch(&socket, &stop, Guard::new(guard, 1), spawn);
        })?
    };
    Ok(PerPeer {
        stop,
        socket,
        dispatcher,
        registry,
    })
}

/// What the dispatcher needs to start a peer's thread.
struct Spawn {
    local: Option<SocketAddr>,
    stack_size: usize,
    idle: Duration,
    budget: u64,
    registry: Arc<Registry>,
    peers: Peers,
    stop: Arc<AtomicBool>,
    /// Each peer thread checks its own datagrams too: they never pass the dispatcher.
    guard: GuardConfig,
    log: RateLimitedLog,
    /// `--work`: each peer's thread (and the dispatcher, for the peers it serves itself)
    /// takes every datagram's whole cost before the echo.
    work: Option<std::sync::Arc<crate::work::Work>>,
}

fn dispatch(socket: &UdpSocket, stop: &AtomicBool, mut guard: Guard, mut spawn: Spawn) {
    let mut buf = vec![0u8; DATAGRAM_BUF];
    let mut service = Service::new(spawn.work.as_ref());
    loop {
        let (n, src) = match crate::datagram::recv_from(socket, &mut buf) {
            // Shutdown wakes the receive with 0 bytes; the flag tells it from an empty datagram.
            Ok(_) if stop.load(Ordering::Acquire) => return,
            Ok(Some(got)) => got,
            Ok(None) => continue, // no source address: nothing to answer
            Err(_) if stop.load(Ordering::Acquire) => return,
            // EINTR, or an error queued by an earlier send: the socket is still good.
            Err(_) => continue,
        };
        if !guard.admit(src) {
            continue;
        }
        let known = spawn.peers.lock().unwrap_or_else(|e| e.into_inner()).contains(&src);
        if known || !spawn.peer_thread(socket, &mut guard, src, &buf[..n]) {
            service.blocking();
            // A failed send loses one datagram, as UDP may.
            let _ = socket.send_to(&buf[..n], src);
        }
    }
}

impl Spawn {
    /// Starts `src`'s thread, which echoes `first` and then serves the peer; false when it
    /// cannot (budget, socket or spawn failure), so the dispatcher echoes `first` itself.
    fn peer_thread(&mut self, main: &UdpSocket, guard: &mut Guard, src: SocketAddr, first: &[u8]) -> bool {
        let live = self.peers.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        if live >= self.budget {
            self.log.log(format_args!(
                "at the thread budget ({} threads): new peers are served by the dispatcher",
                self.budget
            ));
            return false;
        }
        let Some(local) = self.local else { return false };
        let socket = match connected_socket(local, src, self.idle).and_then(|s| answer_strays(s, main, guard, src)) {
            Ok(s) => s,
            Err(e) => {
                self.log.log(format_args!(
                    "cannot open a socket for peer {src}: {e}; served by the dispatcher"
                ));
                return false;
            }
        };
        // Registered before the thread starts, so shutdown reaches it even before it runs.
        let Some(entry) = self.registry.register(&socket) else {
            return false;
        };
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).insert(src);
        let peers = Arc::clone(&self.peers);
        let stop = Arc::clone(&self.stop);
        // One source per thread: the whole per-source rate (with the dispatcher's share, a
        // source can get at most twice `--source-rate` answered).
        let peer_guard = Guard::new(self.guard, 1);
        let first = first.to_vec();
        let mut service = Service::new(self.work.as_ref());
        let spawned = std::thread::Builder::new()
            .name("udp-peer".into())
            .stack_size(self.stack_size)
            .spawn(move || {
                service.blocking();
                let _ = socket.send(&first);
                serve_peer(&socket, src, &stop, peer_guard, service);
                peers.lock().unwrap_or_else(|e| e.into_inner()).remove(&src);
                drop(entry); // leave the registry before `socket` closes
            });
        if let Err(e) = spawned {
            self.peers.lock().unwrap_or_else(|e| e.into_inner()).remove(&src);
            self.log.log(format_args!(
                "cannot spawn a peer thread: {e}; served by the dispatcher"
            ));
            return false;
        }
        true
    }
}

/// A socket on `local` (sharing its port) connected to `peer`, whose receives time out
/// after `idle`.
fn connected_socket(local: SocketAddr, peer: SocketAddr, idle: Duration) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(local), Type::DGRAM.cloexec(), None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&local.into())?;
    socket.connect(&peer.into())?;
    socket.set_read_timeout(Some(idle))?;
    Ok(socket.into())
}

/// Answers, through the main socket, the datagrams of other peers that reached the new
/// socket in the instant between its bind and its connect: unconnected, it was one more
/// member of the SO_REUSEPORT group and the kernel may have handed it any peer's datagram.
/// After the connect only its peer's datagrams arrive, so draining once is enough.
fn answer_strays(socket: UdpSocket, main: &UdpSocket, guard: &mut Guard, peer: SocketAddr) -> io::Result<UdpSocket> {
    socket.set_nonblocking(true)?;
    let mut buf = vec![0u8; DATAGRAM_BUF];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                // The peer's own datagram (sent right after its first) is answered here too,
                // like the strays without --work: an instant's worth, not worth a service.
                if from == peer || guard.admit(from) {
                    // A failed send loses one datagram, as UDP may.
                    let _ = main.send_to(&buf[..n], from);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break, // drained
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry
            Err(_) => break, // an error queued by a send (ICMP): nothing left to drain
        }
    }
    socket.set_nonblocking(false)?;
    Ok(socket)
}

/// Echoes the peer's datagrams until it is idle for the timeout or the server shuts the
/// socket down (a receive of 0 bytes after shutdown; an empty datagram is echoed).
fn serve_peer(socket: &UdpSocket, peer: SocketAddr, stop: &AtomicBool, mut guard: Guard, mut service: Service) {
    let mut buf = vec![0u8; DATAGRAM_BUF];
    loop {
        match socket.recv(&mut buf) {
            Ok(_) if stop.load(Ordering::Acquire) => return,
            Ok(_) if !guard.admit(peer) => {} // over its rate: dropped
            Ok(n) => {
                service.blocking();
                // A failed send loses one datagram, as UDP may.
                let _ = socket.send(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry
            // EAGAIN after SO_RCVTIMEO: idle for the timeout. ECONNREFUSED: the peer's port
            // is gone (ICMP). Either way this peer is done.
            Err(_) => return,
        }
    }
}

impl Running for PerPeer {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        crate::datagram::wake_all(&self.socket);
        let _ = self.dispatcher.join();
        self.registry.shut_down("peer")
    }
}
