//! A process-wide pool of 16 KiB block buffers for the read loops.
//!
//! A read loop copies each received block out of its receive buffer (see
//! [`super::connection`]); taking that copy's memory from here rather than from `malloc`
//! saves an allocation and a free per block and, above all, the page faults of memory the
//! allocator gave back to the kernel between bursts. A buffer comes back when the last
//! `Bytes` of its block is dropped (after the disk wrote it), from whichever thread that is.
//!
//! Invariants: only buffers of exactly [`BLOCK_LEN`] bytes capacity are pooled; at most
//! [`MAX_POOLED`] wait here (4 MiB), so the pool never holds more than a burst's worth of
//! memory that was resident anyway; payloads of other lengths are plain copies.

use std::sync::Mutex;

use bytes::Bytes;
use rill_common::pieces::BLOCK_SIZE;

/// The length of a pooled buffer: one block.
pub const BLOCK_LEN: usize = BLOCK_SIZE as usize;
/// Buffers the pool keeps at most.
pub const MAX_POOLED: usize = 256;

static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A copy of `bytes`, in a pooled buffer when it is exactly one block long.
pub fn copy(bytes: &[u8]) -> Bytes {
    if bytes.len() != BLOCK_LEN {
        return Bytes::copy_from_slice(bytes);
    }
    let reused = FREE.lock().ok().and_then(|mut free| free.pop());
    let mut buf = reused.unwrap_or_else(|| Vec::with_capacity(BLOCK_LEN));
    buf.clear();
    buf.extend_from_slice(bytes);
    Bytes::from_owner(Pooled(buf))
}

/// Buffers waiting in the pool now.
pub fn pooled() -> usize {
    FREE.lock().map_or(0, |free| free.len())
}

/// A block's buffer on loan; it goes back to the pool on drop.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        if buf.capacity() != BLOCK_LEN {
            return;
        }
        if let Ok(mut free) = FREE.lock()
            && free.len() < MAX_POOLED
        {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_copied_and_their_buffers_reused() {
        let block: Vec<u8> = (0..BLOCK_LEN).map(|i| (i % 253) as u8).collect();
        let first = copy(&block);
        assert_eq!(&first[..], &block[..]);
        let at = first.as_ptr();
        // A slice keeps the buffer on loan; the last drop returns it.
        let part = first.slice(100..200);
        drop(first);
        assert_eq!(&part[..], &block[100..200]);
        drop(part);
        // Other tests may run at once, so the buffer is not necessarily the next one out:
        // take them all and find it among them.
        let taken: Vec<Bytes> = (0..=MAX_POOLED).map(|_| copy(&block)).collect();
        assert!(taken.iter().any(|b| b.as_ptr() == at), "buffer not reused");
        assert!(taken.iter().all(|b| b[..] == block[..]));
        drop(taken);
        assert!(pooled() <= MAX_POOLED);
    }

    #[test]
    fn other_lengths_are_plain_copies() {
        for len in [0, 1, BLOCK_LEN - 1, BLOCK_LEN + 1] {
            let bytes = vec![7u8; len];
            assert_eq!(&copy(&bytes)[..], &bytes[..]);
        }
    }
}
