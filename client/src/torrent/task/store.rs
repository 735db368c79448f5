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

/// What the task's disk worker needs to hash a piece itself, as its blocks are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PieceInfo {
    /// The piece's SHA-1 from the metainfo (BEP 3).
    pub hash: [u8; 20],
    /// The piece's length in bytes.
    pub len: u32,
}

/// Blocking block storage, called from blocking threads (the torrent's disk worker for
/// blocks and pieces, a blocking task for resume saves), never from the async threads.
pub trait BlockStore: Send + Sync + 'static {
    /// Writes a received block.
    fn write(&self, block: BlockRef, data: &Bytes) -> Result<(), StoreError>;
    /// Writes `blocks`, contiguous and in order, into `piece` from byte `begin` (one
    /// vectored write per file span where the store can).
    fn write_run(&self, piece: PieceIndex, begin: u32, blocks: &[Bytes]) -> Result<(), StoreError> {
        let mut at = begin;
        for data in blocks {
            let length = u32::try_from(data.len()).map_err(|_| "block too long")?;
            self.write(
                BlockRef {
                    piece,
                    begin: at,
                    length,
                },
                data,
            )?;
            at += length;
        }
        Ok(())
    }
    /// Reads a block to send.
    fn read(&self, block: BlockRef) -> Result<Bytes, StoreError>;
    /// Fills `buf` with the bytes at `begin` in `piece`: `Ok(false)` when they are not all
    /// on disk (a missing or short file).
    fn read_range(
        &self,
        piece: PieceIndex,
        begin: u32,
        buf: &mut [u8],
    ) -> Result<bool, StoreError> {
        let length = u32::try_from(buf.len()).map_err(|_| "range too long")?;
        let data = self.read(BlockRef {
            piece,
            begin,
            length,
        })?;
        if data.len() != buf.len() {
            return Ok(false);
        }
        buf.copy_from_slice(&data);
        Ok(true)
    }
    /// Hashes a piece whose blocks are all written: whether it matches (used when
    /// [`BlockStore::piece_info`] gives nothing).
    fn verify(&self, piece: PieceIndex) -> Result<bool, StoreError>;
    /// The piece's hash and length, so the disk worker can hash blocks as it writes them
    /// and read back only what it did not see in order; `None`: [`BlockStore::verify`].
    fn piece_info(&self, _piece: PieceIndex) -> Option<PieceInfo> {
        None
    }
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
