//! Uploads: requests served, cancelled, rejected; choking.

use super::*;
fn seed_with_unchoked_peer(fast: bool) -> Harness {
    let mut h = Harness::seed();
    h.connect(1, 1, fast, false);
    let out = h.recv(1, Message::Interested);
    assert_eq!(sent(&out, 1), [Message::Unchoke]);
    h
}

#[test]
fn requests_are_read_and_served_while_they_stand() {
    let mut h = seed_with_unchoked_peer(true);
    let b = block(1, 1);
    let out = h.recv(1, Message::Request(b));
    assert!(matches!(out[..], [Action::Read(PeerKey(1), r)] if r == b));
    let out = h.handle(Event::BlockRead(PeerKey(1), b, data(b, 5)));
    assert_eq!(sent(&out, 1), [piece(b, 5)]);
    assert_eq!(h.state.stats(h.now).uploaded, u64::from(b.length));
}

#[test]
fn cancel_of_a_pending_upload_sends_no_block() {
    for fast in [true, false] {
        let mut h = seed_with_unchoked_peer(fast);
        let b = block(0, 0);
        h.recv(1, Message::Request(b));
        let out = h.recv(1, Message::Cancel(b));
        let expected = if fast {
            vec![Message::RejectRequest(b)]
        } else {
            vec![]
        };
        assert_eq!(sent(&out, 1), expected);
        let out = h.handle(Event::BlockRead(PeerKey(1), b, data(b, 5)));
        assert!(sent(&out, 1).is_empty());
    }
}

#[test]
fn oversized_requests_are_rejected_with_fast_and_dropped_without() {
    let mut h = seed_with_unchoked_peer(true);
    let big = BlockRef {
        piece: PieceIndex(0),
        begin: 0,
        length: 32768,
    };
    assert_eq!(
        sent(&h.recv(1, Message::Request(big)), 1),
        [Message::RejectRequest(big)]
    );
    let mut h = seed_with_unchoked_peer(false);
    let out = h.recv(1, Message::Request(big));
    assert!(out.is_empty());
    // Past the end of the piece is a violation.
    let bad = BlockRef {
        piece: PieceIndex(3),
        begin: 16384,
        length: 16384,
    };
    assert!(matches!(
        disconnected(&h.recv(1, Message::Request(bad)), 1),
        Some(Reason::Protocol(_))
    ));
}

#[test]
fn requests_for_pieces_we_lack_are_rejected_or_ignored() {
    let mut h = Harness::with(4 * 32768, 32768, |i| i == 0);
    h.connect(1, 1, true, false);
    h.recv(1, Message::Interested);
    let b = block(2, 0);
    assert_eq!(
        sent(&h.recv(1, Message::Request(b)), 1),
        [Message::RejectRequest(b)]
    );
    h.connect(2, 2, false, false);
    h.recv(2, Message::Interested);
    assert!(h.recv(2, Message::Request(b)).is_empty());
}

#[test]
fn requests_while_choked_are_rejected_except_allowed_fast() {
    let mut h = Harness::seed();
    let out = h.connect(1, 1, true, false);
    let allowed: Vec<PieceIndex> = sent(&out, 1)
        .into_iter()
        .filter_map(|m| match m {
            Message::AllowedFast(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(!allowed.is_empty());
    // Peer 1 is choked (not interested yet): an allowed fast piece is served anyway.
    let b = BlockRef::nth(
        allowed[0],
        if allowed[0].get() == 3 { 20000 } else { 32768 },
        0,
    )
    .unwrap();
    let out = h.recv(1, Message::Request(b));
    assert!(matches!(out[..], [Action::Read(..)]));
    // A choked non-fast peer's request is dropped silently.
    h.connect(2, 2, false, false);
    assert!(h.recv(2, Message::Request(block(0, 0))).is_empty());
}

#[test]
fn choking_a_fast_peer_rejects_its_queued_requests() {
    let mut h = Harness::seed();
    let cfg_slots_one = |h: &mut Harness, key: u32| {
        h.connect(key, key as u8, true, false);
        h.recv(key, Message::Interested)
    };
    cfg_slots_one(&mut h, 1);
    let reqs: Vec<BlockRef> = (0..3)
        .flat_map(|p| (0..2).map(move |n| block(p, n)))
        .collect();
    for b in &reqs {
        h.recv(1, Message::Request(*b));
    }
    // Losing interest makes the choker choke it at once.
    let out = h.recv(1, Message::NotInterested);
    let msgs = sent(&out, 1);
    assert_eq!(msgs[0], Message::Choke);
    let allowed_fast = crate::torrent::state::fast::allowed_fast_set(
        std::net::Ipv4Addr::new(10, 0, 0, 1),
        &info_hash(),
        4,
        10,
    );
    let expected: Vec<BlockRef> = reqs
        .iter()
        .copied()
        .filter(|b| !allowed_fast.contains(&b.piece))
        .collect();
    let rejected: Vec<BlockRef> = msgs[1..]
        .iter()
        .filter_map(|m| match m {
            Message::RejectRequest(b) => Some(*b),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), expected.len());
}

#[test]
fn choke_from_a_fast_peer_keeps_requests_until_rejected() {
    let (mut h, out) = leecher_with_seed_peer();
    let reqs = requests(&out, 1);
    h.recv(1, Message::Choke);
    // Requests stand: a block still arrives as requested.
    let out = h.recv(1, piece(reqs[0], 1));
    assert!(out.iter().any(|a| matches!(a, Action::Write(..))));
    // A reject frees the block; a reject of something never asked is ignored.
    assert!(
        h.recv(1, Message::RejectRequest(reqs[1]))
            .iter()
            .all(|a| !matches!(a, Action::Disconnect(..)))
    );
    let out = h.recv(1, Message::Unchoke);
    assert!(
        requests(&out, 1).contains(&reqs[1]),
        "rejected block asked again after unchoke"
    );
}
