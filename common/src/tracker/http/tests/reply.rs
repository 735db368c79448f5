//! Announce and scrape replies: known answers from BEP 3, 23, 7 and 48, sloppy trackers, caps.

use super::*;

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
