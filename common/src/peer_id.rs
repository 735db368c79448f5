//! Peer ids: 20 bytes a client names itself with in handshakes and announces.
//!
//! Ours follow the Azureus style of BEP 20: `-RL` + four version digits + `-` + 12 random bytes.

use std::fmt;

use rand::Rng;
use thiserror::Error;

/// A 20-byte peer id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId([u8; 20]);

/// Raw bytes that are not a peer id.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("a peer id is 20 bytes, not {0}")]
pub struct PeerIdError(pub usize);

/// The client code Rill uses in its peer ids (BEP 20).
pub const CLIENT_CODE: &[u8; 2] = b"RL";

impl PeerId {
    /// A fresh id for this version of Rill: `-RL0100-` then 12 random bytes.
    pub fn generate(rng: &mut impl Rng) -> Self {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(&version_prefix());
        rng.fill(&mut id[8..]);
        PeerId(id)
    }

    /// Wraps 20 raw bytes.
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        PeerId(bytes)
    }

    /// Takes exactly 20 raw bytes from a slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PeerIdError> {
        <[u8; 20]>::try_from(bytes)
            .map(PeerId)
            .map_err(|_| PeerIdError(bytes.len()))
    }

    /// The 20 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The BEP 20 client prefix (`-XX1234-`) if the id has one, e.g. `-RL0100-`.
    pub fn client_prefix(&self) -> Option<&str> {
        let prefix = &self.0[..8];
        let well_formed = prefix[0] == b'-'
            && prefix[7] == b'-'
            && prefix[1..3].iter().all(u8::is_ascii_alphanumeric)
            && prefix[3..7].iter().all(u8::is_ascii_alphanumeric);
        well_formed
            .then(|| std::str::from_utf8(prefix).ok())
            .flatten()
    }
}

/// `-RL` + major, minor, patch digits padded to four + `-`, from the crate version.
fn version_prefix() -> [u8; 8] {
    let digit = |s: &str| s.parse::<u8>().map_or(b'0', |n| b'0' + n.min(9));
    let mut parts = env!("CARGO_PKG_VERSION").split(['.', '-']);
    let (major, minor, patch) = (
        parts.next().map_or(b'0', digit),
        parts.next().map_or(b'0', digit),
        parts.next().map_or(b'0', digit),
    );
    [
        b'-',
        CLIENT_CODE[0],
        CLIENT_CODE[1],
        major,
        minor,
        patch,
        b'0',
        b'-',
    ]
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0.escape_ascii())
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_our_prefix_and_differ() {
        let mut rng = rand::rng();
        let a = PeerId::generate(&mut rng);
        let b = PeerId::generate(&mut rng);
        assert_eq!(a.client_prefix(), Some("-RL0100-"));
        assert_ne!(a, b);
    }

    #[test]
    fn foreign_ids() {
        let lt = PeerId::from_slice(b"-LT2080-abcdefghijkl").unwrap();
        assert_eq!(lt.client_prefix(), Some("-LT2080-"));
        let odd = PeerId::from_bytes([0xff; 20]);
        assert_eq!(odd.client_prefix(), None);
        assert_eq!(PeerId::from_slice(b"short"), Err(PeerIdError(5)));
    }
}
