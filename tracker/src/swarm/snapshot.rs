//! The saved form of the swarms: what a restart needs to rebuild them (every peer with its
//! address, id, seeder flag, counted completion and last announce, and every torrent's
//! `downloaded` count for scrapes), as bytes the persistence shell stores in the database.
//!
//! Format: the 8-byte magic `RILLSNP1`, then torrents: info hash (20 bytes), `downloaded`
//! (u32, big endian), peer count (u32), then that many 48-byte peer records: family (4 or
//! 6), address (16 bytes, an IPv4 address in the first 4, zeros after), port (u16), peer id
//! (20 bytes), flags (bit 0 seeder, bit 1 completion counted), last announce (u64 unix
//! seconds).
//!
//! Invariants: decoding never panics and allocates at most one peer per 48 input bytes (a
//! peer count is checked against the bytes left before anything is reserved); input with a
//! wrong magic, a cut record, an unknown family or unknown flag bits is refused whole (the
//! caller starts with empty swarms, which clients refill at their next announce).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rill_common::{InfoHash, PeerId};
use thiserror::Error;

/// The first bytes of a saved snapshot.
pub const MAGIC: &[u8; 8] = b"RILLSNP1";
/// The length of one peer record.
const PEER: usize = 1 + 16 + 2 + 20 + 1 + 8;
const SEEDER: u8 = 1;
const COMPLETED: u8 = 2;

/// Why saved swarms cannot be read.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// It does not start with [`MAGIC`].
    #[error("not a rill-tracker swarm snapshot")]
    Magic,
    /// It ends in the middle of a torrent or peer.
    #[error("swarm snapshot cut in the middle of a record")]
    Truncated,
    /// A peer has a family other than 4 or 6.
    #[error("swarm snapshot peer with unknown address family {0}")]
    Family(u8),
    /// A peer has flag bits this version does not know.
    #[error("swarm snapshot peer with unknown flags {0:#04x}")]
    Flags(u8),
}

/// One saved peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Whether it had nothing left at its last announce.
    pub seeder: bool,
    /// Whether its `completed` was counted in the torrent's `downloaded`.
    pub completed: bool,
    /// Unix seconds of its last announce.
    pub last_seen: u64,
}

/// One saved torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedTorrent {
    /// The torrent.
    pub info_hash: InfoHash,
    /// `completed` events counted (scrape's `downloaded`).
    pub downloaded: u32,
    /// Its peers.
    pub peers: Vec<SavedPeer>,
}

/// Encodes torrents as a snapshot.
pub fn encode(torrents: &[SavedTorrent]) -> Vec<u8> {
    let peers: usize = torrents.iter().map(|t| t.peers.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + torrents.len() * 28 + peers * PEER);
    out.extend_from_slice(MAGIC);
    for torrent in torrents {
        out.extend_from_slice(torrent.info_hash.as_bytes());
        out.extend_from_slice(&torrent.downloaded.to_be_bytes());
        let count = u32::try_from(torrent.peers.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for peer in torrent.peers.iter().take(count as usize) {
            let mut ip = [0u8; 16];
            match peer.addr.ip().to_canonical() {
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
            out.extend_from_slice(&peer.addr.port().to_be_bytes());
            out.extend_from_slice(peer.peer_id.as_bytes());
            let flags = (SEEDER * u8::from(peer.seeder)) | (COMPLETED * u8::from(peer.completed));
            out.push(flags);
            out.extend_from_slice(&peer.last_seen.to_be_bytes());
        }
    }
    out
}

/// Decodes a snapshot (see the module doc).
pub fn decode(bytes: &[u8]) -> Result<Vec<SavedTorrent>, SnapshotError> {
    let mut rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(SnapshotError::Magic)?;
    let mut torrents = Vec::new();
    while !rest.is_empty() {
        let (info_hash, r) = split::<20>(rest)?;
        let (downloaded, r) = split::<4>(r)?;
        let (count, r) = split::<4>(r)?;
        let count = u32::from_be_bytes(count) as usize;
        // Checked before reserving: at most one peer per record's worth of input.
        let len = count.checked_mul(PEER).ok_or(SnapshotError::Truncated)?;
        let (records, r) = r.split_at_checked(len).ok_or(SnapshotError::Truncated)?;
        let peers = records
            .chunks_exact(PEER)
            .map(peer)
            .collect::<Result<Vec<_>, _>>()?;
        torrents.push(SavedTorrent {
            info_hash: InfoHash::from_bytes(info_hash),
            downloaded: u32::from_be_bytes(downloaded),
            peers,
        });
        rest = r;
    }
    Ok(torrents)
}

fn peer(r: &[u8]) -> Result<SavedPeer, SnapshotError> {
    let (family, r) = split::<1>(r)?;
    let (ip, r) = split::<16>(r)?;
    let (port, r) = split::<2>(r)?;
    let (peer_id, r) = split::<20>(r)?;
    let ([flags], r) = split::<1>(r)?;
    let (last_seen, _) = split::<8>(r)?;
    let ip = match family {
        [4] => {
            let [a, b, c, d, ..] = ip;
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        }
        [6] => IpAddr::V6(Ipv6Addr::from(ip)),
        [other] => return Err(SnapshotError::Family(other)),
    };
    if flags & !(SEEDER | COMPLETED) != 0 {
        return Err(SnapshotError::Flags(flags));
    }
    Ok(SavedPeer {
        addr: SocketAddr::new(ip, u16::from_be_bytes(port)),
        peer_id: PeerId::from_bytes(peer_id),
        seeder: flags & SEEDER != 0,
        completed: flags & COMPLETED != 0,
        last_seen: u64::from_be_bytes(last_seen),
    })
}

fn split<const N: usize>(r: &[u8]) -> Result<([u8; N], &[u8]), SnapshotError> {
    let (head, rest) = r.split_at_checked(N).ok_or(SnapshotError::Truncated)?;
    let head = <[u8; N]>::try_from(head).map_err(|_| SnapshotError::Truncated)?;
    Ok((head, rest))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn torrents() -> Vec<SavedTorrent> {
        vec![
            SavedTorrent {
                info_hash: InfoHash::from_bytes([1; 20]),
                downloaded: 7,
                peers: vec![
                    SavedPeer {
                        addr: "10.1.2.3:6881".parse().unwrap(),
                        peer_id: PeerId::from_bytes([2; 20]),
                        seeder: true,
                        completed: true,
                        last_seen: 1_700_000_000,
                    },
                    SavedPeer {
                        addr: "[2001:db8::5]:51413".parse().unwrap(),
                        peer_id: PeerId::from_bytes([3; 20]),
                        seeder: false,
                        completed: false,
                        last_seen: 1_700_000_100,
                    },
                ],
            },
            SavedTorrent {
                info_hash: InfoHash::from_bytes([9; 20]),
                downloaded: 3,
                peers: Vec::new(),
            },
        ]
    }

    #[test]
    fn round_trips_both_families_and_refuses_damage() {
        let saved = torrents();
        let bytes = encode(&saved);
        assert_eq!(bytes.len(), 8 + 2 * 28 + 2 * PEER);
        assert_eq!(decode(&bytes).unwrap(), saved);
        assert_eq!(decode(MAGIC).unwrap(), Vec::new());
        assert_eq!(decode(b"RILLSWM1"), Err(SnapshotError::Magic));
        for cut in [1, 10, 30] {
            assert_eq!(
                decode(&bytes[..bytes.len() - cut]),
                Err(SnapshotError::Truncated),
                "{cut}"
            );
        }
        let first_peer = 8 + 28;
        let mut bad = bytes.clone();
        bad[first_peer] = 5;
        assert_eq!(decode(&bad), Err(SnapshotError::Family(5)));
        let mut bad = bytes.clone();
        bad[first_peer + 39] = 0x80 | SEEDER;
        assert_eq!(decode(&bad), Err(SnapshotError::Flags(0x81)));
        // A peer count far past the input is refused before anything is reserved.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&[0; 24]);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&huge), Err(SnapshotError::Truncated));
        // A mapped address is saved as IPv4.
        let mut mapped = torrents();
        mapped[0].peers[0].addr = "[::ffff:1.2.3.4]:80".parse().unwrap();
        let back = decode(&encode(&mapped)).unwrap();
        assert_eq!(back[0].peers[0].addr, "1.2.3.4:80".parse().unwrap());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode(&with_magic);
        }

        #[test]
        fn round_trip(saved in proptest::collection::vec(
            (any::<[u8; 20]>(), any::<u32>(), proptest::collection::vec(
                (any::<std::net::SocketAddrV4>(), any::<[u8; 20]>(), any::<bool>(), any::<bool>(), any::<u64>()),
                0..8,
            )),
            0..6,
        )) {
            let torrents: Vec<SavedTorrent> = saved
                .into_iter()
                .map(|(hash, downloaded, peers)| SavedTorrent {
                    info_hash: InfoHash::from_bytes(hash),
                    downloaded,
                    peers: peers
                        .into_iter()
                        .map(|(addr, id, seeder, completed, last_seen)| SavedPeer {
                            addr: SocketAddr::V4(addr),
                            peer_id: PeerId::from_bytes(id),
                            seeder,
                            completed,
                            last_seen,
                        })
                        .collect(),
                })
                .collect();
            prop_assert_eq!(decode(&encode(&torrents)).unwrap(), torrents);
        }
    }
}
