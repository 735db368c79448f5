//! SHA-1 of pieces (BEP 3) fed as their blocks are written, so verifying a piece whose
//! blocks came in order reads nothing back.
//!
//! Invariants:
//! - a piece's partial hash covers exactly its bytes `0..upto`, and those are the bytes last
//!   written there: a write that starts before `upto` (a block written again) drops the
//!   partial hash, and the piece is hashed from the start again;
//! - blocks written past `upto` (out of order) are not hashed here: verification reads back
//!   `upto..len` from disk, so what is checked is always what is on disk;
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

/// The partial hashes of the pieces being written.
#[derive(Default)]
pub(super) struct Hashers {
    partial: HashMap<PieceIndex, Partial>,
}

impl Hashers {
    /// `blocks` (contiguous, in order) were written into `piece` from byte `begin`.
    pub fn written(&mut self, piece: PieceIndex, begin: u32, blocks: &[Bytes]) {
        let partial = self.partial.entry(piece).or_default();
        if begin < partial.upto {
            // Bytes already hashed were written again: start over, reading back at the end.
            *partial = Partial::default();
        }
        if begin != partial.upto {
            return;
        }
        for data in blocks {
            partial.sha.update(data);
            partial.upto = partial
                .upto
                .saturating_add(u32::try_from(data.len()).unwrap_or(u32::MAX));
        }
    }

    /// The piece's hash so far (nothing hashed if none), forgetting it.
    pub fn take(&mut self, piece: PieceIndex) -> Partial {
        self.partial.remove(&piece).unwrap_or_default()
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
    fn out_of_order_blocks_leave_the_rest_to_read_back() {
        let data = piece_data();
        let mut hashers = Hashers::default();
        let piece = PieceIndex(1);
        for index in [0, 2, 1, 3] {
            hashers.written(piece, begin(index), &[block(&data, index)]);
        }
        let partial = hashers.take(piece);
        assert_eq!(partial.upto, 8, "blocks 0 and 1 hashed, 2 and 3 not");
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
