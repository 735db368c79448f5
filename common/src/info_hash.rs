//! The v1 info-hash: the SHA-1 of the raw bytes of a torrent's `info` dictionary (BEP 3).
//!
//! Text forms: 40 hex digits (either case accepted, lower case written), 32 base32 digits
//! (BEP 9 magnet links; either case accepted, upper case written), and byte-wise
//! percent-encoding for tracker query strings.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE32, HEXLOWER_PERMISSIVE};
use sha1::{Digest, Sha1};
use thiserror::Error;

/// A 20-byte v1 info-hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash([u8; 20]);

/// Why a text is not an info-hash.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum InfoHashError {
    /// Neither 40 hex digits nor 32 base32 digits.
    #[error("an info-hash is 40 hex or 32 base32 characters, not {0}")]
    BadLength(usize),
    /// The right length, but a character outside the alphabet.
    #[error("invalid character in {0} info-hash")]
    BadDigit(&'static str),
    /// Raw bytes of the wrong length.
    #[error("an info-hash is 20 bytes, not {0}")]
    BadByteLength(usize),
}

impl InfoHash {
    /// The info-hash of these raw `info` dictionary bytes.
    pub fn of_info(raw_info: &[u8]) -> Self {
        InfoHash(Sha1::digest(raw_info).into())
    }

    /// Wraps 20 raw bytes.
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        InfoHash(bytes)
    }

    /// Takes exactly 20 raw bytes from a slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, InfoHashError> {
        <[u8; 20]>::try_from(bytes)
            .map(InfoHash)
            .map_err(|_| InfoHashError::BadByteLength(bytes.len()))
    }

    /// The 20 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Parses 40 hex digits (any case).
    pub fn from_hex(text: &str) -> Result<Self, InfoHashError> {
        if text.len() != 40 {
            return Err(InfoHashError::BadLength(text.len()));
        }
        decode_into(&HEXLOWER_PERMISSIVE, text.as_bytes(), "hex")
    }

    /// Parses 32 base32 digits (RFC 4648 alphabet, any case).
    pub fn from_base32(text: &str) -> Result<Self, InfoHashError> {
        if text.len() != 32 {
            return Err(InfoHashError::BadLength(text.len()));
        }
        decode_into(&BASE32, text.to_ascii_uppercase().as_bytes(), "base32")
    }

    /// 40 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        HEXLOWER_PERMISSIVE.encode(&self.0)
    }

    /// 32 upper-case base32 digits.
    pub fn to_base32(&self) -> String {
        BASE32.encode(&self.0)
    }

    /// Byte-wise percent-encoding for a tracker query string.
    pub fn to_percent_encoded(&self) -> String {
        crate::tracker::http::percent_encode_bytes(&self.0)
    }
}

fn decode_into(
    encoding: &data_encoding::Encoding,
    text: &[u8],
    name: &'static str,
) -> Result<InfoHash, InfoHashError> {
    let mut out = [0u8; 20];
    match encoding.decode_mut(text, &mut out) {
        Ok(20) => Ok(InfoHash(out)),
        _ => Err(InfoHashError::BadDigit(name)),
    }
}

impl FromStr for InfoHash {
    type Err = InfoHashError;

    /// Accepts hex (40 characters) or base32 (32 characters).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.len() {
            40 => InfoHash::from_hex(text),
            32 => InfoHash::from_base32(text),
            n => Err(InfoHashError::BadLength(n)),
        }
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

impl From<[u8; 20]> for InfoHash {
    fn from(bytes: [u8; 20]) -> Self {
        InfoHash(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_of_empty_dict_is_known() {
        // SHA-1 of "de".
        assert_eq!(
            InfoHash::of_info(b"de").to_hex(),
            "600ccd1b71569232d01d110bc63e906beab04d8c"
        );
    }

    #[test]
    fn hex_and_base32_agree() {
        let hash = InfoHash::from_hex("C12FE1c06bba254a9dc9f519b335aa7c1367a88a").unwrap();
        assert_eq!(hash.to_hex(), "c12fe1c06bba254a9dc9f519b335aa7c1367a88a");
        let b32 = hash.to_base32();
        assert_eq!(b32, "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK");
        assert_eq!(InfoHash::from_base32(&b32.to_lowercase()).unwrap(), hash);
        assert_eq!(b32.parse::<InfoHash>().unwrap(), hash);
    }

    #[test]
    fn bad_text_is_refused_with_a_reason() {
        assert_eq!(InfoHash::from_str("abc"), Err(InfoHashError::BadLength(3)));
        assert_eq!(
            InfoHash::from_hex(&"g".repeat(40)),
            Err(InfoHashError::BadDigit("hex"))
        );
        assert_eq!(
            InfoHash::from_base32(&"1".repeat(32)),
            Err(InfoHashError::BadDigit("base32"))
        );
        assert_eq!(
            InfoHash::from_slice(&[0; 19]),
            Err(InfoHashError::BadByteLength(19))
        );
    }

    #[test]
    fn percent_encoding_is_byte_wise() {
        let mut bytes = [b'a'; 20];
        bytes[0] = 0x00;
        bytes[1] = b' ';
        bytes[2] = b'~';
        bytes[3] = 0xff;
        let encoded = InfoHash::from_bytes(bytes).to_percent_encoded();
        assert!(encoded.starts_with("%00%20~%FFaaaa"), "{encoded}");
    }

    proptest! {
        #[test]
        fn text_forms_round_trip(bytes in any::<[u8; 20]>()) {
            let hash = InfoHash::from_bytes(bytes);
            prop_assert_eq!(InfoHash::from_hex(&hash.to_hex()).unwrap(), hash);
            prop_assert_eq!(InfoHash::from_base32(&hash.to_base32()).unwrap(), hash);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,64}") {
            let _ = text.parse::<InfoHash>();
        }
    }
}
