//! Unit tests and proptests of the swarm store: a fake clock (a base `Instant` plus offsets)
//! and a seeded `StdRng`, so every run is the same.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::tracker::AnnounceEvent;
use rill_common::{InfoHash, PeerId};

use super::{PeerAnnounce, ScrapeCounts, SwarmConfig, SwarmStore, Totals, shard_of};

mod model;

fn hash(n: u8) -> InfoHash {
    InfoHash::from_bytes([n; 20])
}

fn id(n: u8) -> PeerId {
    PeerId::from_bytes([n; 20])
}

fn v4(n: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), port)
}

fn v6(n: u16, port: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)),
        port,
    )
}

fn at(base: Instant, secs: u64) -> Instant {
    base + Duration::from_secs(secs)
}

fn ann(info_hash: InfoHash, addr: SocketAddr, left: u64) -> PeerAnnounce {
    PeerAnnounce {
        info_hash,
        peer_id: id(addr.port() as u8),
        addr,
        event: None,
        left,
        numwant: None,
    }
}

fn with_event(mut a: PeerAnnounce, event: AnnounceEvent) -> PeerAnnounce {
    a.event = Some(event);
    a
}

fn store() -> (SwarmStore, Instant, StdRng) {
    (
        SwarmStore::new(SwarmConfig::default()),
        Instant::now(),
        StdRng::seed_from_u64(7),
    )
}

fn counts(complete: u32, incomplete: u32, downloaded: u32) -> ScrapeCounts {
    ScrapeCounts {
        complete,
        incomplete,
        downloaded,
    }
}

#[test]
fn default_config_is_documented_values() {
    let c = SwarmConfig::default();
    assert_eq!(c.peer_ttl, Duration::from_secs(31 * 60));
    assert_eq!((c.default_numwant, c.max_numwant), (50, 200));
    let c = SwarmConfig::for_interval(Duration::from_secs(120));
    assert_eq!(c.peer_ttl, Duration::from_secs(300));
}

#[test]
fn first_announce_creates_the_torrent_and_gets_no_peers() {
    let (mut s, t0, mut rng) = store();
    let r = s.announce(&ann(hash(1), v4(1, 1), 100), t0, &mut rng);
    assert!(r.peers_v4.is_empty() && r.peers_v6.is_empty());
    assert_eq!((r.complete, r.incomplete, r.downloaded), (0, 1, 0));
    assert_eq!(s.scrape(&hash(1)), counts(0, 1, 0));
    let totals = Totals {
        torrents: 1,
        seeders: 0,
        leechers: 1,
    };
    assert_eq!(s.totals(), totals);
}

#[test]
fn reannounce_from_same_address_updates_not_duplicates() {
    let (mut s, t0, mut rng) = store();
    s.announce(&ann(hash(1), v4(1, 1), 100), t0, &mut rng);
    let mut again = ann(hash(1), v4(1, 1), 0);
    again.peer_id = id(99);
    let r = s.announce(&again, at(t0, 10), &mut rng);
    assert_eq!((r.complete, r.incomplete), (1, 0));
    // Another peer sees the new peer id.
    let r = s.announce(&ann(hash(1), v4(2, 2), 100), at(t0, 20), &mut rng);
    assert_eq!(r.peers_v4.len(), 1);
    assert_eq!(r.peers_v4[0].addr, v4(1, 1));
    assert_eq!(r.peers_v4[0].peer_id, Some(id(99)));
    // Same IP, other port: another peer.
    s.announce(&ann(hash(1), v4(1, 2), 100), at(t0, 30), &mut rng);
    assert_eq!(s.scrape(&hash(1)), counts(1, 2, 0));
    assert_eq!(s.totals().seeders + s.totals().leechers, 3);
}

#[test]
fn a_seeder_that_becomes_a_leecher_is_recounted() {
    let (mut s, t0, mut rng) = store();
    s.announce(&ann(hash(1), v4(1, 1), 0), t0, &mut rng);
    s.announce(&ann(hash(1), v4(2, 2), 0), t0, &mut rng);
    s.announce(&ann(hash(1), v4(1, 1), 5), t0, &mut rng);
    assert_eq!(s.scrape(&hash(1)), counts(1, 1, 0));
    assert_eq!((s.totals().seeders, s.totals().leechers), (1, 1));
}

#[test]
fn stopped_removes_the_peer_and_returns_counts_without_peers() {
    let (mut s, t0, mut rng) = store();
    s.announce(&ann(hash(1), v4(1, 1), 0), t0, &mut rng);
    s.announce(&ann(hash(1), v4(2, 2), 10), t0, &mut rng);
    let stop = with_event(ann(hash(1), v4(2, 2), 10), AnnounceEvent::Stopped);
    let r = s.announce(&stop, t0, &mut rng);
    assert!(r.peers_v4.is_empty() && r.peers_v6.is_empty());
    assert_eq!((r.complete, r.incomplete), (1, 0));
    assert_eq!(s.scrape(&hash(1)), counts(1, 0, 0));
    // The stopped peer is no longer handed out.
    let r = s.announce(&ann(hash(1), v4(3, 3), 10), t0, &mut rng);
    assert_eq!(r.peers_v4.len(), 1);
    assert_eq!(r.peers_v4[0].addr, v4(1, 1));
}

#[test]
fn stopped_from_unknown_peer_or_torrent_changes_nothing() {
    let (mut s, t0, mut rng) = store();
    let stop = with_event(ann(hash(1), v4(1, 1), 0), AnnounceEvent::Stopped);
    let r = s.announce(&stop, t0, &mut rng);
    assert_eq!((r.complete, r.incomplete, r.downloaded), (0, 0, 0));
    assert_eq!(s.totals(), Totals::default());
    assert_eq!(s.scrape_all().count(), 0);
    s.announce(&ann(hash(1), v4(2, 2), 0), t0, &mut rng);
    let r = s.announce(&stop, t0, &mut rng);
    assert_eq!((r.complete, r.incomplete), (1, 0));
}

#[test]
fn completed_counts_once_per_peer() {
    let (mut s, t0, mut rng) = store();
    let h = hash(1);
    s.announce(
        &with_event(ann(h, v4(1, 1), 10), AnnounceEvent::Started),
        t0,
        &mut rng,
    );
    let done = with_event(ann(h, v4(1, 1), 0), AnnounceEvent::Completed);
    assert_eq!(s.announce(&done, t0, &mut rng).downloaded, 1);
    // A duplicate `completed` does not count again, nor does a regular announce.
    assert_eq!(s.announce(&done, t0, &mut rng).downloaded, 1);
    assert_eq!(s.announce(&ann(h, v4(1, 1), 0), t0, &mut rng).downloaded, 1);
    // `completed` with bytes left is not a completion.
    let bogus = with_event(ann(h, v4(2, 2), 5), AnnounceEvent::Completed);
    assert_eq!(s.announce(&bogus, t0, &mut rng).downloaded, 1);
    // A peer first seen with `completed` (the tracker restarted meanwhile) counts.
    let fresh = with_event(ann(h, v4(3, 3), 0), AnnounceEvent::Completed);
    assert_eq!(s.announce(&fresh, t0, &mut rng).downloaded, 2);
    assert_eq!(s.scrape(&h), counts(2, 1, 2));
}

#[test]
fn a_new_peer_id_on_the_same_address_is_a_new_completion() {
    let (mut s, t0, mut rng) = store();
    let done = with_event(ann(hash(1), v4(1, 1), 0), AnnounceEvent::Completed);
    s.announce(&done, t0, &mut rng);
    let mut other = done;
    other.peer_id = id(200);
    assert_eq!(s.announce(&other, t0, &mut rng).downloaded, 2);
}

#[test]
fn a_stopped_peer_that_completes_again_counts_again() {
    let (mut s, t0, mut rng) = store();
    let done = with_event(ann(hash(1), v4(1, 1), 0), AnnounceEvent::Completed);
    s.announce(&done, t0, &mut rng);
    s.announce(&with_event(done, AnnounceEvent::Stopped), t0, &mut rng);
    // The torrent survives its last peer's stop until a purge, with its count.
    assert_eq!(s.scrape(&hash(1)), counts(0, 0, 1));
    assert_eq!(s.announce(&done, t0, &mut rng).downloaded, 2);
}

#[test]
fn reply_excludes_the_requester_and_honours_numwant() {
    let (mut s, t0, mut rng) = store();
    let h = hash(1);
    for n in 1..=100u8 {
        s.announce(&ann(h, v4(n, u16::from(n)), 10), t0, &mut rng);
    }
    let me = ann(h, v4(1, 1), 10);
    let r = s.announce(&me, t0, &mut rng);
    assert_eq!(r.peers_v4.len(), 50, "default numwant");
    assert!(r.peers_v4.iter().all(|p| p.addr != me.addr));
    let distinct: HashSet<_> = r.peers_v4.iter().map(|p| p.addr).collect();
    assert_eq!(distinct.len(), 50);

    let mut few = me;
    few.numwant = Some(7);
    assert_eq!(s.announce(&few, t0, &mut rng).peers_v4.len(), 7);
    few.numwant = Some(0);
    assert!(s.announce(&few, t0, &mut rng).peers_v4.is_empty());
    // More than there are: everyone else, once.
    few.numwant = Some(150);
    let r = s.announce(&few, t0, &mut rng);
    assert_eq!(r.peers_v4.len(), 99);
    assert!(r.peers_v4.iter().all(|p| p.addr != me.addr));
}

#[test]
fn numwant_is_capped() {
    let (mut s, t0, mut rng) = store();
    let h = hash(1);
    for n in 0..300u16 {
        s.announce(&ann(h, v6(n, 1000 + n), 10), t0, &mut rng);
    }
    let mut me = ann(h, v6(0, 1000), 10);
    me.numwant = Some(u32::MAX);
    let r = s.announce(&me, t0, &mut rng);
    assert_eq!(r.peers_v6.len(), 200);
    assert!(r.peers_v6.iter().all(|p| p.addr != me.addr));
}

#[test]
fn a_seeder_gets_only_leechers() {
    let (mut s, t0, mut rng) = store();
    let h = hash(1);
    for n in 1..=10u8 {
        s.announce(&ann(h, v4(n, 1), 0), t0, &mut rng);
    }
    for n in 11..=13u8 {
        s.announce(&ann(h, v4(n, 1), 5), t0, &mut rng);
    }
    let r = s.announce(&ann(h, v4(1, 1), 0), t0, &mut rng);
    let leechers: HashSet<_> = (11..=13u8).map(|n| v4(n, 1)).collect();
    let got: HashSet<_> = r.peers_v4.iter().map(|p| p.addr).collect();
    assert_eq!(got, leechers);
    // A leecher gets both.
    let r = s.announce(&ann(h, v4(11, 1), 5), t0, &mut rng);
    assert_eq!(r.peers_v4.len(), 12);
}

#[test]
fn families_are_separate_lists_and_mapped_addresses_are_ipv4() {
    let (mut s, t0, mut rng) = store();
    let h = hash(1);
    s.announce(&ann(h, v4(1, 1), 5), t0, &mut rng);
    s.announce(&ann(h, v6(1, 1), 5), t0, &mut rng);
    let mapped = SocketAddr::new(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped()), 2);
    let r = s.announce(&ann(h, mapped, 5), t0, &mut rng);
    assert_eq!(r.peers_v4.len(), 1);
    assert_eq!(r.peers_v4[0].addr, v4(1, 1));
    assert_eq!(r.peers_v6.len(), 1);
    assert_eq!(r.peers_v6[0].addr, v6(1, 1));
    // The mapped requester was stored as 10.0.0.2:2.
    let r = s.announce(&ann(h, v4(3, 3), 5), t0, &mut rng);
    let got: HashSet<_> = r.peers_v4.iter().map(|p| p.addr).collect();
    assert_eq!(got, HashSet::from([v4(1, 1), v4(2, 2)]));
    assert_eq!(s.scrape(&h), counts(0, 4, 0));
}

#[test]
fn sampling_is_uniform() {
    let (mut s, t0, mut rng) = store();
    let h = hash(1);
    for n in 0..20u8 {
        s.announce(&ann(h, v4(n, 1), 5), t0, &mut rng);
    }
    let mut me = ann(h, v4(0, 1), 5);
    me.numwant = Some(5);
    let mut seen: HashMap<SocketAddr, u32> = HashMap::new();
    let rounds = 3800;
    for _ in 0..rounds {
        for p in s.announce(&me, t0, &mut rng).peers_v4 {
            *seen.entry(p.addr).or_default() += 1;
        }
    }
    // 19 others, 5 drawn per round: each expected 1000 times.
    assert_eq!(seen.len(), 19);
    for (addr, n) in seen {
        assert!((850..=1150).contains(&n), "{addr} drawn {n} times");
    }
}

#[test]
fn purge_drops_expired_peers_and_peerless_torrents() {
    let (mut s, t0, mut rng) = store();
    let ttl = s.config().peer_ttl.as_secs();
    s.announce(&ann(hash(1), v4(1, 1), 0), t0, &mut rng);
    s.announce(&ann(hash(1), v4(2, 2), 5), at(t0, 100), &mut rng);
    s.announce(&ann(hash(2), v4(3, 3), 5), t0, &mut rng);
    // Just under the ttl: nobody goes.
    assert_eq!(s.purge(at(t0, ttl - 1)).peers, 0);
    let purged = s.purge(at(t0, ttl));
    assert_eq!((purged.peers, purged.torrents), (2, 1));
    assert_eq!(s.scrape(&hash(1)), counts(0, 1, 0));
    assert_eq!(s.scrape(&hash(2)), ScrapeCounts::default());
    let totals = Totals {
        torrents: 1,
        seeders: 0,
        leechers: 1,
    };
    assert_eq!(s.totals(), totals);
    // A re-announce keeps a peer alive.
    s.announce(&ann(hash(1), v4(2, 2), 5), at(t0, ttl + 50), &mut rng);
    assert_eq!(s.purge(at(t0, ttl + 100)).peers, 0);
    assert_eq!(s.purge(at(t0, 2 * ttl + 50)).peers, 1);
    assert_eq!(s.totals(), Totals::default());
}

#[test]
fn purge_drops_a_torrent_whose_last_peer_stopped() {
    let (mut s, t0, mut rng) = store();
    let a = ann(hash(1), v4(1, 1), 0);
    s.announce(&a, t0, &mut rng);
    s.announce(&with_event(a, AnnounceEvent::Stopped), t0, &mut rng);
    assert_eq!(s.totals().torrents, 1);
    let purged = s.purge(at(t0, 1));
    assert_eq!((purged.peers, purged.torrents), (0, 1));
    assert_eq!(s.totals(), Totals::default());
}

#[test]
fn a_swarm_gets_an_index_when_it_grows_and_loses_it_when_it_shrinks() {
    let (mut s, t0, mut rng) = store();
    let h = hash(1);
    let big = u8::try_from(super::list::SMALL + 8).unwrap();
    for n in 0..big {
        s.announce(&ann(h, v4(n, 1), u64::from(n % 3)), t0, &mut rng);
        s.torrents[&h].v4.check_invariants();
    }
    assert!(s.torrents[&h].v4.has_index());
    let r = s.announce(&ann(h, v4(5, 1), 1), t0, &mut rng);
    assert_eq!(r.peers_v4.len(), usize::from(big) - 1);
    for n in 0..big - 3 {
        let stop = with_event(ann(h, v4(n, 1), 1), AnnounceEvent::Stopped);
        s.announce(&stop, t0, &mut rng);
        s.torrents[&h].v4.check_invariants();
    }
    assert!(!s.torrents[&h].v4.has_index());
    let r = s.announce(&ann(h, v4(big - 1, 1), 1), t0, &mut rng);
    let got: HashSet<_> = r.peers_v4.iter().map(|p| p.addr).collect();
    assert_eq!(got, HashSet::from([v4(big - 3, 1), v4(big - 2, 1)]));
}

#[test]
fn scrape_all_lists_every_torrent() {
    let (mut s, t0, mut rng) = store();
    s.announce(&ann(hash(1), v4(1, 1), 0), t0, &mut rng);
    s.announce(&ann(hash(2), v4(1, 1), 3), t0, &mut rng);
    let all: HashMap<_, _> = s.scrape_all().collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[&hash(1)], counts(1, 0, 0));
    assert_eq!(all[&hash(2)], counts(0, 1, 0));
}

#[test]
fn shard_of_is_in_range_and_spreads() {
    assert_eq!(shard_of(&hash(9), 0), 0);
    assert_eq!(shard_of(&hash(9), 1), 0);
    let mut per_shard = [0u32; 8];
    for n in 0..8000u32 {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_le_bytes());
        let s = shard_of(&InfoHash::from_bytes(b), 8);
        per_shard[s] += 1;
    }
    assert!(
        per_shard.iter().all(|&n| (800..=1200).contains(&n)),
        "{per_shard:?}"
    );
    // Stable: the same hash, the same shard.
    assert_eq!(shard_of(&hash(77), 5), shard_of(&hash(77), 5));
}

#[test]
fn peer_records_stay_compact() {
    use std::mem::size_of;
    use std::net::SocketAddrV4;

    use super::list::{Entry, PeerList, V6};
    assert_eq!(size_of::<Entry<SocketAddrV4>>(), 32);
    assert_eq!(size_of::<Entry<V6>>(), 44);
    // An empty family costs a torrent 40 bytes: no hash map inline.
    assert_eq!(size_of::<PeerList<V6>>(), 40);
}

/// A restart: the swarms, seeder flags, counted completions and `downloaded` counts come
/// back through the saved bytes; a peer's age carries over (it expires when it would have),
/// an expired peer is not restored, and a restored completion is not counted twice.
#[test]
fn export_then_restore_rebuilds_the_swarms() {
    let (mut store, base, mut rng) = store();
    let ttl = store.config().peer_ttl.as_secs();
    let seeder = with_event(ann(hash(1), v4(1, 1), 0), AnnounceEvent::Completed);
    store.announce(&seeder, base, &mut rng);
    store.announce(&ann(hash(1), v6(2, 2), 5), at(base, 100), &mut rng);
    store.announce(&ann(hash(2), v4(3, 3), 5), at(base, 100), &mut rng);
    // Peer 3 stops: torrent 2 keeps no peer and no count, so it is not worth saving.
    store.announce(
        &with_event(ann(hash(2), v4(3, 3), 5), AnnounceEvent::Stopped),
        at(base, 101),
        &mut rng,
    );
    let unix = 1_700_000_000;
    let saved = store.export(at(base, 200), unix);
    let bytes = super::snapshot::encode(&saved);

    let (mut restarted, base2, mut rng) = store_at(Instant::now());
    let saved = super::snapshot::decode(&bytes).unwrap();
    // Restored 50 s after the save.
    restarted.restore(&saved, base2, unix + 50);
    assert_eq!(
        restarted.totals(),
        Totals {
            torrents: 1,
            seeders: 1,
            leechers: 1
        }
    );
    let counts = ScrapeCounts {
        complete: 1,
        incomplete: 1,
        downloaded: 1,
    };
    assert_eq!(restarted.scrape(&hash(1)), counts);
    // The seeder's completion was counted before: a duplicate `completed` does not count.
    let reply = restarted.announce(&seeder, at(base2, 1), &mut rng);
    assert_eq!(reply.downloaded, 1);
    assert_eq!(reply.peers_v6.len(), 1, "a seeder is given the leecher");
    // The leecher was last seen 150 s before the restart: it expires 150 s earlier than a
    // peer announcing now.
    restarted.purge(at(base2, ttl - 150 + 1));
    assert_eq!(restarted.scrape(&hash(1)).incomplete, 0);
    assert_eq!(restarted.scrape(&hash(1)).complete, 1);

    // Everything older than the ttl is dropped; a count alone is kept.
    let (mut late, base3, _) = store_at(Instant::now());
    late.restore(&saved, base3, unix + ttl + 300);
    assert_eq!(
        late.scrape(&hash(1)),
        ScrapeCounts {
            complete: 0,
            incomplete: 0,
            downloaded: 1
        }
    );
    assert_eq!(late.totals().seeders + late.totals().leechers, 0);
}

fn store_at(base: Instant) -> (SwarmStore, Instant, StdRng) {
    (
        SwarmStore::new(SwarmConfig::default()),
        base,
        StdRng::seed_from_u64(8),
    )
}
