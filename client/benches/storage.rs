//! Storage throughput on a temp dir: a 64 MiB torrent of four files (256 KiB pieces,
//! 16 KiB blocks), written block by block, verified piece by piece on one thread, and
//! checked on all cores. The data stays in the page cache, so this measures the CPU cost
//! of Rill's path (system calls, copies, SHA-1), not the disk.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rill::storage::Storage;
use rill::storage::layout::Layout;
use rill_common::bitfield::Bitfield;
use rill_common::metainfo::{FileAttr, FileEntry, Info};
use rill_common::pieces::{BlockRef, PieceIndex};
use sha1::{Digest, Sha1};

const PIECE_LEN: u32 = 256 * 1024;
const FILE_LENS: [u64; 4] = [1 << 20, 31 << 20, 7 << 20, 25 << 20];

fn info() -> Info {
    let mut offset = 0;
    let files = FILE_LENS
        .iter()
        .enumerate()
        .map(|(i, &length)| {
            let entry = FileEntry {
                path: vec![format!("file{i}")],
                length,
                offset,
                attr: FileAttr::default(),
                symlink_path: None,
            };
            offset += length;
            entry
        })
        .collect();
    Info {
        name: "bench".to_owned(),
        piece_length: PIECE_LEN,
        pieces: vec![[0; 20]; offset.div_ceil(u64::from(PIECE_LEN)) as usize],
        files,
        private: false,
        multi_file: true,
    }
}

fn bench_storage(c: &mut Criterion) {
    let layout = Layout::new(&info());
    let total = layout.total_length();
    let mut data = vec![0u8; total as usize];
    StdRng::seed_from_u64(1).fill_bytes(&mut data);
    let hashes: Vec<[u8; 20]> = data
        .chunks(PIECE_LEN as usize)
        .map(|piece| Sha1::digest(piece).into())
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let pieces = layout.piece_count();
    let storage = Storage::open(dir.path(), layout, hashes).expect("storage");
    let blocks: Vec<(BlockRef, usize)> = (0..pieces)
        .flat_map(|piece| {
            let index = PieceIndex::new(piece);
            let len = storage.layout().piece_size(index);
            (0..)
                .map_while(move |n| BlockRef::nth(index, len, n))
                .map(move |block| {
                    let start = piece as usize * PIECE_LEN as usize + block.begin as usize;
                    (block, start)
                })
        })
        .collect();

    // Written once up front, so each benchmark can run alone (`cargo bench -- verify`).
    for &(block, start) in &blocks {
        let bytes = &data[start..start + block.length as usize];
        storage.write_block(block, bytes).expect("write");
    }

    let mut group = c.benchmark_group("storage");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(total));
    group.bench_function("write 64 MiB in 16 KiB blocks", |b| {
        b.iter(|| {
            for &(block, start) in &blocks {
                let bytes = &data[start..start + block.length as usize];
                storage.write_block(block, bytes).expect("write");
            }
        });
    });
    group.bench_function("verify 64 MiB, one thread", |b| {
        b.iter(|| {
            for piece in 0..pieces {
                assert!(
                    storage
                        .verify_piece(PieceIndex::new(piece))
                        .expect("verify")
                );
            }
        });
    });
    group.bench_function("SHA-1 of 64 MiB in memory, one thread (baseline)", |b| {
        b.iter(|| {
            for piece in data.chunks(PIECE_LEN as usize) {
                black_box(Sha1::digest(piece));
            }
        });
    });
    group.bench_function("check 64 MiB, all cores", |b| {
        let all = Bitfield::full(pieces);
        b.iter(|| {
            let have = storage.check(&all, &|_| {}).expect("check");
            black_box(have)
        });
    });
    group.bench_function("read 64 MiB in 16 KiB blocks", |b| {
        b.iter(|| {
            for &(block, _) in &blocks {
                black_box(storage.read_block(block).expect("read"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_storage);
criterion_main!(benches);
