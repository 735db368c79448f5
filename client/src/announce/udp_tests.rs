//! Tests of the BEP 15 client against a fake UDP tracker on loopback. Retransmission timing
//! runs on tokio's paused clock, so the 15 s backoff costs no real time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::udp::UdpError;
use rill_common::{InfoHash, PeerId};

use super::*;
use crate::announce::fake::{FakeUdp, answer};

fn request() -> Request {
    Request {
        info_hash: InfoHash::from_bytes([7; 20]),
        peer_id: PeerId::from_bytes(*b"-RL0100-abcdefghijkl"),
        port: 51413,
        uploaded: 10,
        downloaded: 20,
        left: 30,
        event: Some(AnnounceEvent::Started),
        numwant: Some(50),
        key: 0xDEAD_BEEF,
        tracker_id: None,
    }
}

fn peers() -> Vec<SocketAddr> {
    vec![
        "10.1.2.3:6881".parse().expect("addr"),
        "10.1.2.4:6882".parse().expect("addr"),
    ]
}

fn connects(fake: &FakeUdp) -> usize {
    fake.requests()
        .iter()
        .filter(|p| matches!(p, Packet::Connect { .. }))
        .count()
}

fn announces(fake: &FakeUdp) -> Vec<codec::AnnounceRequest> {
    fake.requests()
        .into_iter()
        .filter_map(|p| match p {
            Packet::Announce(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn urls_are_parsed_with_their_url_data() {
    let url = UdpUrl::parse("udp://tracker.example:6969/announce/abc123?x=1").expect("valid");
    assert_eq!(url.host, "tracker.example");
    assert_eq!(url.port, 6969);
    assert_eq!(url.url_data, b"/announce/abc123?x=1");
    let url = UdpUrl::parse("UDP://[::1]:80").expect("valid");
    assert_eq!((url.host.as_str(), url.port), ("::1", 80));
    assert!(url.url_data.is_empty());
    let url = UdpUrl::parse("udp://1.2.3.4:5?pk=1").expect("valid");
    assert_eq!(url.url_data, b"?pk=1");
    for bad in [
        "udp://host/announce",
        "udp://host:/announce",
        "udp://host:0",
        "udp://host:99999",
        "udp://:80",
        "udp://[::1/announce",
        "udp://[::1]/announce",
        "tracker:80",
    ] {
        let error = UdpUrl::parse(bad).expect_err(bad);
        assert!(
            matches!(error, AnnounceError::BadUrl { .. }),
            "{bad}: {error:?}"
        );
    }
    assert!(matches!(
        UdpUrl::parse("http://host:80/announce"),
        Err(AnnounceError::UnsupportedScheme(_))
    ));
}

#[tokio::test]
async fn announce_connects_then_announces_with_url_data() {
    let fake = FakeUdp::start(|packet, _| vec![answer(packet, Family::V4, &peers())]).await;
    let mut tracker = UdpTracker::open(&fake.url("/announce/s3cret?a=b"), UdpConfig::default())
        .await
        .expect("open");
    let reply = tracker.announce(&request()).await.expect("reply");
    assert_eq!(reply.interval, 1800);
    assert_eq!((reply.seeders, reply.leechers), (Some(4), Some(3)));
    assert_eq!(reply.peers, peers());
    assert_eq!(connects(&fake), 1);
    let sent = announces(&fake);
    assert_eq!(sent.len(), 1);
    let a = &sent[0];
    assert_eq!(a.connection_id, 42);
    assert_eq!(a.info_hash, request().info_hash);
    assert_eq!(a.peer_id, request().peer_id);
    assert_eq!((a.uploaded, a.downloaded, a.left), (10, 20, 30));
    assert_eq!(a.event, Some(AnnounceEvent::Started));
    assert_eq!((a.key, a.num_want, a.port), (0xDEAD_BEEF, 50, 51413));
    assert_eq!(a.url_data, b"/announce/s3cret?a=b");
}

#[tokio::test]
async fn numwant_none_asks_for_the_default() {
    let fake = FakeUdp::start(|packet, _| vec![answer(packet, Family::V4, &[])]).await;
    let mut tracker = UdpTracker::open(&fake.url(""), UdpConfig::default())
        .await
        .expect("open");
    let mut req = request();
    req.numwant = None;
    req.event = None;
    tracker.announce(&req).await.expect("reply");
    let sent = announces(&fake);
    assert_eq!(sent[0].num_want, -1);
    assert_eq!(sent[0].event, None);
    assert!(sent[0].url_data.is_empty());
}

#[tokio::test]
async fn the_connection_id_is_reused_within_its_lifetime() {
    let fake = FakeUdp::start(|packet, _| vec![answer(packet, Family::V4, &[])]).await;
    let mut tracker = UdpTracker::open(&fake.url("/announce"), UdpConfig::default())
        .await
        .expect("open");
    tracker.announce(&request()).await.expect("first");
    tracker.announce(&request()).await.expect("second");
    tracker.scrape(request().info_hash).await.expect("scrape");
    assert_eq!(connects(&fake), 1);
    assert_eq!(announces(&fake).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_connection_id_is_renewed() {
    let fake = FakeUdp::start(|packet, _| vec![answer(packet, Family::V4, &[])]).await;
    let mut tracker = UdpTracker::open(&fake.url("/announce"), UdpConfig::default())
        .await
        .expect("open");
    tracker.announce(&request()).await.expect("first");
    tokio::time::advance(Duration::from_secs(59)).await;
    tracker.announce(&request()).await.expect("second");
    assert_eq!(connects(&fake), 1, "still fresh at 59 s");
    tokio::time::advance(Duration::from_secs(2)).await;
    tracker.announce(&request()).await.expect("third");
    assert_eq!(connects(&fake), 2, "expired at 61 s");
}

#[tokio::test(start_paused = true)]
async fn a_lost_announce_is_sent_again_after_15_seconds() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    let mut fake = FakeUdp::start(move |packet, _| {
        if matches!(packet, Packet::Announce(_)) && count.fetch_add(1, Ordering::SeqCst) == 0 {
            return Vec::new(); // lost
        }
        vec![answer(packet, Family::V4, &peers())]
    })
    .await;
    let mut tracker = UdpTracker::open(&fake.url("/announce"), UdpConfig::default())
        .await
        .expect("open");
    let reply = tracker
        .announce(&request())
        .await
        .expect("answered the second time");
    assert_eq!(reply.peers, peers());
    let mut times = Vec::new();
    while let Ok((packet, at)) = fake.arrivals.try_recv() {
        if matches!(packet, Packet::Announce(_)) {
            times.push(at);
        }
    }
    assert_eq!(times.len(), 2);
    assert_eq!(times[1] - times[0], Duration::from_secs(15));
    let sent = announces(&fake);
    assert_ne!(
        sent[0].transaction_id, sent[1].transaction_id,
        "a fresh transaction id per attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn retransmissions_back_off_15_times_2_to_the_n_then_time_out() {
    let mut fake = FakeUdp::start(|packet, _| match packet {
        Packet::Connect { .. } => vec![answer(packet, Family::V4, &[])],
        _ => Vec::new(),
    })
    .await;
    let config = UdpConfig {
        max_retransmits: 3,
        // Longer than the whole exchange, so no reconnect muddles the timing.
        connection_ttl: Duration::from_secs(3600),
        ..UdpConfig::default()
    };
    let mut tracker = UdpTracker::open(&fake.url("/announce"), config)
        .await
        .expect("open");
    let start = tokio::time::Instant::now();
    let error = tracker
        .announce(&request())
        .await
        .expect_err("never answered");
    assert!(matches!(error, AnnounceError::Timeout), "{error:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(15 + 30 + 60 + 120));
    let mut times = Vec::new();
    while let Ok((packet, at)) = fake.arrivals.try_recv() {
        if matches!(packet, Packet::Announce(_)) {
            times.push(at);
        }
    }
    let gaps: Vec<u64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(gaps, [15, 30, 60]);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_connect_times_out_with_a_small_base() {
    let fake = FakeUdp::start(|_, _| Vec::new()).await;
    let config = UdpConfig {
        base_timeout: Duration::from_millis(10),
        max_retransmits: 1,
        ..UdpConfig::default()
    };
    let mut tracker = UdpTracker::open(&fake.url("/announce"), config)
        .await
        .expect("open");
    let error = tracker.announce(&request()).await.expect_err("silent");
    assert!(matches!(error, AnnounceError::Timeout), "{error:?}");
    assert_eq!(connects(&fake), 2);
}

#[tokio::test]
async fn replies_with_another_transaction_id_are_ignored() {
    let fake = FakeUdp::start(|packet, _| {
        let good = answer(packet, Family::V4, &peers());
        let mut wrong = good.clone();
        // Flip the transaction id (bytes 4..8) and the peers.
        wrong[4] ^= 0xFF;
        wrong.truncate(20);
        vec![b"garbage".to_vec(), wrong, good]
    })
    .await;
    let mut tracker = UdpTracker::open(&fake.url("/announce"), UdpConfig::default())
        .await
        .expect("open");
    let reply = tracker.announce(&request()).await.expect("the right reply");
    assert_eq!(reply.peers, peers());
}

#[tokio::test]
async fn an_error_packet_is_a_refusal_and_drops_the_connection_id() {
    let refuse = Arc::new(AtomicUsize::new(1));
    let left = refuse.clone();
    let fake = FakeUdp::start(move |packet, _| match packet {
        Packet::Announce(a) if left.fetch_sub(1, Ordering::SeqCst) == 1 => {
            vec![
                PacketReply::Error {
                    transaction_id: a.transaction_id,
                    message: "unregistered torrent".to_owned(),
                }
                .encode(Family::V4),
            ]
        }
        _ => vec![answer(packet, Family::V4, &[])],
    })
    .await;
    let mut tracker = UdpTracker::open(&fake.url("/announce"), UdpConfig::default())
        .await
        .expect("open");
    let error = tracker.announce(&request()).await.expect_err("refused");
    assert!(
        matches!(&error, AnnounceError::Refused(text) if text == "unregistered torrent"),
        "{error:?}"
    );
    tracker.announce(&request()).await.expect("then accepted");
    assert_eq!(connects(&fake), 2, "connected again after the error");
}

#[tokio::test]
async fn a_truncated_reply_with_our_transaction_id_is_an_error() {
    let fake = FakeUdp::start(|packet, _| {
        let mut reply = answer(packet, Family::V4, &peers());
        if matches!(packet, Packet::Announce(_)) {
            reply.truncate(reply.len() - 2);
        }
        vec![reply]
    })
    .await;
    let mut tracker = UdpTracker::open(&fake.url("/announce"), UdpConfig::default())
        .await
        .expect("open");
    let error = tracker
        .announce(&request())
        .await
        .expect_err("ragged peers");
    assert!(
        matches!(error, AnnounceError::InvalidUdp(UdpError::Ragged { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_reply_of_the_wrong_kind_is_an_error() {
    let fake = FakeUdp::start(|packet, _| match packet {
        Packet::Announce(a) => vec![
            PacketReply::Connect {
                transaction_id: a.transaction_id,
                connection_id: 1,
            }
            .encode(Family::V4),
        ],
        _ => vec![answer(packet, Family::V4, &[])],
    })
    .await;
    let mut tracker = UdpTracker::open(&fake.url("/announce"), UdpConfig::default())
        .await
        .expect("open");
    let error = tracker.announce(&request()).await.expect_err("wrong kind");
    assert!(
        matches!(error, AnnounceError::Unexpected("announce")),
        "{error:?}"
    );
}

#[tokio::test]
async fn scrape_reads_the_counters() {
    let fake = FakeUdp::start(|packet, _| vec![answer(packet, Family::V4, &[])]).await;
    let mut tracker = UdpTracker::open(&fake.url("/announce"), UdpConfig::default())
        .await
        .expect("open");
    let counts = tracker.scrape(request().info_hash).await.expect("scrape");
    assert_eq!(
        counts,
        ScrapeCounts {
            seeders: 1,
            leechers: 3,
            completed: 2
        }
    );
    let scraped = fake.requests().into_iter().any(|p| {
        matches!(p, Packet::Scrape { info_hashes, connection_id: 42, .. } if info_hashes == vec![request().info_hash])
    });
    assert!(scraped);
}

#[tokio::test]
async fn an_ipv6_tracker_gets_18_byte_peers() {
    let v6: Vec<SocketAddr> = vec!["[2001:db8::7]:6881".parse().expect("addr")];
    let reply_peers = v6.clone();
    let fake = FakeUdp::start_on("::1", move |packet, _| {
        vec![answer(packet, Family::V6, &reply_peers)]
    })
    .await;
    let url = fake.url("/announce");
    assert!(url.starts_with("udp://[::1]:"), "{url}");
    let mut tracker = UdpTracker::open(&url, UdpConfig::default())
        .await
        .expect("open");
    let reply = tracker.announce(&request()).await.expect("reply");
    assert_eq!(reply.peers, v6);
}
