//! The 68-byte peer handshake (BEP 3) and its reserved bits.
//!
//! Layout: `\x13BitTorrent protocol` (20 bytes), 8 reserved bytes, the 20-byte info hash,
//! the 20-byte peer id. Reserved bits Rill understands: the extension protocol
//! (BEP 10: `reserved[5] & 0x10`), the fast extension (BEP 6: `reserved[7] & 0x04`) and DHT
//! (BEP 5: `reserved[7] & 0x01`); the others are kept as received.
//!
//! An incoming connection must choose the torrent before answering, and some peers wait
//! for our handshake before sending their peer id, so [`HandshakePrefix::peek`] reads the
//! first 48 bytes (up to the info hash) without consuming them. A wrong protocol string is
//! refused as soon as its first wrong byte is buffered.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use bytes::{Buf, BufMut, BytesMut};
use thiserror::Error;

use crate::info_hash::InfoHash;
use crate::peer_id::PeerId;

/// The handshake's first 20 bytes: the length 19 and the protocol name.
pub const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";
/// The whole handshake's length.
pub const HANDSHAKE_LEN: usize = 68;
/// The length up to and including the info hash.
pub const PREFIX_LEN: usize = 48;

/// Why bytes are not a handshake.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The stream does not start with `\x13BitTorrent protocol` (e.g. an encrypted or
    /// non-BitTorrent connection).
    #[error("not a BitTorrent handshake: byte {offset} is {found:#04x}")]
    WrongProtocol {
        /// The offset of the first wrong byte.
        offset: usize,
        /// That byte.
        found: u8,
    },
}

/// The 8 reserved bytes: feature bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// No bits set.
    pub const NONE: Reserved = Reserved([0; 8]);

    /// Whether the extension protocol bit is set (BEP 10: `reserved[5] & 0x10`).
    pub const fn extension_protocol(&self) -> bool {
        self.0[5] & 0x10 != 0
    }

    /// Whether the fast extension bit is set (BEP 6: `reserved[7] & 0x04`).
    pub const fn fast(&self) -> bool {
        self.0[7] & 0x04 != 0
    }

    /// Whether the DHT bit is set (BEP 5: `reserved[7] & 0x01`).
    pub const fn dht(&self) -> bool {
        self.0[7] & 0x01 != 0
    }

    /// With the extension protocol bit set or cleared.
    pub const fn with_extension_protocol(self, on: bool) -> Self {
        self.with_bit(0x10 << 16, on)
    }

    /// With the fast extension bit set or cleared.
    pub const fn with_fast(self, on: bool) -> Self {
        self.with_bit(0x04, on)
    }

    /// With the DHT bit set or cleared.
    pub const fn with_dht(self, on: bool) -> Self {
        self.with_bit(0x01, on)
    }

    /// Sets or clears `mask`, with the 8 bytes read as a big-endian `u64`.
    const fn with_bit(self, mask: u64, on: bool) -> Self {
        let bits = u64::from_be_bytes(self.0);
        let bits = if on { bits | mask } else { bits & !mask };
        Reserved(bits.to_be_bytes())
    }
}

/// A handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// Feature bits.
    pub reserved: Reserved,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

/// The first 48 bytes of a handshake: enough to choose the torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandshakePrefix {
    /// Feature bits.
    pub reserved: Reserved,
    /// The torrent.
    pub info_hash: InfoHash,
}

/// Checks the protocol string against what is buffered so far.
fn check_protocol(buf: &[u8]) -> Result<(), HandshakeError> {
    match buf.iter().zip(PROTOCOL).position(|(got, want)| got != want) {
        None => Ok(()),
        Some(offset) => Err(HandshakeError::WrongProtocol {
            offset,
            found: buf.get(offset).copied().unwrap_or(0),
        }),
    }
}

fn array_at<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at + N)?.try_into().ok()
}

impl HandshakePrefix {
    /// Reads the first 48 bytes of `buf` without consuming them: `Ok(None)` until they are
    /// there, `Err` as soon as the protocol string is wrong.
    pub fn peek(buf: &[u8]) -> Result<Option<Self>, HandshakeError> {
        check_protocol(buf)?;
        let (Some(reserved), Some(info_hash)) = (array_at(buf, 20), array_at(buf, 28)) else {
            return Ok(None);
        };
        Ok(Some(HandshakePrefix {
            reserved: Reserved(reserved),
            info_hash: InfoHash::from_bytes(info_hash),
        }))
    }
}

impl Handshake {
    /// A handshake with these parts.
    pub const fn new(reserved: Reserved, info_hash: InfoHash, peer_id: PeerId) -> Self {
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// Decodes and consumes a handshake from the front of `buf`: `Ok(None)` (nothing
    /// consumed) until 68 bytes are there, `Err` as soon as the protocol string is wrong.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Self>, HandshakeError> {
        let Some(prefix) = HandshakePrefix::peek(buf)? else {
            return Ok(None);
        };
        let Some(peer_id) = array_at(buf, PREFIX_LEN) else {
            return Ok(None);
        };
        buf.advance(HANDSHAKE_LEN);
        Ok(Some(Handshake {
            reserved: prefix.reserved,
            info_hash: prefix.info_hash,
            peer_id: PeerId::from_bytes(peer_id),
        }))
    }

    /// The 68 wire bytes.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        let mut cursor = &mut out[..];
        cursor.put_slice(PROTOCOL);
        cursor.put_slice(&self.reserved.0);
        cursor.put_slice(self.info_hash.as_bytes());
        cursor.put_slice(self.peer_id.as_bytes());
        out
    }

    /// Appends the 68 wire bytes to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.extend_from_slice(&self.to_bytes());
    }
}
