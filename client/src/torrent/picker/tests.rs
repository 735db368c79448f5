//! Picker tests. State is drawn as strings, as libtorrent's picker tests do: availability
//! `"2223333"` (one digit per piece), have `"* *    "` (`*` = had), priorities `"1101"`.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

/// Four blocks per piece.
const PIECE_LEN: u32 = 4 * 16384;

fn bits(drawing: &str) -> Bitfield {
    let mut b = Bitfield::new(drawing.len() as u32);
    for (i, c) in (0u32..).zip(drawing.chars()) {
        b.set(PieceIndex(i), c != ' ');
    }
    b
}

/// A picker whose availability and have-set are drawn as strings of the same length.
fn drawn(availability: &str, have: &str) -> Picker {
    assert_eq!(availability.len(), have.len());
    let n = availability.len() as u32;
    let mut p = Picker::new(u64::from(n) * u64::from(PIECE_LEN), PIECE_LEN).unwrap();
    let counts: Vec<u32> = availability
        .chars()
        .map(|c| c.to_digit(10).unwrap())
        .collect();
    for level in 0..10 {
        let mut b = Bitfield::new(n);
        for (i, c) in (0u32..).zip(&counts) {
            b.set(PieceIndex(i), *c > level);
        }
        p.add_peer_bitfield(&b);
    }
    for piece in bits(have).iter() {
        p.piece_verified(piece, true);
    }
    p
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn pieces_of(blocks: &[BlockRef]) -> Vec<u32> {
    let mut v: Vec<u32> = blocks.iter().map(|b| b.piece.get()).collect();
    v.dedup();
    v
}

const A: PeerKey = PeerKey(1);
const B: PeerKey = PeerKey(2);
const C: PeerKey = PeerKey(3);

#[test]
fn availability_drawn_as_string() {
    let p = drawn("2223333", "       ");
    let got: String = (0..7)
        .map(|i| p.availability(PieceIndex(i)).to_string())
        .collect();
    assert_eq!(got, "2223333");
}

#[test]
fn rarest_first_once_enough_pieces_are_had() {
    let mut p = drawn("33333913", "****    ");
    let got = p.pick(A, &bits("********"), PeerSpeed::Medium, 4, &mut rng(1));
    assert_eq!(pieces_of(&got), vec![6]);
    let got = p.pick(B, &bits("********"), PeerSpeed::Fast, 4, &mut rng(1));
    assert_eq!(pieces_of(&got).len(), 1);
    // 4, 5 and 7 are equally rare (3): the fast peer got one of them, not 6.
    assert!([4, 5, 7].contains(&got[0].piece.get()));
}

#[test]
fn random_first_until_four_pieces_are_had() {
    // Rarest first would always take piece 0.
    let mut seen = HashSet::new();
    for seed in 0..20 {
        let mut p = drawn("1999999999", "          ");
        let got = p.pick(A, &bits("**********"), PeerSpeed::Medium, 1, &mut rng(seed));
        seen.insert(got[0].piece.get());
    }
    assert!(seen.len() > 3, "random first picked only {seen:?}");
    // With four pieces had, the rarest wins every time.
    for seed in 0..20 {
        let mut p = drawn("19999999999999", "    ****      ");
        let got = p.pick(
            A,
            &bits("**************"),
            PeerSpeed::Medium,
            1,
            &mut rng(seed),
        );
        assert_eq!(got[0].piece.get(), 0);
    }
}

#[test]
fn partial_pieces_are_finished_first() {
    let mut p = drawn("5555155", "****   ");
    let first = p.pick(A, &bits("*******"), PeerSpeed::Medium, 1, &mut rng(1));
    assert_eq!(pieces_of(&first), vec![4]);
    // B has piece 5 and 6 and 4: it finishes 4 before starting anything rarer or not.
    let got = p.pick(B, &bits("*******"), PeerSpeed::Medium, 3, &mut rng(1));
    assert_eq!(pieces_of(&got), vec![4]);
    assert_eq!(got.len(), 3);
    // A peer without piece 4 cannot help with it.
    let got = p.pick(C, &bits("***  **"), PeerSpeed::Medium, 1, &mut rng(1));
    assert_ne!(got[0].piece.get(), 4);
}

#[test]
fn fast_peer_gets_its_own_piece() {
    let mut p = drawn("5555555", "****   ");
    let slow = p.pick(A, &bits("*******"), PeerSpeed::Slow, 1, &mut rng(1));
    let fast = p.pick(B, &bits("*******"), PeerSpeed::Fast, 2, &mut rng(2));
    assert_eq!(fast.len(), 2);
    assert_ne!(pieces_of(&fast), pieces_of(&slow));
    // A slow peer does not join the fast peer's piece while another is open to it.
    let slow2 = p.pick(C, &bits("*******"), PeerSpeed::Slow, 3, &mut rng(3));
    assert_eq!(pieces_of(&slow2), pieces_of(&slow));
    // The fast peer continues its own piece.
    let fast2 = p.pick(B, &bits("*******"), PeerSpeed::Fast, 2, &mut rng(4));
    assert_eq!(pieces_of(&fast2), pieces_of(&fast));
}

#[test]
fn priority_zero_is_never_requested_and_higher_goes_first() {
    let mut p = drawn("1111111", "       ");
    p.set_priorities(vec![0, 0, 1, 7, 1, 0, 0]).unwrap();
    let got = p.pick(A, &bits("**  ***"), PeerSpeed::Medium, 100, &mut rng(1));
    assert_eq!(pieces_of(&got), vec![4]);
    let got = p.pick(B, &bits("*******"), PeerSpeed::Medium, 4, &mut rng(1));
    assert_eq!(pieces_of(&got), vec![3]);
    assert_eq!(
        p.set_priorities(vec![1]),
        Err(PickerError::PriorityCount { got: 1, pieces: 7 })
    );
}

#[test]
fn sequential_mode_goes_in_index_order() {
    let mut p = drawn("9919999", "       ");
    p.set_sequential(true);
    let got = p.pick(A, &bits("*******"), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(pieces_of(&got), vec![0, 1, 2]);
    assert_eq!(got.len(), 10);
}

#[test]
fn end_game_duplicates_and_cancels() {
    let mut p = drawn("33", "* ");
    let a = p.pick(A, &bits("**"), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(a.len(), 4);
    assert!(p.in_end_game());
    let b = p.pick(B, &bits("**"), PeerSpeed::Medium, 2, &mut rng(1));
    assert_eq!(b.len(), 2);
    assert_eq!(p.block_state(b[0]), Some(BlockState::Requested(vec![A, B])));
    // A third and fourth peer: at most END_GAME_MAX_REQUESTERS per block.
    let c = p.pick(C, &bits("**"), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(c.len(), 4);
    let d = p.pick(PeerKey(4), &bits("**"), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(d.len(), 2, "only the blocks B did not double");
    assert!(!d.contains(&b[0]) && !d.contains(&b[1]));
    assert_eq!(p.block_received(b[0], B), vec![(A, b[0]), (C, b[0])]);
    assert_eq!(p.block_state(b[0]), Some(BlockState::Received(B)));
    // Late copies change nothing.
    assert_eq!(p.block_received(b[0], A), vec![]);
}

#[test]
fn no_end_game_while_a_block_is_free() {
    let mut p = drawn("33", "  ");
    let a = p.pick(A, &bits("* "), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(a.len(), 4);
    assert!(!p.in_end_game());
    assert_eq!(
        p.pick(B, &bits("* "), PeerSpeed::Medium, 10, &mut rng(1)),
        vec![]
    );
}

#[test]
fn pieces_nobody_has_do_not_hold_back_the_end_game() {
    let mut p = drawn("330", "*  ");
    let a = p.pick(A, &bits("** "), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(a.len(), 4);
    assert!(p.in_end_game());
    let b = p.pick(B, &bits("** "), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(b, a);
    // A peer with piece 2 arrives: it is no longer the end game.
    p.add_peer_bitfield(&bits("  *"));
    assert!(!p.in_end_game());
    let c = p.pick(C, &bits("***"), PeerSpeed::Medium, 4, &mut rng(1));
    assert_eq!(pieces_of(&c), vec![2]);
}

#[test]
fn peer_gone_and_rejects_free_blocks() {
    let mut p = drawn("33", "* ");
    let a = p.pick(A, &bits("**"), PeerSpeed::Medium, 2, &mut rng(1));
    assert_eq!(p.requests_of(A), a);
    p.request_rejected(A, a[0]);
    assert_eq!(p.block_state(a[0]), Some(BlockState::Free));
    assert_eq!(p.requests_of(A), vec![a[1]]);
    p.peer_gone(A);
    assert_eq!(p.block_state(a[1]), Some(BlockState::Free));
    let b = p.pick(B, &bits("**"), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(b.len(), 4);
}

#[test]
fn failed_piece_is_refetched_and_senders_blamed() {
    let mut p = drawn("33", "* ");
    let a = p.pick(A, &bits("**"), PeerSpeed::Medium, 2, &mut rng(1));
    let b = p.pick(B, &bits("**"), PeerSpeed::Medium, 2, &mut rng(1));
    for block in &a {
        p.block_received(*block, A);
    }
    assert!(!p.is_complete(PieceIndex(1)));
    for block in &b {
        p.block_received(*block, B);
    }
    assert!(p.is_complete(PieceIndex(1)));
    assert_eq!(p.piece_verified(PieceIndex(1), false), vec![A, B]);
    assert_eq!(p.block_state(a[0]), Some(BlockState::Free));
    let again = p.pick(C, &bits("**"), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(again.len(), 4);
    for block in &again {
        p.block_received(*block, C);
    }
    assert_eq!(p.piece_verified(PieceIndex(1), true), vec![C]);
    assert_eq!(p.block_state(a[0]), Some(BlockState::Verified));
    assert!(p.is_finished());
}

#[test]
fn seeds_and_haves_count_in_availability() {
    let mut p = drawn("0000", "    ");
    p.add_seed();
    p.peer_have(PieceIndex(2));
    p.add_peer_bitfield(&bits("*  *"));
    let got: String = (0..4)
        .map(|i| p.availability(PieceIndex(i)).to_string())
        .collect();
    assert_eq!(got, "2122");
    p.remove_seed();
    p.remove_peer_bitfield(&bits("*  *"));
    let got: String = (0..4)
        .map(|i| p.availability(PieceIndex(i)).to_string())
        .collect();
    assert_eq!(got, "0010");
}

#[test]
fn short_last_piece_has_short_blocks() {
    let mut p = Picker::new(PIECE_LEN as u64 + 20_000, PIECE_LEN).unwrap();
    let got = p.pick(A, &bits(" *"), PeerSpeed::Medium, 10, &mut rng(1));
    assert_eq!(
        got,
        vec![
            BlockRef::new(PieceIndex(1), 0, 16384).unwrap(),
            BlockRef::new(PieceIndex(1), 16384, 20_000 - 16384).unwrap(),
        ]
    );
    assert_eq!(
        Picker::new(10, 0).unwrap_err(),
        PickerError::ZeroPieceLength
    );
    // A block that is not one of ours is ignored.
    let odd = BlockRef::new(PieceIndex(1), 100, 16384).unwrap();
    assert_eq!(p.block_state(odd), None);
    assert_eq!(p.block_received(odd, A), vec![]);
}

/// One step of the random event sequences.
#[derive(Clone, Debug)]
enum Op {
    Join(Vec<bool>),
    Leave(usize),
    Have(usize, u32),
    Pick(usize, usize, u8),
    Receive(usize, usize),
    Reject(usize, usize),
    Verify(u32, bool),
    Priorities(Vec<u8>),
    Parole(u32),
}

const N: u32 = 9;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => prop::collection::vec(any::<bool>(), N as usize).prop_map(Op::Join),
        1 => any::<usize>().prop_map(Op::Leave),
        1 => (any::<usize>(), 0..N).prop_map(|(p, i)| Op::Have(p, i)),
        6 => (any::<usize>(), 1usize..12, 0u8..3).prop_map(|(p, w, s)| Op::Pick(p, w, s)),
        6 => (any::<usize>(), any::<usize>()).prop_map(|(p, r)| Op::Receive(p, r)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(p, r)| Op::Reject(p, r)),
        3 => (0..N, prop::bool::weighted(0.8)).prop_map(|(i, ok)| Op::Verify(i, ok)),
        1 => prop::collection::vec(0u8..3, N as usize).prop_map(Op::Priorities),
        1 => (0..N).prop_map(Op::Parole),
    ]
}

/// Checks the module's invariants against the peers the test believes are connected.
fn check(p: &Picker, peers: &HashMap<PeerKey, Bitfield>) {
    for (i, partial) in p.partials.iter().filter(|(_, p)| p.exclusive) {
        for state in &partial.blocks {
            if let BlockState::Requested(rs) = state {
                assert_eq!(rs.len(), 1, "piece {i} on parole requested twice");
            }
        }
    }
    for i in 0..p.piece_count() {
        let piece = PieceIndex(i);
        let sum = peers.values().filter(|b| b.get(piece)).count() as u32;
        assert_eq!(p.availability(piece), sum, "availability of {i}");
        let open = p.open[(i / 64) as usize] & (1 << (63 - i % 64)) != 0;
        let should = p.prio(i) > 0 && !p.have().get(piece) && !p.partials.contains_key(&i);
        assert_eq!(open, should, "open set out of date for piece {i}");
        if p.is_finished() {
            assert!(
                p.prio(i) == 0 || p.have().get(piece),
                "finished without piece {i}"
            );
        }
        let blocks = block_count(p.piece_len(piece));
        for n in 0..blocks {
            let block = BlockRef::nth(piece, p.piece_len(piece), n).unwrap();
            let state = p.block_state(block).unwrap();
            match &state {
                BlockState::Verified => assert!(p.have().get(piece)),
                _ => assert!(!p.have().get(piece), "block of a had piece in {state:?}"),
            }
            if let BlockState::Requested(rs) = &state {
                assert!(!rs.is_empty() && rs.len() <= END_GAME_MAX_REQUESTERS);
                let distinct: HashSet<_> = rs.iter().collect();
                assert_eq!(distinct.len(), rs.len(), "a peer twice on {block:?}");
                assert!(
                    rs.iter().all(|r| peers.contains_key(r)),
                    "request of a gone peer"
                );
            }
        }
    }
}

fn run(ops: Vec<Op>, seed: u64) {
    let last = 3 * 16384 + 100;
    let mut p = Picker::new(u64::from(N - 1) * 65536 + last, 65536).unwrap();
    let mut rng = rng(seed);
    let mut peers: HashMap<PeerKey, Bitfield> = HashMap::new();
    let mut next_key = 0u32;
    let mut keys: Vec<PeerKey> = Vec::new();
    for op in ops {
        match op {
            Op::Join(has) => {
                let mut b = Bitfield::new(N);
                for (i, h) in (0u32..).zip(has) {
                    b.set(PieceIndex(i), h);
                }
                p.add_peer_bitfield(&b);
                let key = PeerKey(next_key);
                next_key += 1;
                peers.insert(key, b);
                keys.push(key);
            }
            Op::Leave(k) if !keys.is_empty() => {
                let key = keys.remove(k % keys.len());
                let b = peers.remove(&key).unwrap();
                p.remove_peer_bitfield(&b);
                p.peer_gone(key);
            }
            Op::Have(k, i) if !keys.is_empty() => {
                let key = keys[k % keys.len()];
                let b = peers.get_mut(&key).unwrap();
                if !b.get(PieceIndex(i)) {
                    b.set(PieceIndex(i), true);
                    p.peer_have(PieceIndex(i));
                }
            }
            Op::Pick(k, want, speed) if !keys.is_empty() => {
                let key = keys[k % keys.len()];
                let has = peers[&key].clone();
                let speed = [PeerSpeed::Slow, PeerSpeed::Medium, PeerSpeed::Fast][speed as usize];
                let end_game = p.in_end_game();
                let before: Vec<_> = (0..N)
                    .map(|i| p.priority.get(i as usize).copied().unwrap_or(0))
                    .collect();
                let got = p.pick(key, &has, speed, want, &mut rng);
                assert!(got.len() <= want);
                let distinct: HashSet<_> = got.iter().collect();
                assert_eq!(distinct.len(), got.len());
                for block in &got {
                    let i = block.piece;
                    assert!(!p.have().get(i), "requested a piece we have");
                    assert!(has.get(i), "requested a piece the peer lacks");
                    assert!(before[i.as_usize()] > 0, "requested a piece of priority 0");
                    match p.block_state(*block).unwrap() {
                        BlockState::Requested(rs) => {
                            assert!(rs.contains(&key));
                            assert!(rs.len() == 1 || end_game || p.in_end_game());
                        }
                        other => panic!("picked block now {other:?}"),
                    }
                }
            }
            Op::Receive(k, r) if !keys.is_empty() => {
                let key = keys[k % keys.len()];
                let reqs = p.requests_of(key);
                if reqs.is_empty() {
                    continue;
                }
                let block = reqs[r % reqs.len()];
                let Some(BlockState::Requested(rs)) = p.block_state(block) else {
                    panic!("requests_of gave a block not requested");
                };
                let mut cancels = p.block_received(block, key);
                cancels.sort();
                let mut expected: Vec<_> = rs
                    .into_iter()
                    .filter(|r| *r != key)
                    .map(|r| (r, block))
                    .collect();
                expected.sort();
                assert_eq!(cancels, expected, "end game duplicates not all cancelled");
                assert_eq!(p.block_state(block), Some(BlockState::Received(key)));
                // The caller sends the cancels; those peers no longer have it requested.
                for (peer, _) in cancels {
                    assert!(!p.requests_of(peer).contains(&block));
                }
            }
            Op::Reject(k, r) if !keys.is_empty() => {
                let key = keys[k % keys.len()];
                let reqs = p.requests_of(key);
                if let Some(block) = reqs.get(r % reqs.len().max(1)) {
                    p.request_rejected(key, *block);
                    assert!(!p.requests_of(key).contains(block));
                }
            }
            Op::Verify(i, ok) if p.is_complete(PieceIndex(i)) => {
                let senders = p.piece_verified(PieceIndex(i), ok);
                assert!(!senders.is_empty());
                assert_eq!(p.have().get(PieceIndex(i)), ok);
            }
            Op::Priorities(prios) => p.set_priorities(prios).unwrap(),
            Op::Parole(i) => p.set_parole(PieceIndex(i)),
            _ => {}
        }
        check(&p, &peers);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn invariants_hold_over_random_events(
        ops in prop::collection::vec(op(), 1..120),
        seed in any::<u64>(),
    ) {
        run(ops, seed);
    }
}

/// Liveness: a seed and a few peers; picking, receiving and verifying until done always
/// finishes, through the end game.
#[test]
fn download_completes_through_end_game() {
    for seed in 0..20 {
        let mut p = Picker::new(10 * 65536 + 5, 65536).unwrap();
        let mut rng = rng(seed);
        let all = Bitfield::full(11);
        for _ in 0..3 {
            p.add_peer_bitfield(&all);
        }
        let mut steps = 0;
        while !p.is_finished() {
            steps += 1;
            assert!(steps < 1000, "no progress");
            for k in 0..3 {
                let key = PeerKey(k);
                let mut reqs = p.requests_of(key);
                if reqs.len() < 5 {
                    p.pick(key, &all, PeerSpeed::Medium, 5 - reqs.len(), &mut rng);
                    reqs = p.requests_of(key);
                }
                if let Some(block) = reqs.first() {
                    p.block_received(*block, key);
                    if p.is_complete(block.piece) {
                        p.piece_verified(block.piece, true);
                    }
                }
            }
        }
        assert!(p.have().all());
    }
}

#[test]
fn a_piece_on_parole_goes_to_one_peer() {
    let mut p = drawn("33", "* ");
    p.set_parole(PieceIndex(1));
    let a = p.pick(A, &bits("**"), PeerSpeed::Slow, 1, &mut rng(1));
    assert_eq!(pieces_of(&a), [1]);
    // B may not join, not even in the end game.
    assert!(
        p.pick(B, &bits("**"), PeerSpeed::Slow, 4, &mut rng(1))
            .is_empty()
    );
    let more = p.pick(A, &bits("**"), PeerSpeed::Slow, 4, &mut rng(1));
    assert_eq!(more.len(), 3);
    // A rejects a block: B takes the piece over.
    p.request_rejected(A, more[0]);
    assert_eq!(
        p.pick(B, &bits("**"), PeerSpeed::Slow, 4, &mut rng(1)),
        [more[0]]
    );
    for block in a.iter().chain(&more) {
        let from = if *block == more[0] { B } else { A };
        p.block_received(*block, from);
    }
    assert_eq!(p.piece_verified(PieceIndex(1), false), vec![A, B]);
    // Two senders again: the caller puts it on parole again.
    p.set_parole(PieceIndex(1));
    let again = p.pick(C, &bits("**"), PeerSpeed::Slow, 4, &mut rng(1));
    assert_eq!(again.len(), 4);
    assert!(
        p.pick(A, &bits("**"), PeerSpeed::Slow, 4, &mut rng(1))
            .is_empty()
    );
}
