//! The protocol-neutral core both front ends call: an announce or scrape in, a reply out.
//!
//! HTTP and UDP parse their own wire formats into [`Announce`] and hash lists, and encode
//! what comes back. Everything a tracker decides beyond the swarm itself lives here: reply
//! intervals with jitter, counters for `/stats` and `/metrics`, and (later) private mode's
//! checks, which will refuse with a [`Refusal`] before the swarm is touched.

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

/// What a refused or malformed request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// An announce.
    Announce,
    /// A scrape.
    Scrape,
    /// Anything else (a UDP packet with an unknown action, say).
    Other,
}

/// Why a request was refused, for `/metrics`' `errors_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A missing, repeated or malformed query parameter (HTTP).
    BadQuery,
    /// A query string over the size limit (HTTP).
    QueryTooLong,
    /// More info hashes in a scrape than allowed.
    TooManyHashes,
    /// A packet that does not decode, from a sender holding a connection id (UDP).
    BadPacket,
    /// A wrong or expired connection id (UDP).
    BadConnectionId,
    /// Refused by the service (full scrape disabled; private mode's checks, later).
    Refused,
    /// Garbage dropped without an answer (UDP).
    Dropped,
}

impl ErrorKind {
    /// Every kind, in the order of the counters.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::BadQuery,
        ErrorKind::QueryTooLong,
        ErrorKind::TooManyHashes,
        ErrorKind::BadPacket,
        ErrorKind::BadConnectionId,
        ErrorKind::Refused,
        ErrorKind::Dropped,
    ];

    /// The label value in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadQuery => "bad_query",
            ErrorKind::QueryTooLong => "query_too_long",
            ErrorKind::TooManyHashes => "too_many_hashes",
            ErrorKind::BadPacket => "bad_packet",
            ErrorKind::BadConnectionId => "bad_connection_id",
            ErrorKind::Refused => "refused",
            ErrorKind::Dropped => "garbage_dropped",
        }
    }

    /// Whether `protocol` can produce this kind (so `/metrics` lists only real series).
    pub fn applies_to(self, protocol: Protocol) -> bool {
        match self {
            ErrorKind::BadQuery | ErrorKind::QueryTooLong => protocol == Protocol::Http,
            ErrorKind::BadPacket | ErrorKind::BadConnectionId | ErrorKind::Dropped => {
                protocol == Protocol::Udp
            }
            ErrorKind::TooManyHashes | ErrorKind::Refused => true,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Request counters for `/stats` and `/metrics`, per protocol.
#[derive(Debug, Default)]
pub struct Counters {
    http: ProtocolCounters,
    udp: ProtocolCounters,
}

/// The counters of one protocol.
#[derive(Debug, Default)]
struct ProtocolCounters {
    announces: AtomicU64,
    scrapes: AtomicU64,
    /// Answered with a failure (refused or malformed), of any request kind.
    failures: AtomicU64,
    announce_failures: AtomicU64,
    scrape_failures: AtomicU64,
    connects: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

/// A copy of one protocol's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Announces answered.
    pub announces: u64,
    /// Scrapes answered.
    pub scrapes: u64,
    /// Requests answered with a failure.
    pub failures: u64,
    /// Announces answered with a failure.
    pub announce_failures: u64,
    /// Scrapes answered with a failure.
    pub scrape_failures: u64,
    /// UDP connects (0 for HTTP).
    pub connects: u64,
    /// Errors by kind, in [`ErrorKind::ALL`] order.
    pub errors: [u64; ErrorKind::ALL.len()],
}

impl CounterSnapshot {
    /// The count of one error kind.
    pub fn error(&self, kind: ErrorKind) -> u64 {
        self.errors.get(kind.index()).copied().unwrap_or(0)
    }
}

impl Counters {
    fn of(&self, protocol: Protocol) -> &ProtocolCounters {
        match protocol {
            Protocol::Http => &self.http,
            Protocol::Udp => &self.udp,
        }
    }

    /// Counts a request answered with a failure: refused or malformed.
    pub fn failure(&self, protocol: Protocol, request: RequestKind, kind: ErrorKind) {
        let c = self.of(protocol);
        c.failures.fetch_add(1, Ordering::Relaxed);
        match request {
            RequestKind::Announce => c.announce_failures.fetch_add(1, Ordering::Relaxed),
            RequestKind::Scrape => c.scrape_failures.fetch_add(1, Ordering::Relaxed),
            RequestKind::Other => 0,
        };
        self.error(protocol, kind);
    }

    /// Counts an error of `kind` only (garbage dropped without an answer, say).
    pub fn error(&self, protocol: Protocol, kind: ErrorKind) {
        if let Some(counter) = self.of(protocol).errors.get(kind.index()) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a UDP connect.
    pub fn udp_connect(&self) {
        self.udp.connects.fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of one protocol's counters.
    pub fn snapshot(&self, protocol: Protocol) -> CounterSnapshot {
        let c = self.of(protocol);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CounterSnapshot {
            announces: load(&c.announces),
            scrapes: load(&c.scrapes),
            failures: load(&c.failures),
            announce_failures: load(&c.announce_failures),
            scrape_failures: load(&c.scrape_failures),
            connects: load(&c.connects),
            errors: std::array::from_fn(|i| c.errors.get(i).map_or(0, load)),
        }
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
        self.counters
            .of(protocol)
            .announces
            .fetch_add(1, Ordering::Relaxed);
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
        self.counters
            .of(protocol)
            .scrapes
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Drops expired peers and empty torrents.
    pub fn purge(&self, now: Instant) {
        self.store.purge(now);
    }

    /// Torrents, seeders and leechers over every shard.
    pub fn totals(&self) -> StoreTotals {
        self.store.totals()
    }

    /// The totals and counters for `/stats`.
    pub fn stats(&self) -> Stats {
        let StoreTotals {
            torrents,
            seeders,
            leechers,
        } = self.totals();
        let of = |protocol| {
            let c = self.counters.snapshot(protocol);
            ProtocolStats {
                announces: c.announces,
                scrapes: c.scrapes,
                failures: c.failures,
                connects: c.connects,
            }
        };
        let (http, udp) = (of(Protocol::Http), of(Protocol::Udp));
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
