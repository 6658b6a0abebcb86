//! A provided-buffer ring: a pool of equal buffers the kernel picks from for multishot
//! receives (IORING_REGISTER_PBUF_RING). The kernel takes buffers at the head; the loop
//! gives each back at the tail once its bytes are echoed, and publishes the tail once per
//! loop iteration.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The ring of buffer descriptors and the buffers it describes.
pub struct BufRing {
    entries: NonNull<BufRingEntry>,
    layout: Layout,
    mask: u16,
    bufs: Box<[u8]>,
    buf_size: usize,
    tail: u16,
}

// SAFETY: the ring is owned and used by one thread at a time (moved into its event loop).
unsafe impl Send for BufRing {}

impl BufRing {
    /// `count` (a power of two, at most 32768) buffers of `buf_size` bytes, registered with
    /// `ring` as buffer group `bgid`, all handed to the kernel.
    pub fn new(ring: &IoUring, count: u16, buf_size: usize, bgid: u16) -> io::Result<BufRing> {
        assert!(count.is_power_of_two(), "buffer count must be a power of two");
        let layout = Layout::from_size_align(usize::from(count) * size_of::<BufRingEntry>(), 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        let entries = NonNull::new(ptr).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut ring_buf = BufRing {
            entries,
            layout,
            mask: count - 1,
            bufs: vec![0u8; usize::from(count) * buf_size].into_boxed_slice(),
            buf_size,
            tail: 0,
        };
        // SAFETY: the descriptor memory is page aligned, `count` entries long, and lives in
        // `ring_buf`, which the event loop drops only after the ring itself.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(ptr as u64, count, bgid, 0)?;
        }
        for bid in 0..count {
            ring_buf.give_back(bid);
        }
        ring_buf.publish();
        Ok(ring_buf)
    }

    /// The first `len` bytes of buffer `bid`, from `off`.
    pub fn bytes(&self, bid: u16, off: usize, len: usize) -> &[u8] {
        let start = usize::from(bid) * self.buf_size;
        &self.bufs[start + off..start + len]
    }

    /// Returns buffer `bid` to the pool (visible to the kernel after [`publish`](Self::publish)).
    pub fn give_back(&mut self, bid: u16) {
        let i = usize::from(self.tail & self.mask);
        // SAFETY: `i` is below the ring's entry count; the kernel only reads entries
        // between its head and the published tail, and this one is past the tail.
        let entry = unsafe { &mut *self.entries.as_ptr().add(i) };
        entry.set_addr(self.bufs[usize::from(bid) * self.buf_size..].as_ptr() as u64);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the buffers given back so far visible to the kernel.
    pub fn publish(&self) {
        // SAFETY: the tail field lies in the first entry of the live descriptor ring; the
        // kernel reads it with acquire semantics, so a release store orders the entries.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the ring that used it is gone.
        unsafe { dealloc(self.entries.as_ptr().cast(), self.layout) }
    }
}
