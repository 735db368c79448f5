//! Tests of the UDP tracker packets: known answers from the BEP 15 tables, round trips.

use std::net::{Ipv6Addr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;

use super::*;

fn connect_request() -> Vec<u8> {
    let mut p = vec![0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80]; // protocol_id
    p.extend_from_slice(&[0, 0, 0, 0]); // action: connect
    p.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // transaction_id
    p
}

#[test]
fn connect_known_answer() {
    let packet = connect_request();
    let req = Request::Connect {
        transaction_id: 0xdead_beef,
    };
    assert_eq!(req.encode(), packet);
    assert_eq!(Request::decode(&packet), Ok(req));

    let mut bad = packet.clone();
    bad[7] = 0x81;
    assert_eq!(
        Request::decode(&bad),
        Err(UdpError::BadProtocolId(0x0417_2710_1981))
    );

    let reply = [0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8];
    let resp = Response::Connect {
        transaction_id: 0xdead_beef,
        connection_id: 0x0102_0304_0506_0708,
    };
    assert_eq!(resp.encode(Family::V4), reply);
    assert_eq!(Response::decode(&reply, Family::V4), Ok(resp.clone()));
    // Longer packets are accepted (BEP 15: do not assume a size), shorter are not.
    let mut longer = reply.to_vec();
    longer.extend_from_slice(b"future");
    assert_eq!(Response::decode(&longer, Family::V6), Ok(resp));
    assert_eq!(
        Response::decode(&reply[..15], Family::V4),
        Err(UdpError::Truncated {
            needed: 16,
            got: 15
        })
    );
}

fn announce_packet() -> Vec<u8> {
    let mut p = vec![1, 2, 3, 4, 5, 6, 7, 8]; // connection_id
    p.extend_from_slice(&[0, 0, 0, 1]); // action: announce
    p.extend_from_slice(&[0, 0, 0, 42]); // transaction_id
    p.extend_from_slice(&[0xaa; 20]); // info_hash
    p.extend_from_slice(b"-RL0100-abcdefghijkl"); // peer_id
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x10, 0]); // downloaded 4096
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x20, 0]); // left 8192
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]); // uploaded 7
    p.extend_from_slice(&[0, 0, 0, 2]); // event: started
    p.extend_from_slice(&[0, 0, 0, 0]); // ip: default
    p.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]); // key
    p.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // num_want -1
    p.extend_from_slice(&[0x1a, 0xe1]); // port 6881
    p
}

fn announce() -> AnnounceRequest {
    AnnounceRequest {
        connection_id: 0x0102_0304_0506_0708,
        transaction_id: 42,
        info_hash: InfoHash::from_bytes([0xaa; 20]),
        peer_id: PeerId::from_bytes(*b"-RL0100-abcdefghijkl"),
        downloaded: 4096,
        left: 8192,
        uploaded: 7,
        event: Some(AnnounceEvent::Started),
        ip: Ipv4Addr::UNSPECIFIED,
        key: 0x1234_5678,
        num_want: -1,
        port: 6881,
        url_data: Vec::new(),
    }
}

#[test]
fn announce_known_answer() {
    let packet = announce_packet();
    assert_eq!(packet.len(), ANNOUNCE_LEN);
    assert_eq!(Request::Announce(announce()).encode(), packet);
    assert_eq!(Request::decode(&packet), Ok(Request::Announce(announce())));
    assert_eq!(
        Request::decode(&packet[..97]),
        Err(UdpError::Truncated {
            needed: 98,
            got: 97
        })
    );
    let mut bad_event = packet.clone();
    bad_event[83] = 9;
    assert_eq!(Request::decode(&bad_event), Err(UdpError::BadEvent(9)));
    assert_eq!(request_transaction_id(&packet), Some(42));
    assert_eq!(request_transaction_id(&packet[..15]), None);
}

#[test]
fn announce_with_url_data() {
    let mut packet = announce_packet();
    packet.extend_from_slice(&[2, 13]);
    packet.extend_from_slice(b"/announce/abc");
    packet.push(0);
    let mut req = announce();
    req.url_data = b"/announce/abc".to_vec();
    assert_eq!(Request::Announce(req.clone()).encode(), packet);
    assert_eq!(Request::decode(&packet), Ok(Request::Announce(req)));

    // Cut inside the option: the whole announce is refused.
    packet.truncate(ANNOUNCE_LEN + 5);
    assert_eq!(
        Request::decode(&packet),
        Err(UdpError::BadOptions("option shorter than its length"))
    );
    packet.truncate(ANNOUNCE_LEN + 1);
    assert_eq!(
        Request::decode(&packet),
        Err(UdpError::BadOptions("option without its length byte"))
    );
}

#[test]
fn url_data_options() {
    // Long data is split into 255-byte chunks.
    let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::new();
    encode_url_data(&data, &mut out);
    assert_eq!(out.len(), 2 + 255 + 2 + 45 + 1);
    assert_eq!(&out[..2], &[2, 255]);
    assert_eq!(&out[257..259], &[2, 45]);
    assert_eq!(out.last(), Some(&0));
    assert_eq!(decode_url_data(&out), Ok(data));

    // NOPs and unknown options are skipped, the list may end without end-of-options, and
    // what follows end-of-options is ignored.
    let options = [1, 2, 2, b'/', b'a', 1, 9, 1, 0xff, 2, 1, b'b'];
    assert_eq!(decode_url_data(&options), Ok(b"/ab".to_vec()));
    assert_eq!(decode_url_data(&[2, 1, b'x', 0, 2, 200]), Ok(b"x".to_vec()));
    assert_eq!(decode_url_data(&[]), Ok(Vec::new()));
    let mut empty = Vec::new();
    encode_url_data(&[], &mut empty);
    assert!(empty.is_empty());
}

#[test]
fn announce_reply_known_answer() {
    let mut v4 = vec![0, 0, 0, 1, 0, 0, 0, 42]; // action, transaction_id
    v4.extend_from_slice(&[0, 0, 0x07, 0x08]); // interval 1800
    v4.extend_from_slice(&[0, 0, 0, 3]); // leechers
    v4.extend_from_slice(&[0, 0, 0, 5]); // seeders
    v4.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1]);
    let ipv4_peer: SocketAddr = "10.0.0.1:6881".parse().unwrap();
    let ipv6_peer: SocketAddr = "[2001:db8::1]:6881".parse().unwrap();
    let resp = Response::Announce {
        transaction_id: 42,
        interval: 1800,
        leechers: 3,
        seeders: 5,
        peers: vec![ipv4_peer, ipv6_peer],
    };
    // Only the request family's peers are written.
    assert_eq!(resp.encode(Family::V4), v4);
    let Ok(Response::Announce { peers, .. }) = Response::decode(&v4, Family::V4) else {
        panic!("not an announce reply");
    };
    assert_eq!(peers, vec![ipv4_peer]);

    let v6 = resp.encode(Family::V6);
    assert_eq!(v6.len(), 20 + 18);
    assert_eq!(
        &v6[20..36],
        &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()
    );
    let Ok(Response::Announce { peers, .. }) = Response::decode(&v6, Family::V6) else {
        panic!("not an announce reply");
    };
    assert_eq!(peers, vec![ipv6_peer]);

    // A v4 reply read as v6 has a ragged peer list.
    assert_eq!(
        Response::decode(&v4, Family::V6),
        Err(UdpError::Ragged { len: 6, entry: 18 })
    );
}

#[test]
fn announce_reply_is_capped() {
    let peers: Vec<SocketAddr> = (0..1000u16)
        .map(|port| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
        .collect();
    let resp = Response::Announce {
        transaction_id: 1,
        interval: 1,
        leechers: 1,
        seeders: 1,
        peers,
    };
    let packet = resp.encode(Family::V4);
    assert_eq!(max_peers(Family::V4), 246);
    assert_eq!(max_peers(Family::V6), 82);
    assert_eq!(packet.len(), 20 + 246 * 6);
    assert!(packet.len() <= MAX_PACKET_LEN);
}

#[test]
fn scrape_known_answer() {
    let mut packet = vec![1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 2, 0, 0, 0, 9];
    packet.extend_from_slice(&[0x11; 20]);
    packet.extend_from_slice(&[0x22; 20]);
    let req = Request::Scrape {
        connection_id: 0x0102_0304_0506_0708,
        transaction_id: 9,
        info_hashes: vec![
            InfoHash::from_bytes([0x11; 20]),
            InfoHash::from_bytes([0x22; 20]),
        ],
    };
    assert_eq!(req.encode(), packet);
    assert_eq!(Request::decode(&packet), Ok(req));
    assert_eq!(
        Request::decode(&packet[..55]),
        Err(UdpError::Ragged { len: 39, entry: 20 })
    );
    assert_eq!(Request::decode(&packet[..16]), Err(UdpError::NoInfoHashes));
    let mut big = packet[..16].to_vec();
    big.extend_from_slice(&[0; 20 * 75]);
    assert_eq!(Request::decode(&big), Err(UdpError::TooManyInfoHashes(75)));
    big.truncate(16 + 20 * 74);
    assert!(Request::decode(&big).is_ok());

    let reply = [
        0, 0, 0, 2, 0, 0, 0, 9, // action, transaction_id
        0, 0, 0, 5, 0, 0, 0, 50, 0, 0, 0, 10, // seeders, completed, leechers
    ];
    let resp = Response::Scrape {
        transaction_id: 9,
        stats: vec![ScrapeStats {
            seeders: 5,
            completed: 50,
            leechers: 10,
        }],
    };
    assert_eq!(resp.encode(Family::V4), reply);
    assert_eq!(Response::decode(&reply, Family::V4), Ok(resp));
    assert_eq!(
        Response::decode(&reply[..19], Family::V4),
        Err(UdpError::Ragged { len: 11, entry: 12 })
    );
}

#[test]
fn error_known_answer() {
    let packet = b"\x00\x00\x00\x03\x00\x00\x00\x07bad passkey";
    let resp = Response::Error {
        transaction_id: 7,
        message: "bad passkey".into(),
    };
    assert_eq!(resp.encode(Family::V4), packet);
    assert_eq!(Response::decode(packet, Family::V4), Ok(resp.clone()));
    assert_eq!(resp.transaction_id(), 7);
    assert_eq!(
        Response::decode(b"\x00\x00\x00\x04\x00\x00\x00\x07", Family::V4),
        Err(UdpError::UnknownAction(4))
    );
    let mut unknown = connect_request();
    unknown[11] = 3; // an error packet is not a request
    assert_eq!(Request::decode(&unknown), Err(UdpError::UnknownAction(3)));
}

fn arb_v6() -> impl Strategy<Value = SocketAddr> {
    (any::<u128>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)))
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
        ids in any::<(u64, u32)>(), info_hash: [u8; 20], peer_id: [u8; 20],
        counters in any::<(u64, u64, u64)>(), event in arb_event(), ip: Ipv4Addr,
        key: u32, num_want: i32, port: u16,
        url_data in proptest::collection::vec(any::<u8>(), 0..600),
    ) -> AnnounceRequest {
        AnnounceRequest {
            connection_id: ids.0, transaction_id: ids.1,
            info_hash: InfoHash::from_bytes(info_hash), peer_id: PeerId::from_bytes(peer_id),
            downloaded: counters.0, left: counters.1, uploaded: counters.2,
            event, ip, key, num_want, port, url_data,
        }
    }
}

fn arb_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        any::<u32>().prop_map(|transaction_id| Request::Connect { transaction_id }),
        arb_announce().prop_map(Request::Announce),
        (
            any::<(u64, u32)>(),
            proptest::collection::vec(any::<[u8; 20]>(), 1..=MAX_SCRAPE_HASHES)
        )
            .prop_map(
                |((connection_id, transaction_id), hashes)| Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes: hashes.into_iter().map(InfoHash::from_bytes).collect(),
                }
            ),
    ]
}

fn arb_response(family: Family) -> impl Strategy<Value = Response> {
    let peer = match family {
        Family::V4 => any::<SocketAddrV4>().prop_map(SocketAddr::V4).boxed(),
        Family::V6 => arb_v6().boxed(),
    };
    prop_oneof![
        any::<(u32, u64)>().prop_map(|(transaction_id, connection_id)| Response::Connect {
            transaction_id,
            connection_id
        }),
        (
            any::<(u32, u32, u32, u32)>(),
            proptest::collection::vec(peer, 0..=max_peers(family))
        )
            .prop_map(|((transaction_id, interval, leechers, seeders), peers)| {
                Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                }
            }),
        (
            any::<u32>(),
            proptest::collection::vec(any::<(u32, u32, u32)>(), 0..=MAX_SCRAPE_HASHES)
        )
            .prop_map(|(transaction_id, stats)| Response::Scrape {
                transaction_id,
                stats: stats
                    .into_iter()
                    .map(|(seeders, completed, leechers)| ScrapeStats {
                        seeders,
                        completed,
                        leechers
                    })
                    .collect(),
            }),
        (any::<u32>(), any::<String>()).prop_map(|(transaction_id, message)| Response::Error {
            transaction_id,
            message
        }),
    ]
}

proptest! {
    #[test]
    fn request_round_trip(req in arb_request()) {
        prop_assert_eq!(Request::decode(&req.encode()), Ok(req));
    }

    #[test]
    fn response_v4_round_trip(resp in arb_response(Family::V4)) {
        prop_assert_eq!(Response::decode(&resp.encode(Family::V4), Family::V4), Ok(resp));
    }

    #[test]
    fn response_v6_round_trip(resp in arb_response(Family::V6)) {
        prop_assert_eq!(Response::decode(&resp.encode(Family::V6), Family::V6), Ok(resp));
    }

    #[test]
    fn url_data_round_trip(data in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let mut out = Vec::new();
        encode_url_data(&data, &mut out);
        prop_assert_eq!(decode_url_data(&out), Ok(data));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes, Family::V4);
        let _ = Response::decode(&bytes, Family::V6);
        let _ = decode_url_data(&bytes);
        let _ = request_transaction_id(&bytes);
    }

    #[test]
    fn mutated_announce_never_panics(
        cut in 0usize..140, flip in 0usize..140, byte: u8,
        options in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut packet = announce_packet();
        packet.extend_from_slice(&options);
        if let Some(b) = packet.get_mut(flip) {
            *b = byte;
        }
        packet.truncate(cut);
        let _ = Request::decode(&packet);
    }
}
