//! What a torrent knows of one connected peer, as plain data (BEP 3, 6, 10).
//!
//! Invariants kept by [`super::state::TorrentState`]:
//! - `has` covers exactly the torrent's pieces; it counts in the picker's availability
//!   either bit by bit or, when `counted_as_seed`, as one seed (BEP 6 `have all`);
//! - `wanted` is the number of pieces in `has` that we want and lack, so we are
//!   interested exactly when it is above 0 and we still download;
//! - `requests_out` are the blocks the picker has marked requested by this peer;
//!   blocks we gave up (cancel, choke, time-out) move to `given_up`, so a late block is
//!   not mistaken for an unrequested one;
//! - `uploads` queues the peer's standing requests not yet read; `reading` those handed
//!   to the shell with an `Action::Read`; a block is sent only if still in `reading`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rill_common::PeerId;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BlockRef, PieceIndex};
use rill_common::wire::Message;
use rill_common::wire::handshake::Handshake;

use super::PeerKey;
use super::state::Action;
use crate::pex::PexOut;

/// How many given-up requests a peer remembers (late blocks for older ones count as unrequested).
const GIVEN_UP_MEMORY: usize = 1024;

/// One connected peer's protocol state.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The shell's key for the connection (used in actions).
    pub key: PeerKey,
    /// The remote address.
    pub addr: SocketAddr,
    /// The address we dialled, or the listen address the peer told us (`p`).
    pub listen_addr: Option<SocketAddr>,
    /// The peer id from the handshake.
    pub peer_id: PeerId,
    /// We dialled it.
    pub outgoing: bool,
    /// Both sides set the BEP 6 fast bit.
    pub fast: bool,
    /// The peer set the BEP 10 extension bit.
    pub extended: bool,
    /// When the connection was made.
    pub connected_at: Instant,
    /// The pieces the peer has.
    pub has: Bitfield,
    /// The peer's availability is counted as one seed in the picker (BEP 6 `have all`).
    pub counted_as_seed: bool,
    /// A bitfield, `have all` or `have none` arrived (only one may).
    pub got_bitfield: bool,
    /// Pieces in `has` we want and lack.
    pub wanted: u32,
    /// We choke the peer.
    pub am_choking: bool,
    /// We told the peer we are interested.
    pub am_interested: bool,
    /// The peer chokes us.
    pub peer_choking: bool,
    /// The peer is interested in us.
    pub peer_interested: bool,
    /// BEP 10 `reqq`: how many requests the peer queues.
    pub reqq: Option<u32>,
    /// BEP 10 `v`.
    pub client: Option<String>,
    /// BEP 10 `m`: extension name to the id the peer receives it under (for ut_metadata, ut_pex).
    pub extensions: Vec<(String, u8)>,
    /// BEP 21 `upload_only`: the peer wants nothing from us.
    pub upload_only: bool,
    /// BEP 5 `port`: the peer's DHT port.
    pub dht_port: Option<u16>,
    /// Blocks we requested and still wait for, with when we asked.
    pub requests_out: BTreeMap<BlockRef, Instant>,
    /// Requests we gave up, newest last, so their late blocks are accepted.
    pub given_up: VecDeque<BlockRef>,
    /// Last time a block arrived, or requests began after none were outstanding.
    pub request_progress: Instant,
    /// Pieces the peer rejected (or stalled on) while unchoking us, and when: not asked of
    /// it again for a while, or until it unchokes us anew.
    pub rejected: BTreeMap<PieceIndex, Instant>,
    /// Pieces the peer lets us request while it chokes us (BEP 6 `allowed fast`).
    pub allowed_fast_in: BTreeSet<PieceIndex>,
    /// Pieces we let the peer request while we choke it (our allowed fast set for it).
    pub allowed_fast_out: Vec<PieceIndex>,
    /// Pieces the peer suggested (BEP 6 `suggest piece`; a hint only, most recent last).
    pub suggested: VecDeque<PieceIndex>,
    /// The peer's standing requests not yet read (served in piece and offset order).
    pub uploads: BTreeSet<BlockRef>,
    /// The peer's standing requests being read.
    pub reading: BTreeSet<BlockRef>,
    /// Blocks that arrived without a request.
    pub unrequested: u32,
    /// Requests we could not serve (too long, a piece we lack) from a peer without fast.
    pub bad_requests: u32,
    /// Since when neither side is interested (checked once a second).
    pub useless_since: Option<Instant>,
    /// Last time anything arrived from the peer.
    pub last_received: Instant,
    /// Last time we sent it anything.
    pub last_sent: Instant,
    /// Peer exchange with it (BEP 11): what it was told, when next.
    pub pex: PexOut,
    /// Its `ut_metadata` requests we answered (BEP 9), capped.
    pub metadata_answered: u32,
}

impl Peer {
    /// A newly connected peer: choked both ways, not interested, nothing known of its pieces;
    /// `fast` when both sides set the BEP 6 bit.
    pub fn new(
        key: PeerKey,
        addr: SocketAddr,
        handshake: &Handshake,
        outgoing: bool,
        fast: bool,
        piece_count: u32,
        now: Instant,
    ) -> Self {
        Peer {
            key,
            addr,
            listen_addr: outgoing.then_some(addr),
            peer_id: handshake.peer_id,
            outgoing,
            fast,
            extended: handshake.reserved.extension_protocol(),
            connected_at: now,
            has: Bitfield::new(piece_count),
            counted_as_seed: false,
            got_bitfield: false,
            wanted: 0,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            reqq: None,
            client: None,
            extensions: Vec::new(),
            upload_only: false,
            dht_port: None,
            requests_out: BTreeMap::new(),
            given_up: VecDeque::new(),
            request_progress: now,
            rejected: BTreeMap::new(),
            allowed_fast_in: BTreeSet::new(),
            allowed_fast_out: Vec::new(),
            suggested: VecDeque::new(),
            uploads: BTreeSet::new(),
            reading: BTreeSet::new(),
            unrequested: 0,
            bad_requests: 0,
            useless_since: None,
            last_received: now,
            last_sent: now,
            pex: PexOut::default(),
            metadata_answered: 0,
        }
    }

    /// Queues a message to the peer and notes the time.
    pub fn send(&mut self, message: Message, now: Instant, out: &mut Vec<Action>) {
        self.last_sent = now;
        out.push(Action::Send(self.key, message));
    }

    /// The id the peer receives extension `name` under (BEP 10 `m`), unless absent or disabled.
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .filter(|id| *id != 0)
    }

    /// Whether the peer has every piece.
    pub fn is_seed(&self) -> bool {
        self.has.all()
    }

    /// Remembers a request we gave up, forgetting the oldest past the memory's size.
    pub fn give_up(&mut self, block: BlockRef) {
        if self.given_up.len() >= GIVEN_UP_MEMORY {
            self.given_up.pop_front();
        }
        self.given_up.push_back(block);
    }

    /// Takes a block out of the given-up requests; whether it was one.
    pub fn take_given_up(&mut self, block: BlockRef) -> bool {
        match self.given_up.iter().position(|b| *b == block) {
            Some(i) => {
                self.given_up.remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether the peer may request `piece` while we choke it.
    pub fn allowed_fast(&self, piece: PieceIndex) -> bool {
        self.allowed_fast_out.contains(&piece)
    }

    /// Whether a request of the peer still stands (queued or being read).
    pub fn request_stands(&self, block: BlockRef) -> bool {
        self.reading.contains(&block) || self.uploads.contains(&block)
    }
}
