//! Tests of the HTTP tracker client against a fake tracker on loopback (and HTTPS with a
//! self-signed certificate).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::{
    AnnounceReply, AnnounceRequest as Query, HttpTrackerError, Peer, ScrapeReply, ScrapeStats,
};
use rill_common::{InfoHash, PeerId};

use super::*;
use crate::announce::fake::{FakeHttp, ok, response};

fn request() -> Request {
    Request {
        info_hash: InfoHash::from_bytes([0xAB; 20]),
        peer_id: PeerId::from_bytes(*b"-RL0100-abcdefghijkl"),
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Some(AnnounceEvent::Started),
        numwant: Some(50),
        key: 0x1234_ABCD,
        tracker_id: None,
    }
}

fn client() -> HttpClient {
    HttpClient::new(&HttpConfig::default()).expect("client")
}

fn success(reply: AnnounceReply) -> Vec<u8> {
    AnnounceResponse::Success(reply).to_bytes(true, false)
}

fn v4(a: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 0, 0, a), port))
}

#[tokio::test]
async fn announce_sends_the_query_and_reads_compact_peers() {
    let body = success(AnnounceReply {
        interval: 900,
        min_interval: Some(60),
        complete: Some(5),
        incomplete: Some(7),
        peers: vec![
            Peer {
                addr: v4(1, 1000),
                peer_id: None,
            },
            Peer {
                addr: v4(2, 2000),
                peer_id: None,
            },
        ],
        ..AnnounceReply::default()
    });
    let mut fake = FakeHttp::start(move |_| ok(&body)).await;
    let url = format!("{}/announce", fake.base);
    let reply = client().announce(&url, &request()).await.expect("reply");
    assert_eq!(reply.interval, 900);
    assert_eq!(reply.min_interval, Some(60));
    assert_eq!((reply.seeders, reply.leechers), (Some(5), Some(7)));
    assert_eq!(reply.peers, vec![v4(1, 1000), v4(2, 2000)]);
    assert_eq!(reply.warning, None);

    let target = fake.next_target().await;
    let query = target.strip_prefix("/announce?").expect("announce path");
    let sent = Query::from_query(query.as_bytes()).expect("a valid announce");
    assert_eq!(sent.info_hash, request().info_hash);
    assert_eq!(sent.peer_id, request().peer_id);
    assert_eq!(sent.port, 6881);
    assert_eq!((sent.uploaded, sent.downloaded, sent.left), (1, 2, 3));
    assert_eq!(sent.event, Some(AnnounceEvent::Started));
    assert!(sent.compact);
    assert_eq!(sent.numwant, Some(50));
    assert_eq!(sent.key.as_deref(), Some("1234ABCD"));
    assert_eq!(sent.tracker_id, None);
}

#[tokio::test]
async fn passkey_query_and_tracker_id_are_sent() {
    let body = success(AnnounceReply {
        interval: 900,
        ..AnnounceReply::default()
    });
    let mut fake = FakeHttp::start(move |_| ok(&body)).await;
    let url = format!("{}/announce.php?passkey=s3cret", fake.base);
    let mut req = request();
    req.tracker_id = Some(b"tid 1".to_vec());
    req.event = None;
    req.numwant = None;
    client().announce(&url, &req).await.expect("reply");
    let target = fake.next_target().await;
    let query = target
        .strip_prefix("/announce.php?passkey=s3cret&")
        .expect("the passkey kept first");
    let sent = Query::from_query(query.as_bytes()).expect("valid");
    assert_eq!(sent.tracker_id.as_deref(), Some(&b"tid 1"[..]));
    assert_eq!(sent.event, None);
    assert_eq!(sent.numwant, None);
}

#[tokio::test]
async fn dictionary_peers_and_peers6_are_read() {
    let dictionary = b"d8:intervali60e5:peersld2:ip8:10.0.0.97:peer id20:-XX0000-abcdefghijkl4:porti6881eed2:ip3:::14:porti7000eed2:ip9:localhost4:porti1eeee";
    let peers6 = {
        let mut raw = Vec::new();
        rill_common::compact::encode_peer("[2001:db8::1]:51413".parse().expect("addr"), &mut raw);
        let mut body = b"d8:intervali60e5:peers6:".to_vec();
        rill_common::compact::encode_peer(v4(3, 3000), &mut body);
        body.extend_from_slice(format!("6:peers6{}:", raw.len()).as_bytes());
        body.extend_from_slice(&raw);
        body.push(b'e');
        body
    };
    let fake = FakeHttp::start(move |target| {
        if target.starts_with("/dict") {
            ok(dictionary)
        } else {
            ok(&peers6)
        }
    })
    .await;
    let reply = client()
        .announce(&format!("{}/dict/announce", fake.base), &request())
        .await
        .expect("dictionary reply");
    let expected: Vec<SocketAddr> = vec![
        "10.0.0.9:6881".parse().expect("addr"),
        "[::1]:7000".parse().expect("addr"),
    ];
    assert_eq!(reply.peers, expected, "host names are skipped");
    let reply = client()
        .announce(&format!("{}/v6/announce", fake.base), &request())
        .await
        .expect("peers6 reply");
    let expected: Vec<SocketAddr> = vec![v4(3, 3000), "[2001:db8::1]:51413".parse().expect("addr")];
    assert_eq!(reply.peers, expected);
}

#[tokio::test]
async fn failure_reason_is_a_refusal_with_the_trackers_text() {
    let fake = FakeHttp::start(|target| {
        let body = b"d14:failure reason17:torrent not founde";
        if target.starts_with("/bad") {
            response(400, body)
        } else {
            ok(body)
        }
    })
    .await;
    for path in ["/announce", "/bad/announce"] {
        let error = client()
            .announce(&format!("{}{path}", fake.base), &request())
            .await
            .expect_err("a refusal");
        assert!(
            matches!(&error, AnnounceError::Refused(text) if text == "torrent not found"),
            "{path}: {error:?}"
        );
        assert_eq!(error.to_string(), "tracker refused: torrent not found");
    }
}

#[tokio::test]
async fn warning_message_is_kept() {
    let body = success(AnnounceReply {
        interval: 60,
        warning_message: Some("upgrade your client".to_owned()),
        tracker_id: Some(b"xyz".to_vec()),
        ..AnnounceReply::default()
    });
    let fake = FakeHttp::start(move |_| ok(&body)).await;
    let reply = client()
        .announce(&format!("{}/announce", fake.base), &request())
        .await
        .expect("reply");
    assert_eq!(reply.warning.as_deref(), Some("upgrade your client"));
    assert_eq!(reply.tracker_id.as_deref(), Some(&b"xyz"[..]));
}

#[tokio::test]
async fn bad_replies_are_clear_errors() {
    let fake = FakeHttp::start(|target| match target.split('?').next().unwrap_or("") {
        "/garbage/announce" => ok(b"<html>not bencode</html>"),
        "/list/announce" => ok(b"li1ee"),
        "/nointerval/announce" => ok(b"d5:peers0:e"),
        "/ragged/announce" => ok(b"d8:intervali60e5:peers5:abcdee"),
        "/status/announce" => response(503, b"busy"),
        "/truncated/announce" => {
            let mut raw = response(200, b"d8:intervali60e5:peers0:e");
            raw.truncate(raw.len() - 5);
            raw
        }
        "/cut/announce" => {
            // Claims more than it sends, then closes.
            let mut raw =
                b"HTTP/1.1 200 X\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_vec();
            raw.extend_from_slice(b"d8:interval");
            raw
        }
        _ => response(404, b""),
    })
    .await;
    let announce = |path: &'static str| {
        let url = format!("{}{path}", fake.base);
        async move { client().announce(&url, &request()).await }
    };
    let error = announce("/garbage/announce").await.expect_err("garbage");
    assert!(
        matches!(
            error,
            AnnounceError::InvalidHttp(HttpTrackerError::Bencode(_))
        ),
        "{error:?}"
    );
    let error = announce("/list/announce").await.expect_err("a list");
    assert!(
        matches!(
            error,
            AnnounceError::InvalidHttp(HttpTrackerError::NotADict(_))
        ),
        "{error:?}"
    );
    let error = announce("/nointerval/announce")
        .await
        .expect_err("no interval");
    assert!(
        matches!(
            error,
            AnnounceError::InvalidHttp(HttpTrackerError::MissingKey("interval"))
        ),
        "{error:?}"
    );
    let error = announce("/ragged/announce").await.expect_err("ragged");
    assert!(
        matches!(
            error,
            AnnounceError::InvalidHttp(HttpTrackerError::InvalidKey { key: "peers", .. })
        ),
        "{error:?}"
    );
    let error = announce("/status/announce").await.expect_err("503");
    assert!(matches!(error, AnnounceError::Status(503)), "{error:?}");
    let error = announce("/nowhere/announce").await.expect_err("404");
    assert!(matches!(error, AnnounceError::Status(404)), "{error:?}");
    let error = announce("/truncated/announce")
        .await
        .expect_err("truncated");
    assert!(matches!(error, AnnounceError::Network(_)), "{error:?}");
    let error = announce("/cut/announce").await.expect_err("cut");
    assert!(matches!(error, AnnounceError::Network(_)), "{error:?}");
}

#[tokio::test]
async fn oversized_replies_are_refused_before_decoding() {
    let big = vec![b'x'; 5000];
    let fake = FakeHttp::start(move |target| {
        if target.starts_with("/length") {
            ok(&big)
        } else {
            // No Content-Length: the body runs to the end of the connection.
            let mut raw = b"HTTP/1.1 200 X\r\nConnection: close\r\n\r\n".to_vec();
            raw.extend_from_slice(&big);
            raw
        }
    })
    .await;
    let config = HttpConfig {
        max_reply: 4096,
        ..HttpConfig::default()
    };
    let client = HttpClient::new(&config).expect("client");
    for path in ["/length/announce", "/stream/announce"] {
        let error = client
            .announce(&format!("{}{path}", fake.base), &request())
            .await
            .expect_err("too large");
        assert!(
            matches!(error, AnnounceError::TooLarge { max: 4096 }),
            "{path}: {error:?}"
        );
    }
}

#[tokio::test]
async fn redirects_are_followed_but_bounded() {
    let body = success(AnnounceReply {
        interval: 77,
        ..AnnounceReply::default()
    });
    let fake = Arc::new(std::sync::OnceLock::<String>::new());
    let base = fake.clone();
    let server = FakeHttp::start(move |target| {
        let base = base.get().cloned().unwrap_or_default();
        let redirect = |to: &str| {
            format!(
                "HTTP/1.1 302 X\r\nLocation: {base}{to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .into_bytes()
        };
        if target.starts_with("/old/") {
            redirect(&target.replacen("/old/", "/new/", 1))
        } else if target.starts_with("/loop/") {
            redirect(target)
        } else {
            ok(&body)
        }
    })
    .await;
    fake.set(server.base.clone()).expect("set once");
    let reply = client()
        .announce(&format!("{}/old/announce", server.base), &request())
        .await
        .expect("one redirect followed");
    assert_eq!(reply.interval, 77);
    let error = client()
        .announce(&format!("{}/loop/announce", server.base), &request())
        .await
        .expect_err("endless redirects");
    assert!(matches!(error, AnnounceError::Network(_)), "{error:?}");
}

#[tokio::test]
async fn an_unanswered_request_times_out() {
    // Accepts connections but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let config = HttpConfig {
        timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let client = HttpClient::new(&config).expect("client");
    let error = client
        .announce(&format!("http://{addr}/announce"), &request())
        .await
        .expect_err("no answer");
    assert!(matches!(error, AnnounceError::Timeout), "{error:?}");
    hold.abort();
}

#[tokio::test]
async fn connection_refused_is_a_network_error_without_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let error = client()
        .announce(
            &format!("http://{addr}/announce?passkey=s3cret"),
            &request(),
        )
        .await
        .expect_err("refused");
    assert!(matches!(error, AnnounceError::Network(_)), "{error:?}");
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

#[tokio::test]
async fn scrape_reads_this_torrents_counts() {
    let hash = request().info_hash;
    let mut files = std::collections::BTreeMap::new();
    files.insert(
        hash,
        ScrapeStats {
            complete: 4,
            downloaded: 9,
            incomplete: 2,
            name: None,
        },
    );
    let body = ScrapeResponse::Success(ScrapeReply {
        files,
        min_request_interval: None,
    })
    .to_bytes();
    let mut fake = FakeHttp::start(move |target| {
        if target.starts_with("/scrape.php?pk=1&info_hash=") {
            ok(&body)
        } else if target.starts_with("/empty/scrape") {
            ok(b"d5:filesdee")
        } else {
            response(404, b"")
        }
    })
    .await;
    let counts = client()
        .scrape(&format!("{}/announce.php?pk=1", fake.base), hash)
        .await
        .expect("scrape");
    assert_eq!(
        counts,
        ScrapeCounts {
            seeders: 4,
            leechers: 2,
            completed: 9
        }
    );
    let target = fake.next_target().await;
    assert!(target.ends_with(&format!(
        "info_hash={}",
        rill_common::tracker::http::percent_encode_bytes(hash.as_bytes())
    )));
    let counts = client()
        .scrape(&format!("{}/empty/announce", fake.base), hash)
        .await
        .expect("scrape");
    assert_eq!(counts, ScrapeCounts::default());
    let error = client()
        .scrape(&format!("{}/tracker", fake.base), hash)
        .await
        .expect_err("no scrape URL");
    assert!(matches!(error, AnnounceError::NoScrape(_)), "{error:?}");
}

/// A one-connection-at-a-time HTTPS tracker with a self-signed certificate for 127.0.0.1.
async fn https_tracker(body: Vec<u8>) -> (String, Vec<u8>, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::rustls;

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("self-signed certificate");
    let cert_der = certified.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone().into()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("https://{}/announce", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(stream).await else {
                continue;
            };
            let mut buf = vec![0; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tls.write_all(&ok(&body)).await;
            let _ = tls.shutdown().await;
        }
    });
    (url, cert_der, task)
}

#[tokio::test]
async fn https_with_a_trusted_certificate() {
    let body = success(AnnounceReply {
        interval: 1234,
        peers: vec![Peer {
            addr: v4(8, 8000),
            peer_id: None,
        }],
        ..AnnounceReply::default()
    });
    let (url, cert, task) = https_tracker(body).await;
    let config = HttpConfig {
        root_certificates: vec![cert],
        ..HttpConfig::default()
    };
    let reply = HttpClient::new(&config)
        .expect("client")
        .announce(&url, &request())
        .await
        .expect("HTTPS announce");
    assert_eq!(reply.interval, 1234);
    assert_eq!(reply.peers, vec![v4(8, 8000)]);
    // Without the certificate, the handshake fails.
    let error = client()
        .announce(&url, &request())
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(error, AnnounceError::Network(_)), "{error:?}");
    task.abort();
}
