//! Request counters, error kinds and the `/stats` shapes: what the front ends count and
//! `/stats` and `/metrics` read. Counters are relaxed atomics: each is exact, a snapshot of
//! several is not a consistent cut (fine for monitoring).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::Protocol;

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
    /// Refused by the service for another reason (full scrape disabled, say).
    Refused,
    /// Garbage dropped without an answer (UDP).
    Dropped,
    /// Private mode: a missing, malformed or unknown passkey.
    Passkey,
    /// Private mode: the user is disabled.
    Disabled,
    /// Private mode: the client is not on the allow-list.
    ClientNotAllowed,
    /// Private mode: the torrent is not registered.
    Unregistered,
    /// Private mode: the user announced too often.
    RateLimited,
}

impl ErrorKind {
    /// Every kind, in the order of the counters.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::BadQuery,
        ErrorKind::QueryTooLong,
        ErrorKind::TooManyHashes,
        ErrorKind::BadPacket,
        ErrorKind::BadConnectionId,
        ErrorKind::Refused,
        ErrorKind::Dropped,
        ErrorKind::Passkey,
        ErrorKind::Disabled,
        ErrorKind::ClientNotAllowed,
        ErrorKind::Unregistered,
        ErrorKind::RateLimited,
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
            ErrorKind::Passkey => "passkey",
            ErrorKind::Disabled => "user_disabled",
            ErrorKind::ClientNotAllowed => "client_not_allowed",
            ErrorKind::Unregistered => "unregistered_torrent",
            ErrorKind::RateLimited => "rate_limited",
        }
    }

    /// Whether `protocol` can produce this kind (so `/metrics` lists only real series).
    pub fn applies_to(self, protocol: Protocol) -> bool {
        match self {
            ErrorKind::BadQuery | ErrorKind::QueryTooLong => protocol == Protocol::Http,
            ErrorKind::BadPacket | ErrorKind::BadConnectionId | ErrorKind::Dropped => {
                protocol == Protocol::Udp
            }
            ErrorKind::TooManyHashes
            | ErrorKind::Refused
            | ErrorKind::Passkey
            | ErrorKind::Disabled
            | ErrorKind::ClientNotAllowed
            | ErrorKind::Unregistered
            | ErrorKind::RateLimited => true,
        }
    }

    /// Whether only private mode can produce this kind (public `/metrics` leaves it out).
    pub fn private_only(self) -> bool {
        matches!(
            self,
            ErrorKind::Disabled
                | ErrorKind::ClientNotAllowed
                | ErrorKind::Unregistered
                | ErrorKind::RateLimited
        )
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
pub(super) struct ProtocolCounters {
    pub(super) announces: AtomicU64,
    pub(super) scrapes: AtomicU64,
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
    pub(super) fn of(&self, protocol: Protocol) -> &ProtocolCounters {
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
    /// "public" or "private".
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
    /// Private mode's counters (absent in public mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private: Option<PrivateStats>,
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

/// Private mode's part of `/stats`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PrivateStats {
    /// Users (enabled or not).
    pub users: u64,
    /// Registered torrents.
    pub registered_torrents: u64,
    /// Live peer baselines.
    pub peers: u64,
    /// Credit entries waiting for the next flush (one per peer baseline until the flush
    /// merges them into (user, torrent) rows).
    pub pending_credits: u64,
    /// Changed baselines waiting for the next flush.
    pub pending_peers: u64,
    /// Batches written.
    pub flushes: u64,
    /// Failed writes (each retried later).
    pub flush_failures: u64,
    /// The latency of the last write, in milliseconds.
    pub last_flush_ms: u64,
    /// Time spent writing batches since start, in milliseconds.
    pub total_flush_ms: u64,
    /// Registry reloads (users, torrents, allow-list) done since start.
    pub registry_reloads: u64,
    /// The latency of the last registry reload, in milliseconds.
    pub last_reload_ms: u64,
    /// Refusals: passkey missing, malformed or unknown.
    pub refused_passkey: u64,
    /// Refusals: user disabled.
    pub refused_disabled: u64,
    /// Refusals: client not on the allow-list.
    pub refused_client: u64,
    /// Refusals: torrent not registered.
    pub refused_unregistered: u64,
    /// Refusals: rate limited.
    pub refused_rate_limited: u64,
}

/// Flush counters, written by the flush task, read by `/stats` and `/metrics`.
#[derive(Debug, Default)]
pub struct FlushCounters {
    /// Batches written (empty ones included).
    pub flushes: AtomicU64,
    /// Failed writes.
    pub failures: AtomicU64,
    /// The last write's latency in microseconds.
    pub last_micros: AtomicU64,
    /// The sum of all write latencies in microseconds.
    pub total_micros: AtomicU64,
    /// Registry reloads done.
    pub reloads: AtomicU64,
    /// The last registry reload's latency in microseconds.
    pub reload_micros: AtomicU64,
}
