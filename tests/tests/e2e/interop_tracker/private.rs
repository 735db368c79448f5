//! Private mode with real clients: libtorrent and Transmission announce to rill-tracker
//! with passkey URLs (`/announce/<passkey>`, and BEP 41 `udp://…/announce/<passkey>`), find
//! each other, transfer the payload byte for byte, and the per-user upload and download
//! credited in the database match the transfer.
//!
//! Each peer belongs to its own user (alice seeds, bob leeches), so the credits are told
//! apart. The seed's upload reaches the tracker only with its `stopped` announce (libtorrent
//! sends it when the driver closes; its next regular announce would be 30 minutes later),
//! so the seed is stopped before the credits are read.
//!
//! Measured (libtorrent 2.0.8): libtorrent sends the BEP 41 URL data of a `udp://` tracker
//! URL (the path and query) with every announce, so a UDP passkey URL works; without it the
//! tracker refuses with "this tracker is private" and the leecher would never get the seed.

use std::time::Duration;

use rill_common::InfoHash;
use rill_tests::tracker::TestDb;
use rill_tests::{
    LibtorrentOptions, LibtorrentPeer, TestTracker, TransmissionOptions, TransmissionPeer,
    http_scrape, require_tool,
};

use super::{ANNOUNCE_SEEN, FILES, LIBTORRENT_DOWNLOAD, TRANSMISSION_DOWNLOAD, payload};

/// The payload's size in bytes.
fn payload_size() -> u64 {
    FILES.iter().map(|(_, len)| *len as u64).sum()
}

/// A private tracker whose database has alice and bob; the torrent is registered once the
/// payload exists ([`register`]).
fn private_tracker() -> (TestDb, TestTracker) {
    let db = TestDb::new();
    db.add_user("alice");
    db.add_user("bob");
    let tracker = TestTracker::start(db.config());
    (db, tracker)
}

/// `http://…/<passkey>/announce`: the passkey URL form from which BEP 48's convention derives
/// a scrape URL (`/<passkey>/scrape`).
fn scrapeable(tracker: &TestTracker, passkey: &rill_tracker::private::Passkey) -> String {
    format!("{}/{}/announce", tracker.http_url, passkey.as_str())
}

fn register(db: &TestDb, tracker: &TestTracker, info_hash: InfoHash) {
    db.add_torrent(info_hash, false);
    tracker.sync();
}

/// Asserts that `credited` is the payload, give or take what a client re-sends or counts
/// twice (a block requested from two peers near the end, say): from 100 % to 110 %.
fn assert_about_the_payload(what: &str, credited: u64) {
    let size = payload_size();
    assert!(
        credited >= size && credited <= size + size / 10,
        "{what}: credited {credited} bytes for a {size}-byte payload"
    );
}

/// libtorrent seed (alice) and libtorrent leecher (bob), announcing to `url_of(tracker,
/// passkey)`.
fn libtorrent_pair(url_of: impl Fn(&TestTracker, &rill_tracker::private::Passkey) -> String) {
    if !require_tool("libtorrent") {
        return;
    }
    let (db, tracker) = private_tracker();
    let (alice, bob) = (TestDb::passkey_of("alice"), TestDb::passkey_of("bob"));
    let tmp = tempfile::tempdir().unwrap();
    let payload = payload(tmp.path(), &tracker.private_announce_url(&alice));
    register(&db, &tracker, payload.info_hash());

    let seed_url = url_of(&tracker, &alice);
    let mut seed = LibtorrentPeer::seed(
        &payload.torrent,
        &payload.seed_dir,
        LibtorrentOptions::default().tracker(seed_url.clone()),
    )
    .unwrap();
    let seen = seed
        .wait_event("tracker_reply", ANNOUNCE_SEEN, |event| {
            Ok(event["peers"].as_u64())
        })
        .unwrap();
    assert_eq!(seen, 0, "the seed is alone at first ({seed_url})");

    let leech_dir = tmp.path().join("leech");
    let mut leech = LibtorrentPeer::leech(
        &payload.torrent,
        &leech_dir,
        LibtorrentOptions::default().tracker(url_of(&tracker, &bob)),
    )
    .unwrap();
    let peers = leech
        .wait_event("tracker_reply", ANNOUNCE_SEEN, |event| {
            Ok(event["peers"].as_u64())
        })
        .unwrap();
    assert_eq!(peers, 1, "{seed_url}: the leecher is given the seed");
    leech.wait_finished(LIBTORRENT_DOWNLOAD).unwrap();
    payload.assert_copied_eventually(&leech_dir, &FILES);

    // Both stop, announcing `stopped` with their final counters.
    assert!(leech.stop().unwrap().success());
    assert!(seed.stop().unwrap().success());
    tracker.sync();
    let (alice_stats, bob_stats) = (db.stats("alice"), db.stats("bob"));
    assert_about_the_payload("alice's upload", alice_stats.uploaded);
    assert_about_the_payload("bob's download", bob_stats.downloaded);
    assert_eq!(bob_stats.snatches, 1, "{bob_stats:?}");
    assert_eq!(alice_stats.downloaded, 0, "{alice_stats:?}");
    // A scrape through the passkey's scrape URL sees the torrent; both peers have left.
    let scrape = http_scrape(&scrapeable(&tracker, &alice), &[payload.info_hash()]).unwrap();
    let stats = scrape
        .files
        .get(&payload.info_hash())
        .cloned()
        .unwrap_or_default();
    assert_eq!(stats.downloaded, 1, "{stats:?}");
}

#[test]
fn libtorrent_pair_with_passkeys_over_http_is_credited() {
    libtorrent_pair(TestTracker::private_announce_url);
}

#[test]
fn libtorrent_pair_with_passkeys_over_udp_bep41_is_credited() {
    libtorrent_pair(TestTracker::private_udp_announce_url);
}

/// A Transmission leecher (bob, the torrent's own passkey URL) and a libtorrent seed
/// (alice) that dials it from the tracker's reply.
#[test]
fn transmission_leecher_and_libtorrent_seed_with_passkeys_are_credited() {
    if !require_tool("libtorrent") || !require_tool("transmission-cli") {
        return;
    }
    let (db, tracker) = private_tracker();
    let (alice, bob) = (TestDb::passkey_of("alice"), TestDb::passkey_of("bob"));
    let tmp = tempfile::tempdir().unwrap();
    let payload = payload(tmp.path(), &tracker.private_announce_url(&bob));
    register(&db, &tracker, payload.info_hash());

    let leech_dir = tmp.path().join("leech");
    let mut leech =
        TransmissionPeer::leech(&payload.torrent, &leech_dir, TransmissionOptions::default())
            .unwrap();
    let deadline = std::time::Instant::now() + ANNOUNCE_SEEN;
    loop {
        let scrape = http_scrape(&scrapeable(&tracker, &bob), &[payload.info_hash()]);
        let stats = scrape.unwrap().files.get(&payload.info_hash()).cloned();
        if stats.is_some_and(|s| s.incomplete == 1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Transmission never announced with its passkey"
        );
        // The wait is for another process's announce.
        std::thread::park_timeout(Duration::from_millis(100));
    }

    let seed = LibtorrentPeer::seed(
        &payload.torrent,
        &payload.seed_dir,
        LibtorrentOptions::default().tracker(tracker.private_announce_url(&alice)),
    )
    .unwrap();
    leech.wait_finished(TRANSMISSION_DOWNLOAD).unwrap();
    payload.assert_copied_eventually(&leech_dir, &FILES);
    // Transmission's `completed` announce carries its download; wait for it, bounded.
    let deadline = std::time::Instant::now() + ANNOUNCE_SEEN;
    loop {
        tracker.sync();
        if db.stats("bob").snatches == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Transmission's completed announce was not credited: {:?}",
            db.stats("bob")
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
    assert_about_the_payload("bob's download", db.stats("bob").downloaded);
    assert!(seed.stop().unwrap().success());
    tracker.sync();
    assert_about_the_payload("alice's upload", db.stats("alice").uploaded);
    drop(leech);
}
