//! Unit tests of private mode: every refusal and the registry here, the crediting rules and
//! the flush seams in `accounting.rs`; the shared fixture: Alice (enabled), Bob (disabled),
//! a normal torrent (1), a freeleech one (2) and one at 150 % (3).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::tracker::AnnounceEvent;
use rill_common::{InfoHash, PeerId};

use super::*;

mod accounting;

pub(super) const T0: u64 = 1_700_000_000;
pub(super) const GAP: u64 = 3600;

pub(super) struct Fixture {
    pub(super) tracker: PrivateTracker,
    pub(super) alice: Passkey,
    pub(super) bob: Passkey,
}

pub(super) fn hash(n: u8) -> InfoHash {
    InfoHash::from_bytes([n; 20])
}

pub(super) fn peer(prefix: &[u8], n: u8) -> PeerId {
    let mut id = [n; 20];
    id[..prefix.len()].copy_from_slice(prefix);
    PeerId::from_bytes(id)
}

/// Alice (1) and Bob (2, disabled); torrent 1 normal, 2 freeleech, 3 at 150 %.
pub(super) fn fixture(rate_limit: Option<RateLimit>) -> Fixture {
    let mut rng = StdRng::seed_from_u64(1);
    let alice = Passkey::generate(&mut rng);
    let bob = Passkey::generate(&mut rng);
    let mut registry = Registry::new();
    for (id, name, passkey) in [(1, "alice", alice), (2, "bob", bob)] {
        registry
            .add_user(User {
                id: UserId(id),
                name: name.to_owned(),
                passkey,
                disabled: None,
            })
            .unwrap();
    }
    registry.disable_user(UserId(2), "ratio too low").unwrap();
    for (id, freeleech, percent) in [(1, false, 100), (2, true, 100), (3, false, 150)] {
        registry
            .add_torrent(Torrent {
                id: TorrentId(u64::from(id)),
                info_hash: hash(id),
                freeleech,
                upload_multiplier: UploadMultiplier(percent),
            })
            .unwrap();
    }
    let config = PrivateConfig {
        rate_limit,
        peer_ttl_secs: 2 * GAP + 60,
        max_seeding_gap_secs: GAP,
    };
    Fixture {
        tracker: PrivateTracker::new(config, registry),
        alice,
        bob,
    }
}

pub(super) fn announce(
    torrent: u8,
    peer_id: PeerId,
    event: Option<AnnounceEvent>,
    uploaded: u64,
    downloaded: u64,
    left: u64,
) -> PrivateAnnounce {
    PrivateAnnounce {
        info_hash: hash(torrent),
        peer_id,
        event,
        uploaded,
        downloaded,
        left,
    }
}

pub(super) fn credit(up: u64, down: u64, snatches: u32, seeding: u64) -> Delta {
    Delta {
        uploaded: up,
        downloaded: down,
        snatches,
        seeding_secs: seeding,
    }
}

impl Fixture {
    pub(super) fn alice(&mut self, a: PrivateAnnounce, now: u64) -> Result<Admitted, Refusal> {
        let key = self.alice;
        self.tracker.check(&key, &a, now)
    }

    pub(super) fn credited(&mut self, a: PrivateAnnounce, now: u64) -> Delta {
        self.alice(a, now).unwrap().credited
    }
}

#[test]
fn malformed_passkey_is_refused_before_lookup() {
    let refusal: Refusal = Passkey::parse("' OR 1=1 --").unwrap_err().into();
    assert_eq!(refusal, Refusal::MalformedPasskey);
    assert_eq!(refusal.to_string(), "invalid passkey");
}

#[test]
fn unknown_passkey_is_refused() {
    let mut f = fixture(None);
    let stranger = Passkey::parse(&"x".repeat(32)).unwrap();
    let a = announce(1, peer(b"-qB", 1), None, 0, 0, 10);
    assert_eq!(
        f.tracker.check(&stranger, &a, T0),
        Err(Refusal::UnknownPasskey)
    );
    // Even a stopped: a stranger learns nothing and changes nothing.
    let stop = announce(1, peer(b"-qB", 1), Some(AnnounceEvent::Stopped), 0, 0, 10);
    assert_eq!(
        f.tracker.check(&stranger, &stop, T0),
        Err(Refusal::UnknownPasskey)
    );
    assert_eq!(f.tracker.ledger().peer_count(), 0);
}

#[test]
fn disabled_user_is_refused_with_the_reason() {
    let mut f = fixture(None);
    let bob = f.bob;
    let a = announce(1, peer(b"-qB", 1), None, 0, 0, 10);
    let refusal = f.tracker.check(&bob, &a, T0).unwrap_err();
    assert_eq!(refusal, Refusal::Disabled("ratio too low".to_owned()));
    assert_eq!(refusal.to_string(), "account disabled: ratio too low");
    assert_eq!(f.tracker.authorize(&bob), Err(refusal));
    f.tracker.registry_mut().enable_user(UserId(2)).unwrap();
    assert_eq!(f.tracker.check(&bob, &a, T0).unwrap().user, UserId(2));
}

#[test]
fn unregistered_torrent_is_refused_but_its_stopped_is_answered() {
    let mut f = fixture(None);
    let a = announce(9, peer(b"-qB", 1), Some(AnnounceEvent::Started), 0, 0, 10);
    assert_eq!(f.alice(a, T0), Err(Refusal::UnregisteredTorrent));
    assert_eq!(
        Refusal::UnregisteredTorrent.to_string(),
        "torrent not registered with this tracker"
    );
    let stop = announce(9, peer(b"-qB", 1), Some(AnnounceEvent::Stopped), 0, 0, 10);
    let admitted = f.alice(stop, T0).unwrap();
    assert_eq!(admitted.torrent, None);
    assert_eq!(admitted.session, Session::UnknownStop);
    assert_eq!(f.tracker.ledger().peer_count(), 0);
}

#[test]
fn client_allow_list_by_prefix() {
    let mut f = fixture(None);
    let prefixes = ["-qB", "-TR", "-lt", "-RL"].map(|p| ClientPrefix::parse(p).unwrap());
    f.tracker
        .registry_mut()
        .set_allowed_clients(prefixes.to_vec());
    for prefix in [&b"-qB4650-"[..], b"-TR4060-", b"-lt0D80-", b"-RL0100-"] {
        assert!(
            f.alice(announce(1, peer(prefix, 1), None, 0, 0, 1), T0)
                .is_ok()
        );
    }
    let other = announce(1, peer(b"-UT3550-", 1), None, 0, 0, 1);
    assert_eq!(f.alice(other, T0), Err(Refusal::ClientNotAllowed));
    // The prefix is case-sensitive, as peer ids are bytes.
    let upper = announce(1, peer(b"-QB4650-", 1), None, 0, 0, 1);
    assert_eq!(f.alice(upper, T0), Err(Refusal::ClientNotAllowed));
    // Empty list: everyone.
    f.tracker.registry_mut().set_allowed_clients(Vec::new());
    assert!(f.alice(other, T0).is_ok());
    assert!(ClientPrefix::parse("").is_err());
    assert!(ClientPrefix::parse("-q B").is_err());
}

#[test]
fn rate_limit_refuses_then_recovers_and_exempts_stopped() {
    let limit = RateLimit {
        burst: 2,
        per_minute: 1,
    };
    let mut f = fixture(Some(limit));
    let p = peer(b"-qB", 1);
    assert!(f.alice(announce(1, p, None, 0, 0, 5), T0).is_ok());
    assert!(f.alice(announce(1, p, None, 10, 0, 5), T0).is_ok());
    let third = announce(1, p, None, 20, 0, 5);
    assert_eq!(f.alice(third, T0), Err(Refusal::RateLimited));
    assert_eq!(
        Refusal::RateLimited.to_string(),
        "announce rate limit exceeded: slow down"
    );
    // The refused announce credited nothing and moved no baseline.
    let key = PeerKey {
        user: UserId(1),
        torrent: TorrentId(1),
        peer_id: p,
    };
    assert_eq!(f.tracker.ledger().peer(&key).unwrap().uploaded, 10);
    // The limit is per user: Bob (enabled) has his own bucket.
    f.tracker.registry_mut().enable_user(UserId(2)).unwrap();
    let bob = f.bob;
    assert!(
        f.tracker
            .check(&bob, &announce(1, p, None, 0, 0, 5), T0)
            .is_ok()
    );
    // Stopped is exempt.
    let stop = announce(1, p, Some(AnnounceEvent::Stopped), 30, 0, 5);
    assert_eq!(f.alice(stop, T0).unwrap().session, Session::Ended);
    // A minute later, one more token.
    assert!(f.alice(third, T0 + 60).is_ok());
    assert_eq!(
        f.alice(announce(1, p, None, 40, 0, 5), T0 + 60),
        Err(Refusal::RateLimited)
    );
}

#[test]
fn refusals_come_in_order() {
    // Disabled beats client and torrent checks; client beats the torrent check.
    let mut f = fixture(None);
    f.tracker
        .registry_mut()
        .set_allowed_clients(vec![ClientPrefix::parse("-TR").unwrap()]);
    let bob = f.bob;
    let bad = announce(9, peer(b"-UT", 1), None, 0, 0, 1);
    assert!(matches!(
        f.tracker.check(&bob, &bad, T0),
        Err(Refusal::Disabled(_))
    ));
    assert_eq!(f.alice(bad, T0), Err(Refusal::ClientNotAllowed));
}

#[test]
fn registry_refuses_duplicates_and_tracks_passkey_resets() {
    let mut f = fixture(None);
    let reg = f.tracker.registry_mut();
    let dup = User {
        id: UserId(1),
        name: "again".to_owned(),
        passkey: Passkey::parse(&"d".repeat(32)).unwrap(),
        disabled: None,
    };
    assert_eq!(
        reg.add_user(dup.clone()),
        Err(RegistryError::DuplicateUser(UserId(1)))
    );
    let alice_key = reg.user(UserId(1)).unwrap().passkey;
    let same_key = User {
        id: UserId(9),
        passkey: alice_key,
        ..dup
    };
    assert_eq!(reg.add_user(same_key), Err(RegistryError::DuplicatePasskey));
    let t = Torrent {
        id: TorrentId(1),
        info_hash: hash(50),
        freeleech: false,
        upload_multiplier: UploadMultiplier::ONE,
    };
    assert!(matches!(
        reg.add_torrent(t),
        Err(RegistryError::DuplicateTorrent(_))
    ));
    assert_eq!(
        reg.set_freeleech(&hash(50), true),
        Err(RegistryError::UnknownTorrent(hash(50)))
    );
    assert_eq!(
        reg.disable_user(UserId(42), "x"),
        Err(RegistryError::UnknownUser(UserId(42)))
    );
    // Reset: the old passkey stops working, the new one works.
    let new_key = Passkey::parse(&"N".repeat(32)).unwrap();
    let bob_key = reg.user(UserId(2)).unwrap().passkey;
    assert_eq!(
        reg.reset_passkey(UserId(1), bob_key),
        Err(RegistryError::DuplicatePasskey)
    );
    reg.reset_passkey(UserId(1), new_key).unwrap();
    let a = announce(1, peer(b"-qB", 1), None, 0, 0, 1);
    let old = f.alice;
    assert_eq!(f.tracker.check(&old, &a, T0), Err(Refusal::UnknownPasskey));
    assert!(f.tracker.check(&new_key, &a, T0).is_ok());
    // Removing a user or torrent refuses at once.
    let reg = f.tracker.registry_mut();
    assert!(reg.remove_torrent(&hash(1)).is_some());
    assert_eq!(
        f.tracker.check(&new_key, &a, T0),
        Err(Refusal::UnregisteredTorrent)
    );
    assert!(f.tracker.registry_mut().remove_user(UserId(1)).is_some());
    assert_eq!(
        f.tracker.check(&new_key, &a, T0),
        Err(Refusal::UnknownPasskey)
    );
}

#[test]
fn unix_secs_converts_without_reading_the_clock() {
    use std::time::Duration;
    assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(1999)), 1);
    assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), 0);
}

#[test]
fn config_follows_the_interval() {
    let c = PrivateConfig::for_interval(900);
    assert_eq!(c.max_seeding_gap_secs, 1800);
    assert_eq!(c.peer_ttl_secs, 1860);
    assert_eq!(c.rate_limit, Some(RateLimit::default()));
    assert_eq!(PrivateConfig::default(), PrivateConfig::for_interval(1980));
}

#[test]
fn reload_keeps_rate_buckets_and_takes_registry_changes() {
    let limit = RateLimit {
        burst: 1,
        per_minute: 1,
    };
    let mut f = fixture(Some(limit));
    let a = announce(1, peer(b"-qB", 1), None, 0, 0, 10);
    f.alice(a, T0).unwrap();
    assert_eq!(f.alice(a, T0), Err(Refusal::RateLimited));
    // A fresh copy of the registry (as from the database), with torrent 4 added.
    let mut fresh = f.tracker.registry().clone();
    fresh
        .add_torrent(Torrent {
            id: TorrentId(4),
            info_hash: hash(4),
            freeleech: false,
            upload_multiplier: UploadMultiplier::ONE,
        })
        .unwrap();
    let mut fresh_without_buckets = Registry::new();
    for user in fresh.users() {
        fresh_without_buckets.add_user(user.clone()).unwrap();
    }
    for torrent in fresh.torrents() {
        fresh_without_buckets.add_torrent(*torrent).unwrap();
    }
    f.tracker.reload(fresh_without_buckets);
    assert_eq!(f.alice(a, T0), Err(Refusal::RateLimited), "bucket kept");
    let four = announce(4, peer(b"-qB", 1), None, 0, 0, 10);
    assert!(f.alice(four, T0 + 60).is_ok(), "torrent 4 now registered");
}
