//! What the ring's completions mean: the wait that submits and reaps, and each kind of
//! completion applied to its connection (receives, sends, the connect's poll, the timer),
//! or buried when its connection was closed meanwhile.

use std::io;
use std::time::Duration;

use io_uring::{cqueue, types};

use super::{decode, resend, Op, UringConn, UringIo};
use crate::run::driver::engine::ready::{Ready, TIMER};

impl UringIo {
    /// Buffer `bid` came back holding `n` bytes for `c`: its payload joins the connection's
    /// received bytes. With stamps (a multishot `recvmsg`) the buffer holds a header and the
    /// control data before the payload, and the stamp is kept for the reader.
    fn received(&mut self, c: &mut UringConn, bid: u16, n: usize) {
        let Some(msg) = &self.stamp_msg else {
            c.rx.push_back((bid, 0, n));
            return;
        };
        match types::RecvMsgOut::parse(self.bufs.bytes(bid, 0, n), msg) {
            // The payload comes last in the buffer.
            Ok(out) if !out.payload_data().is_empty() || c.datagram => {
                let stamp = crate::os::rxstamp::stamp_in(out.control_data());
                if c.datagram {
                    // Each datagram keeps its own stamp (several may wait to be read).
                    c.dgram_stamps.push_back(stamp);
                } else {
                    c.stamp = stamp.or(c.stamp);
                }
                let len = out.payload_data().len();
                c.rx.push_back((bid, n - len, n));
            }
            // No payload on a stream: the peer's FIN (the multishot ends).
            _ => {
                self.bufs.give_back(bid);
                c.rx_end = Some(0);
            }
        }
    }

    /// Submits everything queued and waits, at most `timeout` (zero: not at all), for
    /// completions; applies each to its connection and appends what the loop must hear to
    /// `out`.
    pub(in crate::run::driver::engine) fn wait(&mut self, timeout: Duration, out: &mut Vec<Ready>) -> io::Result<()> {
        self.bufs.publish();
        self.done.clear();
        if timeout.is_zero() {
            // A poll that must not block (spinning to pace): no wait, not even a zero one.
            self.ring.reap(&mut self.done)?;
        } else {
            self.ring.wait(&mut self.done, Some(&types::Timespec::from(timeout)))?;
        }
        for k in 0..self.done.len() {
            let (user, res, flags) = self.done[k];
            let (op, id, token) = decode(user);
            let more = cqueue::more(flags);
            if op == Some(Op::Timer) {
                self.timer_fired(more, out)?;
                continue;
            }
            let bid = cqueue::buffer_select(flags);
            let applied = self.with_conn(token, Some(id), |io, c| {
                if !more {
                    c.ops -= 1;
                }
                match op {
                    Some(Op::Connect) => {
                        c.connect_armed = false;
                        Ok(Some(Ready {
                            token,
                            readable: c.datagram,
                            writable: true,
                            closed: false,
                        }))
                    }
                    Some(Op::Recv) => io.recv_done(c, token, res, more, bid),
                    Some(Op::Send) => io.send_done(c, token, res),
                    Some(Op::Datagram(slot)) => {
                        c.dgram_free.push(slot);
                        if res < 0 {
                            c.tx_err = Some(-res);
                        }
                        Ok(Some(Ready {
                            token,
                            readable: false,
                            writable: true,
                            closed: false,
                        }))
                    }
                    Some(Op::Timer) | None => Ok(None),
                }
            });
            match applied {
                Some(ready) => out.extend(ready?),
                None => self.bury(id, more, bid),
            }
        }
        for token in std::mem::take(&mut self.starved) {
            self.with_conn(token, None, |io, c| io.start(c, token)).transpose()?;
        }
        Ok(())
    }

    /// The open-loop timer's poll fired: the loop hears it; a multishot poll that ended is
    /// armed again.
    fn timer_fired(&mut self, more: bool, out: &mut Vec<Ready>) -> io::Result<()> {
        out.push(Ready {
            token: TIMER,
            readable: true,
            writable: false,
            closed: false,
        });
        match self.timer {
            // The multishot poll ended: poll again.
            Some(fd) if !more => self.watch_timer(fd),
            _ => Ok(()),
        }
    }

    /// A receive completed on `c` (`res` bytes, or EOF, or an error): what the loop must
    /// hear, if anything (an empty pool is retried next round, silently).
    fn recv_done(
        &mut self,
        c: &mut UringConn,
        token: usize,
        res: i32,
        more: bool,
        bid: Option<u16>,
    ) -> io::Result<Option<Ready>> {
        if !more {
            c.recv_armed = false;
        }
        match res {
            n if n > 0 => {
                if let Some(bid) = bid {
                    self.received(c, bid, n as usize);
                }
                if !more && c.rx_end.is_none() {
                    self.start(c, token)?; // the kernel ended the multishot: renew it
                }
            }
            // An empty datagram is a datagram (too short for a header: the reader counts it).
            0 if c.datagram => {
                if let Some(bid) = bid {
                    c.rx.push_back((bid, 0, 0));
                }
            }
            0 => c.rx_end = Some(0),
            e if -e == libc::ENOBUFS => {
                if !more {
                    self.starved.push(token); // the pool ran dry: re-armed next round
                }
                return Ok(None);
            }
            e => c.rx_end = Some(-e),
        }
        Ok(Some(Ready {
            token,
            readable: true,
            writable: false,
            closed: c.rx_end.is_some(),
        }))
    }

    /// A send completed on `c`: a short one goes on at once (nothing to hear yet).
    fn send_done(&mut self, c: &mut UringConn, token: usize, res: i32) -> io::Result<Option<Ready>> {
        if res < 0 {
            c.tx_err = Some(-res);
            c.tx_busy = false;
        } else {
            c.tx_off += res as usize;
            if c.tx_off < c.tx.len() {
                resend(&mut self.ring, c, token)?; // a short send: the rest goes now
                return Ok(None);
            }
            c.tx_busy = false;
        }
        Ok(Some(Ready {
            token,
            readable: false,
            writable: true,
            closed: false,
        }))
    }

    /// A completion for a connection closed meanwhile: its buffer goes back, and the
    /// socket is closed with its last completion.
    fn bury(&mut self, id: u32, more: bool, bid: Option<u16>) {
        if let Some(bid) = bid {
            self.bufs.give_back(bid);
        }
        if more {
            return;
        }
        if let Some(k) = self.graveyard.iter().position(|(c, _)| c.id == id) {
            let c = &mut self.graveyard[k].0;
            c.ops = c.ops.saturating_sub(1);
            if c.ops == 0 {
                self.graveyard.swap_remove(k);
            }
        }
    }
}
