//! The swarm store split over independently locked shards, so that announces for different
//! torrents do not wait on one another.
//!
//! Invariants: a torrent always lives in shard [`shard_of`]`(info_hash, n)`; a lock is held
//! only for one pure [`SwarmStore`] call (never across an `.await`); a poisoned lock is
//! recovered (the store's state is a plain value that a panic cannot leave half-written in
//! a way worse than dropping the request). Persistence: [`Shards::export`] saves one shard at
//! a time (its lock held only to copy it out, encoding outside), [`Shards::restore`] puts
//! saved torrents back into their shards at start.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rill_common::InfoHash;

use crate::swarm::snapshot::{self, SavedTorrent};
use crate::swarm::{AnnounceReply, PeerAnnounce, ScrapeCounts, SwarmConfig, SwarmStore, shard_of};

/// Totals over every shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreTotals {
    /// Torrents with at least one peer.
    pub torrents: u64,
    /// Peers with nothing left to download.
    pub seeders: u64,
    /// Peers still downloading.
    pub leechers: u64,
}

/// The sharded swarm store.
#[derive(Debug)]
pub struct Shards {
    shards: Box<[Mutex<SwarmStore>]>,
}

impl Shards {
    /// `count` empty shards (at least one), each made with `config()`.
    pub fn new(count: usize, config: impl Fn() -> SwarmConfig) -> Self {
        let shards = (0..count.max(1))
            .map(|_| Mutex::new(SwarmStore::new(config())))
            .collect();
        Shards { shards }
    }

    fn lock(&self, info_hash: &InfoHash) -> MutexGuard<'_, SwarmStore> {
        let index = shard_of(info_hash, self.shards.len());
        // `shard_of` is below the count; fall back to the first shard rather than panic.
        let shard = self.shards.get(index).or(self.shards.first());
        #[allow(clippy::expect_used)]
        let shard = shard.expect("at least one shard");
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an announce and returns the peers and counters for its reply.
    pub fn announce(&self, announce: &PeerAnnounce, now: Instant) -> AnnounceReply {
        self.lock(&announce.info_hash)
            .announce(announce, now, &mut rand::rng())
    }

    /// The counters of one torrent (zeros for an unknown one).
    pub fn scrape(&self, info_hash: &InfoHash) -> ScrapeCounts {
        self.lock(info_hash).scrape(info_hash)
    }

    /// The counters of every torrent (a full scrape).
    pub fn scrape_all(&self) -> Vec<(InfoHash, ScrapeCounts)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            all.extend(
                shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .scrape_all(),
            );
        }
        all
    }

    /// Drops expired peers and empty torrents in every shard, one shard locked at a time.
    pub fn purge(&self, now: Instant) {
        for shard in self.shards.iter() {
            shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .purge(now);
        }
    }

    /// Every shard's swarms in saved form (one encoded part per shard); `now` and
    /// `unix_now` are the same moment.
    pub fn export(&self, now: Instant, unix_now: u64) -> Vec<Vec<u8>> {
        self.shards
            .iter()
            .map(|shard| {
                let torrents = shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .export(now, unix_now);
                snapshot::encode(&torrents)
            })
            .collect()
    }

    /// Puts saved torrents back into their shards (at start; see `SwarmStore::restore`).
    pub fn restore(&self, torrents: &[SavedTorrent], now: Instant, unix_now: u64) {
        let mut by_shard: Vec<Vec<&SavedTorrent>> = vec![Vec::new(); self.shards.len()];
        for torrent in torrents {
            let index = shard_of(&torrent.info_hash, self.shards.len());
            if let Some(group) = by_shard.get_mut(index) {
                group.push(torrent);
            }
        }
        for (shard, group) in self.shards.iter().zip(by_shard) {
            if !group.is_empty() {
                shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .restore(group, now, unix_now);
            }
        }
    }

    /// Torrents, seeders and leechers over every shard.
    pub fn totals(&self) -> StoreTotals {
        let mut sum = StoreTotals::default();
        for shard in self.shards.iter() {
            let t = shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .totals();
            sum.torrents = sum.torrents.saturating_add(widen(t.torrents));
            sum.seeders = sum.seeders.saturating_add(widen(t.seeders));
            sum.leechers = sum.leechers.saturating_add(widen(t.leechers));
        }
        sum
    }
}

/// A count of any integer type as `u64`, saturating.
fn widen<T: TryInto<u64>>(n: T) -> u64 {
    n.try_into().unwrap_or(u64::MAX)
}
