//! Tests of the pure node, by area: queries answered ([`answer`]), hostile and read-only
//! traffic ([`limits`]), our own queries and timers ([`queries`]), whole networks of nodes
//! stepped in memory ([`network`]) and the IPv6 DHT beside the IPv4 one ([`ipv6`], BEP 32).
//! The builders here are shared by all of them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::InfoHash;
use rill_common::krpc::{Body, Message, NodeId, Query, Response, Want};

use super::{Action, Node, NodeConfig};

mod answer;
mod ipv6;
mod limits;
mod network;
mod queries;

/// `127.0.0.1:port`.
fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `[::1]:port`.
fn addr6(port: u16) -> SocketAddr {
    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))
}

/// An id of twenty `byte`s.
fn id(byte: u8) -> NodeId {
    NodeId::from_bytes([byte; 20])
}

/// An info-hash of twenty `byte`s.
fn hash(byte: u8) -> InfoHash {
    InfoHash::from_bytes([byte; 20])
}

/// A `ping` from a node with id [`id`]`(byte)`.
fn ping(byte: u8) -> Query {
    Query::Ping { id: id(byte) }
}

/// A `get_peers` with no `want`.
fn get_peers(from: NodeId, info_hash: InfoHash) -> Query {
    Query::GetPeers {
        id: from,
        info_hash,
        want: Want::default(),
    }
}

/// An `announce_peer` on `port` (or the UDP port when `implied_port`).
fn announce(
    from: NodeId,
    info_hash: InfoHash,
    port: u16,
    implied_port: bool,
    token: Vec<u8>,
) -> Query {
    Query::AnnouncePeer {
        id: from,
        info_hash,
        port,
        implied_port,
        token,
    }
}

/// The datagrams among `out`, decoded.
fn sent(out: &[Action]) -> Vec<(SocketAddr, Message)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { to, packet } => Some((*to, Message::from_bytes(packet).unwrap())),
            _ => None,
        })
        .collect()
}

fn response(message: Message) -> Response {
    match message.body {
        Body::Response(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn error_code(message: &Message) -> i64 {
    match &message.body {
        Body::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// One node (id `0x11…`) with a seeded rng and a fixed start time.
struct Fixture {
    node: Node,
    rng: StdRng,
    now: Instant,
}

impl Fixture {
    fn new() -> Self {
        Fixture::with(id(0x11), NodeConfig::default(), 7)
    }

    fn with(own: NodeId, config: NodeConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let now = Instant::now();
        let node = Node::new(own, config, now, &mut rng);
        Fixture { node, rng, now }
    }

    /// Hands `packet` from `from` to the node `after` the start; returns what it did.
    fn feed_at(&mut self, after: Duration, from: SocketAddr, packet: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        self.node
            .handle_packet(from, packet, self.now + after, &mut self.rng, &mut out);
        out
    }

    /// Hands `packet` from `from` to the node at the start time.
    fn feed(&mut self, from: SocketAddr, packet: &[u8]) -> Vec<Action> {
        self.feed_at(Duration::ZERO, from, packet)
    }

    /// Sends `query` (transaction `tx`) from `from` `after` the start; returns the one reply.
    fn ask_at(&mut self, after: Duration, from: SocketAddr, query: Query) -> Message {
        let out = self.feed_at(after, from, &Message::query("tx", query).to_bytes());
        let replies: Vec<Message> = sent(&out)
            .into_iter()
            .filter(|(to, _)| *to == from)
            .map(|(_, m)| m)
            .collect();
        assert_eq!(replies.len(), 1, "{out:?}");
        let reply = replies.into_iter().next().unwrap();
        assert_eq!(reply.transaction_id, b"tx");
        reply
    }

    /// Sends `query` from `from` at the start time; returns the one reply.
    fn ask(&mut self, from: SocketAddr, query: Query) -> Message {
        self.ask_at(Duration::ZERO, from, query)
    }

    /// The `announce_peer` token the node gives `them` at `from` for `info_hash`.
    fn token(&mut self, from: SocketAddr, them: NodeId, info_hash: InfoHash) -> Vec<u8> {
        let reply = response(self.ask(from, get_peers(them, info_hash)));
        reply.token.expect("get_peers gives a token")
    }

    /// Runs the node's timers `after` the start; returns what it did.
    fn tick(&mut self, after: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        self.node.tick(self.now + after, &mut self.rng, &mut out);
        out
    }
}
