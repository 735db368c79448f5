//! Turning what the user typed into a running torrent: reading the `.torrent` (file or URL),
//! opening its storage, checking the data already there, and the adapters that plug the
//! storage and the announcer into the torrent task.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rill_common::bitfield::Bitfield;
use rill_common::metainfo::Metainfo;
use rill_common::pieces::{BlockRef, PieceIndex};
use rill_common::tracker::AnnounceEvent;
use tokio::sync::watch;

use super::SessionError;
use crate::announce::{self, Announcer};
use crate::storage::resume_file;
use crate::storage::{Storage, StorageError};
use crate::torrent::resume::ResumeData;
use crate::torrent::state::Stats;
use crate::torrent::task::{self, BlockStore, PieceInfo, StoreError, Trackers};

/// The largest `.torrent` fetched over HTTP.
const MAX_TORRENT_LEN: usize = 32 << 20;
/// How long `stopped` announces may take when a torrent stops.
pub const STOP_ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a torrent named by a path or an http(s) URL (magnet links go through
/// [`super::magnet::load`]).
pub async fn load_source(source: &str) -> Result<Metainfo, SessionError> {
    let failed = |message: String| SessionError::Source {
        source_name: source.to_owned(),
        message,
    };
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        fetch(source).await.map_err(failed)?
    } else {
        tokio::fs::read(source)
            .await
            .map_err(|err| failed(err.to_string()))?
    };
    Metainfo::from_bytes(&bytes).map_err(|err| failed(format!("not a valid torrent: {err}")))
}

async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|err| err.to_string())?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|err| err.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP status {}", response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| err.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_TORRENT_LEN {
            return Err(format!("larger than {MAX_TORRENT_LEN} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// For `rill seed --data DIR`: the folder the torrent's file or folder is in. `DIR` may be
/// that folder, or the torrent's own folder (multi-file) or file (single-file).
pub fn seed_root(data: &Path, name: &str) -> PathBuf {
    if data.join(name).exists() {
        return data.to_path_buf();
    }
    match (data.file_name(), data.parent()) {
        (Some(last), Some(parent)) if last == name => parent.to_path_buf(),
        _ => data.to_path_buf(),
    }
}

/// The storage of a torrent, with its resume file and counters, as the task sees it.
pub struct DiskStore {
    storage: Arc<Storage>,
    resume_path: PathBuf,
    info_hash: rill_common::InfoHash,
    file_priorities: Vec<u8>,
}

impl DiskStore {
    /// Wraps `storage`, saving resume data for `info_hash` at `resume_path`.
    pub fn new(
        storage: Arc<Storage>,
        resume_path: PathBuf,
        info_hash: rill_common::InfoHash,
        file_priorities: Vec<u8>,
    ) -> Self {
        DiskStore {
            storage,
            resume_path,
            info_hash,
            file_priorities,
        }
    }
}

impl BlockStore for DiskStore {
    fn write(&self, block: BlockRef, data: &Bytes) -> Result<(), StoreError> {
        Ok(self.storage.write_block(block, data)?)
    }

    fn write_run(&self, piece: PieceIndex, begin: u32, blocks: &[Bytes]) -> Result<(), StoreError> {
        Ok(self.storage.write_run(piece, begin, blocks)?)
    }

    fn read(&self, block: BlockRef) -> Result<Bytes, StoreError> {
        Ok(self.storage.read_block(block)?)
    }

    fn read_range(
        &self,
        piece: PieceIndex,
        begin: u32,
        buf: &mut [u8],
    ) -> Result<bool, StoreError> {
        Ok(self.storage.read_range(piece, begin, buf)?)
    }

    fn verify(&self, piece: PieceIndex) -> Result<bool, StoreError> {
        Ok(self.storage.verify_piece(piece)?)
    }

    fn piece_info(&self, piece: PieceIndex) -> Option<PieceInfo> {
        Some(PieceInfo {
            hash: self.storage.piece_hash(piece)?,
            len: self.storage.layout().piece_size(piece),
        })
    }

    fn complete(&self) -> Result<(), StoreError> {
        Ok(self.storage.create_empty_files()?)
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(self.storage.sync()?)
    }

    fn save_resume(
        &self,
        have: &Bitfield,
        uploaded: u64,
        downloaded: u64,
    ) -> Result<(), StoreError> {
        let data = ResumeData {
            info_hash: self.info_hash,
            have: have.clone(),
            files: Vec::new(),
            file_priorities: self.file_priorities.clone(),
            uploaded,
            downloaded,
        };
        // Syncs first, then stamps the files, then replaces the file atomically.
        Ok(resume_file::checkpoint(
            &self.storage,
            &self.resume_path,
            data,
        )?)
    }
}

/// What the resume file says, and the pieces found good on disk (hashing on all cores what
/// the resume file cannot vouch for). `progress` gets the bytes of each piece checked.
pub fn startup(
    storage: &Storage,
    resume_path: &Path,
    info_hash: &rill_common::InfoHash,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Bitfield, Option<ResumeData>), StorageError> {
    let piece_count = storage.layout().piece_count();
    let resume = match resume_file::load(resume_path, info_hash, piece_count) {
        Ok(resume) => resume,
        Err(err) => {
            tracing::warn!("{err}; checking the data instead");
            None
        }
    };
    let have = resume_file::startup_have(storage, resume.as_ref(), progress)?;
    Ok((have, resume))
}

/// Bytes a start-up check will hash (for the checking bar).
pub fn bytes_to_check(
    storage: &Storage,
    resume_path: &Path,
    info_hash: &rill_common::InfoHash,
) -> u64 {
    let piece_count = storage.layout().piece_count();
    let resume = resume_file::load(resume_path, info_hash, piece_count)
        .ok()
        .flatten();
    resume_file::plan_startup(storage, resume.as_ref()).bytes_to_check(storage)
}

/// How long a stopping torrent waits for its `completed` announce to be answered before
/// sending `stopped` (the announcer drops an announce in flight when told to stop).
const COMPLETED_GRACE: Duration = Duration::from_secs(3);

/// The announcer of a torrent as the task drives it.
pub struct TrackerLink {
    announcer: Announcer,
    counters: Arc<watch::Sender<announce::Progress>>,
    /// Successful announces counted when `completed` was asked for.
    completed_after: Option<u64>,
}

impl TrackerLink {
    /// Starts announcing; counters follow `progress` (the torrent task's).
    pub fn spawn(
        config: announce::AnnounceConfig,
        counters: Arc<watch::Sender<announce::Progress>>,
        peers: tokio::sync::mpsc::Sender<Vec<std::net::SocketAddr>>,
    ) -> (Self, watch::Receiver<announce::TrackerStatus>) {
        let announcer = announce::spawn(config, counters.subscribe(), peers);
        let status = announcer.watch_status();
        let link = TrackerLink {
            announcer,
            counters,
            completed_after: None,
        };
        (link, status)
    }
}

impl Trackers for TrackerLink {
    fn announce(&mut self, event: AnnounceEvent, stats: &Stats) {
        // The announce must carry the counters of this moment (`completed` with `left` 0),
        // not those of the last progress update.
        self.counters.send_replace(announce::Progress {
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            left: stats.left,
        });
        // `started` goes out when the announcer starts and `stopped` from `stop`.
        if event == AnnounceEvent::Completed && self.completed_after.is_none() {
            self.completed_after = Some(self.announcer.status().announces);
            self.announcer.completed();
        }
    }

    fn stop(self: Box<Self>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            // A download that stops as soon as it completes must not lose its `completed`:
            // wait (bounded) for the next successful announce first.
            if let Some(before) = self.completed_after {
                let mut status = self.announcer.watch_status();
                let answered = status.wait_for(|status| status.announces > before);
                let _ = tokio::time::timeout(COMPLETED_GRACE, answered).await;
            }
            self.announcer.stop(STOP_ANNOUNCE_TIMEOUT).await;
        })
    }
}

/// Copies the torrent task's counters into the announcer's, until the task ends; `earlier`
/// (uploaded, downloaded in earlier runs) is taken off, as trackers count from `started`.
pub fn forward_counters(
    mut progress: watch::Receiver<task::Progress>,
    counters: Arc<watch::Sender<announce::Progress>>,
    earlier: (u64, u64),
) {
    tokio::spawn(async move {
        while progress.changed().await.is_ok() {
            let stats = progress.borrow_and_update().stats;
            counters.send_if_modified(|current| {
                let next = announce::Progress {
                    uploaded: stats.uploaded.saturating_sub(earlier.0),
                    downloaded: stats.downloaded.saturating_sub(earlier.1),
                    left: stats.left,
                };
                let changed = *current != next;
                *current = next;
                changed
            });
        }
    });
}
