//! Unit tests of [`TorrentState`], one behaviour each, on a fake clock.

use std::time::Duration;

use bytes::Bytes;
use rill_common::pieces::{BlockRef, PieceIndex};
use rill_common::tracker::AnnounceEvent;
use rill_common::wire::Message;
use rill_common::wire::extension::ExtendedHandshake;

use super::harness::*;
use super::{Action, Event, RESERVED, Reason};
use crate::torrent::PeerKey;

mod extensions;
mod timers;
mod uploads;

fn block(piece: u32, n: u32) -> BlockRef {
    let len = if piece == 3 { 20000 } else { 32768 };
    BlockRef::nth(PieceIndex(piece), len, n).unwrap()
}

/// Connects peer 1 (fast, extended) with every piece and lets it unchoke us.
fn leecher_with_seed_peer() -> (Harness, Vec<Action>) {
    let mut h = Harness::leecher();
    h.connect(1, 1, true, true);
    let mut out = h.recv(1, Message::HaveAll);
    out.extend(h.recv(1, Message::Unchoke));
    (h, out)
}

#[test]
fn start_announces_and_dials_within_the_half_open_cap() {
    let mut h = Harness::leecher();
    let addrs: Vec<_> = (1..=20)
        .map(|i| addr(&format!("10.0.1.{i}:6881")))
        .collect();
    // Nothing is dialled before Start.
    assert!(h.handle(Event::PeersFound(addrs.clone())).is_empty());
    let out = h.handle(Event::Start);
    assert!(matches!(out[0], Action::Announce(AnnounceEvent::Started)));
    let dials = |out: &[Action]| {
        out.iter()
            .filter(|a| matches!(a, Action::Connect(_)))
            .count()
    };
    assert_eq!(dials(&out), 8, "at most 8 half-open dials");
    assert_eq!(dials(&h.handle(Event::PeersFound(addrs.clone()))), 0);
    let out = h.handle(Event::ConnectFailed(addrs[0]));
    assert_eq!(dials(&out), 1, "a failed dial frees a half-open slot");
}

#[test]
fn first_messages_have_none_and_extended_handshake() {
    let mut h = Harness::leecher();
    let out = h.connect(1, 1, true, true);
    let msgs = sent(&out, 1);
    assert_eq!(msgs[0], Message::HaveNone);
    let Message::Extended { id: 0, payload } = &msgs[1] else {
        panic!("no extended handshake: {msgs:?}");
    };
    let ext = ExtendedHandshake::decode(payload).unwrap();
    assert_eq!(ext.client.as_deref(), Some("Rill test"));
    assert_eq!(ext.request_queue, Some(500));
    assert_eq!(ext.port, Some(6881));
    assert_eq!(ext.your_ip, Some("10.0.0.1".parse().unwrap()));
    assert!(!ext.upload_only);
    // No fast, no extension, nothing to announce: silence.
    assert!(sent(&h.connect(2, 2, false, false), 2).is_empty());
    assert!(RESERVED.fast() && RESERVED.extension_protocol());
}

#[test]
fn seed_sends_have_all_to_fast_peers_bitfield_to_others_and_allowed_fast() {
    let mut h = Harness::seed();
    let msgs = sent(&h.connect(1, 1, true, false), 1);
    assert_eq!(msgs[0], Message::HaveAll);
    let fast: Vec<_> = msgs[1..]
        .iter()
        .filter(|m| matches!(m, Message::AllowedFast(_)))
        .collect();
    assert_eq!(
        fast.len(),
        4,
        "the whole (4-piece) torrent is the allowed fast set"
    );
    let msgs = sent(&h.connect(2, 2, false, false), 2);
    assert_eq!(msgs, [Message::Bitfield(Bytes::from_static(&[0xf0]))]);
}

#[test]
fn self_connection_is_refused_and_never_redialled() {
    let mut h = Harness::leecher();
    let me = addr("10.0.9.9:6881");
    h.handle(Event::PeersFound(vec![me]));
    let out = h.handle(Event::Start);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Connect(a) if *a == me))
    );
    let out = h.handle(Event::Connected {
        peer: PeerKey(5),
        addr: me,
        handshake: handshake(OURS, true, true),
        outgoing: true,
    });
    assert_eq!(disconnected(&out, 5), Some(Reason::Ourselves));
    h.handle(Event::PeersFound(vec![me]));
    let out = h.advance(Duration::from_secs(3600));
    assert!(!out.iter().any(|a| matches!(a, Action::Connect(_))));
}

#[test]
fn duplicate_peer_id_and_too_many_peers_are_refused() {
    let mut cfg = config(peer_id(OURS));
    cfg.max_peers = 2;
    let mut h = Harness::with_config(cfg, 100_000, 32768, |_| false);
    assert_eq!(disconnected(&h.connect(1, 1, true, true), 1), None);
    let out = h.handle(Event::Connected {
        peer: PeerKey(2),
        addr: addr("10.0.5.5:1234"),
        handshake: handshake(1, true, true),
        outgoing: false,
    });
    assert_eq!(disconnected(&out, 2), Some(Reason::Duplicate));
    assert_eq!(disconnected(&h.connect(3, 3, true, true), 3), None);
    assert_eq!(
        disconnected(&h.connect(4, 4, true, true), 4),
        Some(Reason::TooManyPeers)
    );
    assert_eq!(h.state.stats(h.now).peers, 2);
}

#[test]
fn have_bursts_instead_of_a_bitfield_work() {
    let mut h = Harness::leecher();
    h.connect(1, 1, false, false);
    let out = h.recv(1, Message::Have(PieceIndex(2)));
    assert_eq!(sent(&out, 1), [Message::Interested]);
    h.recv(1, Message::Have(PieceIndex(3)));
    let out = h.recv(1, Message::Unchoke);
    let mut pieces: Vec<u32> = requests(&out, 1).iter().map(|b| b.piece.get()).collect();
    pieces.sort();
    pieces.dedup();
    assert!(!pieces.is_empty() && pieces.iter().all(|p| *p == 2 || *p == 3));
}

#[test]
fn lazy_bitfield_then_haves_work() {
    let mut h = Harness::leecher();
    h.connect(1, 1, false, true);
    // Claims only piece 0, then reveals piece 1 with a have.
    let out = h.recv(1, Message::Bitfield(Bytes::from_static(&[0b1000_0000])));
    assert_eq!(sent(&out, 1), [Message::Interested]);
    h.recv(1, Message::Have(PieceIndex(1)));
    let out = h.recv(1, Message::Unchoke);
    let reqs = requests(&out, 1);
    assert!(reqs.iter().all(|b| b.piece.get() <= 1));
    assert!(reqs.len() >= 2);
    // A bitfield after haves is merged rather than refused...
    h.connect(2, 2, false, false);
    h.recv(2, Message::Have(PieceIndex(3)));
    assert_eq!(
        disconnected(
            &h.recv(2, Message::Bitfield(Bytes::from_static(&[0x80]))),
            2
        ),
        None
    );
    // ...but a second bitfield is a violation.
    let out = h.recv(2, Message::Bitfield(Bytes::from_static(&[0x80])));
    assert!(matches!(disconnected(&out, 2), Some(Reason::Protocol(_))));
}

#[test]
fn malformed_bitfields_and_fast_messages_without_fast_are_violations() {
    let mut h = Harness::leecher();
    h.connect(1, 1, false, false);
    let out = h.recv(1, Message::Bitfield(Bytes::from_static(&[0xff])));
    assert!(
        matches!(disconnected(&out, 1), Some(Reason::Protocol(_))),
        "spare bits"
    );
    h.connect(2, 2, false, false);
    let out = h.recv(2, Message::Bitfield(Bytes::from_static(&[0xf0, 0])));
    assert!(
        matches!(disconnected(&out, 2), Some(Reason::Protocol(_))),
        "length"
    );
    h.connect(3, 3, false, false);
    let out = h.recv(3, Message::HaveAll);
    assert!(
        matches!(disconnected(&out, 3), Some(Reason::Protocol(_))),
        "have all"
    );
    h.connect(4, 4, true, false);
    let out = h.recv(4, Message::Have(PieceIndex(4)));
    assert!(
        matches!(disconnected(&out, 4), Some(Reason::Protocol(_))),
        "range"
    );
}

#[test]
fn have_all_makes_us_interested_and_requests_follow_unchoke() {
    let (h, out) = leecher_with_seed_peer();
    let msgs = sent(&out, 1);
    assert_eq!(msgs[0], Message::Interested);
    let reqs = requests(&out, 1);
    assert!(!reqs.is_empty());
    assert_eq!(h.state.stats(h.now).seeds, 1);
}

#[test]
fn full_download_writes_verifies_once_and_completes() {
    let (mut h, out) = leecher_with_seed_peer();
    h.connect(2, 2, true, false);
    let mut pending = requests(&out, 1);
    let mut verifies = Vec::new();
    let mut all = Vec::new();
    while let Some(b) = pending.pop() {
        let out = h.recv(1, piece(b, 1));
        pending.extend(requests(&out, 1));
        for a in out.iter().chain(all.iter()) {
            assert!(
                !matches!(a, Action::Verify(_)),
                "verify before writes came back"
            );
        }
        let writes: Vec<BlockRef> = out
            .iter()
            .filter_map(|a| match a {
                Action::Write(w, _) => Some(*w),
                _ => None,
            })
            .collect();
        assert_eq!(writes, [b]);
        let out = h.handle(Event::BlockWritten(b));
        for a in &out {
            if let Action::Verify(p) = a {
                verifies.push(*p);
                all.extend(h.handle(Event::PieceVerified(*p, true)));
            }
        }
    }
    verifies.sort();
    assert_eq!(verifies, (0..4).map(PieceIndex).collect::<Vec<_>>());
    assert!(h.state.is_complete());
    let completed = all
        .iter()
        .filter(|a| matches!(a, Action::Completed))
        .count();
    assert_eq!(completed, 1);
    assert!(
        all.iter()
            .any(|a| matches!(a, Action::Announce(AnnounceEvent::Completed)))
    );
    assert_eq!(
        sent(&all, 2)
            .iter()
            .filter(|m| matches!(m, Message::Have(_)))
            .count(),
        4,
        "peer 2 learns every piece"
    );
    assert!(sent(&all, 1).contains(&Message::NotInterested));
    let stats = h.state.stats(h.now);
    assert_eq!((stats.left, stats.verified), (0, 3 * 32768 + 20000));
    assert_eq!(stats.downloaded, 3 * 32768 + 20000);
}

#[test]
fn starting_complete_announces_no_completed() {
    let mut h = Harness::seed();
    let out = h.handle(Event::Start);
    assert!(out.iter().any(|a| matches!(a, Action::Completed)));
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Announce(AnnounceEvent::Completed)))
    );
}

#[test]
fn unrequested_blocks_are_counted_and_the_peer_dropped_past_the_limit() {
    let (mut h, out) = leecher_with_seed_peer();
    let asked = requests(&out, 1);
    let stray = (0..4)
        .flat_map(|p| {
            (0..2).filter_map(move |n| {
                BlockRef::nth(PieceIndex(p), if p == 3 { 20000 } else { 32768 }, n)
            })
        })
        .find(|b| !asked.contains(b))
        .unwrap();
    for _ in 0..super::download::MAX_UNREQUESTED {
        let out = h.recv(1, piece(stray, 9));
        assert!(!out.iter().any(|a| matches!(a, Action::Write(..))));
        assert_eq!(disconnected(&out, 1), None);
    }
    let out = h.recv(1, piece(stray, 9));
    assert!(matches!(disconnected(&out, 1), Some(Reason::Protocol(_))));
}

#[test]
fn late_block_after_a_choke_is_welcome() {
    let mut h = Harness::leecher();
    h.connect(1, 1, false, false);
    h.recv(1, Message::Bitfield(Bytes::from_static(&[0xf0])));
    let out = h.recv(1, Message::Unchoke);
    let b = requests(&out, 1)[0];
    // Without fast, a choke drops our requests; the block may still come.
    h.recv(1, Message::Choke);
    let out = h.recv(1, piece(b, 1));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Write(w, _) if *w == b))
    );
    assert_eq!(disconnected(&out, 1), None);
}

#[test]
fn hash_failures_ban_the_sender_who_is_never_redialled() {
    let mut h = Harness::leecher();
    let liar = addr("10.0.3.3:6881");
    h.handle(Event::PeersFound(vec![liar]));
    h.handle(Event::Start);
    let hs = handshake(3, true, false);
    let mut out = h.handle(Event::Connected {
        peer: PeerKey(3),
        addr: liar,
        handshake: hs,
        outgoing: true,
    });
    out.extend(h.recv(3, Message::HaveAll));
    out.extend(h.recv(3, Message::Unchoke));
    let mut pending = requests(&out, 3);
    let mut failures = 0;
    let mut banned = None;
    while let Some(b) = pending.pop() {
        let out = h.recv(3, piece(b, 0xee));
        pending.extend(requests(&out, 3));
        for a in h.handle(Event::BlockWritten(b)) {
            if let Action::Verify(p) = a {
                failures += 1;
                let out = h.handle(Event::PieceVerified(p, false));
                if let Some(r) = disconnected(&out, 3) {
                    banned = Some(r);
                }
                pending.extend(requests(&out, 3));
            }
        }
        if banned.is_some() {
            break;
        }
    }
    assert_eq!(banned, Some(Reason::Banned));
    assert_eq!(failures, 2, "two whole bad pieces from one peer");
    h.handle(Event::Disconnected(PeerKey(3)));
    h.handle(Event::PeersFound(vec![liar]));
    let out = h.advance(Duration::from_secs(7200));
    assert!(!out.iter().any(|a| matches!(a, Action::Connect(_))));
    let out = h.handle(Event::Connected {
        peer: PeerKey(4),
        addr: addr("10.0.3.3:50000"),
        handshake: handshake(3, true, false),
        outgoing: false,
    });
    assert_eq!(disconnected(&out, 4), Some(Reason::Banned));
    assert!(!h.state.have().get(PieceIndex(0)));
}

/// A seed with peer 1 (fast as given) connected, interested and unchoked.
#[test]
fn end_game_duplicates_are_cancelled() {
    // Only the short last piece (2 blocks) is missing.
    let mut h = Harness::with(3 * 32768 + 20000, 32768, |i| i < 3);
    for key in [1, 2] {
        h.connect(key, key as u8, true, false);
        h.recv(key, Message::HaveAll);
    }
    let first = requests(&h.recv(1, Message::Unchoke), 1);
    assert_eq!(first, [block(3, 0), block(3, 1)]);
    let dup = requests(&h.recv(2, Message::Unchoke), 2);
    assert_eq!(dup, first, "end game: the same blocks from peer 2");
    let out = h.recv(1, piece(block(3, 0), 1));
    assert_eq!(sent(&out, 2), [Message::Cancel(block(3, 0))]);
    // Peer 2's copy arrives anyway: not an offence, not written twice.
    let out = h.recv(2, piece(block(3, 0), 1));
    assert!(!out.iter().any(|a| matches!(a, Action::Write(..))));
    assert_eq!(disconnected(&out, 2), None);
}

#[test]
fn allowed_fast_pieces_are_requested_while_choked_until_rejected() {
    let mut h = Harness::leecher();
    h.connect(1, 1, true, false);
    h.recv(1, Message::HaveAll);
    let out = h.recv(1, Message::AllowedFast(PieceIndex(2)));
    let reqs = requests(&out, 1);
    assert!(!reqs.is_empty() && reqs.iter().all(|b| b.piece == PieceIndex(2)));
    // The peer changes its mind: no ping-pong of requests and rejects.
    let mut again = Vec::new();
    for b in reqs {
        again.extend(requests(&h.recv(1, Message::RejectRequest(b)), 1));
    }
    assert!(again.is_empty(), "asked again: {again:?}");
}

#[test]
fn peer_info_for_the_display() {
    let (mut h, _) = leecher_with_seed_peer();
    let ext = ExtendedHandshake {
        client: Some("libtorrent/2.0.8".into()),
        request_queue: Some(2000),
        ..Default::default()
    };
    h.recv(
        1,
        Message::Extended {
            id: 0,
            payload: ext.to_bytes(),
        },
    );
    let infos = h.state.peers(h.now);
    assert_eq!(infos.len(), 1);
    let info = &infos[0];
    assert_eq!(info.key, PeerKey(1));
    assert_eq!(info.client.as_deref(), Some("libtorrent/2.0.8"));
    assert_eq!(info.pieces, 4);
    assert!(info.am_interested && !info.peer_choking && info.am_choking);
    assert!(info.requests > 0);
    assert_eq!(h.state.total_len(), 3 * 32768 + 20000);
}
