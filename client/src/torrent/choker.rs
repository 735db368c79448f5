//! The choker: which peers we upload to (BEP 3 "choking and optimistic unchoking").
//!
//! - Regular slots ([`ChokerConfig::slots`], default 4), re-ranked on every rechoke (every
//!   10 s): while downloading, by the rate each peer sends to us (tit-for-tat); while
//!   seeding, by the rate we upload to each, in turns: a peer unchoked for a full turn
//!   ([`ChokerConfig::seed_turn`]) yields to the peers that have waited longest, so every
//!   interested peer is served.
//! - One optimistic unchoke, rotated every 30 s, among interested peers without a regular
//!   slot; peers connected less than [`ChokerConfig::new_peer_age`] are three times as
//!   likely to get it, and each rotation a peer waits raises its odds, so every interested
//!   peer gets a turn within about twice as many rotations as there are candidates.
//! - Anti-snubbing: a peer that unchoked us while we are interested but sent no block for
//!   [`ChokerConfig::snub_timeout`] (60 s) is snubbed: it holds no regular slot and can
//!   only be unchoked optimistically.
//!
//! Invariants after each [`Choker::rechoke`] (checked by proptests in `choker/tests.rs`): at
//! most `slots + 1` peers unchoked, all of them interested; no snubbed peer holds a regular
//! slot; the returned changes are exactly the difference from the previous unchoked set.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;

use super::PeerKey;
use super::rate::Rate;

/// Timings and slot count of the choker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChokerConfig {
    /// Regular upload slots (the optimistic unchoke comes on top; 0 disables uploads).
    pub slots: usize,
    /// Time between rechokes.
    pub rechoke_interval: Duration,
    /// Time between optimistic unchoke rotations.
    pub optimistic_interval: Duration,
    /// Time without a block from a peer that unchoked us after which it is snubbed.
    pub snub_timeout: Duration,
    /// Peers connected for less than this are three times as likely to be unchoked optimistically.
    pub new_peer_age: Duration,
    /// While seeding, how long a peer keeps a regular slot before yielding its turn.
    pub seed_turn: Duration,
}

impl Default for ChokerConfig {
    /// 4 slots, rechoke every 10 s, optimistic every 30 s, snubbed after 60 s, new for 60 s,
    /// 30 s seeding turns.
    fn default() -> Self {
        ChokerConfig {
            slots: 4,
            rechoke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            snub_timeout: Duration::from_secs(60),
            new_peer_age: Duration::from_secs(60),
            seed_turn: Duration::from_secs(30),
        }
    }
}

/// What the choker knows of one peer.
#[derive(Clone, Debug)]
struct Peer {
    connected_at: Instant,
    /// The peer is interested in us.
    interested: bool,
    /// We unchoke the peer.
    unchoked: bool,
    /// When the current unchoke began.
    unchoked_at: Option<Instant>,
    /// When the latest unchoke began, current or past (seeding turns go to the oldest).
    last_unchoked: Option<Instant>,
    /// The peer unchokes us.
    unchokes_us: bool,
    /// We are interested in the peer.
    am_interested: bool,
    /// Start of the snub clock: the last block, unchoke or start of our interest.
    last_progress: Instant,
    down: Rate,
    up: Rate,
    /// Optimistic rotations this peer was a candidate for and not chosen.
    optimistic_wait: u32,
}

/// The choker; see the module docs.
#[derive(Clone, Debug)]
pub struct Choker {
    config: ChokerConfig,
    seeding: bool,
    peers: HashMap<PeerKey, Peer>,
    optimistic: Option<PeerKey>,
    next_rechoke: Instant,
    next_optimistic: Instant,
}

impl Choker {
    /// A choker with no peers whose first rechoke is due at `now`.
    pub fn new(config: ChokerConfig, now: Instant) -> Self {
        Choker {
            config,
            seeding: false,
            peers: HashMap::new(),
            optimistic: None,
            next_rechoke: now,
            next_optimistic: now,
        }
    }

    /// Switches between ranking by download (leeching) and by upload in turns (seeding).
    pub fn set_seeding(&mut self, seeding: bool) {
        self.seeding = seeding;
    }

    /// Adds a newly connected peer, choked and not interested.
    pub fn add_peer(&mut self, key: PeerKey, now: Instant) {
        self.peers.insert(
            key,
            Peer {
                connected_at: now,
                interested: false,
                unchoked: false,
                unchoked_at: None,
                last_unchoked: None,
                unchokes_us: false,
                am_interested: false,
                last_progress: now,
                down: Rate::default(),
                up: Rate::default(),
                optimistic_wait: 0,
            },
        );
    }

    /// Forgets a peer that left (its slot is refilled at the next rechoke).
    pub fn remove_peer(&mut self, key: PeerKey) {
        self.peers.remove(&key);
        if self.optimistic == Some(key) {
            self.optimistic = None;
        }
    }

    /// Records whether the peer is interested in us; only interested peers are unchoked.
    pub fn set_interested(&mut self, key: PeerKey, interested: bool) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.interested = interested;
        }
    }

    /// Records whether we are interested in the peer (the snub clock runs only then).
    pub fn set_am_interested(&mut self, key: PeerKey, interested: bool, now: Instant) {
        if let Some(p) = self.peers.get_mut(&key) {
            if interested && !p.am_interested {
                p.last_progress = now;
            }
            p.am_interested = interested;
        }
    }

    /// Records whether the peer chokes us (the snub clock starts when it unchokes us).
    pub fn set_peer_choking(&mut self, key: PeerKey, choking: bool, now: Instant) {
        if let Some(p) = self.peers.get_mut(&key) {
            if !choking && !p.unchokes_us {
                p.last_progress = now;
            }
            p.unchokes_us = !choking;
        }
    }

    /// Records `bytes` of block data received from the peer.
    pub fn block_received(&mut self, key: PeerKey, bytes: u64, now: Instant) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.down.add(bytes, now);
            p.last_progress = p.last_progress.max(now);
        }
    }

    /// Records `bytes` of block data sent to the peer.
    pub fn block_sent(&mut self, key: PeerKey, bytes: u64, now: Instant) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.up.add(bytes, now);
        }
    }

    /// The rate the peer sends to us, in bytes/s (0 for an unknown peer).
    pub fn download_rate(&self, key: PeerKey, now: Instant) -> f64 {
        self.peers.get(&key).map_or(0.0, |p| p.down.get(now))
    }

    /// The rate we send to the peer, in bytes/s (0 for an unknown peer).
    pub fn upload_rate(&self, key: PeerKey, now: Instant) -> f64 {
        self.peers.get(&key).map_or(0.0, |p| p.up.get(now))
    }

    /// Whether the peer is snubbing us: unchoked us, we are interested, and no block came
    /// for [`ChokerConfig::snub_timeout`].
    pub fn is_snubbed(&self, key: PeerKey, now: Instant) -> bool {
        self.peers.get(&key).is_some_and(|p| self.snubbed(p, now))
    }

    /// Whether we unchoke the peer.
    pub fn is_unchoked(&self, key: PeerKey) -> bool {
        self.peers.get(&key).is_some_and(|p| p.unchoked)
    }

    /// The peer holding the optimistic unchoke, if any.
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    /// When the next rechoke is due.
    pub fn next_rechoke(&self) -> Instant {
        self.next_rechoke
    }

    /// Re-ranks the peers and returns the changes to send: `(peer, true)` to unchoke,
    /// `(peer, false)` to choke, sorted by peer. May be called early (a peer left or lost
    /// interest); the optimistic unchoke rotates only when due or when its holder no
    /// longer qualifies.
    pub fn rechoke(&mut self, now: Instant, rng: &mut impl Rng) -> Vec<(PeerKey, bool)> {
        let regular = self.regular_peers(now, rng);
        let holder_ok = self.optimistic.is_some_and(|o| {
            !regular.contains(&o) && self.peers.get(&o).is_some_and(|p| p.interested)
        });
        if !holder_ok || now >= self.next_optimistic {
            self.optimistic = self.choose_optimistic(&regular, now, rng);
            self.next_optimistic = now + self.config.optimistic_interval;
        }
        if self.config.slots == 0 {
            self.optimistic = None;
        }
        let mut changes = Vec::new();
        for (&key, peer) in &mut self.peers {
            let unchoke = regular.contains(&key) || self.optimistic == Some(key);
            if unchoke != peer.unchoked {
                peer.unchoked = unchoke;
                peer.unchoked_at = unchoke.then_some(now);
                if unchoke {
                    peer.last_unchoked = Some(now);
                }
                changes.push((key, unchoke));
            }
        }
        changes.sort();
        self.next_rechoke = now + self.config.rechoke_interval;
        changes
    }

    fn snubbed(&self, p: &Peer, now: Instant) -> bool {
        p.am_interested
            && p.unchokes_us
            && now.saturating_duration_since(p.last_progress) >= self.config.snub_timeout
    }

    /// The peers for the regular slots, best first.
    fn regular_peers(&self, now: Instant, rng: &mut impl Rng) -> Vec<PeerKey> {
        let mut candidates: Vec<(PeerKey, &Peer)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.interested && !self.snubbed(p, now))
            .map(|(k, p)| (*k, p))
            .collect();
        // Sort by key first so the shuffle (random tie-breaks) is reproducible from the rng.
        candidates.sort_by_key(|(k, _)| *k);
        candidates.shuffle(rng);
        if self.seeding {
            let turn = self.config.seed_turn;
            // 0: in the middle of a turn; 1: waiting, longest first; 2: turn over.
            let class = |p: &Peer| match p.unchoked_at {
                Some(at) if now.saturating_duration_since(at) < turn => 0,
                Some(_) => 2,
                None => 1,
            };
            candidates.sort_by(|(_, a), (_, b)| {
                class(a).cmp(&class(b)).then_with(|| match class(a) {
                    1 => a.last_unchoked.cmp(&b.last_unchoked),
                    _ => b.up.get(now).total_cmp(&a.up.get(now)),
                })
            });
        } else {
            candidates.sort_by(|(_, a), (_, b)| b.down.get(now).total_cmp(&a.down.get(now)));
        }
        candidates
            .into_iter()
            .take(self.config.slots)
            .map(|(k, _)| k)
            .collect()
    }

    /// Picks the next optimistic unchoke among interested peers without a regular slot.
    fn choose_optimistic(
        &mut self,
        regular: &[PeerKey],
        now: Instant,
        rng: &mut impl Rng,
    ) -> Option<PeerKey> {
        let mut candidates: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(k, p)| p.interested && !regular.contains(k))
            .map(|(k, _)| *k)
            .collect();
        candidates.sort();
        let n = u32::try_from(candidates.len()).unwrap_or(u32::MAX);
        let wait = |k: &PeerKey| self.peers.get(k).map_or(0, |p| p.optimistic_wait);
        // A peer that waited as many rotations as there are candidates goes next, so
        // nobody waits forever however the dice fall.
        let overdue = candidates
            .iter()
            .filter(|k| wait(k) >= n)
            .max_by_key(|k| (wait(k), std::cmp::Reverse(**k)))
            .copied();
        let chosen = overdue.or_else(|| {
            let weight = |k: &PeerKey| {
                let new = self.peers.get(k).is_some_and(|p| {
                    now.saturating_duration_since(p.connected_at) < self.config.new_peer_age
                });
                u64::from(wait(k) + 1) * if new { 3 } else { 1 }
            };
            let total: u64 = candidates.iter().map(weight).sum();
            if total == 0 {
                return None;
            }
            let mut roll = rng.random_range(0..total);
            candidates.iter().copied().find(|k| {
                let w = weight(k);
                if roll < w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
        });
        for k in &candidates {
            if let Some(p) = self.peers.get_mut(k) {
                p.optimistic_wait = if Some(*k) == chosen {
                    0
                } else {
                    p.optimistic_wait.saturating_add(1)
                };
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests;
