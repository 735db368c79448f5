//! How [`Picker::pick`] chooses: among partial pieces, new pieces (a scan of the open
//! set 64 pieces at a time) and, in the end game, blocks requested from other peers.

use rand::Rng;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BlockRef, PieceIndex};

use super::{
    BlockState, END_GAME_MAX_REQUESTERS, Partial, PeerKey, PeerSpeed, Picker, RANDOM_FIRST_PIECES,
};

impl Picker {
    /// Takes free blocks from partial pieces that pass `allowed`, best first: priority,
    /// then the peer's own pieces and its speed class, then rarest (or lowest index).
    pub(super) fn pick_partials(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        speed: PeerSpeed,
        want: usize,
        out: &mut Vec<BlockRef>,
        allowed: impl Fn(&Partial) -> bool,
    ) {
        let mut candidates: Vec<_> = self
            .partials
            .iter()
            .filter(|(i, p)| {
                self.wanted_from(**i, peer_has)
                    && p.free_blocks() > 0
                    && (!p.exclusive || p.owner.is_none_or(|o| o == peer))
                    && allowed(p)
            })
            .map(|(&i, p)| {
                let order = if self.sequential {
                    i
                } else {
                    self.availability(PieceIndex(i))
                };
                let key = (
                    std::cmp::Reverse(self.prio(i)),
                    p.owner != Some(peer),
                    p.speed != speed,
                    order,
                    i,
                );
                (key, i)
            })
            .collect();
        candidates.sort_unstable();
        for (_, index) in candidates {
            if out.len() >= want {
                break;
            }
            self.take_free_blocks(index, peer, want, out);
        }
    }

    pub(super) fn take_free_blocks(
        &mut self,
        index: u32,
        peer: PeerKey,
        want: usize,
        out: &mut Vec<BlockRef>,
    ) {
        let piece = PieceIndex(index);
        let piece_len = self.piece_len(piece);
        let Some(partial) = self.partials.get_mut(&index) else {
            return;
        };
        if partial.exclusive {
            partial.owner = Some(peer);
        }
        for (n, state) in (0u32..).zip(partial.blocks.iter_mut()) {
            if out.len() >= want {
                break;
            }
            if *state == BlockState::Free
                && let Some(block) = BlockRef::nth(piece, piece_len, n)
            {
                *state = BlockState::Requested(vec![peer]);
                out.push(block);
            }
        }
    }

    /// The best piece nobody has started that the peer can give us.
    pub(super) fn best_new_piece(&self, peer_has: &Bitfield, rng: &mut impl Rng) -> Option<u32> {
        let words = self.open.len();
        if words == 0 {
            return None;
        }
        let random = !self.sequential && self.have.count() < RANDOM_FIRST_PIECES;
        // Scanning from a random piece breaks ties between equally rare pieces without
        // sorting them (one pass, no allocation): the start word's pieces from the start
        // on, the other words, then the start word's pieces before the start.
        let start = if self.sequential {
            0
        } else {
            rng.random_range(0..self.piece_count) as usize
        };
        let (sw, from_start) = (start / 64, u64::MAX >> (start % 64));
        let order = std::iter::once((sw, from_start))
            .chain((sw + 1..words).chain(0..sw).map(|w| (w, u64::MAX)))
            .chain(std::iter::once((sw, !from_start)));
        let peer_bytes = peer_has.as_bytes();
        let mut best: Option<((std::cmp::Reverse<u8>, u32), u32)> = None;
        for (w, mask) in order {
            let mut peer_word = [0u8; 8];
            if let Some(bytes) = peer_bytes.get(w * 8..) {
                for (dst, src) in peer_word.iter_mut().zip(bytes) {
                    *dst = *src;
                }
            }
            let mut bits =
                self.open.get(w).copied().unwrap_or(0) & u64::from_be_bytes(peer_word) & mask;
            while bits != 0 {
                let bit = bits.leading_zeros();
                bits &= !(1u64 << (63 - bit));
                let index = w as u32 * 64 + bit;
                let order = if self.sequential {
                    index
                } else if random {
                    0
                } else {
                    self.availability(PieceIndex(index))
                };
                let key = (std::cmp::Reverse(self.prio(index)), order);
                if best.is_none_or(|(k, _)| key < k) {
                    best = Some((key, index));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// End game: requests blocks already requested from others, fewest requesters first.
    pub(super) fn pick_end_game(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        want: usize,
        out: &mut Vec<BlockRef>,
    ) {
        let mut candidates = Vec::new();
        for (&index, partial) in &self.partials {
            if !self.wanted_from(index, peer_has) || partial.exclusive {
                continue;
            }
            for (n, state) in partial.blocks.iter().enumerate() {
                if let BlockState::Requested(peers) = state
                    && !peers.contains(&peer)
                    && peers.len() < END_GAME_MAX_REQUESTERS
                {
                    candidates.push((peers.len(), index, n));
                }
            }
        }
        candidates.sort_unstable();
        for (_, index, n) in candidates.into_iter().take(want - out.len()) {
            let Some(block) = self.block_ref(index, n) else {
                continue;
            };
            if let Some(BlockState::Requested(peers)) = self
                .partials
                .get_mut(&index)
                .and_then(|p| p.blocks.get_mut(n))
            {
                peers.push(peer);
                out.push(block);
            }
        }
    }
}
