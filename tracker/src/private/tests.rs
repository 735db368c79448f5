//! Unit tests of private mode: every refusal, every crediting rule, the flush seams.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::tracker::AnnounceEvent;
use rill_common::{InfoHash, PeerId};

use super::*;

const T0: u64 = 1_700_000_000;
const GAP: u64 = 3600;

struct Fixture {
    tracker: PrivateTracker,
    alice: Passkey,
    bob: Passkey,
}

fn hash(n: u8) -> InfoHash {
    InfoHash::from_bytes([n; 20])
}

fn peer(prefix: &[u8], n: u8) -> PeerId {
    let mut id = [n; 20];
    id[..prefix.len()].copy_from_slice(prefix);
    PeerId::from_bytes(id)
}

/// Alice (1) and Bob (2, disabled); torrent 1 normal, 2 freeleech, 3 at 150 %.
fn fixture(rate_limit: Option<RateLimit>) -> Fixture {
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

fn announce(
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

fn credit(up: u64, down: u64, snatches: u32, seeding: u64) -> Delta {
    Delta {
        uploaded: up,
        downloaded: down,
        snatches,
        seeding_secs: seeding,
    }
}

impl Fixture {
    fn alice(&mut self, a: PrivateAnnounce, now: u64) -> Result<Admitted, Refusal> {
        let key = self.alice;
        self.tracker.check(&key, &a, now)
    }

    fn credited(&mut self, a: PrivateAnnounce, now: u64) -> Delta {
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
fn first_announce_only_sets_the_baseline() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    let first = f
        .alice(
            announce(1, p, Some(AnnounceEvent::Started), 5000, 7000, 10),
            T0,
        )
        .unwrap();
    assert_eq!(first.session, Session::New);
    assert_eq!(first.credited, Delta::default());
    assert!(f.tracker.take_pending().credits.is_empty());
}

#[test]
fn deltas_are_credited() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(
        announce(1, p, Some(AnnounceEvent::Started), 100, 200, 10),
        T0,
    );
    let d = f.credited(announce(1, p, None, 150, 260, 10), T0 + 60);
    assert_eq!(d, credit(50, 60, 0, 0));
    // A duplicate announce credits nothing.
    let d = f.credited(announce(1, p, None, 150, 260, 10), T0 + 60);
    assert_eq!(d, Delta::default());
    let batch = f.tracker.take_pending();
    assert_eq!(batch.credits.len(), 1);
    assert_eq!(batch.credits[0].delta, credit(50, 60, 0, 0));
}

#[test]
fn a_counter_going_down_rebaselines_and_credits_nothing() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(announce(1, p, None, 1000, 1000, 10), T0);
    // The client restarted: uploaded went down, downloaded happens to have grown.
    let admitted = f
        .alice(announce(1, p, None, 10, 5000, 10), T0 + 60)
        .unwrap();
    assert_eq!(admitted.session, Session::Rebaselined);
    assert_eq!(admitted.credited, Delta::default());
    // Credited from the new baseline afterwards.
    let d = f.credited(announce(1, p, None, 30, 5100, 10), T0 + 120);
    assert_eq!(d, credit(20, 100, 0, 0));
}

#[test]
fn freeleech_credits_no_download() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(announce(2, p, None, 0, 0, 10), T0);
    let d = f.credited(announce(2, p, None, 300, 900, 10), T0 + 60);
    assert_eq!(d, credit(300, 0, 0, 0));
}

#[test]
fn upload_multiplier_is_exact_over_a_session() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(announce(3, p, None, 0, 0, 10), T0);
    // 1.5 x 1 = 1.5: 1 credited, half a byte carried.
    assert_eq!(
        f.credited(announce(3, p, None, 1, 0, 10), T0 + 1).uploaded,
        1
    );
    // 1.5 x 1 + 0.5 = 2.
    assert_eq!(
        f.credited(announce(3, p, None, 2, 0, 10), T0 + 2).uploaded,
        2
    );
    assert_eq!(
        f.credited(announce(3, p, None, 3, 0, 10), T0 + 3).uploaded,
        1
    );
    // Total: floor(3 x 1.5) = 4.
    assert_eq!(f.tracker.take_pending().credits[0].delta.uploaded, 4);
    // Multiplier changes apply from the next announce; 0 credits nothing.
    f.tracker
        .registry_mut()
        .set_upload_multiplier(&hash(3), UploadMultiplier(0))
        .unwrap();
    assert_eq!(
        f.credited(announce(3, p, None, 1000, 0, 10), T0 + 4)
            .uploaded,
        0
    );
}

#[test]
fn huge_counters_do_not_overflow() {
    let mut f = fixture(None);
    f.tracker
        .registry_mut()
        .set_upload_multiplier(&hash(1), UploadMultiplier(u32::MAX))
        .unwrap();
    let p = peer(b"-qB", 1);
    f.credited(announce(1, p, None, 0, 0, 10), T0);
    let d = f.credited(announce(1, p, None, u64::MAX, u64::MAX, 10), T0 + 1);
    assert_eq!(d.uploaded, u64::MAX, "saturates");
    assert_eq!(d.downloaded, u64::MAX);
    f.credited(announce(1, peer(b"-TR", 2), None, 0, 0, 10), T0);
    f.credited(announce(1, peer(b"-TR", 2), None, 0, 5, 10), T0 + 1);
    let batch = f.tracker.take_pending();
    assert_eq!(
        batch.credits[0].delta.downloaded,
        u64::MAX,
        "merge saturates"
    );
}

#[test]
fn completed_counts_one_snatch_per_peer() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(announce(1, p, Some(AnnounceEvent::Started), 0, 0, 10), T0);
    let done = announce(1, p, Some(AnnounceEvent::Completed), 0, 10, 0);
    assert_eq!(f.credited(done, T0 + 10).snatches, 1);
    assert_eq!(f.credited(done, T0 + 20).snatches, 0, "duplicate");
    // `completed` while still leeching is not a snatch.
    let q = peer(b"-TR", 2);
    f.credited(announce(1, q, None, 0, 0, 10), T0);
    let early = announce(1, q, Some(AnnounceEvent::Completed), 0, 5, 5);
    assert_eq!(f.credited(early, T0 + 10).snatches, 0);
    // Another client of the same user counts its own.
    let done_q = announce(1, q, Some(AnnounceEvent::Completed), 0, 10, 0);
    assert_eq!(f.credited(done_q, T0 + 20).snatches, 1);
    let batch = f.tracker.take_pending();
    assert_eq!(batch.credits[0].delta.snatches, 2);
}

#[test]
fn seeding_time_between_seeder_announces_capped_at_the_gap() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    // A leecher's time is not seeding time.
    f.credited(announce(1, p, None, 0, 0, 10), T0);
    assert_eq!(
        f.credited(announce(1, p, None, 0, 10, 0), T0 + 100)
            .seeding_secs,
        0
    );
    // From a seeder announce on, the time between announces counts.
    assert_eq!(
        f.credited(announce(1, p, None, 0, 10, 0), T0 + 1900)
            .seeding_secs,
        1800
    );
    // A peer that vanished gets at most the gap.
    let later = T0 + 1900 + 10 * GAP;
    assert_eq!(
        f.credited(announce(1, p, None, 0, 10, 0), later)
            .seeding_secs,
        GAP
    );
    // A stopped seeder gets the time up to its stop.
    let stop = announce(1, p, Some(AnnounceEvent::Stopped), 0, 10, 0);
    assert_eq!(f.credited(stop, later + 60).seeding_secs, 60);
    let batch = f.tracker.take_pending();
    assert_eq!(batch.credits[0].delta.seeding_secs, 1800 + GAP + 60);
    assert_eq!(batch.credits[0].seeded_until, later + 60);
}

#[test]
fn seeding_time_is_not_credited_twice_for_two_clients_or_across_a_restart() {
    let mut f = fixture(None);
    let (p, q) = (peer(b"-qB", 1), peer(b"-TR", 2));
    f.credited(announce(1, p, None, 0, 0, 0), T0);
    f.credited(announce(1, q, None, 0, 0, 0), T0 + 30);
    assert_eq!(
        f.credited(announce(1, p, None, 0, 0, 0), T0 + 600)
            .seeding_secs,
        600
    );
    // q's interval [30, 630] overlaps p's [0, 600]: only the last 30 s are new.
    assert_eq!(
        f.credited(announce(1, q, None, 0, 0, 0), T0 + 630)
            .seeding_secs,
        30
    );
    // A restart (counter down) credits no seeding time.
    f.credited(announce(1, p, None, 100, 0, 0), T0 + 700);
    let restarted = f.alice(announce(1, p, None, 0, 0, 0), T0 + 1300).unwrap();
    assert_eq!(restarted.session, Session::Rebaselined);
    assert_eq!(restarted.credited.seeding_secs, 0);
}

#[test]
fn stopped_credits_the_final_delta_and_ends_the_session() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(announce(1, p, None, 0, 0, 10), T0);
    let stop = announce(1, p, Some(AnnounceEvent::Stopped), 70, 80, 10);
    let admitted = f.alice(stop, T0 + 60).unwrap();
    assert_eq!(admitted.session, Session::Ended);
    assert_eq!(admitted.credited, credit(70, 80, 0, 0));
    assert_eq!(f.tracker.ledger().peer_count(), 0);
    // A repeated stopped is an unknown peer's: answered, nothing credited.
    let again = f.alice(stop, T0 + 61).unwrap();
    assert_eq!(again.session, Session::UnknownStop);
    assert_eq!(again.torrent, Some(TorrentId(1)));
    // The next start is a new peer: its counters are a baseline.
    let restart = f
        .alice(
            announce(1, p, Some(AnnounceEvent::Started), 70, 80, 10),
            T0 + 62,
        )
        .unwrap();
    assert_eq!(restart.session, Session::New);
    assert_eq!(restart.credited, Delta::default());
}

#[test]
fn unknown_peers_stopped_creates_nothing() {
    // Transmission sends `stopped` first at start-up.
    let mut f = fixture(None);
    let stop = announce(1, peer(b"-TR", 1), Some(AnnounceEvent::Stopped), 5, 5, 0);
    let admitted = f.alice(stop, T0).unwrap();
    assert_eq!(admitted.session, Session::UnknownStop);
    assert_eq!(admitted.credited, Delta::default());
    assert_eq!(f.tracker.ledger().peer_count(), 0);
    assert!(f.tracker.take_pending().is_empty());
}

#[test]
fn purge_drops_quiet_baselines_and_credits_nothing() {
    let mut f = fixture(None);
    let (p, q) = (peer(b"-qB", 1), peer(b"-TR", 2));
    f.credited(announce(1, p, None, 0, 0, 10), T0);
    f.credited(announce(1, q, None, 0, 0, 10), T0 + 1000);
    let ttl = f.tracker.config().peer_ttl_secs;
    assert_eq!(f.tracker.purge(T0 + ttl), 0, "exactly the ttl is kept");
    assert_eq!(f.tracker.purge(T0 + ttl + 1), 1);
    assert_eq!(f.tracker.ledger().peer_count(), 1);
    let batch = f.tracker.take_pending();
    assert!(batch.credits.is_empty());
    let key = PeerKey {
        user: UserId(1),
        torrent: TorrentId(1),
        peer_id: p,
    };
    assert!(batch.peers.contains(&PeerChange::Remove(key)));
    // The purged peer comes back as new.
    let back = f
        .alice(announce(1, p, None, 500, 500, 10), T0 + ttl + 2)
        .unwrap();
    assert_eq!(back.session, Session::New);
}

#[test]
fn take_pending_merges_per_user_and_torrent_sorted() {
    let mut f = fixture(None);
    f.tracker.registry_mut().enable_user(UserId(2)).unwrap();
    let bob = f.bob;
    for (torrent, n) in [(3, 1), (1, 2), (1, 3)] {
        let p = peer(b"-qB", n);
        f.credited(announce(torrent, p, None, 0, 0, 10), T0);
        f.credited(announce(torrent, p, None, 10, 10, 10), T0 + 1);
        let b = announce(torrent, p, None, 0, 0, 10);
        f.tracker.check(&bob, &b, T0).unwrap();
        let b = announce(torrent, p, None, 1, 1, 10);
        f.tracker.check(&bob, &b, T0 + 1).unwrap();
    }
    let batch = f.tracker.take_pending();
    let keys: Vec<(u64, u64)> = batch
        .credits
        .iter()
        .map(|c| (c.user.0, c.torrent.0))
        .collect();
    assert_eq!(keys, [(1, 1), (1, 3), (2, 1), (2, 3)]);
    assert_eq!(batch.credits[0].delta, credit(20, 20, 0, 0));
    assert_eq!(batch.credits[1].delta, credit(15, 10, 0, 0));
    // Six baselines changed, sorted by key.
    assert_eq!(batch.peers.len(), 6);
    let peer_keys: Vec<PeerKey> = batch
        .peers
        .iter()
        .map(|c| match c {
            PeerChange::Upsert(r) => r.key,
            PeerChange::Remove(k) => *k,
        })
        .collect();
    assert!(peer_keys.is_sorted());
    assert!(f.tracker.take_pending().is_empty(), "taken once");
}

#[test]
fn restore_pending_retries_a_failed_batch_merged_with_new_credit() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(announce(1, p, None, 0, 0, 0), T0);
    f.credited(announce(1, p, None, 10, 20, 0), T0 + 100);
    let failed = f.tracker.take_pending();
    assert_eq!(failed.credits[0].delta, credit(10, 20, 0, 100));
    // More credit arrives while the write fails.
    f.credited(announce(1, p, None, 15, 20, 0), T0 + 200);
    f.tracker.restore_pending(failed);
    let retry = f.tracker.take_pending();
    assert_eq!(retry.credits.len(), 1);
    assert_eq!(retry.credits[0].delta, credit(15, 20, 0, 200));
    assert_eq!(retry.credits[0].seeded_until, T0 + 200);
    // The baseline is re-sent as it is now.
    let key = PeerKey {
        user: UserId(1),
        torrent: TorrentId(1),
        peer_id: p,
    };
    let current = *f.tracker.ledger().peer(&key).unwrap();
    assert_eq!(retry.peers, vec![PeerChange::Upsert(current)]);
}

#[test]
fn snapshot_and_restore_keep_baselines_across_a_restart() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(announce(3, p, None, 0, 0, 0), T0);
    f.credited(announce(3, p, None, 1, 100, 0), T0 + 100);
    let saved = f.tracker.snapshot();
    assert_eq!(saved.peers.len(), 1);
    assert_eq!(saved.peers[0].carry, 50);
    assert_eq!(
        saved.seeded_until,
        vec![(UserId(1), TorrentId(3), T0 + 100)]
    );
    // A new process: same registry, restored baselines.
    let mut g = fixture(None);
    g.tracker.restore(saved.clone());
    assert_eq!(g.tracker.snapshot(), saved);
    assert!(
        g.tracker.take_pending().is_empty(),
        "restoring is not a change"
    );
    // The next announce is credited from the saved baseline, carry included.
    let d = g.credited(announce(3, p, None, 2, 150, 0), T0 + 160);
    assert_eq!(d, credit(2, 50, 0, 60));
    // Without the snapshot it would have been a new peer, credited nothing.
    let h = f.credited(announce(3, peer(b"-TR", 9), None, 2, 150, 0), T0 + 160);
    assert_eq!(h, Delta::default());
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
fn a_clock_stepping_back_credits_no_time_and_never_panics() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(announce(1, p, None, 0, 0, 0), T0);
    assert_eq!(
        f.credited(announce(1, p, None, 5, 0, 0), T0 - 500)
            .seeding_secs,
        0
    );
    let key = PeerKey {
        user: UserId(1),
        torrent: TorrentId(1),
        peer_id: p,
    };
    assert_eq!(
        f.tracker.ledger().peer(&key).unwrap().last_seen,
        T0,
        "kept the later time"
    );
    assert_eq!(
        f.credited(announce(1, p, None, 5, 0, 0), T0 + 10)
            .seeding_secs,
        10
    );
}

#[test]
fn a_peer_starting_as_a_completed_seeder_counts_its_snatch_once() {
    // A client whose `started` was lost (or a tracker without its snapshot) still counts.
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    let done = announce(1, p, Some(AnnounceEvent::Completed), 0, 100, 0);
    let first = f.alice(done, T0).unwrap();
    assert_eq!((first.session, first.credited.snatches), (Session::New, 1));
    assert_eq!(f.credited(done, T0 + 1).snatches, 0);
}
