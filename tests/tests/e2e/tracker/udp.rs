//! rill-tracker over UDP (BEP 15), in process.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rill_common::InfoHash;
use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::udp::{self, Request, Response};
use rill_tests::{TestTracker, UdpClient};
use rill_tracker::Config;

use super::{addrs, hash, ok_announce, peer_id, request, sa};

pub(super) fn udp_announce(
    connection_id: u64,
    transaction_id: u32,
    info_hash: InfoHash,
    peer: u8,
    port: u16,
    left: u64,
) -> udp::AnnounceRequest {
    udp::AnnounceRequest {
        connection_id,
        transaction_id,
        info_hash,
        peer_id: peer_id(peer),
        downloaded: 0,
        left,
        uploaded: 0,
        event: None,
        ip: Ipv4Addr::UNSPECIFIED,
        key: 1,
        num_want: -1,
        port,
        url_data: Vec::new(),
    }
}

fn announced(response: Response, transaction_id: u32) -> (u32, u32, Vec<SocketAddr>) {
    match response {
        Response::Announce {
            transaction_id: t,
            interval,
            leechers,
            seeders,
            mut peers,
        } => {
            assert_eq!(t, transaction_id);
            assert!(interval >= 1800);
            peers.sort();
            (seeders, leechers, peers)
        }
        other => panic!("expected an announce reply, got {other:?}"),
    }
}

#[test]
fn udp_peers_see_each_other_and_scrape() {
    let tracker = TestTracker::start(Config::default());
    let (a, b) = (tracker.udp_client(), tracker.udp_client());
    let (ca, cb) = (a.connect(1), b.connect(2));
    let reply = a.request(&Request::Announce(udp_announce(
        ca,
        10,
        hash(1),
        1,
        6001,
        100,
    )));
    assert_eq!(announced(reply, 10), (0, 1, vec![]));
    let mut done = udp_announce(cb, 11, hash(1), 2, 6002, 0);
    done.event = Some(AnnounceEvent::Completed);
    let reply = b.request(&Request::Announce(done));
    assert_eq!(announced(reply, 11), (1, 1, vec![sa("127.0.0.1:6001")]));
    let reply = a.request(&Request::Announce(udp_announce(
        ca,
        12,
        hash(1),
        1,
        6001,
        100,
    )));
    assert_eq!(announced(reply, 12), (1, 1, vec![sa("127.0.0.1:6002")]));

    let reply = a.request(&Request::Scrape {
        connection_id: ca,
        transaction_id: 13,
        info_hashes: vec![hash(1), hash(7)],
    });
    let expected = vec![
        udp::ScrapeStats {
            seeders: 1,
            completed: 1,
            leechers: 1,
        },
        udp::ScrapeStats::default(),
    ];
    assert_eq!(
        reply,
        Response::Scrape {
            transaction_id: 13,
            stats: expected
        }
    );

    // HTTP and UDP share the swarm.
    let http = ok_announce(&tracker, &request(hash(1), 3, 6003, 100));
    assert_eq!(addrs(&http), [sa("127.0.0.1:6001"), sa("127.0.0.1:6002")]);
}

#[test]
fn udp_over_ipv6_gets_ipv6_peers_only() {
    let tracker = TestTracker::start_on(Config::default(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let port = tracker.udp_addr.port();
    let v4 = UdpClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let v6 = UdpClient::new(SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
    let (c4, c6) = (v4.connect(1), v6.connect(2));
    v4.request(&Request::Announce(udp_announce(
        c4,
        3,
        hash(1),
        1,
        6001,
        100,
    )));
    let reply = v6.request(&Request::Announce(udp_announce(
        c6,
        4,
        hash(1),
        2,
        6002,
        100,
    )));
    // The IPv4 peer is counted but not sent in 18-byte form.
    assert_eq!(announced(reply, 4), (0, 2, vec![]));
    let v6b = UdpClient::new(SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
    let c6b = v6b.connect(5);
    let reply = v6b.request(&Request::Announce(udp_announce(
        c6b,
        6,
        hash(1),
        3,
        6003,
        100,
    )));
    assert_eq!(announced(reply, 6), (0, 3, vec![sa("[::1]:6002")]));
    let reply = v4.request(&Request::Announce(udp_announce(
        c4,
        7,
        hash(1),
        1,
        6001,
        100,
    )));
    assert_eq!(announced(reply, 7), (0, 3, vec![]));
}

#[test]
fn udp_wrong_connection_id_gets_an_error() {
    let tracker = TestTracker::start(Config::default());
    let client = tracker.udp_client();
    let id = client.connect(1);
    for request in [
        Request::Announce(udp_announce(id ^ 0xff, 2, hash(1), 1, 6001, 100)),
        Request::Scrape {
            connection_id: id.wrapping_add(1),
            transaction_id: 2,
            info_hashes: vec![hash(1)],
        },
    ] {
        match client.request(&request) {
            Response::Error {
                transaction_id: 2,
                message,
            } => assert!(message.contains("connection id"), "{message}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }
    // Another client's id is wrong too (ids are bound to the address).
    let other = tracker.udp_client();
    let reply = other.request(&Request::Announce(udp_announce(id, 3, hash(1), 1, 6001, 1)));
    assert!(
        matches!(
            reply,
            Response::Error {
                transaction_id: 3,
                ..
            }
        ),
        "{reply:?}"
    );
}

#[test]
fn udp_garbage_is_dropped_and_the_tracker_stays_up() {
    let tracker = TestTracker::start(Config::default());
    let client = tracker.udp_client();
    let mut connect = Request::Connect { transaction_id: 9 }.encode();
    connect[0] ^= 1; // no magic number
    let announce = Request::Announce(udp_announce(5, 1, hash(1), 1, 6001, 1)).encode();
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff],
        b"GET /announce HTTP/1.1\r\n\r\n".to_vec(),
        vec![0; 15],
        connect,
        announce[..50].to_vec(),
        (0..=255).collect(),
    ];
    for packet in &garbage {
        client.send_raw(packet);
    }
    // Dropped, not answered: the next replies are those of the next requests, in turn
    // (`connect` panics on any other reply).
    for transaction_id in [100, 101, 102] {
        client.connect(transaction_id);
    }
    assert_eq!(tracker.get("/health").body, b"ok");
}

#[test]
fn udp_malformed_request_with_valid_connection_id_gets_an_error() {
    let tracker = TestTracker::start(Config::default());
    let client = tracker.udp_client();
    let id = client.connect(1);
    // A BEP 41 option cut short, and an unknown event code.
    let mut cut = Request::Announce(udp_announce(id, 2, hash(1), 1, 6001, 1)).encode();
    cut.extend_from_slice(&[2, 10, b'/']);
    let mut bad_event = Request::Announce(udp_announce(id, 3, hash(1), 1, 6001, 1)).encode();
    bad_event[80..84].copy_from_slice(&77u32.to_be_bytes());
    for (packet, transaction_id) in [(cut, 2), (bad_event, 3)] {
        client.send_raw(&packet);
        let reply = Response::decode(&client.recv_raw(), udp::Family::V4).unwrap();
        match reply {
            Response::Error {
                transaction_id: t,
                message,
            } => {
                assert_eq!(t, transaction_id);
                assert!(message.contains("invalid request"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

#[test]
fn udp_url_data_is_ignored_in_public_mode() {
    let tracker = TestTracker::start(Config::default());
    let client = tracker.udp_client();
    let id = client.connect(1);
    let mut with_path = udp_announce(id, 2, hash(1), 1, 6001, 1);
    with_path.url_data = b"/announce?passkey=abc".to_vec();
    let reply = client.request(&Request::Announce(with_path));
    assert_eq!(announced(reply, 2), (0, 1, vec![]));
}
