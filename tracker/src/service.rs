//! The protocol-neutral core both front ends call: an announce or scrape in, a reply out.
//!
//! HTTP and UDP parse their own wire formats into [`Announce`] and hash lists, and encode
//! what comes back. Everything a tracker decides beyond the swarm itself lives here: reply
//! intervals with jitter, counters for `/stats`, and (later) private mode's checks, which
//! will refuse with a [`Refusal`] before the swarm is touched.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::Rng;
use rill_common::tracker::AnnounceEvent;
use rill_common::{InfoHash, PeerId};
use serde::Serialize;

use crate::config::Config;
use crate::store::{Shards, StoreTotals};
use crate::swarm::{AnnounceReply, PeerAnnounce, ScrapeCounts, SwarmConfig};

/// Which front end a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP (BEP 3).
    Http,
    /// UDP (BEP 15).
    Udp,
}

/// An announce, whatever protocol carried it.
#[derive(Clone, Debug)]
pub struct Announce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The peer.
    pub peer_id: PeerId,
    /// Where other peers reach it (already resolved: socket, proxy header or `ip=`).
    pub addr: SocketAddr,
    /// The event.
    pub event: Option<AnnounceEvent>,
    /// Bytes uploaded (accounting, private mode).
    #[allow(dead_code)] // Read by private mode's accounting, which comes later.
    pub uploaded: u64,
    /// Bytes downloaded (accounting, private mode).
    #[allow(dead_code)] // Read by private mode's accounting, which comes later.
    pub downloaded: u64,
    /// Bytes left; 0 is a seeder.
    pub left: u64,
    /// Peers wanted, `None` for the default.
    pub numwant: Option<u32>,
}

/// What an announce gets back.
#[derive(Clone, Debug)]
pub struct Granted {
    /// `interval`, jitter included.
    pub interval: u32,
    /// `min interval`.
    pub min_interval: u32,
    /// Peers and counters.
    pub reply: AnnounceReply,
}

/// Why a request is refused (the text of a `failure reason` or UDP error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Request counters for `/stats` (and `/metrics`, later).
#[derive(Debug, Default)]
pub struct Counters {
    http_announces: AtomicU64,
    http_scrapes: AtomicU64,
    http_failures: AtomicU64,
    udp_connects: AtomicU64,
    udp_announces: AtomicU64,
    udp_scrapes: AtomicU64,
    udp_failures: AtomicU64,
}

impl Counters {
    /// Counts a request refused or malformed.
    pub fn failure(&self, protocol: Protocol) {
        let counter = match protocol {
            Protocol::Http => &self.http_failures,
            Protocol::Udp => &self.udp_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a UDP connect.
    pub fn udp_connect(&self) {
        self.udp_connects.fetch_add(1, Ordering::Relaxed);
    }
}

/// `/stats`: the swarm totals and the request counters.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// "public" (or "private", later).
    pub mode: &'static str,
    /// Torrents with peers.
    pub torrents: u64,
    /// Seeders over every torrent.
    pub seeders: u64,
    /// Leechers over every torrent.
    pub leechers: u64,
    /// Announces answered (HTTP + UDP).
    pub announces: u64,
    /// Scrapes answered (HTTP + UDP).
    pub scrapes: u64,
    /// Per protocol.
    pub http: ProtocolStats,
    /// Per protocol.
    pub udp: ProtocolStats,
}

/// Counters of one protocol.
#[derive(Clone, Debug, Serialize)]
pub struct ProtocolStats {
    /// Announces answered.
    pub announces: u64,
    /// Scrapes answered.
    pub scrapes: u64,
    /// Requests refused or malformed.
    pub failures: u64,
    /// UDP connects (0 for HTTP).
    pub connects: u64,
}

/// The tracker's shared state.
#[derive(Debug)]
pub struct Service {
    config: Config,
    store: Shards,
    counters: Counters,
}

impl Service {
    /// A tracker with empty swarms. `config` must have passed [`Config::validate`].
    pub fn new(config: Config) -> Self {
        let swarm_config = || SwarmConfig {
            peer_ttl: config.swarm.peer_ttl(),
            default_numwant: usize::try_from(config.announce.default_numwant).unwrap_or(50),
            max_numwant: usize::try_from(config.announce.max_numwant).unwrap_or(200),
        };
        let store = Shards::new(config.swarm.shard_count(), swarm_config);
        Service {
            store,
            counters: Counters::default(),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The request counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Records an announce and builds its reply. Public mode refuses nothing; private mode
    /// will check the passkey, client and rate here.
    pub fn announce(
        &self,
        announce: &Announce,
        protocol: Protocol,
        now: Instant,
    ) -> Result<Granted, Refusal> {
        let reply = self.store.announce(
            &PeerAnnounce {
                info_hash: announce.info_hash,
                peer_id: announce.peer_id,
                addr: announce.addr,
                event: announce.event,
                left: announce.left,
                numwant: announce.numwant,
            },
            now,
        );
        let counter = match protocol {
            Protocol::Http => &self.counters.http_announces,
            Protocol::Udp => &self.counters.udp_announces,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let a = &self.config.announce;
        let jitter = if a.interval_jitter_secs > 0 {
            rand::rng().random_range(0..=a.interval_jitter_secs)
        } else {
            0
        };
        Ok(Granted {
            interval: a.interval_secs.saturating_add(jitter),
            min_interval: a.min_interval_secs,
            reply,
        })
    }

    /// The counters of each torrent asked for, in order (zeros for unknown torrents).
    pub fn scrape(
        &self,
        info_hashes: &[InfoHash],
        protocol: Protocol,
    ) -> Result<Vec<ScrapeCounts>, Refusal> {
        let counts = info_hashes.iter().map(|h| self.store.scrape(h)).collect();
        self.count_scrape(protocol);
        Ok(counts)
    }

    /// Every torrent's counters, if full scrapes are enabled.
    pub fn scrape_all(&self, protocol: Protocol) -> Result<Vec<(InfoHash, ScrapeCounts)>, Refusal> {
        if !self.config.scrape.full_scrape {
            return Err(Refusal(
                "full scrape is disabled: name at least one info_hash".to_owned(),
            ));
        }
        let all = self.store.scrape_all();
        self.count_scrape(protocol);
        Ok(all)
    }

    fn count_scrape(&self, protocol: Protocol) {
        let counter = match protocol {
            Protocol::Http => &self.counters.http_scrapes,
            Protocol::Udp => &self.counters.udp_scrapes,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops expired peers and empty torrents.
    pub fn purge(&self, now: Instant) {
        self.store.purge(now);
    }

    /// The totals and counters for `/stats`.
    pub fn stats(&self) -> Stats {
        let StoreTotals {
            torrents,
            seeders,
            leechers,
        } = self.store.totals();
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let http = ProtocolStats {
            announces: load(&c.http_announces),
            scrapes: load(&c.http_scrapes),
            failures: load(&c.http_failures),
            connects: 0,
        };
        let udp = ProtocolStats {
            announces: load(&c.udp_announces),
            scrapes: load(&c.udp_scrapes),
            failures: load(&c.udp_failures),
            connects: load(&c.udp_connects),
        };
        Stats {
            mode: "public",
            torrents,
            seeders,
            leechers,
            announces: http.announces + udp.announces,
            scrapes: http.scrapes + udp.scrapes,
            http,
            udp,
        }
    }
}
