//! Pick throughput: a 10,000-piece torrent (256 KiB pieces, 16 blocks each) with 50 peers
//! holding random halves of it, 10 % of it had and some pieces already started.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rill::torrent::PeerKey;
use rill::torrent::picker::{PeerSpeed, Picker};
use rill_common::bitfield::Bitfield;
use rill_common::pieces::PieceIndex;

const PIECES: u32 = 10_000;
const PIECE_LEN: u32 = 256 * 1024;
const PEERS: u32 = 50;

fn setup(rng: &mut StdRng) -> (Picker, Vec<Bitfield>) {
    let mut picker = Picker::new(u64::from(PIECES) * u64::from(PIECE_LEN), PIECE_LEN).unwrap();
    let peers: Vec<Bitfield> = (0..PEERS)
        .map(|_| {
            let mut has = Bitfield::new(PIECES);
            for i in 0..PIECES {
                if rng.random_bool(0.5) {
                    has.set(PieceIndex(i), true);
                }
            }
            picker.add_peer_bitfield(&has);
            has
        })
        .collect();
    for i in (0..PIECES).step_by(10) {
        picker.piece_verified(PieceIndex(i), true);
    }
    (picker, peers)
}

fn bench_pick(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let (base, peers) = setup(&mut rng);
    // Each iteration: every peer asks for 16 blocks (one piece's worth), as after a burst
    // of arrivals; then the requests are given back so the state stays comparable.
    c.bench_function("pick 16 blocks x 50 peers, 10k pieces", |b| {
        let mut picker = base.clone();
        b.iter(|| {
            for (k, has) in (0..PEERS).zip(&peers) {
                let speed = if k % 5 == 0 {
                    PeerSpeed::Fast
                } else {
                    PeerSpeed::Medium
                };
                black_box(picker.pick(PeerKey(k), has, speed, 16, &mut rng));
            }
            for k in 0..PEERS {
                picker.peer_gone(PeerKey(k));
            }
        });
    });
}

criterion_group!(benches, bench_pick);
criterion_main!(benches);
