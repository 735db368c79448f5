//! Piece indexes and blocks (the 16 KiB request unit, BEP 3).
//!
//! Invariants:
//! - a [`BlockRef`] built by [`BlockRef::new`] has `1 <= length <= BLOCK_SIZE` and
//!   `begin + length` fits in a `u32`; that is what Rill itself requests;
//! - a [`BlockRef`] decoded from the wire is only what the peer said: check it with
//!   [`BlockRef::check`] against the piece's real length before serving or accepting it.
//!
//! Request sizes: BEP 3 says "all current implementations use 2^14 (16 kiB), and close
//! connections which request an amount greater than that"; libtorrent rejects a request
//! longer than its block size (16 KiB, or the piece length if smaller). Old clients
//! (mainline before 2007, some Java clients) accepted up to 2^17 bytes. Rill serves up to
//! [`MAX_REQUEST_LEN`] (128 KiB) so such a peer still works, and only ever sends
//! [`BLOCK_SIZE`] requests.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::fmt;

use thiserror::Error;

/// The block size every current client requests: 16 KiB (BEP 3).
pub const BLOCK_SIZE: u32 = 16384;

/// The longest request Rill serves: 2^17 bytes, the old mainline limit (see module docs).
pub const MAX_REQUEST_LEN: u32 = 128 * 1024;

/// The index of a piece in a torrent (zero-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PieceIndex(pub u32);

impl PieceIndex {
    /// Wraps a raw index; it is not checked against a torrent.
    pub const fn new(index: u32) -> Self {
        PieceIndex(index)
    }

    /// Wraps `index` if it is below `piece_count`.
    pub fn checked(index: u32, piece_count: u32) -> Result<Self, BlockError> {
        if index < piece_count {
            Ok(PieceIndex(index))
        } else {
            Err(BlockError::PieceOutOfRange { index, piece_count })
        }
    }

    /// The raw index.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The index as a `usize`, for indexing local tables.
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u32> for PieceIndex {
    fn from(index: u32) -> Self {
        PieceIndex(index)
    }
}

/// Why a block reference is not acceptable.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum BlockError {
    /// A zero-length block.
    #[error("a block cannot be empty")]
    Empty,
    /// Longer than the limit that applies.
    #[error("block of {length} bytes is longer than the limit of {max}")]
    TooLong {
        /// The block's length.
        length: u32,
        /// The limit.
        max: u32,
    },
    /// `begin + length` runs past the end of the piece (or of `u32`).
    #[error("block {begin}+{length} runs past the end of a {piece_len}-byte piece")]
    PastPieceEnd {
        /// The block's offset in the piece.
        begin: u32,
        /// The block's length.
        length: u32,
        /// The piece's length.
        piece_len: u64,
    },
    /// A piece index at or past the piece count.
    #[error("piece {index} is out of range: the torrent has {piece_count} pieces")]
    PieceOutOfRange {
        /// The index.
        index: u32,
        /// The torrent's piece count.
        piece_count: u32,
    },
}

/// A block: `length` bytes at offset `begin` of piece `piece`, as in `request`, `cancel`
/// and `reject request` messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    /// The piece.
    pub piece: PieceIndex,
    /// The offset of the block in the piece.
    pub begin: u32,
    /// The block's length in bytes.
    pub length: u32,
}

impl BlockRef {
    /// A block as Rill requests it: `1 <= length <= BLOCK_SIZE`, and `begin + length` fits in
    /// a `u32`.
    pub fn new(piece: PieceIndex, begin: u32, length: u32) -> Result<Self, BlockError> {
        let block = BlockRef {
            piece,
            begin,
            length,
        };
        block.check_length(BLOCK_SIZE)?;
        block.end().map(|_| block)
    }

    /// The `n`th block of a piece of `piece_len` bytes: all are [`BLOCK_SIZE`] but the last,
    /// which holds the remainder. `None` past the last block.
    pub fn nth(piece: PieceIndex, piece_len: u32, n: u32) -> Option<Self> {
        let begin = n.checked_mul(BLOCK_SIZE)?;
        let length = piece_len.checked_sub(begin)?.min(BLOCK_SIZE);
        (length > 0).then_some(BlockRef {
            piece,
            begin,
            length,
        })
    }

    /// Checks a block a peer sent against the real length of its piece: not empty, at most
    /// `max_len` bytes (e.g. [`MAX_REQUEST_LEN`] to serve, the requested length to accept),
    /// and wholly inside the piece.
    pub fn check(&self, piece_len: u32, max_len: u32) -> Result<(), BlockError> {
        self.check_length(max_len)?;
        match self.end() {
            Ok(end) if end <= piece_len => Ok(()),
            _ => Err(self.past_end(u64::from(piece_len))),
        }
    }

    /// The offset just past the block, if it fits in a `u32`.
    pub fn end(&self) -> Result<u32, BlockError> {
        self.begin
            .checked_add(self.length)
            .ok_or_else(|| self.past_end(u64::from(u32::MAX)))
    }

    /// The index of this block among [`BLOCK_SIZE`] blocks, if `begin` is aligned.
    pub fn block_number(&self) -> Option<u32> {
        self.begin
            .is_multiple_of(BLOCK_SIZE)
            .then_some(self.begin / BLOCK_SIZE)
    }

    fn check_length(&self, max: u32) -> Result<(), BlockError> {
        match self.length {
            0 => Err(BlockError::Empty),
            length if length > max => Err(BlockError::TooLong { length, max }),
            _ => Ok(()),
        }
    }

    fn past_end(&self, piece_len: u64) -> BlockError {
        BlockError::PastPieceEnd {
            begin: self.begin,
            length: self.length,
            piece_len,
        }
    }
}

/// The number of [`BLOCK_SIZE`] blocks in a piece of `piece_len` bytes (the last may be short).
pub const fn block_count(piece_len: u32) -> u32 {
    piece_len.div_ceil(BLOCK_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn new_validates_length_and_overflow() {
        let p = PieceIndex(3);
        assert!(BlockRef::new(p, 0, BLOCK_SIZE).is_ok());
        assert!(BlockRef::new(p, 0, 1).is_ok());
        assert_eq!(BlockRef::new(p, 0, 0), Err(BlockError::Empty));
        assert_eq!(
            BlockRef::new(p, 0, BLOCK_SIZE + 1),
            Err(BlockError::TooLong {
                length: BLOCK_SIZE + 1,
                max: BLOCK_SIZE
            })
        );
        assert!(matches!(
            BlockRef::new(p, u32::MAX, 1),
            Err(BlockError::PastPieceEnd { .. })
        ));
    }

    #[test]
    fn check_against_piece() {
        let block = BlockRef {
            piece: PieceIndex(0),
            begin: 16384,
            length: 16384,
        };
        assert!(block.check(32768, BLOCK_SIZE).is_ok());
        assert!(block.check(32767, BLOCK_SIZE).is_err());
        let big = BlockRef {
            length: MAX_REQUEST_LEN,
            begin: 0,
            ..block
        };
        assert!(big.check(1 << 20, MAX_REQUEST_LEN).is_ok());
        assert!(big.check(1 << 20, BLOCK_SIZE).is_err());
        let wrapping = BlockRef {
            begin: u32::MAX - 2,
            length: 10,
            ..block
        };
        assert!(wrapping.check(u32::MAX, u32::MAX).is_err());
    }

    #[test]
    fn piece_index_checked() {
        assert_eq!(PieceIndex::checked(4, 5), Ok(PieceIndex(4)));
        assert!(PieceIndex::checked(5, 5).is_err());
        assert_eq!(PieceIndex(7).to_string(), "7");
    }

    #[test]
    fn blocks_of_a_piece() {
        assert_eq!(block_count(0), 0);
        assert_eq!(block_count(1), 1);
        assert_eq!(block_count(BLOCK_SIZE), 1);
        assert_eq!(block_count(BLOCK_SIZE * 2 + 5), 3);
        let p = PieceIndex(1);
        let last = BlockRef::nth(p, BLOCK_SIZE * 2 + 5, 2).unwrap();
        assert_eq!((last.begin, last.length), (BLOCK_SIZE * 2, 5));
        assert_eq!(last.block_number(), Some(2));
        assert_eq!(BlockRef::nth(p, BLOCK_SIZE * 2 + 5, 3), None);
        assert_eq!(BlockRef::nth(p, BLOCK_SIZE, 1), None);
    }

    proptest! {
        #[test]
        fn nth_blocks_tile_the_piece(piece_len in 1u32..(1 << 24)) {
            let p = PieceIndex(0);
            let mut next = 0u32;
            for n in 0..block_count(piece_len) {
                let block = BlockRef::nth(p, piece_len, n).unwrap();
                prop_assert_eq!(block.begin, next);
                prop_assert!(block.check(piece_len, BLOCK_SIZE).is_ok());
                next = block.end().unwrap();
            }
            prop_assert_eq!(next, piece_len);
        }
    }
}
