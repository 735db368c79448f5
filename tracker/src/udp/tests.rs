use std::net::Ipv4Addr;
use std::time::Duration;

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::udp::AnnounceRequest;
use rill_common::{InfoHash, PeerId};

use super::*;
use crate::config::Config;

fn connect(service: &Service, ids: &ConnectionIds, src: SocketAddr, now: Instant) -> u64 {
    let packet = Request::Connect { transaction_id: 1 }.encode();
    let reply = answer(service, ids, &packet, src, now).unwrap();
    match Response::decode(&reply, Family::V4).unwrap() {
        Response::Connect { connection_id, .. } => connection_id,
        other => panic!("{other:?}"),
    }
}

fn announce(connection_id: u64, ip: Ipv4Addr) -> Vec<u8> {
    Request::Announce(AnnounceRequest {
        connection_id,
        transaction_id: 7,
        info_hash: InfoHash::from_bytes([1; 20]),
        peer_id: PeerId::from_bytes([2; 20]),
        downloaded: 0,
        left: 10,
        uploaded: 0,
        event: None,
        ip,
        key: 0,
        num_want: -1,
        port: 6881,
        url_data: Vec::new(),
    })
    .encode()
}

fn reply(bytes: Option<Vec<u8>>) -> Response {
    Response::decode(&bytes.unwrap(), Family::V4).unwrap()
}

#[test]
fn connection_id_expires_after_two_windows() {
    let service = Service::new(Config::default());
    let t0 = Instant::now();
    let ids = ConnectionIds::new(t0);
    let src: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let id = connect(&service, &ids, src, t0);
    let packet = announce(id, Ipv4Addr::UNSPECIFIED);
    let fresh = reply(answer(
        &service,
        &ids,
        &packet,
        src,
        t0 + Duration::from_secs(200),
    ));
    assert!(
        matches!(
            fresh,
            Response::Announce {
                transaction_id: 7,
                ..
            }
        ),
        "{fresh:?}"
    );
    let stale = reply(answer(
        &service,
        &ids,
        &packet,
        src,
        t0 + Duration::from_secs(240),
    ));
    assert_eq!(
        stale,
        Response::Error {
            transaction_id: 7,
            message: EXPIRED.to_owned()
        }
    );
}

#[test]
fn garbage_is_dropped_unless_the_sender_holds_a_connection_id() {
    let service = Service::new(Config::default());
    let now = Instant::now();
    let ids = ConnectionIds::new(now);
    let src: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    for garbage in [&[][..], &[0; 15], &[0xff; 16], &[0xff; 200]] {
        assert_eq!(answer(&service, &ids, garbage, src, now), None);
    }
    let id = connect(&service, &ids, src, now);
    let mut truncated = announce(id, Ipv4Addr::UNSPECIFIED);
    truncated.truncate(60);
    let error = reply(answer(&service, &ids, &truncated, src, now));
    assert!(
        matches!(
            error,
            Response::Error {
                transaction_id: 7,
                ..
            }
        ),
        "{error:?}"
    );
    // The same packet from an address without that id is dropped.
    let other: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    assert_eq!(answer(&service, &ids, &truncated, other, now), None);
}

#[test]
fn passkey_from_url_data() {
    assert_eq!(passkey_of(b""), None);
    assert_eq!(passkey_of(b"/announce"), None);
    assert_eq!(passkey_of(b"/announce?x=1"), None);
    assert_eq!(passkey_of(b"/announce/abc"), Some("abc"));
    assert_eq!(passkey_of(b"/announce/abc?x=1"), Some("abc"));
    assert_eq!(passkey_of(b"/announce/a'b"), Some("a'b"));
    assert_eq!(passkey_of(b"/announce/\xff"), Some("\u{fffd}"));
    assert_eq!(passkey_of(b"/other/abc"), None);
    assert_eq!(passkey_of(b"/abc/announce?x"), Some("abc"));
}

#[test]
fn address_field_only_when_allowed() {
    let now = Instant::now();
    let ids = ConnectionIds::new(now);
    let src: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let viewer: SocketAddr = "10.0.0.9:5000".parse().unwrap();
    for (allow, expected) in [(false, "10.0.0.1:6881"), (true, "192.0.2.1:6881")] {
        let mut config = Config::default();
        config.announce.allow_ip_param = allow;
        let service = Service::new(config);
        let id = connect(&service, &ids, src, now);
        let claimed = announce(id, Ipv4Addr::new(192, 0, 2, 1));
        answer(&service, &ids, &claimed, src, now).unwrap();
        let mut other = announce(connect(&service, &ids, viewer, now), Ipv4Addr::UNSPECIFIED);
        // Another peer id, so that the viewer is a different peer.
        other[36] ^= 1;
        match reply(answer(&service, &ids, &other, viewer, now)) {
            Response::Announce { peers, .. } => {
                assert_eq!(peers, [expected.parse::<SocketAddr>().unwrap()]);
            }
            other => panic!("{other:?}"),
        }
    }
}

/// A private `stopped` with BEP 41 URL data is answered at once in every state a
/// client may be in when it quits (libtorrent waits up to `stop_tracker_timeout`, 5 s,
/// for this answer before its session ends): after the user hit the rate limit, for a
/// torrent that is not registered, from a peer the tracker never saw, and with an
/// expired connection id (an error, on which the client connects again).
#[test]
fn private_stopped_with_url_data_is_always_answered() {
    use rand::SeedableRng;

    use crate::config::Mode;
    use crate::private::{Passkey, Registry, Torrent, TorrentId, UploadMultiplier, User, UserId};

    let mut config = Config {
        mode: Mode::Private,
        ..Config::default()
    };
    config.private.rate_limit_burst = 1;
    config.private.rate_limit_per_minute = 1;
    let service = Service::new(config);
    let passkey = Passkey::generate(&mut rand::rngs::StdRng::seed_from_u64(5));
    let mut registry = Registry::new();
    registry
        .add_user(User {
            id: UserId(1),
            name: "alice".to_owned(),
            passkey,
            disabled: None,
        })
        .unwrap();
    registry
        .add_torrent(Torrent {
            id: TorrentId(1),
            info_hash: InfoHash::from_bytes([1; 20]),
            freeleech: false,
            upload_multiplier: UploadMultiplier::ONE,
        })
        .unwrap();
    service.private().unwrap().reload(registry);

    let t0 = Instant::now();
    let ids = ConnectionIds::new(t0);
    let src: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let id = connect(&service, &ids, src, t0);
    let url = format!("/announce/{}", passkey.as_str());
    let packet = |event, info_hash: u8, peer: u8, url: &str| {
        Request::Announce(AnnounceRequest {
            connection_id: id,
            transaction_id: 7,
            info_hash: InfoHash::from_bytes([info_hash; 20]),
            peer_id: PeerId::from_bytes([peer; 20]),
            downloaded: 0,
            left: 10,
            uploaded: 100,
            event,
            ip: Ipv4Addr::UNSPECIFIED,
            key: 0,
            num_want: -1,
            port: 6881,
            url_data: url.as_bytes().to_vec(),
        })
        .encode()
    };
    let is_announce = |r: &Response| {
        matches!(
            r,
            Response::Announce {
                transaction_id: 7,
                ..
            }
        )
    };
    let started = reply(answer(
        &service,
        &ids,
        &packet(Some(AnnounceEvent::Started), 1, 2, &url),
        src,
        t0,
    ));
    assert!(is_announce(&started), "{started:?}");
    // The user's one token is spent: a regular announce is refused ...
    let limited = reply(answer(&service, &ids, &packet(None, 1, 2, &url), src, t0));
    assert!(
        matches!(&limited, Response::Error { message, .. } if message.contains("rate limit")),
        "{limited:?}"
    );
    // ... but `stopped` is answered with success, as are a `stopped` of a peer never
    // seen, of an unregistered torrent, and URL data with a query.
    let stopped = Some(AnnounceEvent::Stopped);
    let with_query = format!("{url}?key=1");
    for (info_hash, peer, url) in [
        (1, 2, &url),
        (1, 9, &url),
        (7, 2, &url),
        (1, 3, &with_query),
    ] {
        let answered = reply(answer(
            &service,
            &ids,
            &packet(stopped, info_hash, peer, url),
            src,
            t0,
        ));
        assert!(
            is_announce(&answered),
            "{info_hash} {peer} {url}: {answered:?}"
        );
    }
    // An expired connection id gets an error at once (the client connects again).
    let late = t0 + Duration::from_secs(240);
    let expired = reply(answer(
        &service,
        &ids,
        &packet(stopped, 1, 2, &url),
        src,
        late,
    ));
    assert_eq!(
        expired,
        Response::Error {
            transaction_id: 7,
            message: EXPIRED.to_owned()
        }
    );
}

/// The workers answer over a real socket, several datagrams at once, and all end when
/// the stop signal turns true.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_serve_a_socket_and_stop() {
    let server = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    server.set_nonblocking(true).unwrap();
    let addr = server.local_addr().unwrap();
    let socket = UdpSocket::from_std(server).unwrap();
    let service = Arc::new(Service::new(Config::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    spawn(socket, Arc::clone(&service), stop_rx, &mut tasks);
    assert!(!tasks.is_empty());

    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    client.connect(addr).await.unwrap();
    let mut buf = [0u8; 2048];
    // A burst of connects (a garbage datagram among them, dropped), each answered once.
    client.send(b"garbage").await.unwrap();
    for t in 0..16 {
        let packet = Request::Connect { transaction_id: t }.encode();
        client.send(&packet).await.unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 16 {
        let len = tokio::time::timeout(Duration::from_secs(10), client.recv(&mut buf))
            .await
            .expect("a connect reply")
            .unwrap();
        match Response::decode(&buf[..len], Family::V4).unwrap() {
            Response::Connect { transaction_id, .. } => assert!(seen.insert(transaction_id)),
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!(seen, (0..16).collect());

    stop_tx.send(true).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
    })
    .await;
    assert!(ended.is_ok(), "the UDP workers did not stop");
}
