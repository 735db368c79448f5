//! Messages from a peer, validated against the torrent (BEP 3, 6, 10). A violation is an
//! `Err(why)`, which closes the connection with [`super::Reason::Protocol`].
//!
//! What a peer has may come as a `bitfield` (BEP 3), `have all`/`have none` (BEP 6, fast
//! peers only), or not at all: peers that send bursts of `have` instead, or a lazy partial
//! bitfield followed by `have`s, are counted the same. Only one of the three may come.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::PieceIndex;
use rill_common::wire::Message;
use rill_common::wire::extension::{ExtendedHandshake, HANDSHAKE_ID, UT_PEX};

use super::{Action, TorrentState};
use crate::metadata::OUR_UT_METADATA;
use crate::pex::OUR_UT_PEX;
use crate::torrent::PeerKey;

/// Suggested pieces remembered per peer.
const MAX_SUGGESTED: usize = 16;
/// Extension names remembered per peer.
const MAX_EXTENSIONS: usize = 32;
/// Longest client name kept from `v`.
const MAX_CLIENT_LEN: usize = 64;

/// Whether `piece` is wanted (priority above 0) and not had.
pub(super) fn wants(priorities: &[u8], have: &Bitfield, piece: PieceIndex) -> bool {
    priorities.get(piece.as_usize()).is_some_and(|p| *p > 0) && !have.get(piece)
}

impl TorrentState {
    /// Handles one message from a live peer.
    pub(super) fn received(
        &mut self,
        id: PeerKey,
        message: Message,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        let count = self.picker.piece_count();
        let Some(peer) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        peer.last_received = now;
        let fast = peer.fast;
        let need_fast = |name: &str| match fast {
            true => Ok(()),
            false => Err(format!("{name} without the fast extension")),
        };
        let check = |piece: PieceIndex| match piece.get() < count {
            true => Ok(piece),
            false => Err(format!("piece {piece} out of range ({count} pieces)")),
        };
        match message {
            Message::KeepAlive | Message::Unknown { .. } => {}
            Message::Choke => self.peer_choked(id, now, out),
            Message::Unchoke => {
                peer.peer_choking = false;
                peer.rejected.clear();
                self.choker.set_peer_choking(id, false, now);
                self.fill_requests(id, now, out);
            }
            Message::Interested => {
                peer.peer_interested = true;
                self.choker.set_interested(id, true);
                let unchoked = self.peers.values().filter(|p| !p.am_choking).count();
                if unchoked <= self.config.choker.slots {
                    self.rechoke_soon = true;
                }
            }
            Message::NotInterested => {
                peer.peer_interested = false;
                self.choker.set_interested(id, false);
                if !peer.am_choking {
                    self.rechoke_soon = true;
                }
            }
            Message::Have(piece) => {
                let piece = check(piece)?;
                self.peer_has(id, piece);
                self.update_interest(id, now, out);
                self.fill_requests(id, now, out);
            }
            Message::Bitfield(bytes) => {
                self.peer_bitfield(id, &bytes)?;
                self.update_interest(id, now, out);
                self.fill_requests(id, now, out);
            }
            Message::HaveAll => {
                need_fast("have all")?;
                self.peer_has_all(id)?;
                self.update_interest(id, now, out);
                self.fill_requests(id, now, out);
            }
            Message::HaveNone => {
                need_fast("have none")?;
                if peer.got_bitfield {
                    return Err("have none after a bitfield".into());
                }
                peer.got_bitfield = true;
            }
            Message::Request(block) => self.peer_request(id, block, now, out)?,
            Message::Piece { index, begin, data } => {
                self.block_arrived(id, check(index)?, begin, data, now, out)?;
            }
            Message::Cancel(block) => self.peer_cancel(id, block, now, out),
            Message::Port(port) => peer.dht_port = Some(port),
            Message::Suggest(piece) => {
                need_fast("suggest piece")?;
                let piece = check(piece)?;
                if peer.suggested.len() >= MAX_SUGGESTED {
                    peer.suggested.pop_front();
                }
                peer.suggested.push_back(piece);
            }
            Message::RejectRequest(block) => {
                need_fast("reject request")?;
                self.request_rejected(id, block, now);
            }
            Message::AllowedFast(piece) => {
                need_fast("allowed fast")?;
                peer.allowed_fast_in.insert(check(piece)?);
                self.fill_requests(id, now, out);
            }
            Message::Extended { id: ext, payload } if ext == HANDSHAKE_ID => {
                self.extended_handshake(id, &payload, now)?;
                self.fill_requests(id, now, out);
            }
            Message::Extended { id: ext, payload } if ext == OUR_UT_METADATA => {
                self.metadata_message(id, &payload, now, out)?;
            }
            Message::Extended { id: ext, payload } if ext == OUR_UT_PEX => {
                self.pex_message(id, &payload, now, out)?;
            }
            // Ids we did not announce are ignored.
            Message::Extended { .. } => {}
        }
        Ok(())
    }

    /// A peer got a piece (`have`, or one bit of a bitfield).
    fn peer_has(&mut self, id: PeerKey, piece: PieceIndex) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if peer.has.get(piece) {
            return;
        }
        peer.has.set(piece, true);
        if !peer.counted_as_seed {
            self.picker.peer_have(piece);
        }
        if wants(&self.priorities, self.picker.have(), piece) {
            peer.wanted += 1;
        }
    }

    /// A `bitfield`: only one, of the right length and without spare bits (BEP 3); merged
    /// with any `have` that came before it.
    fn peer_bitfield(&mut self, id: PeerKey, bytes: &Bytes) -> Result<(), String> {
        let count = self.picker.piece_count();
        let Some(peer) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        if peer.got_bitfield {
            return Err("a second bitfield".into());
        }
        let field = Bitfield::from_bytes(bytes, count).map_err(|e| e.to_string())?;
        peer.got_bitfield = true;
        for piece in field.iter() {
            self.peer_has(id, piece);
        }
        Ok(())
    }

    /// `have all` (BEP 6): counted as one seed in the picker, not piece by piece.
    fn peer_has_all(&mut self, id: PeerKey) -> Result<(), String> {
        let count = self.picker.piece_count();
        let Some(peer) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        if peer.got_bitfield {
            return Err("have all after a bitfield".into());
        }
        peer.got_bitfield = true;
        self.picker.remove_peer_bitfield(&peer.has);
        self.picker.add_seed();
        peer.counted_as_seed = true;
        peer.has = Bitfield::full(count);
        peer.wanted = self.missing;
        Ok(())
    }

    /// The BEP 10 extended handshake: `reqq`, `v`, `m`, `p`, `upload_only`.
    fn extended_handshake(
        &mut self,
        id: PeerKey,
        payload: &[u8],
        now: Instant,
    ) -> Result<(), String> {
        let theirs =
            ExtendedHandshake::decode(payload).map_err(|e| format!("extended handshake: {e}"))?;
        let Some(peer) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        if theirs.request_queue.is_some() {
            peer.reqq = theirs.request_queue;
        }
        if let Some(mut client) = theirs.client {
            if let Some((cut, _)) = client.char_indices().nth(MAX_CLIENT_LEN) {
                client.truncate(cut);
            }
            peer.client = Some(client);
        }
        for (name, ext) in theirs.messages.into_iter() {
            let known = peer.extensions.len();
            match peer.extensions.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = ext,
                None if known < MAX_EXTENSIONS => peer.extensions.push((name, ext)),
                None => {}
            }
        }
        peer.upload_only = theirs.upload_only;
        // BEP 27: no PEX for a private torrent.
        if !self.config.private && peer.extension_id(UT_PEX).is_some() {
            peer.pex.enable(now);
        }
        if peer.listen_addr.is_none()
            && let Some(port) = theirs.port.filter(|p| *p != 0)
        {
            let listen = SocketAddr::new(peer.addr.ip(), port);
            peer.listen_addr = Some(listen);
            // So we do not dial a peer we are already connected to.
            self.book.connected(listen);
        }
        Ok(())
    }

    /// Sends `interested` or `not interested` when our interest in the peer changed: we
    /// are interested while we download and it has a piece we want.
    pub(super) fn update_interest(&mut self, id: PeerKey, now: Instant, out: &mut Vec<Action>) {
        let downloading = !self.failed && self.missing > 0;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let interested = downloading && peer.wanted > 0;
        if interested != peer.am_interested {
            peer.am_interested = interested;
            let message = match interested {
                true => Message::Interested,
                false => Message::NotInterested,
            };
            peer.send(message, now, out);
            self.choker.set_am_interested(id, interested, now);
        }
    }
}
