//! The piece picker: which blocks to request from which peer (BEP 3 leaves the policy to
//! the client; this follows the usual one: rarest first, strict end game).
//!
//! Invariants (checked by the proptests in `picker/tests.rs`):
//! - every block of every piece is in exactly one [`BlockState`]: a piece we have is
//!   wholly `Verified`; any other piece is either untouched (all blocks `Free`) or
//!   *partial*, with each block `Free`, `Requested` (by a non-empty set of distinct peers)
//!   or `Received`;
//! - [`Picker::pick`] never returns a block of a piece we have, a piece the peer lacks,
//!   a piece of priority 0, or a block already received or already requested from that peer;
//! - outside the end game a block is requested from at most one peer; in the end game from
//!   at most [`END_GAME_MAX_REQUESTERS`], and [`Picker::block_received`] returns a cancel
//!   for every other peer it was requested from;
//! - availability is the sum of the bitfields added and not removed, plus the seeds.
//!
//! The policy, in order: partial pieces first (finish what was started), then new pieces:
//! random until [`RANDOM_FIRST_PIECES`] pieces are complete (to have something to trade
//! early), then rarest first, or in index order in sequential mode; higher priorities first.
//! A [`PeerSpeed::Fast`] peer takes whole pieces of its own rather than joining a partial
//! piece, so one slow peer does not hold up a piece a fast one could finish. When every
//! missing block is requested the end game begins: blocks are requested again from other
//! peers and cancelled elsewhere when one arrives.
//!
//! Parole: a piece that failed its hash with blocks from several peers (so the culprit is
//! unknown) is put on parole with [`Picker::set_parole`]: its next download goes to one
//! peer alone (no other peer joins, no end-game duplicates), so a second failure has a
//! single sender to blame. Ownership passes on if that peer leaves or rejects a block.

use std::collections::{HashMap, HashSet};

use rand::Rng;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BlockRef, PieceIndex, block_count};

use super::PeerKey;

/// Random pieces are picked until this many pieces are complete, then rarest first.
pub const RANDOM_FIRST_PIECES: u32 = 4;
/// In the end game, a block is requested from at most this many peers at once.
pub const END_GAME_MAX_REQUESTERS: usize = 3;

/// Errors building a [`Picker`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PickerError {
    /// The piece length is 0.
    #[error("piece length is 0")]
    ZeroPieceLength,
    /// The torrent has more pieces than a `u32` counts.
    #[error("too many pieces for {total_len} bytes in pieces of {piece_len}")]
    TooManyPieces {
        /// Total length of the torrent.
        total_len: u64,
        /// Length of a piece.
        piece_len: u32,
    },
    /// The priority list does not have one entry per piece.
    #[error("{got} priorities for {pieces} pieces")]
    PriorityCount {
        /// Entries given.
        got: usize,
        /// Pieces in the torrent.
        pieces: u32,
    },
}

/// A hint of how fast a peer sends, for whole-piece picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerSpeed {
    /// Slower than most.
    Slow,
    /// Neither slow nor fast.
    Medium,
    /// Fast enough to get whole pieces to itself.
    Fast,
}

/// The state of one block, as [`Picker::block_state`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockState {
    /// Not requested from anyone.
    Free,
    /// Requested from these peers (more than one only in the end game).
    Requested(Vec<PeerKey>),
    /// Received (from this peer) and handed on to be written; the piece awaits verification.
    Received(PeerKey),
    /// Part of a piece we have.
    Verified,
}

/// A started piece that is not verified yet.
#[derive(Clone, Debug)]
struct Partial {
    blocks: Vec<BlockState>,
    /// The fast peer this piece was started for, if any.
    owner: Option<PeerKey>,
    /// The speed class of the peer that started it.
    speed: PeerSpeed,
    /// On parole: only `owner` may request its blocks (anyone may claim it while unowned).
    exclusive: bool,
}

impl Partial {
    fn free_blocks(&self) -> usize {
        self.blocks
            .iter()
            .filter(|b| **b == BlockState::Free)
            .count()
    }
}

/// The piece picker; see the module docs for its policy and invariants.
#[derive(Clone, Debug)]
pub struct Picker {
    piece_len: u32,
    last_piece_len: u32,
    piece_count: u32,
    /// How many peers (with a bitfield, not counting seeds) have each piece.
    availability: Vec<u32>,
    /// Peers that have everything, counted apart so `have all` is O(1).
    seeds: u32,
    have: Bitfield,
    priority: Vec<u8>,
    sequential: bool,
    partials: HashMap<u32, Partial>,
    /// Pieces open for a new start (priority above 0, not had, not partial), one bit each,
    /// most significant bit first as in a BEP 3 bitfield, so the scan for a new piece
    /// combines them with a peer's bitfield 64 pieces at a time.
    open: Vec<u64>,
    /// Pieces on parole, not started yet: the next start is exclusive to one peer.
    parole: HashSet<u32>,
}

impl Picker {
    /// A picker for `total_len` bytes in pieces of `piece_len`, with nothing had, every
    /// piece at priority 1 and no peers.
    pub fn new(total_len: u64, piece_len: u32) -> Result<Self, PickerError> {
        if piece_len == 0 {
            return Err(PickerError::ZeroPieceLength);
        }
        let count = total_len.div_ceil(u64::from(piece_len));
        let piece_count = u32::try_from(count).map_err(|_| PickerError::TooManyPieces {
            total_len,
            piece_len,
        })?;
        let rem = (total_len % u64::from(piece_len)) as u32;
        let last_piece_len = if rem == 0 { piece_len } else { rem };
        Ok(Picker {
            piece_len,
            last_piece_len,
            piece_count,
            availability: vec![0; piece_count as usize],
            seeds: 0,
            have: Bitfield::new(piece_count),
            priority: vec![1; piece_count as usize],
            sequential: false,
            partials: HashMap::new(),
            open: Vec::new(),
            parole: HashSet::new(),
        }
        .with_open_rebuilt())
    }

    /// The number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// The length of a piece in bytes (the last may be short; 0 out of range).
    pub fn piece_len(&self, piece: PieceIndex) -> u32 {
        match piece.get() {
            i if i >= self.piece_count => 0,
            i if i + 1 == self.piece_count => self.last_piece_len,
            _ => self.piece_len,
        }
    }

    /// The pieces we have.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Whether every wanted piece (priority above 0) is had.
    pub fn is_finished(&self) -> bool {
        // A wanted piece not had is either open or partial.
        self.open.iter().all(|w| *w == 0) && self.partials.keys().all(|i| self.prio(*i) == 0)
    }

    /// How many connected peers have a piece (0 out of range).
    pub fn availability(&self, piece: PieceIndex) -> u32 {
        self.availability
            .get(piece.as_usize())
            .map_or(0, |a| a + self.seeds)
    }

    /// Sets each piece's priority (0: not wanted, never requested; higher first), as the
    /// caller computes them from the file selection.
    pub fn set_priorities(&mut self, priorities: Vec<u8>) -> Result<(), PickerError> {
        if priorities.len() != self.piece_count as usize {
            return Err(PickerError::PriorityCount {
                got: priorities.len(),
                pieces: self.piece_count,
            });
        }
        self.priority = priorities;
        self.rebuild_open();
        Ok(())
    }

    /// Turns sequential mode (new pieces in index order, for streaming) on or off.
    pub fn set_sequential(&mut self, sequential: bool) {
        self.sequential = sequential;
    }

    /// Counts a peer's bitfield in the availability (BEP 3 `bitfield`).
    pub fn add_peer_bitfield(&mut self, has: &Bitfield) {
        for piece in has.iter() {
            if let Some(a) = self.availability.get_mut(piece.as_usize()) {
                *a += 1;
            }
        }
    }

    /// Removes a peer's bitfield from the availability (the peer left, or sent a new one).
    pub fn remove_peer_bitfield(&mut self, has: &Bitfield) {
        for piece in has.iter() {
            if let Some(a) = self.availability.get_mut(piece.as_usize()) {
                *a = a.saturating_sub(1);
            }
        }
    }

    /// Counts a peer's `have` of one piece (the caller checks it was not already had).
    pub fn peer_have(&mut self, piece: PieceIndex) {
        if let Some(a) = self.availability.get_mut(piece.as_usize()) {
            *a += 1;
        }
    }

    /// Counts a peer that has every piece (BEP 6 `have all`).
    pub fn add_seed(&mut self) {
        self.seeds += 1;
    }

    /// Removes a peer counted with [`Picker::add_seed`].
    pub fn remove_seed(&mut self) {
        self.seeds = self.seeds.saturating_sub(1);
    }

    /// The state of a block of a valid, aligned `BlockRef`; `None` for a block that is not one.
    pub fn block_state(&self, block: BlockRef) -> Option<BlockState> {
        let n = self.block_number(block)?;
        if self.have.get(block.piece) {
            return Some(BlockState::Verified);
        }
        Some(match self.partials.get(&block.piece.get()) {
            None => BlockState::Free,
            Some(p) => p.blocks.get(n)?.clone(),
        })
    }

    /// Whether every block of a piece is received, so it can be verified.
    pub fn is_complete(&self, piece: PieceIndex) -> bool {
        self.partials.get(&piece.get()).is_some_and(|p| {
            p.blocks
                .iter()
                .all(|b| matches!(b, BlockState::Received(_)))
        })
    }

    /// The blocks currently requested from `peer`.
    pub fn requests_of(&self, peer: PeerKey) -> Vec<BlockRef> {
        let mut out = Vec::new();
        for (&index, partial) in &self.partials {
            for (n, state) in partial.blocks.iter().enumerate() {
                if matches!(state, BlockState::Requested(ps) if ps.contains(&peer)) {
                    out.extend(self.block_ref(index, n));
                }
            }
        }
        out.sort();
        out
    }

    /// Picks up to `want` blocks to request from `peer`, which has `peer_has` and sends at
    /// `speed`, and marks them requested by it.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        speed: PeerSpeed,
        want: usize,
        rng: &mut impl Rng,
    ) -> Vec<BlockRef> {
        let mut out = Vec::new();
        if want == 0 {
            return out;
        }
        // A fast peer keeps to its own pieces; others join any piece not kept by a fast peer.
        let fast = speed == PeerSpeed::Fast;
        self.pick_partials(peer, peer_has, speed, want, &mut out, |p| {
            p.owner == Some(peer) || (!fast && p.owner.is_none())
        });
        while out.len() < want {
            let Some(index) = self.best_new_piece(peer_has, rng) else {
                break;
            };
            let blocks = block_count(self.piece_len(PieceIndex(index))) as usize;
            let exclusive = self.parole.remove(&index);
            let owner = (speed == PeerSpeed::Fast || exclusive).then_some(peer);
            self.set_open(index, false);
            self.partials.insert(
                index,
                Partial {
                    blocks: vec![BlockState::Free; blocks],
                    owner,
                    speed,
                    exclusive,
                },
            );
            self.take_free_blocks(index, peer, want, &mut out);
        }
        if out.len() < want {
            // Last resort before the end game: pieces shared with, or kept by, others.
            self.pick_partials(peer, peer_has, speed, want, &mut out, |_| true);
        }
        if out.len() < want && self.in_end_game() {
            self.pick_end_game(peer, peer_has, want, &mut out);
        }
        out
    }

    /// Whether the end game is on: every missing wanted block that some connected peer
    /// could send is already requested or received. (Pieces nobody has do not hold it back.)
    pub fn in_end_game(&self) -> bool {
        let open_available = (0u32..).zip(&self.open).any(|(w, bits)| {
            let mut bits = *bits;
            while bits != 0 {
                let bit = bits.leading_zeros();
                bits &= !(1u64 << (63 - bit));
                if self.availability(PieceIndex(w * 64 + bit)) > 0 {
                    return true;
                }
            }
            false
        });
        !open_available
            && self.partials.iter().all(|(i, p)| {
                self.prio(*i) == 0 || p.free_blocks() == 0 || self.availability(PieceIndex(*i)) == 0
            })
    }

    /// Records a block arriving from `from` and returns the other peers it is still
    /// requested from, to send them `cancel` (the end game). A block that is not one of
    /// ours, already received or of a piece we have changes nothing and returns nothing.
    pub fn block_received(&mut self, block: BlockRef, from: PeerKey) -> Vec<(PeerKey, BlockRef)> {
        let Some(n) = self.block_number(block) else {
            return Vec::new();
        };
        if self.have.get(block.piece) {
            return Vec::new();
        }
        let blocks = block_count(self.piece_len(block.piece)) as usize;
        self.set_open(block.piece.get(), false);
        // A block may arrive for a piece not started (a timeout gave it up): keep it
        // rather than fetch it again.
        let partial = self
            .partials
            .entry(block.piece.get())
            .or_insert_with(|| Partial {
                blocks: vec![BlockState::Free; blocks],
                owner: None,
                speed: PeerSpeed::Medium,
                exclusive: self.parole.remove(&block.piece.get()),
            });
        let Some(state) = partial.blocks.get_mut(n) else {
            return Vec::new();
        };
        let cancels = match state {
            BlockState::Received(_) | BlockState::Verified => return Vec::new(),
            BlockState::Free => Vec::new(),
            BlockState::Requested(peers) => peers
                .iter()
                .filter(|p| **p != from)
                .map(|p| (*p, block))
                .collect(),
        };
        *state = BlockState::Received(from);
        cancels
    }

    /// Gives up the request of `block` from `peer` (it sent `reject request`, or timed out):
    /// the block is free again unless other peers still have it requested.
    pub fn request_rejected(&mut self, peer: PeerKey, block: BlockRef) {
        let Some(n) = self.block_number(block) else {
            return;
        };
        if let Some(partial) = self.partials.get_mut(&block.piece.get()) {
            if partial.exclusive && partial.owner == Some(peer) {
                // The owner will not send it: let another peer take the piece over.
                partial.owner = None;
            }
            if let Some(state) = partial.blocks.get_mut(n) {
                unrequest(state, peer);
            }
        }
    }

    /// Puts a piece that failed with blocks from several peers on parole: its next
    /// download is exclusive to one peer (see the module docs).
    pub fn set_parole(&mut self, piece: PieceIndex) {
        // Takes effect when the piece is next started (a piece in progress keeps its peers).
        if piece.get() < self.piece_count && !self.have.get(piece) {
            self.parole.insert(piece.get());
        }
    }

    /// Forgets a peer that left: its requests are given up and the pieces started for it
    /// are open to everyone. (Its bitfield is removed with [`Picker::remove_peer_bitfield`].)
    pub fn peer_gone(&mut self, peer: PeerKey) {
        for partial in self.partials.values_mut() {
            if partial.owner == Some(peer) {
                partial.owner = None;
            }
            for state in &mut partial.blocks {
                unrequest(state, peer);
            }
        }
        let idle: Vec<u32> = self
            .partials
            .iter()
            .filter(|(_, p)| p.blocks.iter().all(|b| *b == BlockState::Free))
            .map(|(i, _)| *i)
            .collect();
        for index in idle {
            if self.partials.remove(&index).is_some_and(|p| p.exclusive) {
                self.parole.insert(index);
            }
            self.refresh_open(index);
        }
    }

    /// Records the result of a piece's hash check and returns the peers that sent its
    /// blocks (on failure, to blame them). Passed: the piece is had. Failed: every block
    /// is free again and the piece will be fetched anew. Verifying a piece found on disk
    /// at start-up is a pass on a piece with no blocks received.
    pub fn piece_verified(&mut self, piece: PieceIndex, ok: bool) -> Vec<PeerKey> {
        if piece.get() >= self.piece_count {
            return Vec::new();
        }
        let mut senders: Vec<PeerKey> = self
            .partials
            .remove(&piece.get())
            .map(|p| {
                p.blocks
                    .iter()
                    .filter_map(|b| match b {
                        BlockState::Received(p) => Some(*p),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        senders.sort();
        senders.dedup();
        if ok {
            self.have.set(piece, true);
            self.parole.remove(&piece.get());
        }
        self.refresh_open(piece.get());
        senders
    }

    fn with_open_rebuilt(mut self) -> Self {
        self.rebuild_open();
        self
    }

    fn rebuild_open(&mut self) {
        self.open = vec![0; self.piece_count.div_ceil(64) as usize];
        for index in 0..self.piece_count {
            self.refresh_open(index);
        }
    }

    /// Recomputes whether a piece is open for a new start.
    fn refresh_open(&mut self, index: u32) {
        let open = self.prio(index) > 0
            && !self.have.get(PieceIndex(index))
            && !self.partials.contains_key(&index);
        self.set_open(index, open);
    }

    fn set_open(&mut self, index: u32, open: bool) {
        if let Some(word) = self.open.get_mut((index / 64) as usize) {
            let bit = 1u64 << (63 - index % 64);
            if open {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    fn prio(&self, index: u32) -> u8 {
        self.priority.get(index as usize).copied().unwrap_or(0)
    }

    fn block_number(&self, block: BlockRef) -> Option<usize> {
        let piece_len = self.piece_len(block.piece);
        let n = block.block_number()?;
        let expected = BlockRef::nth(block.piece, piece_len, n)?;
        (expected == block).then_some(n as usize)
    }

    fn block_ref(&self, index: u32, n: usize) -> Option<BlockRef> {
        let piece = PieceIndex(index);
        BlockRef::nth(piece, self.piece_len(piece), u32::try_from(n).ok()?)
    }

    /// Whether a piece may be requested from a peer at all.
    fn wanted_from(&self, index: u32, peer_has: &Bitfield) -> bool {
        self.prio(index) > 0 && !self.have.get(PieceIndex(index)) && peer_has.get(PieceIndex(index))
    }
}

/// Removes `peer` from a requested block, freeing it if nobody else has it requested.
fn unrequest(state: &mut BlockState, peer: PeerKey) {
    if let BlockState::Requested(peers) = state {
        peers.retain(|p| *p != peer);
        if peers.is_empty() {
            *state = BlockState::Free;
        }
    }
}

mod select;
#[cfg(test)]
mod tests;
