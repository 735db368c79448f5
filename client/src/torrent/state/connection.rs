//! Connections: starting, dialling, accepting or refusing a handshake, the first messages
//! (BEP 3 `bitfield`, BEP 6 `have all`/`have none`/`allowed fast`, BEP 10 extended
//! handshake), dropping peers and stopping.
//!
//! Refusals, in order: a wrong info hash, a banned peer, our own peer id (the address is
//! never dialled again), a peer id already connected (of two connections between the same
//! peers, both sides keep the one dialled by the smaller peer id), over `max_peers`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use rill_common::tracker::AnnounceEvent;
use rill_common::wire::Message;
use rill_common::wire::extension::{ExtendedHandshake, HANDSHAKE_ID, UT_METADATA, UT_PEX};
use rill_common::wire::handshake::Handshake;

use super::fast::{ALLOWED_FAST_COUNT, allowed_fast_set};
use super::{Action, BanKey, Identity, Reason, TorrentState, ban_key};
use crate::metadata::{OUR_UT_METADATA, announced_size};
use crate::pex::OUR_UT_PEX;
use crate::torrent::PeerKey;
use crate::torrent::peer::Peer;

/// The `reqq` we announce: requests we queue per peer (we accept more, see
/// `upload::MAX_QUEUED_UPLOADS`). libtorrent keeps this many requests outstanding to a fast
/// seed (its own `max_out_request_queue` default): with 250 (4 MiB) a seed's pipeline ran dry
/// between the leecher's bursts of requests, and each time it did the leecher's next requests
/// could wait up to 40 ms for our delayed ACK (its socket uses Nagle's algorithm). Kept at 8 MiB
/// because blocks read for a peer wait in its connection's queue until the socket takes them.
pub const OUR_REQQ: u32 = 500;
/// Peers that left we still remember, to blame them for a failed piece.
const GONE_MEMORY: usize = 512;

impl TorrentState {
    /// Announces `started` and dials known peers.
    pub(super) fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.started {
            return;
        }
        out.push(Action::Announce(AnnounceEvent::Started));
        if self.complete_at_start {
            out.push(Action::Completed);
        }
        self.started = true;
        self.dial(now, out);
    }

    /// Dials as many known addresses as the limits allow.
    pub(super) fn dial(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.stopped || !self.started {
            return;
        }
        let dials = self.book.dials_within(
            self.config.max_peers,
            self.peers.len(),
            self.missing == 0,
            now,
        );
        out.extend(dials.into_iter().map(Action::Connect));
    }

    /// A handshake finished: refuse the peer, or take it and send our first messages.
    pub(super) fn connected(
        &mut self,
        key: PeerKey,
        addr: SocketAddr,
        handshake: &Handshake,
        outgoing: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        // A key still live means the shell missed a disconnect: forget the old connection.
        if let Some(old) = self.keys.remove(&key) {
            self.remove_peer(old, true, now);
        }
        if let Err(reason) = self.admit(addr, handshake, outgoing, now, out) {
            if outgoing {
                self.book.refused(addr, &reason, now);
            }
            out.push(Action::Disconnect(key, reason));
            return;
        }
        let id = PeerKey(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let count = self.picker.piece_count();
        let fast = handshake.reserved.fast();
        let mut peer = Peer::new(key, addr, handshake, outgoing, fast, count, now);
        if outgoing {
            self.book.connected(addr);
        }
        self.choker.add_peer(id, now);
        self.greet(&mut peer, now, out);
        self.peers.insert(id, peer);
        self.keys.insert(key, id);
    }

    /// Whether to take a new connection; may drop an older duplicate in its favour.
    fn admit(
        &mut self,
        addr: SocketAddr,
        handshake: &Handshake,
        outgoing: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), Reason> {
        let their_id = handshake.peer_id;
        if handshake.info_hash != self.config.info_hash {
            return Err(Reason::Protocol("handshake for another torrent".into()));
        }
        if self.banned.contains(&ban_key(addr, their_id))
            || self.banned.contains(&BanKey::Id(their_id))
            || self.book.is_banned(addr)
        {
            return Err(Reason::Banned);
        }
        if their_id == self.config.peer_id {
            return Err(Reason::Ourselves);
        }
        let existing = self
            .peers
            .iter()
            .find(|(_, p)| p.peer_id == their_id || p.addr == addr)
            .map(|(id, p)| (*id, p.outgoing, p.peer_id == their_id));
        if let Some((old, old_outgoing, same_id)) = existing {
            // Both ends keep the connection dialled by the smaller peer id, so a
            // simultaneous dial does not end with both connections closed.
            let we_are_smaller = self.config.peer_id.as_bytes() < their_id.as_bytes();
            let preferred = |dialled_by_us: bool| dialled_by_us == we_are_smaller;
            if same_id && preferred(outgoing) && !preferred(old_outgoing) {
                self.drop_peer(old, Reason::Duplicate, now, out);
            } else {
                return Err(Reason::Duplicate);
            }
        }
        if self.peers.len() >= self.config.max_peers {
            return Err(Reason::TooManyPeers);
        }
        Ok(())
    }

    /// Sends our first messages: what we have, the extended handshake, allowed fast pieces.
    fn greet(&self, peer: &mut Peer, now: Instant, out: &mut Vec<Action>) {
        let have = self.picker.have();
        let count = self.picker.piece_count();
        if peer.fast && count > 0 && have.all() {
            peer.send(Message::HaveAll, now, out);
        } else if peer.fast && have.none() {
            peer.send(Message::HaveNone, now, out);
        } else if !have.none() {
            let bits = Bytes::copy_from_slice(have.as_bytes());
            peer.send(Message::Bitfield(bits), now, out);
        }
        if peer.extended {
            // ut_metadata always (we reject when we lack the dict), ut_pex unless private
            // (BEP 27).
            let mut messages = BTreeMap::from([(UT_METADATA.to_owned(), OUR_UT_METADATA)]);
            if !self.config.private {
                messages.insert(UT_PEX.to_owned(), OUR_UT_PEX);
            }
            let ours = ExtendedHandshake {
                messages,
                client: Some(self.config.client.clone()),
                port: self.config.listen_port,
                request_queue: Some(OUR_REQQ),
                your_ip: Some(peer.addr.ip().to_canonical()),
                metadata_size: announced_size(self.config.metadata.as_ref()),
                // BEP 21: nothing more wanted (a seed, or done with the selected files).
                upload_only: self.missing == 0,
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
        }
        // BEP 6: a starting peer may fetch a few pieces while choked. IPv4 only.
        if peer.fast
            && !have.none()
            && let IpAddr::V4(ip) = peer.addr.ip().to_canonical()
        {
            peer.allowed_fast_out =
                allowed_fast_set(ip, &self.config.info_hash, count, ALLOWED_FAST_COUNT);
            for piece in peer.allowed_fast_out.clone() {
                peer.send(Message::AllowedFast(piece), now, out);
            }
        }
    }

    /// Closes a connection for `reason` and forgets the peer at once (later events of its
    /// key are ignored until the shell reports the disconnect).
    pub(super) fn drop_peer(
        &mut self,
        id: PeerKey,
        reason: Reason,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        out.push(Action::Disconnect(peer.key, reason.clone()));
        self.keys.remove(&peer.key);
        let retry = matches!(reason, Reason::Timeout | Reason::NotUseful);
        self.remove_peer(id, retry, now);
    }

    /// Forgets a peer that left: its requests are freed, its pieces uncounted, its
    /// address backed off (or given up unless `retry`).
    pub(super) fn remove_peer(&mut self, id: PeerKey, retry: bool, now: Instant) {
        let Some(peer) = self.peers.remove(&id) else {
            return;
        };
        self.picker.peer_gone(id);
        if peer.counted_as_seed {
            self.picker.remove_seed();
        } else {
            self.picker.remove_peer_bitfield(&peer.has);
        }
        if !peer.am_choking {
            self.rechoke_soon = true;
        }
        self.choker.remove_peer(id);
        if let Some(listen) = peer.listen_addr {
            let lasted = now.saturating_duration_since(peer.connected_at);
            self.book
                .disconnected(listen, lasted, retry, peer.is_seed(), now);
        }
        self.gone.push_back((
            id,
            Identity {
                addr: peer.addr,
                listen_addr: peer.listen_addr,
                peer_id: peer.peer_id,
            },
        ));
        if self.gone.len() > GONE_MEMORY {
            self.gone.pop_front();
        }
        if !peer.requests_out.is_empty() {
            self.refill = true;
        }
    }

    /// Stops: announce `stopped`, close every connection.
    pub(super) fn stop(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Announce(AnnounceEvent::Stopped));
        let ids: Vec<PeerKey> = self.peers.keys().copied().collect();
        for id in ids {
            self.drop_peer(id, Reason::Shutdown, now, out);
        }
        self.stopped = true;
    }

    /// Storage failed: report it (once) and stop requesting and serving.
    pub(super) fn storage_failed(&mut self, message: String, now: Instant, out: &mut Vec<Action>) {
        // The first failure says it; later ones (other writes in flight) add nothing.
        if self.failed {
            return;
        }
        out.push(Action::Fatal(message));
        self.failed = true;
        let ids: Vec<PeerKey> = self.peers.keys().copied().collect();
        for id in ids {
            self.give_up_requests(id, true, now, out);
            self.update_interest(id, now, out);
        }
    }

    /// Bans a peer for good: its address and id are refused and never dialled again, and
    /// every live connection of it is closed.
    pub(super) fn ban(&mut self, who: Identity, now: Instant, out: &mut Vec<Action>) {
        let key = who.ban_key();
        self.banned.insert(key);
        self.banned.insert(BanKey::Id(who.peer_id));
        // On loopback this bans the exact addresses; elsewhere the IP.
        self.book.ban(who.addr);
        if let Some(listen) = who.listen_addr {
            self.book.ban(listen);
        }
        let live: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.peer_id == who.peer_id || ban_key(p.addr, p.peer_id) == key)
            .map(|(id, _)| *id)
            .collect();
        for id in live {
            self.drop_peer(id, Reason::Banned, now, out);
        }
    }

    /// Who a peer (live or recently gone) is.
    pub(super) fn identity(&self, id: PeerKey) -> Option<Identity> {
        if let Some(p) = self.peers.get(&id) {
            return Some(Identity {
                addr: p.addr,
                listen_addr: p.listen_addr,
                peer_id: p.peer_id,
            });
        }
        self.gone
            .iter()
            .rev()
            .find(|(gone, _)| *gone == id)
            .map(|(_, who)| *who)
    }
}
