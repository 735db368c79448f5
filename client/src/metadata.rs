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

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rill_common::wire::Message;
use rill_common::wire::extension::{
    ExtendedHandshake, HANDSHAKE_ID, MAX_METADATA_SIZE, METADATA_PIECE_LEN, MetadataMessage,
    UT_METADATA, metadata_piece_count, metadata_piece_len,
};
use rill_common::wire::handshake::Handshake;
use rill_common::{InfoHash, PeerId};
use sha1::{Digest, Sha1};

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
/// Dials in progress at most.
pub const MAX_HALF_OPEN: usize = 8;
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

    fn dial(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.started || self.finished {
            return;
        }
        let dialling = self.book.dialling();
        let room = self
            .config
            .max_peers
            .saturating_sub(self.peers.len() + dialling)
            .min(MAX_HALF_OPEN.saturating_sub(dialling));
        for addr in self.book.next_dials(room, false, now) {
            out.push(Action::Connect(addr));
        }
    }

    fn connected(
        &mut self,
        key: PeerKey,
        addr: SocketAddr,
        handshake: &Handshake,
        outgoing: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.remove_peer(key, now);
        let their_id = handshake.peer_id;
        let refusal = if handshake.info_hash != self.config.info_hash {
            Some(Reason::Protocol("handshake for another torrent".into()))
        } else if self.banned.contains(&their_id) || self.book.is_banned(addr) {
            Some(Reason::Banned)
        } else if their_id == self.config.peer_id {
            Some(Reason::Ourselves)
        } else if self
            .peers
            .values()
            .any(|p| p.sender.peer_id == their_id || p.sender.addr == addr)
        {
            Some(Reason::Duplicate)
        } else if self.peers.len() >= self.config.max_peers {
            Some(Reason::TooManyPeers)
        } else if !handshake.reserved.extension_protocol() {
            // Without BEP 10 a peer cannot send metadata.
            Some(Reason::NotUseful)
        } else {
            None
        };
        if let Some(reason) = refusal {
            out.push(Action::Disconnect(key, reason.clone()));
            if outgoing {
                match reason {
                    Reason::Ourselves => self.book.forget(addr),
                    reason => {
                        let retry = reason == Reason::TooManyPeers;
                        self.book
                            .disconnected(addr, Duration::ZERO, retry, false, now);
                    }
                }
            }
            return;
        }
        if outgoing {
            self.book.connected(addr);
        }
        let mut peer = FetchPeer {
            key,
            sender: Sender {
                addr,
                listen_addr: outgoing.then_some(addr),
                peer_id: their_id,
            },
            fast: handshake.reserved.fast(),
            connected_at: now,
            last_received: now,
            last_sent: now,
            ut_metadata: None,
            requests: BTreeMap::new(),
            refused: BTreeMap::new(),
            rejects: 0,
            stalls: 0,
            rejects_sent: 0,
            unrequested: 0,
        };
        if peer.fast {
            // BEP 6: a fast peer is told what we have first; we have nothing.
            peer.send(Message::HaveNone, now, out);
        }
        let ours = ExtendedHandshake {
            messages: BTreeMap::from([(UT_METADATA.to_owned(), OUR_UT_METADATA)]),
            client: Some(self.config.client.clone()),
            port: self.config.listen_port,
            request_queue: None,
            your_ip: Some(addr.ip().to_canonical()),
            metadata_size: None,
            upload_only: false,
        };
        let payload = ours.to_bytes();
        peer.send(
            Message::Extended {
                id: HANDSHAKE_ID,
                payload,
            },
            now,
            out,
        );
        self.peers.insert(key, peer);
    }

    fn received(
        &mut self,
        key: PeerKey,
        message: Message,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), Reason> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        peer.last_received = now;
        let Message::Extended { id, payload } = message else {
            // What the peer has, its choke and interest, its requests: none of our
            // business before we have the info dict.
            return Ok(());
        };
        let protocol = |e: &dyn std::fmt::Display| Reason::Protocol(e.to_string());
        if id == HANDSHAKE_ID {
            let theirs = ExtendedHandshake::decode(&payload).map_err(|e| protocol(&e))?;
            if peer.sender.listen_addr.is_none()
                && let Some(port) = theirs.port.filter(|p| *p != 0)
            {
                let listen = SocketAddr::new(peer.sender.addr.ip(), port);
                peer.sender.listen_addr = Some(listen);
                self.book.connected(listen);
            }
            let ext = theirs.id_of(UT_METADATA);
            let size = theirs
                .metadata_size
                .filter(|s| *s > 0 && *s <= MAX_METADATA_SIZE);
            match (ext, size) {
                (Some(ext), Some(size)) => peer.ut_metadata = Some((ext, size)),
                _ => return Err(Reason::NotUseful),
            }
            return Ok(());
        }
        if id != OUR_UT_METADATA {
            return Ok(());
        }
        match MetadataMessage::decode(&payload).map_err(|e| protocol(&e))? {
            MetadataMessage::Request { piece } => {
                if peer.rejects_sent < MAX_REJECTS_SENT
                    && let Some((ext, _)) = peer.ut_metadata
                {
                    peer.rejects_sent += 1;
                    let payload = MetadataMessage::Reject { piece }.to_bytes();
                    peer.send(Message::Extended { id: ext, payload }, now, out);
                }
            }
            MetadataMessage::Reject { piece } => {
                if peer.requests.remove(&piece).is_some() {
                    peer.refused.insert(piece, now);
                    peer.rejects += 1;
                    if peer.rejects > MAX_REJECTS {
                        return Err(Reason::NotUseful);
                    }
                }
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                if peer.requests.remove(&piece).is_none() {
                    peer.unrequested += 1;
                    if peer.unrequested > MAX_UNREQUESTED {
                        return Err(Reason::Protocol("unrequested metadata pieces".into()));
                    }
                    return Ok(());
                }
                if Some(total_size) != peer.size() {
                    return Err(Reason::Protocol(format!(
                        "total_size {total_size} after announcing {:?}",
                        peer.size()
                    )));
                }
                let sender = peer.sender;
                self.piece_arrived(piece, total_size, data, sender, now, out);
            }
        }
        Ok(())
    }

    /// Stores a requested piece; checks the dict when it is whole.
    fn piece_arrived(
        &mut self,
        piece: u32,
        size: u32,
        data: Bytes,
        sender: Sender,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(attempt) = self.attempt.as_mut().filter(|a| a.size == size) else {
            return;
        };
        let Some(slot) = attempt.pieces.get_mut(piece as usize) else {
            return;
        };
        if slot.is_none() {
            *slot = Some((data, sender));
        }
        if attempt.pieces.iter().all(|p| p.is_some()) {
            let Some(attempt) = self.attempt.take() else {
                return;
            };
            self.check(attempt, now, out);
        }
    }

    /// A whole dict: done if its SHA-1 is the info hash, else blame and start over.
    fn check(&mut self, attempt: Attempt, now: Instant, out: &mut Vec<Action>) {
        let mut dict = BytesMut::with_capacity(attempt.size as usize);
        let mut senders: Vec<Sender> = Vec::new();
        for (data, sender) in attempt.pieces.iter().flatten() {
            dict.extend_from_slice(data);
            if !senders.contains(sender) {
                senders.push(*sender);
            }
        }
        let dict = dict.freeze();
        if InfoHash::of_info(&dict) == self.config.info_hash {
            // Anyone whose piece of an earlier attempt differs from the verified dict lied.
            let liars: Vec<Sender> = self
                .suspects
                .iter()
                .filter(|(index, size, digest, _)| {
                    *size != attempt.size || piece_digest(&dict, *index) != Some(*digest)
                })
                .map(|(_, _, _, s)| *s)
                .collect();
            for liar in liars {
                self.ban(liar, now, out);
            }
            self.finished = true;
            out.push(Action::Done(dict));
            return;
        }
        if let [only] = senders[..] {
            self.ban(only, now, out);
        } else {
            for (index, (data, sender)) in attempt.pieces.iter().flatten().enumerate() {
                if self.suspects.len() < SUSPECT_MEMORY {
                    let digest = Sha1::digest(data).into();
                    self.suspects
                        .push((index as u32, attempt.size, digest, *sender));
                }
            }
        }
        // From now on one peer at a time sends the whole dict, so a failure has one culprit.
        self.parole = true;
    }

    /// Bans a peer for good and closes its live connections.
    fn ban(&mut self, who: Sender, now: Instant, out: &mut Vec<Action>) {
        self.banned.insert(who.peer_id);
        self.book.ban(who.addr);
        if let Some(listen) = who.listen_addr {
            self.book.ban(listen);
        }
        let live: Vec<PeerKey> = self
            .peers
            .values()
            .filter(|p| p.sender.peer_id == who.peer_id)
            .map(|p| p.key)
            .collect();
        for key in live {
            self.drop_peer(key, Reason::Banned, now, out);
        }
    }

    fn drop_peer(&mut self, key: PeerKey, reason: Reason, now: Instant, out: &mut Vec<Action>) {
        if !self.peers.contains_key(&key) {
            return;
        }
        out.push(Action::Disconnect(key, reason.clone()));
        let retry = matches!(reason, Reason::Timeout | Reason::Shutdown);
        if let Some(peer) = self.peers.remove(&key) {
            self.forget(peer, retry, now);
        }
    }

    fn remove_peer(&mut self, key: PeerKey, now: Instant) {
        if let Some(peer) = self.peers.remove(&key) {
            self.forget(peer, true, now);
        }
    }

    fn forget(&mut self, peer: FetchPeer, retry: bool, now: Instant) {
        if let Some(listen) = peer.sender.listen_addr {
            let lasted = now.saturating_duration_since(peer.connected_at);
            self.book.disconnected(listen, lasted, retry, false, now);
        }
        if let Some(attempt) = self.attempt.as_mut()
            && attempt.solo == Some(peer.key)
        {
            attempt.solo = None;
        }
    }

    fn housekeeping(&mut self, now: Instant, out: &mut Vec<Action>) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let since = |t: Instant| now.saturating_duration_since(t);
            if since(peer.last_received) >= IDLE_TIMEOUT {
                self.drop_peer(key, Reason::Timeout, now, out);
                continue;
            }
            if peer.ut_metadata.is_none() && since(peer.connected_at) >= HANDSHAKE_TIMEOUT {
                self.drop_peer(key, Reason::NotUseful, now, out);
                continue;
            }
            let stalled: Vec<u32> = peer
                .requests
                .iter()
                .filter(|(_, at)| since(**at) >= REQUEST_TIMEOUT)
                .map(|(piece, _)| *piece)
                .collect();
            for piece in stalled {
                peer.requests.remove(&piece);
                peer.refused.insert(piece, now);
                peer.stalls += 1;
            }
            if since(peer.last_sent) >= KEEPALIVE_INTERVAL {
                peer.send(Message::KeepAlive, now, out);
            }
        }
        self.dial(now, out);
    }

    /// The size to fetch: the one most connected peers announce (the smaller on a tie).
    fn target_size(&self) -> Option<u32> {
        let mut votes: BTreeMap<u32, usize> = BTreeMap::new();
        for size in self.peers.values().filter_map(FetchPeer::size) {
            *votes.entry(size).or_default() += 1;
        }
        votes
            .into_iter()
            .max_by_key(|(size, n)| (*n, std::cmp::Reverse(*size)))
            .map(|(size, _)| size)
    }

    /// Starts an attempt if needed and sends the requests the limits allow.
    fn request_more(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        // An attempt whose size no connected peer announces any more starts over.
        if let Some(a) = &self.attempt
            && !self.peers.values().any(|p| p.size() == Some(a.size))
        {
            self.attempt = None;
        }
        if self.attempt.is_none() {
            let Some(size) = self.target_size() else {
                return;
            };
            let count = metadata_piece_count(size) as usize;
            self.attempt = Some(Attempt {
                size,
                pieces: vec![None; count],
                solo: None,
            });
        }
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        let size = attempt.size;
        let missing: Vec<u32> = (0..attempt.pieces.len() as u32)
            .filter(|i| attempt.pieces.get(*i as usize).is_some_and(|p| p.is_none()))
            .filter(|i| !self.peers.values().any(|p| p.requests.contains_key(i)))
            .collect();
        if self.parole {
            // One peer sends the whole dict; one that refuses a piece makes way for another.
            let solo_ok = attempt
                .solo
                .and_then(|k| self.peers.get(&k))
                .is_some_and(|p| {
                    p.size() == Some(size) && !missing.iter().any(|i| p.refuses(*i, now))
                });
            if !solo_ok {
                attempt.solo = self
                    .peers
                    .values()
                    .filter(|p| p.size() == Some(size))
                    .filter(|p| !missing.iter().any(|i| p.refuses(*i, now)))
                    .min_by_key(|p| p.failures())
                    .map(|p| p.key);
            }
        }
        let solo = attempt.solo.filter(|_| self.parole);
        for piece in missing {
            let peer = self
                .peers
                .values_mut()
                .filter(|p| p.size() == Some(size) && solo.is_none_or(|s| s == p.key))
                .filter(|p| p.requests.len() < PER_PEER_REQUESTS && !p.refuses(piece, now))
                .min_by_key(|p| (p.requests.len(), p.failures()));
            let Some(peer) = peer else {
                if self.parole && solo.is_none() {
                    break;
                }
                continue;
            };
            let Some((ext, _)) = peer.ut_metadata else {
                continue;
            };
            peer.requests.insert(piece, now);
            let payload = MetadataMessage::Request { piece }.to_bytes();
            peer.send(Message::Extended { id: ext, payload }, now, out);
        }
    }
}

/// The SHA-1 of metadata piece `index` of `dict`.
fn piece_digest(dict: &[u8], index: u32) -> Option<[u8; 20]> {
    let size = u32::try_from(dict.len()).ok()?;
    let len = metadata_piece_len(size, index)? as usize;
    let begin = (index as usize).checked_mul(METADATA_PIECE_LEN as usize)?;
    let piece = dict.get(begin..begin.checked_add(len)?)?;
    Some(Sha1::digest(piece).into())
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

#[cfg(test)]
mod tests;
