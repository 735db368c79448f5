//! Swarm store benchmarks: announce throughput on a store of 10k torrents x 10 peers and on
//! one torrent of 100k peers, and the memory one peer costs.
//!
//! Memory is measured as the growth of the process's resident set (`/proc/self/statm`) while
//! 1M peers are inserted, printed as `swarm memory: N bytes per peer`. A counting global
//! allocator would need `unsafe impl GlobalAlloc`, which the workspace's
//! `unsafe_code = "forbid"` rejects; resident memory also counts the allocator's own overhead,
//! which is what a tracker host pays.
//!
//! Run: `cargo bench -p rill-tracker --bench swarm` (add `-- --warm-up-time 1
//! --measurement-time 3` for a quick run).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::{InfoHash, PeerId};
use rill_tracker::swarm::{PeerAnnounce, SwarmConfig, SwarmStore};

fn info_hash(n: u32) -> InfoHash {
    let mut b = [0u8; 20];
    // Spread like SHA-1 output: a multiplicative hash of `n` in the first bytes.
    b[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_le_bytes());
    b[4..8].copy_from_slice(&n.to_le_bytes());
    InfoHash::from_bytes(b)
}

fn peer(n: u32) -> (SocketAddr, PeerId) {
    let addr = SocketAddr::new(
        Ipv4Addr::from(0x0a00_0000 | (n >> 4)).into(),
        6881 + (n & 15) as u16,
    );
    let mut id = [b'-'; 20];
    id[..4].copy_from_slice(&n.to_le_bytes());
    (addr, PeerId::from_bytes(id))
}

fn announce(torrent: u32, peer_n: u32, left: u64) -> PeerAnnounce {
    let (addr, peer_id) = peer(peer_n);
    PeerAnnounce {
        info_hash: info_hash(torrent),
        peer_id,
        addr,
        event: None,
        left,
        numwant: None,
    }
}

/// A store of `torrents` x `peers` peers, a tenth of them seeders.
fn filled(torrents: u32, peers: u32, now: Instant, rng: &mut StdRng) -> SwarmStore {
    filled_at(torrents, peers, now, now, rng)
}

/// [`filled`], the store's clock starting at `epoch` and the peers announcing at `now`.
fn filled_at(
    torrents: u32,
    peers: u32,
    epoch: Instant,
    now: Instant,
    rng: &mut StdRng,
) -> SwarmStore {
    let mut store = SwarmStore::new(SwarmConfig::default());
    store.purge(epoch);
    for t in 0..torrents {
        for p in 0..peers {
            let left = if p % 10 == 0 { 0 } else { 1000 };
            store.announce(&announce(t, t * peers + p, left), now, rng);
        }
    }
    store
}

/// Resident bytes of this process.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn memory_report() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(1);
    for (torrents, peers) in [(1u32, 1_000_000u32), (100_000, 10)] {
        let before = resident_bytes();
        let store = filled(torrents, peers, now, &mut rng);
        let after = resident_bytes();
        let total = f64::from(torrents) * f64::from(peers);
        match (before, after) {
            (Some(b), Some(a)) => println!(
                "swarm memory: {:.1} bytes per peer ({torrents} torrents x {peers} peers, resident)",
                a.saturating_sub(b) as f64 / total
            ),
            _ => println!("swarm memory: /proc/self/statm unavailable"),
        }
        assert_eq!(
            store.totals().seeders + store.totals().leechers,
            total as usize
        );
        drop(store);
    }
}

fn bench_announce(c: &mut Criterion) {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(2);
    let mut group = c.benchmark_group("swarm announce");
    group.throughput(Throughput::Elements(1));
    for (name, torrents, peers) in [
        ("10k torrents x 10 peers", 10_000u32, 10u32),
        ("1 torrent x 100k peers", 1, 100_000),
    ] {
        let mut store = filled(torrents, peers, now, &mut rng);
        let mut i = 0u32;
        group.bench_function(name, |b| {
            b.iter(|| {
                // A re-announce of an existing peer of a torrent picked round-robin with a
                // stride, so successive announces touch different torrents.
                i = i.wrapping_add(1);
                let t = i.wrapping_mul(7919) % torrents;
                let p = t * peers + i % peers;
                let left = if p.is_multiple_of(10) { 0 } else { 1000 };
                let reply = store.announce(&announce(t, p, left), now, &mut rng);
                black_box(reply)
            })
        });
    }
    // A new peer joins and leaves at once: insert, sample, remove.
    let mut store = filled(10_000, 10, now, &mut rng);
    let mut i = 0u32;
    group.bench_function("join+stop on 10k torrents x 10 peers", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let mut a = announce(i.wrapping_mul(7919) % 10_000, 200_000 + i % 1_000_000, 1000);
            black_box(store.announce(&a, now, &mut rng));
            a.event = Some(rill_common::tracker::AnnounceEvent::Stopped);
            black_box(store.announce(&a, now, &mut rng))
        })
    });
    group.finish();

    // Just under the ttl: every peer is looked at, none is old enough to go.
    let ttl = SwarmConfig::default().peer_ttl;
    let mut store = filled_at(10_000, 10, now, now + ttl, &mut rng);
    let later = now + ttl + ttl - Duration::from_secs(1);
    c.bench_function("swarm purge 10k torrents x 10 peers, none expired", |b| {
        b.iter(|| black_box(store.purge(later)))
    });
}

fn main() {
    memory_report();
    let mut c = Criterion::default().configure_from_args();
    bench_announce(&mut c);
    c.final_summary();
}
