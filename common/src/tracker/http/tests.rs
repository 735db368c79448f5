//! Tests of the HTTP tracker codecs: hand-written client queries, known replies, round trips.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;

use super::*;
use crate::tracker::AnnounceEvent;
use crate::{InfoHash, PeerId};

/// 12 34 56 78 9a bc de f1 23 45 67 89 ab cd ef 12 34 56 78 9a: a hash whose bytes are a mix
/// of unreserved characters (0x34 '4', 0x56 'V', 0x78 'x', 0x45 'E', 0x67 'g') and escapes.
const HASH: [u8; 20] = [
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x12,
    0x34, 0x56, 0x78, 0x9a,
];
const HASH_ESCAPED: &str = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";

fn hash() -> InfoHash {
    InfoHash::from_bytes(HASH)
}

fn peer_id(text: &[u8; 20]) -> PeerId {
    PeerId::from_bytes(*text)
}

#[test]
fn percent_encoding_is_byte_wise() {
    assert_eq!(percent_encode_bytes(&HASH), HASH_ESCAPED);
    assert_eq!(percent_encode_bytes(b"a-b.c_d~e f/"), "a-b.c_d~e%20f%2F");
}

/// A libtorrent-style announce (lower-case escapes, unreserved bytes left bare), with the
/// extra parameters libtorrent sends (`corrupt`, `redundant`, `supportcrypto`).
#[test]
fn libtorrent_style_query() {
    let query = "info_hash=%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9a\
        &peer_id=-LT2090-%01%02%03defghijkl&port=6881&uploaded=0&downloaded=0\
        &left=1048576&corrupt=0&key=6A3F1B2C&event=started&numwant=200&compact=1\
        &no_peer_id=1&supportcrypto=1&redundant=0";
    let req = AnnounceRequest::from_query(query.as_bytes()).unwrap();
    assert_eq!(req.info_hash, hash());
    assert_eq!(req.peer_id, peer_id(b"-LT2090-\x01\x02\x03defghijkl"));
    assert_eq!(req.port, 6881);
    assert_eq!((req.uploaded, req.downloaded, req.left), (0, 0, 1_048_576));
    assert_eq!(req.event, Some(AnnounceEvent::Started));
    assert_eq!(req.numwant, Some(200));
    assert_eq!(req.key.as_deref(), Some("6A3F1B2C"));
    assert!(req.compact);
    assert!(req.no_peer_id);
    assert_eq!(req.ipv4, None);
}

/// A Transmission-style announce: upper-case escapes, `requirecrypto`, a BEP 7 `ipv6`.
#[test]
fn transmission_style_query() {
    let query = format!(
        "info_hash={HASH_ESCAPED}&peer_id=-TR4060-k8hj0wgej6ch&port=51413&uploaded=1024\
         &downloaded=2048&left=4096&numwant=80&key=1a2b3c4d&compact=1&supportcrypto=1\
         &requirecrypto=1&event=completed&ipv6=2001%3Adb8%3A%3A1"
    );
    let req = AnnounceRequest::from_query(query.as_bytes()).unwrap();
    assert_eq!(req.info_hash, hash());
    assert_eq!(req.peer_id, peer_id(b"-TR4060-k8hj0wgej6ch"));
    assert_eq!((req.uploaded, req.downloaded, req.left), (1024, 2048, 4096));
    assert_eq!(req.event, Some(AnnounceEvent::Completed));
    assert_eq!(req.numwant, Some(80));
    assert_eq!(
        req.ipv6,
        Some(SocketAddrV6::new(
            "2001:db8::1".parse().unwrap(),
            51413,
            0,
            0
        ))
    );
    assert!(!req.no_peer_id);
}

fn minimal() -> String {
    format!("info_hash={HASH_ESCAPED}&peer_id=-RL0100-abcdefghijkl&port=6881")
}

#[test]
fn optional_parameters_default() {
    let req = AnnounceRequest::from_query(minimal().as_bytes()).unwrap();
    assert_eq!((req.uploaded, req.downloaded, req.left), (0, 0, 0));
    assert_eq!(req.event, None);
    assert!(!req.compact);
    assert_eq!(req.numwant, None);
    // A leading `?` is tolerated.
    let with_mark = format!("?{}", minimal());
    assert_eq!(AnnounceRequest::from_query(with_mark.as_bytes()), Ok(req));
}

#[test]
fn events() {
    for (text, event) in [
        ("", None),
        ("empty", None),
        ("started", Some(AnnounceEvent::Started)),
        ("stopped", Some(AnnounceEvent::Stopped)),
        ("completed", Some(AnnounceEvent::Completed)),
        ("paused", Some(AnnounceEvent::Paused)),
    ] {
        let q = format!("{}&event={text}", minimal());
        assert_eq!(
            AnnounceRequest::from_query(q.as_bytes()).unwrap().event,
            event
        );
    }
    let q = format!("{}&event=bogus", minimal());
    assert!(matches!(
        AnnounceRequest::from_query(q.as_bytes()),
        Err(HttpTrackerError::InvalidParameter { name: "event", .. })
    ));
}

#[test]
fn endpoints_and_numwant() {
    let q = format!(
        "{}&ipv4=1.2.3.4%3A6000&ipv6=%5B2001%3Adb8%3A%3A2%5D%3A7000&numwant=-1",
        minimal()
    );
    let req = AnnounceRequest::from_query(q.as_bytes()).unwrap();
    assert_eq!(req.ipv4, Some("1.2.3.4:6000".parse().unwrap()));
    assert_eq!(req.ipv6, Some("[2001:db8::2]:7000".parse().unwrap()));
    assert_eq!(req.numwant, None);
    let q = format!("{}&ipv4=1.2.3.4", minimal());
    let req = AnnounceRequest::from_query(q.as_bytes()).unwrap();
    assert_eq!(
        req.ipv4,
        Some(SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 6881))
    );
}

fn error_of(query: &str) -> HttpTrackerError {
    AnnounceRequest::from_query(query.as_bytes()).unwrap_err()
}

#[test]
fn strict_errors_name_the_parameter() {
    use HttpTrackerError::*;
    let id = "peer_id=-RL0100-abcdefghijkl";
    let ih = format!("info_hash={HASH_ESCAPED}");
    assert_eq!(
        error_of(&format!("{id}&port=1")),
        MissingParameter("info_hash")
    );
    assert_eq!(
        error_of(&format!("{ih}&port=1")),
        MissingParameter("peer_id")
    );
    assert_eq!(error_of(&format!("{ih}&{id}")), MissingParameter("port"));
    assert!(matches!(
        error_of(&format!("info_hash=%12%34&{id}&port=1")),
        InvalidParameter {
            name: "info_hash",
            ..
        }
    ));
    assert!(matches!(
        error_of(&format!("{ih}&peer_id=short&port=1")),
        InvalidParameter {
            name: "peer_id",
            ..
        }
    ));
    for port in ["70000", "abc", "-1", ""] {
        assert!(matches!(
            error_of(&format!("{ih}&{id}&port={port}")),
            InvalidParameter { name: "port", .. }
        ));
    }
    for (name, value) in [
        ("uploaded", "-5"),
        ("downloaded", "1e3"),
        ("left", "x"),
        ("numwant", "lots"),
    ] {
        match error_of(&format!("{}&{name}={value}", minimal())) {
            InvalidParameter { name: got, .. } => assert_eq!(got, name),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        error_of(&format!("{}&ipv4=2001%3Adb8%3A%3A1", minimal())),
        InvalidParameter { name: "ipv4", .. }
    ));
    assert!(matches!(
        error_of(&format!("{}&ipv6=1.2.3.4", minimal())),
        InvalidParameter { name: "ipv6", .. }
    ));
    assert_eq!(
        error_of(&format!("{}&info_hash={HASH_ESCAPED}", minimal())),
        RepeatedParameter("info_hash")
    );
    assert_eq!(
        error_of(&format!("{}&peer_id=-RL0100-abcdefghijkl", minimal())),
        RepeatedParameter("peer_id")
    );
    assert_eq!(error_of("info_hash=%1g"), BadEscape(10));
    assert_eq!(error_of("port=1&x=%4"), BadEscape(9));
    let long = "a".repeat(MAX_ANNOUNCE_QUERY_LEN + 1);
    assert_eq!(
        error_of(&long),
        QueryTooLong {
            len: MAX_ANNOUNCE_QUERY_LEN + 1,
            max: MAX_ANNOUNCE_QUERY_LEN
        }
    );
}

#[test]
fn repeated_optional_parameter_first_wins() {
    let q = format!(
        "{}&port=7000&left=5&left=6&event=started&event=stopped",
        minimal()
    );
    let req = AnnounceRequest::from_query(q.as_bytes()).unwrap();
    assert_eq!(req.port, 6881);
    assert_eq!(req.left, 5);
    assert_eq!(req.event, Some(AnnounceEvent::Started));
}

#[test]
fn to_query_known_answer() {
    let mut req = AnnounceRequest::new(hash(), peer_id(b"-RL0100-abcdefghijkl"), 6881);
    req.left = 10;
    req.event = Some(AnnounceEvent::Started);
    req.numwant = Some(50);
    assert_eq!(
        req.to_query(),
        format!(
            "info_hash={HASH_ESCAPED}&peer_id=-RL0100-abcdefghijkl&port=6881&uploaded=0\
             &downloaded=0&left=10&compact=1&event=started&numwant=50"
        )
    );
}

#[test]
fn urls() {
    assert_eq!(
        append_query("http://t/announce", "a=1"),
        "http://t/announce?a=1"
    );
    assert_eq!(
        append_query("http://t/announce?pk=9", "a=1"),
        "http://t/announce?pk=9&a=1"
    );
    assert_eq!(
        append_query("http://t/announce?", "a=1"),
        "http://t/announce?a=1"
    );
    assert_eq!(
        append_query("http://t/a?pk=9&", "a=1"),
        "http://t/a?pk=9&a=1"
    );
    let req = AnnounceRequest::new(hash(), peer_id(b"-RL0100-abcdefghijkl"), 1);
    assert!(
        req.announce_url("http://t/ann?pk=x")
            .starts_with("http://t/ann?pk=x&info_hash=%124Vx")
    );

    assert_eq!(
        scrape_url("http://t/announce").as_deref(),
        Some("http://t/scrape")
    );
    assert_eq!(
        scrape_url("http://t:80/x/announce.php?pk=a/b").as_deref(),
        Some("http://t:80/x/scrape.php?pk=a/b")
    );
    assert_eq!(
        scrape_url("http://t/announce?x2%0644").as_deref(),
        Some("http://t/scrape?x2%0644")
    );
    assert_eq!(scrape_url("http://t/a"), None);
    assert_eq!(scrape_url("http://t/announce/pk"), None);
    assert_eq!(scrape_url("http://t/x%064announce"), None);
    assert_eq!(scrape_url("no slash announce"), None);
}

#[test]
fn scrape_query() {
    let other = InfoHash::from_bytes([0xff; 20]);
    let req = ScrapeRequest {
        info_hashes: vec![hash(), other],
    };
    let query = req.to_query();
    assert_eq!(
        query,
        format!("info_hash={HASH_ESCAPED}&info_hash={}", "%FF".repeat(20))
    );
    assert_eq!(
        ScrapeRequest::from_query(query.as_bytes(), 2),
        Ok(req.clone())
    );
    assert_eq!(
        ScrapeRequest::from_query(query.as_bytes(), 1),
        Err(HttpTrackerError::TooManyInfoHashes { count: 2, max: 1 })
    );
    assert!(matches!(
        ScrapeRequest::from_query(query.as_bytes(), 0),
        Err(HttpTrackerError::QueryTooLong { .. } | HttpTrackerError::TooManyInfoHashes { .. })
    ));
    assert!(matches!(
        ScrapeRequest::from_query(b"info_hash=abc", 5),
        Err(HttpTrackerError::InvalidParameter {
            name: "info_hash",
            ..
        })
    ));
    assert_eq!(
        req.scrape_url("http://t/scrape?pk=1"),
        format!("http://t/scrape?pk=1&{query}")
    );
    assert_eq!(
        ScrapeRequest::from_query(b"pk=1", 5),
        Ok(ScrapeRequest::default())
    );
}

fn v4(text: &str) -> Peer {
    Peer {
        addr: text.parse().unwrap(),
        peer_id: None,
    }
}

#[test]
fn compact_reply_known_answer() {
    let reply = AnnounceResponse::Success(AnnounceReply {
        interval: 1800,
        complete: Some(5),
        incomplete: Some(3),
        peers: vec![v4("1.2.3.4:6881"), v4("[::1]:6882")],
        ..AnnounceReply::default()
    });
    let bytes = reply.to_bytes(true, false);
    let mut expected = b"d8:completei5e10:incompletei3e8:intervali1800e5:peers6:\x01\x02\x03\x04\x1a\xe16:peers618:".to_vec();
    expected.extend_from_slice(&[0; 15]);
    expected.extend_from_slice(&[1, 0x1a, 0xe2, b'e']);
    assert_eq!(bytes, expected);
    assert_eq!(AnnounceResponse::from_bytes(&bytes), Ok(reply));

    let empty = AnnounceResponse::Success(AnnounceReply {
        interval: 60,
        ..AnnounceReply::default()
    });
    assert_eq!(empty.to_bytes(true, false), b"d8:intervali60e5:peers0:e");
}

#[test]
fn dictionary_reply() {
    let id = peer_id(b"-RL0100-abcdefghijkl");
    let reply = AnnounceResponse::Success(AnnounceReply {
        interval: 60,
        peers: vec![Peer {
            addr: "10.0.0.1:1".parse().unwrap(),
            peer_id: Some(id),
        }],
        ..AnnounceReply::default()
    });
    assert_eq!(
        reply.to_bytes(false, false),
        b"d8:intervali60e5:peersld2:ip8:10.0.0.17:peer id20:-RL0100-abcdefghijkl4:porti1eeee"
    );
    assert_eq!(
        reply.to_bytes(false, true),
        b"d8:intervali60e5:peersld2:ip8:10.0.0.14:porti1eeee"
    );
}

#[test]
fn dictionary_reply_from_a_sloppy_tracker() {
    // A host name (skipped), an IPv6 text address, a short peer id (dropped), a peer
    // without a port (skipped), a port out of range (skipped); unsorted keys.
    let bytes = b"d8:intervali900e5:peersl\
        d2:ip11:example.org4:porti1ee\
        d4:porti2e2:ip11:2001:db8::17:peer id3:abce\
        d2:ip7:1.2.3.4e\
        d2:ip7:1.2.3.44:porti70000ee\
        i5e\
        e15:warning message4:slowe";
    let AnnounceResponse::Success(reply) = AnnounceResponse::from_bytes(bytes).unwrap() else {
        panic!("not a success");
    };
    assert_eq!(reply.interval, 900);
    assert_eq!(reply.peers, vec![v4("[2001:db8::1]:2")]);
    assert_eq!(reply.warning_message.as_deref(), Some("slow"));
}

#[test]
fn reply_errors() {
    use HttpTrackerError::*;
    assert_eq!(
        AnnounceResponse::from_bytes(b"d14:failure reason4:nopee"),
        Ok(AnnounceResponse::Failure("nope".into()))
    );
    assert_eq!(
        AnnounceResponse::Failure("nope".into()).to_bytes(true, false),
        b"d14:failure reason4:nopee"
    );
    assert_eq!(
        AnnounceResponse::from_bytes(b"d5:peers0:e"),
        Err(MissingKey("interval"))
    );
    assert!(matches!(
        AnnounceResponse::from_bytes(b"d8:intervali-1ee"),
        Err(InvalidKey {
            key: "interval",
            ..
        })
    ));
    assert!(matches!(
        AnnounceResponse::from_bytes(b"d8:intervali1e5:peers5:abcdee"),
        Err(InvalidKey { key: "peers", .. })
    ));
    assert!(matches!(
        AnnounceResponse::from_bytes(b"d8:intervali1e6:peers65:abcdee"),
        Err(InvalidKey { key: "peers6", .. })
    ));
    assert_eq!(
        AnnounceResponse::from_bytes(b"i1e"),
        Err(NotADict("integer"))
    );
    assert!(matches!(
        AnnounceResponse::from_bytes(b"d8:interval"),
        Err(Bencode(_))
    ));
}

#[test]
fn reply_peer_cap() {
    let n = MAX_RESPONSE_PEERS + 10;
    let mut bytes = format!("d8:intervali1e5:peers{}:", n * 6).into_bytes();
    bytes.extend(std::iter::repeat_n(7u8, n * 6));
    bytes.extend_from_slice(b"6:peers618:");
    bytes.extend_from_slice(&[1; 18]);
    bytes.push(b'e');
    let AnnounceResponse::Success(reply) = AnnounceResponse::from_bytes(&bytes).unwrap() else {
        panic!("not a success");
    };
    assert_eq!(reply.peers.len(), MAX_RESPONSE_PEERS);
}

/// The example of BEP 48, with the hash spelled out.
#[test]
fn scrape_reply_known_answer() {
    let mut files = BTreeMap::new();
    files.insert(
        InfoHash::from_bytes(*b"...................."),
        ScrapeStats {
            complete: 5,
            downloaded: 50,
            incomplete: 10,
            name: None,
        },
    );
    let reply = ScrapeResponse::Success(ScrapeReply {
        files,
        min_request_interval: None,
    });
    let bytes =
        b"d5:filesd20:....................d8:completei5e10:downloadedi50e10:incompletei10eeee";
    assert_eq!(reply.to_bytes(), bytes);
    assert_eq!(ScrapeResponse::from_bytes(bytes), Ok(reply));

    let with_flags = b"d5:filesde5:flagsd20:min_request_intervali3600eee";
    assert_eq!(
        ScrapeResponse::from_bytes(with_flags),
        Ok(ScrapeResponse::Success(ScrapeReply {
            files: BTreeMap::new(),
            min_request_interval: Some(3600)
        }))
    );
    assert_eq!(
        ScrapeResponse::from_bytes(b"d14:failure reason3:no!e"),
        Ok(ScrapeResponse::Failure("no!".into()))
    );
    // A key that is not 20 bytes is skipped; a counter that is not an integer is an error.
    assert_eq!(
        ScrapeResponse::from_bytes(b"d5:filesd3:abcd8:completei1eeee"),
        Ok(ScrapeResponse::Success(ScrapeReply::default()))
    );
    assert!(matches!(
        ScrapeResponse::from_bytes(b"d5:filesd20:....................d8:complete1:xeee"),
        Err(HttpTrackerError::InvalidKey {
            key: "complete",
            ..
        })
    ));
    assert!(matches!(
        ScrapeResponse::from_bytes(b"d5:filesi1ee"),
        Err(HttpTrackerError::InvalidKey { key: "files", .. })
    ));
}

fn arb_info_hash() -> impl Strategy<Value = InfoHash> {
    any::<[u8; 20]>().prop_map(InfoHash::from_bytes)
}

fn arb_peer_id() -> impl Strategy<Value = PeerId> {
    any::<[u8; 20]>().prop_map(PeerId::from_bytes)
}

fn arb_v6() -> impl Strategy<Value = SocketAddrV6> {
    (any::<u128>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
}

fn arb_event() -> impl Strategy<Value = Option<AnnounceEvent>> {
    prop_oneof![
        Just(None),
        Just(Some(AnnounceEvent::Started)),
        Just(Some(AnnounceEvent::Completed)),
        Just(Some(AnnounceEvent::Stopped)),
        Just(Some(AnnounceEvent::Paused)),
    ]
}

prop_compose! {
    fn arb_announce()(
        info_hash in arb_info_hash(), peer_id in arb_peer_id(), port: u16,
        counters in any::<(u64, u64, u64)>(), event in arb_event(), flags in any::<(bool, bool)>(),
        numwant in any::<Option<u32>>(), key in any::<Option<String>>(),
        tracker_id in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
        ip in any::<Option<String>>(), ipv4 in any::<Option<SocketAddrV4>>(),
        ipv6 in proptest::option::of(arb_v6()), same_port in any::<(bool, bool)>(),
    ) -> AnnounceRequest {
        let fix_v4 = |a: SocketAddrV4| if same_port.0 { SocketAddrV4::new(*a.ip(), port) } else { a };
        let fix_v6 = |a: SocketAddrV6| if same_port.1 { SocketAddrV6::new(*a.ip(), port, 0, 0) } else { a };
        AnnounceRequest {
            info_hash, peer_id, port,
            uploaded: counters.0, downloaded: counters.1, left: counters.2,
            event, compact: flags.0, no_peer_id: flags.1, numwant, key, tracker_id, ip,
            ipv4: ipv4.map(fix_v4), ipv6: ipv6.map(fix_v6),
        }
    }
}

fn arb_peer() -> impl Strategy<Value = Peer> {
    let addr = prop_oneof![
        any::<SocketAddrV4>().prop_map(SocketAddr::V4),
        arb_v6().prop_map(SocketAddr::V6),
    ];
    (addr, proptest::option::of(arb_peer_id())).prop_map(|(addr, peer_id)| Peer { addr, peer_id })
}

prop_compose! {
    fn arb_reply()(
        interval: u32, min_interval: Option<u32>, complete: Option<u32>, incomplete: Option<u32>,
        tracker_id in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
        warning_message: Option<String>,
        peers in proptest::collection::vec(arb_peer(), 0..30),
    ) -> AnnounceReply {
        AnnounceReply { interval, min_interval, complete, incomplete, tracker_id, warning_message, peers }
    }
}

prop_compose! {
    fn arb_scrape_reply()(
        files in proptest::collection::btree_map(
            arb_info_hash(),
            (any::<(u32, u32, u32)>(), any::<Option<String>>()).prop_map(|((c, d, i), name)| {
                ScrapeStats { complete: c, downloaded: d, incomplete: i, name }
            }),
            0..10,
        ),
        min_request_interval: Option<u32>,
    ) -> ScrapeReply {
        ScrapeReply { files, min_request_interval }
    }
}

proptest! {
    #[test]
    fn announce_query_round_trip(req in arb_announce()) {
        let query = req.to_query();
        prop_assert_eq!(AnnounceRequest::from_query(query.as_bytes()), Ok(req));
    }

    #[test]
    fn scrape_query_round_trip(hashes in proptest::collection::vec(arb_info_hash(), 0..80)) {
        let req = ScrapeRequest { info_hashes: hashes };
        let query = req.to_query();
        prop_assert_eq!(ScrapeRequest::from_query(query.as_bytes(), 80), Ok(req));
    }

    #[test]
    fn dictionary_reply_round_trip(reply in arb_reply(), no_peer_id: bool) {
        let bytes = AnnounceResponse::Success(reply.clone()).to_bytes(false, no_peer_id);
        let mut expected = reply;
        if no_peer_id {
            expected.peers.iter_mut().for_each(|p| p.peer_id = None);
        }
        prop_assert_eq!(AnnounceResponse::from_bytes(&bytes), Ok(AnnounceResponse::Success(expected)));
    }

    #[test]
    fn compact_reply_round_trip(reply in arb_reply()) {
        let bytes = AnnounceResponse::Success(reply.clone()).to_bytes(true, false);
        let mut expected = reply;
        // Compact peers lose their ids, and IPv4 (`peers`) come before IPv6 (`peers6`).
        expected.peers.iter_mut().for_each(|p| p.peer_id = None);
        expected.peers.sort_by_key(|p| p.addr.is_ipv6());
        prop_assert_eq!(AnnounceResponse::from_bytes(&bytes), Ok(AnnounceResponse::Success(expected)));
    }

    #[test]
    fn failure_round_trip(reason: String, compact: bool) {
        let failure = AnnounceResponse::Failure(reason.clone());
        prop_assert_eq!(AnnounceResponse::from_bytes(&failure.to_bytes(compact, false)), Ok(failure));
        let failure = ScrapeResponse::Failure(reason);
        prop_assert_eq!(ScrapeResponse::from_bytes(&failure.to_bytes()), Ok(failure));
    }

    #[test]
    fn scrape_reply_round_trip(reply in arb_scrape_reply()) {
        let response = ScrapeResponse::Success(reply);
        prop_assert_eq!(ScrapeResponse::from_bytes(&response.to_bytes()), Ok(response));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = AnnounceRequest::from_query(&bytes);
        let _ = ScrapeRequest::from_query(&bytes, 5);
        let _ = AnnounceResponse::from_bytes(&bytes);
        let _ = ScrapeResponse::from_bytes(&bytes);
        let _ = scrape_url(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn query_like_bytes_never_panic(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("info_hash=".to_owned()), Just("peer_id=".to_owned()), Just("port=".to_owned()),
                Just("&".to_owned()), Just("%".to_owned()), Just("=".to_owned()),
                Just("ipv6=".to_owned()), "[0-9a-fA-F%]{0,6}",
            ],
            0..40,
        )
    ) {
        let query = parts.concat();
        let _ = AnnounceRequest::from_query(query.as_bytes());
        let _ = ScrapeRequest::from_query(query.as_bytes(), 3);
    }
}
