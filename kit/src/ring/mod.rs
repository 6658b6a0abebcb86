//! The io_uring toolkit shared by the io_uring server model (`models/uring`) and loadgen's
//! io_uring client engine: a ring ([`Ring`], [`new_ring`]), the provided-buffer ring
//! ([`BufRing`]), the user-data packing of operations ([`pack`], [`unpack`], `Ud`), and
//! whether io_uring can be used here at all ([`available`]).
//!
//! Rings are created with SINGLE_ISSUER and DEFER_TASKRUN (completion work runs when the
//! loop asks for completions, not as interrupts to it) where the kernel has them (6.1+),
//! else without. Where io_uring is missing or disabled (`kernel.io_uring_disabled`),
//! [`available`] says why and the model refuses to start.

use std::io;

use io_uring::{opcode, squeue, types, IoUring};

mod bufring;
pub use bufring::BufRing;

/// Submission queue entries per ring.
const ENTRIES: u32 = 4096;

/// What a completion is for (the top byte of its user data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A connection was accepted.
    Accept = 1,
    /// Bytes were received.
    Recv = 2,
    /// Bytes were sent.
    Send = 3,
    /// The stop eventfd was read.
    Wake = 4,
    /// A timeout fired.
    Timer = 5,
    /// A cancellation completed.
    Cancel = 6,
    /// A message's wait (`--work wait:`) is over.
    Work = 7,
}

/// Packs an operation's user data: a kind (top byte), a generation (24 bits: a completion
/// for a closed connection whose slot was reused is told apart) and a slot (32 bits). The
/// server's loops and loadgen's io_uring engine both use it, with kinds of their own.
pub fn pack(kind: u8, gen: u32, index: usize) -> u64 {
    u64::from(kind) << 56 | u64::from(gen & 0x00FF_FFFF) << 32 | (index as u64 & 0xFFFF_FFFF)
}

/// The (kind, generation, slot) [`pack`] put in.
pub fn unpack(ud: u64) -> (u8, u32, usize) {
    (
        (ud >> 56) as u8,
        ((ud >> 32) & 0x00FF_FFFF) as u32,
        (ud & 0xFFFF_FFFF) as usize,
    )
}

/// User data of an operation: its kind, the generation of the connection it belongs to
/// (so a completion for a closed connection whose slot was reused is recognised), and the
/// connection's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ud {
    /// What the operation is.
    pub kind: Kind,
    /// The connection's generation.
    pub gen: u32,
    /// The connection's slot.
    pub index: usize,
}

impl Ud {
    /// The packed user data of `kind` for the connection in `index` at `gen`.
    pub fn of(kind: Kind, gen: u32, index: usize) -> u64 {
        Ud { kind, gen, index }.encode()
    }

    /// Packs it (see [`pack`]).
    pub fn encode(self) -> u64 {
        pack(self.kind as u8, self.gen, self.index)
    }

    /// Unpacks user data made by [`Ud::encode`].
    pub fn decode(ud: u64) -> Ud {
        let (kind, gen, index) = unpack(ud);
        let kind = match kind {
            1 => Kind::Accept,
            2 => Kind::Recv,
            3 => Kind::Send,
            4 => Kind::Wake,
            5 => Kind::Timer,
            7 => Kind::Work,
            _ => Kind::Cancel,
        };
        Ud { kind, gen, index }
    }
}

/// A ring and the number of its operations still in flight, so a loop can end only when
/// the kernel holds nothing of it (an operation keeps its socket open, and its port bound,
/// until it completes).
pub struct Ring {
    io: IoUring,
    inflight: usize,
}

impl Ring {
    /// Queues `entry`, submitting first when the submission queue is full.
    pub fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every buffer an entry points to (pool buffers, the loop's own fields)
            // outlives the operation: the loop owns them and drops them after the ring.
            if unsafe { self.io.submission().push(entry) }.is_ok() {
                self.inflight += 1;
                return Ok(());
            }
            self.io.submit()?; // full: hand what is queued to the kernel, then retry
        }
    }

    /// Submits what is queued and waits for at least one completion (at most `timeout`);
    /// appends every completion as (user data, result, flags) to `out`.
    pub fn wait(&mut self, out: &mut Vec<(u64, i32, u32)>, timeout: Option<&types::Timespec>) -> io::Result<()> {
        let submitted = match timeout {
            None => self.io.submit_and_wait(1),
            Some(ts) => self
                .io
                .submitter()
                .submit_with_args(1, &types::SubmitArgs::new().timespec(ts)),
        };
        self.collect(submitted, out)
    }

    /// Submits what is queued and collects what has completed into `out`, without waiting:
    /// [`wait`](Self::wait) with a zero timeout still put the thread to sleep on a timer and
    /// switched it out (~10 µs a call here, seen as late sends in loadgen's `--pacing spin`).
    pub fn reap(&mut self, out: &mut Vec<(u64, i32, u32)>) -> io::Result<()> {
        /// `IORING_ENTER_GETEVENTS`: with nothing to wait for, it runs the deferred
        /// completion work and returns.
        const GETEVENTS: u32 = 1;
        let queued = self.io.submission().len() as u32;
        // SAFETY: no argument is passed, so there is no pointer or size for the kernel to
        // read; the queued entries were pushed through `push`, which checked them.
        let submitted = unsafe { self.io.submitter().enter::<libc::sigset_t>(queued, 0, GETEVENTS, None) };
        self.collect(submitted, out)
    }

    /// The completions after an `io_uring_enter` that returned `submitted`.
    fn collect(&mut self, submitted: io::Result<usize>, out: &mut Vec<(u64, i32, u32)>) -> io::Result<()> {
        match submitted {
            Ok(_) => {}
            // EINTR: a signal; EBUSY: completions must be reaped first; ETIME: the timeout.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::ETIME)) => {}
            Err(e) => return Err(e),
        }
        let before = out.len();
        out.extend(self.io.completion().map(|c| (c.user_data(), c.result(), c.flags())));
        // A multishot operation lives on while its completions say MORE.
        self.inflight -= out[before..].iter().filter(|c| !io_uring::cqueue::more(c.2)).count();
        Ok(())
    }

    /// The ring itself.
    pub fn io(&self) -> &IoUring {
        &self.io
    }

    /// Cancels everything in flight and waits (at most a second) until the kernel has
    /// completed it all.
    pub fn drain(&mut self) {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(Ud::of(Kind::Cancel, 0, 0));
        if self.push(&cancel).is_err() {
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let tick = types::Timespec::new().nsec(50_000_000);
        let mut done = Vec::new();
        while self.inflight > 0 && std::time::Instant::now() < deadline {
            done.clear();
            if self.wait(&mut done, Some(&tick)).is_err() {
                return;
            }
        }
    }
}

/// A new ring: with SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them.
pub fn new_ring() -> io::Result<Ring> {
    let io = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(ENTRIES * 4)
        .build(ENTRIES)
        .or_else(|_| IoUring::builder().setup_cqsize(ENTRIES * 4).build(ENTRIES))?;
    Ok(Ring { io, inflight: 0 })
}

/// Set (to anything) to make [`available`] say no, as on a kernel without io_uring: how the
/// tests check the refusal on a machine that has it.
pub const DISABLE_ENV: &str = "ECHO_BENCH_DISABLE_URING";

/// Whether this kernel lets this process use io_uring; the error (`Unsupported`) says why
/// not.
pub fn available() -> io::Result<()> {
    if std::env::var_os(DISABLE_ENV).is_some() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("io_uring is unavailable: disabled by {DISABLE_ENV}"),
        ));
    }
    match IoUring::new(2) {
        Ok(_) => Ok(()),
        Err(e) => {
            let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| s != "0");
            let why = match disabled {
                Some(v) => format!("io_uring is disabled here (kernel.io_uring_disabled = {v})"),
                None => format!("this kernel does not offer io_uring ({e})"),
            };
            Err(io::Error::new(io::ErrorKind::Unsupported, why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips_and_masks_its_fields() {
        assert_eq!(unpack(pack(3, 0x12_3456, 7)), (3, 0x12_3456, 7));
        assert_eq!(
            unpack(pack(255, u32::MAX, u32::MAX as usize)),
            (255, 0xFF_FFFF, u32::MAX as usize)
        );
        let ud = Ud::of(Kind::Send, 9, 42);
        assert_eq!(
            Ud::decode(ud),
            Ud {
                kind: Kind::Send,
                gen: 9,
                index: 42
            }
        );
    }
}
