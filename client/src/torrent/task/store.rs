//! What the torrent task needs of storage and trackers, as small traits, so the event loop
//! is tested with in-memory stand-ins and the real storage and announcer plug in by adapters.

use std::error::Error;

use bytes::Bytes;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BlockRef, PieceIndex};
use rill_common::tracker::AnnounceEvent;

use crate::torrent::state::Stats;

/// An error from storage, for the user (one line).
pub type StoreError = Box<dyn Error + Send + Sync>;

/// Blocking block storage, called from blocking threads (never the async ones).
pub trait BlockStore: Send + Sync + 'static {
    /// Writes a received block.
    fn write(&self, block: BlockRef, data: &Bytes) -> Result<(), StoreError>;
    /// Reads a block to send.
    fn read(&self, block: BlockRef) -> Result<Bytes, StoreError>;
    /// Hashes a piece whose blocks are all written: whether it matches.
    fn verify(&self, piece: PieceIndex) -> Result<bool, StoreError>;
    /// Every wanted piece is verified: create what no block write creates (empty files).
    fn complete(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Flushes written data to disk (before the resume file names it verified).
    fn sync(&self) -> Result<(), StoreError>;
    /// Saves the resume file for these verified pieces (after [`BlockStore::sync`]);
    /// `uploaded`/`downloaded` are the torrent's totals.
    fn save_resume(
        &self,
        have: &Bitfield,
        uploaded: u64,
        downloaded: u64,
    ) -> Result<(), StoreError>;
}

/// The trackers of a torrent, as the task drives them.
pub trait Trackers: Send + 'static {
    /// The task's state machine asked for an announce (`started`, `completed`, `stopped`);
    /// `stats` are the torrent's counters of this run at that moment.
    fn announce(&mut self, event: AnnounceEvent, stats: &Stats);
    /// The torrent stops: announce `stopped` and wait for the replies, at most a few seconds.
    fn stop(self: Box<Self>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// No trackers (a torrent given its peers with `--peer`, or tests).
#[derive(Debug, Default)]
pub struct NoTrackers;

impl Trackers for NoTrackers {
    fn announce(&mut self, _event: AnnounceEvent, _stats: &Stats) {}

    fn stop(self: Box<Self>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async {})
    }
}
