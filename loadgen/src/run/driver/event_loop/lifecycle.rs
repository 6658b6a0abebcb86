//! A connection's life in the event loop: (re)connecting at a controlled pace, finishing a
//! nonblocking connect, retiring a connection that did its round trips (churn), and
//! failing one: counted, closed, and scheduled to reopen.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::super::conn::{Framing, Link};
use super::super::shared::CONNECT_WINDOW;
use super::super::socket::{connect_failure, Sock};
use super::Client;
use crate::config::CloseMode;
use crate::measure::record::{Failure, Fault};

/// UDP: a connect probe unanswered this long is sent again (at each scan).
const REPROBE_AFTER: Duration = Duration::from_millis(100);

impl Client<'_> {
    /// Connect timeouts, message timeouts and (re)connects. Free connect slots go to
    /// connections never tried before any retry, so a server that stops accepting cannot
    /// keep the untried ones from ever getting a first attempt.
    pub(super) fn maintain(&mut self, now: Instant) {
        let t = now.saturating_duration_since(self.ctx.start).as_nanos() as u64;
        let timeout_ns = self.cfg.reply_timeout().as_nanos() as u64;
        for i in 0..self.conns.len() {
            match self.conns[i].link {
                Link::Connecting { since } if now.duration_since(since) > self.cfg.connect_timeout => {
                    // Our own connect timeout: counted as the kernel's would be.
                    self.fail(
                        i,
                        Failure {
                            fault: Fault::Connect,
                            errno: Some(libc::ETIMEDOUT),
                        },
                    )
                }
                Link::Up if self.ctx.sending && self.conns[i].timed_out(t, timeout_ns, &self.ctx) => {
                    self.fail(i, Fault::Timeout.into())
                }
                Link::Up if self.ctx.framing == Framing::Datagram => {
                    // UDP: unanswered datagrams become losses, which frees their slots.
                    self.conns[i].expire_datagrams(t, timeout_ns, &mut self.ctx);
                    self.send(i);
                }
                Link::Connecting { since } if now.duration_since(since) >= REPROBE_AFTER => {
                    // UDP: the probe or its echo may have been lost; a stream ignores this.
                    let c = &self.conns[i];
                    if let Some(sock) = &c.sock {
                        if let Err(e) = sock.reprobe(c.id, t) {
                            self.fail(i, connect_failure(&e));
                        }
                    }
                }
                _ => {}
            }
        }
        for first_attempts in [true, false] {
            for i in 0..self.conns.len() {
                if self.connecting >= CONNECT_WINDOW {
                    return;
                }
                let c = &self.conns[i];
                if matches!(c.link, Link::Down { retry_at } if retry_at <= now) && c.tried != first_attempts {
                    self.connect(i, now);
                }
            }
        }
    }

    pub(super) fn connect(&mut self, i: usize, now: Instant) {
        let from = match self.cfg.bind.as_slice() {
            [] => None,
            ips => Some(ips[self.conns[i].id as usize % ips.len()]),
        };
        let opened_ns = now.saturating_duration_since(self.ctx.start).as_nanos() as u64;
        self.conns[i].begin_life(self.lifetime, opened_ns);
        let sock = match Sock::connect(self.addr, from, self.cfg.sock_buf, (self.conns[i].id, opened_ns)) {
            Ok(s) => {
                if self.ctx.rx_stamps {
                    s.enable_rx_stamps();
                }
                s
            }
            Err(e) => {
                // Immediate failure (refused, out of ports or descriptors): counted, retried.
                self.conns[i].link = Link::Connecting { since: now };
                self.connecting += 1;
                return self.fail(i, connect_failure(&e));
            }
        };
        // The engine hears when the handshake is over (and owns the socket's I/O from now).
        let watched = self.ctx.io.watch(&sock, i);
        self.conns[i].sock = Some(sock);
        self.conns[i].link = Link::Connecting { since: now };
        self.connecting += 1;
        if watched.is_err() {
            self.fail(i, Fault::Other.into());
        }
    }

    pub(super) fn finish_connect(&mut self, i: usize, since: Instant) {
        let id = self.conns[i].id;
        let state = self.conns[i].sock.as_ref().map(|s| s.connected(id));
        match state {
            Some(Ok(true)) => {}
            Some(Ok(false)) => {
                // Still connecting (over UDP: the probe's echo has not come yet).
                if let Err(e) = self.ctx.io.still_connecting(i) {
                    self.fail(i, connect_failure(&e));
                }
                return;
            }
            Some(Err(e)) => return self.fail(i, connect_failure(&e)),
            None => return self.fail(i, Fault::Connect.into()),
        }
        self.connecting -= 1;
        let now_ns = self.ctx.now_ns();
        if self.ctx.sending && self.ctx.in_window(now_ns) {
            self.ctx.cur.counters.conns_opened += 1;
        }
        let conn = &mut self.conns[i];
        conn.link = Link::Up;
        conn.failures = 0;
        conn.tried = true;
        self.shared.up.fetch_add(1, Ordering::Relaxed);
        self.shared.connects.fetch_add(1, Ordering::Relaxed);
        if let Some(sock) = conn.sock.as_ref() {
            sock.set_nodelay();
        }
        if let Err(e) = self.ctx.io.opened(i) {
            return self.fail(i, connect_failure(&e));
        }
        self.connect_hist.saturating_record(since.elapsed().as_nanos() as u64);
        self.send(i);
        self.reopen_waiting(Instant::now());
    }

    /// Connection `i` did all its round trips: closes it (FIN, or RST with `--close rst`)
    /// and reopens it at once (`--reconnect-every`) or returns its slot (`--conn-rate`).
    /// Not an error.
    pub(super) fn retire(&mut self, i: usize) {
        if self.cfg.close == CloseMode::Rst {
            if let Some(sock) = &self.conns[i].sock {
                sock.set_reset_on_close();
            }
        }
        self.close_sock(i);
        if self.ctx.in_window(self.ctx.now_ns()) {
            self.ctx.cur.counters.conns_closed += 1;
        }
        let conn = &mut self.conns[i];
        self.shared.up.fetch_sub(1, Ordering::Relaxed);
        conn.read_closed = false;
        if let Some(w) = conn.in_flight.as_mut() {
            w.reset(conn.send_seq);
        }
        if self.arrivals.is_some() {
            conn.link = Link::Idle;
            conn.intended_ns = None;
            conn.idle_since = self.ctx.now_ns();
            self.idle.push(i);
            return;
        }
        // `--stages` of connections: one no longer wanted stays closed.
        if self.unwanted(i) {
            self.conns[i].link = Link::Idle;
            return;
        }
        let conn = &mut self.conns[i];
        let now = Instant::now();
        conn.link = Link::Down { retry_at: now };
        if self.connecting < CONNECT_WINDOW {
            self.connect(i, now);
        } else {
            self.waiting.push_back(i);
        }
    }

    /// Closes connection `i`'s socket, if it has one, through the engine: out of epoll, or
    /// kept by the ring until its operations have completed (io_uring).
    pub(super) fn close_sock(&mut self, i: usize) {
        if let Some(sock) = self.conns[i].sock.take() {
            self.ctx.io.close(i, sock);
        }
    }

    /// Reopens connections retired while the connect window was full, as it has room.
    pub(super) fn reopen_waiting(&mut self, now: Instant) {
        while self.connecting < CONNECT_WINDOW {
            let Some(i) = self.waiting.pop_front() else { return };
            if matches!(self.conns[i].link, Link::Down { .. }) {
                self.connect(i, now);
            }
        }
    }

    /// Counts `failure`, closes connection `i` and schedules its reconnect (`--conn-rate`:
    /// abandons that connection and returns its slot).
    pub(super) fn fail(&mut self, i: usize, failure: Failure) {
        self.ctx.cur.count(failure);
        let fault = failure.fault;
        let conn = &mut self.conns[i];
        let was_connecting = matches!(conn.link, Link::Connecting { .. });
        match conn.link {
            Link::Connecting { .. } => self.connecting -= 1,
            Link::Up => {
                self.shared.up.fetch_sub(1, Ordering::Relaxed);
            }
            Link::Down { .. } | Link::Idle => {}
        }
        self.close_sock(i);
        let conn = &mut self.conns[i];
        // Messages in flight are lost; the stream restarts at the next sequence number.
        if conn.send_off > 0 {
            conn.send_seq += 1;
            conn.send_off = 0;
        }
        conn.recv_seq = conn.send_seq;
        if let Some(w) = conn.in_flight.as_mut() {
            w.reset(conn.send_seq);
        }
        conn.recv_off = 0;
        conn.recv_bad = false;
        conn.read_closed = false;
        let backoff = match fault {
            Fault::Connect => {
                conn.tried = true;
                conn.failures += 1;
                self.shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                Duration::from_millis(5u64 << conn.failures.min(8)).min(Duration::from_secs(1))
            }
            _ => Duration::ZERO, // a timeout or reset: reconnect at the next scan
        };
        if self.arrivals.is_some() {
            conn.link = Link::Idle;
            conn.intended_ns = None;
            conn.idle_since = self.ctx.now_ns();
            self.idle.push(i);
        } else {
            conn.link = Link::Down {
                retry_at: Instant::now() + backoff,
            };
        }
        if was_connecting {
            self.reopen_waiting(Instant::now());
        }
    }
}
