//! The BEP 6 allowed fast set: the pieces a peer may request while choked, computed
//! with the BEP's canonical algorithm so every client offers the same pieces to an IP.

use std::net::Ipv4Addr;

use rill_common::InfoHash;
use rill_common::pieces::PieceIndex;
use sha1::{Digest, Sha1};

/// The size of the allowed fast set we offer (BEP 6 suggests 10).
pub const ALLOWED_FAST_COUNT: u32 = 10;

/// The first `k` pieces of the allowed fast set of a peer at `ip` (BEP 6 "Allowed Fast
/// Set Generation"); fewer if the torrent has fewer than `k` pieces.
pub fn allowed_fast_set(
    ip: Ipv4Addr,
    info_hash: &InfoHash,
    piece_count: u32,
    k: u32,
) -> Vec<PieceIndex> {
    let k = k.min(piece_count) as usize;
    let mut set: Vec<PieceIndex> = Vec::with_capacity(k);
    // x = (ip & 0xffffff00) ++ info hash; then x = SHA1(x) repeatedly, 5 indexes per hash.
    let mut x: Vec<u8> = (u32::from(ip) & 0xffff_ff00).to_be_bytes().to_vec();
    x.extend_from_slice(info_hash.as_bytes());
    while set.len() < k {
        let digest = Sha1::digest(&x);
        for word in digest.chunks_exact(4) {
            if set.len() >= k {
                break;
            }
            let y = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            let index = PieceIndex(y % piece_count);
            if !set.contains(&index) {
                set.push(index);
            }
        }
        x = digest.to_vec();
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers_from_bep_6() {
        let hash = InfoHash::from_bytes([0xaa; 20]);
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        let pieces = |k| -> Vec<u32> {
            allowed_fast_set(ip, &hash, 1313, k)
                .iter()
                .map(|p| p.get())
                .collect()
        };
        assert_eq!(pieces(7), [1059, 431, 808, 1217, 287, 376, 1188]);
        assert_eq!(pieces(9), [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]);
        // The last octet does not matter.
        let other = allowed_fast_set(Ipv4Addr::new(80, 4, 4, 1), &hash, 1313, 7);
        assert_eq!(other, allowed_fast_set(ip, &hash, 1313, 7));
    }

    #[test]
    fn small_torrents_get_every_piece_at_most() {
        let hash = InfoHash::from_bytes([1; 20]);
        let mut set = allowed_fast_set(Ipv4Addr::LOCALHOST, &hash, 3, 10);
        set.sort();
        assert_eq!(set, [PieceIndex(0), PieceIndex(1), PieceIndex(2)]);
        assert!(allowed_fast_set(Ipv4Addr::LOCALHOST, &hash, 0, 10).is_empty());
    }
}
