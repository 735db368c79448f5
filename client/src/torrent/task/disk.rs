//! The torrent's disk worker: one thread per torrent doing all its block I/O and hashing,
//! fed by a channel, so a block costs no thread hand-off of its own.
//!
//! Invariants:
//! - the task sends the jobs of one turn of its loop together (one hand-off, and at most one
//!   wake-up of this thread, per turn); each wake-up takes every job queued (it stops taking
//!   more once it has [`MAX_BATCH`]), answers each with exactly one [`Event`], and sends the
//!   answers back as one [`Done`]: one wake-up of the task per batch, not per block;
//! - in a batch, writes go first (sorted; a piece's contiguous blocks in one
//!   [`BlockStore::write_run`]), then verifications, then reads. This keeps the meaning of
//!   the task's order: a verification is asked only after every write of its piece came
//!   back, and reads touch only verified pieces, which nothing writes;
//! - a piece is checked against the bytes on disk: blocks hashed from their buffers are
//!   exactly those just written (see `hasher`), the rest is read back;
//! - the read cache ([`ReadCache`], shared with the task, which serves a request from it
//!   without waking the worker) holds at most [`READ_CACHE`] ranges of at most
//!   [`READ_AHEAD`] bytes, and a write into a piece drops that piece's ranges first;
//! - the worker ends when the task drops its job sender (or the task its receiver).

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use rill_common::pieces::{BlockRef, PieceIndex};
use sha1::Digest;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::hasher::Hashers;
use super::store::{BlockStore, StoreError};
use crate::torrent::PeerKey;
use crate::torrent::state::Event;

/// Jobs above which a wake-up takes no more, so answers flow back while a burst is written.
const MAX_BATCH: usize = 256;
/// Bytes read at once to serve a request: the rest of the piece from the requested block,
/// up to this, since a peer asks for a piece's blocks in order. Each miss costs the peer a
/// round trip to this thread, so the whole piece is read where it is not too large.
const READ_AHEAD: u32 = 1 << 20;
/// Ranges read ahead kept for the requests that follow (at most 4 MiB).
const READ_CACHE: usize = 4;
/// Bytes read back at a time to finish a piece's hash.
const HASH_CHUNK: u32 = 256 << 10;

/// Work for the disk worker (the task's [`crate::torrent::state::Action`]s on storage).
#[derive(Debug)]
pub(super) enum Job {
    /// Write a received block: answered by `BlockWritten` or `StorageFailed`.
    Write(BlockRef, Bytes),
    /// Check a piece whose writes all came back: `PieceVerified` or `StorageFailed`.
    Verify(PieceIndex),
    /// Read a block for a peer: `BlockRead` or `StorageFailed`.
    Read(PeerKey, BlockRef),
}

/// The answers to one batch of jobs.
#[derive(Debug)]
pub(super) struct Done {
    /// One event per job.
    pub events: Vec<Event>,
    /// Bytes of the batch's writes (for the task's back-pressure).
    pub write_bytes: usize,
}

/// Ranges of verified pieces read ahead, newest first, shared by the worker (which fills
/// them) and the task (which serves requests from them without a hand-off).
#[derive(Default)]
pub(super) struct ReadCache {
    ranges: Mutex<VecDeque<(PieceIndex, u32, Bytes)>>,
}

impl ReadCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(PieceIndex, u32, Bytes)>> {
        // Every update is one push, pop or retain: a panic cannot leave it inconsistent.
        self.ranges.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bytes of `block` if a cached range holds them all.
    pub fn get(&self, block: BlockRef) -> Option<Bytes> {
        let mut ranges = self.lock();
        let at = ranges.iter().position(|(piece, begin, range)| {
            *piece == block.piece
                && *begin <= block.begin
                && u64::from(block.begin) + u64::from(block.length)
                    <= u64::from(*begin) + range.len() as u64
        })?;
        let entry = ranges.remove(at)?;
        let from = (block.begin - entry.1) as usize;
        let data = entry.2.slice(from..from + block.length as usize);
        ranges.push_front(entry);
        Some(data)
    }

    fn insert(&self, piece: PieceIndex, begin: u32, range: Bytes) {
        let mut ranges = self.lock();
        if ranges.len() >= READ_CACHE {
            ranges.pop_back();
        }
        ranges.push_front((piece, begin, range));
    }

    fn forget(&self, piece: PieceIndex) {
        let mut ranges = self.lock();
        if ranges.iter().any(|(cached, _, _)| *cached == piece) {
            ranges.retain(|(cached, _, _)| *cached != piece);
        }
    }
}

/// The task's ends of a worker.
pub(super) struct Link {
    /// Where jobs go, those of one turn of the task's loop together.
    pub jobs: mpsc::Sender<Vec<Job>>,
    /// Where the answers come back, one [`Done`] per batch.
    pub done: UnboundedReceiver<Done>,
    /// The ranges read ahead, to serve requests from directly.
    pub cache: Arc<ReadCache>,
}

/// Starts the worker for `store`. If the thread cannot start, the job receiver is dropped,
/// so sending fails at once.
pub(super) fn spawn(store: Arc<dyn BlockStore>) -> Link {
    let (jobs, jobs_rx) = mpsc::channel();
    let (done, done_rx) = unbounded_channel();
    let worker = Worker::new(store);
    let cache = Arc::clone(&worker.cache);
    let started = std::thread::Builder::new()
        .name("rill-disk".to_owned())
        .spawn(move || worker.run(&jobs_rx, &done));
    if let Err(err) = started {
        tracing::warn!("cannot start the disk thread: {err}");
    }
    Link {
        jobs,
        done: done_rx,
        cache,
    }
}

/// The worker's own state: the store, the pieces' partial hashes, the read cache.
struct Worker {
    store: Arc<dyn BlockStore>,
    hashers: Hashers,
    cache: Arc<ReadCache>,
    buf: Vec<u8>,
}

impl Worker {
    fn new(store: Arc<dyn BlockStore>) -> Self {
        Worker {
            store,
            hashers: Hashers::default(),
            cache: Arc::default(),
            buf: Vec::new(),
        }
    }

    fn run(mut self, jobs: &mpsc::Receiver<Vec<Job>>, done: &UnboundedSender<Done>) {
        while let Ok(mut batch) = jobs.recv() {
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            let answers = self.process(&mut batch);
            if done.send(answers).is_err() {
                return;
            }
        }
    }

    /// Carries out a batch (emptying it): writes, then verifications, then reads.
    fn process(&mut self, batch: &mut Vec<Job>) -> Done {
        let mut writes = Vec::new();
        let mut verifies = Vec::new();
        let mut reads = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Write(block, data) => writes.push((block, data)),
                Job::Verify(piece) => verifies.push(piece),
                Job::Read(peer, block) => reads.push((peer, block)),
            }
        }
        let mut events = Vec::with_capacity(writes.len() + verifies.len() + reads.len());
        let write_bytes = writes.iter().map(|(_, data)| data.len()).sum();
        self.write_all(writes, &mut events);
        for piece in verifies {
            events.push(match self.verify(piece) {
                Ok(good) => Event::PieceVerified(piece, good),
                Err(err) => Event::StorageFailed(err.to_string()),
            });
        }
        reads.sort_by_key(|(_, block)| (block.piece, block.begin));
        for (peer, block) in reads {
            events.push(match self.read(block) {
                Ok(data) => Event::BlockRead(peer, block, data),
                Err(err) => Event::StorageFailed(err.to_string()),
            });
        }
        Done {
            events,
            write_bytes,
        }
    }

    /// Writes the blocks, a piece's contiguous ones together, hashing what comes in order.
    fn write_all(&mut self, mut writes: Vec<(BlockRef, Bytes)>, events: &mut Vec<Event>) {
        writes.sort_by_key(|(block, _)| (block.piece, block.begin));
        let mut run_blocks: Vec<BlockRef> = Vec::new();
        let mut run_data: Vec<Bytes> = Vec::new();
        for (block, data) in writes {
            let follows = run_blocks.last().is_some_and(|last| {
                last.piece == block.piece
                    && last.begin.checked_add(last.length) == Some(block.begin)
            });
            if !follows {
                self.write_run(&mut run_blocks, &mut run_data, events);
            }
            run_blocks.push(block);
            run_data.push(data);
        }
        self.write_run(&mut run_blocks, &mut run_data, events);
    }

    /// Writes one run of contiguous blocks of a piece (emptying it) and answers each block.
    fn write_run(
        &mut self,
        blocks: &mut Vec<BlockRef>,
        data: &mut Vec<Bytes>,
        events: &mut Vec<Event>,
    ) {
        let Some(first) = blocks.first().copied() else {
            return;
        };
        let piece = first.piece;
        self.cache.forget(piece);
        // Hashed before the write, while the bytes are still in the CPU cache from the
        // receive; if the write fails the partial hash is dropped, so what is checked is
        // still only what is on disk.
        let hashed = self.store.piece_info(piece).is_some();
        if hashed {
            self.hashers.written(piece, first.begin, data);
        }
        let result = self.store.write_run(piece, first.begin, data);
        match result {
            Ok(()) => {
                events.extend(blocks.iter().map(|block| Event::BlockWritten(*block)));
            }
            Err(err) => {
                if hashed {
                    self.hashers.take(piece);
                }
                let message = err.to_string();
                events.extend(blocks.iter().map(|_| Event::StorageFailed(message.clone())));
            }
        }
        blocks.clear();
        data.clear();
    }

    /// Whether the piece on disk matches its hash: the partial hash from the writes, then
    /// the rest read back.
    fn verify(&mut self, piece: PieceIndex) -> Result<bool, StoreError> {
        let partial = self.hashers.take(piece);
        let Some(info) = self.store.piece_info(piece) else {
            return self.store.verify(piece);
        };
        let mut sha = partial.sha;
        let mut at = partial.upto;
        if at > info.len {
            return Ok(false);
        }
        while at < info.len {
            let len = (info.len - at).min(HASH_CHUNK);
            self.buf.resize(len as usize, 0);
            let chunk = self.buf.get_mut(..len as usize).unwrap_or_default();
            if !self.store.read_range(piece, at, chunk)? {
                return Ok(false);
            }
            sha.update(&*chunk);
            at += len;
        }
        Ok(sha.finalize().as_slice() == info.hash)
    }

    /// A block to send: from a range read ahead, or read with the rest of the piece after it
    /// (up to [`READ_AHEAD`]) and kept for the requests that follow.
    fn read(&mut self, block: BlockRef) -> Result<Bytes, StoreError> {
        if let Some(data) = self.cache.get(block) {
            return Ok(data);
        }
        let Some(info) = self.store.piece_info(block.piece) else {
            return self.store.read(block);
        };
        let end = block.begin.checked_add(block.length);
        if end.is_none_or(|end| end > info.len) {
            // Outside the piece: the store says what is wrong.
            return self.store.read(block);
        }
        let len = (info.len - block.begin).min(READ_AHEAD).max(block.length);
        let mut range = vec![0u8; len as usize];
        if !self
            .store
            .read_range(block.piece, block.begin, &mut range)?
        {
            // Not all there: the store's read names what is missing.
            return self.store.read(block);
        }
        let range = Bytes::from(range);
        let data = range.slice(..block.length as usize);
        self.cache.insert(block.piece, block.begin, range);
        Ok(data)
    }
}

#[cfg(test)]
#[path = "disk/tests.rs"]
mod tests;
