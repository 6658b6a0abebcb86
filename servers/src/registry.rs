//! The open connections of a blocking model, so that shutdown can wake every connection
//! thread blocked in `read` (by shutting its socket down) and wait for all of them to finish.
//! Touched once when a connection starts and once when it ends, never per message.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use slab::Slab;

#[derive(Default)]
struct Inner {
    closed: bool,
    fds: Slab<RawFd>,
}

/// The set of live connections of one server.
#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
    emptied: Condvar,
}

/// Membership of one connection; dropping it leaves the registry. Drop it *before* the
/// socket it names is closed, so shutdown never touches a reused descriptor number.
pub(crate) struct Entry {
    registry: Arc<Registry>,
    key: usize,
}

impl Registry {
    /// Adds a connection, or returns `None` when the server is shutting down (the caller
    /// then drops the connection unserved).
    pub(crate) fn register(self: &Arc<Self>, socket: &impl AsRawFd) -> Option<Entry> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.closed {
            return None;
        }
        let key = inner.fds.insert(socket.as_raw_fd());
        Some(Entry {
            registry: Arc::clone(self),
            key,
        })
    }

    /// Refuses new connections and shuts down every open socket (both directions), which
    /// wakes the threads blocked on them with EOF.
    pub(crate) fn close_all(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.closed = true;
        for (_, &fd) in inner.fds.iter() {
            // SAFETY: the fd is open: its entry is removed (under this lock) before it closes.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }

    /// Shuts every connection down and waits (at most 900 ms) for their threads to leave;
    /// `TimedOut` naming `what` when they did not.
    pub(crate) fn shut_down(&self, what: &str) -> std::io::Result<()> {
        self.close_all();
        if self.wait_empty(Duration::from_millis(900)) {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{what} threads did not finish within 900 ms"),
            ))
        }
    }

    /// Waits until every connection has left, at most `timeout`. Returns whether it emptied.
    pub(crate) fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while !inner.fds.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            inner = self
                .emptied
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut inner = self.registry.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.fds.remove(self.key);
        if inner.fds.is_empty() {
            self.registry.emptied.notify_all();
        }
    }
}
