//! Property tests: random event sequences from several peers (hostile ones included:
//! garbage ranges, lengths and payloads) never panic and keep the invariants.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use rill_common::pieces::{BLOCK_SIZE, BlockRef, PieceIndex};
use rill_common::wire::Message;
use rill_common::wire::extension::{
    ExtendedHandshake, MetadataMessage, PexFlags, PexMessage, PexPeer,
};

use super::harness::*;
use super::{Action, Event};
use crate::torrent::PeerKey;

/// 6 pieces of 32 KiB, the last 10000 bytes; we have pieces 0 and 1.
const TOTAL: u64 = 5 * 32768 + 10000;
const PIECE_LEN: u32 = 32768;
const COUNT: u32 = 6;

#[derive(Clone, Debug)]
enum Op {
    Connect {
        key: u32,
        id: u8,
        fast: bool,
        ext: bool,
        outgoing: bool,
    },
    Message(u32, Msg),
    Disconnect(u32),
    Written,
    Verified(bool),
    Read {
        wrong_length: bool,
    },
    Tick(u64),
    Found(u8),
    DialFailed(u8),
}

#[derive(Clone, Debug)]
enum Msg {
    Plain(Message),
    /// The n-th block requested from this peer, answered.
    Answer(usize),
    /// The n-th block requested from this peer, rejected.
    Reject(usize),
}

fn block_ref() -> impl Strategy<Value = BlockRef> {
    (
        0..COUNT + 2,
        prop_oneof![
            Just(0u32),
            Just(BLOCK_SIZE),
            Just(BLOCK_SIZE - 1),
            any::<u32>()
        ],
        prop_oneof![
            Just(BLOCK_SIZE),
            Just(0u32),
            Just(BLOCK_SIZE + 1),
            Just(10000 - 8192),
            any::<u32>()
        ],
    )
        .prop_map(|(p, begin, length)| BlockRef {
            piece: PieceIndex(p),
            begin,
            length,
        })
}

/// A well-formed block of the torrent.
fn good_block() -> impl Strategy<Value = BlockRef> {
    (0..COUNT, 0u32..2).prop_map(|(p, n)| {
        let piece = PieceIndex(p);
        BlockRef::nth(piece, piece_len(piece), n).unwrap_or(BlockRef {
            piece,
            begin: 0,
            length: 10000,
        })
    })
}

/// Messages a well-behaved peer sends.
fn good_message() -> impl Strategy<Value = Message> {
    let piece = (0..COUNT).prop_map(PieceIndex);
    prop_oneof![
        1 => Just(Message::KeepAlive),
        1 => Just(Message::Choke),
        3 => Just(Message::Unchoke),
        3 => Just(Message::Interested),
        1 => Just(Message::NotInterested),
        3 => piece.clone().prop_map(Message::Have),
        1 => (0u8..64).prop_map(|b| Message::Bitfield(Bytes::from(vec![b << 2]))),
        1 => Just(Message::HaveAll),
        1 => Just(Message::HaveNone),
        5 => good_block().prop_map(Message::Request),
        1 => good_block().prop_map(Message::Cancel),
        1 => piece.clone().prop_map(Message::Suggest),
        1 => piece.prop_map(Message::AllowedFast),
        1 => any::<Option<u32>>().prop_map(|reqq| Message::Extended {
            id: 0,
            payload: ExtendedHandshake {
                messages: [("ut_metadata".to_owned(), 3), ("ut_pex".to_owned(), 4)].into(),
                request_queue: reqq,
                port: Some(7000),
                ..Default::default()
            }
            .to_bytes(),
        }),
        // BEP 9 requests for our (absent) dict, and BEP 11 peers.
        1 => (0u32..3).prop_map(|piece| Message::Extended {
            id: crate::metadata::OUR_UT_METADATA,
            payload: MetadataMessage::Request { piece }.to_bytes(),
        }),
        1 => (1u8..20).prop_map(|i| Message::Extended {
            id: crate::pex::OUR_UT_PEX,
            payload: PexMessage {
                added: vec![PexPeer {
                    addr: format!("10.0.3.{i}:6881").parse().unwrap(),
                    flags: PexFlags::SEED,
                }],
                dropped: Vec::new(),
            }
            .to_bytes()
            .unwrap(),
        }),
    ]
}

/// Garbage: out-of-range pieces, bad lengths and payloads.
fn bad_message() -> impl Strategy<Value = Message> {
    let piece = (0..COUNT + 2).prop_map(PieceIndex);
    prop_oneof![
        piece.clone().prop_map(Message::Have),
        prop::collection::vec(any::<u8>(), 0..3).prop_map(|b| Message::Bitfield(Bytes::from(b))),
        block_ref().prop_map(Message::Request),
        block_ref().prop_map(Message::Cancel),
        block_ref().prop_map(Message::RejectRequest),
        (block_ref(), 0usize..20000).prop_map(|(b, len)| Message::Piece {
            index: b.piece,
            begin: b.begin,
            data: Bytes::from(vec![0; len]),
        }),
        piece.clone().prop_map(Message::Suggest),
        piece.prop_map(Message::AllowedFast),
        any::<u16>().prop_map(Message::Port),
        (0u8..3, prop::collection::vec(any::<u8>(), 0..20)).prop_map(|(id, p)| {
            Message::Extended {
                id,
                payload: Bytes::from(p),
            }
        }),
        Just(Message::Unknown {
            id: 99,
            payload: Bytes::new(),
        }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u32..6;
    prop_oneof![
        2 => (key.clone(), 0u8..20, 0u8..5, any::<bool>(), any::<bool>())
            .prop_map(|(key, id, fast, ext, outgoing)| Op::Connect {
                key,
                // id 19 is ours; others may repeat (duplicates).
                id: if id == 19 { OURS } else { b'a' + id },
                fast: fast > 0,
                ext,
                outgoing,
            }),
        12 => (key.clone(), good_message()).prop_map(|(k, m)| Op::Message(k, Msg::Plain(m))),
        1 => (key.clone(), bad_message()).prop_map(|(k, m)| Op::Message(k, Msg::Plain(m))),
        8 => (key.clone(), 0usize..4).prop_map(|(k, n)| Op::Message(k, Msg::Answer(n))),
        1 => (key.clone(), 0usize..4).prop_map(|(k, n)| Op::Message(k, Msg::Reject(n))),
        1 => key.prop_map(Op::Disconnect),
        4 => Just(Op::Read { wrong_length: false }),
        4 => Just(Op::Written),
        3 => Just(Op::Verified(true)),
        1 => Just(Op::Verified(false)),
        1 => Just(Op::Read { wrong_length: true }),
        3 => (0u64..5).prop_map(Op::Tick),
        1 => (0u64..200).prop_map(|s| Op::Tick(s / 10)),
        1 => (0u8..4).prop_map(Op::Found),
        1 => (0u8..4).prop_map(Op::DialFailed),
    ]
}

/// What the test knows, to check the state's actions against.
#[derive(Default)]
struct Model {
    live: HashSet<u32>,
    /// Pieces each peer claimed (have, bitfield, have all).
    claimed: HashMap<u32, HashSet<u32>>,
    /// Requests sent to each peer, oldest first.
    requested: HashMap<u32, Vec<BlockRef>>,
    unchoked: HashSet<u32>,
    writes: VecDeque<BlockRef>,
    verifies: VecDeque<PieceIndex>,
    verifying: HashSet<PieceIndex>,
    reads: VecDeque<(PeerKey, BlockRef)>,
}

fn piece_len(p: PieceIndex) -> u32 {
    if p.get() == COUNT - 1 {
        10000
    } else {
        PIECE_LEN
    }
}

fn found(n: u8) -> std::net::SocketAddr {
    addr(&format!("10.0.2.{n}:6881"))
}

fn run(ops: Vec<Op>) {
    let mut h = Harness::with(TOTAL, PIECE_LEN, |i| i < 2);
    let mut m = Model::default();
    h.handle(Event::Start);
    for op in ops {
        let (event, connecting) = match op {
            Op::Connect {
                key,
                id,
                fast,
                ext,
                outgoing,
            } => {
                let event = Event::Connected {
                    peer: PeerKey(key),
                    addr: addr(&format!("10.0.0.{}:6881", id)),
                    handshake: handshake(id, fast, ext),
                    outgoing,
                };
                (event, Some(key))
            }
            Op::Message(key, msg) => {
                let message = match msg {
                    Msg::Plain(message) => message,
                    Msg::Answer(n) | Msg::Reject(n) => {
                        let Some(&b) = m.requested.get(&key).and_then(|r| r.get(n)) else {
                            continue;
                        };
                        match msg {
                            Msg::Answer(_) => piece(b, 1),
                            _ => Message::RejectRequest(b),
                        }
                    }
                };
                match &message {
                    Message::Have(p) => {
                        m.claimed.entry(key).or_default().insert(p.get());
                    }
                    Message::HaveAll => {
                        m.claimed.entry(key).or_default().extend(0..COUNT);
                    }
                    Message::Bitfield(b) if b.len() == 1 => {
                        let bits = b[0];
                        m.claimed
                            .entry(key)
                            .or_default()
                            .extend((0..COUNT).filter(|i| bits & (0x80 >> i) != 0));
                    }
                    _ => {}
                }
                (Event::Received(PeerKey(key), message), None)
            }
            Op::Disconnect(key) => (Event::Disconnected(PeerKey(key)), None),
            Op::Written => match m.writes.pop_front() {
                Some(b) => (Event::BlockWritten(b), None),
                None => continue,
            },
            Op::Verified(ok) => match m.verifies.pop_front() {
                Some(p) => {
                    m.verifying.remove(&p);
                    (Event::PieceVerified(p, ok), None)
                }
                None => continue,
            },
            Op::Read { wrong_length } => match m.reads.pop_front() {
                Some((k, b)) => {
                    let len = b.length as usize + usize::from(wrong_length);
                    (Event::BlockRead(k, b, Bytes::from(vec![0; len])), None)
                }
                None => continue,
            },
            Op::Tick(secs) => {
                h.now += Duration::from_secs(secs);
                (Event::Tick, None)
            }
            Op::Found(n) => (Event::PeersFound(vec![found(n)]), None),
            Op::DialFailed(n) => (Event::ConnectFailed(found(n)), None),
        };
        if let Event::Disconnected(PeerKey(k)) = event {
            m.live.remove(&k);
            m.claimed.remove(&k);
            m.requested.remove(&k);
            m.unchoked.remove(&k);
        }
        if let Some(k) = connecting {
            if m.live.contains(&k) {
                continue; // The shell never reuses a live key.
            }
            m.live.insert(k);
        }
        let out = h.handle(event);
        check(&h, &mut m, &out);
    }
}

fn check(h: &Harness, m: &mut Model, out: &[Action]) {
    let have = h.state.have();
    let mut closed = Vec::new();
    for action in out {
        match action {
            Action::Send(PeerKey(k), message) => {
                assert!(m.live.contains(k), "send to a dead peer {k}: {message:?}");
                match message {
                    Message::Request(b) => {
                        assert!(!have.get(b.piece), "request for a piece we have: {b:?}");
                        assert!(
                            m.claimed.get(k).is_some_and(|c| c.contains(&b.piece.get())),
                            "request for a piece peer {k} lacks: {b:?}"
                        );
                        assert!(b.check(piece_len(b.piece), BLOCK_SIZE).is_ok());
                        m.requested.entry(*k).or_default().push(*b);
                    }
                    Message::Cancel(b) => {
                        if let Some(r) = m.requested.get_mut(k) {
                            r.retain(|x| x != b);
                        }
                    }
                    Message::Piece { index, begin, data } => {
                        assert!(have.get(*index), "sent a piece we lack");
                        let b = BlockRef {
                            piece: *index,
                            begin: *begin,
                            length: data.len() as u32,
                        };
                        assert!(b.check(piece_len(*index), BLOCK_SIZE).is_ok());
                    }
                    Message::Unchoke => {
                        m.unchoked.insert(*k);
                    }
                    Message::Choke => {
                        m.unchoked.remove(k);
                    }
                    _ => {}
                }
            }
            Action::Disconnect(PeerKey(k), _) => closed.push(*k),
            Action::Write(b, data) => {
                assert_eq!(data.len(), b.length as usize);
                m.writes.push_back(*b);
            }
            Action::Verify(p) => {
                assert!(m.verifying.insert(*p), "piece {p} verified twice at once");
                m.verifies.push_back(*p);
            }
            Action::Read(k, b) => {
                assert!(m.live.contains(&k.0));
                assert!(have.get(b.piece) && b.check(piece_len(b.piece), BLOCK_SIZE).is_ok());
                m.reads.push_back((*k, *b));
            }
            _ => {}
        }
    }
    for k in closed {
        m.live.remove(&k);
        m.claimed.remove(&k);
        m.requested.remove(&k);
        m.unchoked.remove(&k);
    }
    let slots = super::super::choker::ChokerConfig::default().slots;
    assert!(
        m.unchoked.len() <= slots + 1,
        "{} unchoked",
        m.unchoked.len()
    );
    let stats = h.state.stats(h.now);
    assert_eq!(stats.peers, m.live.len());
    let lens = |f: &dyn Fn(PieceIndex) -> bool| -> u64 {
        (0..COUNT)
            .map(PieceIndex)
            .filter(|p| f(*p))
            .map(|p| u64::from(piece_len(p)))
            .sum()
    };
    assert_eq!(stats.verified, lens(&|p| have.get(p)));
    assert_eq!(stats.left, lens(&|p| !have.get(p)));
    assert_eq!(h.state.is_complete(), have.all());
    assert!(h.state.next_deadline() <= h.now + Duration::from_secs(10));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn random_events_keep_invariants(ops in prop::collection::vec(op(), 1..250)) {
        run(ops);
    }
}
