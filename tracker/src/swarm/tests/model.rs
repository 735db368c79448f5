//! Proptests: random announces, stops, clock steps and purges against a plain model of the
//! swarms, checking the store's invariants after every step.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::PeerId;
use rill_common::tracker::AnnounceEvent;

use super::{at, hash, id, v4, v6};
use crate::swarm::{PeerAnnounce, SwarmConfig, SwarmStore};

const TTL: u64 = 100;

#[derive(Clone, Debug)]
enum Op {
    Announce {
        torrent: u8,
        peer: u8,
        peer_id: u8,
        event: Option<AnnounceEvent>,
        seeder: bool,
        numwant: Option<u32>,
    },
    Advance(u64),
    Purge,
}

fn address(peer: u8) -> SocketAddr {
    // Peers 0..8 IPv4, 8..12 IPv6, 12..14 IPv4-mapped IPv6 of peers 0 and 1.
    match peer {
        0..8 => v4(peer / 2, u16::from(peer % 2) + 1),
        8..12 => v6(u16::from(peer), 1),
        12..14 => SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(10, 0, 0, 0).to_ipv6_mapped()),
            u16::from(peer - 12) + 1,
        ),
        _ => v4(peer, 9),
    }
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    crate::swarm::canonical(addr)
}

/// Announces from `peers` addresses (see [`address`]), clock steps and purges.
fn op(peers: u8) -> impl Strategy<Value = Op> {
    let event = prop_oneof![
        3 => Just(None),
        1 => Just(Some(AnnounceEvent::Started)),
        2 => Just(Some(AnnounceEvent::Completed)),
        2 => Just(Some(AnnounceEvent::Stopped)),
        1 => Just(Some(AnnounceEvent::Paused)),
    ];
    prop_oneof![
        8 => (0..3u8, 0..peers, 0..3u8, event, any::<bool>(), proptest::option::of(0..8u32))
            .prop_map(|(torrent, peer, peer_id, event, seeder, numwant)| Op::Announce {
                torrent, peer, peer_id, event, seeder, numwant,
            }),
        2 => (0..60u64).prop_map(Op::Advance),
        1 => Just(Op::Purge),
    ]
}

/// The model: (torrent, address) -> (peer id, seeder, last seen, completion counted).
type Model = HashMap<(u8, SocketAddr), (PeerId, bool, u64, bool)>;

fn check_store(s: &SwarmStore, model: &Model, downloaded: &HashMap<u8, u32>) {
    let mut seeders = 0;
    let mut leechers = 0;
    for t in 0..3u8 {
        let recount_s = model.iter().filter(|((tt, _), v)| *tt == t && v.1).count();
        let recount_l = model.iter().filter(|((tt, _), v)| *tt == t && !v.1).count();
        let c = s.scrape(&hash(t));
        assert_eq!(c.complete as usize, recount_s);
        assert_eq!(c.incomplete as usize, recount_l);
        if s.torrents.contains_key(&hash(t)) {
            assert_eq!(c.downloaded, downloaded.get(&t).copied().unwrap_or(0));
        }
        seeders += recount_s;
        leechers += recount_l;
    }
    assert_eq!(
        (s.totals().seeders, s.totals().leechers),
        (seeders, leechers)
    );
    for torrent in s.torrents.values() {
        torrent.v4.check_invariants();
        torrent.v6.check_invariants();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Small swarms (no hash index), IPv4, IPv6 and IPv4-mapped addresses.
    #[test]
    fn store_matches_a_model(ops in proptest::collection::vec(op(14), 1..120), seed in any::<u64>()) {
        run_model(ops, seed)?;
    }

    /// Swarms that grow past `SMALL` and shrink back: the hash index comes and goes.
    #[test]
    fn indexed_store_matches_a_model(
        ops in proptest::collection::vec(op(60), 1..400),
        seed in any::<u64>(),
    ) {
        run_model(ops, seed)?;
    }
}

fn run_model(ops: Vec<Op>, seed: u64) -> Result<(), TestCaseError> {
    {
        let config = SwarmConfig {
            peer_ttl: Duration::from_secs(TTL),
            default_numwant: 3,
            max_numwant: 5,
        };
        let mut s = SwarmStore::new(config);
        let mut rng = StdRng::seed_from_u64(seed);
        let t0 = Instant::now();
        let mut now = 0u64;
        let mut model: Model = HashMap::new();
        let mut downloaded: HashMap<u8, u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Advance(secs) => now += secs,
                Op::Purge => {
                    let before = model.len();
                    model.retain(|_, v| now - v.2 < TTL);
                    let purged = s.purge(at(t0, now));
                    prop_assert_eq!(purged.peers, before - model.len());
                    // Peerless torrents are gone (and their counts with them).
                    let live: HashSet<u8> = model.keys().map(|k| k.0).collect();
                    downloaded.retain(|t, _| live.contains(t));
                    prop_assert_eq!(s.totals().torrents, live.len());
                    for t in 0..3u8 {
                        prop_assert_eq!(s.torrents.contains_key(&hash(t)), live.contains(&t));
                    }
                    // Nobody left is as old as the ttl.
                    let now_s = u64::from(s.seconds(at(t0, now)));
                    for t in s.torrents.values() {
                        let ages =
                            t.v4.entries()
                                .iter()
                                .map(|e| e.last_seen)
                                .chain(t.v6.entries().iter().map(|e| e.last_seen));
                        for seen in ages {
                            prop_assert!(now_s - u64::from(seen) < TTL);
                        }
                    }
                }
                Op::Announce {
                    torrent,
                    peer,
                    peer_id,
                    event,
                    seeder,
                    numwant,
                } => {
                    let addr = canonical(address(peer));
                    let a = PeerAnnounce {
                        info_hash: hash(torrent),
                        peer_id: id(peer_id),
                        addr: address(peer),
                        event,
                        left: if seeder { 0 } else { 1234 },
                        numwant,
                    };
                    let r = s.announce(&a, at(t0, now), &mut rng);
                    let key = (torrent, addr);
                    if event == Some(AnnounceEvent::Stopped) {
                        model.remove(&key);
                        prop_assert!(r.peers_v4.is_empty() && r.peers_v6.is_empty());
                    } else {
                        let prev = model.get(&key).copied();
                        let counted = prev.is_some_and(|p| p.0 == id(peer_id) && p.3);
                        let count = event == Some(AnnounceEvent::Completed) && seeder && !counted;
                        if count {
                            *downloaded.entry(torrent).or_default() += 1;
                        }
                        model.insert(key, (id(peer_id), seeder, now, counted || count));
                        // The reply: no requester, no duplicates, no seeder for a seeder,
                        // as many as numwant allows of those eligible, per family.
                        let want = numwant.map_or(3, |n| n as usize).min(5);
                        for (peers, is_v4) in [(&r.peers_v4, true), (&r.peers_v6, false)] {
                            let eligible = model
                                .iter()
                                .filter(|((t, ad), v)| {
                                    *t == torrent
                                        && *ad != addr
                                        && ad.is_ipv4() == is_v4
                                        && !(seeder && v.1)
                                })
                                .count();
                            prop_assert_eq!(peers.len(), want.min(eligible));
                            let distinct: HashSet<_> = peers.iter().map(|p| p.addr).collect();
                            prop_assert_eq!(distinct.len(), peers.len());
                            for p in peers.iter() {
                                prop_assert_ne!(p.addr, addr);
                                prop_assert_eq!(p.addr.is_ipv4(), is_v4);
                                let m = model.get(&(torrent, p.addr));
                                prop_assert!(m.is_some(), "unknown peer {} in reply", p.addr);
                                let m = m.copied().unwrap();
                                prop_assert_eq!(p.peer_id, Some(m.0));
                                prop_assert!(
                                    !(seeder && m.1),
                                    "seeder {} sent to a seeder",
                                    p.addr
                                );
                            }
                        }
                    }
                    let c = s.scrape(&hash(torrent));
                    prop_assert_eq!((r.complete, r.incomplete), (c.complete, c.incomplete));
                }
            }
            check_store(&s, &model, &downloaded);
        }
    }
    Ok(())
}
