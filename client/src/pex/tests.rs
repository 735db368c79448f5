//! Unit and property tests of the PEX diff and pacing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rill_common::wire::extension::PexFlags;

use super::*;

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881))
}

fn set(items: &[(u16, u8)]) -> PexSet {
    items
        .iter()
        .map(|(i, f)| (addr(*i), PexFlags(*f)))
        .collect()
}

#[test]
fn diff_adds_new_and_changed_drops_gone() {
    let known = set(&[(1, 0), (2, 0), (3, 2)]);
    let current = set(&[(2, 0), (3, 0), (4, 16)]);
    let m = diff(&known, &current, 50);
    let added: Vec<_> = m.added.iter().map(|p| (p.addr, p.flags)).collect();
    assert_eq!(added, vec![(addr(3), PexFlags(0)), (addr(4), PexFlags(16))]);
    assert_eq!(m.dropped, vec![addr(1)]);
    let mut k = known.clone();
    apply(&mut k, &m);
    assert_eq!(k, current);
}

#[test]
fn diff_caps_each_list() {
    let current: PexSet = (0..120).map(|i| (addr(i), PexFlags(0))).collect();
    let m = diff(&PexSet::new(), &current, 50);
    assert_eq!(m.added.len(), 50);
    assert!(m.dropped.is_empty());
}

#[test]
fn flags_say_seed_and_reachable_only() {
    assert_eq!(flags(false, false), PexFlags(0));
    assert_eq!(flags(true, true), PexFlags::SEED.union(PexFlags::REACHABLE));
    assert!(!flags(true, true).contains(PexFlags::UTP));
}

#[test]
fn take_caps_and_skips_port_zero() {
    let mut current: PexSet = (0..120).map(|i| (addr(i), PexFlags(0))).collect();
    current.insert(SocketAddr::from(([10, 9, 9, 9], 0)), PexFlags(0));
    let m = diff(&PexSet::new(), &current, 200);
    let taken = take(&m);
    assert_eq!(taken.len(), MAX_PEX_TAKEN);
    assert!(taken.iter().all(|a| a.port() != 0));
}

#[test]
fn pacing_is_one_message_a_minute_and_nothing_when_unchanged() {
    let t0 = Instant::now();
    let mut out = PexOut::default();
    let current = set(&[(1, 0)]);
    assert_eq!(out.poll(&current, t0), None, "not enabled");
    out.enable(t0);
    assert_eq!(out.poll(&current, t0), None, "first message after a delay");
    let first = out
        .poll(&current, t0 + PEX_FIRST_DELAY)
        .expect("first message");
    assert_eq!(first.added.len(), 1);
    let changed = set(&[(2, 0)]);
    let soon = t0 + PEX_FIRST_DELAY + Duration::from_secs(59);
    assert_eq!(out.poll(&changed, soon), None, "at most one a minute");
    let later = t0 + PEX_FIRST_DELAY + PEX_INTERVAL;
    let second = out.poll(&changed, later).expect("second message");
    assert_eq!(second.dropped, vec![addr(1)]);
    assert_eq!(
        out.poll(&changed, later + PEX_INTERVAL),
        None,
        "nothing new"
    );
}

#[test]
fn incoming_floods_are_ignored() {
    let t0 = Instant::now();
    let mut out = PexOut::default();
    assert!(out.accept_incoming(t0));
    assert!(!out.accept_incoming(t0 + Duration::from_secs(1)));
    assert!(out.accept_incoming(t0 + PEX_MIN_GAP));
}

fn pex_set() -> impl Strategy<Value = PexSet> {
    prop::collection::btree_map(
        (0u16..300).prop_map(addr),
        (0u8..4).prop_map(|f| PexFlags(f << 3)),
        0..150,
    )
}

proptest! {
    #[test]
    fn diffs_are_disjoint_capped_and_converge(
        start in pex_set(),
        steps in prop::collection::vec(pex_set(), 1..5),
        max in 1usize..60,
    ) {
        let mut known = start;
        for current in steps {
            // Successive capped diffs reach the current set.
            for _ in 0..=(known.len() + current.len()) / max + 1 {
                let m = diff(&known, &current, max);
                prop_assert!(m.added.len() <= max && m.dropped.len() <= max);
                for peer in &m.added {
                    prop_assert!(!m.dropped.contains(&peer.addr), "added and dropped overlap");
                    prop_assert_eq!(current.get(&peer.addr), Some(&peer.flags));
                }
                for a in &m.dropped {
                    prop_assert!(known.contains_key(a) && !current.contains_key(a));
                }
                apply(&mut known, &m);
            }
            prop_assert_eq!(&known, &current);
            let m = diff(&known, &current, max);
            prop_assert!(m.added.is_empty() && m.dropped.is_empty());
        }
    }
}
