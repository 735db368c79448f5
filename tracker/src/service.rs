//! The protocol-neutral core both front ends call: an announce or scrape in, a reply out.
//!
//! HTTP and UDP parse their own wire formats into [`Announce`] and hash lists, and encode
//! what comes back. Everything a tracker decides beyond the swarm itself lives here: reply
//! intervals with jitter, counters for `/stats` and `/metrics`, and private mode's checks
//! ([`crate::private::PrivateTracker::check`]), which refuse with a [`Refusal`] before the
//! swarm is touched.
//!
//! Private mode invariants: the passkey comes from the request path (HTTP) or BEP 41 URL
//! data (UDP) and is validated by `Passkey::parse` before any lookup; the peer's address is
//! the one the shell resolved from the socket (the shells never apply `ip=` in private
//! mode); the private state is sharded ([`PrivateState`], `private_mode.rs`) and its locks
//! are released before the swarm shard is locked, never held across an `.await`; a refused
//! announce changes no state and gets no peers; an admitted `stopped` of an unknown
//! torrent is answered with an empty success without touching the swarm.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use rand::Rng;
use rill_common::tracker::AnnounceEvent;
use rill_common::{InfoHash, PeerId};

use crate::config::{Config, Mode};
use crate::private::{self, Passkey, PrivateAnnounce, PrivateConfig, Registry, Snapshot};
use crate::store::{Shards, StoreTotals};
use crate::swarm::snapshot::SavedTorrent;
use crate::swarm::{AnnounceReply, PeerAnnounce, ScrapeCounts, SwarmConfig};

mod private_mode;
mod stats;

pub use private_mode::PrivateState;

pub use stats::{
    CounterSnapshot, Counters, ErrorKind, FlushCounters, PrivateStats, ProtocolStats, RequestKind,
    Stats,
};

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
    pub uploaded: u64,
    /// Bytes downloaded (accounting, private mode).
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

/// Why a request is refused: the text of a `failure reason` or UDP error, and its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// For `/metrics`.
    pub kind: ErrorKind,
    /// What the client is told.
    pub reason: String,
}

impl Refusal {
    fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Refusal {
            kind,
            reason: reason.into(),
        }
    }
}

impl From<private::Refusal> for Refusal {
    fn from(refusal: private::Refusal) -> Self {
        let kind = match refusal {
            private::Refusal::MalformedPasskey | private::Refusal::UnknownPasskey => {
                ErrorKind::Passkey
            }
            private::Refusal::Disabled(_) => ErrorKind::Disabled,
            private::Refusal::ClientNotAllowed => ErrorKind::ClientNotAllowed,
            private::Refusal::UnregisteredTorrent => ErrorKind::Unregistered,
            private::Refusal::RateLimited => ErrorKind::RateLimited,
        };
        Refusal::new(kind, refusal.to_string())
    }
}

/// The private settings of a configuration.
pub fn private_config(config: &Config) -> PrivateConfig {
    let a = &config.announce;
    let longest = u64::from(a.interval_secs) + u64::from(a.interval_jitter_secs);
    PrivateConfig {
        rate_limit: config.private.rate_limit(),
        ..PrivateConfig::for_interval(longest)
    }
}

/// The tracker's shared state.
#[derive(Debug)]
pub struct Service {
    config: Config,
    store: Shards,
    counters: Counters,
    private: Option<PrivateState>,
}

impl Service {
    /// A public tracker with empty swarms (or a private one with an empty registry, if the
    /// configuration says private). `config` must have passed [`Config::validate`].
    #[cfg(test)]
    pub fn new(config: Config) -> Self {
        let private =
            (config.mode == Mode::Private).then(|| (Registry::new(), Snapshot::default()));
        Service::with_private(config, private)
    }

    /// A tracker with empty swarms and, for private mode, this registry and these saved
    /// baselines.
    pub fn with_private(config: Config, private: Option<(Registry, Snapshot)>) -> Self {
        let swarm_config = || SwarmConfig {
            peer_ttl: config.swarm.peer_ttl(),
            default_numwant: usize::try_from(config.announce.default_numwant).unwrap_or(50),
            max_numwant: usize::try_from(config.announce.max_numwant).unwrap_or(200),
        };
        let store = Shards::new(config.swarm.shard_count(), swarm_config);
        Service {
            store,
            counters: Counters::default(),
            private: private.map(|(registry, snapshot)| {
                let shards = config.swarm.shard_count();
                PrivateState::new(private_config(&config), registry, snapshot, shards)
            }),
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

    /// Private mode's state; `None` in public mode.
    pub fn private(&self) -> Option<&PrivateState> {
        self.private.as_ref()
    }

    /// Whether `ip=` and UDP's address field may be believed: configured, and never in
    /// private mode.
    pub fn trusts_ip_param(&self) -> bool {
        self.config.announce.allow_ip_param && self.private.is_none()
    }

    /// Records an announce and builds its reply. `passkey` is what the request's path
    /// carried (`None`: no passkey): private mode checks it, the client, the torrent and the
    /// rate first; public mode refuses a passkey.
    pub fn announce(
        &self,
        passkey: Option<&str>,
        announce: &Announce,
        protocol: Protocol,
        now: Instant,
    ) -> Result<Granted, Refusal> {
        if let Some(private) = &self.private {
            let passkey = match passkey {
                Some(text) => Passkey::parse(text).map_err(private::Refusal::from)?,
                None => return Err(no_passkey()),
            };
            let report = PrivateAnnounce {
                info_hash: announce.info_hash,
                peer_id: announce.peer_id,
                event: announce.event,
                uploaded: announce.uploaded,
                downloaded: announce.downloaded,
                left: announce.left,
            };
            let unix = private::unix_secs(SystemTime::now());
            let admitted = private.check(&passkey, &report, unix)?;
            if admitted.torrent.is_none() {
                // A `stopped` for a torrent that is not registered: answered, ignored.
                self.count_announce(protocol);
                return Ok(self.granted(AnnounceReply::default()));
            }
        } else if passkey.is_some() {
            return Err(Refusal::new(
                ErrorKind::Passkey,
                "this tracker is public: announce to /announce, without a passkey",
            ));
        }
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
        self.count_announce(protocol);
        Ok(self.granted(reply))
    }

    fn count_announce(&self, protocol: Protocol) {
        self.counters
            .of(protocol)
            .announces
            .fetch_add(1, Ordering::Relaxed);
    }

    fn granted(&self, reply: AnnounceReply) -> Granted {
        let a = &self.config.announce;
        let jitter = if a.interval_jitter_secs > 0 {
            rand::rng().random_range(0..=a.interval_jitter_secs)
        } else {
            0
        };
        Granted {
            interval: a.interval_secs.saturating_add(jitter),
            min_interval: a.min_interval_secs,
            reply,
        }
    }

    /// Puts saved swarms back (at start): in private mode only those of registered torrents.
    /// Returns how many peers were restored.
    pub fn restore_swarms(&self, mut torrents: Vec<SavedTorrent>) -> usize {
        if let Some(private) = &self.private {
            let registry = private.registry();
            torrents.retain(|t| registry.torrent(&t.info_hash).is_some());
        }
        let unix = private::unix_secs(SystemTime::now());
        self.store.restore(&torrents, Instant::now(), unix);
        torrents.iter().map(|t| t.peers.len()).sum()
    }

    /// The swarms in saved form, one part per shard (see `crate::swarm::snapshot`).
    pub fn export_swarms(&self) -> Vec<Vec<u8>> {
        let unix = private::unix_secs(SystemTime::now());
        self.store.export(Instant::now(), unix)
    }

    /// Checks the passkey of a scrape in private mode (see [`Service::announce`]); the
    /// info hashes a private scrape may see are filtered by [`Service::scrape`].
    fn authorize_scrape(&self, passkey: Option<&str>) -> Result<(), Refusal> {
        match (&self.private, passkey) {
            (Some(private), Some(text)) => {
                let passkey = Passkey::parse(text).map_err(private::Refusal::from)?;
                private.authorize(&passkey)?;
                Ok(())
            }
            (Some(_), None) => Err(no_passkey()),
            (None, Some(_)) => Err(Refusal::new(
                ErrorKind::Passkey,
                "this tracker is public: scrape /scrape, without a passkey",
            )),
            (None, None) => Ok(()),
        }
    }

    /// The counters of each torrent asked for, in order (zeros for unknown torrents, and in
    /// private mode for torrents that are not registered).
    pub fn scrape(
        &self,
        passkey: Option<&str>,
        info_hashes: &[InfoHash],
        protocol: Protocol,
    ) -> Result<Vec<ScrapeCounts>, Refusal> {
        self.authorize_scrape(passkey)?;
        let counts = match &self.private {
            Some(private) => {
                let registered: Vec<bool> = {
                    let registry = private.registry();
                    info_hashes
                        .iter()
                        .map(|h| registry.torrent(h).is_some())
                        .collect()
                };
                info_hashes
                    .iter()
                    .zip(registered)
                    .map(|(h, known)| {
                        if known {
                            self.store.scrape(h)
                        } else {
                            ScrapeCounts::default()
                        }
                    })
                    .collect()
            }
            None => info_hashes.iter().map(|h| self.store.scrape(h)).collect(),
        };
        self.count_scrape(protocol);
        Ok(counts)
    }

    /// Every torrent's counters, if full scrapes are enabled (private mode: the registered
    /// torrents with a swarm).
    pub fn scrape_all(
        &self,
        passkey: Option<&str>,
        protocol: Protocol,
    ) -> Result<Vec<(InfoHash, ScrapeCounts)>, Refusal> {
        self.authorize_scrape(passkey)?;
        if !self.config.scrape.full_scrape {
            return Err(Refusal::new(
                ErrorKind::Refused,
                "full scrape is disabled: name at least one info_hash",
            ));
        }
        let mut all = self.store.scrape_all();
        if let Some(private) = &self.private {
            let registry = private.registry();
            all.retain(|(h, _)| registry.torrent(h).is_some());
        }
        self.count_scrape(protocol);
        Ok(all)
    }

    fn count_scrape(&self, protocol: Protocol) {
        self.counters
            .of(protocol)
            .scrapes
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Drops expired peers and empty torrents (and, in private mode, expired baselines).
    pub fn purge(&self, now: Instant) {
        self.store.purge(now);
        if let Some(private) = &self.private {
            private.purge(private::unix_secs(SystemTime::now()));
        }
    }

    /// Torrents, seeders and leechers over every shard.
    pub fn totals(&self) -> StoreTotals {
        self.store.totals()
    }

    /// Private mode's counters; `None` in public mode.
    pub fn private_stats(&self) -> Option<PrivateStats> {
        let private = self.private.as_ref()?;
        let (users, registered_torrents, peers, (credits, changed)) = {
            let registry = private.registry();
            (
                registry.users().count(),
                registry.torrents().count(),
                private.peer_count(),
                private.backlog(),
            )
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let refused = |kind| {
            let (h, u) = (
                self.counters.snapshot(Protocol::Http),
                self.counters.snapshot(Protocol::Udp),
            );
            h.error(kind).saturating_add(u.error(kind))
        };
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Some(PrivateStats {
            users: wide(users),
            registered_torrents: wide(registered_torrents),
            peers: wide(peers),
            pending_credits: wide(credits),
            pending_peers: wide(changed),
            flushes: load(&private.flush.flushes),
            flush_failures: load(&private.flush.failures),
            last_flush_ms: load(&private.flush.last_micros) / 1000,
            total_flush_ms: load(&private.flush.total_micros) / 1000,
            registry_reloads: load(&private.flush.reloads),
            last_reload_ms: load(&private.flush.reload_micros) / 1000,
            refused_passkey: refused(ErrorKind::Passkey),
            refused_disabled: refused(ErrorKind::Disabled),
            refused_client: refused(ErrorKind::ClientNotAllowed),
            refused_unregistered: refused(ErrorKind::Unregistered),
            refused_rate_limited: refused(ErrorKind::RateLimited),
        })
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
            mode: match self.config.mode {
                Mode::Public => "public",
                Mode::Private => "private",
            },
            torrents,
            seeders,
            leechers,
            announces: http.announces + udp.announces,
            scrapes: http.scrapes + udp.scrapes,
            http,
            udp,
            private: self.private_stats(),
        }
    }
}

fn no_passkey() -> Refusal {
    Refusal::new(
        ErrorKind::Passkey,
        "this tracker is private: use your personal announce URL, /announce/<passkey>",
    )
}
