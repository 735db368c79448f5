//! Starting one torrent: its storage opened, the data on disk checked (trusting the resume
//! file where the files are unchanged), its pure state built and its task and announcer spawned.

use std::sync::Arc;
use std::time::Instant;

use rill_common::PeerId;
use rill_common::bitfield::Bitfield;
use rill_common::metainfo::Metainfo;
use rill_common::pieces::PieceIndex;
use rill_common::wire::Handshake;
use tokio::sync::{mpsc, watch};

use crate::announce::{self, AnnounceConfig};
use crate::config::SessionConfig;
use crate::peer::connection::{Throttles, Timeouts, our_reserved};
use crate::storage::layout::Layout;
use crate::storage::{Storage, StorageError, resume_file};
use crate::torrent::choker::ChokerConfig;
use crate::torrent::state::{Config, TorrentState};
use crate::torrent::task::{self, Finish, NoTrackers, Setup};

use super::{
    FileView, Mode, REPORT_EVERY, Reporter, Running, SessionError, TorrentView, dht, open,
    seed_root,
};

/// Opens, checks and starts one torrent.
#[allow(clippy::too_many_arguments)]
pub(super) async fn start_torrent(
    config: &SessionConfig,
    mode: &Mode,
    metainfo: Metainfo,
    peer_id: PeerId,
    port: u16,
    throttles: &Arc<Throttles>,
    timeouts: Timeouts,
    reporter: &mut dyn Reporter,
    dht: Option<Arc<crate::dht::Dht>>,
) -> Result<(Running, TorrentView), SessionError> {
    let info = &metainfo.info;
    let name = info.name.clone();
    let info_hash = metainfo.info_hash;
    let layout = Layout::new(info);
    let root = match mode {
        Mode::Download => config.output.clone(),
        Mode::Seed { data } => seed_root(data, &name),
    };
    let storage_error = |source| SessionError::Storage {
        name: name.clone(),
        source,
    };
    let storage =
        Arc::new(Storage::open(&root, layout.clone(), info.pieces.clone()).map_err(storage_error)?);
    let file_priorities = file_priorities(&layout, &config.only_files)?;
    let piece_priorities = if config.only_files.is_empty() {
        Vec::new()
    } else {
        layout.piece_priorities(&file_priorities)
    };
    let resume_path = resume_file::resume_path(&root, &info_hash);
    let (have, resume) = check(&storage, &resume_path, &info_hash, &name, reporter)
        .await
        .map_err(storage_error)?;
    let piece_count = layout.piece_count();
    if matches!(mode, Mode::Seed { .. }) && have.count() < piece_count {
        return Err(SessionError::Incomplete {
            name,
            dir: root.display().to_string(),
            have: have.count(),
            total: piece_count,
        });
    }
    let state_config = Config {
        info_hash,
        peer_id,
        client: format!("Rill {}", env!("CARGO_PKG_VERSION")),
        listen_port: Some(port),
        max_peers: config.max_peers,
        choker: ChokerConfig::default(),
        sequential: config.sequential,
        piece_priorities: piece_priorities.clone(),
        private: info.private,
        metadata: Some(bytes::Bytes::copy_from_slice(metainfo.raw_info())),
    };
    let left = wanted_left(&layout, &have, &piece_priorities);
    let wanted_len = wanted_left(&layout, &Bitfield::new(piece_count), &piece_priorities);
    let have_at_start = have.count();
    let state = TorrentState::new(
        state_config,
        layout.total_length(),
        layout.piece_length(),
        have,
        Instant::now(),
        rand::random(),
    )
    .map_err(|err| SessionError::Invalid(format!("{name}: {err}")))?;
    let earlier = resume
        .as_ref()
        .map_or((0, 0), |resume| (resume.uploaded, resume.downloaded));
    let (found_tx, found) = mpsc::channel(16);
    // Private torrents never get here with a DHT (BEP 27).
    let dht_task = dht
        .clone()
        .map(|dht| dht::spawn_announcer(dht, info_hash, port, found_tx.clone()));
    let tiers = metainfo.trackers();
    let counters = Arc::new(watch::Sender::new(announce::Progress {
        uploaded: 0,
        downloaded: 0,
        left,
    }));
    let (trackers, tracker_status): (Box<dyn task::Trackers>, _) = if tiers.is_empty() {
        (Box::new(NoTrackers), None)
    } else {
        let announce_config = AnnounceConfig::new(info_hash, peer_id, port, tiers);
        let (link, status) =
            open::TrackerLink::spawn(announce_config, Arc::clone(&counters), found_tx);
        (Box::new(link), Some(status))
    };
    let finish = match mode {
        Mode::Seed { .. } => Finish::Seed {
            ratio: config.seed.ratio,
            time: config.seed.time,
        },
        Mode::Download if config.seed.seed => Finish::Seed {
            ratio: config.seed.ratio,
            time: config.seed.time,
        },
        Mode::Download => Finish::WhenComplete,
    };
    // The DHT bit tells peers to send us their DHT port (BEP 5).
    let ours = Handshake::new(our_reserved().with_dht(dht.is_some()), info_hash, peer_id);
    let store = open::DiskStore::new(storage, resume_path, info_hash, file_priorities.clone());
    let handle = task::spawn(Setup {
        state,
        ours,
        store: Arc::new(store),
        trackers,
        found,
        initial_peers: config.peers.clone(),
        timeouts,
        throttles: Arc::clone(throttles),
        finish,
        total_len: layout.total_length(),
        earlier,
        dht: dht.map(|dht| task::DhtLink { dht }),
    });
    open::forward_counters(handle.progress.clone(), counters, earlier);
    let view = TorrentView {
        name,
        info_hash: info_hash.to_hex(),
        total_len: layout.total_length(),
        wanted_len,
        files: file_views(&layout, &file_priorities),
        have_at_start,
        listen_port: port,
        progress: handle.progress.clone(),
        trackers: tracker_status,
    };
    Ok((
        Running {
            info_hash,
            ours,
            task: handle,
            dht_task,
        },
        view,
    ))
}

/// Checks the data already on disk on blocking threads, reporting progress.
async fn check(
    storage: &Arc<Storage>,
    resume_path: &std::path::Path,
    info_hash: &rill_common::InfoHash,
    name: &str,
    reporter: &mut dyn Reporter,
) -> Result<(Bitfield, Option<crate::torrent::resume::ResumeData>), StorageError> {
    let total = open::bytes_to_check(storage, resume_path, info_hash);
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let work = {
        let storage = Arc::clone(storage);
        let resume_path = resume_path.to_path_buf();
        let info_hash = *info_hash;
        let done = Arc::clone(&done);
        tokio::task::spawn_blocking(move || {
            let progress = move |bytes: u64| {
                done.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            };
            open::startup(&storage, &resume_path, &info_hash, &progress)
        })
    };
    tokio::pin!(work);
    let mut ticker = tokio::time::interval(REPORT_EVERY);
    loop {
        tokio::select! {
            result = &mut work => {
                if total > 0 {
                    reporter.checking(name, total, total);
                }
                return result.unwrap_or_else(|err| {
                    Err(StorageError::from_io(
                        "check",
                        storage.root(),
                        std::io::Error::other(err.to_string()),
                    ))
                });
            }
            _ = ticker.tick() => {
                if total > 0 {
                    reporter.checking(name, done.load(std::sync::atomic::Ordering::Relaxed), total);
                }
            }
        }
    }
}

/// One priority per file from `--only-files` (all 1 when empty).
pub(super) fn file_priorities(layout: &Layout, only: &[usize]) -> Result<Vec<u8>, SessionError> {
    let count = layout.file_count();
    if only.is_empty() {
        return Ok(vec![1; count]);
    }
    let mut priorities = vec![0; count];
    for &file in only {
        let slot = priorities.get_mut(file).ok_or_else(|| {
            SessionError::Invalid(format!(
                "--only-files: no file {file}; the torrent has files 0 to {}",
                count.saturating_sub(1)
            ))
        })?;
        *slot = 1;
    }
    Ok(priorities)
}

/// Bytes of wanted pieces not in `have`.
pub(super) fn wanted_left(layout: &Layout, have: &Bitfield, piece_priorities: &[u8]) -> u64 {
    (0..layout.piece_count())
        .map(PieceIndex)
        .filter(|piece| !have.get(*piece))
        .filter(|piece| {
            piece_priorities
                .get(piece.as_usize())
                .is_none_or(|&p| p > 0)
        })
        .map(|piece| u64::from(layout.piece_size(piece)))
        .sum()
}

pub(super) fn file_views(layout: &Layout, priorities: &[u8]) -> Vec<FileView> {
    (0..layout.file_count())
        .filter(|&file| !layout.is_pad(file))
        .map(|file| FileView {
            path: layout
                .relative_path(file)
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
            length: layout.file_length(file).unwrap_or(0),
            pieces: layout
                .pieces_of_file(file)
                .map(|range| (range.start().get(), range.end().get())),
            wanted: priorities.get(file).is_none_or(|&p| p > 0),
        })
        .collect()
}
