//! Tests of the announce task against fake trackers, on tokio's paused clock (intervals and
//! backoff pass without real waiting; the loopback I/O is real).

use std::net::SocketAddr;

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::{AnnounceReply, AnnounceRequest as Query, AnnounceResponse, Peer};
use rill_common::tracker::udp::{Family, Request as Packet};

use super::*;
use crate::announce::fake::{FakeHttp, FakeUdp, answer, ok, response};

/// Bound on any wait in these tests (virtual time: it only passes when all is idle).
const WAIT: Duration = Duration::from_secs(24 * 3600);

fn config(tiers: Vec<Vec<String>>) -> AnnounceConfig {
    let mut config = AnnounceConfig::new(
        InfoHash::from_bytes([3; 20]),
        PeerId::from_bytes(*b"-RL0100-000000000000"),
        6881,
        tiers,
    );
    config.key = 0xABCD;
    config
}

fn peer(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 9, 8, n], 6000 + u16::from(n)))
}

fn reply_with(interval: u32, tracker_id: Option<&[u8]>, peers: &[SocketAddr]) -> Vec<u8> {
    AnnounceResponse::Success(AnnounceReply {
        interval,
        complete: Some(2),
        incomplete: Some(5),
        tracker_id: tracker_id.map(<[u8]>::to_vec),
        peers: peers
            .iter()
            .map(|&addr| Peer {
                addr,
                peer_id: None,
            })
            .collect(),
        ..AnnounceReply::default()
    })
    .to_bytes(true, false)
}

/// The announce a fake HTTP tracker received.
async fn next_announce(fake: &mut FakeHttp) -> Query {
    let target = tokio::time::timeout(WAIT, fake.next_target())
        .await
        .expect("an announce in time");
    let query = target.split_once('?').expect("a query").1;
    Query::from_query(query.as_bytes()).expect("a valid announce")
}

/// Progress sender and receiver, peer sender and receiver.
type Channels = (
    watch::Sender<Progress>,
    watch::Receiver<Progress>,
    mpsc::Sender<Vec<SocketAddr>>,
    mpsc::Receiver<Vec<SocketAddr>>,
);

fn channels() -> Channels {
    let (progress_tx, progress_rx) = watch::channel(Progress {
        uploaded: 0,
        downloaded: 0,
        left: 1000,
    });
    let (peers_tx, peers_rx) = mpsc::channel(16);
    (progress_tx, progress_rx, peers_tx, peers_rx)
}

async fn wait_status(
    announcer: &Announcer,
    what: impl FnMut(&TrackerStatus) -> bool,
) -> TrackerStatus {
    let mut rx = announcer.watch_status();
    tokio::time::timeout(WAIT, rx.wait_for(what))
        .await
        .expect("status in time")
        .expect("task alive")
        .clone()
}

#[tokio::test(start_paused = true)]
async fn started_then_regular_announces_with_the_tracker_id_echoed() {
    let body = reply_with(600, Some(b"T-1"), &[peer(1), peer(2)]);
    let mut fake = FakeHttp::start(move |_| ok(&body)).await;
    let (progress_tx, progress, peers_tx, mut peers) = channels();
    let announcer = spawn(
        config(vec![vec![format!("{}/announce", fake.base)]]),
        progress,
        peers_tx,
    );
    let first = next_announce(&mut fake).await;
    assert_eq!(first.event, Some(AnnounceEvent::Started));
    assert_eq!(first.tracker_id, None);
    assert_eq!(first.left, 1000);
    assert_eq!(first.key.as_deref(), Some("0000ABCD"));
    assert_eq!(first.numwant, Some(50));
    let got = tokio::time::timeout(WAIT, peers.recv())
        .await
        .expect("peers");
    assert_eq!(got, Some(vec![peer(1), peer(2)]));
    let status = wait_status(&announcer, |s| s.announces == 1).await;
    assert_eq!((status.seeders, status.leechers), (Some(2), Some(5)));
    assert_eq!(status.last_error, None);
    assert_eq!(status.tracker.as_deref(), Some(fake.base.as_str()));
    assert!(status.next_announce.is_some());

    progress_tx.send_replace(Progress {
        uploaded: 7,
        downloaded: 400,
        left: 600,
    });
    let start = tokio::time::Instant::now();
    let second = next_announce(&mut fake).await;
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(600),
        "after `interval`"
    );
    assert_eq!(second.event, None);
    assert_eq!(second.tracker_id.as_deref(), Some(&b"T-1"[..]));
    assert_eq!(
        (second.uploaded, second.downloaded, second.left),
        (7, 400, 600)
    );
    announcer.stop(Duration::from_secs(5)).await;
    let last = next_announce(&mut fake).await;
    assert_eq!(last.event, Some(AnnounceEvent::Stopped));
    assert_eq!(last.tracker_id.as_deref(), Some(&b"T-1"[..]));
}

#[tokio::test(start_paused = true)]
async fn completed_is_announced_at_once() {
    let body = reply_with(1800, None, &[]);
    let mut fake = FakeHttp::start(move |_| ok(&body)).await;
    let (progress_tx, progress, peers_tx, _peers) = channels();
    let announcer = spawn(
        config(vec![vec![format!("{}/announce", fake.base)]]),
        progress,
        peers_tx,
    );
    assert_eq!(
        next_announce(&mut fake).await.event,
        Some(AnnounceEvent::Started)
    );
    wait_status(&announcer, |s| s.announces == 1).await;
    progress_tx.send_replace(Progress {
        uploaded: 0,
        downloaded: 1000,
        left: 0,
    });
    let start = tokio::time::Instant::now();
    announcer.completed();
    let done = next_announce(&mut fake).await;
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "not held back to the interval"
    );
    assert_eq!(done.event, Some(AnnounceEvent::Completed));
    assert_eq!(done.left, 0);
    announcer.completed();
    wait_status(&announcer, |s| s.announces == 2).await;
    // The next one is a regular announce, an interval later.
    let next = next_announce(&mut fake).await;
    assert_eq!(next.event, None);
    assert_eq!(start.elapsed(), Duration::from_secs(1800));
}

#[tokio::test(start_paused = true)]
async fn a_failing_tracker_falls_over_to_the_next_and_gets_no_stopped() {
    let mut bad = FakeHttp::start(|_| ok(b"d14:failure reason4:nopee")).await;
    let body = reply_with(1800, None, &[peer(3)]);
    let mut good = FakeHttp::start(move |_| ok(&body)).await;
    let (_progress_tx, progress, peers_tx, mut peers) = channels();
    let announcer = spawn(
        config(vec![
            vec![
                "wss://tracker.example/announce".to_owned(),
                format!("{}/announce", bad.base),
            ],
            vec!["not a url".to_owned(), format!("{}/announce", good.base)],
        ]),
        progress,
        peers_tx,
    );
    assert_eq!(
        next_announce(&mut bad).await.event,
        Some(AnnounceEvent::Started)
    );
    assert_eq!(
        next_announce(&mut good).await.event,
        Some(AnnounceEvent::Started)
    );
    let got = tokio::time::timeout(WAIT, peers.recv())
        .await
        .expect("peers");
    assert_eq!(got, Some(vec![peer(3)]));
    let status = wait_status(&announcer, |s| s.announces == 1).await;
    assert_eq!(status.tracker.as_deref(), Some(good.base.as_str()));
    announcer.stop(Duration::from_secs(5)).await;
    assert_eq!(
        next_announce(&mut good).await.event,
        Some(AnnounceEvent::Stopped)
    );
    assert!(
        bad.targets.try_recv().is_err(),
        "a tracker never started gets no stopped"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_are_shown_and_retried_with_backoff() {
    let fake = FakeHttp::start(|_| response(500, b"oops")).await;
    let (_progress_tx, progress, peers_tx, _peers) = channels();
    let url = format!("{}/announce?passkey=s3cret", fake.base);
    let announcer = spawn(config(vec![vec![url]]), progress, peers_tx);
    let failed_at = tokio::time::Instant::now().into_std();
    let status = wait_status(&announcer, |s| {
        s.last_error.is_some() && s.next_announce.is_some_and(|t| t > failed_at)
    })
    .await;
    assert_eq!(
        status.next_announce,
        Some(failed_at + Duration::from_secs(15)),
        "the retry time is shown"
    );
    let error = status.last_error.expect("an error");
    assert!(error.contains("HTTP status 500"), "{error}");
    assert!(
        !error.contains("s3cret"),
        "the passkey stays hidden: {error}"
    );
    let mut fake = fake;
    let first = tokio::time::Instant::now();
    fake.next_target().await;
    let mut gaps = Vec::new();
    let mut last = first;
    for _ in 0..3 {
        tokio::time::timeout(WAIT, fake.next_target())
            .await
            .expect("a retry");
        let now = tokio::time::Instant::now();
        gaps.push((now - last).as_secs());
        last = now;
    }
    assert_eq!(gaps, [15, 30, 60]);
    announcer.stop(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn the_warning_is_shown_and_missing_counts_are_scraped() {
    let announce = AnnounceResponse::Success(AnnounceReply {
        interval: 1800,
        warning_message: Some("be nice".to_owned()),
        ..AnnounceReply::default()
    })
    .to_bytes(true, false);
    let scrape = {
        let mut body = b"d5:filesd20:".to_vec();
        body.extend_from_slice(&[3; 20]);
        body.extend_from_slice(b"d8:completei4e10:downloadedi9e10:incompletei6eeee");
        body
    };
    let fake = FakeHttp::start(move |target| {
        if target.starts_with("/scrape") {
            ok(&scrape)
        } else {
            ok(&announce)
        }
    })
    .await;
    let (_progress_tx, progress, peers_tx, _peers) = channels();
    let announcer = spawn(
        config(vec![vec![format!("{}/announce", fake.base)]]),
        progress,
        peers_tx,
    );
    let status = wait_status(&announcer, |s| s.completed.is_some()).await;
    assert_eq!(status.warning.as_deref(), Some("be nice"));
    assert_eq!(
        (status.seeders, status.leechers, status.completed),
        (Some(4), Some(6), Some(9))
    );
    announcer.stop(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn udp_trackers_announce_and_get_stopped() {
    let mut fake = FakeUdp::start(|packet, _| vec![answer(packet, Family::V4, &[peer(4)])]).await;
    let (_progress_tx, progress, peers_tx, mut peers) = channels();
    let announcer = spawn(
        config(vec![vec![fake.url("/announce/pk")]]),
        progress,
        peers_tx,
    );
    let got = tokio::time::timeout(WAIT, peers.recv())
        .await
        .expect("peers");
    assert_eq!(got, Some(vec![peer(4)]));
    let status = wait_status(&announcer, |s| s.announces == 1).await;
    assert_eq!((status.seeders, status.leechers), (Some(4), Some(3)));
    announcer.stop(Duration::from_secs(5)).await;
    let events: Vec<_> = std::iter::from_fn(|| fake.arrivals.try_recv().ok())
        .filter_map(|(packet, _)| match packet {
            Packet::Announce(a) => Some((a.event, a.url_data)),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        [
            (Some(AnnounceEvent::Started), b"/announce/pk".to_vec()),
            (Some(AnnounceEvent::Stopped), b"/announce/pk".to_vec()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn stop_is_bounded_by_its_timeout() {
    // Answers `started`, then never again.
    let answered = std::sync::atomic::AtomicBool::new(false);
    let body = reply_with(1800, None, &[]);
    let fake = FakeHttp::start(move |_| {
        if answered.swap(true, std::sync::atomic::Ordering::SeqCst) {
            Vec::new() // unanswered
        } else {
            ok(&body)
        }
    })
    .await;
    let (_progress_tx, progress, peers_tx, _peers) = channels();
    let announcer = spawn(
        config(vec![vec![format!("{}/announce", fake.base)]]),
        progress,
        peers_tx,
    );
    wait_status(&announcer, |s| s.announces == 1).await;
    let start = tokio::time::Instant::now();
    announcer.stop(Duration::from_secs(3)).await;
    // The HTTP client alone would wait 30 s.
    assert!(start.elapsed() <= Duration::from_secs(3) + STOP_SLACK);
}

#[tokio::test(start_paused = true)]
async fn no_usable_tracker_means_a_quiet_task() {
    let (_progress_tx, progress, peers_tx, mut peers) = channels();
    let announcer = spawn(
        config(vec![vec!["magnet:?xt=1".to_owned()], vec![]]),
        progress,
        peers_tx,
    );
    assert_eq!(announcer.status(), TrackerStatus::default());
    announcer.stop(Duration::from_secs(1)).await;
    assert_eq!(
        peers.recv().await,
        None,
        "the task ended and dropped its sender"
    );
}

#[test]
fn display_urls_hide_paths_queries_and_user_info() {
    assert_eq!(
        display_url("http://user:pw@tracker.example:8080/a/announce?passkey=1"),
        "http://tracker.example:8080"
    );
    assert_eq!(
        display_url("udp://[::1]:6969/announce/pk"),
        "udp://[::1]:6969"
    );
    assert_eq!(display_url("https://t.example?x"), "https://t.example");
    assert_eq!(display_url("garbage"), "(invalid URL)");
}
