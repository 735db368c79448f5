//! Downloading: pipelines kept full from the picker, blocks received and written, pieces
//! verified, and blame for pieces that fail their hash.
//!
//! - A block is accepted only if we requested it from that peer, or gave the request up
//!   (cancel, choke, time-out) and it is still useful; other blocks are unrequested, and
//!   a peer past [`MAX_UNREQUESTED`] of them is dropped (BEP 6 asks to close at once; a
//!   little slack costs nothing).
//! - `Verify` is emitted once per complete piece, after every write of it came back.
//! - Blame: a failed piece sent wholly by one peer is a strike against it, and
//!   [`BAN_STRIKES`] strikes ban it. A failed piece with several senders blames nobody
//!   (an honest peer must not pay for a liar's blocks): it goes on parole
//!   ([`crate::torrent::picker::Picker::set_parole`]), so its next download comes from one
//!   peer alone and a second failure has a single culprit.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BLOCK_SIZE, BlockRef, PieceIndex};
use rill_common::tracker::AnnounceEvent;
use rill_common::wire::Message;

use super::messages::wants;
use super::{Action, TorrentState};
use crate::torrent::PeerKey;
use crate::torrent::picker::{BlockState, PeerSpeed};

/// Unrequested blocks tolerated from a peer before it is dropped.
pub const MAX_UNREQUESTED: u32 = 16;
/// Failed pieces sent wholly by one peer after which it is banned.
pub const BAN_STRIKES: u32 = 2;
/// Requests outstanding this long without a block are given up and asked elsewhere.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a piece a peer rejected or stalled on is not asked of it again.
pub const REJECT_MEMORY: Duration = Duration::from_secs(15);
/// A request this old is given up if blocks asked after it have arrived since.
pub const BLOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How fast a peer sends, for the picker: fast peers can fetch a whole piece in 4 s.
fn speed_class(rate: f64, piece_len: u32) -> PeerSpeed {
    if rate * 4.0 >= f64::from(piece_len) {
        PeerSpeed::Fast
    } else if rate < f64::from(BLOCK_SIZE) / 4.0 {
        PeerSpeed::Slow
    } else {
        PeerSpeed::Medium
    }
}

/// How many free slots a peer's pipeline of `depth` needs, with `outstanding` requests in
/// flight, before it is topped up: 1 for an empty or shallow pipeline, and 1/16 of a deep one
/// (up to [`MAX_REFILL_SLACK`]). A fast peer then gets its requests in bursts (one `write`, one
/// pick for a run of blocks, often a whole piece) rather than one after every block, while
/// its queue never drops below 15/16 of the depth its rate calls for.
fn refill_slack(depth: usize, outstanding: usize) -> usize {
    if outstanding == 0 {
        1
    } else {
        (depth / 16).clamp(1, MAX_REFILL_SLACK)
    }
}

/// The largest burst [`refill_slack`] waits for: two 512 KiB pieces of blocks.
pub const MAX_REFILL_SLACK: usize = 64;

impl TorrentState {
    /// Tops up the peer's request pipeline to the depth its rate and `reqq` call for
    /// (one request for a snubbed peer); while it chokes us, only allowed fast pieces.
    pub(super) fn fill_requests(&mut self, id: PeerKey, now: Instant, out: &mut Vec<Action>) {
        if self.failed || self.stopped || self.missing == 0 {
            return;
        }
        let snubbed = self.choker.is_snubbed(id, now);
        let rate = self.choker.download_rate(id, now);
        let piece_len = self.picker.piece_len(PieceIndex(0));
        let count = self.picker.piece_count();
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.am_interested || (peer.peer_choking && peer.allowed_fast_in.is_empty()) {
            return;
        }
        let depth = match snubbed {
            true => 1,
            false => self.queue.depth(rate, peer.reqq),
        };
        let outstanding = peer.requests_out.len();
        if outstanding + refill_slack(depth, outstanding) > depth {
            return;
        }
        let masked = if peer.peer_choking {
            let mut only = Bitfield::new(count);
            for piece in peer.allowed_fast_in.iter().filter(|p| peer.has.get(**p)) {
                only.set(*piece, true);
            }
            Some(only)
        } else if !peer.rejected.is_empty() {
            peer.rejected
                .retain(|_, at| now.saturating_duration_since(*at) < REJECT_MEMORY);
            let mut has = peer.has.clone();
            for piece in peer.rejected.keys() {
                has.set(*piece, false);
            }
            Some(has)
        } else {
            None
        };
        let has = masked.as_ref().unwrap_or(&peer.has);
        let speed = speed_class(rate, piece_len);
        let blocks = self
            .picker
            .pick(id, has, speed, depth - outstanding, &mut self.rng);
        if outstanding == 0 && !blocks.is_empty() {
            peer.request_progress = now;
        }
        for block in blocks {
            peer.requests_out.insert(block, now);
            peer.send(Message::Request(block), now, out);
        }
    }

    /// A `piece` message: accept the block if requested (or given up and still useful),
    /// hand it to storage, cancel end-game duplicates, and ask for more.
    pub(super) fn block_arrived(
        &mut self,
        id: PeerKey,
        piece: PieceIndex,
        begin: u32,
        data: Bytes,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        let length = u32::try_from(data.len()).map_err(|_| "block too long".to_string())?;
        let block = BlockRef {
            piece,
            begin,
            length,
        };
        self.downloaded += u64::from(length);
        self.down_rate.add(u64::from(length), now);
        self.choker.block_received(id, u64::from(length), now);
        let Some(peer) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        if peer.requests_out.remove(&block).is_some() {
            peer.request_progress = now;
        } else if !peer.take_given_up(block) {
            peer.unrequested += 1;
            if peer.unrequested > MAX_UNREQUESTED {
                return Err(format!("{} unrequested blocks", peer.unrequested));
            }
            return Ok(());
        }
        if let Some(BlockState::Free | BlockState::Requested(_)) = self.picker.block_state(block) {
            let cancels = self.picker.block_received(block, id);
            out.push(Action::Write(block, data));
            *self.writes.entry(piece).or_default() += 1;
            for (other, block) in cancels {
                if let Some(p) = self.peers.get_mut(&other)
                    && p.requests_out.remove(&block).is_some()
                {
                    p.give_up(block);
                    p.send(Message::Cancel(block), now, out);
                }
            }
        }
        self.fill_requests(id, now, out);
        Ok(())
    }

    /// A `reject request` (BEP 6): the block is free again; a piece rejected while the
    /// peer unchokes us is not asked from it again for [`REJECT_MEMORY`] or until it
    /// unchokes us anew, and one
    /// rejected while it chokes us leaves our allowed fast set, so there is no ping-pong.
    pub(super) fn request_rejected(&mut self, id: PeerKey, block: BlockRef, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if peer.requests_out.remove(&block).is_some() {
            self.picker.request_rejected(id, block);
            if peer.peer_choking {
                // It will not honour its allowed fast set after all (BEP 6 lets it).
                peer.allowed_fast_in.remove(&block.piece);
            } else {
                peer.rejected.insert(block.piece, now);
            }
            self.refill = true;
        } else {
            // The answer to a request we cancelled: nothing to do.
            peer.take_given_up(block);
        }
    }

    /// A `choke`: without the fast extension our requests are dropped (BEP 3); with it
    /// they stand until rejected or served (BEP 6).
    pub(super) fn peer_choked(&mut self, id: PeerKey, now: Instant, out: &mut Vec<Action>) {
        self.choker.set_peer_choking(id, true, now);
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.peer_choking = true;
        if !peer.fast {
            self.give_up_requests(id, false, now, out);
        }
    }

    /// Gives up every request outstanding to the peer (sending `cancel` if asked): the
    /// blocks are free for others, and late arrivals still welcome.
    pub(super) fn give_up_requests(
        &mut self,
        id: PeerKey,
        cancel: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let blocks = std::mem::take(&mut peer.requests_out);
        for block in blocks.keys() {
            self.picker.request_rejected(id, *block);
            peer.give_up(*block);
            if cancel {
                peer.send(Message::Cancel(*block), now, out);
            }
        }
        if !blocks.is_empty() {
            self.refill = true;
        }
    }

    /// A write came back: once a complete piece has no write outstanding, verify it.
    pub(super) fn block_written(&mut self, block: BlockRef, out: &mut Vec<Action>) {
        let piece = block.piece;
        let Some(pending) = self.writes.get_mut(&piece) else {
            return;
        };
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            self.writes.remove(&piece);
            if self.picker.is_complete(piece) && self.verifying.insert(piece) {
                out.push(Action::Verify(piece));
            }
        }
    }

    /// A hash check's result: pass → `have` to peers, interest updated, maybe completion;
    /// fail → the piece is fetched anew and its senders blamed.
    pub(super) fn piece_verified(
        &mut self,
        piece: PieceIndex,
        ok: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let asked = self.verifying.remove(&piece);
        if piece.get() >= self.picker.piece_count()
            || self.picker.have().get(piece)
            || (!ok && !asked)
        {
            return;
        }
        let wanted = wants(&self.priorities, self.picker.have(), piece);
        let senders = self.picker.piece_verified(piece, ok);
        if !ok {
            match senders[..] {
                [sender] => self.strike(sender, now, out),
                _ => self.picker.set_parole(piece),
            }
            self.refill = true;
            return;
        }
        let len = u64::from(self.picker.piece_len(piece));
        self.verified += len;
        if wanted {
            self.missing = self.missing.saturating_sub(1);
            self.left = self.left.saturating_sub(len);
        }
        let ids: Vec<PeerKey> = self.peers.keys().copied().collect();
        for id in ids {
            if let Some(peer) = self.peers.get_mut(&id) {
                if !peer.has.get(piece) {
                    peer.send(Message::Have(piece), now, out);
                } else if wanted {
                    peer.wanted = peer.wanted.saturating_sub(1);
                }
            }
            self.update_interest(id, now, out);
        }
        if self.missing == 0 && !self.completed {
            self.completed = true;
            out.push(Action::Completed);
            if !self.complete_at_start && !self.stopped {
                out.push(Action::Announce(AnnounceEvent::Completed));
            }
            self.choker.set_seeding(true);
        }
    }

    /// Counts a strike against the peer that alone sent a bad piece; bans it at
    /// [`BAN_STRIKES`].
    fn strike(&mut self, sender: PeerKey, now: Instant, out: &mut Vec<Action>) {
        let Some(who) = self.identity(sender) else {
            return;
        };
        let strikes = self.strikes.entry(who.ban_key()).or_default();
        *strikes += 1;
        if *strikes >= BAN_STRIKES {
            self.ban(who, now, out);
        }
    }
}
