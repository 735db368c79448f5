//! A session: several torrents in one process, one listen port for all of them.
//!
//! [`run`] loads every torrent, checks the data already on disk, binds the listen socket
//! (IPv6 dual-stack, which takes IPv4 too, or IPv4 alone where IPv6 is missing), starts one
//! torrent task and one announcer per torrent, and routes incoming handshakes by info hash.
//! It returns when every torrent has stopped: by itself (complete, seed limit reached), on
//! an error, or when `stop` turns true (Ctrl-C), in which case each torrent announces
//! `stopped`, syncs its data and saves its resume file first.

pub mod dht;
pub mod magnet;
mod open;
mod start;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rill_common::PeerId;
use rill_common::metainfo::Metainfo;
use rill_common::wire::Handshake;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use open::{load_source, seed_root};

use start::start_torrent;
#[cfg(test)]
use start::{file_priorities, file_views, wanted_left};

use crate::announce::TrackerStatus;
use crate::config::{DEFAULT_PORT, SessionConfig};
use crate::peer::connection::{Throttles, Timeouts};
use crate::peer::listener::{self, Route, Routes};
use crate::peer::throttle::Throttle;
use crate::storage::StorageError;
use crate::torrent::task::{self, Handle, Phase};

/// Why a session could not run, or a torrent failed.
#[derive(Debug, Error)]
pub enum SessionError {
    /// A torrent could not be loaded.
    #[error("{source_name}: {message}")]
    Source {
        /// What the user gave.
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// The listen socket could not be bound.
    #[error("cannot listen on port {port}: {source}")]
    Listen {
        /// The port.
        port: u16,
        /// The cause.
        source: std::io::Error,
    },
    /// Storage could not be opened or checked.
    #[error("{name}: {source}")]
    Storage {
        /// The torrent.
        name: String,
        /// The cause.
        source: StorageError,
    },
    /// `rill seed` found the data incomplete.
    #[error("{name}: the data in {dir} is incomplete: {have} of {total} pieces match")]
    Incomplete {
        /// The torrent.
        name: String,
        /// Where it looked.
        dir: String,
        /// Pieces that match.
        have: u32,
        /// Pieces in the torrent.
        total: u32,
    },
    /// A setting does not fit the torrent.
    #[error("{0}")]
    Invalid(String),
    /// A torrent stopped on an error.
    #[error("{name}: {message}")]
    Torrent {
        /// The torrent.
        name: String,
        /// The error.
        message: String,
    },
}

/// What a session does with its torrents.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Download into [`SessionConfig::output`].
    Download,
    /// Seed data that is already complete in this folder.
    Seed {
        /// The folder holding the data (or the torrent's own folder or file).
        data: PathBuf,
    },
}

/// One file of a torrent, for per-file progress.
#[derive(Clone, Debug)]
pub struct FileView {
    /// The path inside the torrent.
    pub path: String,
    /// Length in bytes.
    pub length: u64,
    /// First and last piece holding its bytes (`None` for an empty file).
    pub pieces: Option<(u32, u32)>,
    /// Wanted (not left out by `--only-files`).
    pub wanted: bool,
}

/// What the display sees of one torrent.
#[derive(Clone, Debug)]
pub struct TorrentView {
    /// The torrent's name.
    pub name: String,
    /// Its info hash, hex.
    pub info_hash: String,
    /// Bytes in the torrent.
    pub total_len: u64,
    /// Bytes wanted (all files, or those of `--only-files`).
    pub wanted_len: u64,
    /// Its files.
    pub files: Vec<FileView>,
    /// Pieces verified at start (resume file or check).
    pub have_at_start: u32,
    /// The session's listen port.
    pub listen_port: u16,
    /// The task's progress.
    pub progress: watch::Receiver<task::Progress>,
    /// The trackers' state, if it has any.
    pub trackers: Option<watch::Receiver<TrackerStatus>>,
}

/// What the session reports while it runs.
pub trait Reporter {
    /// A torrent's data is being checked: `done` of `total` bytes hashed.
    fn checking(&mut self, name: &str, done: u64, total: u64);
    /// Every torrent runs; called about four times a second until the end, and once after.
    fn update(&mut self, torrents: &[TorrentView], finished: bool);
}

/// How often the reporter is called.
const REPORT_EVERY: Duration = Duration::from_millis(250);

/// Runs a session until every torrent stopped. `stop` turning true stops them cleanly.
pub async fn run(
    config: SessionConfig,
    sources: &[String],
    mode: Mode,
    stop: watch::Receiver<bool>,
    reporter: &mut dyn Reporter,
) -> Result<(), SessionError> {
    let (listener, port) = bind(config.port).await?;
    let peer_id = PeerId::generate(&mut rand::rng());
    let timeouts = Timeouts::default();
    let dht = match &config.dht {
        Some(bootstrap) => {
            let dir = match &mode {
                Mode::Download => &config.output,
                Mode::Seed { data } => data,
            };
            dht::start(bootstrap, port, dir).await
        }
        None => None,
    };
    let reporter_task = dht.clone().map(dht::spawn_reporter);
    let result = run_with(
        config,
        sources,
        mode,
        stop,
        reporter,
        (listener, port),
        peer_id,
        timeouts,
        dht.clone(),
    )
    .await;
    if let Some(task) = reporter_task {
        task.abort();
        let _ = task.await;
    }
    if let Some(dht) = dht {
        dht::stop(dht).await;
    }
    result
}

/// [`run`] once the listen socket and the DHT are up.
#[allow(clippy::too_many_arguments)]
async fn run_with(
    config: SessionConfig,
    sources: &[String],
    mode: Mode,
    mut stop: watch::Receiver<bool>,
    reporter: &mut dyn Reporter,
    (listener, port): (TcpListener, u16),
    peer_id: PeerId,
    timeouts: Timeouts,
    dht: Option<Arc<crate::dht::Dht>>,
) -> Result<(), SessionError> {
    let routes = Routes::default();
    // Listening from the start: peers may dial us during a magnet's metadata fetch.
    let listen_task = magnet::AbortOnDrop(tokio::spawn(listener::run(
        listener,
        routes.clone(),
        timeouts,
    )));
    let mut metainfos = Vec::new();
    let mut magnet_peers = Vec::new();
    for source in sources {
        let Some(loaded) = magnet::load(
            source,
            magnet::Sources {
                peer_id,
                port,
                peers: config.peers.clone(),
                dht: dht.as_deref(),
                timeouts,
                routes: Some(&routes),
            },
            &mut stop,
        )
        .await?
        else {
            return Ok(());
        };
        // A magnet's `so` (BEP 53) selects files unless --only-files does.
        let only_files = loaded.only_files(&config.only_files);
        magnet_peers.push((loaded.peers, only_files));
        let metainfo = loaded.metainfo;
        if metainfos
            .iter()
            .any(|other: &Metainfo| other.info_hash == metainfo.info_hash)
        {
            return Err(SessionError::Source {
                source_name: source.clone(),
                message: "the same torrent is given twice".to_owned(),
            });
        }
        metainfos.push(metainfo);
    }
    if !config.only_files.is_empty() && metainfos.len() > 1 {
        return Err(SessionError::Invalid(
            "--only-files needs exactly one torrent".to_owned(),
        ));
    }
    let throttles = Arc::new(Throttles {
        down: Throttle::new(config.max_down),
        up: Throttle::new(config.max_up),
        connections: Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1))),
    });
    let mut running = Vec::new();
    for (metainfo, (found, only_files)) in metainfos.into_iter().zip(magnet_peers) {
        if *stop.borrow() {
            break;
        }
        let mut config = config.clone();
        config.peers.extend(found);
        config.only_files = only_files;
        let dht = dht.clone().filter(|_| !metainfo.info.private);
        let start = start_torrent(
            &config, &mode, metainfo, peer_id, port, &throttles, timeouts, reporter, dht,
        );
        // Ctrl-C during a long check of existing data stops at once (the check is dropped).
        let started = tokio::select! {
            started = start => Some(started),
            () = stopped(&mut stop) => None,
        };
        let (handle, view) = match started {
            None => break,
            Some(Ok(started)) => started,
            Some(Err(err)) => {
                stop_all(&running);
                join_all(running, reporter).await?;
                return Err(err);
            }
        };
        routes.insert(
            handle.info_hash,
            Route {
                ours: handle.ours,
                incoming: handle.task.incoming.clone(),
            },
        );
        running.push((handle, view));
    }
    if *stop.borrow() {
        stop_all(&running);
    }
    let mut ticker = tokio::time::interval(REPORT_EVERY);
    // Woken the moment the last torrent ends, not at the next tick: a download's end (and
    // its final report) is not held up by up to REPORT_EVERY.
    let torrents_ended = all_ended(
        running
            .iter()
            .map(|(_, view)| view.progress.clone())
            .collect(),
    );
    tokio::pin!(torrents_ended);
    let mut ended = false;
    while !running.is_empty() {
        tokio::select! {
            _ = ticker.tick() => {}
            () = &mut torrents_ended, if !ended => ended = true,
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    stop_all(&running);
                }
            }
        }
        let views: Vec<TorrentView> = running.iter().map(|(_, view)| view.clone()).collect();
        reporter.update(&views, false);
        let all_ended = views
            .iter()
            .all(|view| matches!(view.progress.borrow().phase, Phase::Done | Phase::Failed(_)));
        if all_ended || running.iter().all(|(handle, _)| handle.task.is_finished()) {
            break;
        }
    }
    drop(listen_task);
    join_all(running, reporter).await
}

/// Resolves once every torrent of `progress` is done or failed (or its task is gone).
async fn all_ended(progress: Vec<watch::Receiver<task::Progress>>) {
    for mut progress in progress {
        let _ = progress
            .wait_for(|p| matches!(p.phase, Phase::Done | Phase::Failed(_)))
            .await;
    }
}

/// Resolves once `stop` is true (never if its sender is gone without saying so).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A started torrent.
struct Running {
    info_hash: rill_common::InfoHash,
    ours: Handshake,
    task: Handle,
    dht_task: Option<tokio::task::JoinHandle<()>>,
}

fn stop_all(running: &[(Running, TorrentView)]) {
    for (handle, _) in running {
        handle.task.stop();
    }
}

async fn join_all(
    running: Vec<(Running, TorrentView)>,
    reporter: &mut dyn Reporter,
) -> Result<(), SessionError> {
    let views: Vec<TorrentView> = running.iter().map(|(_, view)| view.clone()).collect();
    let mut first_error = None;
    for (handle, view) in running {
        if let Some(dht_task) = handle.dht_task {
            dht_task.abort();
            let _ = dht_task.await;
        }
        if let Err(err) = handle.task.join().await {
            first_error.get_or_insert(SessionError::Torrent {
                name: view.name.clone(),
                message: err.to_string(),
            });
        }
    }
    reporter.update(&views, true);
    first_error.map_or(Ok(()), Err)
}

/// Binds the listen socket: `[::]:port` (dual-stack), else `0.0.0.0:port`. Without a port,
/// 6881 to 6889 are tried, then any free port.
async fn bind(port: Option<u16>) -> Result<(TcpListener, u16), SessionError> {
    let candidates: Vec<u16> = match port {
        Some(port) => vec![port],
        None => (DEFAULT_PORT..DEFAULT_PORT + 9).chain([0]).collect(),
    };
    let mut last_error = None;
    for port in &candidates {
        for ip in [
            std::net::IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ] {
            match TcpListener::bind(SocketAddr::new(ip, *port)).await {
                Ok(listener) => {
                    let bound = listener
                        .local_addr()
                        .map_err(|source| SessionError::Listen {
                            port: *port,
                            source,
                        })?
                        .port();
                    return Ok((listener, bound));
                }
                Err(err) => last_error = Some((*port, err)),
            }
        }
    }
    let (port, source) = last_error.unwrap_or((0, std::io::ErrorKind::AddrInUse.into()));
    Err(SessionError::Listen { port, source })
}

#[cfg(test)]
mod tests;
