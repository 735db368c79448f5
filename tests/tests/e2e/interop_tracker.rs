//! libtorrent and Transmission announce to rill-tracker, find each other and transfer.
//!
//! Each test starts rill-tracker in process ([`TestTracker`], public mode, HTTP and UDP on
//! 127.0.0.1 port 0), makes a multi-file torrent of ~3 MiB of seeded pseudo-random data with
//! `rill create` (announce URL = the tracker's), and runs real peers, each on its own
//! 127.0.0.x address ([`rill_tests::loopback_address`]), which learn of each other only
//! through the tracker. The downloaded files are compared byte for byte, and a scrape of the
//! tracker must show the completed download and both peers as seeders.
//!
//! - libtorrent seed + libtorrent leecher, over HTTP and over UDP (BEP 15); the tracker hands
//!   out each at the address it listens on, and forgets a peer that announces `stopped`.
//! - Transmission seed + libtorrent leecher, over HTTP and over UDP.
//! - libtorrent seed + Transmission leecher, over HTTP.
//!
//! - `private`: the same clients with passkey URLs in private mode, credited in the database.
//!
//! Transmission 3.00 drops 127.x peers from tracker replies, so with Transmission the
//! libtorrent peer always announces second and dials Transmission from the reply; the tests
//! wait (scraping) until the tracker has seen Transmission before starting libtorrent.

use std::path::Path;
use std::time::{Duration, Instant};

use std::collections::BTreeSet;
use std::net::SocketAddr;

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::{AnnounceRequest, AnnounceResponse, ScrapeStats};
use rill_common::{InfoHash, PeerId};
use rill_tests::{
    LibtorrentOptions, LibtorrentPeer, TestTracker, TransmissionOptions, TransmissionPeer,
    http_get, http_scrape, require_tool,
};
use rill_tracker::Config;

use crate::client::Payload;

mod private;

/// Bound on a whole libtorrent-to-libtorrent download of the test payload.
const LIBTORRENT_DOWNLOAD: Duration = Duration::from_secs(60);
/// Bound on a download involving Transmission (it rechokes every 10 s).
const TRANSMISSION_DOWNLOAD: Duration = Duration::from_secs(90);
/// Bound on the tracker seeing an announce a peer is about to send.
const ANNOUNCE_SEEN: Duration = Duration::from_secs(30);

/// The files of the test torrent, relative to the torrent's folder, with sizes that do not
/// fall on piece boundaries.
const FILES: [(&str, usize); 4] = [
    ("a.bin", 1_500_000),
    ("sub/b.bin", 700_001),
    ("sub/deeper/c.bin", 1_048_576),
    ("z.txt", 17),
];

/// The test payload of [`FILES`], its torrent announcing to `announce_url`.
fn payload(root: &Path, announce_url: &str) -> Payload {
    Payload::with_files(root, Some(announce_url), &FILES)
}

/// Scrapes `info_hash` from `tracker` over HTTP until `done` holds (bounded by `timeout`),
/// returning the last counters. Panics with them on timeout.
fn wait_for_scrape(
    tracker: &TestTracker,
    info_hash: InfoHash,
    timeout: Duration,
    what: &str,
    done: impl Fn(&ScrapeStats) -> bool,
) -> ScrapeStats {
    let deadline = Instant::now() + timeout;
    loop {
        let reply = http_scrape(&tracker.announce_url(), &[info_hash]).unwrap();
        let stats = reply.files.get(&info_hash).cloned().unwrap_or_default();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; last scrape: {stats:?}"
        );
        // The tracker answers at once; the wait is for another process's next announce.
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// After a download: the leecher's `completed` announce reached the tracker, which now counts
/// one download and two seeders, no leecher.
fn assert_completed_in_scrape(tracker: &TestTracker, info_hash: InfoHash) {
    let stats = wait_for_scrape(
        tracker,
        info_hash,
        ANNOUNCE_SEEN,
        "the completed announce",
        |stats| stats.downloaded >= 1 && stats.complete >= 2,
    );
    assert_eq!(stats.downloaded, 1, "{stats:?}");
    assert_eq!(stats.complete, 2, "{stats:?}");
    assert_eq!(stats.incomplete, 0, "{stats:?}");
}

/// The peers the tracker hands a newcomer (a leecher that announces once, then `stopped`,
/// so that it leaves the swarm's counters as they were).
fn swarm_seen_by_a_newcomer(tracker: &TestTracker, info_hash: InfoHash) -> BTreeSet<SocketAddr> {
    let peer_id = PeerId::from_bytes(*b"-XX0000-observer0000");
    let mut request = AnnounceRequest::new(info_hash, peer_id, 1);
    request.left = 1;
    request.numwant = Some(50);
    let (status, body) = http_get(&request.announce_url(&tracker.announce_url())).unwrap();
    assert_eq!(status, 200);
    let AnnounceResponse::Success(reply) = AnnounceResponse::from_bytes(&body).unwrap() else {
        panic!("announce refused: {}", String::from_utf8_lossy(&body));
    };
    request.event = Some(AnnounceEvent::Stopped);
    let (status, _) = http_get(&request.announce_url(&tracker.announce_url())).unwrap();
    assert_eq!(status, 200);
    reply.peers.iter().map(|peer| peer.addr).collect()
}

/// libtorrent seed and libtorrent leecher, both announcing to `url` (HTTP or UDP).
fn libtorrent_pair(url_of: impl Fn(&TestTracker) -> String) {
    if !require_tool("libtorrent") {
        return;
    }
    let tracker = TestTracker::start(Config::default());
    let url = url_of(&tracker);
    let tmp = tempfile::tempdir().unwrap();
    let payload = payload(tmp.path(), &tracker.announce_url());
    let options = LibtorrentOptions::default().tracker(url.clone());

    let mut seed =
        LibtorrentPeer::seed(&payload.torrent, &payload.seed_dir, options.clone()).unwrap();
    let seen = seed
        .wait_event("tracker_reply", ANNOUNCE_SEEN, |event| {
            Ok(event["peers"].as_u64())
        })
        .unwrap();
    assert_eq!(seen, 0, "the seed is alone at first");

    let leech_dir = tmp.path().join("leech");
    let mut leech = LibtorrentPeer::leech(&payload.torrent, &leech_dir, options).unwrap();
    let peers = leech
        .wait_event("tracker_reply", ANNOUNCE_SEEN, |event| {
            Ok(event["peers"].as_u64())
        })
        .unwrap();
    assert_eq!(peers, 1, "{url} gives the leecher the seed");
    leech.wait_finished(LIBTORRENT_DOWNLOAD).unwrap();
    payload.assert_copied_eventually(&leech_dir, &FILES);
    assert_completed_in_scrape(&tracker, payload.info_hash());
    // Each announced from its own listen address, over HTTP and UDP alike.
    let swarm = swarm_seen_by_a_newcomer(&tracker, payload.info_hash());
    assert_eq!(swarm, BTreeSet::from([seed.addr(), leech.addr()]));
    // Closing the driver announces `stopped`: the tracker forgets that peer.
    assert!(leech.stop().unwrap().success());
    let stats = wait_for_scrape(
        &tracker,
        payload.info_hash(),
        ANNOUNCE_SEEN,
        "the stopped announce",
        |stats| stats.complete == 1,
    );
    assert_eq!((stats.incomplete, stats.downloaded), (0, 1), "{stats:?}");
    drop(seed);
}

#[test]
fn libtorrent_seed_and_leecher_meet_over_http() {
    libtorrent_pair(TestTracker::announce_url);
}

#[test]
fn libtorrent_seed_and_leecher_meet_over_udp() {
    libtorrent_pair(TestTracker::udp_announce_url);
}

/// A Transmission seed and a libtorrent leecher, both announcing to the torrent's tracker
/// `url_of(tracker)` (HTTP or UDP); libtorrent dials Transmission from the reply.
fn transmission_seed_libtorrent_leecher(url_of: impl Fn(&TestTracker) -> String) {
    if !require_tool("libtorrent") || !require_tool("transmission-cli") {
        return;
    }
    let tracker = TestTracker::start(Config::default());
    let tmp = tempfile::tempdir().unwrap();
    let payload = payload(tmp.path(), &url_of(&tracker));

    let _seed = TransmissionPeer::seed(
        &payload.torrent,
        &payload.seed_dir,
        TransmissionOptions::default(),
    )
    .unwrap();
    wait_for_scrape(
        &tracker,
        payload.info_hash(),
        ANNOUNCE_SEEN,
        "Transmission's announce as a seed",
        |stats| stats.complete == 1,
    );

    let leech_dir = tmp.path().join("leech");
    let mut leech =
        LibtorrentPeer::leech(&payload.torrent, &leech_dir, LibtorrentOptions::default()).unwrap();
    let peers = leech
        .wait_event("tracker_reply", ANNOUNCE_SEEN, |event| {
            Ok(event["peers"].as_u64())
        })
        .unwrap();
    assert_eq!(
        peers, 1,
        "the tracker gives libtorrent the Transmission seed"
    );
    leech.wait_finished(TRANSMISSION_DOWNLOAD).unwrap();
    payload.assert_copied_eventually(&leech_dir, &FILES);
    assert_completed_in_scrape(&tracker, payload.info_hash());
    // The libtorrent leecher announces `stopped` as it exits: one seeder (Transmission) left.
    assert!(leech.stop().unwrap().success());
    wait_for_scrape(
        &tracker,
        payload.info_hash(),
        ANNOUNCE_SEEN,
        "libtorrent's stopped announce",
        |stats| stats.complete == 1,
    );
}

#[test]
fn libtorrent_leecher_dials_a_transmission_seed_over_http() {
    transmission_seed_libtorrent_leecher(TestTracker::announce_url);
}

#[test]
fn libtorrent_leecher_dials_a_transmission_seed_over_udp() {
    transmission_seed_libtorrent_leecher(TestTracker::udp_announce_url);
}

#[test]
fn libtorrent_seed_dials_a_transmission_leecher_over_http() {
    if !require_tool("libtorrent") || !require_tool("transmission-cli") {
        return;
    }
    let tracker = TestTracker::start(Config::default());
    let tmp = tempfile::tempdir().unwrap();
    let payload = payload(tmp.path(), &tracker.announce_url());

    let leech_dir = tmp.path().join("leech");
    let mut leech =
        TransmissionPeer::leech(&payload.torrent, &leech_dir, TransmissionOptions::default())
            .unwrap();
    wait_for_scrape(
        &tracker,
        payload.info_hash(),
        ANNOUNCE_SEEN,
        "Transmission's announce as a leecher",
        |stats| stats.incomplete == 1,
    );

    let mut seed = LibtorrentPeer::seed(
        &payload.torrent,
        &payload.seed_dir,
        LibtorrentOptions::default(),
    )
    .unwrap();
    let peers = seed
        .wait_event("tracker_reply", ANNOUNCE_SEEN, |event| {
            Ok(event["peers"].as_u64())
        })
        .unwrap();
    assert_eq!(
        peers, 1,
        "the tracker gives the libtorrent seed the Transmission leecher"
    );
    leech.wait_finished(TRANSMISSION_DOWNLOAD).unwrap();
    payload.assert_copied_eventually(&leech_dir, &FILES);
    assert_completed_in_scrape(&tracker, payload.info_hash());
    // transmission-cli exits on SIGINT without announcing `stopped` (measured), so the
    // tracker keeps it until it expires; only the exit itself is checked.
    assert!(leech.stop().unwrap().success());
}
