//! The persistence shell: loads the state at start, saves the swarms (both modes), and in
//! private mode writes the accounting in batches and reloads the registry; drains on
//! shutdown.
//!
//! Invariants:
//! - One batch in flight: only the flush task (and, after it has ended, [`drain`]) takes a
//!   batch, and it takes the next one only after the previous one was written or given back
//!   (`restore_pending`). A failed write is never dropped: it is retried at the next tick
//!   (and counted in `flush_failures`).
//! - The pending batch is written every `private.flush_interval_secs`; users, torrents and
//!   the allow-list are reloaded from the database every `private.reload_interval_secs`
//!   (a reload reads every row, so it runs less often than the writes), so changes made by
//!   `rill-tracker user …` in another process take effect within one reload interval. On
//!   [`Handle::sync`] or [`Handle::request_sync`] (the admin API wakes the task after each
//!   change) a cycle writes, then reloads, at once.
//! - [`drain`] runs after the HTTP and UDP servers have stopped, so nothing is credited
//!   after it: it writes until nothing is pending (bounded retries), then saves the swarms.
//! - The swarms (both modes) are saved every `swarm.save_interval_secs`, in a cycle and at
//!   the drain, as one transaction that replaces the previous save (so a `kill -9` loses at
//!   most one interval, and leaves the old save or the new one, never a mix). A damaged
//!   save is logged and starts empty swarms, which clients refill at their next announce.
//! - The private lock is held only to take, give back or read state, never across an
//!   `.await`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use crate::TrackerError;
use crate::config::{Config, Mode};
use crate::db::Db;
use crate::private::{self, Registry, Snapshot};
use crate::service::{PrivateState, Service};
use crate::swarm::snapshot::{self, SavedTorrent};

/// Attempts [`drain`] makes before giving up on a database that keeps failing.
const DRAIN_ATTEMPTS: u32 = 8;

/// Asks the flush task for a cycle and waits for one; cheap to clone.
#[derive(Clone, Debug)]
pub struct Handle {
    inner: Arc<SyncState>,
}

#[derive(Debug)]
struct SyncState {
    /// Whether a flush task runs (a database is open); `sync` returns at once otherwise.
    active: bool,
    /// Cycles asked for so far.
    requested: AtomicU64,
    /// Wakes the flush task (shared with the admin API, see [`Handle::change_notifier`]).
    wake: Arc<Notify>,
    /// The `requested` value seen at the start of the last finished cycle (`u64::MAX`
    /// once the task has drained and ended).
    done: watch::Sender<u64>,
}

impl Handle {
    pub(crate) fn new(active: bool) -> Self {
        Handle {
            inner: Arc::new(SyncState {
                active,
                requested: AtomicU64::new(0),
                wake: Arc::new(Notify::new()),
                done: watch::Sender::new(0),
            }),
        }
    }

    /// Asks for a flush and registry reload as soon as possible, without waiting (what the
    /// admin REST API calls after changing the database).
    pub fn request_sync(&self) {
        self.inner.requested.fetch_add(1, Ordering::SeqCst);
        self.inner.wake.notify_one();
    }

    /// The `Notify` that wakes the flush task for a cycle: hand it to whatever changes the
    /// database while the tracker runs (the admin REST API's `on_change`), so that a
    /// `notify_one()` makes the change take effect at once instead of within an interval.
    pub fn change_notifier(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.wake)
    }

    /// Asks for a cycle (accounting flush and registry reload in private mode, a save of
    /// the swarms in both) and waits until one that started after this call has finished
    /// (whether the writes succeeded or not: see `/stats` and the log). Returns at once
    /// without a database or after shutdown.
    pub async fn sync(&self) {
        if !self.inner.active {
            return;
        }
        let wanted = self.inner.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.inner.done.subscribe();
        self.inner.wake.notify_one();
        let _ = done.wait_for(|done| *done >= wanted).await;
    }

    fn finished(&self, requested: u64) {
        self.inner
            .done
            .send_modify(|done| *done = (*done).max(requested));
    }
}

/// What was loaded at start.
pub(crate) struct Loaded {
    pub(crate) db: Option<Db>,
    pub(crate) private: Option<(Registry, Snapshot)>,
    pub(crate) swarms: Vec<SavedTorrent>,
}

/// Opens (migrating) the configured database and loads the saved swarms and, in private
/// mode, the registry and the baselines.
pub(crate) async fn load(config: &Config) -> Result<Loaded, TrackerError> {
    let Some(url) = config.database_url() else {
        return Ok(Loaded {
            db: None,
            private: None,
            swarms: Vec::new(),
        });
    };
    let db = Db::open(url).await.map_err(|error| TrackerError::OpenDb {
        url: redacted(url),
        error,
    })?;
    let swarms = load_swarms(&db).await?;
    if config.mode != Mode::Private {
        return Ok(Loaded {
            db: Some(db),
            private: None,
            swarms,
        });
    }
    let registry = db.load_registry().await.map_err(TrackerError::Db)?;
    let snapshot = db.load_snapshot().await.map_err(TrackerError::Db)?;
    info!(
        users = registry.users().count(),
        torrents = registry.torrents().count(),
        peers = snapshot.peers.len(),
        "private mode: loaded the database"
    );
    Ok(Loaded {
        db: Some(db),
        private: Some((registry, snapshot)),
        swarms,
    })
}

/// A database URL without its password, for messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:…@{host}")
        }
        _ => url.to_owned(),
    }
}

/// The saved swarms; a damaged save is logged and gives empty swarms.
async fn load_swarms(db: &Db) -> Result<Vec<SavedTorrent>, TrackerError> {
    let parts = db.load_swarms().await.map_err(TrackerError::Db)?;
    let mut torrents = Vec::new();
    for part in parts {
        match snapshot::decode(&part) {
            Ok(saved) => torrents.extend(saved),
            Err(e) => {
                warn!("the saved swarms are damaged ({e}); starting with empty swarms");
                return Ok(Vec::new());
            }
        }
    }
    Ok(torrents)
}

/// Puts the saved swarms back into the swarm store.
pub(crate) fn restore_swarms(service: &Service, swarms: Vec<SavedTorrent>) {
    let torrents = swarms.len();
    let peers = service.restore_swarms(swarms);
    if torrents > 0 {
        info!(torrents, peers, "swarms restored");
    }
}

/// Saves the swarms (logging, not returning, a failure: the next save retries).
async fn save_swarms(service: &Service, db: &Db) {
    let started = Instant::now();
    let parts = service.export_swarms();
    let unix = private::unix_secs(SystemTime::now());
    match db.save_swarms(&parts, unix).await {
        Ok(()) => {
            let bytes: usize = parts.iter().map(Vec::len).sum();
            debug!(
                bytes,
                micros = started.elapsed().as_micros(),
                "swarms saved"
            );
        }
        Err(e) => warn!("cannot save the swarms (retried at the next save): {e}"),
    }
}

/// Writes `batch` from a blocking thread and hands it back (to give back on failure).
///
/// Why: a batch holds up to one row per announcing peer (50,000 in the load bench) and
/// writing it takes from a few hundred milliseconds to a second; the runtime's workers are
/// the ones answering announces, so the write (statement building, SQLite's work) is kept
/// off them and only competes for the CPU like any other thread.
async fn apply_off_the_workers(
    db: &Db,
    batch: private::Batch,
) -> (Result<(), crate::db::DbError>, private::Batch) {
    let batch = Arc::new(batch);
    let (db, runtime, shared) = (
        db.clone(),
        tokio::runtime::Handle::current(),
        Arc::clone(&batch),
    );
    let written = tokio::task::spawn_blocking(move || runtime.block_on(db.apply(&shared))).await;
    let written = match written {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled before it ran (the runtime is shutting down): nothing was written.
        Err(e) => Err(crate::db::DbError::Interrupted(e.to_string())),
    };
    // The blocking task has ended, so this is the last reference.
    let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
    (written, batch)
}

/// Writes the pending batch once. `Ok(true)` when something was written.
async fn write_pending(private: &PrivateState, db: &Db) -> Result<bool, crate::db::DbError> {
    let batch = private.take_pending();
    if batch.is_empty() {
        return Ok(false);
    }
    let started = Instant::now();
    let (written, batch) = apply_off_the_workers(db, batch).await;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let flush = &private.flush;
    flush.last_micros.store(micros, Ordering::Relaxed);
    flush.total_micros.fetch_add(micros, Ordering::Relaxed);
    match written {
        Ok(()) => {
            flush.flushes.fetch_add(1, Ordering::Relaxed);
            debug!(
                credits = batch.credits.len(),
                peers = batch.peers.len(),
                micros,
                "accounting written"
            );
            Ok(true)
        }
        Err(e) => {
            flush.failures.fetch_add(1, Ordering::Relaxed);
            private.restore_pending(batch);
            Err(e)
        }
    }
}

/// Writes the pending batch, logging (not returning) a failure: the batch is kept.
async fn flush(private: &PrivateState, db: &Db) {
    if let Err(e) = write_pending(private, db).await {
        warn!("cannot write the accounting (kept, retried next time): {e}");
    }
}

/// Reloads users, torrents and the allow-list from the database.
async fn reload(private: &PrivateState, db: &Db) {
    let started = Instant::now();
    match db.load_registry().await {
        Ok(registry) => {
            private.reload(registry);
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            private.flush.reloads.fetch_add(1, Ordering::Relaxed);
            private.flush.reload_micros.store(micros, Ordering::Relaxed);
            debug!(micros, "registry reloaded");
        }
        Err(e) => warn!("cannot reload users and torrents: {e}"),
    }
}

/// The persistence task, until `stop`: the swarms saved every save interval; in private
/// mode a write every flush interval and a registry reload every reload interval; all at
/// once on request. Ends without draining (see [`drain`]).
pub(crate) async fn run(
    service: Arc<Service>,
    db: Db,
    handle: Handle,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), TrackerError> {
    let private = service.private();
    let config = service.config();
    let timer = |every: Duration| {
        // The first tick one period from now: everything was just loaded.
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    };
    let mut flush_timer = timer(config.private.flush_interval());
    let mut reload_timer = timer(config.private.reload_interval());
    let mut save_timer = timer(config.swarm.save_interval());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            _ = flush_timer.tick(), if private.is_some() => {
                if let Some(private) = private {
                    flush(private, &db).await;
                }
            }
            _ = reload_timer.tick(), if private.is_some() => {
                if let Some(private) = private {
                    reload(private, &db).await;
                }
            }
            () = handle.inner.wake.notified() => {
                let requested = handle.inner.requested.load(Ordering::SeqCst);
                if let Some(private) = private {
                    flush(private, &db).await;
                    reload(private, &db).await;
                }
                save_swarms(&service, &db).await;
                // A request is served by one full cycle: the periodic ones start over.
                reload_timer.reset();
                save_timer.reset();
                handle.finished(requested);
            }
            _ = save_timer.tick() => save_swarms(&service, &db).await,
        }
    }
}

/// After the servers have stopped: writes everything pending (retrying a failing database
/// a few times), saves the swarms, closes the database, and releases every waiter.
pub(crate) async fn drain(service: &Service, db: &Db, handle: &Handle) -> Result<(), TrackerError> {
    let result = match service.private() {
        Some(private) => drain_accounting(private, db).await,
        None => Ok(()),
    };
    save_swarms(service, db).await;
    if result.is_ok() {
        info!("state saved; stopped cleanly");
    }
    db.close().await;
    handle.finished(u64::MAX);
    result
}

/// Writes the accounting until nothing is pending, retrying a failing database a few times.
async fn drain_accounting(private: &PrivateState, db: &Db) -> Result<(), TrackerError> {
    let mut attempt = 0;
    loop {
        match write_pending(private, db).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                attempt += 1;
                if attempt >= DRAIN_ATTEMPTS {
                    let (credits, peers) = private.backlog();
                    return Err(TrackerError::Drain(format!(
                        "{credits} credit entries and {peers} peer baselines not written: {e}"
                    )));
                }
                warn!("cannot write the accounting at shutdown (attempt {attempt}): {e}");
                // Back off between attempts: 100 ms, 200 ms, … 1.6 s.
                let wait = Duration::from_millis(100 << attempt.min(4));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rill_common::{InfoHash, PeerId};

    use super::*;
    use crate::private::{Passkey, PrivateAnnounce};

    fn announce(uploaded: u64) -> PrivateAnnounce {
        PrivateAnnounce {
            info_hash: InfoHash::from_bytes([1; 20]),
            peer_id: PeerId::from_bytes([2; 20]),
            event: None,
            uploaded,
            downloaded: 0,
            left: 5,
        }
    }

    /// A failed write is given back and counted; the next write carries it, so the
    /// database ends with every byte, once; the drain empties the backlog.
    #[tokio::test]
    async fn failed_writes_are_kept_and_retried_then_drained() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::open(&url).await.unwrap();
        let passkey = Passkey::generate(&mut StdRng::seed_from_u64(3));
        db.add_user("alice", &passkey).await.unwrap();
        db.add_torrent(&InfoHash::from_bytes([1; 20]), false)
            .await
            .unwrap();
        let mut config = Config {
            mode: Mode::Private,
            database: Some(url.clone()),
            ..Config::default()
        };
        config.private.rate_limit_burst = 0;
        let loaded = load(&config).await.unwrap();
        let service = Service::with_private(config, loaded.private);
        let private = service.private().unwrap();
        let check = |uploaded, now| {
            private.check(&passkey, &announce(uploaded), now).unwrap();
        };
        check(0, 1000);
        check(100, 1001);

        let closed = Db::open(&url).await.unwrap();
        closed.close().await;
        assert!(write_pending(private, &closed).await.is_err());
        assert_eq!(private.flush.failures.load(Ordering::Relaxed), 1);
        assert_ne!(private.backlog(), (0, 0), "kept for a retry");

        check(250, 1002);
        assert!(write_pending(private, &db).await.unwrap());
        assert_eq!(db.user_stats("alice").await.unwrap().uploaded, 250);
        check(300, 1003);
        let handle = Handle::new(true);
        drain(&service, &db, &handle).await.unwrap();
        assert_eq!(private.backlog(), (0, 0));
        // A sync after the drain returns at once.
        handle.sync().await;
        let db = Db::open(&url).await.unwrap();
        assert_eq!(db.user_stats("alice").await.unwrap().uploaded, 300);
    }
}
