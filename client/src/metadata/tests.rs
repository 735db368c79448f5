//! Unit tests of [`MetadataFetch`], one behaviour each; property tests in `props.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rill_common::wire::Message;
use rill_common::wire::extension::{ExtendedHandshake, HANDSHAKE_ID, MetadataMessage, UT_METADATA};
use rill_common::wire::handshake::{Handshake, Reserved};
use rill_common::{InfoHash, PeerId};

use super::*;

mod props;

/// The id test peers receive `ut_metadata` under.
const THEIR_ID: u8 = 7;

fn dict(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>())
}

struct H {
    fetch: MetadataFetch,
    now: Instant,
    dict: Bytes,
}

impl H {
    fn new(len: usize) -> Self {
        let dict = dict(len);
        let now = Instant::now();
        let config = FetchConfig {
            info_hash: InfoHash::of_info(&dict),
            peer_id: PeerId::from_bytes([b'R'; 20]),
            client: "Rill test".into(),
            listen_port: Some(6881),
            max_peers: 50,
        };
        H {
            fetch: MetadataFetch::new(config, now),
            now,
            dict,
        }
    }

    fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.fetch.handle(event, self.now, &mut out);
        out
    }

    fn connect(&mut self, key: u32, extended: bool) -> Vec<Action> {
        let reserved = Reserved::NONE
            .with_fast(true)
            .with_extension_protocol(extended);
        let info_hash = InfoHash::of_info(&self.dict);
        self.handle(Event::Connected {
            peer: PeerKey(key),
            addr: format!("10.0.0.{key}:40000").parse().unwrap(),
            handshake: Handshake::new(reserved, info_hash, PeerId::from_bytes([key as u8; 20])),
            outgoing: false,
        })
    }

    /// Connects peer `key` and has it announce `size`.
    fn join(&mut self, key: u32, size: u32) -> Vec<Action> {
        self.connect(key, true);
        self.handle(Event::Received(PeerKey(key), ext_handshake(Some(size))))
    }

    fn answer(&mut self, key: u32, piece: u32, data: Bytes) -> Vec<Action> {
        let total_size = self.dict.len() as u32;
        let payload = MetadataMessage::Data {
            piece,
            total_size,
            data,
        }
        .to_bytes();
        self.handle(Event::Received(
            PeerKey(key),
            Message::Extended {
                id: OUR_UT_METADATA,
                payload,
            },
        ))
    }

    fn piece(&self, piece: u32) -> Bytes {
        let begin = piece as usize * 16384;
        let end = (begin + 16384).min(self.dict.len());
        self.dict.slice(begin..end)
    }

    fn advance(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        self.handle(Event::Tick)
    }
}

fn ext_handshake(size: Option<u32>) -> Message {
    let ext = ExtendedHandshake {
        messages: [(UT_METADATA.to_owned(), THEIR_ID)].into(),
        metadata_size: size,
        ..Default::default()
    };
    Message::Extended {
        id: HANDSHAKE_ID,
        payload: ext.to_bytes(),
    }
}

/// The metadata pieces requested of `key`.
fn requested(out: &[Action], key: u32) -> Vec<u32> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send(k, Message::Extended { id, payload })
                if *k == PeerKey(key) && *id == THEIR_ID =>
            {
                match MetadataMessage::decode(payload) {
                    Ok(MetadataMessage::Request { piece }) => Some(piece),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

fn disconnected(out: &[Action], key: u32) -> Option<Reason> {
    out.iter().find_map(|a| match a {
        Action::Disconnect(k, r) if *k == PeerKey(key) => Some(r.clone()),
        _ => None,
    })
}

fn done(out: &[Action]) -> Option<Bytes> {
    out.iter().find_map(|a| match a {
        Action::Done(b) => Some(b.clone()),
        _ => None,
    })
}

#[test]
fn greets_with_have_none_and_ut_metadata() {
    let mut h = H::new(40000);
    let out = h.connect(1, true);
    let Action::Send(_, Message::HaveNone) = &out[0] else {
        panic!("{out:?}");
    };
    let Action::Send(_, Message::Extended { id: 0, payload }) = &out[1] else {
        panic!("{out:?}");
    };
    let ext = ExtendedHandshake::decode(payload).unwrap();
    assert_eq!(ext.id_of(UT_METADATA), Some(OUR_UT_METADATA));
    assert_eq!(ext.metadata_size, None);
    // A peer without BEP 10 cannot help.
    assert_eq!(
        disconnected(&h.connect(2, false), 2),
        Some(Reason::NotUseful)
    );
}

#[test]
fn fetches_from_several_peers_and_outputs_the_verified_dict() {
    let mut h = H::new(5 * 16384 + 100);
    let a = h.join(1, h.dict.len() as u32);
    assert_eq!(requested(&a, 1), vec![0, 1, 2, 3], "capped per peer");
    let b = h.join(2, h.dict.len() as u32);
    assert_eq!(requested(&b, 2), vec![4, 5]);
    assert_eq!(h.fetch.progress(), (0, 6));
    for (key, piece) in [(2, 5), (1, 0), (1, 2), (2, 4), (1, 1)] {
        let data = h.piece(piece);
        assert!(done(&h.answer(key, piece, data)).is_none());
    }
    let data = h.piece(3);
    let out = h.answer(1, 3, data);
    assert_eq!(done(&out), Some(h.dict.clone()));
    assert!(h.fetch.is_finished());
    // Finished: new connections are refused.
    assert_eq!(disconnected(&h.connect(3, true), 3), Some(Reason::Shutdown));
}

#[test]
fn peers_without_ut_metadata_or_size_are_closed() {
    let mut h = H::new(40000);
    h.connect(1, true);
    let out = h.handle(Event::Received(PeerKey(1), ext_handshake(None)));
    assert_eq!(disconnected(&out, 1), Some(Reason::NotUseful));
    h.connect(2, true);
    let huge = ExtendedHandshake {
        messages: [(UT_METADATA.to_owned(), THEIR_ID)].into(),
        ..Default::default()
    };
    let mut payload = huge.to_bytes().to_vec();
    // metadata_size of 1 GiB: refused by the decoder before anything is allocated.
    payload.pop();
    payload.extend_from_slice(b"13:metadata_sizei1073741824ee");
    let out = h.handle(Event::Received(
        PeerKey(2),
        Message::Extended {
            id: 0,
            payload: payload.into(),
        },
    ));
    assert!(matches!(disconnected(&out, 2), Some(Reason::Protocol(_))));
    // Silent about its extensions: closed after the handshake timeout.
    h.connect(3, true);
    let out = h.advance(HANDSHAKE_TIMEOUT);
    assert_eq!(disconnected(&out, 3), Some(Reason::NotUseful));
}

#[test]
fn a_later_extended_handshake_keeps_what_it_does_not_name() {
    let mut h = H::new(40000);
    assert_eq!(requested(&h.join(1, 40000), 1), vec![0, 1, 2]);
    let update = ExtendedHandshake {
        upload_only: true,
        ..Default::default()
    };
    let update = Message::Extended {
        id: HANDSHAKE_ID,
        payload: update.to_bytes(),
    };
    let out = h.handle(Event::Received(PeerKey(1), update));
    assert_eq!(disconnected(&out, 1), None);
    h.answer(1, 0, h.piece(0));
    h.answer(1, 1, h.piece(1));
    assert_eq!(done(&h.answer(1, 2, h.piece(2))), Some(h.dict.clone()));
    // Disabling ut_metadata (id 0) makes the peer useless.
    let mut h = H::new(40000);
    h.join(1, 40000);
    let off = ExtendedHandshake {
        messages: [(UT_METADATA.to_owned(), 0)].into(),
        ..Default::default()
    };
    let off = Message::Extended {
        id: HANDSHAKE_ID,
        payload: off.to_bytes(),
    };
    let out = h.handle(Event::Received(PeerKey(1), off));
    assert_eq!(disconnected(&out, 1), Some(Reason::NotUseful));
}

#[test]
fn rejected_and_stalled_pieces_are_asked_elsewhere() {
    let mut h = H::new(2 * 16384);
    let size = h.dict.len() as u32;
    assert_eq!(requested(&h.join(1, size), 1), vec![0, 1]);
    let reject = MetadataMessage::Reject { piece: 0 }.to_bytes();
    let out = h.handle(Event::Received(
        PeerKey(1),
        Message::Extended {
            id: OUR_UT_METADATA,
            payload: reject,
        },
    ));
    assert!(
        requested(&out, 1).is_empty(),
        "not asked again of the rejecter"
    );
    assert_eq!(requested(&h.join(2, size), 2), vec![0]);
    // Peer 1 never answers piece 1: after the time-out, peer 2 is asked.
    let mut moved = Vec::new();
    for _ in 0..REQUEST_TIMEOUT.as_secs() + 1 {
        moved.extend(requested(&h.advance(Duration::from_secs(1)), 2));
    }
    assert_eq!(moved, vec![1]);
}

#[test]
fn peers_disagreeing_on_the_size_are_asked_by_majority() {
    let mut h = H::new(2 * 16384);
    let size = h.dict.len() as u32;
    let out = h.join(1, size + 16384);
    assert_eq!(requested(&out, 1), vec![0, 1, 2], "the only size known");
    h.join(2, size);
    let out = h.join(3, size);
    // Peer 1's attempt goes on until its size has no peer; peers 2 and 3 idle meanwhile.
    assert!(requested(&out, 3).is_empty());
    let out = h.handle(Event::Disconnected(PeerKey(1)));
    let mut asked = requested(&out, 2);
    asked.extend(requested(&out, 3));
    asked.sort();
    assert_eq!(asked, vec![0, 1]);
    // A piece whose total_size disagrees with the peer's announcement closes it.
    let payload = MetadataMessage::Data {
        piece: 0,
        total_size: size + 1,
        data: Bytes::from(vec![0; 16384]),
    }
    .to_bytes();
    let out = h.handle(Event::Received(
        PeerKey(2),
        Message::Extended {
            id: OUR_UT_METADATA,
            payload,
        },
    ));
    assert!(matches!(disconnected(&out, 2), Some(Reason::Protocol(_))));
}

#[test]
fn a_sole_liar_is_banned_and_the_dict_fetched_from_others() {
    let mut h = H::new(2 * 16384);
    let size = h.dict.len() as u32;
    h.join(1, size);
    h.answer(1, 0, Bytes::from(vec![0; 16384]));
    let out = h.answer(1, 1, h.piece(1));
    assert!(done(&out).is_none(), "a wrong dict never comes out");
    assert_eq!(disconnected(&out, 1), Some(Reason::Banned));
    h.handle(Event::Disconnected(PeerKey(1)));
    // The liar cannot come back.
    assert_eq!(disconnected(&h.connect(1, true), 1), Some(Reason::Banned));
    let out = h.join(2, size);
    assert_eq!(requested(&out, 2), vec![0, 1]);
    h.answer(2, 0, h.piece(0));
    assert_eq!(done(&h.answer(2, 1, h.piece(1))), Some(h.dict.clone()));
}

#[test]
fn with_several_senders_only_the_liar_is_banned() {
    let mut h = H::new(2 * 16384);
    let size = h.dict.len() as u32;
    h.join(1, size);
    // Peer 1 has both requests; give peer 2 one by rejecting on peer 1.
    let reject = MetadataMessage::Reject { piece: 1 }.to_bytes();
    h.handle(Event::Received(
        PeerKey(1),
        Message::Extended {
            id: OUR_UT_METADATA,
            payload: reject,
        },
    ));
    assert_eq!(requested(&h.join(2, size), 2), vec![1]);
    h.answer(1, 0, h.piece(0));
    let out = h.answer(2, 1, Bytes::from(vec![9; 16384]));
    assert!(done(&out).is_none());
    assert_eq!(disconnected(&out, 1), None, "nobody blamed yet");
    assert_eq!(disconnected(&out, 2), None, "nobody blamed yet");
    // On parole one peer sends the whole dict: peer 1 still refuses piece 1, so peer 2.
    assert!(requested(&out, 1).is_empty());
    assert_eq!(requested(&out, 2), vec![0, 1]);
    assert_eq!(h.fetch.suspects.len(), 2, "both pieces remembered");
    // Peer 2 now answers honestly: the dict verifies, and its earlier piece convicts it.
    h.answer(2, 0, h.piece(0));
    let out = h.answer(2, 1, h.piece(1));
    assert_eq!(done(&out), Some(h.dict.clone()));
    assert_eq!(disconnected(&out, 2), Some(Reason::Banned), "the liar");
    assert_eq!(disconnected(&out, 1), None, "the honest peer");
    let known = h.fetch.known_addresses();
    assert!(!known.iter().any(|a| a.ip().to_string() == "10.0.0.2"));
}

#[test]
fn on_parole_a_liar_sending_everything_is_banned() {
    let mut h = H::new(2 * 16384);
    let size = h.dict.len() as u32;
    h.join(1, size);
    h.join(2, size);
    h.answer(1, 0, h.piece(0));
    let out = h.answer(1, 1, Bytes::from(vec![9; 16384]));
    // Peer 1 sent both: banned at once; peer 2 fetches it all.
    assert_eq!(disconnected(&out, 1), Some(Reason::Banned));
    assert_eq!(requested(&out, 2), vec![0, 1]);
    h.handle(Event::Disconnected(PeerKey(1)));
    h.answer(2, 0, h.piece(0));
    assert_eq!(done(&h.answer(2, 1, h.piece(1))), Some(h.dict.clone()));
}

#[test]
fn our_metadata_requests_are_rejected_then_ignored_and_unrequested_data_closes() {
    let mut h = H::new(40000);
    h.join(1, 40000);
    let request = || Message::Extended {
        id: OUR_UT_METADATA,
        payload: MetadataMessage::Request { piece: 0 }.to_bytes(),
    };
    let rejects = (0..MAX_REJECTS_SENT + 10)
        .filter(|_| {
            h.handle(Event::Received(PeerKey(1), request()))
                .iter()
                .any(|a| {
                    matches!(
                        a,
                        Action::Send(PeerKey(1), Message::Extended { id: THEIR_ID, .. })
                    )
                })
        })
        .count();
    assert_eq!(rejects, MAX_REJECTS_SENT as usize);
    h.join(2, 40000);
    let mut closed = None;
    for _ in 0..=MAX_UNREQUESTED {
        closed = closed.or(disconnected(&h.answer(2, 2, h.piece(2)), 2));
    }
    assert!(matches!(closed, Some(Reason::Protocol(_))));
}

#[test]
fn dials_known_addresses_and_hands_them_over() {
    let mut h = H::new(40000);
    let addrs: Vec<SocketAddr> = (1..=20)
        .map(|i| format!("10.0.1.{i}:6881").parse().unwrap())
        .collect();
    assert!(h.handle(Event::PeersFound(addrs.clone())).is_empty());
    let out = h.handle(Event::Start);
    let dials = out
        .iter()
        .filter(|a| matches!(a, Action::Connect(_)))
        .count();
    assert_eq!(dials, MAX_HALF_OPEN);
    assert_eq!(h.fetch.known_addresses().len(), 20);
}

#[test]
fn serve_answers_pieces_and_rejects_past_the_end() {
    let d = dict(16384 + 10);
    let MetadataMessage::Data {
        total_size, data, ..
    } = serve(Some(&d), 1)
    else {
        panic!("no data");
    };
    assert_eq!((total_size, data.len()), (16394, 10));
    assert_eq!(serve(Some(&d), 2), MetadataMessage::Reject { piece: 2 });
    assert_eq!(serve(None, 0), MetadataMessage::Reject { piece: 0 });
    assert_eq!(announced_size(Some(&d)), Some(16394));
    assert_eq!(announced_size(None), None);
}

/// A fetch and a rill seed ([`crate::torrent::state::TorrentState`]) wired in memory: the
/// seed serves its dict and the fetch assembles it.
#[test]
fn fetches_the_dict_from_a_torrent_state_seed() {
    use crate::torrent::choker::ChokerConfig;
    use crate::torrent::state::{self, Config, RESERVED, TorrentState};
    use rill_common::bitfield::Bitfield;

    let mut h = H::new(3 * 16384 + 77);
    let info_hash = InfoHash::of_info(&h.dict);
    let config = Config {
        info_hash,
        peer_id: PeerId::from_bytes([b'S'; 20]),
        client: "Rill seed".into(),
        listen_port: Some(6881),
        max_peers: 10,
        choker: ChokerConfig::default(),
        sequential: false,
        piece_priorities: Vec::new(),
        private: false,
        metadata: Some(h.dict.clone()),
    };
    let mut seed = TorrentState::new(config, 65536, 16384, Bitfield::full(4), h.now, 1).unwrap();
    let seed_addr: SocketAddr = "10.0.0.9:6881".parse().unwrap();
    let mut to_fetch = vec![Event::PeersFound(vec![seed_addr]), Event::Start];
    let mut to_seed: Vec<state::Event> = vec![state::Event::Start];
    let mut result = None;
    for _ in 0..100 {
        let mut out = Vec::new();
        for event in to_fetch.drain(..) {
            h.fetch.handle(event, h.now, &mut out);
        }
        for action in out {
            match action {
                Action::Connect(addr) => {
                    assert_eq!(addr, seed_addr);
                    to_fetch.push(Event::Connected {
                        peer: PeerKey(1),
                        addr,
                        handshake: Handshake::new(
                            RESERVED,
                            info_hash,
                            PeerId::from_bytes([b'S'; 20]),
                        ),
                        outgoing: true,
                    });
                    to_seed.push(state::Event::Connected {
                        peer: PeerKey(5),
                        addr: "10.0.0.1:50000".parse().unwrap(),
                        handshake: Handshake::new(
                            RESERVED,
                            info_hash,
                            PeerId::from_bytes([b'R'; 20]),
                        ),
                        outgoing: false,
                    });
                }
                Action::Send(_, message) => {
                    to_seed.push(state::Event::Received(PeerKey(5), message))
                }
                Action::Disconnect(_, reason) => panic!("fetch closed the seed: {reason:?}"),
                Action::Done(bytes) => result = Some(bytes),
            }
        }
        let mut out = Vec::new();
        for event in to_seed.drain(..) {
            seed.handle(event, h.now, &mut out);
        }
        for action in out {
            match action {
                state::Action::Send(_, message) => {
                    to_fetch.push(Event::Received(PeerKey(1), message))
                }
                state::Action::Disconnect(_, reason) => panic!("seed closed the fetch: {reason:?}"),
                _ => {}
            }
        }
        if result.is_some() {
            break;
        }
    }
    assert_eq!(result, Some(h.dict.clone()));
}
