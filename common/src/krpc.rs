//! DHT messages (BEP 5): KRPC queries, responses and errors, compact node info.
//!
//! A KRPC message is one bencoded dictionary in one UDP datagram: `t` (transaction id),
//! `y` (`q` query, `r` response, `e` error), and then `q` + `a`, `r` or `e`. Also read and
//! written: `v` (client version), `ip` (BEP 42, the requester's address as the replier saw
//! it), `ro` (BEP 43, read-only node), `want` (BEP 32) and `nodes6` (BEP 32).
//!
//! Invariants of a decoded [`Message`]:
//! - the packet was at most [`MAX_PACKET_LEN`] bytes and the transaction id at most
//!   [`MAX_TRANSACTION_ID_LEN`];
//! - every id and info-hash is exactly 20 bytes; compact lists have no ragged tail;
//! - a response carries at most [`MAX_NODES`] entries in each of `nodes` and `nodes6` and at
//!   most [`MAX_VALUES`] peers in `values`.
//!
//! Tolerance: keys may come in any order and unknown keys are ignored (BEP 44, BEP 51 and
//! private extensions add their own). A query with an unknown method decodes as
//! [`Query::Other`] so the node can answer error 204; a known query with bad arguments fails
//! with [`KrpcError::InvalidQuery`], which keeps the transaction id for an error 203 reply.
//!
//! Responses carry no method name: [`Response`] is decoded generically and the caller
//! matches the transaction id to the query it sent.
//!
//! ```
//! use rill_common::krpc::{Body, Message, NodeId, Query};
//!
//! let ping = Message::query("aa", Query::Ping { id: NodeId::from_bytes(*b"abcdefghij0123456789") });
//! let bytes = ping.to_bytes();
//! assert_eq!(bytes, b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe");
//! assert!(matches!(Message::from_bytes(&bytes)?.body, Body::Query(Query::Ping { .. })));
//! # Ok::<(), rill_common::krpc::KrpcError>(())
//! ```
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

mod decode;
mod node;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use thiserror::Error;

use crate::InfoHash;
use crate::bencode::{self, Dict, Value};
use crate::compact::{self, CompactError};

pub use node::{
    CompactNode, Distance, ID_LEN, NODE_V4_LEN, NODE_V6_LEN, NodeId, NodeIdLengthError,
    decode_nodes_v4, decode_nodes_v6, encode_node, encode_nodes_v4, encode_nodes_v6,
};

/// Largest packet decoded: a UDP datagram's payload never exceeds 64 KiB, and real KRPC
/// packets stay under 1,500 bytes.
pub const MAX_PACKET_LEN: usize = 65_536;
/// Longest transaction id accepted; clients use 2 to 4 bytes (BEP 5 suggests 2).
pub const MAX_TRANSACTION_ID_LEN: usize = 16;
/// Most entries accepted in each of `nodes` and `nodes6` (clients send K = 8, a few 16).
pub const MAX_NODES: usize = 256;
/// Most peers accepted in `values` (libtorrent sends at most 100 so a reply fits in a packet).
pub const MAX_VALUES: usize = 512;

/// Error code 201: generic error.
pub const ERROR_GENERIC: i64 = 201;
/// Error code 202: server error.
pub const ERROR_SERVER: i64 = 202;
/// Error code 203: protocol error (malformed packet, invalid argument, bad token).
pub const ERROR_PROTOCOL: i64 = 203;
/// Error code 204: method unknown.
pub const ERROR_METHOD_UNKNOWN: i64 = 204;

/// One KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `t`: chosen by the querier, echoed in the reply; at most [`MAX_TRANSACTION_ID_LEN`].
    pub transaction_id: Vec<u8>,
    /// `v`: the sender's client and version (BEP 20 style, e.g. `RL01`), if given.
    pub version: Option<Vec<u8>>,
    /// `ip`: in replies, the querier's address as the replier saw it (BEP 42).
    pub ip: Option<SocketAddr>,
    /// `ro`: the sender is a read-only node and must not be added to routing tables (BEP 43).
    pub read_only: bool,
    /// What the message says.
    pub body: Body,
}

/// The three kinds of KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `y=q`.
    Query(Query),
    /// `y=r`.
    Response(Response),
    /// `y=e`: `e` is `[code, message]`.
    Error {
        /// One of the `ERROR_*` codes, or another.
        code: i64,
        /// Human-readable text (decoded lossily if it is not UTF-8).
        message: String,
    },
}

/// Which address families a querier wants nodes for (BEP 32 `want`: `n4`, `n6`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Want {
    /// `n4`: IPv4 nodes in `nodes`.
    pub v4: bool,
    /// `n6`: IPv6 nodes in `nodes6`.
    pub v6: bool,
}

impl Want {
    /// Whether `want` is absent (both false): the replier uses the family it was asked on.
    pub fn is_unspecified(&self) -> bool {
        !self.v4 && !self.v6
    }
}

/// A query (`y=q`): the method `q` and its arguments `a`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// `ping`.
    Ping {
        /// The querier's id.
        id: NodeId,
    },
    /// `find_node`: the K closest nodes to `target`.
    FindNode {
        /// The querier's id.
        id: NodeId,
        /// The id sought.
        target: NodeId,
        /// BEP 32 address families wanted.
        want: Want,
    },
    /// `get_peers`: peers of a torrent, or the closest nodes to its info-hash.
    GetPeers {
        /// The querier's id.
        id: NodeId,
        /// The torrent.
        info_hash: InfoHash,
        /// BEP 32 address families wanted.
        want: Want,
    },
    /// `announce_peer`: the querier downloads this torrent on `port`.
    AnnouncePeer {
        /// The querier's id.
        id: NodeId,
        /// The torrent.
        info_hash: InfoHash,
        /// The peer's TCP port (ignored when `implied_port`).
        port: u16,
        /// Use the UDP source port of the packet instead of `port`.
        implied_port: bool,
        /// The token from an earlier `get_peers` reply.
        token: Vec<u8>,
    },
    /// A method this codec does not know (BEP 44 `get`/`put`, BEP 51 `sample_infohashes`,
    /// ...): answer with [`ERROR_METHOD_UNKNOWN`].
    Other {
        /// The method name `q`.
        method: Vec<u8>,
        /// The querier's id from `a`, if it is a 20-byte string.
        id: Option<NodeId>,
    },
}

impl Query {
    /// The method name as sent in `q`.
    pub fn method(&self) -> &[u8] {
        match self {
            Query::Ping { .. } => b"ping",
            Query::FindNode { .. } => b"find_node",
            Query::GetPeers { .. } => b"get_peers",
            Query::AnnouncePeer { .. } => b"announce_peer",
            Query::Other { method, .. } => method,
        }
    }

    /// The querier's id (absent only in an unknown query without a valid one).
    pub fn id(&self) -> Option<NodeId> {
        match self {
            Query::Ping { id }
            | Query::FindNode { id, .. }
            | Query::GetPeers { id, .. }
            | Query::AnnouncePeer { id, .. } => Some(*id),
            Query::Other { id, .. } => *id,
        }
    }
}

/// A response (`y=r`): the `r` dictionary, read the same way whatever the query was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The replier's id.
    pub id: NodeId,
    /// `nodes`: IPv4 nodes, 26 bytes each on the wire. Decoded ones are all IPv4.
    pub nodes: Vec<CompactNode>,
    /// `nodes6`: IPv6 nodes, 38 bytes each on the wire (BEP 32). Decoded ones are all IPv6.
    /// Encoding writes every node of either list to the list of its address family.
    pub nodes6: Vec<CompactNode>,
    /// `values`: peers of the torrent, each a 6-byte (IPv4) or 18-byte (IPv6) string.
    pub values: Vec<SocketAddr>,
    /// `token`: needed to `announce_peer` to this node later (`get_peers` replies).
    pub token: Option<Vec<u8>>,
}

/// Why a packet is not a valid KRPC message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum KrpcError {
    /// More than [`MAX_PACKET_LEN`] bytes.
    #[error("KRPC packet of {0} bytes is larger than {MAX_PACKET_LEN}")]
    TooLarge(usize),
    /// Not bencode at all.
    #[error("KRPC packet is not valid bencode: {0}")]
    Bencode(#[from] bencode::DecodeError),
    /// A required key is absent.
    #[error("KRPC message has no `{0}` key")]
    MissingKey(&'static str),
    /// A key holds the wrong kind of value.
    #[error("KRPC key `{key}` is a {found}, expected {expected}")]
    WrongType {
        /// The key (`message` for the packet itself).
        key: &'static str,
        /// What it should be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// `t` is longer than [`MAX_TRANSACTION_ID_LEN`].
    #[error("transaction id of {0} bytes is longer than {MAX_TRANSACTION_ID_LEN}")]
    TransactionIdTooLong(usize),
    /// `y` is not `q`, `r` or `e`.
    #[error("unknown KRPC message type y={0:?}")]
    UnknownType(String),
    /// An id, target or info-hash that is not 20 bytes.
    #[error("`{key}` is {len} bytes, not 20")]
    BadId {
        /// The key.
        key: &'static str,
        /// Its length.
        len: usize,
    },
    /// A compact list (`nodes`, `nodes6`) whose length is not a multiple of its entry size.
    #[error("`{key}`: {source}")]
    Ragged {
        /// The key.
        key: &'static str,
        /// The lengths.
        source: CompactError,
    },
    /// A `values` entry that is neither 6 nor 18 bytes.
    #[error("a `values` entry is {0} bytes, neither 6 nor 18")]
    BadPeer(usize),
    /// `ip` is neither 6 nor 18 bytes (BEP 42).
    #[error("`ip` is {0} bytes, neither 6 nor 18")]
    BadIp(usize),
    /// More entries than the cap.
    #[error("`{key}` has {count} entries, more than {max}")]
    TooMany {
        /// The key.
        key: &'static str,
        /// How many were sent.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// `port` is not in 0..=65535.
    #[error("`port` {0} is not a TCP port")]
    BadPort(i64),
    /// `e` is not a list of an integer code and a string message.
    #[error("`e` is not [code, message]")]
    BadErrorList,
    /// A query of a known method whose arguments are invalid: answer with
    /// [`ERROR_PROTOCOL`] using `transaction_id`.
    #[error("invalid `{}` query: {source}", String::from_utf8_lossy(method))]
    InvalidQuery {
        /// The query's transaction id, for the error reply.
        transaction_id: Vec<u8>,
        /// The method name.
        method: Vec<u8>,
        /// What is wrong with the arguments.
        source: Box<KrpcError>,
    },
}

impl Message {
    /// A query with no version, `ip` or `ro`.
    pub fn query(transaction_id: impl Into<Vec<u8>>, query: Query) -> Self {
        Message::with_body(transaction_id.into(), Body::Query(query))
    }

    /// A response with no version, `ip` or `ro`.
    pub fn response(transaction_id: impl Into<Vec<u8>>, response: Response) -> Self {
        Message::with_body(transaction_id.into(), Body::Response(response))
    }

    /// An error reply with no version, `ip` or `ro`.
    pub fn error(
        transaction_id: impl Into<Vec<u8>>,
        code: i64,
        message: impl Into<String>,
    ) -> Self {
        Message::with_body(
            transaction_id.into(),
            Body::Error {
                code,
                message: message.into(),
            },
        )
    }

    fn with_body(transaction_id: Vec<u8>, body: Body) -> Self {
        Message {
            transaction_id,
            version: None,
            ip: None,
            read_only: false,
            body,
        }
    }

    /// Decodes one packet.
    pub fn from_bytes(packet: &[u8]) -> Result<Message, KrpcError> {
        decode::message(packet)
    }

    /// The canonical bencoding (keys sorted). Empty optional fields are left out.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut ip = Vec::new();
        if let Some(addr) = self.ip {
            compact::encode_peer(addr, &mut ip);
        }
        // Owned buffers that the borrowed `Value` tree below points into.
        let body = BodyBuffers::new(&self.body);
        let mut top = Dict::new().with(b"t", Value::Bytes(&self.transaction_id));
        if let Some(version) = &self.version {
            top.insert(b"v", Value::Bytes(version));
        }
        if self.ip.is_some() {
            top.insert(b"ip", Value::Bytes(&ip));
        }
        if self.read_only {
            top.insert(b"ro", Value::Int(1));
        }
        match &self.body {
            Body::Query(query) => {
                top.insert(b"y", Value::Bytes(b"q"));
                top.insert(b"q", Value::Bytes(query.method()));
                top.insert(b"a", Value::Dict(query_args(query, &body.want)));
            }
            Body::Response(response) => {
                top.insert(b"y", Value::Bytes(b"r"));
                top.insert(b"r", Value::Dict(response_dict(response, &body)));
            }
            Body::Error { code, message } => {
                top.insert(b"y", Value::Bytes(b"e"));
                let list = vec![Value::Int(*code), Value::Bytes(message.as_bytes())];
                top.insert(b"e", Value::List(list));
            }
        }
        Value::Dict(top).to_bytes()
    }
}

/// Bytes built while encoding that the `Value` tree borrows.
struct BodyBuffers {
    nodes: Vec<u8>,
    nodes6: Vec<u8>,
    values: Vec<Vec<u8>>,
    want: Vec<&'static [u8]>,
}

impl BodyBuffers {
    fn new(body: &Body) -> Self {
        let mut out = BodyBuffers {
            nodes: Vec::new(),
            nodes6: Vec::new(),
            values: Vec::new(),
            want: Vec::new(),
        };
        match body {
            Body::Query(Query::FindNode { want, .. } | Query::GetPeers { want, .. }) => {
                if want.v4 {
                    out.want.push(b"n4");
                }
                if want.v6 {
                    out.want.push(b"n6");
                }
            }
            Body::Response(response) => {
                // A node filed under the wrong family still goes out in a well-formed list.
                out.nodes = encode_nodes_v4(&response.nodes);
                out.nodes.extend(encode_nodes_v4(&response.nodes6));
                out.nodes6 = encode_nodes_v6(&response.nodes6);
                out.nodes6.extend(encode_nodes_v6(&response.nodes));
                out.values = response
                    .values
                    .iter()
                    .map(|addr| {
                        let mut peer = Vec::with_capacity(compact::V6_LEN);
                        compact::encode_peer(*addr, &mut peer);
                        peer
                    })
                    .collect();
            }
            _ => {}
        }
        out
    }
}

fn query_args<'a>(query: &'a Query, want: &'a [&'static [u8]]) -> Dict<'a> {
    let mut args = Dict::new();
    match query {
        Query::Ping { id } => args.insert(b"id", Value::Bytes(id.as_bytes())),
        Query::FindNode { id, target, .. } => {
            args.insert(b"id", Value::Bytes(id.as_bytes()));
            args.insert(b"target", Value::Bytes(target.as_bytes()));
        }
        Query::GetPeers { id, info_hash, .. } => {
            args.insert(b"id", Value::Bytes(id.as_bytes()));
            args.insert(b"info_hash", Value::Bytes(info_hash.as_bytes()));
        }
        Query::AnnouncePeer {
            id,
            info_hash,
            port,
            implied_port,
            token,
        } => {
            args.insert(b"id", Value::Bytes(id.as_bytes()));
            args.insert(b"info_hash", Value::Bytes(info_hash.as_bytes()));
            args.insert(b"port", Value::Int(i64::from(*port)));
            args.insert(b"token", Value::Bytes(token));
            if *implied_port {
                args.insert(b"implied_port", Value::Int(1));
            }
        }
        Query::Other { id, .. } => {
            if let Some(id) = id {
                args.insert(b"id", Value::Bytes(id.as_bytes()));
            }
        }
    }
    if !want.is_empty() {
        let list = want.iter().map(|w| Value::Bytes(w)).collect();
        args.insert(b"want", Value::List(list));
    }
    args
}

fn response_dict<'a>(response: &'a Response, buffers: &'a BodyBuffers) -> Dict<'a> {
    let mut r = Dict::new().with(b"id", Value::Bytes(response.id.as_bytes()));
    if !buffers.nodes.is_empty() {
        r.insert(b"nodes", Value::Bytes(&buffers.nodes));
    }
    if !buffers.nodes6.is_empty() {
        r.insert(b"nodes6", Value::Bytes(&buffers.nodes6));
    }
    if !buffers.values.is_empty() {
        let list = buffers.values.iter().map(|v| Value::Bytes(v)).collect();
        r.insert(b"values", Value::List(list));
    }
    if let Some(token) = &response.token {
        r.insert(b"token", Value::Bytes(token));
    }
    r
}
