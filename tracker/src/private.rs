//! Private mode as pure state: passkeys, users, registered torrents, the client allow-list,
//! the per-user announce rate limit and the accounting (no I/O, no locks, no clock reads;
//! time comes in as unix seconds, randomness as a `CryptoRng`).
//!
//! - [`Passkey`] (`passkey.rs`): 32 alphanumeric characters from a CSPRNG, validated before
//!   any lookup, compared in constant time.
//! - [`Registry`] (`registry.rs`): users, torrents, allowed clients: what the database
//!   holds, loaded at start and kept in sync by the admin tools.
//! - [`RateLimit`] (`rate.rs`): a token bucket per user, exact integer arithmetic.
//! - [`Ledger`] (`ledger.rs`): baselines per (user, torrent, peer id), pending credits
//!   flushed in batches; its module doc states the crediting rules and the flush invariant.
//! - Where peers listen is the swarm store's business (`crate::swarm`), saved for a
//!   restart with the public swarms (`crate::swarm::snapshot`), not here.
//!
//! [`PrivateTracker::check`] decides an announce, in this order (the first failing check
//! answers, and a refused announce changes no state and gets no peer list):
//! 1. the passkey belongs to a user ([`Refusal::UnknownPasskey`]); a string that is not a
//!    passkey at all is refused by [`Passkey::parse`] before this ([`Refusal::MalformedPasskey`]);
//! 2. the user is enabled ([`Refusal::Disabled`], `account disabled: <reason>`);
//! 3. the client's peer id matches the allow-list, if any ([`Refusal::ClientNotAllowed`]);
//! 4. the torrent is registered ([`Refusal::UnregisteredTorrent`]), except that a `stopped`
//!    is always answered with success when its peer has no baseline, creating nothing:
//!    Transmission sends `stopped` first at start-up (measured) and retries a refusal;
//! 5. the user is within the rate limit ([`Refusal::RateLimited`]); `stopped` is exempt (it
//!    ends state, and a refused `stopped` would be retried) and does not take a token;
//! 6. then the announce is credited ([`Ledger`]).
//!
//! What the shell must do around it: take the passkey from the path (`/announce/<passkey>`
//! or BEP 41's UDP URL data), refuse it with `Passkey::parse` first; build the peer's
//! address from the socket only (never `ip=` or the UDP address field, which would let a
//! user put someone else's address in a swarm: private mode ignores them whatever the
//! configuration; [`PrivateAnnounce`] has no address field on purpose); call `check` before
//! the swarm store and touch the swarm only when it admits; read the clock once per request
//! (`unix_secs(SystemTime::now())`). The persistence layer loads the [`Registry`] and a
//! [`Snapshot`] at start ([`PrivateTracker::new`], [`PrivateTracker::restore`]), calls
//! [`PrivateTracker::take_pending`] every few seconds and writes the [`Batch`] in one
//! transaction, [`PrivateTracker::restore_pending`] when that fails, and drains on shutdown.
//! The parts are separate so that the shell can share them between threads without one
//! lock: [`admit`] only reads the [`Registry`] (which changes only on a reload), the
//! [`Buckets`] are per user, and the [`Ledger`]'s state is per (user, torrent), so the
//! shell shards buckets by user and ledgers by torrent. [`PrivateTracker`] composes the
//! same parts single-threaded: [`PrivateTracker::check`] is `admit`, `Buckets::take`,
//! [`credit`] in that order, which is what the shell does shard by shard.

mod ledger;
mod passkey;
#[cfg(test)]
mod proptests;
mod rate;
mod registry;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rill_common::tracker::AnnounceEvent;
use rill_common::{InfoHash, PeerId};
use thiserror::Error;

pub use ledger::{
    Batch, Credit, Delta, Ledger, PeerChange, PeerKey, PeerRecord, Session, Snapshot,
};
pub use passkey::{Passkey, PasskeyError};
pub use rate::RateLimit;
pub use registry::{
    ClientPrefix, Registry, RegistryError, Torrent, TorrentId, UploadMultiplier, User, UserId,
};

use ledger::{Report, Terms};
use rate::Bucket;

/// Private mode's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateConfig {
    /// The per-user announce rate limit; `None` turns it off.
    pub rate_limit: Option<RateLimit>,
    /// Seconds after its last announce that a peer's baseline is purged.
    pub peer_ttl_secs: u64,
    /// Most seconds of seeding credited between two announces.
    pub max_seeding_gap_secs: u64,
}

impl PrivateConfig {
    /// The defaults for a longest announce interval (interval plus jitter) of
    /// `max_interval_secs`: seeding gaps capped at two intervals (one lost announce is
    /// still credited, a peer gone for longer is not), baselines kept for two intervals and
    /// a minute (as the swarm store keeps peers), the default rate limit.
    pub fn for_interval(max_interval_secs: u64) -> Self {
        PrivateConfig {
            rate_limit: Some(RateLimit::default()),
            peer_ttl_secs: max_interval_secs.saturating_mul(2).saturating_add(60),
            max_seeding_gap_secs: max_interval_secs.saturating_mul(2),
        }
    }
}

impl Default for PrivateConfig {
    /// For the server's default interval, 1,800 s plus 180 s of jitter.
    fn default() -> Self {
        PrivateConfig::for_interval(1980)
    }
}

/// An announce as private mode needs it (the shells fill it from HTTP or UDP). It has no
/// address: private mode never trusts `ip=`; the shell uses the socket's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateAnnounce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The peer's id.
    pub peer_id: PeerId,
    /// The event, `None` for a regular announce.
    pub event: Option<AnnounceEvent>,
    /// Bytes uploaded this session, as the client reports.
    pub uploaded: u64,
    /// Bytes downloaded this session, as the client reports.
    pub downloaded: u64,
    /// Bytes left: 0 is a seeder.
    pub left: u64,
}

/// Why an announce (or scrape) is refused: the text is the `failure reason`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    /// The path does not hold a well-formed passkey.
    #[error("invalid passkey")]
    MalformedPasskey,
    /// No user has this passkey.
    #[error("unknown passkey")]
    UnknownPasskey,
    /// The user is disabled.
    #[error("account disabled: {0}")]
    Disabled(String),
    /// The client is not on the allow-list.
    #[error("client not allowed on this tracker")]
    ClientNotAllowed,
    /// The info hash is not registered.
    #[error("torrent not registered with this tracker")]
    UnregisteredTorrent,
    /// The user announced too often.
    #[error("announce rate limit exceeded: slow down")]
    RateLimited,
}

impl From<PasskeyError> for Refusal {
    fn from(_: PasskeyError) -> Self {
        Refusal::MalformedPasskey
    }
}

/// An admitted announce: who it was, and what it credited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// The user.
    pub user: UserId,
    /// The torrent; `None` for a `stopped` on an unregistered torrent (answered, ignored).
    pub torrent: Option<TorrentId>,
    /// How the announce related to the peer's baseline.
    pub session: Session,
    /// What this announce credited.
    pub credited: Delta,
}

/// What the registry says of an announce (checks 1 to 4 of the module doc): whose it is,
/// and the registered torrent (`None`: a `stopped` of an unregistered torrent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The user.
    pub user: UserId,
    /// The torrent; `None` for a `stopped` on an unregistered torrent (answered, ignored).
    pub torrent: Option<Torrent>,
}

/// Checks 1 to 4 of the module doc: reads the registry only, so that a shell may run it
/// under a shared lock (or on a snapshot) while other announces do the same.
pub fn admit(
    registry: &Registry,
    passkey: &Passkey,
    announce: &PrivateAnnounce,
) -> Result<Admission, Refusal> {
    let user = authorize(registry, passkey)?;
    if !registry.client_allowed(&announce.peer_id) {
        return Err(Refusal::ClientNotAllowed);
    }
    match registry.torrent(&announce.info_hash) {
        Some(torrent) => Ok(Admission {
            user,
            torrent: Some(*torrent),
        }),
        None if announce.event == Some(AnnounceEvent::Stopped) => Ok(Admission {
            user,
            torrent: None,
        }),
        None => Err(Refusal::UnregisteredTorrent),
    }
}

/// Checks a passkey (for a scrape, or as the first check of an announce): the user exists
/// and is enabled.
pub fn authorize(registry: &Registry, passkey: &Passkey) -> Result<UserId, Refusal> {
    let user = registry
        .user_by_passkey(passkey)
        .ok_or(Refusal::UnknownPasskey)?;
    if let Some(reason) = &user.disabled {
        return Err(Refusal::Disabled(reason.clone()));
    }
    Ok(user.id)
}

/// The per-user rate buckets (check 5), kept apart from the registry: a registry reload
/// keeps them, and a shell may shard them by user.
#[derive(Clone, Debug, Default)]
pub struct Buckets {
    by_user: HashMap<UserId, Bucket>,
}

impl Buckets {
    /// Check 5 of the module doc for an admitted announce: takes a token from the user's
    /// bucket unless the limit is off, the announce is a `stopped` (exempt, takes none) or
    /// its torrent is unregistered.
    pub fn take(
        &mut self,
        limit: Option<RateLimit>,
        admission: &Admission,
        announce: &PrivateAnnounce,
        now: u64,
    ) -> Result<(), Refusal> {
        let stopped = announce.event == Some(AnnounceEvent::Stopped);
        let Some(limit) = limit.filter(|_| !stopped && admission.torrent.is_some()) else {
            return Ok(());
        };
        let bucket = self
            .by_user
            .entry(admission.user)
            .or_insert_with(|| Bucket::full(limit, now));
        if bucket.take(limit, now) {
            Ok(())
        } else {
            Err(Refusal::RateLimited)
        }
    }

    /// Forgets the buckets of users no longer in `registry`.
    pub fn retain_users(&mut self, registry: &Registry) {
        self.by_user.retain(|id, _| registry.user(*id).is_some());
    }
}

/// Step 6 of the module doc: credits an admitted announce (that passed the rate limit) in
/// `ledger`. An admission without a torrent changes nothing.
pub fn credit(
    ledger: &mut Ledger,
    config: &PrivateConfig,
    admission: &Admission,
    announce: &PrivateAnnounce,
    now: u64,
) -> Admitted {
    let Some(torrent) = admission.torrent else {
        return Admitted {
            user: admission.user,
            torrent: None,
            session: Session::UnknownStop,
            credited: Delta::default(),
        };
    };
    let key = PeerKey {
        user: admission.user,
        torrent: torrent.id,
        peer_id: announce.peer_id,
    };
    let report = Report {
        uploaded: announce.uploaded,
        downloaded: announce.downloaded,
        seeder: announce.left == 0,
        completed: announce.event == Some(AnnounceEvent::Completed),
        stopped: announce.event == Some(AnnounceEvent::Stopped),
    };
    let terms = Terms {
        freeleech: torrent.freeleech,
        multiplier: torrent.upload_multiplier,
    };
    let (session, credited) = ledger.record(key, report, terms, now, config.max_seeding_gap_secs);
    Admitted {
        user: admission.user,
        torrent: Some(torrent.id),
        session,
        credited,
    }
}

/// Private mode's state in one value: the registry, the rate buckets and the ledger (the
/// server shards the same parts over locks; this is the single-threaded composition the
/// tests drive).
#[derive(Clone, Debug)]
pub struct PrivateTracker {
    config: PrivateConfig,
    registry: Registry,
    buckets: Buckets,
    ledger: Ledger,
}

impl PrivateTracker {
    /// A tracker with these users and torrents and no baselines.
    pub fn new(config: PrivateConfig, registry: Registry) -> Self {
        PrivateTracker {
            config,
            registry,
            buckets: Buckets::default(),
            ledger: Ledger::default(),
        }
    }

    /// Replaces the registry with a fresh copy (from the database), keeping each remaining
    /// user's rate bucket: users, passkeys, torrents, freeleech and the allow-list changed
    /// by the admin tools take effect from the next announce.
    pub fn reload(&mut self, registry: Registry) {
        self.buckets.retain_users(&registry);
        self.registry = registry;
    }

    /// Pending credit entries and changed baselines waiting for a flush ([`Ledger::backlog`]).
    pub fn backlog(&self) -> (usize, usize) {
        self.ledger.backlog()
    }

    /// The settings.
    pub fn config(&self) -> &PrivateConfig {
        &self.config
    }

    /// Users, torrents, allowed clients.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Users, torrents, allowed clients, for the admin tools to change.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Baselines and pending credits.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Decides an announce and credits it (see the module doc for the order of checks).
    /// `now` is unix seconds.
    pub fn check(
        &mut self,
        passkey: &Passkey,
        announce: &PrivateAnnounce,
        now: u64,
    ) -> Result<Admitted, Refusal> {
        let admission = admit(&self.registry, passkey, announce)?;
        self.buckets
            .take(self.config.rate_limit, &admission, announce, now)?;
        Ok(credit(
            &mut self.ledger,
            &self.config,
            &admission,
            announce,
            now,
        ))
    }

    /// Checks a passkey for a scrape (or any request): the user exists and is enabled.
    /// Scrapes are not rate limited; the shell answers zeros for unregistered info hashes.
    pub fn authorize(&self, passkey: &Passkey) -> Result<UserId, Refusal> {
        authorize(&self.registry, passkey)
    }

    /// Takes the pending credits and baseline changes (see [`Ledger::take_pending`]).
    pub fn take_pending(&mut self) -> Batch {
        self.ledger.take_pending()
    }

    /// Gives back a batch whose write failed (see [`Ledger::restore_pending`]).
    pub fn restore_pending(&mut self, batch: Batch) {
        self.ledger.restore_pending(batch);
    }

    /// Every baseline and seeding mark, for a full save.
    pub fn snapshot(&self) -> Snapshot {
        self.ledger.snapshot()
    }

    /// Restores saved baselines and seeding marks (at start).
    pub fn restore(&mut self, snapshot: Snapshot) {
        self.ledger.restore(snapshot);
    }

    /// Drops baselines not heard from within the ttl; returns how many.
    pub fn purge(&mut self, now: u64) -> usize {
        self.ledger.purge(now, self.config.peer_ttl_secs)
    }
}

/// Whole unix seconds of a `SystemTime` (0 before the epoch): the shell reads the clock,
/// this only converts.
pub fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
