//! Unit tests of the accounting: deltas, re-baselines, freeleech, multipliers, snatches,
//! seeding time, stopped, purge, and the persistence seams (batches, snapshots).

use rill_common::tracker::AnnounceEvent;

use super::*;

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

/// A baseline that ends (`stopped`) and starts again before the next batch: the batch
/// carries each credit once, merged per (user, torrent), and the one live baseline as an
/// upsert (not a removal).
#[test]
fn stop_and_restart_within_one_batch_is_credited_once() {
    let mut f = fixture(None);
    let p = peer(b"-qB", 1);
    f.credited(announce(1, p, None, 0, 0, 10), T0);
    f.credited(announce(1, p, None, 10, 20, 10), T0 + 60);
    let d = f.credited(
        announce(1, p, Some(AnnounceEvent::Stopped), 15, 30, 10),
        T0 + 120,
    );
    assert_eq!(d, credit(5, 10, 0, 0));
    f.credited(
        announce(1, p, Some(AnnounceEvent::Started), 0, 0, 10),
        T0 + 180,
    );
    let d = f.credited(announce(1, p, None, 7, 1, 10), T0 + 240);
    assert_eq!(d, credit(7, 1, 0, 0));
    // Two credit entries (the ended baseline's, the live one's) merge into one row.
    assert_eq!(f.tracker.backlog(), (2, 1));
    let batch = f.tracker.take_pending();
    assert_eq!(batch.credits.len(), 1);
    assert_eq!(batch.credits[0].delta, credit(22, 31, 0, 0));
    let key = PeerKey {
        user: UserId(1),
        torrent: TorrentId(1),
        peer_id: p,
    };
    let live = *f.tracker.ledger().peer(&key).unwrap();
    assert_eq!(batch.peers, vec![PeerChange::Upsert(live)]);
    assert!(f.tracker.take_pending().is_empty());
    // Stopped for good: a removal, and its final credit.
    f.credited(
        announce(1, p, Some(AnnounceEvent::Stopped), 9, 1, 10),
        T0 + 300,
    );
    assert_eq!(f.tracker.backlog(), (1, 1));
    let batch = f.tracker.take_pending();
    assert_eq!(batch.credits[0].delta, credit(2, 0, 0, 0));
    assert_eq!(batch.peers, vec![PeerChange::Remove(key)]);
}
