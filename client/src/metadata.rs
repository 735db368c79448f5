//! Fetching a magnet link's info dict from peers with `ut_metadata` (BEP 9), as a pure
//! state machine driven like [`crate::torrent::state::TorrentState`]: the shell feeds each
//! [`Event`] to [`MetadataFetch::handle`] with the time, carries out the [`Action`]s in order,
//! and ticks at [`MetadataFetch::next_deadline`]. No tokio, clock or I/O here.
//!
//! Contract with the shell (the same as the torrent's): [`PeerKey`]s are unique among live
//! connections; [`Event::Connected`] once the handshake's info hash matched (with
//! [`crate::torrent::state::RESERVED`] sent); [`Event::Disconnected`] ends a key, also after
//! an [`Action::Disconnect`]. After [`Action::Done`] the fetch is over: it refuses new
//! connections and sends nothing more. The shell then closes its connections, parses the
//! bytes (`Info::from_bytes`), builds the torrent with them as `Config::metadata` and seeds
//! its address book with [`MetadataFetch::known_addresses`] (banned peers left out).
//!
//! How it works:
//! - Only peers whose extended handshake announces `ut_metadata` and a `metadata_size`
//!   (0 < size <= [`MAX_METADATA_SIZE`], capped by the decoder before any allocation) are
//!   kept; others are closed as not useful.
//! - Peers may disagree on the size: an attempt targets the size most peers announce and
//!   asks only those peers. With no peer of that size left it starts over with another.
//! - Pieces are requested from several peers at once, at most [`PER_PEER_REQUESTS`] each;
//!   a `reject` or a request unanswered for [`REQUEST_TIMEOUT`] is asked of another peer
//!   (the refusing peer is not asked that piece again for [`REFUSE_MEMORY`]); peers that
//!   rejected or stalled less often are asked first, so every peer gets its turn.
//! - Invariant: [`Action::Done`] carries bytes whose SHA-1 is the info hash (v1), and only
//!   those. On a mismatch, a sole sender is banned; with several senders nobody is blamed
//!   yet: each piece's digest and sender is remembered, and the fetch goes on parole, one
//!   peer at a time sending the whole dict. When a dict finally verifies, every remembered
//!   sender whose piece differs from it is banned: the liar, and only the liar, pays.
//! - Requests for our metadata are rejected (we have none yet), at most
//!   [`MAX_REJECTS_SENT`] per connection, then ignored.
//! - No PEX before the dict is known: it may turn out private (BEP 27).
//! - The dict is checked against a v1 info hash only (BEP 9 over a v2 `btmh` is not done).
//!
//! Seams: `connection.rs` (admitting, messages, time-outs, bans), `assembly.rs` (which
//! size, which piece of which peer, the hash check and blame).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rill_common::wire::Message;
use rill_common::wire::extension::{
    MAX_METADATA_SIZE, METADATA_PIECE_LEN, MetadataMessage, metadata_piece_len,
};
use rill_common::wire::handshake::Handshake;
use rill_common::{InfoHash, PeerId};

use crate::torrent::PeerKey;
use crate::torrent::state::Reason;
use crate::torrent::state::book::AddressBook;

/// The extended id we receive `ut_metadata` under (announced in our `m`).
pub const OUR_UT_METADATA: u8 = 2;
/// Metadata piece requests outstanding per peer at most.
pub const PER_PEER_REQUESTS: usize = 4;
/// A request unanswered this long is asked of another peer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// A peer that rejected or stalled on a piece is not asked it again for this long.
pub const REFUSE_MEMORY: Duration = Duration::from_secs(30);
/// Rejects from one peer after which it is closed as not useful.
pub const MAX_REJECTS: u32 = 16;
/// Pieces sent without a request tolerated from a peer before it is closed.
pub const MAX_UNREQUESTED: u32 = 8;
/// Rejects we send one peer for its requests before ignoring them.
pub const MAX_REJECTS_SENT: u32 = 64;
/// A peer with no usable extended handshake this long after connecting is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A peer that sent nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// We send a keep-alive after this long without sending.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(90);
pub use crate::torrent::state::book::MAX_HALF_OPEN;
/// Pieces of failed attempts remembered for blame.
const SUSPECT_MEMORY: usize = 4096;
/// How often the housekeeping runs.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);

/// What a fetch needs to know.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// The info hash from the magnet link (v1).
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// `v` in our extended handshake.
    pub client: String,
    /// Our TCP listen port, sent as `p`.
    pub listen_port: Option<u16>,
    /// Connections kept at most.
    pub max_peers: usize,
}

/// An input to the fetch.
#[derive(Clone, Debug)]
pub enum Event {
    /// Dialling may begin.
    Start,
    /// Addresses from trackers, the DHT or the magnet's `x.pe`.
    PeersFound(Vec<SocketAddr>),
    /// A connection finished its handshake.
    Connected {
        /// The key the shell gave it.
        peer: PeerKey,
        /// The remote address.
        addr: SocketAddr,
        /// The peer's handshake.
        handshake: Handshake,
        /// We dialled it.
        outgoing: bool,
    },
    /// An [`Action::Connect`] failed.
    ConnectFailed(SocketAddr),
    /// A message from a peer.
    Received(PeerKey, Message),
    /// A connection closed.
    Disconnected(PeerKey),
    /// Time passed.
    Tick,
    /// Give up: close every connection.
    Stop,
}

/// An output of the fetch, for the shell to carry out.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Dial this address.
    Connect(SocketAddr),
    /// Send a message to a peer.
    Send(PeerKey, Message),
    /// Close a connection.
    Disconnect(PeerKey, Reason),
    /// The info dict, its SHA-1 checked against the info hash.
    Done(Bytes),
}

/// Who sent a piece (kept after the peer leaves, for blame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sender {
    addr: SocketAddr,
    listen_addr: Option<SocketAddr>,
    peer_id: PeerId,
}

/// One connected peer.
#[derive(Clone, Debug)]
struct FetchPeer {
    key: PeerKey,
    sender: Sender,
    fast: bool,
    connected_at: Instant,
    last_received: Instant,
    last_sent: Instant,
    /// The id the peer receives `ut_metadata` under, and the size it announced.
    ut_metadata: Option<(u8, u32)>,
    /// Outstanding requests: piece → when asked.
    requests: BTreeMap<u32, Instant>,
    /// Pieces it rejected or stalled on, and when.
    refused: BTreeMap<u32, Instant>,
    rejects: u32,
    /// Requests it left unanswered past [`REQUEST_TIMEOUT`].
    stalls: u32,
    rejects_sent: u32,
    unrequested: u32,
}

impl FetchPeer {
    fn send(&mut self, message: Message, now: Instant, out: &mut Vec<Action>) {
        self.last_sent = now;
        out.push(Action::Send(self.key, message));
    }

    fn size(&self) -> Option<u32> {
        self.ut_metadata.map(|(_, size)| size)
    }

    /// How often it let us down: peers that did less often are asked first.
    fn failures(&self) -> u32 {
        self.rejects.saturating_add(self.stalls)
    }

    fn refuses(&self, piece: u32, now: Instant) -> bool {
        self.refused
            .get(&piece)
            .is_some_and(|at| now.saturating_duration_since(*at) < REFUSE_MEMORY)
    }
}

/// The info dict being assembled for one size.
#[derive(Clone, Debug)]
struct Attempt {
    size: u32,
    pieces: Vec<Option<(Bytes, Sender)>>,
    /// On parole, the one peer asked.
    solo: Option<PeerKey>,
}

/// A piece of a failed attempt: its index, the dict size, the digest and the sender.
type Suspect = (u32, u32, [u8; 20], Sender);

/// Fetches the info dict of a magnet link; see the module docs.
#[derive(Debug)]
pub struct MetadataFetch {
    config: FetchConfig,
    peers: BTreeMap<PeerKey, FetchPeer>,
    book: AddressBook,
    banned: HashSet<PeerId>,
    attempt: Option<Attempt>,
    suspects: Vec<Suspect>,
    parole: bool,
    started: bool,
    finished: bool,
    next_housekeeping: Instant,
}

impl MetadataFetch {
    /// A fetch for `config.info_hash`, nothing known yet.
    pub fn new(config: FetchConfig, now: Instant) -> Self {
        MetadataFetch {
            config,
            peers: BTreeMap::new(),
            book: AddressBook::default(),
            banned: HashSet::new(),
            attempt: None,
            suspects: Vec::new(),
            parole: false,
            started: false,
            finished: false,
            next_housekeeping: now,
        }
    }

    /// Feeds one event; the actions to carry out are appended to `out`.
    pub fn handle(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        if self.finished {
            match event {
                Event::Connected { peer, .. } => {
                    out.push(Action::Disconnect(peer, Reason::Shutdown))
                }
                Event::Disconnected(key) => {
                    self.peers.remove(&key);
                }
                Event::Tick => self.next_housekeeping = now + HOUSEKEEPING_INTERVAL,
                _ => {}
            }
            return;
        }
        match event {
            Event::Start => {
                self.started = true;
                self.dial(now, out);
            }
            Event::PeersFound(addrs) => {
                self.book.add(addrs, now);
                self.dial(now, out);
            }
            Event::Connected {
                peer,
                addr,
                handshake,
                outgoing,
            } => self.connected(peer, addr, &handshake, outgoing, now, out),
            Event::ConnectFailed(addr) => {
                self.book.dial_failed(addr, now);
                self.dial(now, out);
            }
            Event::Received(key, message) => {
                if let Err(reason) = self.received(key, message, now, out) {
                    self.drop_peer(key, reason, now, out);
                }
            }
            Event::Disconnected(key) => {
                self.remove_peer(key, now);
                self.dial(now, out);
            }
            Event::Tick => {
                if now >= self.next_housekeeping {
                    self.next_housekeeping = now + HOUSEKEEPING_INTERVAL;
                    self.housekeeping(now, out);
                }
            }
            Event::Stop => {
                let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
                for key in keys {
                    self.drop_peer(key, Reason::Shutdown, now, out);
                }
                self.finished = true;
                return;
            }
        }
        self.request_more(now, out);
    }

    /// When the next [`Event::Tick`] is due.
    pub fn next_deadline(&self) -> Instant {
        self.next_housekeeping
    }

    /// Whether the fetch is over ([`Action::Done`] emitted, or stopped).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Metadata pieces received of the current attempt, and how many it needs.
    pub fn progress(&self) -> (u32, u32) {
        self.attempt.as_ref().map_or((0, 0), |a| {
            let got = a.pieces.iter().filter(|p| p.is_some()).count();
            (got as u32, a.pieces.len() as u32)
        })
    }

    /// Addresses worth giving the torrent once the dict is here: connected peers' listen
    /// addresses first, then the rest of the address book; banned peers never.
    pub fn known_addresses(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self
            .peers
            .values()
            .filter_map(|p| p.sender.listen_addr)
            .collect();
        for addr in self.book.addresses() {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        addrs.retain(|a| !self.book.is_banned(*a));
        addrs
    }
}

/// The answer to a `ut_metadata` request for `piece` when we hold `metadata` (the raw info
/// dict), as a torrent serves it: the piece's data, or a reject when we lack the dict,
/// the piece is out of range or the dict is too large to announce.
pub fn serve(metadata: Option<&Bytes>, piece: u32) -> MetadataMessage {
    let Some(dict) = metadata else {
        return MetadataMessage::Reject { piece };
    };
    let Some(size) = u32::try_from(dict.len())
        .ok()
        .filter(|s| *s <= MAX_METADATA_SIZE)
    else {
        return MetadataMessage::Reject { piece };
    };
    let Some(len) = metadata_piece_len(size, piece) else {
        return MetadataMessage::Reject { piece };
    };
    let begin = piece as usize * METADATA_PIECE_LEN as usize;
    MetadataMessage::Data {
        piece,
        total_size: size,
        data: dict.slice(begin..begin + len as usize),
    }
}

/// `metadata_size` for our extended handshake: the dict's size if we have it and it fits.
pub fn announced_size(metadata: Option<&Bytes>) -> Option<u32> {
    metadata
        .and_then(|m| u32::try_from(m.len()).ok())
        .filter(|s| *s > 0 && *s <= MAX_METADATA_SIZE)
}

mod assembly;
mod connection;

#[cfg(test)]
mod tests;
