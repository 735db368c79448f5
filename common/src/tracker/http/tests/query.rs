//! Announce and scrape queries: hand-written client queries, strict errors, URLs.

use super::*;

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
    let q = format!("{}&numwant=99999999999", minimal());
    let req = AnnounceRequest::from_query(q.as_bytes()).unwrap();
    assert_eq!(req.numwant, Some(u32::MAX));
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
    assert_eq!(error_of(""), MissingParameter("info_hash"));
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
