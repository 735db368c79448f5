//! The async face of [`Storage`] for the tokio shell: every operation runs on tokio's
//! blocking threads, never on the async ones.
//!
//! Invariants:
//! - the bytes of writes queued or running never exceed the write budget
//!   ([`DEFAULT_WRITE_BUDGET`] unless set): [`Disk::write`] and [`Disk::queue_write`] wait
//!   for budget before they take the block, which is the back-pressure that keeps memory
//!   bounded when the disk is slower than the network;
//! - at most [`Disk::concurrency`] blocking operations run at once, so a burst of writes
//!   does not spawn hundreds of blocking threads;
//! - a write's data is written straight from the received `Bytes` (no copy).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BlockRef, PieceIndex};
use tokio::sync::Semaphore;

use super::error::StorageError;
use super::fs::Storage;
use super::resume_file;
use crate::torrent::resume::{FileStamp, ResumeData};

/// Bytes of writes that may be queued or in progress at once by default: 32 MiB.
pub const DEFAULT_WRITE_BUDGET: u32 = 32 << 20;

/// An async, cheaply cloned handle on a torrent's [`Storage`].
#[derive(Clone)]
pub struct Disk {
    storage: Arc<Storage>,
    write_budget: Arc<Semaphore>,
    budget: u32,
    ops: Arc<Semaphore>,
    concurrency: usize,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("storage", &self.storage)
            .field("budget", &self.budget)
            .field("budget_free", &self.write_budget.available_permits())
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl Disk {
    /// A handle with the default write budget and one operation per core (at least 4).
    pub fn new(storage: Arc<Storage>) -> Disk {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        Disk::with_limits(storage, DEFAULT_WRITE_BUDGET, cores.max(4))
    }

    /// A handle allowing `write_budget` bytes of queued writes and `concurrency` blocking
    /// operations at once (each at least 1).
    pub fn with_limits(storage: Arc<Storage>, write_budget: u32, concurrency: usize) -> Disk {
        let budget = write_budget.max(1);
        let concurrency = concurrency.max(1);
        Disk {
            storage,
            write_budget: Arc::new(Semaphore::new(budget as usize)),
            budget,
            ops: Arc::new(Semaphore::new(concurrency)),
            concurrency,
        }
    }

    /// The storage behind this handle.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// How many blocking operations may run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Runs `work` on a blocking thread once an operation slot is free.
    async fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
    {
        run_blocking(Arc::clone(&self.storage), Arc::clone(&self.ops), work).await
    }

    /// Writes a block and returns once it is written (see [`Storage::write_block`]); waits
    /// first for write budget.
    pub async fn write(&self, block: BlockRef, data: Bytes) -> Result<(), StorageError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.queue_write(block, data, move |result| {
            // The caller gave up waiting: nothing to tell.
            let _ = sender.send(result);
        })
        .await;
        receiver
            .await
            .unwrap_or_else(|_| Err(StorageError::TaskFailed("the write was dropped".to_owned())))
    }

    /// Waits for write budget, then queues the write and returns at once; `done` is called
    /// with the result from a tokio task when the write is over, so keep it short (e.g. send
    /// `BlockWritten` to the torrent task on a channel). Must be called within a tokio
    /// runtime.
    pub async fn queue_write<F>(&self, block: BlockRef, data: Bytes, done: F)
    where
        F: FnOnce(Result<(), StorageError>) + Send + 'static,
    {
        let wanted = u32::try_from(data.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget);
        // The semaphore is never closed, so acquiring only fails if it were.
        let permit = Arc::clone(&self.write_budget)
            .acquire_many_owned(wanted)
            .await
            .ok();
        let storage = Arc::clone(&self.storage);
        let ops = Arc::clone(&self.ops);
        tokio::spawn(async move {
            let result = run_blocking(storage, ops, move |storage| {
                storage.write_block(block, &data)
            })
            .await;
            drop(permit);
            done(result);
        });
    }

    /// Waits until every write queued before this call is over (for a clean stop: drain,
    /// then [`Disk::checkpoint`], so no write changes a file after its stamp is taken).
    pub async fn drain(&self) {
        // Every queued write holds its share of the budget until it is over.
        let all = Arc::clone(&self.write_budget)
            .acquire_many_owned(self.budget)
            .await;
        drop(all);
    }

    /// Reads a block of a piece we have (see [`Storage::read_block`]).
    pub async fn read(&self, block: BlockRef) -> Result<Bytes, StorageError> {
        self.run(move |storage| storage.read_block(block)).await
    }

    /// Whether a piece on disk matches its SHA-1 (see [`Storage::verify_piece`]).
    pub async fn verify(&self, piece: PieceIndex) -> Result<bool, StorageError> {
        self.run(move |storage| storage.verify_piece(piece)).await
    }

    /// Verifies `pieces` on all cores (see [`Storage::check`]); `progress` gets each
    /// checked piece's length in bytes, from the checking threads.
    pub async fn check<P>(&self, pieces: Bitfield, progress: P) -> Result<Bitfield, StorageError>
    where
        P: Fn(u64) + Send + Sync + 'static,
    {
        self.run(move |storage| storage.check(&pieces, &progress))
            .await
    }

    /// The pieces we have at start-up (see [`super::resume_file::startup_have`]): trusted
    /// from `resume`, or found by hashing on all cores; `progress` gets bytes checked.
    pub async fn startup_have<P>(
        &self,
        resume: Option<ResumeData>,
        progress: P,
    ) -> Result<Bitfield, StorageError>
    where
        P: Fn(u64) + Send + Sync + 'static,
    {
        self.run(move |storage| resume_file::startup_have(storage, resume.as_ref(), &progress))
            .await
    }

    /// Syncs the data, then saves the resume file at `path` (see
    /// [`super::resume_file::checkpoint`]; `data.files` is filled in).
    pub async fn checkpoint(&self, path: PathBuf, data: ResumeData) -> Result<(), StorageError> {
        self.run(move |storage| resume_file::checkpoint(storage, &path, data))
            .await
    }

    /// Creates the torrent's empty files (see [`Storage::create_empty_files`]).
    pub async fn create_empty_files(&self) -> Result<(), StorageError> {
        self.run(Storage::create_empty_files).await
    }

    /// Makes every write done so far durable (see [`Storage::sync`]).
    pub async fn sync(&self) -> Result<(), StorageError> {
        self.run(Storage::sync).await
    }

    /// Each file's size and mtime (see [`Storage::file_stamps`]).
    pub async fn file_stamps(&self) -> Result<Vec<FileStamp>, StorageError> {
        self.run(|storage| Ok(storage.file_stamps())).await
    }
}

/// Runs `work` on a tokio blocking thread once a slot of `ops` is free.
async fn run_blocking<T, F>(
    storage: Arc<Storage>,
    ops: Arc<Semaphore>,
    work: F,
) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
{
    let slot = ops.acquire_owned().await.ok();
    let result = tokio::task::spawn_blocking(move || {
        let result = work(&storage);
        drop(slot);
        result
    })
    .await;
    result.unwrap_or_else(|error| Err(StorageError::TaskFailed(error.to_string())))
}

#[cfg(test)]
#[path = "disk/tests.rs"]
mod tests;
