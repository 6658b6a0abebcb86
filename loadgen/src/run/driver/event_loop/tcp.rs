//! TCP_INFO of a thread's connections at the window's start and end: the retransmissions
//! inside the window and the smoothed RTTs (read once each, never per message).

use super::{Client, Link};
use crate::run::driver::shared::TcpWindow;

impl Client<'_> {
    /// (id, retransmissions over its life, smoothed RTT µs) of every open TCP connection.
    pub(super) fn tcp_infos(&self) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        self.conns.iter().filter_map(|c| {
            let sock = c.sock.as_ref().filter(|_| matches!(c.link, Link::Up))?;
            let (retrans, rtt) = crate::os::sys::tcp_info(sock.fd())?;
            Some((c.id, retrans, rtt))
        })
    }

    /// TCP_INFO over the window: retransmissions of the connections open at both its ends,
    /// and every open connection's smoothed RTT at its end. `None` without TCP connections.
    pub(super) fn tcp_window(&self) -> Option<TcpWindow> {
        let end: Vec<(u32, u32, u32)> = self.tcp_infos().collect();
        if end.is_empty() {
            return None;
        }
        let retransmits = end
            .iter()
            .filter_map(|&(id, retrans, _)| {
                let k = self.retrans_start.binary_search_by_key(&id, |&(i, _)| i).ok()?;
                // A connection reopened meanwhile starts again from 0: not counted.
                Some(u64::from(retrans.saturating_sub(self.retrans_start[k].1)))
            })
            .sum();
        Some(TcpWindow {
            retransmits,
            rtt_us: end.iter().map(|&(_, _, rtt)| rtt).collect(),
        })
    }
}
