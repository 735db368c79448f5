//! The set of pieces a peer has (BEP 3 `bitfield`): bit 0 is the high bit of byte 0.
//!
//! Invariants of a [`Bitfield`]: it holds exactly `ceil(piece_count / 8)` bytes, and the
//! spare bits of the last byte are always clear. BEP 3: "Spare bits at the end are set to
//! zero. Clients should drop the connection if they receive bitfields that are not of the
//! correct size, or if the bitfield has any of the spare bits set", so
//! [`Bitfield::from_bytes`] refuses both.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use thiserror::Error;

use crate::pieces::PieceIndex;

/// A received bitfield that does not fit the torrent.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum BitfieldError {
    /// Not `ceil(piece_count / 8)` bytes.
    #[error("bitfield of {len} bytes for {piece_count} pieces (expected {expected} bytes)")]
    WrongLength {
        /// The bytes received.
        len: usize,
        /// The torrent's piece count.
        piece_count: u32,
        /// The bytes expected.
        expected: usize,
    },
    /// A bit past the last piece is set.
    #[error("bitfield has spare bits set past piece {piece_count}")]
    SpareBitsSet {
        /// The torrent's piece count.
        piece_count: u32,
    },
}

/// One bit per piece: which pieces a peer (or we) have.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bytes: Vec<u8>,
    piece_count: u32,
}

/// Bytes needed for `piece_count` bits.
pub const fn byte_len(piece_count: u32) -> usize {
    piece_count.div_ceil(8) as usize
}

impl Bitfield {
    /// No pieces of `piece_count`.
    pub fn new(piece_count: u32) -> Self {
        Bitfield {
            bytes: vec![0; byte_len(piece_count)],
            piece_count,
        }
    }

    /// All `piece_count` pieces (a seed's bitfield; BEP 6 `have all`).
    pub fn full(piece_count: u32) -> Self {
        let mut field = Bitfield {
            bytes: vec![0xff; byte_len(piece_count)],
            piece_count,
        };
        if let Some(last) = field.bytes.last_mut() {
            *last &= last_byte_mask(piece_count);
        }
        field
    }

    /// Takes a received bitfield: refuses a wrong length and set spare bits (BEP 3).
    pub fn from_bytes(bytes: &[u8], piece_count: u32) -> Result<Self, BitfieldError> {
        let expected = byte_len(piece_count);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                len: bytes.len(),
                piece_count,
                expected,
            });
        }
        if let Some(last) = bytes.last()
            && last & !last_byte_mask(piece_count) != 0
        {
            return Err(BitfieldError::SpareBitsSet { piece_count });
        }
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            piece_count,
        })
    }

    /// The wire form: `ceil(piece_count / 8)` bytes, spare bits clear.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The number of pieces (bits) this bitfield covers.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Whether the piece is set; `false` for an index out of range.
    pub fn get(&self, piece: PieceIndex) -> bool {
        self.locate(piece)
            .and_then(|(byte, mask)| self.bytes.get(byte).map(|b| b & mask != 0))
            .unwrap_or(false)
    }

    /// Sets or clears a piece; returns `false` (and changes nothing) for an index out of range.
    pub fn set(&mut self, piece: PieceIndex, value: bool) -> bool {
        let Some((byte, mask)) = self.locate(piece) else {
            return false;
        };
        match self.bytes.get_mut(byte) {
            Some(b) if value => *b |= mask,
            Some(b) => *b &= !mask,
            None => return false,
        }
        true
    }

    /// The number of pieces set.
    pub fn count(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// Whether every piece is set (true for zero pieces).
    pub fn all(&self) -> bool {
        self.count() == self.piece_count
    }

    /// Whether no piece is set.
    pub fn none(&self) -> bool {
        self.bytes.iter().all(|b| *b == 0)
    }

    /// The pieces set, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.bytes
            .iter()
            .zip(0u32..)
            .filter(|(b, _)| **b != 0)
            .flat_map(|(b, i)| {
                (0..8u32)
                    .filter(move |bit| b & (0x80 >> bit) != 0)
                    .map(move |bit| PieceIndex(i * 8 + bit))
            })
    }

    fn locate(&self, piece: PieceIndex) -> Option<(usize, u8)> {
        (piece.0 < self.piece_count).then(|| (piece.as_usize() / 8, 0x80u8 >> (piece.0 % 8)))
    }
}

/// The bits of the last byte that belong to pieces.
fn last_byte_mask(piece_count: u32) -> u8 {
    match piece_count % 8 {
        0 => 0xff,
        used => !(0xffu8 >> used),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bit_order_is_high_bit_first() {
        let field = Bitfield::from_bytes(&[0b1000_0001, 0b0100_0000], 10).unwrap();
        assert!(field.get(PieceIndex(0)));
        assert!(field.get(PieceIndex(7)));
        assert!(field.get(PieceIndex(9)));
        assert!(!field.get(PieceIndex(8)));
        assert!(!field.get(PieceIndex(10)));
        assert_eq!(field.count(), 3);
        assert_eq!(
            field.iter().collect::<Vec<_>>(),
            vec![PieceIndex(0), PieceIndex(7), PieceIndex(9)]
        );
    }

    #[test]
    fn refuses_wrong_length_and_spare_bits() {
        assert_eq!(
            Bitfield::from_bytes(&[0, 0], 17),
            Err(BitfieldError::WrongLength {
                len: 2,
                piece_count: 17,
                expected: 3
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0, 0b0010_0000], 10),
            Err(BitfieldError::SpareBitsSet { piece_count: 10 })
        );
        assert!(Bitfield::from_bytes(&[0xff, 0xff], 16).is_ok());
        assert!(Bitfield::from_bytes(&[], 0).is_ok());
        assert!(Bitfield::from_bytes(&[0], 0).is_err());
    }

    #[test]
    fn set_get_all_none() {
        let mut field = Bitfield::new(10);
        assert!(field.none());
        assert!(!field.all());
        for i in 0..10 {
            assert!(field.set(PieceIndex(i), true));
        }
        assert!(!field.set(PieceIndex(10), true));
        assert!(field.all());
        assert_eq!(field, Bitfield::full(10));
        assert_eq!(field.as_bytes(), &[0xff, 0xc0]);
        field.set(PieceIndex(3), false);
        assert!(!field.get(PieceIndex(3)));
        assert_eq!(field.count(), 9);
        assert!(Bitfield::new(0).all());
        assert!(Bitfield::new(0).none());
    }

    proptest! {
        #[test]
        fn set_bits_round_trip(piece_count in 0u32..200, picks in proptest::collection::vec(any::<u32>(), 0..50)) {
            let mut field = Bitfield::new(piece_count);
            let mut expected: Vec<u32> = picks.iter().filter_map(|p| p.checked_rem(piece_count)).collect();
            for p in &expected {
                field.set(PieceIndex(*p), true);
            }
            expected.sort_unstable();
            expected.dedup();
            let back = Bitfield::from_bytes(field.as_bytes(), piece_count).unwrap();
            prop_assert_eq!(&back, &field);
            prop_assert_eq!(back.iter().map(|p| p.0).collect::<Vec<_>>(), expected.clone());
            prop_assert_eq!(back.count() as usize, expected.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40), piece_count in 0u32..400) {
            if let Ok(field) = Bitfield::from_bytes(&bytes, piece_count) {
                prop_assert_eq!(field.as_bytes(), &bytes[..]);
                prop_assert!(field.count() <= piece_count);
            }
        }
    }
}
