//! The swarm file: where each live peer of private mode listens, saved so that a restart
//! rebuilds the swarms (the database holds the baselines, which have no address).
//!
//! Format: the 8-byte magic `RILLSWM1`, then fixed 55-byte records: user id (u64, big
//! endian), torrent id (u64), peer id (20 bytes), family (4 or 6), address (16 bytes, an
//! IPv4 address in the first 4, zeros after), port (u16). Invariants: decoding never
//! panics and allocates at most one record per 55 input bytes; a file with a wrong magic,
//! a cut record or an unknown family is refused whole (the caller starts with empty swarms,
//! which clients refill at their next announce).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rill_common::PeerId;
use thiserror::Error;

use super::{PeerKey, TorrentId, UserId};

/// The first bytes of a swarm file.
pub const MAGIC: &[u8; 8] = b"RILLSWM1";
/// The length of one record.
const RECORD: usize = 8 + 8 + 20 + 1 + 16 + 2;

/// Why a swarm file cannot be read.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum SavedError {
    /// It does not start with [`MAGIC`].
    #[error("not a rill-tracker swarm file")]
    Magic,
    /// Its length is not the magic plus whole records.
    #[error("swarm file cut in the middle of a record")]
    Truncated,
    /// A record has a family other than 4 or 6.
    #[error("swarm file record with unknown address family {0}")]
    Family(u8),
}

/// Encodes `(peer, address)` pairs as a swarm file.
pub fn encode(peers: &[(PeerKey, SocketAddr)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + peers.len() * RECORD);
    out.extend_from_slice(MAGIC);
    for (key, addr) in peers {
        out.extend_from_slice(&key.user.0.to_be_bytes());
        out.extend_from_slice(&key.torrent.0.to_be_bytes());
        out.extend_from_slice(key.peer_id.as_bytes());
        let mut ip = [0u8; 16];
        match addr.ip().to_canonical() {
            IpAddr::V4(v4) => {
                out.push(4);
                for (to, from) in ip.iter_mut().zip(v4.octets()) {
                    *to = from;
                }
            }
            IpAddr::V6(v6) => {
                out.push(6);
                ip = v6.octets();
            }
        }
        out.extend_from_slice(&ip);
        out.extend_from_slice(&addr.port().to_be_bytes());
    }
    out
}

/// Decodes a swarm file (see the module doc).
pub fn decode(bytes: &[u8]) -> Result<Vec<(PeerKey, SocketAddr)>, SavedError> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(SavedError::Magic)?;
    if body.len() % RECORD != 0 {
        return Err(SavedError::Truncated);
    }
    body.chunks_exact(RECORD).map(record).collect()
}

fn record(r: &[u8]) -> Result<(PeerKey, SocketAddr), SavedError> {
    let (user, r) = split::<8>(r)?;
    let (torrent, r) = split::<8>(r)?;
    let (peer_id, r) = split::<20>(r)?;
    let (family, r) = split::<1>(r)?;
    let (ip, r) = split::<16>(r)?;
    let (port, _) = split::<2>(r)?;
    let ip = match family {
        [4] => {
            let [a, b, c, d, ..] = ip;
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        }
        [6] => IpAddr::V6(Ipv6Addr::from(ip)),
        [other] => return Err(SavedError::Family(other)),
    };
    let key = PeerKey {
        user: UserId(u64::from_be_bytes(user)),
        torrent: TorrentId(u64::from_be_bytes(torrent)),
        peer_id: PeerId::from_bytes(peer_id),
    };
    Ok((key, SocketAddr::new(ip, u16::from_be_bytes(port))))
}

fn split<const N: usize>(r: &[u8]) -> Result<([u8; N], &[u8]), SavedError> {
    let (head, rest) = r.split_at_checked(N).ok_or(SavedError::Truncated)?;
    let head = <[u8; N]>::try_from(head).map_err(|_| SavedError::Truncated)?;
    Ok((head, rest))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(n: u8) -> PeerKey {
        PeerKey {
            user: UserId(u64::from(n) << 40),
            torrent: TorrentId(u64::from(n) + 7),
            peer_id: PeerId::from_bytes([n; 20]),
        }
    }

    #[test]
    fn round_trips_both_families_and_refuses_damage() {
        let peers = vec![
            (key(1), "10.1.2.3:6881".parse().unwrap()),
            (key(2), "[2001:db8::5]:51413".parse().unwrap()),
        ];
        let bytes = encode(&peers);
        assert_eq!(bytes.len(), 8 + 2 * RECORD);
        assert_eq!(decode(&bytes).unwrap(), peers);
        assert_eq!(
            decode(&bytes[..bytes.len() - 1]),
            Err(SavedError::Truncated)
        );
        assert_eq!(decode(b"RILLSWM2"), Err(SavedError::Magic));
        assert_eq!(decode(MAGIC).unwrap(), Vec::new());
        let mut bad = bytes.clone();
        bad[8 + 36] = 5;
        assert_eq!(decode(&bad), Err(SavedError::Family(5)));
        // A mapped address is saved as IPv4.
        let mapped = vec![(key(3), "[::ffff:1.2.3.4]:80".parse().unwrap())];
        let back = decode(&encode(&mapped)).unwrap();
        assert_eq!(back[0].1, "1.2.3.4:80".parse::<SocketAddr>().unwrap());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode(&with_magic);
        }

        #[test]
        fn round_trip(records in proptest::collection::vec(
            (any::<u64>(), any::<u64>(), any::<[u8; 20]>(), any::<std::net::SocketAddrV4>()), 0..20)
        ) {
            let peers: Vec<(PeerKey, SocketAddr)> = records
                .into_iter()
                .map(|(u, t, p, a)| {
                    let key = PeerKey { user: UserId(u), torrent: TorrentId(t), peer_id: PeerId::from_bytes(p) };
                    (key, SocketAddr::V4(a))
                })
                .collect();
            prop_assert_eq!(decode(&encode(&peers)).unwrap(), peers);
        }
    }
}
