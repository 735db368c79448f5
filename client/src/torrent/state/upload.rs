//! Uploading: peers' requests checked and queued, blocks read and sent while the request
//! stands, and the choker's decisions carried out.
//!
//! A request is served only if it is wholly inside a piece we have, at most
//! [`BLOCK_SIZE`] long (BEP 3; libtorrent refuses longer ones too), and the peer is
//! unchoked or the piece is in its allowed fast set. With the fast extension every
//! request gets exactly one answer, a `piece` or a `reject request` (BEP 6): refused,
//! cancelled and choked-away requests are rejected; without it they are dropped.

use std::time::Instant;

use bytes::Bytes;
use rill_common::pieces::{BLOCK_SIZE, BlockRef};
use rill_common::wire::Message;

use super::{Action, TorrentState};
use crate::torrent::PeerKey;

/// Requests queued per peer at most (we announce a `reqq` of 500; slack for races and for
/// peers that ignore it).
pub const MAX_QUEUED_UPLOADS: usize = 1000;
/// Reads handed to the shell per peer at once (bounds memory held for one peer to 512 KiB,
/// about libtorrent's send buffer watermark; more in flight hides the disk's latency).
pub const MAX_READS: usize = 32;
/// Unservable requests tolerated from a peer without the fast extension.
pub const MAX_BAD_REQUESTS: u32 = 64;

impl TorrentState {
    /// A `request`: queue it if it can be served, else reject (fast) or drop it.
    pub(super) fn peer_request(
        &mut self,
        id: PeerKey,
        block: BlockRef,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        let count = self.picker.piece_count();
        if block.piece.get() >= count {
            return Err(format!("request for piece {} of {count}", block.piece));
        }
        // Empty, or past the end of the piece: broken, not merely unservable.
        block
            .check(self.picker.piece_len(block.piece), u32::MAX)
            .map_err(|e| format!("request: {e}"))?;
        let have = self.picker.have().get(block.piece);
        let failed = self.failed;
        let Some(peer) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        if peer.request_stands(block) {
            return Ok(());
        }
        let choked = peer.am_choking && !peer.allowed_fast(block.piece);
        let unservable = block.length > BLOCK_SIZE || !have;
        let full = peer.uploads.len() + peer.reading.len() >= MAX_QUEUED_UPLOADS;
        if unservable || choked || full || failed {
            if peer.fast {
                peer.send(Message::RejectRequest(block), now, out);
            } else if unservable {
                // A request sent before our choke arrived is no fault; these are.
                peer.bad_requests += 1;
                if peer.bad_requests > MAX_BAD_REQUESTS {
                    return Err(format!("{} unservable requests", peer.bad_requests));
                }
            }
            return Ok(());
        }
        peer.uploads.insert(block);
        self.issue_reads(id, out);
        Ok(())
    }

    /// A `cancel`: the request no longer stands (with fast, it is rejected: BEP 6 wants
    /// one answer for every request).
    pub(super) fn peer_cancel(
        &mut self,
        id: PeerKey,
        block: BlockRef,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let removed = peer.reading.remove(&block) | peer.uploads.remove(&block);
        if removed && peer.fast {
            peer.send(Message::RejectRequest(block), now, out);
        }
        self.issue_reads(id, out);
    }

    /// A read came back: send the block if the request still stands.
    pub(super) fn block_read(
        &mut self,
        id: PeerKey,
        block: BlockRef,
        data: Bytes,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let failed = self.failed;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.reading.remove(&block) {
            return;
        }
        let allowed = !peer.am_choking || peer.allowed_fast(block.piece);
        if allowed && !failed && data.len() == block.length as usize {
            let len = u64::from(block.length);
            peer.send(
                Message::Piece {
                    index: block.piece,
                    begin: block.begin,
                    data,
                },
                now,
                out,
            );
            self.uploaded += len;
            self.up_rate.add(len, now);
            self.choker.block_sent(id, len, now);
        } else if peer.fast {
            peer.send(Message::RejectRequest(block), now, out);
        }
        self.issue_reads(id, out);
    }

    /// Hands queued requests to the shell to read, up to [`MAX_READS`] at once.
    fn issue_reads(&mut self, id: PeerKey, out: &mut Vec<Action>) {
        if self.failed {
            return;
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        while peer.reading.len() < MAX_READS {
            let Some(block) = peer.uploads.pop_first() else {
                break;
            };
            peer.reading.insert(block);
            out.push(Action::Read(peer.key, block));
        }
    }

    /// Runs the choker and sends its changes. Choking a peer drops its standing requests
    /// (BEP 6: choke first, then reject each, except for allowed fast pieces).
    pub(super) fn rechoke(&mut self, now: Instant, out: &mut Vec<Action>) {
        let changes = self.choker.rechoke(now, &mut self.rng);
        for (id, unchoke) in changes {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            peer.am_choking = !unchoke;
            if unchoke {
                peer.send(Message::Unchoke, now, out);
                continue;
            }
            peer.send(Message::Choke, now, out);
            let mut dropped: Vec<BlockRef> = Vec::new();
            let allowed = peer.allowed_fast_out.clone();
            peer.uploads.retain(|b| {
                let keep = allowed.contains(&b.piece);
                if !keep {
                    dropped.push(*b);
                }
                keep
            });
            peer.reading.retain(|b| {
                let keep = allowed.contains(&b.piece);
                if !keep {
                    dropped.push(*b);
                }
                keep
            });
            if peer.fast {
                for block in dropped {
                    peer.send(Message::RejectRequest(block), now, out);
                }
            }
        }
    }
}
