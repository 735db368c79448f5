//! Extension messages of a torrent: serving our info dict with `ut_metadata` (BEP 9) and
//! peer exchange with `ut_pex` (BEP 11).
//!
//! - A `ut_metadata` request is answered with the 16 KiB piece of `Config::metadata`, or a
//!   reject when we lack it; one peer gets at most [`metadata_answer_cap`] answers, then
//!   its requests are ignored (a flood costs us nothing more). Data and rejects are ignored
//!   (we never ask: the torrent has its dict).
//! - PEX: at most one message a minute per peer (see [`crate::pex`]), listing the peers we
//!   are connected to whose listen address we know, the recipient left out; flags say seed
//!   and reachable (we dialled it). Received messages are taken as [`super::Event::PeersFound`]
//!   would be, at most [`crate::pex::MAX_PEX_TAKEN`] peers each, floods ignored.
//! - A private torrent (BEP 27) neither sends nor takes PEX (nor announces `ut_pex`).

use std::time::Instant;

use bytes::Bytes;
use rill_common::wire::Message;
use rill_common::wire::extension::{
    MetadataMessage, PexMessage, UT_METADATA, UT_PEX, metadata_piece_count,
};

use super::{Action, TorrentState};
use crate::metadata::serve;
use crate::pex::{PexSet, flags, take};
use crate::torrent::PeerKey;

/// Answers (data or reject) one peer gets to its `ut_metadata` requests: the whole dict
/// twice and some slack.
pub fn metadata_answer_cap(metadata: Option<&Bytes>) -> u32 {
    let size = metadata.map_or(0, |m| u32::try_from(m.len()).unwrap_or(u32::MAX));
    metadata_piece_count(size)
        .saturating_mul(2)
        .saturating_add(8)
}

impl TorrentState {
    /// A `ut_metadata` message from a peer.
    pub(super) fn metadata_message(
        &mut self,
        id: PeerKey,
        payload: &Bytes,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        let message = MetadataMessage::decode(payload).map_err(|e| format!("ut_metadata: {e}"))?;
        let MetadataMessage::Request { piece } = message else {
            return Ok(());
        };
        let cap = metadata_answer_cap(self.config.metadata.as_ref());
        let Some(peer) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        let Some(ext) = peer.extension_id(UT_METADATA) else {
            return Ok(());
        };
        if peer.metadata_answered >= cap {
            return Ok(());
        }
        peer.metadata_answered += 1;
        let payload = serve(self.config.metadata.as_ref(), piece).to_bytes();
        peer.send(Message::Extended { id: ext, payload }, now, out);
        Ok(())
    }

    /// A `ut_pex` message: its added peers join the address book (not for a private torrent).
    pub(super) fn pex_message(
        &mut self,
        id: PeerKey,
        payload: &[u8],
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        if self.config.private {
            return Ok(());
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        if !peer.pex.accept_incoming(now) {
            return Ok(());
        }
        let message = PexMessage::decode(payload).map_err(|e| format!("ut_pex: {e}"))?;
        self.book.add(take(&message), now);
        self.dial(now, out);
        Ok(())
    }

    /// Sends the PEX messages that are due.
    pub(super) fn send_pex(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.config.private {
            return;
        }
        let due = self
            .peers
            .values()
            .any(|p| p.pex.next_at().is_some_and(|at| at <= now));
        if !due {
            return;
        }
        let current: PexSet = self
            .peers
            .values()
            .filter_map(|p| {
                let addr = p.listen_addr?;
                Some((addr, flags(p.is_seed() || p.upload_only, p.outgoing)))
            })
            .collect();
        for peer in self.peers.values_mut() {
            let Some(ext) = peer.extension_id(UT_PEX) else {
                continue;
            };
            let mut theirs = current.clone();
            if let Some(own) = peer.listen_addr {
                theirs.remove(&own);
            }
            let Some(message) = peer.pex.poll(&theirs, now) else {
                continue;
            };
            // Capped at MAX_PEX_SENT per list, below what the encoder refuses.
            if let Ok(payload) = message.to_bytes() {
                peer.send(Message::Extended { id: ext, payload }, now, out);
            }
        }
    }
}
