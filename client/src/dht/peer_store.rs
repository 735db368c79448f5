//! Peers announced to this node (`announce_peer`), served back in `get_peers` replies (BEP 5).
//!
//! Invariants: an entry lives [`PEER_TTL`] after its last announce; at most `max_per_hash`
//! peers per info-hash and `max_total` in all (a full store refuses new peers rather than
//! evicting fresh ones, so a flood cannot push out honest announces); a reply carries at most
//! [`MAX_REPLY_PEERS`] peers so it fits in one UDP packet. Pure: time and randomness come in.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::IteratorRandom;
use rill_common::InfoHash;

/// How long an announce is kept (BEP 5 leaves it open; libtorrent keeps 30 minutes).
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
/// Most peers put in one `get_peers` reply (6 bytes each; libtorrent also sends at most 100,
/// we stay lower so the reply with its nodes fits a 1,500-byte datagram).
pub const MAX_REPLY_PEERS: usize = 50;

/// Announced peers per info-hash, with the time of their last announce.
#[derive(Clone, Debug)]
pub struct PeerStore {
    swarms: HashMap<InfoHash, HashMap<SocketAddr, Instant>>,
    total: usize,
    max_per_hash: usize,
    max_total: usize,
}

impl PeerStore {
    /// An empty store with the given caps.
    pub fn new(max_per_hash: usize, max_total: usize) -> Self {
        PeerStore {
            swarms: HashMap::new(),
            total: 0,
            max_per_hash,
            max_total,
        }
    }

    /// Records (or refreshes) `peer` for `info_hash`; returns `false` if a cap refused it.
    pub fn announce(&mut self, info_hash: InfoHash, peer: SocketAddr, now: Instant) -> bool {
        let total = self.total;
        let swarm = self.swarms.entry(info_hash).or_default();
        if let Some(seen) = swarm.get_mut(&peer) {
            *seen = now;
            return true;
        }
        if swarm.len() >= self.max_per_hash || total >= self.max_total {
            if swarm.is_empty() {
                self.swarms.remove(&info_hash);
            }
            return false;
        }
        swarm.insert(peer, now);
        self.total += 1;
        true
    }

    /// Up to [`MAX_REPLY_PEERS`] live peers of `info_hash`, a random sample when there are more.
    pub fn peers(&self, info_hash: &InfoHash, now: Instant, rng: &mut impl Rng) -> Vec<SocketAddr> {
        let Some(swarm) = self.swarms.get(info_hash) else {
            return Vec::new();
        };
        swarm
            .iter()
            .filter(|(_, seen)| now.saturating_duration_since(**seen) < PEER_TTL)
            .map(|(addr, _)| *addr)
            .choose_multiple(rng, MAX_REPLY_PEERS)
    }

    /// Up to `max` live peers of `info_hash`, in no particular order (no sampling).
    pub fn live_peers(&self, info_hash: &InfoHash, now: Instant, max: usize) -> Vec<SocketAddr> {
        self.swarms.get(info_hash).map_or_else(Vec::new, |swarm| {
            swarm
                .iter()
                .filter(|(_, seen)| now.saturating_duration_since(**seen) < PEER_TTL)
                .map(|(addr, _)| *addr)
                .take(max)
                .collect()
        })
    }

    /// Drops peers not announced within [`PEER_TTL`] and swarms left empty.
    pub fn expire(&mut self, now: Instant) {
        let mut removed = 0;
        self.swarms.retain(|_, swarm| {
            let before = swarm.len();
            swarm.retain(|_, seen| now.saturating_duration_since(*seen) < PEER_TTL);
            removed += before - swarm.len();
            !swarm.is_empty()
        });
        self.total -= removed;
    }

    /// Peers stored in all.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether no peer is stored.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Info-hashes with at least one peer.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn hash(n: u8) -> InfoHash {
        InfoHash::from_bytes([n; 20])
    }

    fn peer(n: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, (n >> 8) as u8, n as u8], 6881))
    }

    #[test]
    fn announce_then_expire() {
        let mut rng = StdRng::seed_from_u64(0);
        let t0 = Instant::now();
        let mut store = PeerStore::new(10, 100);
        assert!(store.announce(hash(1), peer(1), t0));
        assert!(store.announce(hash(1), peer(2), t0 + Duration::from_secs(600)));
        assert_eq!(store.peers(&hash(1), t0, &mut rng).len(), 2);
        assert!(store.peers(&hash(2), t0, &mut rng).is_empty());
        let later = t0 + PEER_TTL;
        assert_eq!(store.peers(&hash(1), later, &mut rng), vec![peer(2)]);
        store.expire(later);
        assert_eq!(store.len(), 1);
        store.expire(later + PEER_TTL);
        assert!(store.is_empty());
        assert_eq!(store.swarm_count(), 0);
    }

    #[test]
    fn reannounce_refreshes_without_counting_twice() {
        let t0 = Instant::now();
        let mut store = PeerStore::new(10, 100);
        assert!(store.announce(hash(1), peer(1), t0));
        assert!(store.announce(hash(1), peer(1), t0 + PEER_TTL - Duration::from_secs(1)));
        assert_eq!(store.len(), 1);
        store.expire(t0 + PEER_TTL);
        assert_eq!(store.len(), 1, "the refresh moved the expiry");
    }

    #[test]
    fn caps_per_hash_and_total() {
        let t0 = Instant::now();
        let mut store = PeerStore::new(3, 5);
        for n in 0..3 {
            assert!(store.announce(hash(1), peer(n), t0));
        }
        assert!(!store.announce(hash(1), peer(3), t0), "per-hash cap");
        assert!(store.announce(hash(2), peer(0), t0));
        assert!(store.announce(hash(3), peer(0), t0));
        assert!(!store.announce(hash(4), peer(0), t0), "total cap");
        assert_eq!(store.len(), 5);
        assert_eq!(
            store.swarm_count(),
            3,
            "a refused announce leaves no empty swarm"
        );
    }

    #[test]
    fn reply_is_capped() {
        let mut rng = StdRng::seed_from_u64(3);
        let t0 = Instant::now();
        let mut store = PeerStore::new(1000, 1000);
        for n in 0..200 {
            store.announce(hash(1), peer(n), t0);
        }
        let got = store.peers(&hash(1), t0, &mut rng);
        assert_eq!(got.len(), MAX_REPLY_PEERS);
    }

    proptest! {
        #[test]
        fn total_matches_contents(ops in proptest::collection::vec((0u8..4, 0u16..20, 0u64..4000), 0..200)) {
            let t0 = Instant::now();
            let mut store = PeerStore::new(8, 30);
            let mut clock = t0;
            for (h, p, dt) in ops {
                clock += Duration::from_secs(dt);
                store.announce(hash(h), peer(p), clock);
                if dt > 3000 {
                    store.expire(clock);
                }
                let counted: usize = store.swarms.values().map(HashMap::len).sum();
                prop_assert_eq!(counted, store.len());
                prop_assert!(store.len() <= 30);
                prop_assert!(store.swarms.values().all(|s| s.len() <= 8 && !s.is_empty()));
            }
        }
    }
}
