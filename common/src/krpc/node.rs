//! Node ids and compact node info (BEP 5, BEP 32).
//!
//! A node id is 20 bytes from the same 160-bit space as info-hashes; closeness is the XOR
//! of two ids read as a big-endian number. Compact node info is the 20-byte id followed by
//! the compact address: 26 bytes for IPv4 (`nodes`, BEP 5), 38 for IPv6 (`nodes6`, BEP 32).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::fmt;
use std::net::SocketAddr;

use rand::Rng;

use crate::InfoHash;
use crate::compact::{self, CompactError, V4_LEN, V6_LEN};

/// Bytes of a node id.
pub const ID_LEN: usize = 20;
/// Bytes of one IPv4 compact node info entry (`nodes`).
pub const NODE_V4_LEN: usize = ID_LEN + V4_LEN;
/// Bytes of one IPv6 compact node info entry (`nodes6`, BEP 32).
pub const NODE_V6_LEN: usize = ID_LEN + V6_LEN;

/// A 20-byte DHT node id (the default is all zeros).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; ID_LEN]);

/// A slice that is not 20 bytes long, so not a node id.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("a node id is 20 bytes, not {0}")]
pub struct NodeIdLengthError(pub usize);

/// The XOR distance between two ids; orders as a 160-bit big-endian number (BEP 5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance([u8; ID_LEN]);

impl NodeId {
    /// Wraps 20 raw bytes.
    pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        NodeId(bytes)
    }

    /// Takes exactly 20 raw bytes from a slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, NodeIdLengthError> {
        <[u8; ID_LEN]>::try_from(bytes)
            .map(NodeId)
            .map_err(|_| NodeIdLengthError(bytes.len()))
    }

    /// A uniformly random id.
    pub fn random(rng: &mut impl Rng) -> Self {
        let mut bytes = [0u8; ID_LEN];
        rng.fill(&mut bytes[..]);
        NodeId(bytes)
    }

    /// The 20 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// The XOR distance to `other`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut out = [0u8; ID_LEN];
        for (o, (a, b)) in out.iter_mut().zip(self.0.iter().zip(other.0.iter())) {
            *o = a ^ b;
        }
        Distance(out)
    }
}

impl Distance {
    /// The 20 raw bytes of the XOR.
    pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// Leading zero bits: the length of the common prefix of the two ids (160 when equal).
    pub fn leading_zeros(&self) -> u32 {
        let mut zeros = 0;
        for byte in self.0 {
            zeros += byte.leading_zeros();
            if byte != 0 {
                break;
            }
        }
        zeros
    }
}

impl From<InfoHash> for NodeId {
    /// Info-hashes and node ids share one space: a lookup's target is the info-hash.
    fn from(hash: InfoHash) -> Self {
        NodeId(*hash.as_bytes())
    }
}

impl From<[u8; ID_LEN]> for NodeId {
    fn from(bytes: [u8; ID_LEN]) -> Self {
        NodeId(bytes)
    }
}

impl fmt::Display for NodeId {
    /// 40 lower-case hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// One entry of compact node info: a node's id and UDP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompactNode {
    /// The node's id.
    pub id: NodeId,
    /// Where it listens (UDP).
    pub addr: SocketAddr,
}

fn split_id<const N: usize, const A: usize>(entry: [u8; N]) -> (NodeId, [u8; A]) {
    let mut id = [0u8; ID_LEN];
    let mut addr = [0u8; A];
    let (head, tail) = entry.split_at(ID_LEN.min(N));
    id.iter_mut().zip(head).for_each(|(d, s)| *d = *s);
    addr.iter_mut().zip(tail).for_each(|(d, s)| *d = *s);
    (NodeId(id), addr)
}

/// Decodes a `nodes` string: 26-byte IPv4 entries; a ragged length is refused.
pub fn decode_nodes_v4(bytes: &[u8]) -> Result<Vec<CompactNode>, CompactError> {
    compact::decode_list::<NODE_V4_LEN, _>(bytes, |entry| {
        let (id, addr) = split_id::<NODE_V4_LEN, V4_LEN>(entry);
        CompactNode {
            id,
            addr: SocketAddr::V4(compact::decode_v4(addr)),
        }
    })
}

/// Decodes a `nodes6` string: 38-byte IPv6 entries; a ragged length is refused.
pub fn decode_nodes_v6(bytes: &[u8]) -> Result<Vec<CompactNode>, CompactError> {
    compact::decode_list::<NODE_V6_LEN, _>(bytes, |entry| {
        let (id, addr) = split_id::<NODE_V6_LEN, V6_LEN>(entry);
        CompactNode {
            id,
            addr: SocketAddr::V6(compact::decode_v6(addr)),
        }
    })
}

/// Appends the compact node info of `node`: 26 bytes for IPv4, 38 for IPv6.
pub fn encode_node(node: &CompactNode, out: &mut Vec<u8>) {
    out.extend_from_slice(node.id.as_bytes());
    compact::encode_peer(node.addr, out);
}

/// Encodes the IPv4 nodes of `nodes` as a `nodes` string, skipping IPv6 ones.
pub fn encode_nodes_v4(nodes: &[CompactNode]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * NODE_V4_LEN);
    nodes
        .iter()
        .filter(|n| n.addr.is_ipv4())
        .for_each(|n| encode_node(n, &mut out));
    out
}

/// Encodes the IPv6 nodes of `nodes` as a `nodes6` string, skipping IPv4 ones.
pub fn encode_nodes_v6(nodes: &[CompactNode]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * NODE_V6_LEN);
    nodes
        .iter()
        .filter(|n| n.addr.is_ipv6())
        .for_each(|n| encode_node(n, &mut out));
    out
}

/// Builds an IPv6 socket address without flow info or scope, as compact form carries.
#[cfg(test)]
pub(crate) fn v6(ip: std::net::Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::V6(std::net::SocketAddrV6::new(ip, port, 0, 0))
}

/// Builds an IPv4 socket address.
#[cfg(test)]
pub(crate) fn v4(ip: std::net::Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(std::net::SocketAddrV4::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn distance_is_xor_and_orders_big_endian() {
        let a = NodeId::from_bytes([0; 20]);
        let mut far = [0; 20];
        far[0] = 0x80;
        let mut near = [0; 20];
        near[19] = 0xff;
        let far = NodeId::from_bytes(far);
        let near = NodeId::from_bytes(near);
        assert!(a.distance(&near) < a.distance(&far));
        assert_eq!(a.distance(&far).leading_zeros(), 0);
        assert_eq!(a.distance(&near).leading_zeros(), 152);
        assert_eq!(a.distance(&a).leading_zeros(), 160);
        assert_eq!(far.distance(&near).as_bytes()[0], 0x80);
        assert_eq!(far.distance(&near).as_bytes()[19], 0xff);
    }

    #[test]
    fn display_is_hex_and_slices_are_checked() {
        let id = NodeId::from_slice(b"abcdefghij0123456789").unwrap();
        assert_eq!(id.to_string(), "6162636465666768696a30313233343536373839");
        assert_eq!(NodeId::from_slice(b"short"), Err(NodeIdLengthError(5)));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        assert_ne!(NodeId::random(&mut rng), NodeId::random(&mut rng));
    }

    #[test]
    fn known_compact_nodes() {
        let bytes = b"abcdefghij0123456789\x7f\x00\x00\x01\x1a\xe1";
        let nodes = decode_nodes_v4(bytes).unwrap();
        assert_eq!(
            nodes,
            vec![CompactNode {
                id: NodeId::from_bytes(*b"abcdefghij0123456789"),
                addr: "127.0.0.1:6881".parse().unwrap(),
            }]
        );
        assert_eq!(encode_nodes_v4(&nodes), bytes.to_vec());
        assert_eq!(
            decode_nodes_v4(&bytes[..25]),
            Err(CompactError { len: 25, entry: 26 })
        );
        assert_eq!(
            decode_nodes_v6(bytes),
            Err(CompactError { len: 26, entry: 38 })
        );
    }

    proptest! {
        #[test]
        fn nodes_round_trip(v4s in proptest::collection::vec(any::<([u8; 20], [u8; 4], u16)>(), 0..10),
                            v6s in proptest::collection::vec(any::<([u8; 20], [u8; 16], u16)>(), 0..10)) {
            let v4s: Vec<CompactNode> = v4s.into_iter()
                .map(|(id, ip, port)| CompactNode { id: NodeId(id), addr: v4(ip.into(), port) })
                .collect();
            let v6s: Vec<CompactNode> = v6s.into_iter()
                .map(|(id, ip, port)| CompactNode { id: NodeId(id), addr: v6(ip.into(), port) })
                .collect();
            let all: Vec<CompactNode> = v4s.iter().chain(v6s.iter()).copied().collect();
            prop_assert_eq!(decode_nodes_v4(&encode_nodes_v4(&all)).unwrap(), v4s);
            prop_assert_eq!(decode_nodes_v6(&encode_nodes_v6(&all)).unwrap(), v6s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_nodes_v4(&bytes);
            let _ = decode_nodes_v6(&bytes);
        }

        #[test]
        fn distance_is_symmetric_and_zero_only_to_self(a in any::<[u8; 20]>(), b in any::<[u8; 20]>()) {
            let (a, b) = (NodeId(a), NodeId(b));
            prop_assert_eq!(a.distance(&b), b.distance(&a));
            prop_assert_eq!(a.distance(&b).leading_zeros() == 160, a == b);
        }
    }
}
