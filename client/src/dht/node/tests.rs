//! Tests of the pure node: every query answered, bad packets refused, and a whole network of
//! nodes stepped in memory.

use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::krpc::{ERROR_METHOD_UNKNOWN, ERROR_PROTOCOL, Response};
use std::collections::VecDeque;

fn addr(n: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], n))
}

fn setup() -> (Node, StdRng, Instant) {
    let mut rng = StdRng::seed_from_u64(7);
    let now = Instant::now();
    let node = Node::new(
        NodeId::from_bytes([0x11; 20]),
        NodeConfig::default(),
        now,
        &mut rng,
    );
    (node, rng, now)
}

fn sent(out: &[Action]) -> Vec<(SocketAddr, Message)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { to, packet } => Some((*to, Message::from_bytes(packet).unwrap())),
            _ => None,
        })
        .collect()
}

/// Sends `query` from `from` and returns the single reply.
fn ask(node: &mut Node, rng: &mut StdRng, now: Instant, from: SocketAddr, query: Query) -> Message {
    let mut out = Vec::new();
    node.handle_packet(
        from,
        &Message::query("tx", query).to_bytes(),
        now,
        rng,
        &mut out,
    );
    let replies: Vec<Message> = sent(&out)
        .into_iter()
        .filter(|(to, _)| *to == from)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(replies.len(), 1, "{out:?}");
    let reply = replies.into_iter().next().unwrap();
    assert_eq!(reply.transaction_id, b"tx");
    reply
}

fn response(message: Message) -> Response {
    match message.body {
        Body::Response(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn error_code(message: &Message) -> i64 {
    match &message.body {
        Body::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn answers_every_query_type() {
    let (mut node, mut rng, now) = setup();
    let them = NodeId::from_bytes([0x22; 20]);
    let hash = InfoHash::from_bytes([0x33; 20]);

    let pong = ask(&mut node, &mut rng, now, addr(1), Query::Ping { id: them });
    assert_eq!(response(pong.clone()).id, node.id());
    assert_eq!(pong.ip, Some(addr(1)), "BEP 42 ip echoed");
    assert_eq!(node.table().len(), 1, "querier added");

    let found = response(ask(
        &mut node,
        &mut rng,
        now,
        addr(2),
        Query::FindNode {
            id: NodeId::from_bytes([0x44; 20]),
            target: them,
            want: Want::default(),
        },
    ));
    assert_eq!(found.nodes.first().map(|n| n.id), Some(them));

    let peers = response(ask(
        &mut node,
        &mut rng,
        now,
        addr(1),
        Query::GetPeers {
            id: them,
            info_hash: hash,
            want: Want::default(),
        },
    ));
    assert!(peers.values.is_empty());
    assert!(!peers.nodes.is_empty());
    let token = peers.token.expect("get_peers gives a token");

    let ack = ask(
        &mut node,
        &mut rng,
        now,
        addr(1),
        Query::AnnouncePeer {
            id: them,
            info_hash: hash,
            port: 6881,
            implied_port: false,
            token: token.clone(),
        },
    );
    assert_eq!(response(ack).id, node.id());
    let ack = ask(
        &mut node,
        &mut rng,
        now,
        addr(1),
        Query::AnnouncePeer {
            id: them,
            info_hash: hash,
            port: 1,
            implied_port: true,
            token,
        },
    );
    assert_eq!(response(ack).id, node.id());

    let peers = response(ask(
        &mut node,
        &mut rng,
        now,
        addr(9),
        Query::GetPeers {
            id: NodeId::from_bytes([0x55; 20]),
            info_hash: hash,
            want: Want::default(),
        },
    ));
    let mut values = peers.values;
    values.sort();
    assert_eq!(
        values,
        vec![addr(1), SocketAddr::from(([127, 0, 0, 1], 6881))],
        "implied_port took the UDP port"
    );
}

#[test]
fn bad_token_unknown_method_and_bad_arguments_get_errors() {
    let (mut node, mut rng, now) = setup();
    let them = NodeId::from_bytes([0x22; 20]);
    let hash = InfoHash::from_bytes([0x33; 20]);
    let bad = ask(
        &mut node,
        &mut rng,
        now,
        addr(1),
        Query::AnnouncePeer {
            id: them,
            info_hash: hash,
            port: 80,
            implied_port: false,
            token: b"nope".to_vec(),
        },
    );
    assert_eq!(error_code(&bad), ERROR_PROTOCOL);

    // A token given to another IP is refused.
    let token = response(ask(
        &mut node,
        &mut rng,
        now,
        addr(1),
        Query::GetPeers {
            id: them,
            info_hash: hash,
            want: Want::default(),
        },
    ))
    .token
    .unwrap();
    let other_ip = SocketAddr::from(([127, 0, 0, 2], 1));
    let stolen = ask(
        &mut node,
        &mut rng,
        now,
        other_ip,
        Query::AnnouncePeer {
            id: them,
            info_hash: hash,
            port: 80,
            implied_port: false,
            token,
        },
    );
    assert_eq!(error_code(&stolen), ERROR_PROTOCOL);

    let unknown = ask(
        &mut node,
        &mut rng,
        now,
        addr(1),
        Query::Other {
            method: b"sample_infohashes".to_vec(),
            id: Some(them),
        },
    );
    assert_eq!(error_code(&unknown), ERROR_METHOD_UNKNOWN);

    // Known method, missing argument: 203 with the transaction id kept.
    let mut out = Vec::new();
    node.handle_packet(
        addr(1),
        b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:xy1:y1:qe",
        now,
        &mut rng,
        &mut out,
    );
    let replies = sent(&out);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].1.transaction_id, b"xy");
    assert_eq!(error_code(&replies[0].1), ERROR_PROTOCOL);
}

#[test]
fn junk_is_dropped_without_reply() {
    let (mut node, mut rng, now) = setup();
    let junk: [&[u8]; 6] = [
        b"",
        b"d1:t2:aa1:y1:q",                              // truncated
        b"i42e",                                        // not a dict
        b"d1:ti5e1:y1:qe",                              // wrong type for t
        b"d1:t2:aa1:y1:r1:rd2:id3:abcee",               // unmatched reply, bad id
        b"d1:t2:aa1:y1:q1:q4:ping1:a999999999999:xxxe", // huge length
    ];
    for packet in junk {
        let mut out = Vec::new();
        node.handle_packet(addr(5), packet, now, &mut rng, &mut out);
        assert!(out.is_empty(), "{packet:?} -> {out:?}");
    }
    assert_eq!(node.stats().packets_dropped, junk.len() as u64);
}

#[test]
fn flood_from_one_address_is_rate_limited_others_still_answered() {
    let (mut node, mut rng, now) = setup();
    let ping = Message::query(
        "tx",
        Query::Ping {
            id: NodeId::from_bytes([0x22; 20]),
        },
    )
    .to_bytes();
    let mut answered = 0;
    for _ in 0..1000 {
        let mut out = Vec::new();
        node.handle_packet(addr(1), &ping, now, &mut rng, &mut out);
        answered += out.len();
    }
    assert_eq!(answered, NodeConfig::default().rate_burst as usize);
    let reply = ask(
        &mut node,
        &mut rng,
        now,
        addr(2),
        Query::Ping {
            id: NodeId::from_bytes([0x23; 20]),
        },
    );
    assert!(matches!(reply.body, Body::Response(_)));
    // Time refills the allowance.
    let later = now + Duration::from_secs(1);
    let reply = ask(
        &mut node,
        &mut rng,
        later,
        addr(1),
        Query::Ping {
            id: NodeId::from_bytes([0x22; 20]),
        },
    );
    assert!(matches!(reply.body, Body::Response(_)));
}

#[test]
fn read_only_node_answers_nothing_and_flags_its_queries() {
    let mut rng = StdRng::seed_from_u64(1);
    let now = Instant::now();
    let config = NodeConfig {
        read_only: true,
        ..NodeConfig::default()
    };
    let mut node = Node::new(NodeId::from_bytes([1; 20]), config, now, &mut rng);
    let mut out = Vec::new();
    let ping = Message::query(
        "tx",
        Query::Ping {
            id: NodeId::from_bytes([2; 20]),
        },
    )
    .to_bytes();
    node.handle_packet(addr(1), &ping, now, &mut rng, &mut out);
    assert!(out.is_empty());
    node.ping(addr(1), now, &mut out);
    let queries = sent(&out);
    assert!(queries[0].1.read_only);
}

#[test]
fn read_only_querier_is_answered_but_not_added() {
    let (mut node, mut rng, now) = setup();
    let mut message = Message::query(
        "tx",
        Query::Ping {
            id: NodeId::from_bytes([2; 20]),
        },
    );
    message.read_only = true;
    let mut out = Vec::new();
    node.handle_packet(addr(1), &message.to_bytes(), now, &mut rng, &mut out);
    assert_eq!(sent(&out).len(), 1);
    assert!(node.table().is_empty());
}

#[test]
fn ping_matches_transaction_and_source_then_times_out() {
    let (mut node, mut rng, now) = setup();
    let mut out = Vec::new();
    let request = node.ping(addr(1), now, &mut out);
    let (to, query) = sent(&out).remove(0);
    assert_eq!(to, addr(1));
    let their = NodeId::from_bytes([0x77; 20]);
    let reply = Message::response(
        query.transaction_id.clone(),
        Response {
            id: their,
            ..Response::default()
        },
    )
    .to_bytes();

    // From the wrong address: ignored (and counted as junk).
    let mut out = Vec::new();
    node.handle_packet(addr(2), &reply, now, &mut rng, &mut out);
    assert!(out.is_empty());
    // From the right one: done.
    node.handle_packet(addr(1), &reply, now, &mut rng, &mut out);
    assert_eq!(
        out,
        vec![Action::PingDone {
            request,
            result: Ok(their)
        }]
    );
    assert_eq!(node.table().get(&their).map(|e| e.node.addr), Some(addr(1)));
    // A replay is dropped.
    let mut out = Vec::new();
    node.handle_packet(addr(1), &reply, now, &mut rng, &mut out);
    assert!(out.is_empty());

    let request = node.ping(addr(3), now, &mut out);
    out.clear();
    node.tick(now + Duration::from_millis(1999), &mut rng, &mut out);
    assert!(out.is_empty());
    node.tick(now + Duration::from_secs(2), &mut rng, &mut out);
    assert_eq!(
        out,
        vec![Action::PingDone {
            request,
            result: Err(QueryFailure::Timeout)
        }]
    );
    assert_eq!(node.stats().pending_queries, 0);
}

/// An in-memory network of nodes: packets are delivered in order, nodes in `dead` drop them.
struct Sim {
    nodes: Vec<Node>,
    rng: StdRng,
    now: Instant,
    queue: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    dead: Vec<usize>,
    /// Chance that any packet is lost.
    loss: f64,
    done: Vec<(usize, Action)>,
}

impl Sim {
    fn new(count: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let now = Instant::now();
        let nodes = (0..count)
            .map(|_| {
                Node::new(
                    NodeId::random(&mut rng),
                    NodeConfig::default(),
                    now,
                    &mut rng,
                )
            })
            .collect();
        Sim {
            nodes,
            rng,
            now,
            queue: VecDeque::new(),
            dead: Vec::new(),
            loss: 0.0,
            done: Vec::new(),
        }
    }

    fn addr_of(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16))
    }

    fn collect(&mut self, from: usize, out: Vec<Action>) {
        for action in out {
            match action {
                Action::Send { to, packet } => {
                    self.queue.push_back((Self::addr_of(from), to, packet))
                }
                other => self.done.push((from, other)),
            }
        }
    }

    /// Delivers packets until none is left, then lets time pass so lost queries time out;
    /// repeats until quiet. Bounded.
    fn settle(&mut self) {
        for _ in 0..50 {
            let mut delivered = 0;
            while let Some((from, to, packet)) = self.queue.pop_front() {
                delivered += 1;
                assert!(delivered < 1_000_000, "packet storm");
                let index = usize::from(to.port() - 10_000);
                let lost = self.loss > 0.0 && rand::Rng::random_bool(&mut self.rng, self.loss);
                if lost || self.dead.contains(&index) || index >= self.nodes.len() {
                    continue;
                }
                let mut out = Vec::new();
                self.nodes[index].handle_packet(from, &packet, self.now, &mut self.rng, &mut out);
                self.collect(index, out);
            }
            if self.nodes.iter().all(|n| n.stats().pending_queries == 0) {
                return;
            }
            self.now += Duration::from_secs(3);
            for i in 0..self.nodes.len() {
                let mut out = Vec::new();
                self.nodes[i].tick(self.now, &mut self.rng, &mut out);
                self.collect(i, out);
            }
        }
        panic!("the network never went quiet");
    }

    fn run<F: FnOnce(&mut Node, Instant, &mut Vec<Action>) -> RequestId>(
        &mut self,
        at: usize,
        f: F,
    ) -> Action {
        let mut out = Vec::new();
        let request = f(&mut self.nodes[at], self.now, &mut out);
        self.collect(at, out);
        self.settle();
        let position = self
            .done
            .iter()
            .position(|(i, a)| *i == at && matches!(a, Action::LookupDone { request: r, .. } | Action::PingDone { request: r, .. } if *r == request))
            .expect("operation finished");
        self.done.remove(position).1
    }

    fn bootstrap_all(&mut self) {
        for i in 1..self.nodes.len() {
            self.run(i, |node, now, out| {
                node.bootstrap(Vec::new(), vec![Sim::addr_of(0)], now, out)
            });
        }
    }
}

#[test]
fn simulated_network_announce_then_find_from_every_node() {
    let mut sim = Sim::new(60, 3);
    sim.bootstrap_all();
    assert!(
        sim.nodes.iter().all(|n| n.table().len() >= 8),
        "tables filled"
    );
    let hash = InfoHash::from_bytes([0xAB; 20]);
    let announced = sim.run(17, |node, now, out| {
        node.announce(hash, Some(51413), now, out)
    });
    let Action::LookupDone { announced, .. } = announced else {
        panic!()
    };
    assert!(announced >= 4, "announced to {announced} nodes");
    for i in 0..sim.nodes.len() {
        let result = sim.run(i, |node, now, out| node.get_peers(hash, now, out));
        let Action::LookupDone { peers, .. } = result else {
            panic!()
        };
        assert_eq!(
            peers,
            vec![SocketAddr::from(([127, 0, 0, 1], 51413))],
            "from node {i}"
        );
    }
}

#[test]
fn simulated_network_survives_dead_nodes() {
    let mut sim = Sim::new(60, 4);
    sim.bootstrap_all();
    let hash = InfoHash::from_bytes([0x5A; 20]);
    sim.run(5, |node, now, out| {
        node.announce(hash, Some(1000), now, out)
    });
    // A fifth of the network dies: nodes that hold no peer, other than the searcher.
    let searcher = 50;
    sim.dead = (0..sim.nodes.len())
        .filter(|&i| i != searcher && sim.nodes[i].stats().peers_stored == 0)
        .take(12)
        .collect();
    assert_eq!(sim.dead.len(), 12);
    let result = sim.run(searcher, |node, now, out| node.get_peers(hash, now, out));
    let Action::LookupDone { peers, .. } = result else {
        panic!()
    };
    assert_eq!(peers, vec![SocketAddr::from(([127, 0, 0, 1], 1000))]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Over a lossy network every operation finishes (a lookup can stall on nothing), and
    /// a node's counters stay bounded.
    #[test]
    fn operations_finish_despite_packet_loss(seed in any::<u64>(), loss in 0.0f64..0.5, ops in proptest::collection::vec((0usize..25, 0u8..3, any::<u8>()), 1..8)) {
        let mut sim = Sim::new(25, seed);
        sim.loss = loss;
        sim.bootstrap_all();
        for (at, op, byte) in ops {
            let hash = InfoHash::from_bytes([byte; 20]);
            let to = Sim::addr_of(usize::from(byte) % 25);
            match op {
                0 => { sim.run(at, |node, now, out| node.ping(to, now, out)); }
                1 => { sim.run(at, |node, now, out| node.get_peers(hash, now, out)); }
                _ => { sim.run(at, |node, now, out| node.announce(hash, None, now, out)); }
            }
        }
        for node in &sim.nodes {
            let stats = node.stats();
            prop_assert_eq!(stats.pending_queries, 0);
            prop_assert_eq!(stats.lookups_active, 0);
            prop_assert!(stats.nodes <= 25);
        }
    }
    #[test]
    fn arbitrary_packets_never_panic(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
        let (mut node, mut rng, now) = setup();
        for packet in packets {
            let mut out = Vec::new();
            node.handle_packet(addr(1), &packet, now, &mut rng, &mut out);
            prop_assert!(out.len() <= 1);
        }
    }

    #[test]
    fn mutated_queries_never_panic(seed in any::<u64>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let (mut node, mut rng, now) = setup();
        let mut r = StdRng::seed_from_u64(seed);
        let query = match seed % 4 {
            0 => Query::Ping { id: NodeId::random(&mut r) },
            1 => Query::FindNode { id: NodeId::random(&mut r), target: NodeId::random(&mut r), want: Want::default() },
            2 => Query::GetPeers { id: NodeId::random(&mut r), info_hash: InfoHash::from_bytes([1; 20]), want: Want::default() },
            _ => Query::AnnouncePeer { id: NodeId::random(&mut r), info_hash: InfoHash::from_bytes([1; 20]), port: 1, implied_port: false, token: vec![1, 2] },
        };
        let mut packet = Message::query("ab", query).to_bytes();
        for (index, byte) in flips {
            let i = index.index(packet.len());
            packet[i] = byte;
        }
        let mut out = Vec::new();
        node.handle_packet(addr(1), &packet, now, &mut rng, &mut out);
        prop_assert!(out.len() <= 1);
    }
}

#[test]
fn flood_from_many_ports_of_one_host_is_limited_per_ip() {
    let (mut node, mut rng, now) = setup();
    let ping = Message::query(
        "tx",
        Query::Ping {
            id: NodeId::from_bytes([0x22; 20]),
        },
    )
    .to_bytes();
    let mut answered = 0;
    for port in 1..=5000u16 {
        let mut out = Vec::new();
        node.handle_packet(addr(port), &ping, now, &mut rng, &mut out);
        answered += sent(&out).len();
    }
    assert_eq!(answered, NodeConfig::default().ip_rate_burst as usize);
    let other_host = SocketAddr::from(([127, 0, 0, 9], 1));
    let reply = ask(
        &mut node,
        &mut rng,
        now,
        other_host,
        Query::Ping {
            id: NodeId::from_bytes([0x23; 20]),
        },
    );
    assert!(matches!(reply.body, Body::Response(_)));
}

#[test]
fn idle_bucket_is_refreshed_with_a_find_node() {
    let (mut node, mut rng, now) = setup();
    ask(
        &mut node,
        &mut rng,
        now,
        addr(1),
        Query::Ping {
            id: NodeId::from_bytes([0x22; 20]),
        },
    );
    let mut out = Vec::new();
    node.tick(now + Duration::from_secs(60), &mut rng, &mut out);
    assert!(sent(&out).is_empty(), "not idle yet");
    node.tick(
        now + crate::dht::routing_table::REFRESH_AFTER,
        &mut rng,
        &mut out,
    );
    let queries = sent(&out);
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].0, addr(1));
    assert!(matches!(
        queries[0].1.body,
        Body::Query(Query::FindNode { .. })
    ));
}

#[test]
fn full_bucket_pings_its_questionable_nodes_before_replacing() {
    let (mut node, mut rng, now) = setup();
    // Fill the table's first bucket (ids far from ours, first bit differs) with 8 queriers,
    // then one near node so that bucket is no longer the one that splits.
    let far = |i: u8| {
        let mut bytes = [0u8; 20];
        bytes[0] = 0x80;
        bytes[19] = i;
        NodeId::from_bytes(bytes)
    };
    for i in 0..8u8 {
        ask(
            &mut node,
            &mut rng,
            now,
            addr(100 + u16::from(i)),
            Query::Ping { id: far(i) },
        );
    }
    ask(
        &mut node,
        &mut rng,
        now,
        addr(99),
        Query::Ping {
            id: NodeId::from_bytes([0x10; 20]),
        },
    );
    let mut out = Vec::new();
    let ping = Message::query("tx", Query::Ping { id: far(50) }).to_bytes();
    node.handle_packet(addr(200), &ping, now, &mut rng, &mut out);
    let queries: Vec<SocketAddr> = sent(&out)
        .into_iter()
        .filter(|(_, m)| matches!(m.body, Body::Query(Query::Ping { .. })))
        .map(|(to, _)| to)
        .collect();
    assert!(
        !queries.is_empty() && queries.iter().all(|to| (100..108).contains(&to.port())),
        "{queries:?}"
    );
    // The pinged nodes never answer: after two timeouts each, the newcomer takes a place.
    for _ in 0..3 {
        let mut out = Vec::new();
        node.tick(now + Duration::from_secs(3), &mut rng, &mut out);
        node.handle_packet(
            addr(200),
            &ping,
            now + Duration::from_secs(3),
            &mut rng,
            &mut out,
        );
        node.tick(now + Duration::from_secs(6), &mut rng, &mut out);
    }
    assert!(
        node.table().get(&far(50)).is_some(),
        "newcomer took the place of a node that failed"
    );
}

#[test]
fn own_lookup_includes_peers_announced_to_us() {
    let (mut node, mut rng, now) = setup();
    let them = NodeId::from_bytes([0x22; 20]);
    let hash = InfoHash::from_bytes([0x33; 20]);
    let token = response(ask(
        &mut node,
        &mut rng,
        now,
        addr(1),
        Query::GetPeers {
            id: them,
            info_hash: hash,
            want: Want::default(),
        },
    ))
    .token
    .unwrap();
    ask(
        &mut node,
        &mut rng,
        now,
        addr(1),
        Query::AnnouncePeer {
            id: them,
            info_hash: hash,
            port: 6000,
            implied_port: false,
            token,
        },
    );
    let mut out = Vec::new();
    let request = node.get_peers(hash, now, &mut out);
    // The querier is in our table and is asked; it never answers.
    node.tick(now + Duration::from_secs(5), &mut rng, &mut out);
    let done = out.iter().find_map(|a| match a {
        Action::LookupDone {
            request: r, peers, ..
        } if *r == request => Some(peers.clone()),
        _ => None,
    });
    assert_eq!(done, Some(vec![SocketAddr::from(([127, 0, 0, 1], 6000))]));
}
