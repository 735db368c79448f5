//! Whole networks of nodes stepped in memory: packets delivered in order, some nodes dead or
//! packets lost, time moved on by hand.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::krpc::NodeId;

use super::{addr, addr6, hash};
use crate::dht::family::{Families, Family};
use crate::dht::node::{Action, Node, NodeConfig, RequestId};

/// An in-memory network of nodes: packets are delivered in order, nodes in `dead` drop them.
pub(super) struct Sim {
    pub(super) nodes: Vec<Node>,
    rng: StdRng,
    now: Instant,
    queue: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    dead: Vec<usize>,
    /// Chance that any packet is lost.
    loss: f64,
    done: Vec<(usize, Action)>,
}

impl Sim {
    pub(super) fn new(count: usize, seed: u64) -> Self {
        Sim::with_families(count, seed, Families::default())
    }

    /// Nodes on the DHTs of `families`; node `i` is at port `10_000 + i` of `127.0.0.1` and
    /// of `::1`.
    pub(super) fn with_families(count: usize, seed: u64, families: Families) -> Self {
        let config = NodeConfig {
            families,
            ..NodeConfig::default()
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let now = Instant::now();
        let nodes = (0..count)
            .map(|_| Node::new(NodeId::random(&mut rng), config.clone(), now, &mut rng))
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

    /// One more node, on the DHTs of `families`; its index.
    pub(super) fn add_node(&mut self, families: Families) -> usize {
        let config = NodeConfig {
            families,
            ..NodeConfig::default()
        };
        let id = NodeId::random(&mut self.rng);
        self.nodes
            .push(Node::new(id, config, self.now, &mut self.rng));
        self.nodes.len() - 1
    }

    pub(super) fn addr_of(i: usize) -> SocketAddr {
        addr(10_000 + i as u16)
    }

    pub(super) fn addr6_of(i: usize) -> SocketAddr {
        addr6(10_000 + i as u16)
    }

    fn collect(&mut self, from: usize, out: Vec<Action>) {
        for action in out {
            match action {
                Action::Send { to, packet } => {
                    let source = match Family::of(&to) {
                        Family::V4 => Self::addr_of(from),
                        Family::V6 => Self::addr6_of(from),
                    };
                    self.queue.push_back((source, to, packet))
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

    /// Starts an operation on node `at`, settles the network and returns how it ended.
    pub(super) fn run<F: FnOnce(&mut Node, Instant, &mut Vec<Action>) -> RequestId>(
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

    /// The peers a `get_peers` lookup from node `at` found.
    pub(super) fn peers_from(
        &mut self,
        at: usize,
        info_hash: rill_common::InfoHash,
    ) -> Vec<SocketAddr> {
        match self.run(at, |node, now, out| node.get_peers(info_hash, now, out)) {
            Action::LookupDone { peers, .. } => peers,
            other => panic!("expected LookupDone, got {other:?}"),
        }
    }

    pub(super) fn bootstrap_all(&mut self) {
        self.bootstrap_all_from(&[Sim::addr_of(0)]);
    }

    /// Bootstraps every node but the first from `addrs`.
    pub(super) fn bootstrap_all_from(&mut self, addrs: &[SocketAddr]) {
        for i in 1..self.nodes.len() {
            self.run(i, |node, now, out| {
                node.bootstrap(Vec::new(), addrs.to_vec(), now, out)
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
    let hash = hash(0xAB);
    let announced = sim.run(17, |node, now, out| {
        node.announce(hash, Some(51413), now, out)
    });
    let Action::LookupDone { announced, .. } = announced else {
        panic!()
    };
    assert!(announced >= 4, "announced to {announced} nodes");
    for i in 0..sim.nodes.len() {
        assert_eq!(sim.peers_from(i, hash), vec![addr(51413)], "from node {i}");
    }
}

#[test]
fn simulated_network_survives_dead_nodes() {
    let mut sim = Sim::new(60, 4);
    sim.bootstrap_all();
    let hash = hash(0x5A);
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
    assert_eq!(sim.peers_from(searcher, hash), vec![addr(1000)]);
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
            let hash = hash(byte);
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
}
