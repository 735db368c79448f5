//! The HTTP tracker decoders on arbitrary bytes: announce and scrape queries (tracker side),
//! announce and scrape replies (client side).
//!
//! Checks, for every input that decodes:
//! - `AnnounceRequest`: `from_query(to_query(r)) == r` (when the re-encoded query is within
//!   the length cap: percent-encoding may triple a value);
//! - `ScrapeRequest`: `from_query(to_query(r)) == r` under the same hash cap;
//! - `AnnounceResponse`: the dictionary model round-trips exactly; the compact model
//!   round-trips up to what it cannot carry (peer ids, the IPv4/IPv6 interleaving);
//! - `ScrapeResponse`: `from_bytes(to_bytes(r)) == r`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_common::tracker::http::{
    AnnounceRequest, AnnounceResponse, MAX_ANNOUNCE_QUERY_LEN, Peer, ScrapeRequest, ScrapeResponse,
};

/// The scrape cap used here: what fits in one UDP scrape, a cap a tracker might choose.
const MAX_HASHES: usize = 74;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = AnnounceRequest::from_query(data) {
        let query = request.to_query();
        if query.len() <= MAX_ANNOUNCE_QUERY_LEN {
            let again = AnnounceRequest::from_query(query.as_bytes());
            assert_eq!(again.as_ref(), Ok(&request), "query {query:?}");
        }
    }
    if let Ok(request) = ScrapeRequest::from_query(data, MAX_HASHES) {
        assert!(request.info_hashes.len() <= MAX_HASHES);
        let query = request.to_query();
        let again = ScrapeRequest::from_query(query.as_bytes(), MAX_HASHES);
        assert_eq!(again.as_ref(), Ok(&request), "query {query:?}");
    }
    if let Ok(response) = AnnounceResponse::from_bytes(data) {
        for no_peer_id in [false, true] {
            let again = AnnounceResponse::from_bytes(&response.to_bytes(false, no_peer_id));
            let expected = match (&response, no_peer_id) {
                (AnnounceResponse::Success(reply), true) => {
                    let mut reply = reply.clone();
                    reply.peers.iter_mut().for_each(|p| p.peer_id = None);
                    AnnounceResponse::Success(reply)
                }
                _ => response.clone(),
            };
            assert_eq!(again, Ok(expected));
        }
        let again = AnnounceResponse::from_bytes(&response.to_bytes(true, false));
        let expected = match &response {
            AnnounceResponse::Success(reply) => {
                let mut reply = reply.clone();
                let anonymous = |p: &Peer| Peer {
                    addr: p.addr,
                    peer_id: None,
                };
                let v4 = reply.peers.iter().filter(|p| p.addr.is_ipv4());
                let v6 = reply.peers.iter().filter(|p| p.addr.is_ipv6());
                reply.peers = v4.chain(v6).map(anonymous).collect();
                AnnounceResponse::Success(reply)
            }
            failure => failure.clone(),
        };
        assert_eq!(again, Ok(expected));
    }
    if let Ok(response) = ScrapeResponse::from_bytes(data) {
        assert_eq!(
            ScrapeResponse::from_bytes(&response.to_bytes()),
            Ok(response)
        );
    }
});
