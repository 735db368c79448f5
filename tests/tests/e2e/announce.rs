//! The client's announcer (`rill::announce`) against the real rill-tracker in process, over
//! HTTP and UDP: announces are accepted, two announcers learn each other's address, and the
//! tracker's scrape counts follow `started`, `completed` and `stopped`.
//!
//! The tracker runs on its own runtime thread ([`TestTracker`]); the announcers on a runtime
//! made here. Waits are bounded by [`WAIT`] and end as soon as the awaited event happens.

use std::net::SocketAddr;
use std::time::Duration;

use rill::announce::http::{HttpClient, HttpConfig};
use rill::announce::udp::{UdpConfig, UdpTracker};
use rill::announce::{
    AnnounceConfig, Announcer, Progress, ScheduleConfig, ScrapeCounts, TrackerStatus, spawn,
};
use rill_common::{InfoHash, PeerId};
use rill_tests::TestTracker;
use rill_tracker::Config;
use tokio::sync::{mpsc, watch};

/// Bound on every wait for the tracker or an announcer.
const WAIT: Duration = Duration::from_secs(30);

/// A tracker that asks for an announce every second, so a second announce comes soon.
fn tracker() -> TestTracker {
    let mut config = Config::default();
    config.announce.interval_secs = 1;
    config.announce.interval_jitter_secs = 0;
    config.announce.min_interval_secs = 1;
    TestTracker::start(config)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn hash(n: u8) -> InfoHash {
    InfoHash::from_bytes([n; 20])
}

fn peer_id(n: u8) -> PeerId {
    let mut id = *b"-RL0100-000000000000";
    id[19] = b'a' + n;
    PeerId::from_bytes(id)
}

/// An announcer's handles.
struct Running {
    announcer: Announcer,
    progress: watch::Sender<Progress>,
    peers: mpsc::Receiver<Vec<SocketAddr>>,
}

/// Starts announcing torrent `info_hash` as peer `n` on port `port`, `left` bytes to go.
fn start(url: &str, info_hash: InfoHash, n: u8, port: u16, left: u64) -> Running {
    let mut config = AnnounceConfig::new(info_hash, peer_id(n), port, vec![vec![url.to_owned()]]);
    config.schedule = ScheduleConfig {
        // Follow the tracker's 1 s interval.
        min_interval: Duration::from_secs(1),
        ..ScheduleConfig::default()
    };
    let (progress, progress_rx) = watch::channel(Progress {
        uploaded: 0,
        downloaded: 0,
        left,
    });
    let (peers_tx, peers) = mpsc::channel(64);
    Running {
        announcer: spawn(config, progress_rx, peers_tx),
        progress,
        peers,
    }
}

/// Waits until the status satisfies `what`.
async fn wait_status(announcer: &Announcer, what: impl FnMut(&TrackerStatus) -> bool) {
    let mut rx = announcer.watch_status();
    tokio::time::timeout(WAIT, rx.wait_for(what))
        .await
        .expect("the announcer's status in time")
        .expect("the announcer is running");
}

/// Waits until the announcer hands over `addr`.
async fn wait_peer(running: &mut Running, addr: SocketAddr) {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(batch) = running.peers.recv().await {
            if batch.contains(&addr) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{addr} never came from the tracker");
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn scrape_http(tracker_url: &str, info_hash: InfoHash) -> ScrapeCounts {
    HttpClient::new(&HttpConfig::default())
        .expect("client")
        .scrape(tracker_url, info_hash)
        .await
        .expect("scrape")
}

async fn scrape_udp(tracker_url: &str, info_hash: InfoHash) -> ScrapeCounts {
    UdpTracker::open(tracker_url, UdpConfig::default())
        .await
        .expect("open")
        .scrape(info_hash)
        .await
        .expect("scrape")
}

fn two_announcers_find_each_other(url: &str) {
    runtime().block_on(async {
        let info_hash = hash(1);
        let mut a = start(url, info_hash, 1, 40001, 1000);
        wait_status(&a.announcer, |s| s.announces >= 1).await;
        let mut b = start(url, info_hash, 2, 40002, 1000);
        wait_peer(&mut b, loopback(40001)).await;
        // A learns of B at its next announce, one interval later.
        wait_peer(&mut a, loopback(40002)).await;
        let status = a.announcer.status();
        assert_eq!(status.last_error, None);
        assert!(status.leechers.is_some_and(|n| n >= 1), "{status:?}");
        a.announcer.stop(WAIT).await;
        b.announcer.stop(WAIT).await;
    });
}

#[test]
fn http_announcers_find_each_other() {
    let tracker = tracker();
    two_announcers_find_each_other(&tracker.announce_url());
}

#[test]
fn udp_announcers_find_each_other() {
    let tracker = tracker();
    two_announcers_find_each_other(&tracker.udp_announce_url());
}

/// `started`, `completed` and `stopped` move the tracker's counts.
fn events_show_in_the_scrape_counts(url: &str, scrape_url: &str, udp: bool) {
    runtime().block_on(async {
        let info_hash = hash(2);
        let scrape = |hash| async move {
            if udp {
                scrape_udp(scrape_url, hash).await
            } else {
                scrape_http(scrape_url, hash).await
            }
        };
        let mut running = start(url, info_hash, 3, 40003, 5000);
        wait_status(&running.announcer, |s| s.announces >= 1).await;
        let counts = scrape(info_hash).await;
        assert_eq!(
            (counts.seeders, counts.leechers, counts.completed),
            (0, 1, 0)
        );

        running.progress.send_replace(Progress {
            uploaded: 0,
            downloaded: 5000,
            left: 0,
        });
        let before = running.announcer.status().announces;
        running.announcer.completed();
        wait_status(&running.announcer, |s| s.announces > before).await;
        let counts = scrape(info_hash).await;
        assert_eq!(counts.seeders, 1, "{counts:?}");
        assert_eq!(counts.leechers, 0, "{counts:?}");
        assert_eq!(counts.completed, 1, "{counts:?}");

        running.announcer.stop(WAIT).await;
        let counts = scrape(info_hash).await;
        assert_eq!((counts.seeders, counts.leechers), (0, 0), "{counts:?}");
        assert_eq!(counts.completed, 1, "a download stays counted");
        // The task ended: its peer sender is gone.
        while running.peers.recv().await.is_some() {}
    });
}

#[test]
fn http_events_show_in_the_scrape_counts() {
    let tracker = tracker();
    let url = tracker.announce_url();
    events_show_in_the_scrape_counts(&url, &url, false);
}

#[test]
fn udp_events_show_in_the_scrape_counts() {
    let tracker = tracker();
    let url = tracker.udp_announce_url();
    events_show_in_the_scrape_counts(&url, &url, true);
}

#[test]
fn a_dead_first_tier_falls_over_to_the_tracker() {
    let tracker = tracker();
    // A port nobody listens on: HTTP connections are refused at once.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/announce", listener.local_addr().expect("addr"))
    };
    runtime().block_on(async {
        let info_hash = hash(3);
        let mut config = AnnounceConfig::new(
            info_hash,
            peer_id(4),
            40004,
            vec![vec![dead], vec![tracker.announce_url()]],
        );
        config.schedule.min_interval = Duration::from_secs(1);
        let (_progress, progress_rx) = watch::channel(Progress {
            uploaded: 0,
            downloaded: 0,
            left: 1,
        });
        let (peers_tx, _peers) = mpsc::channel(8);
        let announcer = spawn(config, progress_rx, peers_tx);
        wait_status(&announcer, |s| s.announces >= 1).await;
        let status = announcer.status();
        assert_eq!(
            status.tracker.as_deref(),
            Some(tracker.http_url.as_str()),
            "{status:?}"
        );
        let counts = scrape_http(&tracker.announce_url(), info_hash).await;
        assert_eq!(counts.leechers, 1);
        announcer.stop(WAIT).await;
    });
}
