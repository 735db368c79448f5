//! The IPv6 DHT beside the IPv4 one (BEP 32): a table and a store per family, `want` and
//! `nodes6` in both directions, 18-byte peers, and dual-stack networks in memory.

use std::net::SocketAddr;

use rill_common::bencode::{self, Value};
use rill_common::krpc::{Body, Message, NodeId, Query, Want};

use super::network::Sim;
use super::{Fixture, addr, addr6, announce, get_peers, hash, id, ping, response, sent};
use crate::dht::family::{Families, Family};
use crate::dht::node::{Action, NodeConfig};

const BOTH: Families = Families { v4: true, v6: true };

fn dual() -> Fixture {
    let config = NodeConfig {
        families: BOTH,
        ..NodeConfig::default()
    };
    Fixture::with(id(0x11), config, 7)
}

fn find_node(from: NodeId, want: Want) -> Query {
    Query::FindNode {
        id: from,
        target: id(0x30),
        want,
    }
}

/// The raw `r` dictionary's byte string `key` of an encoded reply, split in `size` pieces.
fn raw_entries(packet: &[u8], key: &[u8], size: usize) -> Vec<Vec<u8>> {
    let value = bencode::decode(packet).unwrap();
    let r = value.as_dict().unwrap().get_dict(b"r").unwrap();
    match r.get(key) {
        None => Vec::new(),
        Some(Value::Bytes(bytes)) => {
            assert_eq!(
                bytes.len() % size,
                0,
                "{key:?} is whole {size}-byte entries"
            );
            bytes.chunks(size).map(<[u8]>::to_vec).collect()
        }
        Some(Value::List(list)) => list
            .iter()
            .map(|v| {
                let bytes = v.as_bytes().unwrap();
                assert_eq!(bytes.len(), size, "{key:?} entries are {size} bytes");
                bytes.to_vec()
            })
            .collect(),
        Some(other) => panic!("{key:?}: {other:?}"),
    }
}

/// Sends `query` from `from` as a read-only node (BEP 43, so the asker stays out of the
/// tables); the one reply's encoded bytes.
fn ask_raw(f: &mut Fixture, from: SocketAddr, query: Query) -> Vec<u8> {
    let mut message = Message::query("tx", query);
    message.read_only = true;
    let out = f.feed(from, &message.to_bytes());
    let packets: Vec<Vec<u8>> = out
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { to, packet } if to == from => Some(packet),
            _ => None,
        })
        .collect();
    assert_eq!(packets.len(), 1);
    packets.into_iter().next().unwrap()
}

#[test]
fn each_querier_enters_the_table_of_its_family() {
    let mut f = dual();
    f.ask(addr6(1), ping(0x22));
    f.ask(addr(2), ping(0x23));
    let v6 = f.node.table_of(Family::V6);
    assert_eq!(v6.len(), 1);
    assert_eq!(v6.get(&id(0x22)).map(|e| e.node.addr), Some(addr6(1)));
    assert_eq!(f.node.table().len(), 1);
    assert!(
        f.node.table().get(&id(0x22)).is_none(),
        "not in the IPv4 table"
    );
    let stats = f.node.stats();
    assert_eq!((stats.nodes, stats.nodes6), (2, 1));
}

#[test]
fn replies_carry_the_node_lists_want_asks_for() {
    let mut f = dual();
    f.ask(addr(1), ping(0x22));
    f.ask(addr6(1), ping(0x23));
    let asker = id(0x44);
    let lists = |f: &mut Fixture, from, want| {
        let packet = ask_raw(f, from, find_node(asker, want));
        (
            raw_entries(&packet, b"nodes", 26).len(),
            raw_entries(&packet, b"nodes6", 38).len(),
        )
    };
    let (n4, n6) = (Family::V4.want(), Family::V6.want());
    let both = Want { v4: true, v6: true };
    assert_eq!(
        lists(&mut f, addr(9), Want::default()),
        (1, 0),
        "IPv4, no want"
    );
    assert_eq!(
        lists(&mut f, addr6(9), Want::default()),
        (0, 1),
        "IPv6, no want"
    );
    assert_eq!(lists(&mut f, addr(9), n6), (0, 1), "n6 over IPv4");
    assert_eq!(lists(&mut f, addr6(9), n4), (1, 0), "n4 over IPv6");
    assert_eq!(lists(&mut f, addr(9), both), (1, 1));
    // The nodes6 entry is the IPv6 node: id, 16-byte address, port.
    let packet = ask_raw(&mut f, addr(9), find_node(asker, n6));
    let entry = &raw_entries(&packet, b"nodes6", 38)[0];
    assert_eq!(&entry[..20], id(0x23).as_bytes());
    assert_eq!(&entry[20..36], &std::net::Ipv6Addr::LOCALHOST.octets());
    assert_eq!(&entry[36..], &1u16.to_be_bytes());
}

#[test]
fn an_ipv4_only_node_answers_n6_with_no_nodes6() {
    let mut f = Fixture::new();
    f.ask(addr(1), ping(0x22));
    let want = Want { v4: true, v6: true };
    let packet = ask_raw(&mut f, addr(9), find_node(id(0x44), want));
    assert_eq!(raw_entries(&packet, b"nodes", 26).len(), 1);
    assert!(raw_entries(&packet, b"nodes6", 38).is_empty());
}

#[test]
fn peers_announced_over_ipv6_are_served_to_ipv6_queriers_only() {
    let mut f = dual();
    let (them, hash) = (id(0x22), hash(0x33));
    let token = f.token(addr6(1), them, hash);
    let ack = f.ask(addr6(1), announce(them, hash, 6881, false, token));
    assert!(matches!(ack.body, Body::Response(_)));
    let token = f.token(addr(1), them, hash);
    f.ask(addr(1), announce(them, hash, 6882, false, token));

    let packet = ask_raw(&mut f, addr6(9), get_peers(id(0x55), hash));
    assert_eq!(
        raw_entries(&packet, b"nodes6", 38).len(),
        1,
        "the announcer"
    );
    let values = raw_entries(&packet, b"values", 18);
    let mut expected = std::net::Ipv6Addr::LOCALHOST.octets().to_vec();
    expected.extend(6881u16.to_be_bytes());
    assert_eq!(values, vec![expected], "one 18-byte IPv6 peer");
    let over_v4 = response(f.ask(addr(9), get_peers(id(0x55), hash)));
    assert_eq!(over_v4.values, vec![addr(6882)], "the IPv4 DHT's peer only");
}

#[test]
fn only_a_dual_stack_node_asks_for_both_families() {
    for (mut f, expected) in [
        (Fixture::new(), Want::default()),
        (dual(), Want { v4: true, v6: true }),
    ] {
        f.ask(addr(1), ping(0x22));
        let mut out = Vec::new();
        f.node.get_peers(hash(0x33), f.now, &mut out);
        let queries = sent(&out);
        assert_eq!(queries.len(), 1, "{queries:?}");
        match &queries[0].1.body {
            Body::Query(Query::GetPeers { want, .. }) => assert_eq!(*want, expected),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_dual_stack_network_finds_peers_in_both_dhts() {
    let mut sim = Sim::with_families(40, 8, BOTH);
    sim.bootstrap_all_from(&[Sim::addr_of(0), Sim::addr6_of(0)]);
    assert!(
        sim.nodes.iter().all(|n| n.table_of(Family::V6).len() >= 8),
        "IPv6 tables filled"
    );
    let hash = hash(0x6A);
    let announced = sim.run(11, |node, now, out| {
        node.announce(hash, Some(7000), now, out)
    });
    let Action::LookupDone { announced, .. } = announced else {
        panic!("{announced:?}")
    };
    assert!(
        announced >= 8,
        "announced to {announced} nodes in both DHTs"
    );
    for i in 0..sim.nodes.len() {
        let mut peers = sim.peers_from(i, hash);
        peers.sort();
        assert_eq!(peers, vec![addr(7000), addr6(7000)], "from node {i}");
    }
}

#[test]
fn an_ipv6_only_network_works_alone() {
    let v6_only = Families {
        v4: false,
        v6: true,
    };
    let mut sim = Sim::with_families(30, 9, v6_only);
    sim.bootstrap_all_from(&[Sim::addr6_of(0)]);
    assert!(sim.nodes.iter().all(|n| n.table().is_empty()));
    let hash = hash(0x6B);
    sim.run(4, |node, now, out| {
        node.announce(hash, Some(7001), now, out)
    });
    for i in 0..sim.nodes.len() {
        assert_eq!(sim.peers_from(i, hash), vec![addr6(7001)], "from node {i}");
    }
}

#[test]
fn ipv6_dht_is_bootstrapped_from_ipv4_replies() {
    // An established dual-stack network; a newcomer knows only an IPv4 bootstrap node and
    // learns IPv6 nodes from `nodes6` (asked for with `want`), as BEP 32 describes.
    let mut sim = Sim::with_families(30, 10, BOTH);
    sim.bootstrap_all_from(&[Sim::addr_of(0), Sim::addr6_of(0)]);
    let newcomer = sim.add_node(BOTH);
    sim.run(newcomer, |node, now, out| {
        node.bootstrap(Vec::new(), vec![Sim::addr_of(0)], now, out)
    });
    let table6 = sim.nodes[newcomer].table_of(Family::V6);
    assert!(table6.len() >= 8, "IPv6 table has {} nodes", table6.len());
}

#[test]
fn a_ping_to_an_ipv4_mapped_address_goes_to_and_is_answered_by_plain_ipv4() {
    // A dual-stack TCP listener reports IPv4 peers as ::ffff:a.b.c.d; their `port` message
    // gets that address pinged.
    let mut f = Fixture::new();
    let mapped = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 1));
    let mut out = Vec::new();
    let request = f.node.ping(mapped, f.now, &mut out);
    let (to, query) = sent(&out).remove(0);
    assert_eq!(to, addr(1));
    let reply = Message::response(
        query.transaction_id,
        rill_common::krpc::Response {
            id: id(0x77),
            ..Default::default()
        },
    );
    assert_eq!(
        f.feed(addr(1), &reply.to_bytes()),
        vec![Action::PingDone {
            request,
            result: Ok(id(0x77))
        }]
    );
}
