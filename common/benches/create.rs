//! Torrent creation throughput, next to raw single-core SHA-1 speed on the same machine, so
//! the report reads as a ratio (creation hashes on all cores and reads the files back).
//!
//! mktorrent (if installed) hashes the same files in the same run, for a ratio against a peer.
//! The data size is 256 MiB by default; set `RILL_BENCH_CREATE_MIB` to change it.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rill_common::metainfo::create::{CreateOptions, create};
use sha1::{Digest, Sha1};

/// Pseudo-random bytes (xorshift), so nothing compresses or repeats trivially.
fn data(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(length);
    while out.len() < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(length);
    out
}

fn hashing(c: &mut Criterion) {
    let mib: usize = std::env::var("RILL_BENCH_CREATE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let total = mib << 20;

    // Four files of uneven sizes so pieces straddle file boundaries.
    let dir = tempfile::tempdir().expect("temporary folder");
    let root = dir.path().join("content");
    std::fs::create_dir(&root).expect("content folder");
    let sizes = [total / 2 + 12_345, total / 4, total / 8 - 12_345];
    let last = total - sizes.iter().sum::<usize>();
    for (i, size) in sizes.iter().chain([last].iter()).enumerate() {
        std::fs::write(root.join(format!("file{i}.bin")), data(*size, i as u64 + 7))
            .expect("write bench data");
    }
    let options = CreateOptions {
        piece_length: Some(1 << 20),
        creation_date: Some(0),
        ..CreateOptions::default()
    };

    let mut group = c.benchmark_group("create");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function(format!("create_{mib}MiB_all_cores"), |b| {
        b.iter(|| create(black_box(&root), &options, &|_, _| {}).expect("create"))
    });

    // Side by side in the same run: mktorrent on all cores, same data and piece size (skipped
    // when mktorrent is not installed).
    let out = dir.path().join("mktorrent.torrent");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mktorrent = |out: &std::path::Path| {
        let _ = std::fs::remove_file(out);
        std::process::Command::new("mktorrent")
            .args([
                "-l",
                "20",
                "-t",
                &threads.to_string(),
                "-a",
                "http://127.0.0.1/announce",
                "-o",
            ])
            .arg(out)
            .arg(&root)
            .output()
    };
    if mktorrent(&out).is_ok_and(|o| o.status.success()) {
        group.bench_function(format!("mktorrent_{mib}MiB_all_cores"), |b| {
            b.iter(|| mktorrent(&out).expect("mktorrent"))
        });
    }

    let buffer = data(64 << 20, 3);
    group.throughput(Throughput::Bytes(buffer.len() as u64));
    group.bench_function("sha1_64MiB_one_core_in_memory", |b| {
        b.iter(|| Sha1::digest(black_box(&buffer)))
    });
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
