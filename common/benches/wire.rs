//! Peer wire codec throughput: decoding and encoding streams of 16 KiB `piece` messages and
//! of small `have`/`request` messages.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rill_common::pieces::{BLOCK_SIZE, BlockRef, PieceIndex};
use rill_common::wire::{DEFAULT_MAX_LEN, Message, decode, encode};

fn pieces(count: u32) -> Vec<Message> {
    let data = Bytes::from(vec![0x5a; BLOCK_SIZE as usize]);
    (0..count)
        .map(|i| Message::Piece {
            index: PieceIndex(i / 16),
            begin: (i % 16) * BLOCK_SIZE,
            data: data.clone(),
        })
        .collect()
}

fn small(count: u32) -> Vec<Message> {
    (0..count)
        .map(|i| {
            if i % 2 == 0 {
                Message::Have(PieceIndex(i))
            } else {
                Message::Request(BlockRef {
                    piece: PieceIndex(i),
                    begin: 0,
                    length: BLOCK_SIZE,
                })
            }
        })
        .collect()
}

fn wire_bytes(msgs: &[Message]) -> BytesMut {
    let mut out = BytesMut::new();
    for msg in msgs {
        encode(msg, &mut out).expect("encodable");
    }
    out
}

fn bench_stream(c: &mut Criterion, name: &str, msgs: &[Message]) {
    let wire = wire_bytes(msgs);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("decode", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut buf| {
                let mut count = 0usize;
                while let Ok(Some(msg)) = decode(&mut buf, DEFAULT_MAX_LEN) {
                    black_box(&msg);
                    count += 1;
                }
                assert_eq!(count, msgs.len());
            },
            BatchSize::LargeInput,
        );
    });
    let mut out = BytesMut::with_capacity(wire.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            for msg in msgs {
                encode(black_box(msg), &mut out).expect("encodable");
            }
            black_box(out.len())
        });
    });
    group.finish();
}

fn wire(c: &mut Criterion) {
    bench_stream(c, "wire/piece_16k", &pieces(256));
    bench_stream(c, "wire/have_request", &small(10_000));
}

criterion_group!(benches, wire);
criterion_main!(benches);
