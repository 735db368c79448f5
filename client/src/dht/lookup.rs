//! An iterative lookup (BEP 5 `find_node` / `get_peers`) as plain state.
//!
//! The lookup keeps candidates sorted by XOR distance to the target (nodes whose id is not
//! known yet, such as bootstrap routers, sort first). It keeps at most [`ALPHA`] queries in
//! flight, each to the closest candidate not yet asked among the [`K`] closest that have not
//! failed. It is done when nothing is in flight and each of those K closest has answered: no
//! closer node is left to ask. The caller sends the queries, applies its own per-query
//! timeout and reports each outcome with [`Lookup::on_response`] or [`Lookup::on_failure`].
//!
//! Invariants: at most [`MAX_CANDIDATES`] candidates, each address once; at most
//! [`MAX_NODES_PER_REPLY`] nodes taken from one reply and [`MAX_PEERS`] peers in all, so a
//! lying node can waste a few queries but not memory or the whole lookup. Pure: no clock.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::SocketAddr;

use rill_common::krpc::{CompactNode, Distance, NodeId};

use super::routing_table::K;

/// Queries in flight at once (BEP 5 leaves it open; Kademlia's α = 3).
pub const ALPHA: usize = 3;
/// Most candidates a lookup remembers.
pub const MAX_CANDIDATES: usize = 128;
/// Most nodes taken from one reply (honest nodes send K = 8).
pub const MAX_NODES_PER_REPLY: usize = 16;
/// Most peers a `get_peers` lookup collects.
pub const MAX_PEERS: usize = 2000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    InFlight,
    Responded { token: Option<Vec<u8>> },
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    addr: SocketAddr,
    id: Option<NodeId>,
    state: State,
}

impl Candidate {
    fn key(&self, target: &NodeId) -> Option<Distance> {
        self.id.map(|id| id.distance(target))
    }
}

/// A node that answered the lookup, with the `announce_peer` token it gave (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Responder {
    /// The node.
    pub node: CompactNode,
    /// Its `token` (present in `get_peers` replies).
    pub token: Option<Vec<u8>>,
}

/// One iterative lookup toward a target id.
#[derive(Clone, Debug)]
pub struct Lookup {
    target: NodeId,
    own_id: Option<NodeId>,
    candidates: Vec<Candidate>,
    peers: Vec<SocketAddr>,
    in_flight: usize,
    queried: usize,
}

impl Lookup {
    /// A lookup of `target` starting from `seeds` (usually the table's closest nodes) and
    /// `bootstrap` addresses whose ids are unknown. Nodes with `own_id` are never queried.
    pub fn new(
        target: NodeId,
        own_id: Option<NodeId>,
        seeds: impl IntoIterator<Item = CompactNode>,
        bootstrap: impl IntoIterator<Item = SocketAddr>,
    ) -> Self {
        let mut lookup = Lookup {
            target,
            own_id,
            candidates: Vec::new(),
            peers: Vec::new(),
            in_flight: 0,
            queried: 0,
        };
        for addr in bootstrap {
            lookup.add(addr, None);
        }
        for node in seeds {
            lookup.add(node.addr, Some(node.id));
        }
        lookup
    }

    /// The id sought.
    pub fn target(&self) -> NodeId {
        self.target
    }

    fn add(&mut self, addr: SocketAddr, id: Option<NodeId>) {
        if id.is_some() && id == self.own_id {
            return;
        }
        if self.candidates.iter().any(|c| c.addr == addr) {
            return;
        }
        let candidate = Candidate {
            addr,
            id,
            state: State::Fresh,
        };
        let key = candidate.key(&self.target);
        let at = self
            .candidates
            .partition_point(|c| c.key(&self.target) <= key);
        self.candidates.insert(at, candidate);
        if self.candidates.len() > MAX_CANDIDATES {
            // Drop the farthest candidate not in flight (so an outstanding reply still finds
            // its candidate); if all are in flight, the farthest.
            let drop = self
                .candidates
                .iter()
                .rposition(|c| c.state != State::InFlight)
                .unwrap_or(self.candidates.len() - 1);
            self.candidates.remove(drop);
        }
    }

    /// The K closest candidates that have not failed, in order.
    fn frontier(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(K)
    }

    /// Addresses to query now (marked in flight), keeping at most [`ALPHA`] in flight.
    pub fn next_queries(&mut self) -> Vec<SocketAddr> {
        let room = ALPHA.saturating_sub(self.in_flight);
        let picks: Vec<SocketAddr> = self
            .frontier()
            .filter(|c| c.state == State::Fresh)
            .take(room)
            .map(|c| c.addr)
            .collect();
        for addr in &picks {
            if let Some(c) = self.candidates.iter_mut().find(|c| c.addr == *addr) {
                c.state = State::InFlight;
            }
        }
        self.in_flight += picks.len();
        self.queried += picks.len();
        picks
    }

    fn take_in_flight(&mut self, from: SocketAddr) -> Option<usize> {
        let index = self
            .candidates
            .iter()
            .position(|c| c.addr == from && c.state == State::InFlight)?;
        self.in_flight -= 1;
        Some(index)
    }

    /// `from` answered with its id, closer `nodes`, peers (`values`) and a token.
    pub fn on_response(
        &mut self,
        from: SocketAddr,
        id: NodeId,
        nodes: &[CompactNode],
        values: &[SocketAddr],
        token: Option<Vec<u8>>,
    ) {
        let Some(index) = self.take_in_flight(from) else {
            return;
        };
        let mut candidate = self.candidates.remove(index);
        if Some(id) == self.own_id {
            return;
        }
        // Re-file under the id it answered with (bootstrap nodes had none).
        candidate.id = Some(id);
        candidate.state = State::Responded { token };
        let key = candidate.key(&self.target);
        let at = self
            .candidates
            .partition_point(|c| c.key(&self.target) <= key);
        self.candidates.insert(at, candidate);
        self.add_nodes(nodes);
        self.add_peers(values);
    }

    /// Adds candidate nodes (at most [`MAX_NODES_PER_REPLY`] of them), as a reply does; also
    /// for nodes learnt elsewhere, such as the other family's replies (BEP 32). A lookup that
    /// was done goes on if one of them is among the K closest.
    pub fn add_nodes(&mut self, nodes: &[CompactNode]) {
        for node in nodes.iter().take(MAX_NODES_PER_REPLY) {
            self.add(node.addr, Some(node.id));
        }
    }

    /// Adds peers learnt elsewhere (our own peer store), without duplicates, up to [`MAX_PEERS`].
    pub fn add_peers(&mut self, peers: &[SocketAddr]) {
        for peer in peers {
            if self.peers.len() >= MAX_PEERS {
                break;
            }
            if !self.peers.contains(peer) {
                self.peers.push(*peer);
            }
        }
    }

    /// `from` timed out or answered with an error.
    pub fn on_failure(&mut self, from: SocketAddr) {
        if let Some(index) = self.take_in_flight(from)
            && let Some(c) = self.candidates.get_mut(index)
        {
            c.state = State::Failed;
        }
    }

    /// Whether the lookup is over: nothing in flight and no closer node left to ask.
    pub fn is_done(&self) -> bool {
        self.in_flight == 0 && !self.frontier().any(|c| c.state == State::Fresh)
    }

    /// Queries sent so far.
    pub fn queried(&self) -> usize {
        self.queried
    }

    /// Queries awaiting an answer.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Peers found so far (`get_peers`), without duplicates.
    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// Up to `count` nodes that answered, closest first, with their tokens.
    pub fn closest_responders(&self, count: usize) -> Vec<Responder> {
        self.candidates
            .iter()
            .filter_map(|c| match (&c.state, c.id) {
                (State::Responded { token }, Some(id)) => Some(Responder {
                    node: CompactNode { id, addr: c.addr },
                    token: token.clone(),
                }),
                _ => None,
            })
            .take(count)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::routing_table::{Contact, RoutingTable};
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{HashMap, HashSet};
    use std::time::Instant;

    /// How a simulated node behaves.
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Honest,
        Dead,
        /// Answers with made-up nodes very close to the target that do not exist.
        Liar,
    }

    struct Network {
        tables: HashMap<SocketAddr, (RoutingTable, Kind)>,
        nodes: Vec<CompactNode>,
    }

    fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881))
    }

    fn network(size: usize, dead: f64, liars: f64, rng: &mut StdRng) -> Network {
        let now = Instant::now();
        let nodes: Vec<CompactNode> = (0..size)
            .map(|i| CompactNode {
                id: NodeId::random(rng),
                addr: addr(i),
            })
            .collect();
        let kinds: Vec<Kind> = (0..size)
            .map(|_| {
                let roll: f64 = rng.random();
                if roll < dead {
                    Kind::Dead
                } else if roll < dead + liars {
                    Kind::Liar
                } else {
                    Kind::Honest
                }
            })
            .collect();
        let mut tables = HashMap::new();
        for (n, kind) in nodes.iter().zip(&kinds) {
            let mut table = RoutingTable::new(n.id, now);
            for other in &nodes {
                table.insert(*other, Contact::Responded, now);
            }
            // Live nodes have noticed the dead ones (two failed queries make them bad), as
            // they would in a running network; liars look alive and stay.
            for (other, other_kind) in nodes.iter().zip(&kinds) {
                if *other_kind == Kind::Dead {
                    table.failed(&other.id, now);
                    table.failed(&other.id, now);
                }
            }
            tables.insert(n.addr, (table, *kind));
        }
        Network { tables, nodes }
    }

    /// Runs a lookup to completion; returns it and the number of steps taken.
    fn run(net: &Network, target: NodeId, seed: CompactNode, rng: &mut StdRng) -> (Lookup, usize) {
        let now = Instant::now();
        let mut lookup = Lookup::new(target, None, [seed], []);
        let mut steps = 0;
        while !lookup.is_done() {
            steps += 1;
            assert!(steps < 10_000, "lookup does not terminate");
            let batch = lookup.next_queries();
            assert!(lookup.in_flight() <= ALPHA);
            for to in batch {
                match net.tables.get(&to) {
                    Some((table, Kind::Honest)) => {
                        let nodes = table.closest(&target, K, now);
                        lookup.on_response(to, table.own_id(), &nodes, &[], Some(b"tok".to_vec()));
                    }
                    Some((table, Kind::Liar)) => {
                        let fake: Vec<CompactNode> = (0..20)
                            .map(|i| {
                                let mut bytes = *target.as_bytes();
                                bytes[19] ^= i as u8 + 1;
                                bytes[18] = rng.random();
                                CompactNode {
                                    id: NodeId::from_bytes(bytes),
                                    addr: SocketAddr::from(([192, 0, 2, i as u8], 1)),
                                }
                            })
                            .collect();
                        lookup.on_response(to, table.own_id(), &fake, &[], None);
                    }
                    Some((_, Kind::Dead)) | None => lookup.on_failure(to),
                }
            }
        }
        (lookup, steps)
    }

    fn expected(net: &Network, target: &NodeId) -> Vec<NodeId> {
        let mut live: Vec<CompactNode> = net
            .nodes
            .iter()
            .filter(|n| net.tables[&n.addr].1 != Kind::Dead)
            .copied()
            .collect();
        live.sort_by_key(|n| n.id.distance(target));
        live.into_iter().take(K).map(|n| n.id).collect()
    }

    #[test]
    fn converges_on_the_true_closest_nodes() {
        let mut rng = StdRng::seed_from_u64(11);
        let net = network(300, 0.0, 0.0, &mut rng);
        for _ in 0..5 {
            let target = NodeId::random(&mut rng);
            let seed = net.nodes[rng.random_range(0..net.nodes.len())];
            let (lookup, _) = run(&net, target, seed, &mut rng);
            let got: Vec<NodeId> = lookup
                .closest_responders(K)
                .iter()
                .map(|r| r.node.id)
                .collect();
            assert_eq!(got, expected(&net, &target));
            assert!(lookup.queried() < 100, "queried {} nodes", lookup.queried());
            assert!(
                lookup
                    .closest_responders(K)
                    .iter()
                    .all(|r| r.token.as_deref() == Some(b"tok".as_slice()))
            );
        }
    }

    #[test]
    fn survives_timeouts_and_liars() {
        let mut rng = StdRng::seed_from_u64(12);
        let net = network(300, 0.2, 0.1, &mut rng);
        for _ in 0..5 {
            let target = NodeId::random(&mut rng);
            let seed = *net
                .nodes
                .iter()
                .find(|n| net.tables[&n.addr].1 == Kind::Honest)
                .unwrap();
            let (lookup, _) = run(&net, target, seed, &mut rng);
            let got: Vec<NodeId> = lookup
                .closest_responders(K)
                .iter()
                .map(|r| r.node.id)
                .collect();
            assert_eq!(got, expected(&net, &target));
        }
    }

    #[test]
    fn bootstrap_address_is_asked_first_and_refiled() {
        let mut rng = StdRng::seed_from_u64(13);
        let target = NodeId::random(&mut rng);
        let boot = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut lookup = Lookup::new(target, None, [], [boot]);
        assert_eq!(lookup.next_queries(), vec![boot]);
        assert!(!lookup.is_done());
        let id = NodeId::random(&mut rng);
        lookup.on_response(boot, id, &[], &[SocketAddr::from(([1, 2, 3, 4], 5))], None);
        assert!(lookup.is_done());
        assert_eq!(lookup.peers().len(), 1);
        assert_eq!(lookup.closest_responders(8)[0].node.id, id);
    }

    #[test]
    fn unsolicited_or_late_answers_are_ignored() {
        let mut rng = StdRng::seed_from_u64(14);
        let target = NodeId::random(&mut rng);
        let seed = CompactNode {
            id: NodeId::random(&mut rng),
            addr: addr(1),
        };
        let mut lookup = Lookup::new(target, None, [seed], []);
        lookup.on_response(addr(1), seed.id, &[], &[], None);
        assert_eq!(lookup.in_flight(), 0);
        assert!(lookup.closest_responders(8).is_empty(), "not asked yet");
        lookup.next_queries();
        lookup.on_failure(addr(1));
        lookup.on_response(addr(1), seed.id, &[], &[], None);
        assert!(
            lookup.closest_responders(8).is_empty(),
            "answer after timeout"
        );
        assert!(lookup.is_done());
    }

    proptest! {
        #[test]
        fn candidates_stay_bounded_and_sorted(
            replies in proptest::collection::vec(proptest::collection::vec((any::<[u8; 20]>(), any::<u16>()), 0..40), 1..40)
        ) {
            let target = NodeId::from_bytes([0x55; 20]);
            let seed = CompactNode { id: NodeId::from_bytes([0; 20]), addr: addr(0) };
            let mut lookup = Lookup::new(target, None, [seed], []);
            for reply in replies {
                let batch = lookup.next_queries();
                for to in batch {
                    let nodes: Vec<CompactNode> = reply.iter().map(|(id, port)| CompactNode {
                        id: NodeId::from_bytes(*id), addr: SocketAddr::from(([10, 1, (port >> 8) as u8, *port as u8], 1)),
                    }).collect();
                    lookup.on_response(to, NodeId::from_bytes([1; 20]), &nodes, &[], None);
                }
                prop_assert!(lookup.candidates.len() <= MAX_CANDIDATES);
                prop_assert!(lookup.in_flight() <= ALPHA);
                let keys: Vec<_> = lookup.candidates.iter().map(|c| c.key(&target)).collect();
                prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]));
                let addrs: HashSet<_> = lookup.candidates.iter().map(|c| c.addr).collect();
                prop_assert_eq!(addrs.len(), lookup.candidates.len());
            }
        }
    }
}
