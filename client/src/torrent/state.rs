//! One torrent's protocol logic as a pure state machine: events in, actions out.
//!
//! The shell (`torrent/task.rs`) owns a [`TorrentState`], reads the clock, feeds every
//! [`Event`] to [`TorrentState::handle`] and carries out the [`Action`]s it returns, in order.
//! Nothing here awaits, reads the clock, touches a socket or a file; randomness comes from
//! an RNG seeded in [`TorrentState::new`], so a run is reproducible.
//!
//! Contract with the shell:
//! - Handshakes carry [`RESERVED`] (BEP 6 fast, BEP 10 extensions): the state assumes both.
//! - The shell assigns each connection a [`PeerKey`] unique among live connections and reports
//!   it with [`Event::Connected`] once the handshake's info hash matched; every later event of
//!   that connection carries the same key, and [`Event::Disconnected`] ends it (also after an
//!   [`Action::Disconnect`]: the state forgets the peer when it asks for the disconnect and
//!   ignores the key's events until then).
//! - [`Action::Write`]s are answered with [`Event::BlockWritten`] (or [`Event::StorageFailed`]);
//!   the state emits [`Action::Verify`] for a piece only after all its writes came back.
//! - [`Action::Read`] is answered with [`Event::BlockRead`]; the state sends the block only if
//!   the request still stands (not cancelled, peer still unchoked and connected).
//! - [`Event::Tick`] is due at [`TorrentState::next_deadline`] (at least once a second is fine).
//! - `Config::metadata` holds the raw bytes of the info dict (`Metainfo::raw_info`, or what
//!   a magnet's [`crate::metadata::MetadataFetch`] produced), served to peers with
//!   `ut_metadata` (BEP 9).
//! - Nothing is dialled before [`Event::Start`]; a torrent complete at start emits
//!   [`Action::Completed`] on `Start` (and never `Announce(Completed)`).
//!
//! The work is split by seam: `connection.rs` (dialling, admitting, first messages, bans,
//! stop), `book.rs` (known addresses, backoff), `messages.rs` (validating each message),
//! `download.rs` (pipelines, blocks, verification, blame), `upload.rs` (serving requests,
//! choking), `timers.rs` (tick), `fast.rs` (BEP 6 allowed fast set), `extensions.rs`
//! (serving `ut_metadata`, BEP 9; peer exchange, BEP 11). Tests: `tests.rs`
//! (one behaviour each), `props.rs` (random events keep the invariants), `sim.rs` (a whole
//! swarm in memory).
//!
//! Invariants: a request is only sent for a wanted piece we lack that the peer has, while it
//! unchokes us or the piece is in its allowed fast set; at most `slots + 1` peers are
//! unchoked; `Stats::left` and `Stats::verified` always match the have-bitfield; a
//! malformed or out-of-range message closes the connection (never a panic).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BlockRef, PieceIndex};
use rill_common::tracker::AnnounceEvent;
use rill_common::wire::Message;
use rill_common::wire::handshake::{Handshake, Reserved};
use rill_common::{InfoHash, PeerId};

use super::PeerKey;
use super::choker::{Choker, ChokerConfig};
use super::peer::Peer;
use super::picker::Picker;
use super::rate::{Rate, RequestQueue};
use book::AddressBook;

/// What a torrent needs to know beyond its pieces.
#[derive(Clone, Debug)]
pub struct Config {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// `v` in our extended handshake, e.g. "Rill 0.1.0".
    pub client: String,
    /// Our TCP listen port, sent as `p` in the extended handshake.
    pub listen_port: Option<u16>,
    /// Connections this torrent keeps at most (incoming and outgoing together).
    pub max_peers: usize,
    /// Upload slots and choker timings.
    pub choker: ChokerConfig,
    /// Download pieces in order instead of rarest first.
    pub sequential: bool,
    /// Priority of each piece (0 = do not download); empty means every piece at 1.
    pub piece_priorities: Vec<u8>,
    /// A private torrent (BEP 27): peers only from trackers, no PEX.
    pub private: bool,
    /// The raw info dict, served to peers with `ut_metadata` (BEP 9); `None` rejects requests.
    pub metadata: Option<Bytes>,
}

/// Why we close a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The peer broke the protocol (bad message, request out of range, unrequested block...).
    Protocol(String),
    /// Nothing received for too long.
    Timeout,
    /// The peer sent data that failed its hash too often.
    Banned,
    /// Already connected to this peer (same peer id or address).
    Duplicate,
    /// Our own peer id: we connected to ourselves.
    Ourselves,
    /// Over the connection limit.
    TooManyPeers,
    /// Neither side wants anything from the other (both seeds).
    NotUseful,
    /// The torrent is stopping.
    Shutdown,
}

/// An input to the state machine.
#[derive(Clone, Debug)]
pub enum Event {
    /// The torrent starts: connect to known peers.
    Start,
    /// Addresses learnt from trackers, the DHT, PEX or the user.
    PeersFound(Vec<SocketAddr>),
    /// A connection finished its handshake for this torrent.
    Connected {
        /// The key the shell gave it.
        peer: PeerKey,
        /// The remote address.
        addr: SocketAddr,
        /// The peer's handshake (reserved bits, peer id).
        handshake: Handshake,
        /// We dialled it (after an [`Action::Connect`]).
        outgoing: bool,
    },
    /// An [`Action::Connect`] failed (refused, timed out, bad handshake).
    ConnectFailed(SocketAddr),
    /// A message arrived from a peer.
    Received(PeerKey, Message),
    /// A connection closed, for whatever reason.
    Disconnected(PeerKey),
    /// A block from an [`Action::Write`] is on disk.
    BlockWritten(BlockRef),
    /// The result of an [`Action::Verify`]: whether the piece matched its hash.
    PieceVerified(PieceIndex, bool),
    /// The data for an [`Action::Read`].
    BlockRead(PeerKey, BlockRef, Bytes),
    /// A read or write failed (disk full, permission denied): the torrent stops.
    StorageFailed(String),
    /// Time passed: timers (rechoke, keep-alives, timeouts, reconnects) are due.
    Tick,
    /// The torrent stops: announce `stopped`, close connections.
    Stop,
}

/// An output of the state machine, for the shell to carry out.
#[derive(Clone, Debug)]
pub enum Action {
    /// Dial this address.
    Connect(SocketAddr),
    /// Send a message to a peer.
    Send(PeerKey, Message),
    /// Close a connection.
    Disconnect(PeerKey, Reason),
    /// Write a received block to disk.
    Write(BlockRef, Bytes),
    /// Hash a piece whose blocks are all written.
    Verify(PieceIndex),
    /// Read a block a peer requested.
    Read(PeerKey, BlockRef),
    /// Tell the trackers (`started`, `completed`, `stopped`).
    Announce(AnnounceEvent),
    /// Every wanted piece is verified.
    Completed,
    /// The torrent cannot go on (storage failed); the message is for the user.
    Fatal(String),
}

/// Counters for the display and for announces.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Payload bytes received (verified or not).
    pub downloaded: u64,
    /// Payload bytes sent.
    pub uploaded: u64,
    /// Bytes of wanted pieces still missing.
    pub left: u64,
    /// Bytes of verified pieces.
    pub verified: u64,
    /// Download rate, bytes per second.
    pub download_rate: f64,
    /// Upload rate, bytes per second.
    pub upload_rate: f64,
    /// Connected peers.
    pub peers: usize,
    /// Connected peers that have every piece.
    pub seeds: usize,
}

/// One connected peer, for the `-v` display.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// The shell's key.
    pub key: PeerKey,
    /// The remote address.
    pub addr: SocketAddr,
    /// BEP 10 `v`, if the peer sent it.
    pub client: Option<String>,
    /// We dialled it.
    pub outgoing: bool,
    /// Pieces the peer has.
    pub pieces: u32,
    /// The rate it sends to us, bytes per second.
    pub download_rate: f64,
    /// The rate we send to it, bytes per second.
    pub upload_rate: f64,
    /// We choke it.
    pub am_choking: bool,
    /// We are interested in it.
    pub am_interested: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// It is interested in us.
    pub peer_interested: bool,
    /// Our requests it has not answered yet.
    pub requests: usize,
}

/// The reserved handshake bits Rill sends: BEP 6 fast and BEP 10 extension protocol.
pub const RESERVED: Reserved = Reserved::NONE.with_fast(true).with_extension_protocol(true);

/// Why a torrent's state cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Piece geometry or priorities do not fit together.
    #[error("bad torrent geometry: {0}")]
    Geometry(String),
}

/// Who a peer is, kept after it leaves so a failed piece can still be blamed on it.
#[derive(Clone, Copy, Debug)]
struct Identity {
    addr: SocketAddr,
    listen_addr: Option<SocketAddr>,
    peer_id: PeerId,
}

/// What strikes and bans are counted against: the IP, except on loopback (several local
/// peers share it), where the peer id is all we have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum BanKey {
    Ip(IpAddr),
    Id(PeerId),
}

impl Identity {
    fn ban_key(&self) -> BanKey {
        ban_key(self.addr, self.peer_id)
    }
}

fn ban_key(addr: SocketAddr, peer_id: PeerId) -> BanKey {
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        BanKey::Id(peer_id)
    } else {
        BanKey::Ip(addr.ip())
    }
}

/// A torrent's protocol state; see the module docs for the contract with the shell.
///
/// Peers are tracked under an internal id that is never reused (the shell may reuse a
/// [`PeerKey`] after a disconnect), so the picker's record of who sent which block blames
/// the right peer even after it left.
#[derive(Debug)]
pub struct TorrentState {
    config: Config,
    total_len: u64,
    picker: Picker,
    choker: Choker,
    queue: RequestQueue,
    rng: StdRng,
    priorities: Vec<u8>,
    /// Internal id → peer.
    peers: BTreeMap<PeerKey, Peer>,
    /// The shell's key → internal id.
    keys: HashMap<PeerKey, PeerKey>,
    next_id: u32,
    /// Peers that left, newest last, for blame.
    gone: VecDeque<(PeerKey, Identity)>,
    book: AddressBook,
    banned: HashSet<BanKey>,
    /// Pieces that failed their hash with this peer as the only sender.
    strikes: HashMap<BanKey, u32>,
    /// Writes not yet come back, per piece.
    writes: HashMap<PieceIndex, u32>,
    verifying: HashSet<PieceIndex>,
    /// Wanted pieces not verified.
    missing: u32,
    left: u64,
    verified: u64,
    downloaded: u64,
    uploaded: u64,
    down_rate: Rate,
    up_rate: Rate,
    complete_at_start: bool,
    completed: bool,
    /// [`Event::Start`] came: dialling may begin.
    started: bool,
    stopped: bool,
    failed: bool,
    next_housekeeping: Instant,
    /// Rechoke at the end of this event (a slot opened or an interested peer waits).
    rechoke_soon: bool,
    /// Blocks were freed: fill every peer's pipeline at the end of this event.
    refill: bool,
}

impl TorrentState {
    /// A torrent of `total_len` bytes in pieces of `piece_len`, of which `have` are verified;
    /// `seed` seeds its random choices (piece order, optimistic unchoke).
    pub fn new(
        config: Config,
        total_len: u64,
        piece_len: u32,
        have: Bitfield,
        now: Instant,
        seed: u64,
    ) -> Result<Self, StateError> {
        let geometry = |e: &dyn std::fmt::Display| StateError::Geometry(e.to_string());
        let mut picker = Picker::new(total_len, piece_len).map_err(|e| geometry(&e))?;
        let count = picker.piece_count();
        if have.piece_count() != count {
            return Err(StateError::Geometry(format!(
                "have-bitfield of {} pieces for {count} pieces",
                have.piece_count()
            )));
        }
        let priorities = if config.piece_priorities.is_empty() {
            vec![1; count as usize]
        } else {
            config.piece_priorities.clone()
        };
        picker
            .set_priorities(priorities.clone())
            .map_err(|e| geometry(&e))?;
        picker.set_sequential(config.sequential);
        let (mut missing, mut left, mut verified) = (0, 0, 0);
        for index in 0..count {
            let piece = PieceIndex(index);
            let len = u64::from(picker.piece_len(piece));
            if have.get(piece) {
                picker.piece_verified(piece, true);
                verified += len;
            } else if priorities[index as usize] > 0 {
                missing += 1;
                left += len;
            }
        }
        let mut choker = Choker::new(config.choker, now);
        choker.set_seeding(missing == 0);
        Ok(TorrentState {
            config,
            total_len,
            picker,
            choker,
            queue: RequestQueue::default(),
            rng: StdRng::seed_from_u64(seed),
            priorities,
            peers: BTreeMap::new(),
            keys: HashMap::new(),
            next_id: 0,
            gone: VecDeque::new(),
            book: AddressBook::default(),
            banned: HashSet::new(),
            strikes: HashMap::new(),
            writes: HashMap::new(),
            verifying: HashSet::new(),
            missing,
            left,
            verified,
            downloaded: 0,
            uploaded: 0,
            down_rate: Rate::default(),
            up_rate: Rate::default(),
            complete_at_start: missing == 0,
            completed: missing == 0,
            started: false,
            stopped: false,
            failed: false,
            next_housekeeping: now,
            rechoke_soon: false,
            refill: false,
        })
    }

    /// Feeds one event; the actions to carry out are appended to `out`.
    pub fn handle(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        if self.stopped
            && !matches!(
                event,
                Event::Disconnected(_) | Event::BlockWritten(_) | Event::PieceVerified(..)
            )
        {
            match event {
                Event::Connected { peer, .. } => {
                    out.push(Action::Disconnect(peer, Reason::Shutdown));
                }
                // Keep the deadline ahead of the clock, so a shell never spins.
                Event::Tick => self.next_housekeeping = now + timers::HOUSEKEEPING_INTERVAL,
                _ => {}
            }
            return;
        }
        match event {
            Event::Start => self.start(now, out),
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
                if let Some(&id) = self.keys.get(&key)
                    && let Err(why) = self.received(id, message, now, out)
                {
                    self.drop_peer(id, Reason::Protocol(why), now, out);
                }
            }
            Event::Disconnected(key) => {
                if let Some(id) = self.keys.remove(&key) {
                    self.remove_peer(id, true, now);
                    self.dial(now, out);
                }
            }
            Event::BlockWritten(block) => self.block_written(block, out),
            Event::PieceVerified(piece, ok) => self.piece_verified(piece, ok, now, out),
            Event::BlockRead(key, block, data) => {
                if let Some(&id) = self.keys.get(&key) {
                    self.block_read(id, block, data, now, out);
                }
            }
            Event::StorageFailed(message) => self.storage_failed(message, now, out),
            Event::Tick => self.tick(now, out),
            Event::Stop => self.stop(now, out),
        }
        self.finish_event(now, out);
    }

    /// When the next [`Event::Tick`] is due.
    pub fn next_deadline(&self) -> Instant {
        if self.stopped {
            return self.next_housekeeping;
        }
        self.next_housekeeping.min(self.choker.next_rechoke())
    }

    /// The verified pieces.
    pub fn have(&self) -> &Bitfield {
        self.picker.have()
    }

    /// Counters for the display and announces.
    pub fn stats(&self, now: Instant) -> Stats {
        Stats {
            downloaded: self.downloaded,
            uploaded: self.uploaded,
            left: self.left,
            verified: self.verified,
            download_rate: self.down_rate.get(now),
            upload_rate: self.up_rate.get(now),
            peers: self.peers.len(),
            seeds: self.peers.values().filter(|p| p.is_seed()).count(),
        }
    }

    /// Whether every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        self.missing == 0
    }

    /// The connected peers, for the `-v` display, by key.
    pub fn peers(&self, now: Instant) -> Vec<PeerInfo> {
        let mut infos: Vec<PeerInfo> = self
            .peers
            .iter()
            .map(|(id, p)| PeerInfo {
                key: p.key,
                addr: p.addr,
                client: p.client.clone(),
                outgoing: p.outgoing,
                pieces: p.has.count(),
                download_rate: self.choker.download_rate(*id, now),
                upload_rate: self.choker.upload_rate(*id, now),
                am_choking: p.am_choking,
                am_interested: p.am_interested,
                peer_choking: p.peer_choking,
                peer_interested: p.peer_interested,
                requests: p.requests_out.len(),
            })
            .collect();
        infos.sort_by_key(|i| i.key);
        infos
    }

    /// The total length of the torrent in bytes.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// The work left for the end of every event: early rechoke, refilled pipelines.
    fn finish_event(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.stopped {
            return;
        }
        if self.rechoke_soon {
            self.rechoke_soon = false;
            self.rechoke(now, out);
        }
        if self.refill {
            self.refill = false;
            let ids: Vec<PeerKey> = self.peers.keys().copied().collect();
            for id in ids {
                self.fill_requests(id, now, out);
            }
        }
    }
}

pub(crate) mod book;
mod connection;
mod download;
mod extensions;
mod fast;
mod messages;
mod timers;
mod upload;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod props;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
