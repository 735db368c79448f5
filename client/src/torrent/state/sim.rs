//! A whole swarm of [`TorrentState`]s in memory, on a fake clock, deterministic.
//!
//! The network turns `Connect` into `Connected` on both ends, `Send` into the other
//! end's `Received` and `Disconnect` into `Disconnected` on both ends, in FIFO order. Each
//! node has an in-memory store that answers `Write`, `Verify` (real SHA-1 against the
//! piece hashes of random data) and `Read`. Messages take [`LATENCY`] and blocks queue on
//! the sender's uplink of [`UPLINK`] bytes/s, in order per connection; the fake clock jumps
//! to the next delivery or timer, so rates, rechokes and optimistic unchokes are real.
//! Seeds serve a real info dict, so magnet nodes ([`Role::Magnet`]) fetch it with a
//! [`MetadataFetch`] first, as a shell would. Scenarios are in `scenarios.rs`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rill_common::bitfield::Bitfield;
use rill_common::metainfo::Info;
use rill_common::pieces::PieceIndex;
use rill_common::wire::Message;
use rill_common::wire::handshake::Handshake;
use rill_common::{InfoHash, PeerId};
use sha1::{Digest, Sha1};

use super::harness::config;
use super::{Action, Config, Event, RESERVED, Reason, TorrentState};
use crate::metadata::{self as fetch, FetchConfig, MetadataFetch};
use crate::pex::OUR_UT_PEX;
use crate::torrent::PeerKey;

/// How a node behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Seed,
    Leecher,
    /// A seed that serves corrupt blocks.
    Liar,
    /// A leecher from a magnet link: it fetches the info dict first (BEP 9).
    Magnet,
}

struct Node {
    state: TorrentState,
    role: Role,
    addr: SocketAddr,
    peer_id: PeerId,
    store: Vec<u8>,
    next_key: u32,
    /// Our key → (other node, its key).
    links: HashMap<PeerKey, (usize, PeerKey)>,
    completed: bool,
    hash_failures: u32,
    /// A magnet node's fetch, until it has the info dict.
    fetch: Option<MetadataFetch>,
}

impl Node {
    fn deadline(&self) -> Instant {
        match &self.fetch {
            Some(fetch) => fetch.next_deadline(),
            None => self.state.next_deadline(),
        }
    }
}

/// A disconnect one node asked for: (by, of, reason).
type Closed = (usize, usize, Reason);

/// One-way delay of every message.
const LATENCY: Duration = Duration::from_millis(20);
/// Delay of a storage answer.
const DISK: Duration = Duration::from_millis(1);
/// Upload capacity of every node, bytes per second.
const UPLINK: u64 = 256 * 1024;

struct Swarm {
    nodes: Vec<Node>,
    info_hash: InfoHash,
    hashes: Vec<[u8; 20]>,
    piece_len: u32,
    now: Instant,
    /// Events by delivery time, then order of sending.
    queue: BTreeMap<(Instant, u64), (usize, Event)>,
    seq: u64,
    /// When each node's uplink is free again.
    uplink_free: Vec<Instant>,
    /// Last delivery time on each directed connection (node, key), to keep TCP's order.
    link_due: HashMap<(usize, PeerKey), Instant>,
    closed: Vec<Closed>,
    delivered: u64,
    /// Block bytes in flight on connections that closed before they arrived.
    lost: u64,
    /// PEX messages sent (BEP 11).
    pex_sent: u64,
    /// Connections dialled from one leecher to another.
    leecher_dials: u64,
}

impl Swarm {
    /// A swarm over `total` bytes of random data in `piece_len` pieces.
    fn new(roles: &[Role], total: usize, piece_len: u32, seed: u64) -> Self {
        Self::with(roles, total, piece_len, seed, |_, _| {})
    }

    /// Like [`Swarm::new`], with each node's config adjusted by `configure(index, config)`.
    fn with(
        roles: &[Role],
        total: usize,
        piece_len: u32,
        seed: u64,
        configure: impl Fn(usize, &mut Config),
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut data = vec![0u8; total];
        rng.fill_bytes(&mut data);
        let hashes: Vec<[u8; 20]> = data
            .chunks(piece_len as usize)
            .map(|c| Sha1::digest(c).into())
            .collect();
        let count = hashes.len() as u32;
        let now = Instant::now();
        let metadata = info_dict(total, piece_len, &hashes);
        let info_hash = InfoHash::of_info(&metadata);
        let nodes = roles
            .iter()
            .enumerate()
            .map(|(i, role)| {
                let peer_id = PeerId::from_bytes([i as u8 + 1; 20]);
                let full = !matches!(role, Role::Leecher | Role::Magnet);
                let have = if full {
                    Bitfield::full(count)
                } else {
                    Bitfield::new(count)
                };
                let mut cfg = config(peer_id);
                cfg.listen_port = Some(6881);
                cfg.info_hash = info_hash;
                cfg.metadata = Some(metadata.clone());
                configure(i, &mut cfg);
                let fetch = (*role == Role::Magnet).then(|| {
                    let fetch_config = FetchConfig {
                        info_hash,
                        peer_id,
                        client: cfg.client.clone(),
                        listen_port: cfg.listen_port,
                        max_peers: cfg.max_peers,
                    };
                    MetadataFetch::new(fetch_config, now)
                });
                let state =
                    TorrentState::new(cfg, total as u64, piece_len, have, now, seed + i as u64)
                        .unwrap();
                Node {
                    state,
                    role: *role,
                    addr: format!("10.0.0.{}:6881", i + 1).parse().unwrap(),
                    peer_id,
                    store: if full { data.clone() } else { vec![0; total] },
                    next_key: 0,
                    links: HashMap::new(),
                    completed: false,
                    hash_failures: 0,
                    fetch,
                }
            })
            .collect();
        Swarm {
            nodes,
            info_hash,
            hashes,
            piece_len,
            now,
            queue: BTreeMap::new(),
            seq: 0,
            uplink_free: vec![now; roles.len()],
            link_due: HashMap::new(),
            closed: Vec::new(),
            delivered: 0,
            lost: 0,
            pex_sent: 0,
            leecher_dials: 0,
        }
    }

    /// Starts every node, each knowing every other's address (as from a tracker).
    fn start(&mut self) {
        let addrs: Vec<SocketAddr> = self.nodes.iter().map(|n| n.addr).collect();
        for i in 0..self.nodes.len() {
            let others = addrs.iter().copied().filter(|a| *a != addrs[i]).collect();
            self.push(i, Event::PeersFound(others), Duration::ZERO);
            self.push(i, Event::Start, Duration::ZERO);
        }
    }

    /// Starts every node; leechers know only the seed (node 0), which knows nobody: they
    /// can learn each other only through PEX.
    fn start_via_seed(&mut self) {
        let seed = self.nodes[0].addr;
        for i in 0..self.nodes.len() {
            if i > 0 {
                self.push(i, Event::PeersFound(vec![seed]), Duration::ZERO);
            }
            self.push(i, Event::Start, Duration::ZERO);
        }
    }

    /// Runs until `done` holds or the fake clock passes `limit`; returns the time taken.
    fn run(&mut self, limit: Duration, done: impl Fn(&Swarm) -> bool) -> Duration {
        let start = self.now;
        while !done(self) {
            assert!(
                self.now - start < limit,
                "swarm stuck: {}\nclosed: {:?}",
                self.report(),
                self.closed
            );
            let next_timer = self.nodes.iter().map(Node::deadline).min();
            let next_event = self.queue.first_key_value().map(|((at, _), _)| *at);
            match (next_event, next_timer) {
                (Some(at), timer) if timer.is_none_or(|t| at <= t) => {
                    let Some(((at, _), (node, event))) = self.queue.pop_first() else {
                        unreachable!()
                    };
                    self.now = self.now.max(at);
                    self.deliver(node, event);
                }
                (_, Some(timer)) => {
                    self.now = self.now.max(timer);
                    for i in 0..self.nodes.len() {
                        if self.nodes[i].deadline() <= self.now {
                            self.deliver(i, Event::Tick);
                            let next = self.nodes[i].deadline();
                            assert!(next > self.now, "node {i}: deadline stuck at {next:?}");
                        }
                    }
                }
                (_, None) => unreachable!("no node"),
            }
        }
        self.now - start
    }

    fn push(&mut self, node: usize, event: Event, delay: Duration) {
        self.seq += 1;
        self.queue
            .insert((self.now + delay, self.seq), (node, event));
    }

    /// Sends a message on connection `key` of `node`: blocks take uplink time, and every
    /// message arrives after those sent before it on the same connection.
    fn transmit(&mut self, node: usize, key: PeerKey, event: (usize, Event), bytes: u64) {
        let mut due = self.now;
        if bytes > 0 {
            let start = self.uplink_free[node].max(self.now);
            let done = start + Duration::from_secs_f64(bytes as f64 / UPLINK as f64);
            self.uplink_free[node] = done;
            due = done;
        }
        due += LATENCY;
        let last = self.link_due.entry((node, key)).or_insert(due);
        due = due.max(*last);
        *last = due;
        self.seq += 1;
        self.queue.insert((due, self.seq), event);
    }

    fn report(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "\n  node {i} {:?}: {}/{} pieces, {} peers",
                    n.role,
                    n.state.have().count(),
                    self.hashes.len(),
                    n.links.len()
                )
            })
            .collect()
    }

    fn deliver(&mut self, node: usize, event: Event) {
        // Bytes still in flight when a connection closes never arrive.
        if let Event::Received(key, message) = &event
            && !self.nodes[node].links.contains_key(key)
        {
            if let Message::Piece { data, .. } = message {
                self.lost += data.len() as u64;
            }
            return;
        }
        self.delivered += 1;
        if self.nodes[node].fetch.is_some() {
            self.deliver_to_fetch(node, event);
            return;
        }
        let mut out = Vec::new();
        self.nodes[node].state.handle(event, self.now, &mut out);
        for action in out {
            self.apply(node, action);
        }
    }

    fn handshake(&self, node: usize) -> Handshake {
        Handshake::new(RESERVED, self.info_hash, self.nodes[node].peer_id)
    }

    fn apply(&mut self, node: usize, action: Action) {
        match action {
            Action::Connect(addr) => {
                let Some(target) = self.nodes.iter().position(|n| n.addr == addr) else {
                    self.push(node, Event::ConnectFailed(addr), LATENCY);
                    return;
                };
                if self.nodes[node].role != Role::Seed && self.nodes[target].role != Role::Seed {
                    self.leecher_dials += 1;
                }
                let ka = self.key(node);
                let kb = self.key(target);
                self.nodes[node].links.insert(ka, (target, kb));
                self.nodes[target].links.insert(kb, (node, ka));
                let from: SocketAddr = format!("10.0.0.{}:{}", node + 1, 40000 + ka.0)
                    .parse()
                    .unwrap();
                let (ha, hb) = (self.handshake(target), self.handshake(node));
                let connected = Event::Connected {
                    peer: ka,
                    addr,
                    handshake: ha,
                    outgoing: true,
                };
                self.transmit(target, kb, (node, connected), 0);
                let accepted = Event::Connected {
                    peer: kb,
                    addr: from,
                    handshake: hb,
                    outgoing: false,
                };
                self.transmit(node, ka, (target, accepted), 0);
            }
            Action::Send(key, message) => {
                if matches!(message, Message::Extended { id: OUR_UT_PEX, .. }) {
                    self.pex_sent += 1;
                }
                if let Some(&(other, theirs)) = self.nodes[node].links.get(&key) {
                    let bytes = match &message {
                        Message::Piece { data, .. } => data.len() as u64,
                        _ => 0,
                    };
                    let event = (other, Event::Received(theirs, message));
                    self.transmit(node, key, event, bytes);
                }
            }
            Action::Disconnect(key, reason) => {
                if let Some((other, theirs)) = self.nodes[node].links.remove(&key) {
                    self.nodes[other].links.remove(&theirs);
                    self.transmit(node, key, (other, Event::Disconnected(theirs)), 0);
                    self.closed.push((node, other, reason));
                }
                self.push(node, Event::Disconnected(key), Duration::ZERO);
            }
            Action::Write(block, data) => {
                let at = self.offset(block.piece) + block.begin as usize;
                self.nodes[node].store[at..at + data.len()].copy_from_slice(&data);
                self.push(node, Event::BlockWritten(block), DISK);
            }
            Action::Verify(piece) => {
                let at = self.offset(piece);
                let len = self.piece_size(piece);
                let digest: [u8; 20] = Sha1::digest(&self.nodes[node].store[at..at + len]).into();
                let ok = digest == self.hashes[piece.as_usize()];
                if !ok {
                    self.nodes[node].hash_failures += 1;
                }
                self.push(node, Event::PieceVerified(piece, ok), DISK);
            }
            Action::Read(key, block) => {
                let at = self.offset(block.piece) + block.begin as usize;
                let mut data = self.nodes[node].store[at..at + block.length as usize].to_vec();
                if self.nodes[node].role == Role::Liar {
                    data.iter_mut().for_each(|b| *b = !*b);
                }
                self.push(node, Event::BlockRead(key, block, Bytes::from(data)), DISK);
            }
            Action::Completed => self.nodes[node].completed = true,
            Action::Announce(_) => {}
            Action::Fatal(message) => panic!("node {node}: {message}"),
        }
    }

    /// An event for a magnet node still fetching the info dict.
    fn deliver_to_fetch(&mut self, node: usize, event: Event) {
        let event = match event {
            Event::Start => fetch::Event::Start,
            Event::PeersFound(addrs) => fetch::Event::PeersFound(addrs),
            Event::Connected {
                peer,
                addr,
                handshake,
                outgoing,
            } => fetch::Event::Connected {
                peer,
                addr,
                handshake,
                outgoing,
            },
            Event::ConnectFailed(addr) => fetch::Event::ConnectFailed(addr),
            Event::Received(key, message) => fetch::Event::Received(key, message),
            Event::Disconnected(key) => fetch::Event::Disconnected(key),
            Event::Tick => fetch::Event::Tick,
            Event::Stop => fetch::Event::Stop,
            _ => return,
        };
        let mut out = Vec::new();
        if let Some(fetch) = self.nodes[node].fetch.as_mut() {
            fetch.handle(event, self.now, &mut out);
        }
        for action in out {
            match action {
                fetch::Action::Connect(addr) => self.apply(node, Action::Connect(addr)),
                fetch::Action::Send(key, message) => self.apply(node, Action::Send(key, message)),
                fetch::Action::Disconnect(key, reason) => {
                    self.apply(node, Action::Disconnect(key, reason))
                }
                fetch::Action::Done(dict) => self.metadata_fetched(node, dict),
            }
        }
    }

    /// What a shell does when a magnet's dict arrives: parse it, close the fetch's
    /// connections, build the torrent from the dict and hand it the fetch's addresses.
    fn metadata_fetched(&mut self, node: usize, dict: Bytes) {
        assert_eq!(InfoHash::of_info(&dict), self.info_hash);
        let info = Info::from_bytes(&dict).expect("the verified dict parses");
        let Some(fetch) = self.nodes[node].fetch.take() else {
            return;
        };
        let addrs = fetch.known_addresses();
        assert!(!addrs.is_empty());
        let keys: Vec<PeerKey> = self.nodes[node].links.keys().copied().collect();
        for key in keys {
            self.apply(node, Action::Disconnect(key, Reason::Shutdown));
        }
        let mut cfg = config(self.nodes[node].peer_id);
        cfg.listen_port = Some(6881);
        cfg.info_hash = self.info_hash;
        cfg.metadata = Some(dict);
        let count = info.pieces.len() as u32;
        self.nodes[node].state = TorrentState::new(
            cfg,
            info.total_length(),
            info.piece_length,
            Bitfield::new(count),
            self.now,
            node as u64,
        )
        .unwrap();
        self.push(node, Event::PeersFound(addrs), Duration::ZERO);
        self.push(node, Event::Start, Duration::ZERO);
    }

    fn key(&mut self, node: usize) -> PeerKey {
        let n = &mut self.nodes[node];
        n.next_key += 1;
        PeerKey(n.next_key)
    }

    fn offset(&self, piece: PieceIndex) -> usize {
        piece.as_usize() * self.piece_len as usize
    }

    fn piece_size(&self, piece: PieceIndex) -> usize {
        let total = self.nodes[0].store.len();
        (total - self.offset(piece)).min(self.piece_len as usize)
    }

    fn honest_complete(&self) -> bool {
        self.nodes
            .iter()
            .filter(|n| matches!(n.role, Role::Leecher | Role::Magnet))
            .all(|n| n.completed && n.state.is_complete())
    }
}

/// A single-file info dict (BEP 3) for the swarm's data.
fn info_dict(total: usize, piece_len: u32, hashes: &[[u8; 20]]) -> Bytes {
    let pieces: Vec<u8> = hashes.iter().flatten().copied().collect();
    let mut dict = format!(
        "d6:lengthi{total}e4:name4:data12:piece lengthi{piece_len}e6:pieces{}:",
        pieces.len()
    )
    .into_bytes();
    dict.extend_from_slice(&pieces);
    dict.push(b'e');
    Bytes::from(dict)
}

mod scenarios;
