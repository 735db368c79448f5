//! Operations the caller starts (BEP 5): `ping`, the bootstrap, `find_node` / `get_peers`
//! lookups and announces, and the driving of each lookup until it is done: queries sent at
//! most α at a time, then for an announce the `announce_peer` round to the closest nodes that
//! gave a token. A lookup is reported done once, after its last query answered or failed.

use std::net::SocketAddr;
use std::time::Instant;

use rill_common::InfoHash;
use rill_common::krpc::{CompactNode, NodeId, Query, Want};

use super::{Action, LookupKind, LookupTask, Node, Purpose, QueryFailure, RequestId};
use crate::dht::lookup::Lookup;
use crate::dht::peer_store::MAX_REPLY_PEERS;
use crate::dht::routing_table::K;

impl Node {
    /// Joins the network: a `find_node` lookup of our own id from `known` nodes (say, a saved
    /// table) and `bootstrap` addresses; responders fill the table.
    pub fn bootstrap(
        &mut self,
        known: Vec<CompactNode>,
        bootstrap: Vec<SocketAddr>,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> RequestId {
        let lookup = Lookup::new(self.id, Some(self.id), known, bootstrap);
        self.start(lookup, LookupKind::FindNode, now, out)
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

    /// Starts a lookup of `target`; progress comes as [`Action::PeersFound`] and
    /// [`Action::LookupDone`].
    pub fn lookup(
        &mut self,
        target: NodeId,
        kind: LookupKind,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> RequestId {
        let seeds = self.table.closest(&target, K * 2, now);
        let mut lookup = Lookup::new(target, Some(self.id), seeds, []);
        if kind != LookupKind::FindNode {
            // We may be one of the closest nodes ourselves: peers announced to us count too.
            let info_hash = InfoHash::from_bytes(*target.as_bytes());
            lookup.add_peers(&self.store.live_peers(&info_hash, now, MAX_REPLY_PEERS));
        }
        self.start(lookup, kind, now, out)
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
    /// (`implied_port`) when `None`.
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
        lookup: Lookup,
        kind: LookupKind,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> RequestId {
        let request = self.request_id();
        self.stats.lookups_started += 1;
        let task = LookupTask {
            lookup,
            kind,
            reported_peers: 0,
            announcing: None,
            announced: 0,
        };
        self.lookups.insert(request, task);
        self.advance(request, now, out);
        request
    }

    /// Sends what a lookup can send now and finishes it when it is over.
    pub(super) fn advance(&mut self, request: RequestId, now: Instant, out: &mut Vec<Action>) {
        let Some(task) = self.lookups.get_mut(&request) else {
            return;
        };
        if task.announcing.is_none() {
            let target = task.lookup.target();
            let kind = task.kind;
            let queries = task.lookup.next_queries();
            for addr in queries {
                let query = match kind {
                    LookupKind::FindNode => Query::FindNode {
                        id: self.id,
                        target,
                        want: Want::default(),
                    },
                    _ => Query::GetPeers {
                        id: self.id,
                        info_hash: InfoHash::from_bytes(*target.as_bytes()),
                        want: Want::default(),
                    },
                };
                if !self.send_query(addr, None, query, Purpose::Lookup(request), now, out)
                    && let Some(task) = self.lookups.get_mut(&request)
                {
                    task.lookup.on_failure(addr);
                }
            }
            let Some(task) = self.lookups.get_mut(&request) else {
                return;
            };
            if !task.lookup.is_done() {
                return;
            }
            if let LookupKind::Announce { port, implied_port } = task.kind {
                let target = InfoHash::from_bytes(*task.lookup.target().as_bytes());
                let responders = task.lookup.closest_responders(K);
                task.announcing = Some(0);
                let mut sent = 0;
                for responder in responders {
                    let Some(token) = responder.token else {
                        continue;
                    };
                    let query = Query::AnnouncePeer {
                        id: self.id,
                        info_hash: target,
                        port,
                        implied_port,
                        token,
                    };
                    let node = responder.node;
                    if self.send_query(
                        node.addr,
                        Some(node.id),
                        query,
                        Purpose::Announce(request),
                        now,
                        out,
                    ) {
                        sent += 1;
                    }
                }
                if let Some(task) = self.lookups.get_mut(&request) {
                    task.announcing = Some(sent);
                }
            }
        }
        if self
            .lookups
            .get(&request)
            .is_some_and(|t| t.announcing.is_none_or(|left| left == 0))
            && let Some(task) = self.lookups.remove(&request)
        {
            out.push(Action::LookupDone {
                request,
                peers: task.lookup.peers().to_vec(),
                nodes: task
                    .lookup
                    .closest_responders(K)
                    .into_iter()
                    .map(|r| r.node)
                    .collect(),
                announced: task.announced,
            });
        }
    }
}
