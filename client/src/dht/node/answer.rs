//! Answers to incoming queries (BEP 5): `ping`, `find_node`, `get_peers`, `announce_peer`,
//! and errors 203 (bad token, port 0) and 204 (unknown method).
//!
//! BEP 32: `nodes` / `nodes6` as the query's `want` asks (else the family it came in on);
//! `values` and announces use the store of the querier's family, so a query over IPv6 gets
//! 18-byte IPv6 peers and an announce over IPv6 stores the querier's IPv6 address.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;
use rill_common::krpc::{
    CompactNode, ERROR_METHOD_UNKNOWN, ERROR_PROTOCOL, Message, NodeId, Query, Response, Want,
};

use super::{Action, Node, VERSION};
use crate::dht::family::{Family, reply_want};
use crate::dht::routing_table::{Contact, K};

impl Node {
    pub(super) fn reply(&mut self, to: SocketAddr, mut message: Message, out: &mut Vec<Action>) {
        message.version = Some(VERSION.to_vec());
        message.ip = Some(to);
        self.stats.queries_answered += 1;
        out.push(Action::Send {
            to,
            packet: message.to_bytes(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_query(
        &mut self,
        from: SocketAddr,
        tid: Vec<u8>,
        read_only: bool,
        query: Query,
        now: Instant,
        rng: &mut impl Rng,
        out: &mut Vec<Action>,
    ) {
        if let (Some(id), false) = (query.id(), read_only) {
            self.heard_from(CompactNode { id, addr: from }, Contact::Queried, now, out);
        }
        let family = Family::of(&from);
        let response = match query {
            Query::Ping { .. } => Response {
                id: self.id,
                ..Response::default()
            },
            Query::FindNode { target, want, .. } => Response {
                id: self.id,
                ..self.closest_nodes(&target, want, family, now)
            },
            Query::GetPeers {
                info_hash, want, ..
            } => Response {
                id: self.id,
                values: self.stores.get(family).peers(&info_hash, now, rng),
                token: Some(self.tokens.issue(from.ip())),
                ..self.closest_nodes(&NodeId::from(info_hash), want, family, now)
            },
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                ..
            } => {
                if !self.tokens.verify(&token, from.ip()) {
                    let error = Message::error(tid, ERROR_PROTOCOL, "bad token");
                    return self.reply(from, error, out);
                }
                let port = if implied_port { from.port() } else { port };
                if port == 0 {
                    let error = Message::error(tid, ERROR_PROTOCOL, "port 0");
                    return self.reply(from, error, out);
                }
                self.stores.get_mut(family).announce(
                    info_hash,
                    SocketAddr::new(from.ip(), port),
                    now,
                );
                Response {
                    id: self.id,
                    ..Response::default()
                }
            }
            Query::Other { .. } => {
                let error = Message::error(tid, ERROR_METHOD_UNKNOWN, "method unknown");
                return self.reply(from, error, out);
            }
        };
        self.reply(from, Message::response(tid, response), out);
    }

    /// `nodes` and `nodes6` of a reply: the K closest to `target` of each table `want` asks
    /// for, or of the table of the family asked on (BEP 32).
    fn closest_nodes(
        &self,
        target: &NodeId,
        want: Want,
        asked_on: Family,
        now: Instant,
    ) -> Response {
        let want = reply_want(want, asked_on);
        let closest = |wanted: bool, family| {
            if wanted {
                self.tables.get(family).closest(target, K, now)
            } else {
                Vec::new()
            }
        };
        Response {
            nodes: closest(want.v4, Family::V4),
            nodes6: closest(want.v6, Family::V6),
            ..Response::default()
        }
    }
}
