//! Test helpers: one [`TorrentState`] on a fake clock, driven by hand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BlockRef, PieceIndex};
use rill_common::wire::Message;
use rill_common::wire::handshake::{Handshake, Reserved};
use rill_common::{InfoHash, PeerId};

use super::{Action, Config, Event, Reason, TorrentState};
use crate::torrent::PeerKey;
use crate::torrent::choker::ChokerConfig;

/// The info hash of every test torrent.
pub fn info_hash() -> InfoHash {
    InfoHash::from_bytes([7; 20])
}

/// A peer id made of one repeated byte.
pub fn peer_id(byte: u8) -> PeerId {
    PeerId::from_bytes([byte; 20])
}

/// Our own peer id in tests.
pub const OURS: u8 = b'R';

/// A test config: 50 peers, default choker.
pub fn config(ours: PeerId) -> Config {
    Config {
        info_hash: info_hash(),
        peer_id: ours,
        client: "Rill test".into(),
        listen_port: Some(6881),
        max_peers: 50,
        choker: ChokerConfig::default(),
        sequential: false,
        piece_priorities: Vec::new(),
        private: false,
        metadata: None,
    }
}

/// A handshake from peer `id` with the fast and extension bits as given.
pub fn handshake(id: u8, fast: bool, extended: bool) -> Handshake {
    let reserved = Reserved::NONE
        .with_fast(fast)
        .with_extension_protocol(extended);
    Handshake::new(reserved, info_hash(), peer_id(id))
}

/// Parses a socket address.
pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// One state on a fake clock.
pub struct Harness {
    /// The state under test.
    pub state: TorrentState,
    /// The fake clock.
    pub now: Instant,
}

impl Harness {
    /// A torrent of `total` bytes in `piece_len` pieces, with the pieces in `have`.
    pub fn with(total: u64, piece_len: u32, have: impl Fn(u32) -> bool) -> Self {
        Self::with_config(config(peer_id(OURS)), total, piece_len, have)
    }

    /// Like [`Harness::with`], with a config.
    pub fn with_config(
        config: Config,
        total: u64,
        piece_len: u32,
        have: impl Fn(u32) -> bool,
    ) -> Self {
        let count = total.div_ceil(u64::from(piece_len)) as u32;
        let mut field = Bitfield::new(count);
        for i in (0..count).filter(|i| have(*i)) {
            field.set(PieceIndex(i), true);
        }
        let now = Instant::now();
        let state = TorrentState::new(config, total, piece_len, field, now, 1).expect("state");
        Harness { state, now }
    }

    /// A leecher with nothing: 4 pieces of 32 KiB (2 blocks each), the last 20000 bytes.
    pub fn leecher() -> Self {
        Self::with(3 * 32768 + 20000, 32768, |_| false)
    }

    /// A seed of the same torrent.
    pub fn seed() -> Self {
        Self::with(3 * 32768 + 20000, 32768, |_| true)
    }

    /// Feeds an event at the current time.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.state.handle(event, self.now, &mut out);
        out
    }

    /// An incoming connection from peer `id` (address 10.0.0.`id`) under key `key`.
    pub fn connect(&mut self, key: u32, id: u8, fast: bool, extended: bool) -> Vec<Action> {
        self.handle(Event::Connected {
            peer: PeerKey(key),
            addr: addr(&format!("10.0.0.{id}:40000")),
            handshake: handshake(id, fast, extended),
            outgoing: false,
        })
    }

    /// A message from peer `key`.
    pub fn recv(&mut self, key: u32, message: Message) -> Vec<Action> {
        self.handle(Event::Received(PeerKey(key), message))
    }

    /// Advances the clock by `d` and ticks.
    pub fn advance(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        self.handle(Event::Tick)
    }
}

/// The messages sent to `key`.
pub fn sent(actions: &[Action], key: u32) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(k, m) if *k == PeerKey(key) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// The requests sent to `key`.
pub fn requests(actions: &[Action], key: u32) -> Vec<BlockRef> {
    sent(actions, key)
        .into_iter()
        .filter_map(|m| match m {
            Message::Request(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// Why `key` was disconnected, if it was.
pub fn disconnected(actions: &[Action], key: u32) -> Option<Reason> {
    actions.iter().find_map(|a| match a {
        Action::Disconnect(k, r) if *k == PeerKey(key) => Some(r.clone()),
        _ => None,
    })
}

/// A block's data filled with one byte.
pub fn data(block: BlockRef, byte: u8) -> bytes::Bytes {
    bytes::Bytes::from(vec![byte; block.length as usize])
}

/// The `piece` message for a block.
pub fn piece(block: BlockRef, byte: u8) -> Message {
    Message::Piece {
        index: block.piece,
        begin: block.begin,
        data: data(block, byte),
    }
}
