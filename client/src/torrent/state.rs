//! One torrent's protocol logic as a pure state machine: events in, actions out.
//!
//! The shell (`torrent/task.rs`) owns a [`TorrentState`], reads the clock, feeds every
//! [`Event`] to [`TorrentState::handle`] and carries out the [`Action`]s it returns, in order.
//! Nothing here awaits, reads the clock, touches a socket or a file.
//!
//! Contract with the shell:
//! - The shell assigns each connection a [`PeerKey`] unique among live connections and reports
//!   it with [`Event::Connected`] once the handshake's info hash matched; every later event of
//!   that connection carries the same key, and [`Event::Disconnected`] ends it (also after an
//!   [`Action::Disconnect`]).
//! - [`Action::Write`]s are answered with [`Event::BlockWritten`] (or [`Event::StorageFailed`]);
//!   the state emits [`Action::Verify`] for a piece only after all its writes came back.
//! - [`Action::Read`] is answered with [`Event::BlockRead`]; the state sends the block only if
//!   the request still stands (not cancelled, peer still unchoked and connected).
//! - [`Event::Tick`] is due at [`TorrentState::next_deadline`] (at least once a second is fine).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BlockRef, PieceIndex};
use rill_common::tracker::AnnounceEvent;
use rill_common::wire::Message;
use rill_common::wire::handshake::Handshake;
use rill_common::{InfoHash, PeerId};

use super::PeerKey;
use super::choker::ChokerConfig;

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

/// A torrent's protocol state; see the module docs for the contract with the shell.
#[derive(Debug)]
pub struct TorrentState {
    config: Config,
    have: Bitfield,
}

/// Why a torrent's state cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Piece geometry or priorities do not fit together.
    #[error("bad torrent geometry: {0}")]
    Geometry(String),
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
        let _ = (total_len, piece_len, now, seed);
        Ok(TorrentState { config, have })
    }

    /// Feeds one event; the actions to carry out are appended to `out`.
    pub fn handle(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        let _ = (event, now, out, &self.config);
    }

    /// When the next [`Event::Tick`] is due.
    pub fn next_deadline(&self) -> Instant {
        Instant::now()
    }

    /// The verified pieces.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Counters for the display and announces.
    pub fn stats(&self, now: Instant) -> Stats {
        let _ = now;
        Stats::default()
    }

    /// Whether every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        self.have.all()
    }
}
