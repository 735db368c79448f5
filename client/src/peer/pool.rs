//! A process-wide pool of receive buffers for the read loops.
//!
//! A read loop receives into a [`BUFFER_LEN`] buffer and hands each received block out as a
//! slice of it (see [`super::connection`]): the block's bytes are never copied on their way
//! to the disk. A buffer whose room runs low is retired here, and its memory is used again
//! once the last block sliced from it is dropped (after the disk wrote it), from whichever
//! thread that is. Taking buffers from here rather than from `malloc` saves the page faults
//! of memory the allocator gave back to the kernel between bursts.
//!
//! Invariants: at most [`MAX_POOLED`] retired buffers wait here (16 MiB, most of it pinned by
//! blocks waiting for the disk, which the task caps at a few MiB); a retired buffer is handed
//! out again only when nothing else refers to its memory ([`BytesMut::try_reclaim`] says
//! so), so a block still waiting for the disk is never overwritten; the newest free buffer
//! is handed out first; when the pool is full the oldest retired buffer is let go (its
//! memory is freed with its last block).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use bytes::BytesMut;

/// The capacity of a pooled receive buffer.
pub const BUFFER_LEN: usize = 256 * 1024;
/// Retired buffers the pool keeps at most.
pub const MAX_POOLED: usize = 64;

/// Retired receive buffers, oldest first.
pub struct Pool {
    retired: Mutex<VecDeque<BytesMut>>,
}

/// The pool the read loops share.
pub static POOL: Pool = Pool::new();

impl Pool {
    /// An empty pool.
    pub const fn new() -> Self {
        Pool {
            retired: Mutex::new(VecDeque::new()),
        }
    }

    fn retired(&self) -> std::sync::MutexGuard<'_, VecDeque<BytesMut>> {
        // Every update is one push, pop or remove: a panic cannot leave it inconsistent.
        self.retired.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An empty receive buffer with room for [`BUFFER_LEN`] bytes: a retired one whose
    /// blocks are all gone, or a new one.
    pub fn fresh(&self) -> BytesMut {
        let reused = {
            let mut pool = self.retired();
            // The newest first: its memory is the likeliest to be still in a CPU cache,
            // which makes the `recv` copy into it cheaper.
            let free = pool.iter_mut().rposition(|buf| buf.try_reclaim(BUFFER_LEN));
            free.and_then(|at| pool.remove(at))
        };
        reused.unwrap_or_else(|| BytesMut::with_capacity(BUFFER_LEN))
    }

    /// Takes back a buffer from [`Pool::fresh`] whose bytes the read loop no longer needs;
    /// its memory is used again once the blocks sliced from it are dropped.
    pub fn retire(&self, mut buf: BytesMut) {
        buf.clear();
        let mut pool = self.retired();
        if pool.len() >= MAX_POOLED {
            pool.pop_front();
        }
        pool.push_back(buf);
    }

    /// Buffers waiting in the pool now (free or not).
    pub fn len(&self) -> usize {
        self.retired().len()
    }

    /// Whether no buffer waits in the pool.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reused_only_once_its_blocks_are_gone() {
        let pool = Pool::new();
        let mut buf = pool.fresh();
        assert!(buf.capacity() >= BUFFER_LEN);
        buf.extend_from_slice(&[7u8; 1000]);
        let at = buf.as_ptr();
        let block = buf.split_to(600).freeze().slice(100..);
        pool.retire(buf);
        let other = pool.fresh();
        assert_ne!(other.as_ptr(), at, "a buffer with a live block was reused");
        assert_eq!(pool.len(), 1);
        assert_eq!(&block[..], &[7u8; 500][..]);
        drop(block);
        let again = pool.fresh();
        assert_eq!(again.as_ptr(), at, "the freed buffer was not reused");
        assert!(again.is_empty() && again.capacity() >= BUFFER_LEN);
        assert!(pool.is_empty());
        drop(other);
    }

    #[test]
    fn the_pool_keeps_at_most_max_pooled() {
        let pool = Pool::new();
        let held: Vec<BytesMut> = (0..MAX_POOLED + 3).map(|_| pool.fresh()).collect();
        held.into_iter().for_each(|buf| pool.retire(buf));
        assert_eq!(pool.len(), MAX_POOLED);
    }
}
