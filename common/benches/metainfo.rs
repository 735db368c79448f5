//! Parsing speed of `.torrent` files: a large multi-file torrent (10,000 files in nested
//! folders) and a single-file one with many pieces, both built here.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rill_common::bencode::{self, Dict, Value};
use rill_common::metainfo::Metainfo;

/// A multi-file torrent of `count` files of 100 KiB each, 256 KiB pieces.
fn multi_file(count: usize) -> Vec<u8> {
    let piece_length: u64 = 256 * 1024;
    let file_length: u64 = 100 * 1024;
    let names: Vec<[String; 3]> = (0..count)
        .map(|i| {
            [
                format!("disc {}", i / 1000),
                format!("folder {}", i / 100),
                format!("track {i:05}.flac"),
            ]
        })
        .collect();
    let total = file_length * count as u64;
    let pieces = vec![0x5a; (total.div_ceil(piece_length) * 20) as usize];
    let files = names
        .iter()
        .map(|path| {
            let path = path.iter().map(|c| Value::Bytes(c.as_bytes())).collect();
            Value::Dict(
                Dict::new()
                    .with(b"length", Value::Int(file_length as i64))
                    .with(b"path", Value::List(path)),
            )
        })
        .collect();
    let info = Dict::new()
        .with(b"name", Value::Bytes(b"collection"))
        .with(b"piece length", Value::Int(piece_length as i64))
        .with(b"pieces", Value::Bytes(&pieces))
        .with(b"files", Value::List(files));
    torrent(info)
}

/// A single 4 GiB file in 1 MiB pieces (4096 hashes).
fn single_file() -> Vec<u8> {
    let total: u64 = 4 << 30;
    let piece_length: u64 = 1 << 20;
    let pieces = vec![0xa5; (total / piece_length * 20) as usize];
    let info = Dict::new()
        .with(b"name", Value::Bytes(b"image.iso"))
        .with(b"piece length", Value::Int(piece_length as i64))
        .with(b"pieces", Value::Bytes(&pieces))
        .with(b"length", Value::Int(total as i64));
    torrent(info)
}

fn torrent(info: Dict<'_>) -> Vec<u8> {
    let tier = |url: &'static [u8]| Value::List(vec![Value::Bytes(url)]);
    Value::Dict(
        Dict::new()
            .with(
                b"announce",
                Value::Bytes(b"http://tracker.example/announce"),
            )
            .with(
                b"announce-list",
                Value::List(vec![
                    tier(b"http://tracker.example/announce"),
                    tier(b"udp://tracker.example:6969"),
                ]),
            )
            .with(b"comment", Value::Bytes(b"benchmark"))
            .with(b"creation date", Value::Int(1_700_000_000))
            .with(b"info", Value::Dict(info)),
    )
    .to_bytes()
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("metainfo_parse");
    for (name, bytes) in [
        ("multi_file_10k", multi_file(10_000)),
        ("single_file_4096_pieces", single_file()),
    ] {
        assert!(Metainfo::from_bytes(&bytes).is_ok(), "{name} must parse");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| b.iter(|| Metainfo::from_bytes(black_box(&bytes))));
        // The bencode decoding alone, to show what the metainfo layer adds on top.
        group.bench_function(format!("{name}_bencode_only"), |b| {
            b.iter(|| bencode::decode(black_box(&bytes)).map(|value| value.kind()))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
