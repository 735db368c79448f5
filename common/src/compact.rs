//! Compact peer addresses: 6 bytes for IPv4 (BEP 23), 18 for IPv6 (BEP 7), address then
//! port, both in network byte order. Used by tracker replies, PEX and the DHT.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use thiserror::Error;

/// Bytes of one compact IPv4 peer.
pub const V4_LEN: usize = 6;
/// Bytes of one compact IPv6 peer.
pub const V6_LEN: usize = 18;

/// A compact list whose length is not a multiple of the entry size.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("compact list of {len} bytes is not a multiple of {entry}")]
pub struct CompactError {
    /// The list's length.
    pub len: usize,
    /// The size of one entry.
    pub entry: usize,
}

/// Decodes one 6-byte IPv4 address and port.
pub fn decode_v4(bytes: [u8; V4_LEN]) -> SocketAddrV4 {
    let [a, b, c, d, p0, p1] = bytes;
    SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), u16::from_be_bytes([p0, p1]))
}

/// Decodes one 18-byte IPv6 address and port.
pub fn decode_v6(bytes: [u8; V6_LEN]) -> SocketAddrV6 {
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&bytes[..16]);
    let port = u16::from_be_bytes([bytes[16], bytes[17]]);
    SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)
}

/// Encodes one IPv4 address and port.
pub fn encode_v4(addr: SocketAddrV4) -> [u8; V4_LEN] {
    let [a, b, c, d] = addr.ip().octets();
    let [p0, p1] = addr.port().to_be_bytes();
    [a, b, c, d, p0, p1]
}

/// Encodes one IPv6 address and port.
pub fn encode_v6(addr: SocketAddrV6) -> [u8; V6_LEN] {
    let mut out = [0u8; V6_LEN];
    out[..16].copy_from_slice(&addr.ip().octets());
    out[16..].copy_from_slice(&addr.port().to_be_bytes());
    out
}

/// Decodes a list of compact IPv4 peers.
pub fn decode_peers_v4(bytes: &[u8]) -> Result<Vec<SocketAddr>, CompactError> {
    decode_list::<V4_LEN, _>(bytes, |chunk| SocketAddr::V4(decode_v4(chunk)))
}

/// Decodes a list of compact IPv6 peers.
pub fn decode_peers_v6(bytes: &[u8]) -> Result<Vec<SocketAddr>, CompactError> {
    decode_list::<V6_LEN, _>(bytes, |chunk| SocketAddr::V6(decode_v6(chunk)))
}

/// Appends the compact form of `addr` to `out`: 6 bytes for IPv4, 18 for IPv6.
pub fn encode_peer(addr: SocketAddr, out: &mut Vec<u8>) {
    match addr {
        SocketAddr::V4(v4) => out.extend_from_slice(&encode_v4(v4)),
        SocketAddr::V6(v6) => out.extend_from_slice(&encode_v6(v6)),
    }
}

/// Splits `bytes` into `N`-byte chunks and decodes each; refuses a ragged tail.
pub fn decode_list<const N: usize, T>(
    bytes: &[u8],
    decode: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>, CompactError> {
    let chunks = bytes.chunks_exact(N);
    if !chunks.remainder().is_empty() {
        return Err(CompactError {
            len: bytes.len(),
            entry: N,
        });
    }
    Ok(chunks
        .filter_map(|chunk| <[u8; N]>::try_from(chunk).ok())
        .map(decode)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_v4() {
        let peers = decode_peers_v4(&[127, 0, 0, 1, 0x1a, 0xe1]).unwrap();
        assert_eq!(peers, vec!["127.0.0.1:6881".parse().unwrap()]);
        assert_eq!(
            decode_peers_v4(&[1, 2, 3]),
            Err(CompactError { len: 3, entry: 6 })
        );
    }

    proptest! {
        #[test]
        fn peers_round_trip(v4 in proptest::collection::vec(any::<SocketAddrV4>(), 0..20),
                            v6 in proptest::collection::vec(any::<(u128, u16)>(), 0..20)) {
            let mut out = Vec::new();
            v4.iter().for_each(|a| encode_peer(SocketAddr::V4(*a), &mut out));
            let back: Vec<SocketAddr> = v4.iter().map(|a| SocketAddr::V4(*a)).collect();
            prop_assert_eq!(decode_peers_v4(&out).unwrap(), back);

            let v6: Vec<SocketAddr> = v6.iter()
                .map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(*ip), *port, 0, 0)))
                .collect();
            let mut out = Vec::new();
            v6.iter().for_each(|a| encode_peer(*a, &mut out));
            prop_assert_eq!(decode_peers_v6(&out).unwrap(), v6);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_peers_v4(&bytes);
            let _ = decode_peers_v6(&bytes);
        }
    }
}
