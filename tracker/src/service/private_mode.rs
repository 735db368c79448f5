//! Private mode's shared state: the pure parts of [`crate::private`] spread over locks so
//! that announces of different torrents (and users) do not wait on one another.
//!
//! Invariants:
//! - The registry is read-mostly: announces read it under a shared lock; a reload builds
//!   the new one first and only swaps an `Arc` under the write lock.
//! - Rate buckets are sharded by user id, ledgers by torrent id: everything the ledger keeps
//!   per (user, torrent) and per (user, torrent, peer id) lives in the shard of its torrent,
//!   so an announce locks one bucket shard, then one ledger shard, never two at once, and
//!   never across an `.await`.
//! - The steps and their order are [`PrivateTracker::check`]'s (`admit`, `Buckets::take`,
//!   `credit`), so the rules proptested on `PrivateTracker` hold here shard by shard.
//! - [`PrivateState::take_pending`] takes every shard's pending state and merges it into one
//!   batch sorted as the ledger sorts it (keys never repeat across shards);
//!   [`PrivateState::restore_pending`] hands each shard back its part. With one batch in
//!   flight (the flush task's rule) the ledger's flush invariant holds over all shards.
//!
//! [`PrivateTracker::check`]: crate::private::PrivateTracker::check

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use crate::private::{
    self, Admitted, Batch, Buckets, Ledger, Passkey, PeerChange, PrivateAnnounce, PrivateConfig,
    Refusal, Registry, Session, Snapshot, TorrentId, UserId,
};

use super::FlushCounters;

/// Private mode's shared state (see the module doc).
#[derive(Debug)]
pub struct PrivateState {
    config: PrivateConfig,
    registry: RwLock<Arc<Registry>>,
    buckets: Box<[Mutex<Buckets>]>,
    ledgers: Box<[Mutex<Ledger>]>,
    /// Written by the flush task.
    pub flush: FlushCounters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is plain data: a panic elsewhere leaves nothing worse than a lost request.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn index(id: u64, shards: usize) -> usize {
    usize::try_from(id % u64::try_from(shards.max(1)).unwrap_or(1)).unwrap_or(0)
}

impl PrivateState {
    /// `shards` ledger and bucket shards (at least one) over `registry`, with the saved
    /// baselines of `snapshot`.
    pub fn new(
        config: PrivateConfig,
        registry: Registry,
        snapshot: Snapshot,
        shards: usize,
    ) -> Self {
        let shards = shards.max(1);
        let mut parts: Vec<Snapshot> = vec![Snapshot::default(); shards];
        for peer in snapshot.peers {
            if let Some(part) = parts.get_mut(index(peer.key.torrent.0, shards)) {
                part.peers.push(peer);
            }
        }
        for mark in snapshot.seeded_until {
            if let Some(part) = parts.get_mut(index(mark.1.0, shards)) {
                part.seeded_until.push(mark);
            }
        }
        let ledgers = parts
            .into_iter()
            .map(|part| {
                let mut ledger = Ledger::default();
                ledger.restore(part);
                Mutex::new(ledger)
            })
            .collect();
        PrivateState {
            config,
            registry: RwLock::new(Arc::new(registry)),
            buckets: (0..shards).map(|_| Mutex::default()).collect(),
            ledgers,
            flush: FlushCounters::default(),
        }
    }

    /// The current registry (a snapshot: a reload does not change it).
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn bucket_shard(&self, user: UserId) -> &Mutex<Buckets> {
        let i = index(user.0, self.buckets.len());
        #[allow(clippy::indexing_slicing, reason = "index() is below the length")]
        &self.buckets[i]
    }

    fn ledger_shard(&self, torrent: TorrentId) -> &Mutex<Ledger> {
        let i = index(torrent.0, self.ledgers.len());
        #[allow(clippy::indexing_slicing, reason = "index() is below the length")]
        &self.ledgers[i]
    }

    /// Decides an announce and credits it: [`crate::private::PrivateTracker::check`] over
    /// the shards. `now` is unix seconds.
    pub fn check(
        &self,
        passkey: &Passkey,
        announce: &PrivateAnnounce,
        now: u64,
    ) -> Result<Admitted, Refusal> {
        let admission = {
            let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
            private::admit(&registry, passkey, announce)?
        };
        if let Some(limit) = self.config.rate_limit {
            // No limit, no bucket: the lock is not even taken.
            lock(self.bucket_shard(admission.user)).take(Some(limit), &admission, announce, now)?;
        }
        Ok(match admission.torrent {
            Some(torrent) => private::credit(
                &mut lock(self.ledger_shard(torrent.id)),
                &self.config,
                &admission,
                announce,
                now,
            ),
            None => Admitted {
                user: admission.user,
                torrent: None,
                session: Session::UnknownStop,
                credited: private::Delta::default(),
            },
        })
    }

    /// Checks a passkey (scrapes): the user exists and is enabled.
    pub fn authorize(&self, passkey: &Passkey) -> Result<UserId, Refusal> {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        private::authorize(&registry, passkey)
    }

    /// Replaces the registry with a fresh copy, keeping the remaining users' rate buckets.
    pub fn reload(&self, registry: Registry) {
        for shard in self.buckets.iter() {
            lock(shard).retain_users(&registry);
        }
        let registry = Arc::new(registry);
        *self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = registry;
    }

    /// Takes every shard's pending credits and baseline changes as one sorted batch.
    pub fn take_pending(&self) -> Batch {
        let mut batch = Batch::default();
        for shard in self.ledgers.iter() {
            // Sorted once below, outside the shard's lock.
            let part = lock(shard).take_unsorted();
            batch.credits.extend(part.credits);
            batch.peers.extend(part.peers);
        }
        batch.credits.sort_unstable_by_key(|c| (c.user, c.torrent));
        batch.peers.sort_unstable_by_key(PeerChange::key);
        batch
    }

    /// Gives a batch whose write failed back to the shards it came from.
    pub fn restore_pending(&self, batch: Batch) {
        let mut parts: Vec<Batch> = vec![Batch::default(); self.ledgers.len()];
        let n = self.ledgers.len();
        for credit in batch.credits {
            if let Some(part) = parts.get_mut(index(credit.torrent.0, n)) {
                part.credits.push(credit);
            }
        }
        for change in batch.peers {
            if let Some(part) = parts.get_mut(index(change.key().torrent.0, n)) {
                part.peers.push(change);
            }
        }
        for (shard, part) in self.ledgers.iter().zip(parts) {
            if !part.is_empty() {
                lock(shard).restore_pending(part);
            }
        }
    }

    /// Pending credit entries and changed baselines, over all shards (see [`Ledger::backlog`]).
    pub fn backlog(&self) -> (usize, usize) {
        self.ledgers.iter().fold((0, 0), |(c, p), shard| {
            let (credits, peers) = lock(shard).backlog();
            (c + credits, p + peers)
        })
    }

    /// Live baselines over all shards.
    pub fn peer_count(&self) -> usize {
        self.ledgers.iter().map(|s| lock(s).peer_count()).sum()
    }

    /// Drops baselines not heard from within the ttl, one shard locked at a time.
    pub fn purge(&self, now: u64) {
        for shard in self.ledgers.iter() {
            lock(shard).purge(now, self.config.peer_ttl_secs);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rill_common::tracker::AnnounceEvent;
    use rill_common::{InfoHash, PeerId};

    use super::*;
    use crate::private::{PrivateTracker, RateLimit, Torrent, UploadMultiplier, User};

    fn passkey(user: u64) -> Passkey {
        Passkey::generate(&mut StdRng::seed_from_u64(user))
    }

    fn registry() -> Registry {
        let mut registry = Registry::new();
        for id in 1..=3 {
            registry
                .add_user(User {
                    id: UserId(id),
                    name: format!("u{id}"),
                    passkey: passkey(id),
                    disabled: None,
                })
                .unwrap();
        }
        for id in 1..=5u8 {
            registry
                .add_torrent(Torrent {
                    id: TorrentId(u64::from(id)),
                    info_hash: InfoHash::from_bytes([id; 20]),
                    freeleech: id == 2,
                    upload_multiplier: UploadMultiplier(if id == 3 { 150 } else { 100 }),
                })
                .unwrap();
        }
        registry
    }

    /// (user, torrent 1..=6 where 6 is unregistered, peer, upload step, download step,
    /// seeder, event 0..4, seconds later, flush now, the flush fails)
    type Step = (u64, u8, u8, u64, u64, bool, u8, u64, bool, bool);

    fn step() -> impl Strategy<Value = Step> {
        (
            1..=3u64,
            1..=6u8,
            0..3u8,
            0..5000u64,
            0..5000u64,
            any::<bool>(),
            0..4u8,
            0..400u64,
            any::<bool>(),
            any::<bool>(),
        )
    }

    proptest! {
        /// The sharded state answers every announce as the single-threaded
        /// `PrivateTracker` does, and hands out the same batches (failed ones given back).
        #[test]
        fn sharded_state_matches_the_single_tracker(steps in proptest::collection::vec(step(), 1..80)) {
            let config = PrivateConfig {
                rate_limit: Some(RateLimit { burst: 5, per_minute: 6 }),
                ..PrivateConfig::default()
            };
            let mut single = PrivateTracker::new(config, registry());
            let sharded = PrivateState::new(config, registry(), Snapshot::default(), 3);
            let mut now = 1_700_000_000;
            let mut counters: std::collections::HashMap<(u64, u8, u8), (u64, u64)> =
                std::collections::HashMap::new();
            for (user, torrent, peer, up, down, seeder, event, later, flush, fails) in steps {
                now += later;
                let counter = counters.entry((user, torrent, peer)).or_default();
                // A counter goes down now and then (a client restart).
                if up == 0 { *counter = (0, 0) } else { counter.0 += up; counter.1 += down; }
                let announce = PrivateAnnounce {
                    info_hash: InfoHash::from_bytes([torrent; 20]),
                    peer_id: PeerId::from_bytes([peer; 20]),
                    event: match event {
                        1 => Some(AnnounceEvent::Started),
                        2 => Some(AnnounceEvent::Completed),
                        3 => Some(AnnounceEvent::Stopped),
                        _ => None,
                    },
                    uploaded: counter.0,
                    downloaded: counter.1,
                    left: u64::from(!seeder),
                };
                let key = passkey(user);
                prop_assert_eq!(
                    sharded.check(&key, &announce, now),
                    single.check(&key, &announce, now)
                );
                if flush {
                    let (credits, peers) = sharded.backlog();
                    let batch = sharded.take_pending();
                    prop_assert_eq!(&batch, &single.take_pending());
                    // The backlog counts every change once, and credit entries merge into
                    // at most as many rows.
                    prop_assert_eq!(peers, batch.peers.len());
                    prop_assert!(credits >= batch.credits.len());
                    prop_assert_eq!(credits == 0, batch.credits.is_empty());
                    prop_assert_eq!(sharded.backlog(), (0, 0));
                    if fails {
                        sharded.restore_pending(batch.clone());
                        single.restore_pending(batch);
                    }
                }
                prop_assert_eq!(sharded.backlog(), single.backlog());
            }
            prop_assert_eq!(sharded.peer_count(), single.ledger().peer_count());
            prop_assert_eq!(sharded.take_pending(), single.take_pending());
        }
    }
}
