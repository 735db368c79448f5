//! Replies to our queries and their failures: a reply (matched to its query by the caller)
//! puts the replier in the table unless it is read-only (BEP 43) and feeds the ping, lookup or
//! announce it was for; an error reply or a timeout fails that step, and a timeout counts
//! against the node in its family's routing table. A lookup step's reply feeds the run of
//! its family, and its nodes of the other family (BEP 32 `want`) the other run.

use std::net::SocketAddr;
use std::time::Instant;

use rill_common::krpc::{Body, CompactNode, Message, NodeId, Response};

use super::{Action, LookupKind, Node, Pending, Purpose, QueryFailure, RequestId};
use crate::dht::family::{Family, reachable};
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
            self.tables.get_mut(Family::of(&from)).remove(&response.id);
        } else {
            self.heard_from(node, Contact::Responded, now, out);
        }
        match pending.purpose {
            Purpose::Ping(request) => out.push(Action::PingDone {
                request,
                result: Ok(response.id),
            }),
            Purpose::Maintenance => {}
            Purpose::Lookup(request, family) => {
                self.lookup_answered(request, family, from, response, now, out);
            }
            Purpose::Announce(request) => {
                if let Some(task) = self.lookups.get_mut(&request) {
                    task.announced += 1;
                }
                self.announce_answered(request, now, out);
            }
        }
    }

    /// A step of `family`'s run of a lookup answered: its nodes of that family go to the run;
    /// nodes of the other family (asked for with `want`) to the other run while it searches.
    fn lookup_answered(
        &mut self,
        request: RequestId,
        family: Family,
        from: SocketAddr,
        response: &Response,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(task) = self.lookups.get_mut(&request) else {
            return;
        };
        let all: Vec<CompactNode> = response
            .nodes
            .iter()
            .chain(&response.nodes6)
            .copied()
            .collect();
        let searching = task.announcing.is_none();
        if searching && let Some(other) = task.run_mut(family.other()) {
            other.lookup.add_nodes(&reachable(&all, family.other()));
        }
        let kind = task.kind;
        let Some(run) = task.run_mut(family) else {
            return;
        };
        run.lookup.on_response(
            from,
            response.id,
            &reachable(&all, family),
            &response.values,
            response.token.clone(),
        );
        let found = run.lookup.peers();
        if found.len() > run.reported_peers
            && matches!(kind, LookupKind::GetPeers | LookupKind::Announce { .. })
        {
            let new = found.get(run.reported_peers..).unwrap_or_default().to_vec();
            run.reported_peers = found.len();
            out.push(Action::PeersFound {
                request,
                peers: new,
            });
        }
        self.advance(request, now, out);
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
            self.tables
                .get_mut(Family::of(&pending.to))
                .failed(&id, now);
        }
        match pending.purpose {
            Purpose::Ping(request) => out.push(Action::PingDone {
                request,
                result: Err(failure),
            }),
            Purpose::Maintenance => {}
            Purpose::Lookup(request, family) => {
                if let Some(run) = self
                    .lookups
                    .get_mut(&request)
                    .and_then(|t| t.run_mut(family))
                {
                    run.lookup.on_failure(pending.to);
                }
                self.advance(request, now, out);
            }
            Purpose::Announce(request) => self.announce_answered(request, now, out),
        }
    }

    fn table_id_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.tables
            .get(Family::of(&addr))
            .entries()
            .find(|e| e.node.addr == addr)
            .map(|e| e.node.id)
    }
}
