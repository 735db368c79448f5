//! SHA-1 of pieces (BEP 3) fed as their blocks are written, so verifying a piece whose
//! blocks came in order reads nothing back.
//!
//! Invariants:
//! - a piece's partial hash covers exactly its bytes `0..upto`, and those are the bytes last
//!   written there: a write that starts before `upto` (a block written again) drops the
//!   partial hash, and the piece is hashed from the start again;
//! - a run written past `upto` (out of order) is kept (its `Bytes`, the very bytes written)
//!   until the bytes before it are hashed, then hashed in turn; at most [`MAX_PENDING`] bytes
//!   are kept over all pieces (they pin their receive buffers), and a run that does not fit,
//!   or overlaps one kept, is dropped: verification reads back `upto..len` from disk, so what
//!   is checked is always what is on disk;
//! - [`Hashers::take`] forgets the piece, so a piece fetched again after a failed check
//!   starts from nothing.
//!
//! Pure: no I/O; the disk worker feeds it what it wrote.

use std::collections::HashMap;

use bytes::Bytes;
use rill_common::pieces::PieceIndex;
use sha1::{Digest, Sha1};

/// A piece's hash so far: the SHA-1 state over its bytes `0..upto`.
#[derive(Clone, Default)]
pub(super) struct Partial {
    /// The hash state.
    pub sha: Sha1,
    /// How many bytes from the piece's start it covers.
    pub upto: u32,
}

/// Bytes of out-of-order runs kept at most, over all pieces (each run pins the receive
/// buffers its blocks are slices of).
pub(super) const MAX_PENDING: usize = 512 << 10;

/// A run written past its piece's `upto`: where it starts, its blocks, its length.
type Run = (u32, Vec<Bytes>, usize);

/// The partial hashes of the pieces being written.
#[derive(Default)]
pub(super) struct Hashers {
    partial: HashMap<PieceIndex, Partial>,
    /// Per piece, runs written past `upto`, waiting for the bytes before them.
    pending: HashMap<PieceIndex, Vec<Run>>,
    /// Bytes in `pending`.
    pending_len: usize,
}

fn run_len(blocks: &[Bytes]) -> usize {
    blocks.iter().map(Bytes::len).sum()
}

fn hash_run(partial: &mut Partial, blocks: &[Bytes]) {
    for data in blocks {
        partial.sha.update(data);
        partial.upto = partial
            .upto
            .saturating_add(u32::try_from(data.len()).unwrap_or(u32::MAX));
    }
}

impl Hashers {
    /// `blocks` (contiguous, in order) were written into `piece` from byte `begin`.
    pub fn written(&mut self, piece: PieceIndex, begin: u32, blocks: &[Bytes]) {
        let len = run_len(blocks);
        let end = u64::from(begin) + len as u64;
        let overlaps_pending = self.pending.get(&piece).is_some_and(|runs| {
            runs.iter().any(|(at, _, run)| {
                u64::from(*at) < end && u64::from(begin) < u64::from(*at) + *run as u64
            })
        });
        let upto = self.partial.get(&piece).map_or(0, |partial| partial.upto);
        if begin < upto || overlaps_pending {
            // Bytes already hashed or kept were written again: start over, reading back at
            // the end.
            self.partial.remove(&piece);
            self.forget_pending(piece);
        }
        let partial = self.partial.entry(piece).or_default();
        if begin != partial.upto {
            if self.pending_len + len <= MAX_PENDING {
                self.pending_len += len;
                let runs = self.pending.entry(piece).or_default();
                runs.push((begin, blocks.to_vec(), len));
            }
            return;
        }
        hash_run(partial, blocks);
        // Runs kept for this piece that now follow on.
        while let Some(runs) = self.pending.get_mut(&piece) {
            let Some(next) = runs.iter().position(|(at, _, _)| *at == partial.upto) else {
                break;
            };
            let (_, blocks, len) = runs.swap_remove(next);
            self.pending_len -= len;
            hash_run(partial, &blocks);
        }
        if self.pending.get(&piece).is_some_and(Vec::is_empty) {
            self.pending.remove(&piece);
        }
    }

    fn forget_pending(&mut self, piece: PieceIndex) {
        if let Some(runs) = self.pending.remove(&piece) {
            self.pending_len -= runs.iter().map(|(_, _, len)| len).sum::<usize>();
        }
    }

    /// The piece's hash so far (nothing hashed if none), forgetting it.
    pub fn take(&mut self, piece: PieceIndex) -> Partial {
        self.forget_pending(piece);
        self.partial.remove(&piece).unwrap_or_default()
    }

    /// Bytes of out-of-order runs kept.
    #[cfg(test)]
    pub fn pending_len(&self) -> usize {
        self.pending_len
    }

    /// Pieces with a partial hash.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = 4;

    fn piece_data() -> Vec<u8> {
        (0..16u8).collect()
    }

    fn block(data: &[u8], index: usize) -> Bytes {
        Bytes::copy_from_slice(&data[index * BLOCK..(index + 1) * BLOCK])
    }

    fn begin(index: usize) -> u32 {
        (index * BLOCK) as u32
    }

    /// What verification computes: the partial hash, then the rest read back from `disk`.
    fn finish(partial: Partial, disk: &[u8]) -> [u8; 20] {
        let mut sha = partial.sha;
        sha.update(&disk[partial.upto as usize..]);
        sha.finalize().into()
    }

    fn expected(data: &[u8]) -> [u8; 20] {
        Sha1::digest(data).into()
    }

    #[test]
    fn blocks_in_order_are_hashed_whole() {
        let data = piece_data();
        let mut hashers = Hashers::default();
        let piece = PieceIndex(3);
        for index in 0..4 {
            hashers.written(piece, begin(index), &[block(&data, index)]);
        }
        let partial = hashers.take(piece);
        assert_eq!(partial.upto, 16, "nothing to read back");
        assert_eq!(finish(partial, &data), expected(&data));
        assert_eq!(hashers.len(), 0);
    }

    #[test]
    fn a_run_of_blocks_is_hashed_in_one_call() {
        let data = piece_data();
        let mut hashers = Hashers::default();
        let piece = PieceIndex(0);
        hashers.written(piece, 0, &[block(&data, 0), block(&data, 1)]);
        hashers.written(piece, begin(2), &[block(&data, 2), block(&data, 3)]);
        let partial = hashers.take(piece);
        assert_eq!(partial.upto, 16);
        assert_eq!(finish(partial, &data), expected(&data));
    }

    #[test]
    fn out_of_order_blocks_are_kept_until_their_turn() {
        let data = piece_data();
        let mut hashers = Hashers::default();
        let piece = PieceIndex(1);
        for index in [0, 3, 2, 1] {
            hashers.written(piece, begin(index), &[block(&data, index)]);
        }
        assert_eq!(hashers.pending_len(), 0, "all hashed in the end");
        let partial = hashers.take(piece);
        assert_eq!(partial.upto, 16, "nothing to read back");
        assert_eq!(finish(partial, &data), expected(&data));
    }

    #[test]
    fn a_piece_with_a_gap_leaves_the_rest_to_read_back() {
        let data = piece_data();
        let mut hashers = Hashers::default();
        let piece = PieceIndex(1);
        for index in [0, 2, 3] {
            hashers.written(piece, begin(index), &[block(&data, index)]);
        }
        assert_eq!(hashers.pending_len(), 2 * BLOCK);
        let partial = hashers.take(piece);
        assert_eq!(partial.upto, 4, "block 0 hashed, the rest read back");
        assert_eq!(
            hashers.pending_len(),
            0,
            "taking the piece drops what it kept"
        );
        assert_eq!(finish(partial, &data), expected(&data));
    }

    #[test]
    fn a_kept_run_written_again_is_dropped_for_the_disk() {
        let data = piece_data();
        let mut hashers = Hashers::default();
        let piece = PieceIndex(4);
        hashers.written(piece, 0, &[block(&data, 0)]);
        hashers.written(piece, begin(2), &[block(&data, 2)]);
        // Block 2 again with other bytes: the disk holds these now.
        let mut disk = data.clone();
        disk[2 * BLOCK..3 * BLOCK].copy_from_slice(&[9; BLOCK]);
        hashers.written(piece, begin(2), &[Bytes::from_static(&[9; BLOCK])]);
        hashers.written(piece, begin(1), &[block(&data, 1)]);
        hashers.written(piece, begin(3), &[block(&data, 3)]);
        let partial = hashers.take(piece);
        assert_eq!(finish(partial, &disk), expected(&disk));
        assert_eq!(hashers.pending_len(), 0);
    }

    #[test]
    fn runs_past_the_cap_are_not_kept() {
        let mut hashers = Hashers::default();
        let big = Bytes::from(vec![1u8; MAX_PENDING / 2]);
        for piece in 0..3 {
            hashers.written(PieceIndex(piece), 16, std::slice::from_ref(&big));
        }
        assert_eq!(
            hashers.pending_len(),
            MAX_PENDING,
            "the third run is left to the disk"
        );
        let data: Vec<u8> = std::iter::repeat_n(0u8, 16)
            .chain(std::iter::repeat_n(1u8, MAX_PENDING / 2))
            .collect();
        hashers.written(PieceIndex(2), 0, &[Bytes::from(vec![0u8; 16])]);
        let partial = hashers.take(PieceIndex(2));
        assert_eq!(partial.upto, 16, "the run past the cap is read back");
        assert_eq!(finish(partial, &data), expected(&data));
        hashers.written(PieceIndex(0), 0, &[Bytes::from(vec![0u8; 16])]);
        let partial = hashers.take(PieceIndex(0));
        assert_eq!(partial.upto as usize, data.len(), "the kept run was hashed");
        assert_eq!(finish(partial, &data), expected(&data));
    }

    #[test]
    fn a_block_written_again_drops_the_partial_hash() {
        let data = piece_data();
        let mut hashers = Hashers::default();
        let piece = PieceIndex(1);
        for index in 0..3 {
            hashers.written(piece, begin(index), &[block(&data, index)]);
        }
        // Block 1 again (with other bytes: the disk now holds these).
        let mut disk = data.clone();
        disk[BLOCK..2 * BLOCK].copy_from_slice(&[9; BLOCK]);
        hashers.written(piece, begin(1), &[Bytes::from_static(&[9; BLOCK])]);
        hashers.written(piece, begin(3), &[block(&data, 3)]);
        let partial = hashers.take(piece);
        assert_eq!(partial.upto, 0, "all read back");
        let got = finish(partial, &disk);
        assert_eq!(got, expected(&disk));
        assert_ne!(
            got,
            expected(&data),
            "the rewritten bytes are the ones checked"
        );
    }

    #[test]
    fn a_duplicate_first_block_restarts_from_it() {
        let data = piece_data();
        let mut hashers = Hashers::default();
        let piece = PieceIndex(2);
        hashers.written(piece, 0, &[block(&data, 0)]);
        hashers.written(piece, 0, &[block(&data, 0)]);
        for index in 1..4 {
            hashers.written(piece, begin(index), &[block(&data, index)]);
        }
        let partial = hashers.take(piece);
        assert_eq!(partial.upto, 16);
        assert_eq!(finish(partial, &data), expected(&data));
    }

    #[test]
    fn a_corrupt_block_fails_and_the_refetch_starts_afresh() {
        let data = piece_data();
        let mut hashers = Hashers::default();
        let piece = PieceIndex(5);
        let mut bad = data.clone();
        bad[5] ^= 1;
        for index in 0..4 {
            hashers.written(piece, begin(index), &[block(&bad, index)]);
        }
        let partial = hashers.take(piece);
        assert_ne!(
            finish(partial, &bad),
            expected(&data),
            "the bad piece fails"
        );
        // Fetched again: the new blocks are hashed from a fresh state.
        for index in 0..4 {
            hashers.written(piece, begin(index), &[block(&data, index)]);
        }
        let partial = hashers.take(piece);
        assert_eq!(partial.upto, 16);
        assert_eq!(finish(partial, &data), expected(&data));
    }
}
