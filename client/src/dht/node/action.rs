//! The node's inputs and outputs: settings, request handles, actions for the shell, counters.

use std::net::SocketAddr;
use std::time::Duration;

use rill_common::krpc::{CompactNode, NodeId};

use crate::dht::family::Families;

/// Settings of the pure node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// BEP 43: answer no query and ask others not to add us.
    pub read_only: bool,
    /// How long a query may go unanswered before it fails.
    pub query_timeout: Duration,
    /// Packets one address may send at once (replies to our queries are not counted).
    pub rate_burst: u32,
    /// Packets per second one address may send after its burst.
    pub rate_per_second: u32,
    /// Packets one IP address may send at once, all its ports together (a flood from many
    /// ports of one host).
    pub ip_rate_burst: u32,
    /// Packets per second one IP address may send after its burst.
    pub ip_rate_per_second: u32,
    /// Peers stored per info-hash (in each family's store).
    pub max_peers_per_hash: usize,
    /// Peers stored in all (in each family's store).
    pub max_peers_total: usize,
    /// The DHTs the node is on (BEP 32): the shell sets this from its sockets.
    pub families: Families,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            read_only: false,
            query_timeout: Duration::from_secs(2),
            rate_burst: 50,
            rate_per_second: 20,
            ip_rate_burst: 1000,
            ip_rate_per_second: 400,
            max_peers_per_hash: 500,
            max_peers_total: 50_000,
            families: Families::default(),
        }
    }
}

/// A caller's handle on one operation (a ping or a lookup) of the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Why a query got no useful answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryFailure {
    /// No answer within the timeout.
    #[error("no answer within the timeout")]
    Timeout,
    /// The node answered with a KRPC error.
    #[error("KRPC error {code}: {message}")]
    Error {
        /// The error code (201-204 or another).
        code: i64,
        /// Its text.
        message: String,
    },
    /// Too many queries outstanding to send another.
    #[error("too many queries outstanding")]
    Busy,
}

/// What the lookup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupKind {
    /// `find_node` toward a node id.
    FindNode,
    /// `get_peers` for an info-hash.
    GetPeers,
    /// `get_peers`, then `announce_peer` to the closest nodes that gave a token.
    Announce {
        /// Our TCP port (ignored when `implied_port`).
        port: u16,
        /// Ask nodes to use our UDP source port instead.
        implied_port: bool,
    },
}

/// Something the shell must do or learn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a datagram.
    Send {
        /// The destination.
        to: SocketAddr,
        /// The encoded KRPC message.
        packet: Vec<u8>,
    },
    /// A [`Node::ping`](super::Node::ping) finished.
    PingDone {
        /// Which ping.
        request: RequestId,
        /// The node's id, or why it did not answer.
        result: Result<NodeId, QueryFailure>,
    },
    /// A `get_peers` lookup learnt new peers (each reported once per lookup).
    PeersFound {
        /// Which lookup.
        request: RequestId,
        /// The new peers.
        peers: Vec<SocketAddr>,
    },
    /// A lookup finished (for an announce: after the `announce_peer` replies or timeouts).
    LookupDone {
        /// Which lookup.
        request: RequestId,
        /// Every peer found.
        peers: Vec<SocketAddr>,
        /// The closest nodes that answered, closest first in each family, IPv4 first.
        nodes: Vec<CompactNode>,
        /// `announce_peer` queries that were acknowledged.
        announced: usize,
    },
}

/// Counters for `-v` output and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Nodes in the routing tables (both families).
    pub nodes: usize,
    /// Of those, nodes in the IPv6 DHT's table (BEP 32).
    pub nodes6: usize,
    /// Buckets in the routing tables.
    pub buckets: usize,
    /// Lookups started since the node began.
    pub lookups_started: u64,
    /// Lookups running now.
    pub lookups_active: usize,
    /// Peers held in the peer store.
    pub peers_stored: usize,
    /// Queries of ours awaiting an answer.
    pub pending_queries: usize,
    /// Queries received and answered (errors included).
    pub queries_answered: u64,
    /// Packets dropped: over the rate limit, not KRPC, unmatched replies, or read-only.
    pub packets_dropped: u64,
}
