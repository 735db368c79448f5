//! The swarm store: the peers of every torrent, as plain synchronous state (no I/O, no clock,
//! no locks; time comes in as `now`, randomness as an `Rng`).
//!
//! What it does (BEP 3 announce semantics, BEP 7 IPv6 peers, BEP 48 scrape counts):
//! - A peer is keyed by its address and port (`SocketAddr`, an IPv4-mapped IPv6 address taken
//!   as IPv4). A re-announce from the same address refreshes its peer id, seeder status and
//!   last-seen time. A seeder is a peer with `left == 0`; BEP 21's `paused` is a regular
//!   announce here (a partial seed, with bytes left, counts as a leecher).
//! - Seeders and leechers are counted incrementally: the counts are lengths, never recounted,
//!   and cannot drift (a proptest compares them to a recount).
//! - `stopped` removes the peer and gets an empty peer list (the counts are still returned); a
//!   `stopped` from an unknown peer or for an unknown torrent changes nothing.
//! - `downloaded` counts a `completed` event once per peer (the first `completed` with
//!   `left == 0`); a duplicate does not count again. A new peer id on the same address is a
//!   new peer and may count again.
//! - The reply never holds the requester, samples peers uniformly without replacement in
//!   O(numwant) whatever the swarm size, and gives a seeder leechers only.
//! - IPv4 and IPv6 peers are separate lists, and each reply list is sampled on its own, up to
//!   `numwant` each: the HTTP shell sends both (`peers`, `peers6`), the UDP shell the one of
//!   the request's family. Most swarms have few IPv6 peers, so sampling both costs little.
//! - `purge(now)` drops peers not heard from within `peer_ttl` and torrents left with no peer.
//!   A dropped torrent forgets its `downloaded` count: acceptable in public mode; private mode
//!   keeps its counts in the database. A torrent whose last peer stopped stays (peerless, with
//!   its count) until the next purge. Between purges a reply may hold a peer up to one purge
//!   period past its ttl: the server purges every minute or so.
//!
//! Time is kept per peer in whole seconds since the store's epoch (the first `now` it is
//! given), 4 bytes instead of a 16-byte `Instant`; expiry is therefore exact to one second.
//!
//! Memory (`cargo bench -p rill-tracker --bench swarm`, resident): about 60 bytes per peer in
//! a large swarm, 68 in swarms of 10 peers. An IPv4 peer record is 32 bytes; swarms of up to
//! 16 peers (most torrents) are searched linearly and carry no hash index.
//!
//! The server shards the store: N `Mutex<SwarmStore>`, a torrent in shard
//! [`shard_of`]`(info_hash, N)`.

mod list;
pub mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::Peer;
use rill_common::{InfoHash, PeerId};

use list::{Family, PeerList, V6};
use snapshot::{SavedPeer, SavedTorrent};

/// The store's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmConfig {
    /// A peer not heard from for this long is purged. Default 31 minutes: two announce
    /// intervals of 15 minutes and a minute of slack, so one lost announce never drops a peer.
    pub peer_ttl: Duration,
    /// Peers per family in a reply when the client sends no `numwant`.
    pub default_numwant: usize,
    /// Most peers per family in a reply, whatever `numwant` asks.
    pub max_numwant: usize,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig::for_interval(Duration::from_secs(15 * 60))
    }
}

impl SwarmConfig {
    /// The defaults, with a peer ttl of two announce `interval`s and a minute of slack.
    pub fn for_interval(interval: Duration) -> Self {
        SwarmConfig {
            peer_ttl: interval
                .saturating_mul(2)
                .saturating_add(Duration::from_secs(60)),
            default_numwant: 50,
            max_numwant: 200,
        }
    }
}

/// One announce, as the shells decode it (HTTP or UDP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAnnounce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The peer's id.
    pub peer_id: PeerId,
    /// The peer's IP address and announced port.
    pub addr: SocketAddr,
    /// The event, `None` for a regular announce.
    pub event: Option<AnnounceEvent>,
    /// Bytes the peer still needs: 0 makes it a seeder.
    pub left: u64,
    /// Peers wanted; `None` for the configured default.
    pub numwant: Option<u32>,
}

/// The store's answer to an announce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceReply {
    /// IPv4 peers (never the requester).
    pub peers_v4: Vec<Peer>,
    /// IPv6 peers (never the requester).
    pub peers_v6: Vec<Peer>,
    /// Seeders in the swarm, the requester included.
    pub complete: u32,
    /// Leechers in the swarm, the requester included.
    pub incomplete: u32,
    /// `completed` events counted for the torrent.
    pub downloaded: u32,
}

/// The scrape counts of one torrent (BEP 48).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Seeders.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
    /// `completed` events counted.
    pub downloaded: u32,
}

/// Torrents and peers in a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Torrents with a swarm.
    pub torrents: usize,
    /// Seeders over all torrents.
    pub seeders: usize,
    /// Leechers over all torrents.
    pub leechers: usize,
}

/// What a [`SwarmStore::purge`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Expired peers removed.
    pub peers: usize,
    /// Peerless torrents dropped.
    pub torrents: usize,
}

/// The swarm of one torrent.
#[derive(Debug, Default)]
struct Torrent {
    v4: PeerList<std::net::SocketAddrV4>,
    v6: PeerList<V6>,
    downloaded: u32,
}

impl Torrent {
    fn seeders(&self) -> usize {
        self.v4.seeders() + self.v6.seeders()
    }

    fn leechers(&self) -> usize {
        self.v4.leechers() + self.v6.leechers()
    }

    fn is_empty(&self) -> bool {
        self.v4.entries().is_empty() && self.v6.entries().is_empty()
    }

    fn counts(&self) -> ScrapeCounts {
        ScrapeCounts {
            complete: saturate(self.seeders()),
            incomplete: saturate(self.leechers()),
            downloaded: self.downloaded,
        }
    }
}

/// The swarms of all torrents (of one shard).
#[derive(Debug)]
pub struct SwarmStore {
    config: SwarmConfig,
    torrents: HashMap<InfoHash, Torrent>,
    /// The first `now` seen: peer times are whole seconds since it.
    epoch: Option<Instant>,
    seeders: usize,
    leechers: usize,
}

impl SwarmStore {
    /// An empty store.
    pub fn new(config: SwarmConfig) -> Self {
        SwarmStore {
            config,
            torrents: HashMap::new(),
            epoch: None,
            seeders: 0,
            leechers: 0,
        }
    }

    /// The store's settings.
    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// Records an announce and builds its reply (see the module doc for the rules).
    pub fn announce(
        &mut self,
        a: &PeerAnnounce,
        now: Instant,
        rng: &mut impl Rng,
    ) -> AnnounceReply {
        let now = self.seconds(now);
        let addr = canonical(a.addr);
        if a.event == Some(AnnounceEvent::Stopped) {
            return self.stop(&a.info_hash, addr);
        }
        let numwant = a
            .numwant
            .map_or(self.config.default_numwant, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            })
            .min(self.config.max_numwant);
        let seeder = a.left == 0;
        let completed = a.event == Some(AnnounceEvent::Completed);
        let torrent = self.torrents.entry(a.info_hash).or_default();
        let (seeders, leechers) = (torrent.seeders(), torrent.leechers());
        let (v4_pos, v6_pos, upserted) = match addr {
            SocketAddr::V4(v4) => {
                let u = torrent.v4.upsert(v4, a.peer_id, seeder, now, completed);
                (Some(u.position), None, u)
            }
            SocketAddr::V6(v6) => {
                let u = torrent
                    .v6
                    .upsert(V6::new(v6), a.peer_id, seeder, now, completed);
                (None, Some(u.position), u)
            }
        };
        if upserted.count_completion {
            torrent.downloaded = torrent.downloaded.saturating_add(1);
        }
        self.seeders = self.seeders + torrent.seeders() - seeders;
        self.leechers = self.leechers + torrent.leechers() - leechers;
        let mut reply = AnnounceReply {
            peers_v4: Vec::new(),
            peers_v6: Vec::new(),
            complete: saturate(torrent.seeders()),
            incomplete: saturate(torrent.leechers()),
            downloaded: torrent.downloaded,
        };
        let v4 = &torrent.v4;
        v4.sample_into(v4_pos, seeder, numwant, rng, &mut reply.peers_v4);
        let v6 = &torrent.v6;
        v6.sample_into(v6_pos, seeder, numwant, rng, &mut reply.peers_v6);
        reply
    }

    /// The counts of one torrent: zeros for an unknown torrent.
    pub fn scrape(&self, info_hash: &InfoHash) -> ScrapeCounts {
        self.torrents
            .get(info_hash)
            .map(Torrent::counts)
            .unwrap_or_default()
    }

    /// The counts of every torrent (a full scrape), in no particular order.
    pub fn scrape_all(&self) -> impl Iterator<Item = (InfoHash, ScrapeCounts)> {
        self.torrents.iter().map(|(h, t)| (*h, t.counts()))
    }

    /// Removes the peers not heard from within `peer_ttl` of `now`, then the torrents left
    /// with no peer. O(peers in the store): the server runs it on a timer, shard by shard.
    pub fn purge(&mut self, now: Instant) -> Purged {
        let now = self.seconds(now);
        let ttl = ttl_seconds(self.config.peer_ttl);
        let mut purged = Purged::default();
        // A peer last seen at `cutoff` or before is `ttl` seconds old or more.
        let Some(cutoff) = now.checked_sub(ttl) else {
            // Nobody can be that old yet; still drop torrents whose last peer stopped.
            let before = self.torrents.len();
            self.torrents.retain(|_, t| !t.is_empty());
            purged.torrents = before - self.torrents.len();
            return purged;
        };
        let (mut seeders, mut leechers) = (0, 0);
        self.torrents.retain(|_, t| {
            purged.peers += t.v4.purge(cutoff) + t.v6.purge(cutoff);
            seeders += t.seeders();
            leechers += t.leechers();
            let keep = !t.is_empty();
            purged.torrents += usize::from(!keep);
            keep
        });
        // The walk saw every peer: take its counts (equal to the incremental ones less the
        // purged peers).
        self.seeders = seeders;
        self.leechers = leechers;
        purged
    }

    /// Torrents, seeders and leechers in the store, in O(1).
    pub fn totals(&self) -> Totals {
        Totals {
            torrents: self.torrents.len(),
            seeders: self.seeders,
            leechers: self.leechers,
        }
    }

    /// Every torrent with its peers and `downloaded` count, for a restart (see
    /// [`snapshot`]): `now` and `unix_now` are the same moment, to turn peer times into
    /// unix seconds.
    pub fn export(&mut self, now: Instant, unix_now: u64) -> Vec<SavedTorrent> {
        let now = u64::from(self.seconds(now));
        let unix = |last_seen: u32| unix_now.saturating_sub(now.saturating_sub(last_seen.into()));
        fn peers<A: Family>(
            list: &PeerList<A>,
            unix: impl Fn(u32) -> u64,
            out: &mut Vec<SavedPeer>,
        ) {
            for (i, entry) in list.entries().iter().enumerate() {
                out.push(SavedPeer {
                    addr: entry.addr.socket(),
                    peer_id: entry.peer_id,
                    seeder: i < list.seeders(),
                    completed: entry.completed,
                    last_seen: unix(entry.last_seen),
                });
            }
        }
        self.torrents
            .iter()
            .map(|(info_hash, torrent)| {
                let mut saved = Vec::with_capacity(torrent.v4.entries().len());
                peers(&torrent.v4, unix, &mut saved);
                peers(&torrent.v6, unix, &mut saved);
                SavedTorrent {
                    info_hash: *info_hash,
                    downloaded: torrent.downloaded,
                    peers: saved,
                }
            })
            .collect()
    }

    /// Puts saved torrents back (at start, before any announce): each peer as if it had
    /// announced at its saved time, unless that is `peer_ttl` or more before `unix_now`;
    /// `downloaded` is the larger of the saved and the current count. `now` and `unix_now`
    /// are the same moment.
    pub fn restore<'a>(
        &mut self,
        torrents: impl IntoIterator<Item = &'a SavedTorrent>,
        now: Instant,
        unix_now: u64,
    ) {
        let ttl = u64::from(ttl_seconds(self.config.peer_ttl));
        if self.epoch.is_none() {
            // An epoch one ttl back, so that every live saved peer has a time at or after
            // it (near boot the monotonic clock may not reach back that far: such peers
            // are then taken as older, and expire sooner).
            self.epoch = Some(now.checked_sub(self.config.peer_ttl).unwrap_or(now));
        }
        let now = u64::from(self.seconds(now));
        for saved in torrents {
            let live = |p: &&SavedPeer| unix_now.saturating_sub(p.last_seen) < ttl;
            if saved.downloaded == 0 && !saved.peers.iter().any(|p| live(&p)) {
                continue;
            }
            let torrent = self.torrents.entry(saved.info_hash).or_default();
            torrent.downloaded = torrent.downloaded.max(saved.downloaded);
            for peer in saved.peers.iter().filter(live) {
                let age = unix_now.saturating_sub(peer.last_seen);
                let at = u32::try_from(now.saturating_sub(age)).unwrap_or(u32::MAX);
                match canonical(peer.addr) {
                    SocketAddr::V4(v4) => {
                        torrent
                            .v4
                            .restore(v4, peer.peer_id, peer.seeder, at, peer.completed);
                    }
                    SocketAddr::V6(v6) => {
                        torrent.v6.restore(
                            V6::new(v6),
                            peer.peer_id,
                            peer.seeder,
                            at,
                            peer.completed,
                        );
                    }
                }
            }
        }
        self.seeders = self.torrents.values().map(Torrent::seeders).sum();
        self.leechers = self.torrents.values().map(Torrent::leechers).sum();
    }

    fn stop(&mut self, info_hash: &InfoHash, addr: SocketAddr) -> AnnounceReply {
        let Some(torrent) = self.torrents.get_mut(info_hash) else {
            return AnnounceReply::default();
        };
        let (seeders, leechers) = (torrent.seeders(), torrent.leechers());
        match addr {
            SocketAddr::V4(v4) => torrent.v4.remove(&v4),
            SocketAddr::V6(v6) => torrent.v6.remove(&V6::new(v6)),
        };
        self.seeders -= seeders - torrent.seeders();
        self.leechers -= leechers - torrent.leechers();
        let counts = torrent.counts();
        // The torrent, even peerless, stays until the next purge: its `downloaded` survives a
        // last peer's stop and restart.
        AnnounceReply {
            peers_v4: Vec::new(),
            peers_v6: Vec::new(),
            complete: counts.complete,
            incomplete: counts.incomplete,
            downloaded: counts.downloaded,
        }
    }

    /// `now` as whole seconds since the epoch (the first `now` seen; earlier instants are 0).
    fn seconds(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        u32::try_from(now.saturating_duration_since(epoch).as_secs()).unwrap_or(u32::MAX)
    }
}

/// The shard (in `0..shards`) that holds a torrent: the same for the life of the process.
/// `shards == 0` is taken as 1. Info hashes are SHA-1 output, so their first bytes spread
/// torrents evenly; a client choosing hashes to load one shard only slows that shard.
pub fn shard_of(info_hash: &InfoHash, shards: usize) -> usize {
    let b = info_hash.as_bytes();
    let x = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let shards = u64::try_from(shards.max(1)).unwrap_or(u64::MAX);
    usize::try_from(x % shards).unwrap_or(0)
}

/// IPv4-mapped IPv6 addresses (from a dual-stack socket) are IPv4 peers.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::new(ip.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The ttl in whole seconds, rounded up.
fn ttl_seconds(ttl: Duration) -> u32 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
