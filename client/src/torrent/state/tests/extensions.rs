//! Extensions: serving the info dict (BEP 9) and peer exchange (BEP 11).

use std::net::SocketAddr;

use rill_common::wire::extension::{
    MetadataMessage, PexFlags, PexMessage, PexPeer, UT_METADATA, UT_PEX,
};

use super::*;
use crate::metadata::OUR_UT_METADATA;
use crate::pex::{MAX_PEX_TAKEN, OUR_UT_PEX, PEX_FIRST_DELAY, PEX_INTERVAL, PEX_MIN_GAP};
use crate::torrent::state::Config;
use crate::torrent::state::extensions::metadata_answer_cap;

/// The ids test peers receive the extensions under.
const THEIR_METADATA: u8 = 3;
const THEIR_PEX: u8 = 4;

/// An extended handshake announcing both extensions and listen port `port`.
fn their_handshake(port: u16) -> Message {
    let ext = ExtendedHandshake {
        messages: [
            (UT_METADATA.to_owned(), THEIR_METADATA),
            (UT_PEX.to_owned(), THEIR_PEX),
        ]
        .into(),
        port: Some(port),
        ..Default::default()
    };
    Message::Extended {
        id: 0,
        payload: ext.to_bytes(),
    }
}

fn our_handshake(out: &[Action], key: u32) -> ExtendedHandshake {
    let msgs = sent(out, key);
    let payload = msgs
        .iter()
        .find_map(|m| match m {
            Message::Extended { id: 0, payload } => Some(payload.clone()),
            _ => None,
        })
        .expect("extended handshake");
    ExtendedHandshake::decode(&payload).unwrap()
}

fn metadata(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 253) as u8).collect::<Vec<u8>>())
}

fn with_metadata(len: usize, private: bool) -> Harness {
    let mut cfg = config(peer_id(OURS));
    cfg.metadata = Some(metadata(len));
    cfg.private = private;
    Harness::with_config(cfg, 3 * 32768 + 20000, 32768, |_| true)
}

/// Like [`with_metadata`], lacking the last piece (so a seed peer stays useful).
fn almost_seed(private: bool) -> Harness {
    let mut cfg = config(peer_id(OURS));
    cfg.metadata = Some(metadata(100));
    cfg.private = private;
    Harness::with_config(cfg, 3 * 32768 + 20000, 32768, |i| i < 3)
}

/// The ut_metadata answers sent to `key`.
fn metadata_sent(out: &[Action], key: u32) -> Vec<MetadataMessage> {
    sent(out, key)
        .into_iter()
        .filter_map(|m| match m {
            Message::Extended { id, payload } if id == THEIR_METADATA => {
                MetadataMessage::decode(&payload).ok()
            }
            _ => None,
        })
        .collect()
}

/// The PEX messages sent to `key`.
fn pex_sent(out: &[Action], key: u32) -> Vec<PexMessage> {
    sent(out, key)
        .into_iter()
        .filter_map(|m| match m {
            Message::Extended { id, payload } if id == THEIR_PEX => {
                Some(PexMessage::decode(&payload).unwrap())
            }
            _ => None,
        })
        .collect()
}

fn request_metadata(piece: u32) -> Message {
    Message::Extended {
        id: OUR_UT_METADATA,
        payload: MetadataMessage::Request { piece }.to_bytes(),
    }
}

#[test]
fn our_handshake_announces_metadata_and_pex_but_no_pex_when_private() {
    let mut h = with_metadata(40000, false);
    let ext = our_handshake(&h.connect(1, 1, true, true), 1);
    assert_eq!(ext.id_of(UT_METADATA), Some(OUR_UT_METADATA));
    assert_eq!(ext.id_of(UT_PEX), Some(OUR_UT_PEX));
    assert_eq!(ext.metadata_size, Some(40000));
    let mut h = with_metadata(40000, true);
    let ext = our_handshake(&h.connect(1, 1, true, true), 1);
    assert_eq!(ext.id_of(UT_METADATA), Some(OUR_UT_METADATA));
    assert_eq!(
        ext.id_of(UT_PEX),
        None,
        "BEP 27: no PEX for a private torrent"
    );
    // Without the dict: ut_metadata announced (requests get rejects), no size.
    let mut h = Harness::leecher();
    let ext = our_handshake(&h.connect(1, 1, true, true), 1);
    assert_eq!(ext.id_of(UT_METADATA), Some(OUR_UT_METADATA));
    assert_eq!(ext.metadata_size, None);
}

#[test]
fn metadata_requests_get_16_kib_pieces_rejects_and_a_cap() {
    let dict = metadata(40000);
    let mut h = with_metadata(40000, false);
    h.connect(1, 1, true, true);
    // Before its handshake we do not know its id: nothing to answer with.
    assert!(metadata_sent(&h.recv(1, request_metadata(0)), 1).is_empty());
    h.recv(1, their_handshake(7000));
    let answers = metadata_sent(&h.recv(1, request_metadata(2)), 1);
    assert_eq!(
        answers,
        [MetadataMessage::Data {
            piece: 2,
            total_size: 40000,
            data: dict.slice(32768..40000),
        }]
    );
    let answers = metadata_sent(&h.recv(1, request_metadata(3)), 1);
    assert_eq!(answers, [MetadataMessage::Reject { piece: 3 }]);
    // 3 pieces: 2 × 3 + 8 answers in all, then silence.
    let cap = metadata_answer_cap(Some(&dict));
    assert_eq!(cap, 14);
    let answered = (0..100)
        .filter(|_| !metadata_sent(&h.recv(1, request_metadata(0)), 1).is_empty())
        .count();
    assert_eq!(answered, cap as usize - 2);
    assert!(disconnected(&h.recv(1, request_metadata(0)), 1).is_none());
    // A torrent without the dict rejects.
    let mut h = Harness::leecher();
    h.connect(1, 1, true, true);
    h.recv(1, their_handshake(7000));
    let answers = metadata_sent(&h.recv(1, request_metadata(0)), 1);
    assert_eq!(answers, [MetadataMessage::Reject { piece: 0 }]);
    // Garbage closes the connection.
    let out = h.recv(
        1,
        Message::Extended {
            id: OUR_UT_METADATA,
            payload: Bytes::from_static(b"d8:msg_typei9ee"),
        },
    );
    assert!(matches!(disconnected(&out, 1), Some(Reason::Protocol(_))));
}

/// A seed with peers 1..=3 connected (1 and 2 incoming, telling their listen ports; 3
/// dialled by us), all speaking ut_pex; peer 2 is a seed.
fn three_peers(private: bool) -> Harness {
    let mut h = almost_seed(private);
    h.handle(Event::Start);
    h.connect(1, 1, true, true);
    h.recv(1, their_handshake(7001));
    h.connect(2, 2, true, true);
    h.recv(2, their_handshake(7002));
    h.recv(2, Message::HaveAll);
    h.handle(Event::PeersFound(vec![addr("10.0.0.3:7003")]));
    h.handle(Event::Connected {
        peer: PeerKey(3),
        addr: addr("10.0.0.3:7003"),
        handshake: handshake(3, true, true),
        outgoing: true,
    });
    h.recv(3, their_handshake(7003));
    h
}

#[test]
fn pex_lists_the_other_peers_once_a_minute_with_flags() {
    let mut h = three_peers(false);
    let mut first = Vec::new();
    for _ in 0..PEX_FIRST_DELAY.as_secs() {
        first.extend(pex_sent(&h.advance(Duration::from_secs(1)), 1));
    }
    let [message] = &first[..] else {
        panic!("one PEX message: {first:?}");
    };
    let peer = |s: &str, flags: PexFlags| PexPeer {
        addr: addr(s),
        flags,
    };
    assert_eq!(
        message.added,
        [
            peer("10.0.0.2:7002", PexFlags::SEED),
            peer("10.0.0.3:7003", PexFlags::REACHABLE),
        ],
        "the others, not peer 1 itself"
    );
    assert!(message.dropped.is_empty());
    h.handle(Event::Disconnected(PeerKey(2)));
    let mut later = Vec::new();
    let mut waited = Duration::ZERO;
    while later.is_empty() {
        waited += Duration::from_secs(1);
        later.extend(pex_sent(&h.advance(Duration::from_secs(1)), 1));
        assert!(waited <= PEX_INTERVAL);
    }
    assert_eq!(waited, PEX_INTERVAL, "at most one message a minute");
    assert_eq!(later[0].dropped, [addr("10.0.0.2:7002")]);
    assert!(later[0].added.is_empty());
}

fn pex_from(n: usize) -> Message {
    let message = PexMessage {
        added: (0..n)
            .map(|i| PexPeer {
                addr: SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8 + 1], 6881)),
                flags: PexFlags::default(),
            })
            .collect(),
        dropped: Vec::new(),
    };
    Message::Extended {
        id: OUR_UT_PEX,
        payload: message.to_bytes().unwrap(),
    }
}

fn dials(out: &[Action]) -> Vec<SocketAddr> {
    out.iter()
        .filter_map(|a| match a {
            Action::Connect(a) => Some(*a),
            _ => None,
        })
        .collect()
}

#[test]
fn received_pex_feeds_the_connect_queue_capped_and_not_flooded() {
    let mut h = Harness::leecher();
    h.handle(Event::Start);
    h.connect(1, 1, true, true);
    h.recv(1, their_handshake(7001));
    let out = h.recv(1, pex_from(120));
    assert_eq!(dials(&out).len(), 8, "dialled within the half-open cap");
    let mut all = dials(&out);
    for a in dials(&out) {
        all.extend(dials(&h.handle(Event::ConnectFailed(a))));
    }
    // Failures free slots until every taken address was dialled: exactly the cap.
    let mut i = 0;
    while i < all.len() {
        let more = dials(&h.handle(Event::ConnectFailed(all[i])));
        all.extend(more);
        i += 1;
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), MAX_PEX_TAKEN);
    // A second message right away is a flood: ignored.
    h.handle(Event::PeersFound(Vec::new()));
    h.now += PEX_MIN_GAP / 2;
    let flood = h.recv(1, pex_from(3));
    assert!(dials(&flood).is_empty());
    // Malformed PEX closes the connection.
    h.now += PEX_MIN_GAP;
    let out = h.recv(
        1,
        Message::Extended {
            id: OUR_UT_PEX,
            payload: Bytes::from_static(b"d5:added3:abce"),
        },
    );
    assert!(matches!(disconnected(&out, 1), Some(Reason::Protocol(_))));
}

#[test]
fn a_private_torrent_neither_sends_nor_takes_pex() {
    let mut h = three_peers(true);
    for _ in 0..2 * PEX_INTERVAL.as_secs() {
        let out = h.advance(Duration::from_secs(1));
        for key in 1..=3 {
            assert!(pex_sent(&out, key).is_empty());
        }
    }
    let mut h = Harness::with_config(
        Config {
            private: true,
            ..config(peer_id(OURS))
        },
        3 * 32768 + 20000,
        32768,
        |_| false,
    );
    h.handle(Event::Start);
    h.connect(1, 1, true, true);
    h.recv(1, their_handshake(7001));
    assert!(dials(&h.recv(1, pex_from(10))).is_empty());
}
