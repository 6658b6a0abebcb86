//! The poll model: one thread, `poll(2)` over every descriptor, the classic design before
//! epoll. Each wake-up the loop rebuilds the array of descriptors and what it waits for on
//! each (readable, or writable while a short write's rest waits; nothing while a `--work`
//! wait holds a connection), hands the whole array to the kernel, and scans the whole
//! array back: O(connections) per wake-up however few are ready. That cost is what the
//! model is here to show beside mio's epoll.
//!
//! One loop by default; `--threads N` runs N loops, each on its own SO_REUSEPORT socket
//! (as mio's do), each still O(its connections) per wake-up. Readiness is level-triggered, so a connection left with data (its read budget spent) is
//! simply reported again; the serving of one connection is [`crate::nonblocking`], the same
//! as mio's. `ppoll`'s timeout is a timespec: `--work` waits end to the nanosecond, with
//! no timerfd.
//!
//! `select(2)` is not built: its `fd_set` holds descriptors below `FD_SETSIZE` (1024) only,
//! so a server past about a thousand connections would have to refuse the rest; `poll`
//! has no such limit and the same O(n) cost.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::accept::AcceptPolicy;
use crate::nonblocking::Conns;
use crate::running::{stop_started, Running};
use crate::stream::Listener;
use crate::work::Work;

pub(crate) mod udp;

/// The slot of the listener in the descriptor array's keys.
const LISTENER: usize = usize::MAX;
/// The slot of the stop eventfd.
const WAKE: usize = usize::MAX - 1;

/// The running poll loops: a stop flag, and each loop's wake eventfd and thread.
pub(crate) struct PollServer {
    stop: Arc<AtomicBool>,
    loops: Vec<(Arc<OwnedFd>, JoinHandle<()>)>,
}

impl PollServer {
    pub(crate) fn new() -> PollServer {
        PollServer {
            stop: Arc::new(AtomicBool::new(false)),
            loops: Vec::new(),
        }
    }

    /// Starts a loop's thread, `name`d, running `body` with the stop flag and its wake fd;
    /// on failure the loops already running stop before the error is reported.
    pub(crate) fn spawn(
        mut self,
        name: String,
        body: impl FnOnce(&AtomicBool, &OwnedFd) -> io::Result<()> + Send + 'static,
    ) -> io::Result<PollServer> {
        use rustix::event::{eventfd, EventfdFlags};
        let wake = match eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK) {
            Ok(fd) => Arc::new(fd),
            Err(e) => return Err(stop_started(Box::new(self), e.into())),
        };
        let (stop, loop_wake, label) = (Arc::clone(&self.stop), Arc::clone(&wake), name.clone());
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            if let Err(e) = body(&stop, &loop_wake) {
                eprintln!("echo-server: {label} loop failed: {e}");
            }
        });
        match thread {
            Ok(t) => self.loops.push((wake, t)),
            Err(e) => return Err(stop_started(Box::new(self), e)),
        }
        Ok(self)
    }
}

impl Running for PollServer {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        for (fd, _) in &self.loops {
            wake(fd);
        }
        for (_, thread) in self.loops {
            let _ = thread.join();
        }
        Ok(())
    }
}

/// Wakes the loop out of `ppoll`.
fn wake(fd: &OwnedFd) {
    // Fails only when the counter is full, which wakes the loop as well.
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

/// Drains the wake eventfd (nonblocking).
fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 8];
    // EAGAIN: nothing to drain; the stop flag is what counts.
    let _ = rustix::io::read(fd, &mut buf);
}

/// Waits in `ppoll(2)` over `fds` for at most `timeout` (`None`: until an event); EINTR
/// returns as a wake-up with nothing ready.
pub(crate) fn ppoll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs that
    // the kernel writes `revents` into; `ts_ptr` is null or points to a timespec that lives
    // across the call; a null signal mask leaves the mask unchanged.
    let n = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ts_ptr, std::ptr::null()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        // EINTR: a signal arrived; the caller looks at the flags and polls again.
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
        fds.iter_mut().for_each(|f| f.revents = 0);
    }
    Ok(())
}

/// A descriptor to wait on for `events`.
pub(crate) fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}

/// Starts one poll loop per listener.
pub(crate) fn start(listeners: Vec<Listener>, work: Option<Arc<Work>>) -> io::Result<PollServer> {
    let mut server = PollServer::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        listener.set_nonblocking(true)?;
        let work = work.clone();
        server = server.spawn(format!("poll-{i}"), move |stop, wake| {
            let mut event_loop = EventLoop {
                listener,
                conns: Conns::new(work),
                fds: Vec::new(),
                keys: Vec::new(),
                policy: AcceptPolicy::default(),
                accept_paused_until: None,
            };
            event_loop.run(stop, wake)
        })?;
    }
    Ok(server)
}

struct EventLoop {
    listener: Listener,
    conns: Conns,
    /// The array handed to the kernel, rebuilt each wake-up, and the key of each entry.
    fds: Vec<libc::pollfd>,
    keys: Vec<usize>,
    policy: AcceptPolicy,
    accept_paused_until: Option<Instant>,
}

impl EventLoop {
    fn run(&mut self, stop: &AtomicBool, wake_fd: &OwnedFd) -> io::Result<()> {
        loop {
            self.fill(wake_fd);
            let timeout = if self.conns.owed_now() {
                Some(Duration::ZERO)
            } else {
                [self.accept_paused_until, self.conns.next_deadline()]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|t| t.saturating_duration_since(Instant::now()))
            };
            ppoll(&mut self.fds, timeout)?;
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            // The whole array is scanned back: the O(n) of poll.
            for i in 0..self.fds.len() {
                let revents = self.fds[i].revents;
                if revents == 0 {
                    continue;
                }
                match self.keys[i] {
                    LISTENER => self.accept_all()?,
                    WAKE => drain(wake_fd),
                    key => {
                        if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                            if let Some(conn) = self.conns.slab.get_mut(key) {
                                conn.read_closed = true; // read until EOF, never stop at a short read
                            }
                        }
                        // A closed connection needs nothing more: the next array leaves it out.
                        drop(self.conns.serve(key));
                    }
                }
            }
            if self.accept_paused_until.is_some_and(|t| Instant::now() >= t) {
                self.accept_all()?;
            }
            self.conns.serve_owed(drop);
        }
    }

    /// The descriptor array for this wake-up: the listener (unless accepting is paused for
    /// want of descriptors: level-triggered poll would report it ready at once, forever),
    /// the wake fd, and every connection not held by a wait, for writable while output
    /// waits and readable otherwise.
    fn fill(&mut self, wake_fd: &OwnedFd) {
        self.fds.clear();
        self.keys.clear();
        if self.accept_paused_until.is_none() {
            self.fds.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
            self.keys.push(LISTENER);
        }
        self.fds.push(pollfd(wake_fd.as_raw_fd(), libc::POLLIN));
        self.keys.push(WAKE);
        for (key, conn) in &self.conns.slab {
            if conn.is_held() {
                continue; // its timer, not its socket, says when it goes on
            }
            let events = if conn.has_output() { libc::POLLOUT } else { libc::POLLIN };
            self.fds.push(pollfd(conn.stream.as_raw_fd(), events));
            self.keys.push(key);
        }
    }

    fn accept_all(&mut self) -> io::Result<()> {
        // Nothing to register: the next array includes every connection.
        self.accept_paused_until = self.conns.accept_all(&self.listener, &mut self.policy, |_, _| Ok(()))?;
        Ok(())
    }
}
