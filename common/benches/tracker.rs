//! Tracker codec benchmarks: parsing an announce query (the tracker's hot path) and encoding
//! a compact announce reply.
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use criterion::{Criterion, criterion_group, criterion_main};
use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::{AnnounceReply, AnnounceRequest, AnnounceResponse, Peer};
use rill_common::tracker::udp::{Family, Response};
use rill_common::{InfoHash, PeerId};

fn announce_query(c: &mut Criterion) {
    let mut req = AnnounceRequest::new(
        InfoHash::from_bytes([0x9a; 20]),
        PeerId::from_bytes(*b"-RL0100-\x01\x02\x03defghijkl"),
        6881,
    );
    req.left = 1 << 30;
    req.event = Some(AnnounceEvent::Started);
    req.numwant = Some(50);
    req.key = Some("6A3F1B2C".to_owned());
    let query = req.to_query();
    c.bench_function("announce_query_parse", |b| {
        b.iter(|| AnnounceRequest::from_query(black_box(query.as_bytes())))
    });
    c.bench_function("announce_query_encode", |b| {
        b.iter(|| black_box(&req).to_query())
    });
}

fn compact_reply(c: &mut Criterion) {
    let peers: Vec<Peer> = (0..50u16)
        .map(|i| Peer {
            addr: SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8),
                6881 + i,
            )),
            peer_id: None,
        })
        .collect();
    let reply = AnnounceResponse::Success(AnnounceReply {
        interval: 1800,
        min_interval: Some(900),
        complete: Some(20),
        incomplete: Some(30),
        peers: peers.clone(),
        ..AnnounceReply::default()
    });
    c.bench_function("announce_reply_compact_encode_50", |b| {
        b.iter(|| black_box(&reply).to_bytes(true, false))
    });
    let bytes = reply.to_bytes(true, false);
    c.bench_function("announce_reply_compact_decode_50", |b| {
        b.iter(|| AnnounceResponse::from_bytes(black_box(&bytes)))
    });
    let udp = Response::Announce {
        transaction_id: 1,
        interval: 1800,
        leechers: 30,
        seeders: 20,
        peers: peers.iter().map(|p| p.addr).collect(),
    };
    c.bench_function("udp_announce_reply_encode_50", |b| {
        b.iter(|| black_box(&udp).encode(Family::V4))
    });
}

criterion_group!(benches, announce_query, compact_reply);
criterion_main!(benches);
