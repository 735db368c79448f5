//! Choker tests: plain calls on a fake clock.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A choker with `n` interested peers keyed 0..n, connected at `t0`.
fn with_peers(n: u32, t0: Instant) -> Choker {
    let mut c = Choker::new(ChokerConfig::default(), t0);
    for k in 0..n {
        c.add_peer(PeerKey(k), t0);
        c.set_interested(PeerKey(k), true);
    }
    c
}

fn unchoked(c: &Choker) -> Vec<PeerKey> {
    let mut v: Vec<_> = c
        .peers
        .keys()
        .copied()
        .filter(|k| c.is_unchoked(*k))
        .collect();
    v.sort();
    v
}

#[test]
fn tit_for_tat_unchokes_the_fastest_senders() {
    let t0 = Instant::now();
    let mut c = with_peers(8, t0);
    let now = t0 + secs(5);
    for k in 0..8u32 {
        c.block_received(PeerKey(k), u64::from(k) * 100_000, now);
    }
    let changes = c.rechoke(now, &mut rng(1));
    assert!(changes.iter().all(|(_, u)| *u));
    let up = unchoked(&c);
    assert_eq!(up.len(), 5, "4 regular + 1 optimistic");
    for k in 4..8 {
        assert!(up.contains(&PeerKey(k)), "fast peer {k} choked");
    }
    let opt = c.optimistic().unwrap();
    assert!(opt.0 < 4);
    assert_eq!(c.next_rechoke(), now + secs(10));
    // Nothing changed: no messages, the optimistic unchoke stays until 30 s.
    assert_eq!(c.rechoke(now + secs(10), &mut rng(2)), vec![]);
    assert_eq!(c.optimistic(), Some(opt));
}

#[test]
fn only_interested_peers_are_unchoked() {
    let t0 = Instant::now();
    let mut c = with_peers(3, t0);
    c.set_interested(PeerKey(1), false);
    c.rechoke(t0, &mut rng(1));
    assert_eq!(unchoked(&c), vec![PeerKey(0), PeerKey(2)]);
    c.set_interested(PeerKey(0), false);
    assert_eq!(
        c.rechoke(t0 + secs(1), &mut rng(1)),
        vec![(PeerKey(0), false)]
    );
}

#[test]
fn snubbed_peer_loses_its_regular_slot() {
    let t0 = Instant::now();
    // Fewer peers than slots: rates alone would unchoke both regularly.
    let mut c = with_peers(2, t0);
    for k in 0..2u32 {
        c.set_am_interested(PeerKey(k), true, t0);
        c.set_peer_choking(PeerKey(k), false, t0);
    }
    let mut now = t0 + secs(1);
    c.block_received(PeerKey(1), 10_000_000, now);
    c.rechoke(now, &mut rng(1));
    assert!(c.is_unchoked(PeerKey(1)));
    assert_eq!(
        c.optimistic(),
        None,
        "no candidate left for the optimistic unchoke"
    );
    while now < t0 + secs(61) {
        now += secs(10);
        c.block_received(PeerKey(0), 1000, now);
        c.rechoke(now, &mut rng(2));
    }
    assert!(c.is_snubbed(PeerKey(1), now));
    assert!(!c.is_snubbed(PeerKey(0), now));
    // Peer 1 is still unchoked, but only as the optimistic unchoke.
    assert!(c.is_unchoked(PeerKey(1)));
    assert_eq!(c.optimistic(), Some(PeerKey(1)));
    // A block ends the snub; the peer gets a regular slot back.
    c.block_received(PeerKey(1), 16384, now);
    assert!(!c.is_snubbed(PeerKey(1), now));
    c.rechoke(now, &mut rng(3));
    assert_eq!(c.optimistic(), None);
    assert!(c.is_unchoked(PeerKey(1)));
}

#[test]
fn seeding_rotates_every_interested_peer() {
    let t0 = Instant::now();
    let mut c = with_peers(12, t0);
    c.set_seeding(true);
    let mut served = HashSet::new();
    let mut now = t0;
    for _ in 0..30 {
        c.rechoke(now, &mut rng(now.duration_since(t0).as_secs()));
        for k in unchoked(&c) {
            served.insert(k);
            // Peer 0 is the fastest to upload to; it must still yield its turn.
            c.block_sent(k, if k.0 == 0 { 1_000_000 } else { 1000 }, now);
        }
        now += secs(10);
    }
    assert_eq!(served.len(), 12);
}

/// A seed's early rechoke (the state runs one when a peer becomes interested while a slot is
/// free) unchokes the newcomer at once and disturbs nobody in the middle of a turn.
#[test]
fn seeding_newcomer_takes_a_free_slot_without_waiting_for_the_rechoke() {
    let t0 = Instant::now();
    let mut c = with_peers(2, t0);
    c.set_seeding(true);
    c.rechoke(t0, &mut rng(1));
    assert_eq!(unchoked(&c), vec![PeerKey(0), PeerKey(1)]);
    for k in 0..2 {
        c.block_sent(PeerKey(k), 5_000_000, t0 + secs(1));
    }
    let now = t0 + secs(2);
    assert!(
        now < c.next_rechoke(),
        "early: the regular rechoke is not due"
    );
    c.add_peer(PeerKey(2), now);
    c.set_interested(PeerKey(2), true);
    assert_eq!(c.rechoke(now, &mut rng(2)), vec![(PeerKey(2), true)]);
    // With every slot and the optimistic unchoke taken, a newcomer waits for its turn.
    for k in 3..6 {
        c.add_peer(PeerKey(k), now);
        c.set_interested(PeerKey(k), true);
    }
    c.rechoke(now, &mut rng(3));
    assert_eq!(unchoked(&c).len(), 5, "4 regular + 1 optimistic");
    for k in 0..3 {
        assert!(c.is_unchoked(PeerKey(k)), "peer {k} lost its turn early");
    }
}

#[test]
fn new_peers_are_three_times_as_likely() {
    let t0 = Instant::now();
    let mut new_wins = 0;
    let trials = 2000;
    for seed in 0..trials {
        let mut c = Choker::new(
            ChokerConfig {
                slots: 1,
                ..ChokerConfig::default()
            },
            t0,
        );
        // Peer 0 takes the regular slot; 1 is old, 2 is new.
        for k in 0..3 {
            c.add_peer(PeerKey(k), t0);
            c.set_interested(PeerKey(k), true);
        }
        let now = t0 + secs(120);
        c.block_received(PeerKey(0), 1_000_000, now);
        c.peers.get_mut(&PeerKey(2)).unwrap().connected_at = now;
        c.rechoke(now, &mut rng(seed));
        if c.optimistic() == Some(PeerKey(2)) {
            new_wins += 1;
        }
    }
    // Expected 3/4 of the trials.
    assert!(
        (1350..1650).contains(&new_wins),
        "new peer won {new_wins} of {trials}"
    );
}

#[test]
fn zero_slots_unchoke_nobody() {
    let t0 = Instant::now();
    let mut c = Choker::new(
        ChokerConfig {
            slots: 0,
            ..ChokerConfig::default()
        },
        t0,
    );
    c.add_peer(PeerKey(1), t0);
    c.set_interested(PeerKey(1), true);
    assert_eq!(c.rechoke(t0, &mut rng(1)), vec![]);
}

#[derive(Clone, Debug)]
enum Op {
    Add,
    Remove(usize),
    Interested(usize, bool),
    AmInterested(usize, bool),
    PeerChoking(usize, bool),
    Received(usize, u32),
    Sent(usize, u32),
    Advance(u16),
    Rechoke,
    Seeding(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Add),
        1 => any::<usize>().prop_map(Op::Remove),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(k, b)| Op::Interested(k, b)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(k, b)| Op::AmInterested(k, b)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(k, b)| Op::PeerChoking(k, b)),
        4 => (any::<usize>(), 0u32..2_000_000).prop_map(|(k, n)| Op::Received(k, n)),
        2 => (any::<usize>(), 0u32..2_000_000).prop_map(|(k, n)| Op::Sent(k, n)),
        4 => (0u16..25_000).prop_map(Op::Advance),
        4 => Just(Op::Rechoke),
        1 => any::<bool>().prop_map(Op::Seeding),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn invariants_hold_after_every_rechoke(
        ops in prop::collection::vec(op(), 1..150),
        slots in 0usize..6,
        seed in any::<u64>(),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut rng = rng(seed);
        let mut c = Choker::new(ChokerConfig { slots, ..ChokerConfig::default() }, t0);
        let mut keys: Vec<PeerKey> = Vec::new();
        let mut next = 0;
        // What the peers were told, from the returned changes only.
        let mut told: HashMap<PeerKey, bool> = HashMap::new();
        for op in ops {
            let pick = |i: usize| keys.get(i % keys.len().max(1)).copied();
            match op {
                Op::Add => {
                    c.add_peer(PeerKey(next), now);
                    keys.push(PeerKey(next));
                    next += 1;
                }
                Op::Remove(i) => {
                    if let Some(k) = pick(i) {
                        c.remove_peer(k);
                        keys.retain(|x| *x != k);
                        told.remove(&k);
                    }
                }
                Op::Interested(i, b) => if let Some(k) = pick(i) { c.set_interested(k, b) },
                Op::AmInterested(i, b) => if let Some(k) = pick(i) { c.set_am_interested(k, b, now) },
                Op::PeerChoking(i, b) => if let Some(k) = pick(i) { c.set_peer_choking(k, b, now) },
                Op::Received(i, n) => if let Some(k) = pick(i) { c.block_received(k, u64::from(n), now) },
                Op::Sent(i, n) => if let Some(k) = pick(i) { c.block_sent(k, u64::from(n), now) },
                Op::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
                Op::Seeding(b) => c.set_seeding(b),
                Op::Rechoke => {
                    for (k, u) in c.rechoke(now, &mut rng) {
                        let before = told.get(&k).copied().unwrap_or(false);
                        prop_assert_ne!(before, u, "a change that changes nothing");
                        told.insert(k, u);
                    }
                    let up = unchoked(&c);
                    prop_assert!(up.len() <= slots + 1);
                    for k in &up {
                        prop_assert!(c.peers[k].interested, "uninterested {:?} unchoked", k);
                        if c.optimistic() != Some(*k) {
                            prop_assert!(!c.is_snubbed(*k, now), "snubbed {:?} holds a slot", k);
                        }
                        prop_assert_eq!(told.get(k).copied(), Some(true));
                    }
                    prop_assert_eq!(told.values().filter(|u| **u).count(), up.len());
                    prop_assert!(c.next_rechoke() == now + secs(10));
                }
            }
        }
    }

    #[test]
    fn every_interested_peer_gets_an_optimistic_turn(
        n in 6u32..20,
        rates in prop::collection::vec(0u64..1_000_000, 20),
        seed in any::<u64>(),
    ) {
        let t0 = Instant::now();
        let mut c = with_peers(n, t0);
        let mut rng = rng(seed);
        let mut now = t0;
        let mut turns = HashSet::new();
        let mut regular = HashSet::new();
        // Two rotations per candidate is the bound the module promises.
        for _ in 0..(2 * n + 2) * 3 {
            for k in 0..n {
                c.block_received(PeerKey(k), rates[k as usize], now);
            }
            c.rechoke(now, &mut rng);
            turns.extend(c.optimistic());
            for k in unchoked(&c) {
                if c.optimistic() != Some(k) {
                    regular.insert(k);
                }
            }
            now += secs(10);
        }
        for k in 0..n {
            let k = PeerKey(k);
            prop_assert!(turns.contains(&k) || regular.contains(&k), "{:?} never unchoked", k);
        }
        // Peers that never held a regular slot all had an optimistic turn.
        for k in (0..n).map(PeerKey).filter(|k| !regular.contains(k)) {
            prop_assert!(turns.contains(&k));
        }
    }
}
