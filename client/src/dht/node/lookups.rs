//! Operations the caller starts (BEP 5): `ping`, the bootstrap, `find_node` / `get_peers`
//! lookups and announces, and the driving of each lookup until it is done: queries sent at
//! most α at a time, then for an announce the `announce_peer` round to the closest nodes that
//! gave a token. A lookup is reported done once, after its last query answered or failed.
//!
//! BEP 32: a lookup runs once per family the node is on, each in its own DHT from its own
//! table; the runs share one request, the announce round waits until every run is done (a
//! run that had no node to start from may still get some from the other family's replies),
//! and the outcome carries the peers and nodes of all runs.

use std::net::SocketAddr;
use std::time::Instant;

use rill_common::InfoHash;
use rill_common::krpc::{CompactNode, NodeId, Query};

use super::{Action, LookupKind, LookupTask, Node, Purpose, QueryFailure, RequestId, Run};
use crate::dht::family::Family;
use crate::dht::lookup::Lookup;
use crate::dht::peer_store::MAX_REPLY_PEERS;
use crate::dht::routing_table::K;

impl Node {
    /// Joins the network: a `find_node` lookup of our own id from `known` nodes (say, a saved
    /// table) and `bootstrap` addresses, each in the DHT of its family; responders fill the
    /// tables.
    pub fn bootstrap(
        &mut self,
        known: Vec<CompactNode>,
        bootstrap: Vec<SocketAddr>,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> RequestId {
        let runs = self
            .config
            .families
            .iter()
            .map(|family| {
                let seeds = known.iter().filter(|n| Family::of(&n.addr) == family);
                let addrs = bootstrap.iter().filter(|a| Family::of(a) == family);
                let lookup = Lookup::new(self.id, Some(self.id), seeds.copied(), addrs.copied());
                Run::new(family, lookup)
            })
            .collect();
        self.start(self.id, runs, LookupKind::FindNode, now, out)
    }

    /// Pings `addr`; the result comes as [`Action::PingDone`].
    pub fn ping(&mut self, addr: SocketAddr, now: Instant, out: &mut Vec<Action>) -> RequestId {
        let request = self.request_id();
        let query = Query::Ping { id: self.id };
        if !self.send_query(addr, None, query, Purpose::Ping(request), now, out) {
            out.push(Action::PingDone {
                request,
                result: Err(QueryFailure::Busy),
            });
        }
        request
    }

    /// Starts a lookup of `target` in each DHT the node is on; progress comes as
    /// [`Action::PeersFound`] and [`Action::LookupDone`].
    pub fn lookup(
        &mut self,
        target: NodeId,
        kind: LookupKind,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> RequestId {
        let families: Vec<Family> = self.config.families.iter().collect();
        self.lookup_in(target, kind, &families, now, out)
    }

    /// Starts a lookup of `target` in the DHTs of `families`.
    pub(super) fn lookup_in(
        &mut self,
        target: NodeId,
        kind: LookupKind,
        families: &[Family],
        now: Instant,
        out: &mut Vec<Action>,
    ) -> RequestId {
        let mut runs: Vec<Run> = families
            .iter()
            .map(|&family| {
                let seeds = self.tables.get(family).closest(&target, K * 2, now);
                Run::new(family, Lookup::new(target, Some(self.id), seeds, []))
            })
            .collect();
        if kind != LookupKind::FindNode {
            // We may be one of the closest nodes ourselves: peers announced to us count too.
            let info_hash = InfoHash::from_bytes(*target.as_bytes());
            for run in &mut runs {
                let store = self.stores.get(run.family);
                run.lookup
                    .add_peers(&store.live_peers(&info_hash, now, MAX_REPLY_PEERS));
            }
        }
        self.start(target, runs, kind, now, out)
    }

    /// `get_peers` for `info_hash`.
    pub fn get_peers(
        &mut self,
        info_hash: InfoHash,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> RequestId {
        self.lookup(NodeId::from(info_hash), LookupKind::GetPeers, now, out)
    }

    /// `get_peers` then `announce_peer` for `info_hash`: on TCP `port`, or on our UDP port
    /// (`implied_port`) when `None`. Each DHT stores the address we announce from, so a node
    /// on both announces its IPv4 and its IPv6 address.
    pub fn announce(
        &mut self,
        info_hash: InfoHash,
        port: Option<u16>,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> RequestId {
        let kind = LookupKind::Announce {
            port: port.unwrap_or(0),
            implied_port: port.is_none(),
        };
        self.lookup(NodeId::from(info_hash), kind, now, out)
    }

    fn start(
        &mut self,
        target: NodeId,
        runs: Vec<Run>,
        kind: LookupKind,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> RequestId {
        let request = self.request_id();
        self.stats.lookups_started += 1;
        let task = LookupTask {
            target,
            runs,
            kind,
            announcing: None,
            announced: 0,
        };
        self.lookups.insert(request, task);
        self.advance(request, now, out);
        request
    }

    /// Sends what a lookup can send now and finishes it when it is over.
    pub(super) fn advance(&mut self, request: RequestId, now: Instant, out: &mut Vec<Action>) {
        let Some(task) = self.lookups.get(&request) else {
            return;
        };
        if task.announcing.is_none() {
            let families: Vec<Family> = task.runs.iter().map(|r| r.family).collect();
            for family in families {
                self.send_lookup_queries(request, family, now, out);
            }
            let Some(task) = self.lookups.get(&request) else {
                return;
            };
            if !task.runs.iter().all(|r| r.lookup.is_done()) {
                return;
            }
            if let LookupKind::Announce { port, implied_port } = task.kind {
                self.send_announces(request, port, implied_port, now, out);
            }
        }
        if self
            .lookups
            .get(&request)
            .is_some_and(|t| t.announcing.is_none_or(|left| left == 0))
            && let Some(task) = self.lookups.remove(&request)
        {
            let runs = &task.runs;
            out.push(Action::LookupDone {
                request,
                peers: runs
                    .iter()
                    .flat_map(|r| r.lookup.peers())
                    .copied()
                    .collect(),
                nodes: runs
                    .iter()
                    .flat_map(|r| r.lookup.closest_responders(K))
                    .map(|r| r.node)
                    .collect(),
                announced: task.announced,
            });
        }
    }

    /// Sends the queries `family`'s run of a lookup can send now.
    fn send_lookup_queries(
        &mut self,
        request: RequestId,
        family: Family,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(task) = self.lookups.get_mut(&request) else {
            return;
        };
        let (kind, target) = (task.kind, task.target);
        let Some(run) = task.run_mut(family) else {
            return;
        };
        let want = self.config.families.query_want();
        for addr in run.lookup.next_queries() {
            let query = match kind {
                LookupKind::FindNode => Query::FindNode {
                    id: self.id,
                    target,
                    want,
                },
                _ => Query::GetPeers {
                    id: self.id,
                    info_hash: InfoHash::from_bytes(*target.as_bytes()),
                    want,
                },
            };
            let purpose = Purpose::Lookup(request, family);
            if !self.send_query(addr, None, query, purpose, now, out)
                && let Some(run) = self
                    .lookups
                    .get_mut(&request)
                    .and_then(|t| t.run_mut(family))
            {
                run.lookup.on_failure(addr);
            }
        }
    }

    /// The `announce_peer` round: to the closest responders with a token, in every run.
    fn send_announces(
        &mut self,
        request: RequestId,
        port: u16,
        implied_port: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(task) = self.lookups.get_mut(&request) else {
            return;
        };
        task.announcing = Some(0);
        let responders: Vec<_> = task
            .runs
            .iter()
            .flat_map(|r| r.lookup.closest_responders(K))
            .collect();
        let info_hash = InfoHash::from_bytes(*task.target.as_bytes());
        let mut sent = 0;
        for responder in responders {
            let Some(token) = responder.token else {
                continue;
            };
            let query = Query::AnnouncePeer {
                id: self.id,
                info_hash,
                port,
                implied_port,
                token,
            };
            let node = responder.node;
            let purpose = Purpose::Announce(request);
            if self.send_query(node.addr, Some(node.id), query, purpose, now, out) {
                sent += 1;
            }
        }
        if let Some(task) = self.lookups.get_mut(&request) {
            task.announcing = Some(sent);
        }
    }
}

impl Run {
    fn new(family: Family, lookup: Lookup) -> Self {
        Run {
            family,
            lookup,
            reported_peers: 0,
        }
    }
}
