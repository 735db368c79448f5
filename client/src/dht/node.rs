//! A whole DHT node as plain state (BEP 5, BEP 43): incoming packets in, packets and results
//! out. The shell ([`super::task`]) owns the socket and the clock and feeds this.
//!
//! Invariants:
//! - every query we send has a fresh transaction id recorded with its destination; a reply is
//!   accepted only from that address and only once, and an unanswered query fails after
//!   [`NodeConfig::query_timeout`] (reported to the routing table and its lookup);
//! - at most [`MAX_PENDING`] queries are outstanding; beyond that new queries fail at once;
//! - packets that are not replies to us spend the sender's rate-limit allowance first (per
//!   address and per IP); over it they are dropped unread;
//! - every well-formed query is answered (errors 203 for bad arguments or a bad token, 204 for
//!   an unknown method) unless we are read-only: a read-only node answers nothing and marks
//!   its queries `ro=1`; a querier marked `ro` is answered but never enters our table (BEP 43);
//! - a packet that is not KRPC at all is dropped; nothing panics on any input;
//! - the IPv4 and IPv6 DHTs stay apart (BEP 32): a node enters the table of its address's
//!   family, a peer the store of the family it announced over; a lookup runs once in each
//!   family the node is on ([`NodeConfig::families`]) and reports once, with the peers of all.
//!
//! This file holds the state, transactions, packet intake and timers; `answer` answers
//! queries, `lookups` starts and drives the caller's operations, `reply` takes the
//! replies to our queries and their failures, and `action` is the node's inputs and outputs.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rill_common::krpc::{Body, CompactNode, ERROR_PROTOCOL, KrpcError, Message, NodeId, Query};

use super::family::{Families, Family, PerFamily, canonical};
use super::lookup::Lookup;
use super::peer_store::PeerStore;
use super::rate_limit::RateLimiter;
use super::routing_table::{Contact, Entry, Insert, RoutingTable};
use super::tokens::Tokens;

mod action;
mod answer;
mod lookups;
mod reply;
#[cfg(test)]
mod tests;

pub use action::{Action, LookupKind, NodeConfig, NodeStats, QueryFailure, RequestId};

/// Most queries of ours awaiting an answer at once.
pub const MAX_PENDING: usize = 4096;
/// Our client version in `v` (BEP 20 style: two letters and two version bytes).
pub const VERSION: &[u8; 4] = b"RL\x00\x01";
const EXPIRE_PEERS_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// A ping asked for by the caller.
    Ping(RequestId),
    /// Checking a questionable node of a full bucket.
    Maintenance,
    /// A step of a lookup, in one family's DHT.
    Lookup(RequestId, Family),
    /// An `announce_peer` after a lookup.
    Announce(RequestId),
}

#[derive(Clone, Debug)]
struct Pending {
    to: SocketAddr,
    id: Option<NodeId>,
    sent_at: Instant,
    purpose: Purpose,
}

/// One family's part of a lookup (BEP 32: each DHT is searched on its own).
#[derive(Clone, Debug)]
struct Run {
    family: Family,
    lookup: Lookup,
    reported_peers: usize,
}

#[derive(Clone, Debug)]
struct LookupTask {
    target: NodeId,
    runs: Vec<Run>,
    kind: LookupKind,
    /// `announce_peer` replies still awaited, once every run's lookup is done.
    announcing: Option<usize>,
    announced: usize,
}

impl LookupTask {
    fn run_mut(&mut self, family: Family) -> Option<&mut Run> {
        self.runs.iter_mut().find(|r| r.family == family)
    }
}

/// The pure DHT node: a routing table and peer store per family, tokens, transactions and
/// lookups.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    config: NodeConfig,
    tables: PerFamily<RoutingTable>,
    tokens: Tokens,
    stores: PerFamily<PeerStore>,
    limiter: RateLimiter,
    ip_limiter: RateLimiter,
    pending: HashMap<Vec<u8>, Pending>,
    lookups: HashMap<RequestId, LookupTask>,
    next_transaction: u16,
    next_request: u64,
    last_expiry: Instant,
    stats: NodeStats,
}

impl Node {
    /// A node with `id` and empty tables (the same id in both DHTs, as BEP 32 advises).
    pub fn new(id: NodeId, config: NodeConfig, now: Instant, rng: &mut impl Rng) -> Self {
        let store = PeerStore::new(config.max_peers_per_hash, config.max_peers_total);
        Node {
            id,
            tables: PerFamily {
                v4: RoutingTable::new(id, now),
                v6: RoutingTable::new(id, now),
            },
            tokens: Tokens::new(now, rng),
            stores: PerFamily {
                v4: store.clone(),
                v6: store,
            },
            limiter: RateLimiter::new(config.rate_burst, config.rate_per_second, 65_536),
            ip_limiter: RateLimiter::new(config.ip_rate_burst, config.ip_rate_per_second, 65_536),
            pending: HashMap::new(),
            lookups: HashMap::new(),
            next_transaction: rng.random(),
            next_request: 0,
            last_expiry: now,
            stats: NodeStats::default(),
            config,
        }
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The IPv4 DHT's routing table (read-only view).
    pub fn table(&self) -> &RoutingTable {
        &self.tables.v4
    }

    /// `family`'s routing table (read-only view).
    pub fn table_of(&self, family: Family) -> &RoutingTable {
        self.tables.get(family)
    }

    /// Every entry of both routing tables, IPv4 first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.tables.iter().flat_map(RoutingTable::entries)
    }

    /// The DHTs the node is on.
    pub fn families(&self) -> Families {
        self.config.families
    }

    /// Whether both routing tables are empty.
    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(RoutingTable::is_empty)
    }

    /// Current counters.
    pub fn stats(&self) -> NodeStats {
        NodeStats {
            nodes: self.tables.iter().map(RoutingTable::len).sum(),
            nodes6: self.tables.v6.len(),
            buckets: self.tables.iter().map(RoutingTable::bucket_count).sum(),
            lookups_active: self.lookups.len(),
            peers_stored: self.stores.iter().map(PeerStore::len).sum(),
            pending_queries: self.pending.len(),
            ..self.stats
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn transaction_id(&mut self) -> Option<Vec<u8>> {
        for _ in 0..16 {
            self.next_transaction = self.next_transaction.wrapping_add(1);
            let tid = self.next_transaction.to_be_bytes().to_vec();
            if !self.pending.contains_key(&tid) {
                return Some(tid);
            }
        }
        None
    }

    /// Records and sends a query; `false` if too many are outstanding.
    fn send_query(
        &mut self,
        to: SocketAddr,
        id: Option<NodeId>,
        query: Query,
        purpose: Purpose,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING {
            return false;
        }
        // Replies come from the plain IPv4 address, never from its IPv4-mapped form.
        let to = canonical(to);
        let Some(tid) = self.transaction_id() else {
            return false;
        };
        let mut message = Message::query(tid.clone(), query);
        message.version = Some(VERSION.to_vec());
        message.read_only = self.config.read_only;
        out.push(Action::Send {
            to,
            packet: message.to_bytes(),
        });
        self.pending.insert(
            tid,
            Pending {
                to,
                id,
                sent_at: now,
                purpose,
            },
        );
        true
    }

    /// Handles one datagram from `from`.
    pub fn handle_packet(
        &mut self,
        from: SocketAddr,
        packet: &[u8],
        now: Instant,
        rng: &mut impl Rng,
        out: &mut Vec<Action>,
    ) {
        let from = canonical(from);
        let decoded = Message::from_bytes(packet);
        if let Ok(message) = &decoded
            && matches!(message.body, Body::Response(_) | Body::Error { .. })
            && self
                .pending
                .get(&message.transaction_id)
                .is_some_and(|p| p.to == from)
        {
            self.handle_reply(from, message, now, out);
            return;
        }
        if self.config.read_only
            || !self.limiter.allow(from, now)
            || !self.ip_limiter.allow(SocketAddr::new(from.ip(), 0), now)
        {
            self.stats.packets_dropped += 1;
            return;
        }
        match decoded {
            Ok(Message {
                transaction_id,
                read_only,
                body: Body::Query(query),
                ..
            }) => self.handle_query(from, transaction_id, read_only, query, now, rng, out),
            Err(KrpcError::InvalidQuery {
                transaction_id,
                source,
                ..
            }) => {
                let text = format!("invalid arguments: {source}");
                self.reply(
                    from,
                    Message::error(transaction_id, ERROR_PROTOCOL, text),
                    out,
                );
            }
            // Unmatched replies and packets that are not KRPC: nobody to answer.
            _ => self.stats.packets_dropped += 1,
        }
    }

    /// Puts a node in the table; pings questionable nodes of a full bucket.
    fn heard_from(
        &mut self,
        node: CompactNode,
        contact: Contact,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let table = self.tables.get_mut(Family::of(&node.addr));
        if let Insert::Cached { ping } = table.insert(node, contact, now) {
            for stale in ping.into_iter().take(2) {
                let already = self.pending.values().any(|p| p.to == stale.addr);
                if !already {
                    let query = Query::Ping { id: self.id };
                    self.send_query(
                        stale.addr,
                        Some(stale.id),
                        query,
                        Purpose::Maintenance,
                        now,
                        out,
                    );
                }
            }
        }
    }

    /// Time passes: queries time out, the token secret rotates, stale peers expire and idle
    /// buckets are refreshed with a lookup of a random id in them.
    pub fn tick(&mut self, now: Instant, rng: &mut impl Rng, out: &mut Vec<Action>) {
        let timeout = self.config.query_timeout;
        let expired: Vec<Vec<u8>> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent_at) >= timeout)
            .map(|(tid, _)| tid.clone())
            .collect();
        for tid in expired {
            if let Some(pending) = self.pending.remove(&tid) {
                self.query_failed(pending, QueryFailure::Timeout, now, out);
            }
        }
        self.tokens.rotate_if_due(now, rng);
        if now.saturating_duration_since(self.last_expiry) >= EXPIRE_PEERS_EVERY {
            for store in self.stores.iter_mut() {
                store.expire(now);
            }
            self.last_expiry = now;
        }
        for family in Family::ALL {
            let table = self.tables.get_mut(family);
            if !table.is_empty() {
                for target in table.refresh_targets(now, rng) {
                    self.lookup_in(target, LookupKind::FindNode, &[family], now, out);
                }
            }
        }
    }

    /// The earliest time [`Node::tick`] has a query to time out, if any is outstanding.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.sent_at + self.config.query_timeout)
            .min()
    }
}
