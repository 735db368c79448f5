//! Replies to our queries and their failures: a reply (matched to its query by the caller)
//! puts the replier in the table unless it is read-only (BEP 43) and feeds the ping, lookup or
//! announce it was for; an error reply or a timeout fails that step, and a timeout counts
//! against the node in the routing table.

use std::net::SocketAddr;
use std::time::Instant;

use rill_common::krpc::{Body, CompactNode, Message, NodeId};

use super::{Action, LookupKind, Node, Pending, Purpose, QueryFailure, RequestId};
use crate::dht::routing_table::Contact;

impl Node {
    pub(super) fn handle_reply(
        &mut self,
        from: SocketAddr,
        message: &Message,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(pending) = self.pending.remove(&message.transaction_id) else {
            return;
        };
        let response = match &message.body {
            Body::Response(response) => response,
            Body::Error {
                code,
                message: text,
            } => {
                let failure = QueryFailure::Error {
                    code: *code,
                    message: text.clone(),
                };
                return self.query_failed(pending, failure, now, out);
            }
            Body::Query(_) => return,
        };
        if response.id == self.id {
            // Our own id answering: a loop back to ourselves; never a table entry.
            return self.query_failed(pending, QueryFailure::Timeout, now, out);
        }
        let node = CompactNode {
            id: response.id,
            addr: from,
        };
        if message.read_only {
            self.table.remove(&response.id);
        } else {
            self.heard_from(node, Contact::Responded, now, out);
        }
        match pending.purpose {
            Purpose::Ping(request) => out.push(Action::PingDone {
                request,
                result: Ok(response.id),
            }),
            Purpose::Maintenance => {}
            Purpose::Lookup(request) => {
                let Some(task) = self.lookups.get_mut(&request) else {
                    return;
                };
                let nodes: Vec<CompactNode> = response
                    .nodes
                    .iter()
                    .chain(&response.nodes6)
                    // Only nodes we can reach from this socket's address family (BEP 32 is
                    // not spoken yet), and never port 0.
                    .filter(|n| n.addr.port() != 0 && n.addr.is_ipv4() == from.is_ipv4())
                    .copied()
                    .collect();
                task.lookup.on_response(
                    from,
                    response.id,
                    &nodes,
                    &response.values,
                    response.token.clone(),
                );
                let found = task.lookup.peers();
                if found.len() > task.reported_peers
                    && matches!(
                        task.kind,
                        LookupKind::GetPeers | LookupKind::Announce { .. }
                    )
                {
                    let new = found
                        .get(task.reported_peers..)
                        .unwrap_or_default()
                        .to_vec();
                    task.reported_peers = found.len();
                    out.push(Action::PeersFound {
                        request,
                        peers: new,
                    });
                }
                self.advance(request, now, out);
            }
            Purpose::Announce(request) => {
                if let Some(task) = self.lookups.get_mut(&request) {
                    task.announced += 1;
                }
                self.announce_answered(request, now, out);
            }
        }
    }

    fn announce_answered(&mut self, request: RequestId, now: Instant, out: &mut Vec<Action>) {
        if let Some(task) = self.lookups.get_mut(&request)
            && let Some(left) = task.announcing.as_mut()
        {
            *left = left.saturating_sub(1);
        }
        self.advance(request, now, out);
    }

    pub(super) fn query_failed(
        &mut self,
        pending: Pending,
        failure: QueryFailure,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if failure == QueryFailure::Timeout
            && let Some(id) = pending.id.or_else(|| self.table_id_at(pending.to))
        {
            self.table.failed(&id, now);
        }
        match pending.purpose {
            Purpose::Ping(request) => out.push(Action::PingDone {
                request,
                result: Err(failure),
            }),
            Purpose::Maintenance => {}
            Purpose::Lookup(request) => {
                if let Some(task) = self.lookups.get_mut(&request) {
                    task.lookup.on_failure(pending.to);
                }
                self.advance(request, now, out);
            }
            Purpose::Announce(request) => self.announce_answered(request, now, out),
        }
    }

    fn table_id_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.table
            .entries()
            .find(|e| e.node.addr == addr)
            .map(|e| e.node.id)
    }
}
