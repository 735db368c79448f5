//! rill against real clients on loopback, on a multi-file torrent made by `rill create`,
//! every file compared byte for byte:
//! - rill downloads from a libtorrent seed and from a Transmission seed (`--peer`);
//! - libtorrent and Transmission each download from a rill seed;
//! - a mixed swarm through rill-tracker: one rill seed; rill, libtorrent and Transmission
//!   leeching at once.
//!
//! Transmission 3.00 never dials 127.x peers it learns from a tracker, so rill dials it
//! (`--peer`, or from the tracker's reply). Missing tools skip locally and fail with CI set
//! ([`require_tool`]). Every wait is bounded.

use std::time::Duration;

use rill_tests::{
    LibtorrentOptions, LibtorrentPeer, RillOptions, RillPeer, TestTracker, TransmissionOptions,
    TransmissionPeer, require_tool,
};
use rill_tracker::Config;

use crate::client::{DOWNLOAD, FILES, Payload};

/// Bound on a download involving Transmission (it rechokes every 10 s).
const TRANSMISSION_DOWNLOAD: Duration = Duration::from_secs(120);

/// The test files but the empty one: Transmission 3.00 does not create empty files.
fn non_empty() -> Vec<(&'static str, usize)> {
    FILES.into_iter().filter(|(_, len)| *len > 0).collect()
}

#[test]
fn rill_downloads_from_a_libtorrent_seed() {
    if !require_tool("libtorrent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = payload.libtorrent_seed(LibtorrentOptions::default());
    let out = dir.path().join("rill");
    let options = RillOptions::default().peer(seed.addr());
    payload.assert_rill_downloads(&payload.torrent, &out, options, DOWNLOAD);
}

#[test]
fn rill_downloads_from_a_transmission_seed() {
    if !require_tool("transmission-cli") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = TransmissionPeer::seed(
        &payload.torrent,
        &payload.seed_dir,
        TransmissionOptions::default(),
    )
    .unwrap();
    let out = dir.path().join("rill");
    let options = RillOptions::default().peer(seed.addr());
    payload.assert_rill_downloads(&payload.torrent, &out, options, TRANSMISSION_DOWNLOAD);
}

#[test]
fn libtorrent_downloads_from_a_rill_seed() {
    if !require_tool("libtorrent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let out = dir.path().join("libtorrent");
    let options = LibtorrentOptions::default().peer(seed.addr());
    let mut leech = LibtorrentPeer::leech(&payload.torrent, &out, options).unwrap();
    leech.wait_finished(DOWNLOAD).unwrap();
    payload.assert_copied_eventually(&out, &FILES);
    leech.stop().unwrap();
    let mut seed = seed;
    let last = seed
        .wait_json(DOWNLOAD, |line| line["uploaded"].as_u64() > Some(0))
        .unwrap();
    assert!(last["uploaded"].as_u64() >= Some(3_000_000), "{last}");
}

#[test]
fn transmission_downloads_from_a_rill_seed() {
    if !require_tool("transmission-cli") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let out = dir.path().join("transmission");
    std::fs::create_dir_all(&out).unwrap();
    let mut leech =
        TransmissionPeer::leech(&payload.torrent, &out, TransmissionOptions::default()).unwrap();
    let options = RillOptions::default().peer(leech.addr());
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, options).unwrap();
    leech.wait_finished(TRANSMISSION_DOWNLOAD).unwrap();
    payload.assert_copied_eventually(&out, &non_empty());
    drop(seed);
}

#[test]
fn mixed_swarm_rill_seed_with_rill_libtorrent_and_transmission_leeching() {
    if !require_tool("libtorrent") || !require_tool("transmission-cli") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tracker = TestTracker::start(Config::default());
    let payload = Payload::new(dir.path(), Some(&tracker.announce_url()));
    // Transmission first: nobody learns of it but through rill dialling it.
    let transmission_out = dir.path().join("transmission");
    std::fs::create_dir_all(&transmission_out).unwrap();
    let mut transmission = TransmissionPeer::leech(
        &payload.torrent,
        &transmission_out,
        TransmissionOptions::default(),
    )
    .unwrap();
    let seed_options = RillOptions::default().peer(transmission.addr());
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, seed_options).unwrap();
    let rill_out = dir.path().join("rill");
    let leech_options = RillOptions::default().peer(transmission.addr());
    let mut rill = RillPeer::download(&[&payload.torrent], &rill_out, leech_options).unwrap();
    let libtorrent_out = dir.path().join("libtorrent");
    let lt_options = LibtorrentOptions::default()
        .tracker(tracker.announce_url())
        .peer(seed.addr());
    let mut libtorrent =
        LibtorrentPeer::leech(&payload.torrent, &libtorrent_out, lt_options).unwrap();

    let last = rill.wait_final(TRANSMISSION_DOWNLOAD).unwrap();
    assert_eq!(last["have"], last["pieces"], "{last}");
    libtorrent.wait_finished(TRANSMISSION_DOWNLOAD).unwrap();
    transmission.wait_finished(TRANSMISSION_DOWNLOAD).unwrap();
    payload.assert_copied(&rill_out, &FILES);
    payload.assert_copied_eventually(&libtorrent_out, &FILES);
    payload.assert_copied_eventually(&transmission_out, &non_empty());
    drop(seed);
}

#[test]
fn rill_finds_a_libtorrent_seed_through_rill_tracker_over_udp() {
    if !require_tool("libtorrent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tracker = TestTracker::start(Config::default());
    let url = tracker.udp_announce_url();
    let payload = Payload::new(dir.path(), Some(&url));
    let options = LibtorrentOptions::default().tracker(url);
    let mut seed = LibtorrentPeer::seed(&payload.torrent, &payload.seed_dir, options).unwrap();
    // The seed must be on the tracker before rill asks it for peers (its reply may have come
    // while it verified its data).
    let announced = seed
        .events()
        .iter()
        .any(|event| event["event"] == "tracker_reply");
    if !announced {
        seed.wait_event("tracker_reply", DOWNLOAD, |_| Ok(Some(())))
            .unwrap();
    }
    let out = dir.path().join("rill");
    payload.assert_rill_downloads(&payload.torrent, &out, RillOptions::default(), DOWNLOAD);
}
