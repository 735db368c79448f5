//! Hostile traffic (junk, floods, mutated packets) and read-only nodes (BEP 43).

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::krpc::{Body, Message, NodeId, Query, Want};

use super::{Fixture, addr, announce, hash, id, ping, sent};
use crate::dht::node::NodeConfig;

#[test]
fn junk_is_dropped_without_reply() {
    let mut f = Fixture::new();
    let junk: [&[u8]; 6] = [
        b"",
        b"d1:t2:aa1:y1:q",                              // truncated
        b"i42e",                                        // not a dict
        b"d1:ti5e1:y1:qe",                              // wrong type for t
        b"d1:t2:aa1:y1:r1:rd2:id3:abcee",               // unmatched reply, bad id
        b"d1:t2:aa1:y1:q1:q4:ping1:a999999999999:xxxe", // huge length
    ];
    for packet in junk {
        let out = f.feed(addr(5), packet);
        assert!(out.is_empty(), "{packet:?} -> {out:?}");
    }
    assert_eq!(f.node.stats().packets_dropped, junk.len() as u64);
}

#[test]
fn flood_from_one_address_is_rate_limited_others_still_answered() {
    let mut f = Fixture::new();
    let flood = Message::query("tx", ping(0x22)).to_bytes();
    let answered: usize = (0..1000).map(|_| f.feed(addr(1), &flood).len()).sum();
    assert_eq!(answered, NodeConfig::default().rate_burst as usize);
    let reply = f.ask(addr(2), ping(0x23));
    assert!(matches!(reply.body, Body::Response(_)));
    // Time refills the allowance.
    let reply = f.ask_at(Duration::from_secs(1), addr(1), ping(0x22));
    assert!(matches!(reply.body, Body::Response(_)));
}

#[test]
fn flood_from_many_ports_of_one_host_is_limited_per_ip() {
    let mut f = Fixture::new();
    let flood = Message::query("tx", ping(0x22)).to_bytes();
    let answered: usize = (1..=5000u16)
        .map(|port| sent(&f.feed(addr(port), &flood)).len())
        .sum();
    assert_eq!(answered, NodeConfig::default().ip_rate_burst as usize);
    let other_host = SocketAddr::from(([127, 0, 0, 9], 1));
    let reply = f.ask(other_host, ping(0x23));
    assert!(matches!(reply.body, Body::Response(_)));
}

#[test]
fn read_only_node_answers_nothing_and_flags_its_queries() {
    let config = NodeConfig {
        read_only: true,
        ..NodeConfig::default()
    };
    let mut f = Fixture::with(id(1), config, 1);
    let out = f.feed(addr(1), &Message::query("tx", ping(2)).to_bytes());
    assert!(out.is_empty());
    let mut out = Vec::new();
    f.node.ping(addr(1), f.now, &mut out);
    let queries = sent(&out);
    assert!(queries[0].1.read_only);
}

#[test]
fn read_only_querier_is_answered_but_not_added() {
    let mut f = Fixture::new();
    let mut message = Message::query("tx", ping(2));
    message.read_only = true;
    let out = f.feed(addr(1), &message.to_bytes());
    assert_eq!(sent(&out).len(), 1);
    assert!(f.node.table().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn arbitrary_packets_never_panic(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
        let mut f = Fixture::new();
        for packet in packets {
            prop_assert!(f.feed(addr(1), &packet).len() <= 1);
        }
    }

    #[test]
    fn mutated_queries_never_panic(seed in any::<u64>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut f = Fixture::new();
        let mut r = StdRng::seed_from_u64(seed);
        let query = match seed % 4 {
            0 => Query::Ping { id: NodeId::random(&mut r) },
            1 => Query::FindNode { id: NodeId::random(&mut r), target: NodeId::random(&mut r), want: Want::default() },
            2 => Query::GetPeers { id: NodeId::random(&mut r), info_hash: hash(1), want: Want::default() },
            _ => announce(NodeId::random(&mut r), hash(1), 1, false, vec![1, 2]),
        };
        let mut packet = Message::query("ab", query).to_bytes();
        for (index, byte) in flips {
            let i = index.index(packet.len());
            packet[i] = byte;
        }
        prop_assert!(f.feed(addr(1), &packet).len() <= 1);
    }
}
