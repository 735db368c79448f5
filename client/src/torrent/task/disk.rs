//! The torrent's disk worker: one thread per torrent doing all its block I/O and hashing,
//! fed by a channel, so a block costs no thread hand-off of its own.
//!
//! Invariants:
//! - each wake-up takes every job queued (at most [`MAX_BATCH`]), answers each with exactly
//!   one [`Event`], and sends the answers back as one [`Done`]: one wake-up of the task per
//!   batch, not per block;
//! - in a batch, writes go first (sorted; a piece's contiguous blocks in one
//!   [`BlockStore::write_run`]), then verifications, then reads. This keeps the meaning of
//!   the task's order: a verification is asked only after every write of its piece came
//!   back, and reads touch only verified pieces, which nothing writes;
//! - a piece is checked against the bytes on disk: blocks hashed from their buffers are
//!   exactly those just written (see `hasher`), the rest is read back;
//! - the read cache holds at most [`READ_CACHE`] ranges of at most [`READ_AHEAD`] bytes,
//!   and a write into a piece drops that piece's ranges;
//! - the worker ends when the task drops its job sender (or the task its receiver).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;

use bytes::Bytes;
use rill_common::pieces::{BlockRef, PieceIndex};
use sha1::Digest;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::hasher::Hashers;
use super::store::{BlockStore, StoreError};
use crate::torrent::PeerKey;
use crate::torrent::state::Event;

/// Jobs taken at one wake-up at most, so answers flow back while a burst is written.
const MAX_BATCH: usize = 256;
/// Bytes read at once to serve a request: the rest of the piece from the requested block,
/// up to this, since a peer asks for a piece's blocks in order.
const READ_AHEAD: u32 = 256 << 10;
/// Ranges read ahead kept for the requests that follow.
const READ_CACHE: usize = 8;
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

/// Starts the worker for `store`: jobs go in, one [`Done`] per batch comes out. If the
/// thread cannot start, the job receiver is dropped, so sending fails at once.
pub(super) fn spawn(store: Arc<dyn BlockStore>) -> (mpsc::Sender<Job>, UnboundedReceiver<Done>) {
    let (jobs, jobs_rx) = mpsc::channel();
    let (done, done_rx) = unbounded_channel();
    let worker = Worker::new(store);
    let started = std::thread::Builder::new()
        .name("rill-disk".to_owned())
        .spawn(move || worker.run(&jobs_rx, &done));
    if let Err(err) = started {
        tracing::warn!("cannot start the disk thread: {err}");
    }
    (jobs, done_rx)
}

/// The worker's own state: the store, the pieces' partial hashes, the read cache.
struct Worker {
    store: Arc<dyn BlockStore>,
    hashers: Hashers,
    cache: VecDeque<(PieceIndex, u32, Bytes)>,
    buf: Vec<u8>,
}

impl Worker {
    fn new(store: Arc<dyn BlockStore>) -> Self {
        Worker {
            store,
            hashers: Hashers::default(),
            cache: VecDeque::new(),
            buf: Vec::new(),
        }
    }

    fn run(mut self, jobs: &mpsc::Receiver<Job>, done: &UnboundedSender<Done>) {
        let mut batch = Vec::new();
        while let Ok(first) = jobs.recv() {
            batch.push(first);
            batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
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
        self.cache.retain(|(cached, _, _)| *cached != piece);
        let result = self.store.write_run(piece, first.begin, data);
        match result {
            Ok(()) => {
                if self.store.piece_info(piece).is_some() {
                    self.hashers.written(piece, first.begin, data);
                }
                events.extend(blocks.iter().map(|block| Event::BlockWritten(*block)));
            }
            Err(err) => {
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
        if let Some(data) = self.cached(block) {
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
        if self.cache.len() >= READ_CACHE {
            self.cache.pop_back();
        }
        self.cache.push_front((block.piece, block.begin, range));
        Ok(data)
    }

    fn cached(&mut self, block: BlockRef) -> Option<Bytes> {
        let at = self.cache.iter().position(|(piece, begin, range)| {
            *piece == block.piece
                && *begin <= block.begin
                && u64::from(block.begin) + u64::from(block.length)
                    <= u64::from(*begin) + range.len() as u64
        })?;
        let entry = self.cache.remove(at)?;
        let from = (block.begin - entry.1) as usize;
        let data = entry.2.slice(from..from + block.length as usize);
        self.cache.push_front(entry);
        Some(data)
    }
}

#[cfg(test)]
#[path = "disk/tests.rs"]
mod tests;
