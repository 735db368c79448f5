//! The simulated load: torrents, peers, and what each announce says.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rill_common::tracker::http::percent_encode_bytes;
use rill_common::{InfoHash, PeerId};
use rill_tracker::private::Passkey;

use crate::{NUMWANT, PEERS, TORRENTS, USERS};

/// One simulated peer: always announces to the same torrent from the same port.
pub(crate) struct Peer {
    pub(crate) peer_id: PeerId,
    /// Percent-encoded peer id, precomputed so that the generator stays cheap.
    peer_id_query: String,
    pub(crate) port: u16,
    pub(crate) torrent: usize,
    /// Its user (private mode), an index into `Population::passkeys`.
    pub(crate) user: usize,
}

/// The fixed load: torrents and peers.
pub(crate) struct Population {
    pub(crate) hashes: Vec<InfoHash>,
    hash_queries: Vec<String>,
    pub(crate) peers: Vec<Peer>,
    /// Private mode: the users' passkeys (`None`: public mode, `/announce`).
    pub(crate) passkeys: Option<Vec<Passkey>>,
}

impl Population {
    pub(crate) fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let hashes: Vec<InfoHash> = (0..TORRENTS)
            .map(|_| InfoHash::from_bytes(rng.random()))
            .collect();
        let hash_queries = hashes
            .iter()
            .map(|h| percent_encode_bytes(h.as_bytes()))
            .collect();
        let peers = (0..PEERS)
            .map(|i| {
                let mut id = *b"-LB0001-000000000000";
                rng.fill(&mut id[8..]);
                let peer_id = PeerId::from_bytes(id);
                Peer {
                    peer_id,
                    peer_id_query: percent_encode_bytes(peer_id.as_bytes()),
                    // Distinct ports: every peer comes from 127.0.0.1, and trackers key
                    // peers by address and port.
                    port: 10_000 + u16::try_from(i).unwrap_or(0),
                    torrent: rng.random_range(0..TORRENTS),
                    user: i % USERS,
                }
            })
            .collect();
        Population {
            hashes,
            hash_queries,
            peers,
            passkeys: None,
        }
    }

    /// The same peers in private mode: `USERS` users with random passkeys, each peer
    /// announcing with its user's.
    pub(crate) fn private() -> Self {
        let mut rng = StdRng::seed_from_u64(0x9a55);
        let passkeys = (0..USERS).map(|_| Passkey::generate(&mut rng)).collect();
        Population {
            passkeys: Some(passkeys),
            ..Population::new()
        }
    }

    /// The announce path of a peer: `/announce` or `/announce/<passkey>` (also its BEP 41
    /// URL data over UDP).
    pub(crate) fn path(&self, peer: &Peer) -> String {
        match self.passkeys.as_ref().and_then(|keys| keys.get(peer.user)) {
            Some(key) => format!("/announce/{}", key.as_str()),
            None => "/announce".to_owned(),
        }
    }
}

/// What one announce says besides who is asking.
pub(crate) struct Draw {
    pub(crate) left: u64,
    pub(crate) uploaded: u64,
    pub(crate) downloaded: u64,
    pub(crate) started: bool,
}

pub(crate) fn draw(rng: &mut StdRng, warm_up: bool) -> Draw {
    let left = if rng.random_ratio(1, 5) {
        0
    } else {
        rng.random_range(1..1_u64 << 32)
    };
    Draw {
        left,
        uploaded: rng.random_range(0..1_u64 << 34),
        downloaded: rng.random_range(0..1_u64 << 34),
        started: warm_up || rng.random_ratio(1, 20),
    }
}

pub(crate) fn http_request(pop: &Population, peer: &Peer, d: &Draw, host: &str) -> Vec<u8> {
    let event = if d.started { "&event=started" } else { "" };
    format!(
        "GET {}?info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}\
         {event}&compact=1&numwant={NUMWANT} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        pop.path(peer),
        pop.hash_queries[peer.torrent],
        peer.peer_id_query,
        peer.port,
        d.uploaded,
        d.downloaded,
        d.left
    )
    .into_bytes()
}
