//! Answers to incoming queries (BEP 5): `ping`, `find_node`, `get_peers`, `announce_peer`,
//! and errors 203 (bad token, port 0) and 204 (unknown method).

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;
use rill_common::krpc::{
    CompactNode, ERROR_METHOD_UNKNOWN, ERROR_PROTOCOL, Message, NodeId, Query, Response,
};

use super::{Action, Node, VERSION};
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
        let response = match query {
            Query::Ping { .. } => Response {
                id: self.id,
                ..Response::default()
            },
            Query::FindNode { target, .. } => Response {
                id: self.id,
                nodes: self.table.closest(&target, K, now),
                ..Response::default()
            },
            Query::GetPeers { info_hash, .. } => Response {
                id: self.id,
                nodes: self.table.closest(&NodeId::from(info_hash), K, now),
                values: self.store.peers(&info_hash, now, rng),
                token: Some(self.tokens.issue(from.ip())),
                ..Response::default()
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
                self.store
                    .announce(info_hash, SocketAddr::new(from.ip(), port), now);
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
}
