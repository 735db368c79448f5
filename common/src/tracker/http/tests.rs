//! Tests of the HTTP tracker codecs; the shared fixtures and strategies, and the round trips.

mod query;
mod reply;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;

use super::*;
use crate::tracker::AnnounceEvent;
use crate::{InfoHash, PeerId};

/// 12 34 56 78 9a bc de f1 23 45 67 89 ab cd ef 12 34 56 78 9a: a hash whose bytes are a mix
/// of unreserved characters (0x34 '4', 0x56 'V', 0x78 'x', 0x45 'E', 0x67 'g') and escapes.
const HASH: [u8; 20] = [
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x12,
    0x34, 0x56, 0x78, 0x9a,
];
const HASH_ESCAPED: &str = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";

fn hash() -> InfoHash {
    InfoHash::from_bytes(HASH)
}

fn peer_id(text: &[u8; 20]) -> PeerId {
    PeerId::from_bytes(*text)
}

fn arb_info_hash() -> impl Strategy<Value = InfoHash> {
    any::<[u8; 20]>().prop_map(InfoHash::from_bytes)
}

fn arb_peer_id() -> impl Strategy<Value = PeerId> {
    any::<[u8; 20]>().prop_map(PeerId::from_bytes)
}

fn arb_v6() -> impl Strategy<Value = SocketAddrV6> {
    (any::<u128>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
}

fn arb_event() -> impl Strategy<Value = Option<AnnounceEvent>> {
    prop_oneof![
        Just(None),
        Just(Some(AnnounceEvent::Started)),
        Just(Some(AnnounceEvent::Completed)),
        Just(Some(AnnounceEvent::Stopped)),
        Just(Some(AnnounceEvent::Paused)),
    ]
}

prop_compose! {
    fn arb_announce()(
        info_hash in arb_info_hash(), peer_id in arb_peer_id(), port: u16,
        counters in any::<(u64, u64, u64)>(), event in arb_event(), flags in any::<(bool, bool)>(),
        numwant in any::<Option<u32>>(), key in any::<Option<String>>(),
        tracker_id in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
        ip in any::<Option<String>>(), ipv4 in any::<Option<SocketAddrV4>>(),
        ipv6 in proptest::option::of(arb_v6()), same_port in any::<(bool, bool)>(),
    ) -> AnnounceRequest {
        let fix_v4 = |a: SocketAddrV4| if same_port.0 { SocketAddrV4::new(*a.ip(), port) } else { a };
        let fix_v6 = |a: SocketAddrV6| if same_port.1 { SocketAddrV6::new(*a.ip(), port, 0, 0) } else { a };
        AnnounceRequest {
            info_hash, peer_id, port,
            uploaded: counters.0, downloaded: counters.1, left: counters.2,
            event, compact: flags.0, no_peer_id: flags.1, numwant, key, tracker_id, ip,
            ipv4: ipv4.map(fix_v4), ipv6: ipv6.map(fix_v6),
        }
    }
}

fn arb_peer() -> impl Strategy<Value = Peer> {
    let addr = prop_oneof![
        any::<SocketAddrV4>().prop_map(SocketAddr::V4),
        arb_v6().prop_map(SocketAddr::V6),
    ];
    (addr, proptest::option::of(arb_peer_id())).prop_map(|(addr, peer_id)| Peer { addr, peer_id })
}

prop_compose! {
    fn arb_reply()(
        interval: u32, min_interval: Option<u32>, complete: Option<u32>, incomplete: Option<u32>,
        tracker_id in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
        warning_message: Option<String>,
        peers in proptest::collection::vec(arb_peer(), 0..30),
    ) -> AnnounceReply {
        AnnounceReply { interval, min_interval, complete, incomplete, tracker_id, warning_message, peers }
    }
}

prop_compose! {
    fn arb_scrape_reply()(
        files in proptest::collection::btree_map(
            arb_info_hash(),
            (any::<(u32, u32, u32)>(), any::<Option<String>>()).prop_map(|((c, d, i), name)| {
                ScrapeStats { complete: c, downloaded: d, incomplete: i, name }
            }),
            0..10,
        ),
        min_request_interval: Option<u32>,
    ) -> ScrapeReply {
        ScrapeReply { files, min_request_interval }
    }
}

proptest! {
    #[test]
    fn announce_query_round_trip(req in arb_announce()) {
        let query = req.to_query();
        prop_assert_eq!(AnnounceRequest::from_query(query.as_bytes()), Ok(req));
    }

    #[test]
    fn scrape_query_round_trip(hashes in proptest::collection::vec(arb_info_hash(), 0..80)) {
        let req = ScrapeRequest { info_hashes: hashes };
        let query = req.to_query();
        prop_assert_eq!(ScrapeRequest::from_query(query.as_bytes(), 80), Ok(req));
    }

    #[test]
    fn dictionary_reply_round_trip(reply in arb_reply(), no_peer_id: bool) {
        let bytes = AnnounceResponse::Success(reply.clone()).to_bytes(false, no_peer_id);
        let mut expected = reply;
        if no_peer_id {
            expected.peers.iter_mut().for_each(|p| p.peer_id = None);
        }
        prop_assert_eq!(AnnounceResponse::from_bytes(&bytes), Ok(AnnounceResponse::Success(expected)));
    }

    #[test]
    fn compact_reply_round_trip(reply in arb_reply()) {
        let bytes = AnnounceResponse::Success(reply.clone()).to_bytes(true, false);
        let mut expected = reply;
        // Compact peers lose their ids, and IPv4 (`peers`) come before IPv6 (`peers6`).
        expected.peers.iter_mut().for_each(|p| p.peer_id = None);
        expected.peers.sort_by_key(|p| p.addr.is_ipv6());
        prop_assert_eq!(AnnounceResponse::from_bytes(&bytes), Ok(AnnounceResponse::Success(expected)));
    }

    #[test]
    fn failure_round_trip(reason: String, compact: bool) {
        let failure = AnnounceResponse::Failure(reason.clone());
        prop_assert_eq!(AnnounceResponse::from_bytes(&failure.to_bytes(compact, false)), Ok(failure));
        let failure = ScrapeResponse::Failure(reason);
        prop_assert_eq!(ScrapeResponse::from_bytes(&failure.to_bytes()), Ok(failure));
    }

    #[test]
    fn scrape_reply_round_trip(reply in arb_scrape_reply()) {
        let response = ScrapeResponse::Success(reply);
        prop_assert_eq!(ScrapeResponse::from_bytes(&response.to_bytes()), Ok(response));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = AnnounceRequest::from_query(&bytes);
        let _ = ScrapeRequest::from_query(&bytes, 5);
        let _ = AnnounceResponse::from_bytes(&bytes);
        let _ = ScrapeResponse::from_bytes(&bytes);
        let _ = scrape_url(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn query_like_bytes_never_panic(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("info_hash=".to_owned()), Just("peer_id=".to_owned()), Just("port=".to_owned()),
                Just("&".to_owned()), Just("%".to_owned()), Just("=".to_owned()),
                Just("ipv6=".to_owned()), "[0-9a-fA-F%]{0,6}",
            ],
            0..40,
        )
    ) {
        let query = parts.concat();
        let _ = AnnounceRequest::from_query(query.as_bytes());
        let _ = ScrapeRequest::from_query(query.as_bytes(), 3);
    }
}
