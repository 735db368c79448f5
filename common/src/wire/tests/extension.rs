use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;
use proptest::prelude::*;

use crate::wire::extension::{
    ExtendedHandshake, ExtensionError, MAX_METADATA_SIZE, MAX_PEX_PEERS, METADATA_PIECE_LEN,
    MetadataMessage, PexFlags, PexMessage, PexPeer, UT_METADATA, UT_PEX, metadata_piece_count,
    metadata_piece_len,
};

const HANDSHAKE: &[u8] = b"d1:md11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei31235e\
1:pi6881e4:reqqi500e11:upload_onlyi1e1:v16:Transmission 4.06:yourip4:\x7f\x00\x00\x01e";

fn sample_handshake() -> ExtendedHandshake {
    ExtendedHandshake {
        messages: BTreeMap::from([(UT_METADATA.to_owned(), 3), (UT_PEX.to_owned(), 1)]),
        client: Some("Transmission 4.0".to_owned()),
        port: Some(6881),
        request_queue: Some(500),
        your_ip: Some(IpAddr::from([127, 0, 0, 1])),
        metadata_size: Some(31235),
        upload_only: true,
    }
}

#[test]
fn extended_handshake_known_answer() {
    assert_eq!(ExtendedHandshake::decode(HANDSHAKE), Ok(sample_handshake()));
    assert_eq!(&sample_handshake().to_bytes()[..], HANDSHAKE);
    assert_eq!(sample_handshake().id_of(UT_PEX), Some(1));
    assert_eq!(sample_handshake().id_of("lt_donthave"), None);
}

#[test]
fn extended_handshake_bep10_example() {
    // BEP 10's example: {'m': {'LT_metadata': 1, 'ut_pex': 2}, 'p': 6881, 'v': "µTorrent 1.2"}.
    let hs = ExtendedHandshake::decode(
        "d1:md11:LT_metadatai1e6:ut_pexi2ee1:pi6881e1:v13:µTorrent 1.2e".as_bytes(),
    )
    .unwrap();
    assert_eq!(hs.id_of("LT_metadata"), Some(1));
    assert_eq!(hs.id_of(UT_PEX), Some(2));
    assert_eq!(hs.port, Some(6881));
    assert_eq!(hs.client.as_deref(), Some("µTorrent 1.2"));
    // 0 disables an extension; unknown keys are ignored; an IPv6 yourip is 16 bytes.
    let mut raw = b"d1:ei1e1:md6:ut_pexi0ee6:yourip16:".to_vec();
    raw.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    raw.push(b'e');
    let hs = ExtendedHandshake::decode(&raw).unwrap();
    assert_eq!(hs.messages.get(UT_PEX), Some(&0));
    assert_eq!(hs.id_of(UT_PEX), None);
    assert_eq!(hs.your_ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
}

#[test]
fn extended_handshake_errors_name_the_key() {
    let wrong = |raw: &[u8]| ExtendedHandshake::decode(raw).unwrap_err();
    assert!(
        matches!(wrong(b"d1:pi70000ee"), ExtensionError::OutOfRange { key, value: 70000 } if key == "p")
    );
    assert!(matches!(wrong(b"d1:p3:abce"), ExtensionError::WrongType { key, .. } if key == "p"));
    assert!(matches!(wrong(b"d1:mi1ee"), ExtensionError::WrongType { key, .. } if key == "m"));
    assert!(
        matches!(wrong(b"d1:md6:ut_pexi256eee"), ExtensionError::OutOfRange { key, .. } if key == "m.ut_pex")
    );
    assert!(
        matches!(wrong(b"d1:md6:ut_pex1:xee"), ExtensionError::WrongType { key, .. } if key == "m.ut_pex")
    );
    assert!(
        matches!(wrong(b"d4:reqqi-1ee"), ExtensionError::OutOfRange { key, .. } if key == "reqq")
    );
    assert_eq!(
        wrong(b"d6:yourip3:abce"),
        ExtensionError::WrongLength {
            key: "yourip",
            len: 3
        }
    );
    assert_eq!(
        wrong(b"d13:metadata_sizei8388609ee"),
        ExtensionError::MetadataTooLarge {
            size: 8_388_609,
            max: MAX_METADATA_SIZE
        }
    );
    assert!(ExtendedHandshake::decode(b"d13:metadata_sizei8388608ee").is_ok());
    assert_eq!(wrong(b"li1ee"), ExtensionError::NotADict("list"));
    assert!(matches!(wrong(b"d1:m"), ExtensionError::Bencode(_)));
}

#[test]
fn metadata_known_answers() {
    // The three examples of BEP 9.
    let request = Bytes::from_static(b"d8:msg_typei0e5:piecei0ee");
    assert_eq!(
        MetadataMessage::decode(&request),
        Ok(MetadataMessage::Request { piece: 0 })
    );
    assert_eq!(MetadataMessage::Request { piece: 0 }.to_bytes(), request);
    let reject = Bytes::from_static(b"d8:msg_typei2e5:piecei0ee");
    assert_eq!(
        MetadataMessage::decode(&reject),
        Ok(MetadataMessage::Reject { piece: 0 })
    );
    assert_eq!(MetadataMessage::Reject { piece: 0 }.to_bytes(), reject);

    let head = b"d8:msg_typei1e5:piecei0e10:total_sizei34256ee";
    let mut raw = head.to_vec();
    raw.extend(std::iter::repeat_n(b'x', 16384));
    let raw = Bytes::from(raw);
    let msg = MetadataMessage::decode(&raw).unwrap();
    let MetadataMessage::Data {
        piece: 0,
        total_size: 34256,
        data,
    } = &msg
    else {
        panic!("{msg:?}");
    };
    assert_eq!(data.len(), 16384);
    assert_eq!(
        data.as_ptr(),
        raw.as_ptr().wrapping_add(head.len()),
        "data is a slice"
    );
    assert_eq!(msg.to_bytes(), raw);
}

#[test]
fn metadata_pieces_are_checked() {
    let data = |piece: u32, total: u32, len: usize| {
        let mut raw = format!("d8:msg_typei1e5:piecei{piece}e10:total_sizei{total}ee").into_bytes();
        raw.resize(raw.len() + len, 0);
        MetadataMessage::decode(&Bytes::from(raw))
    };
    assert!(data(2, 34256, 34256 - 32768).is_ok());
    assert!(data(2, 34256, 16384).is_err(), "last piece too long");
    assert!(data(1, 34256, 100).is_err(), "middle piece too short");
    assert!(data(3, 34256, 0).is_err(), "past the last piece");
    assert!(matches!(
        data(0, MAX_METADATA_SIZE + 1, 16384),
        Err(ExtensionError::MetadataTooLarge { .. })
    ));
    let decode = |raw: &'static [u8]| MetadataMessage::decode(&Bytes::from_static(raw));
    assert_eq!(
        decode(b"d5:piecei0ee"),
        Err(ExtensionError::MissingKey("msg_type"))
    );
    assert_eq!(
        decode(b"d8:msg_typei0ee"),
        Err(ExtensionError::MissingKey("piece"))
    );
    assert_eq!(
        decode(b"d8:msg_typei1e5:piecei0ee"),
        Err(ExtensionError::MissingKey("total_size"))
    );
    assert_eq!(
        decode(b"d8:msg_typei7e5:piecei0ee"),
        Err(ExtensionError::UnknownMetadataType(7))
    );
    assert!(matches!(
        decode(b"d8:msg_typei0e5:piecei-1ee"),
        Err(ExtensionError::OutOfRange { .. })
    ));
    assert_eq!(metadata_piece_count(0), 0);
    assert_eq!(metadata_piece_count(34256), 3);
    assert_eq!(
        metadata_piece_len(34256, 2),
        Some(34256 - 2 * METADATA_PIECE_LEN)
    );
    assert_eq!(metadata_piece_len(32768, 2), None);
}

#[test]
fn pex_known_answer() {
    let raw = b"d5:added6:\x7f\x00\x00\x01\x1a\xe17:added.f1:\x12\
6:added60:8:added6.f0:7:dropped6:\x0a\x00\x00\x02\x1a\xe28:dropped60:e";
    let msg = PexMessage {
        added: vec![PexPeer {
            addr: "127.0.0.1:6881".parse().unwrap(),
            flags: PexFlags::SEED.union(PexFlags::REACHABLE),
        }],
        dropped: vec!["10.0.0.2:6882".parse().unwrap()],
    };
    assert_eq!(PexMessage::decode(raw), Ok(msg.clone()));
    assert_eq!(&msg.to_bytes().unwrap()[..], &raw[..]);
    let flags = msg.added[0].flags;
    assert!(flags.contains(PexFlags::SEED) && !flags.contains(PexFlags::UTP));
    // Flags are optional; missing keys are empty lists.
    let bare = PexMessage::decode(b"d5:added6:\x7f\x00\x00\x01\x1a\xe1e").unwrap();
    assert_eq!(bare.added[0].flags, PexFlags(0));
    assert_eq!(PexMessage::decode(b"de"), Ok(PexMessage::default()));
}

#[test]
fn pex_errors_and_caps() {
    assert_eq!(
        PexMessage::decode(b"d5:added5:abcdee"),
        Err(ExtensionError::Compact {
            key: "added",
            source: crate::compact::CompactError { len: 5, entry: 6 }
        })
    );
    assert_eq!(
        PexMessage::decode(b"d5:added6:abcdef7:added.f2:xxe"),
        Err(ExtensionError::FlagsMismatch {
            key: "added.f",
            flags: 2,
            peers: 1
        })
    );
    assert!(matches!(
        PexMessage::decode(b"d7:droppedi1ee"),
        Err(ExtensionError::WrongType { key, .. }) if key == "dropped"
    ));
    let many = |n: usize| {
        let mut raw = format!("d8:dropped6{}:", n * 18).into_bytes();
        raw.resize(raw.len() + n * 18, 1);
        raw.push(b'e');
        PexMessage::decode(&raw)
    };
    assert_eq!(many(MAX_PEX_PEERS).unwrap().dropped.len(), MAX_PEX_PEERS);
    assert_eq!(
        many(MAX_PEX_PEERS + 1),
        Err(ExtensionError::TooManyPeers {
            key: "dropped6",
            count: MAX_PEX_PEERS + 1,
            max: MAX_PEX_PEERS
        })
    );
    let too_many = PexMessage {
        added: Vec::new(),
        dropped: vec!["1.2.3.4:5".parse().unwrap(); MAX_PEX_PEERS + 1],
    };
    assert!(matches!(
        too_many.to_bytes(),
        Err(ExtensionError::TooManyPeers { key: "dropped", .. })
    ));
}

fn v4() -> impl Strategy<Value = SocketAddr> {
    any::<SocketAddrV4>().prop_map(SocketAddr::V4)
}

fn v6() -> impl Strategy<Value = SocketAddr> {
    (any::<u128>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)))
}

fn peers(addr: impl Strategy<Value = SocketAddr>) -> impl Strategy<Value = Vec<PexPeer>> {
    proptest::collection::vec(
        (addr, any::<u8>()).prop_map(|(addr, flags)| PexPeer {
            addr,
            flags: PexFlags(flags),
        }),
        0..20,
    )
}

fn handshake_strategy() -> impl Strategy<Value = ExtendedHandshake> {
    (
        proptest::collection::btree_map("[a-zA-Z_]{1,12}", any::<u8>(), 0..5),
        proptest::option::of("[ -~µ]{0,20}"),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]),
        proptest::option::of(0..=MAX_METADATA_SIZE),
        any::<bool>(),
    )
        .prop_map(
            |(messages, client, port, request_queue, your_ip, metadata_size, upload_only)| {
                ExtendedHandshake {
                    messages,
                    client,
                    port,
                    request_queue,
                    your_ip,
                    metadata_size,
                    upload_only,
                }
            },
        )
}

fn metadata_strategy() -> impl Strategy<Value = MetadataMessage> {
    let data = (1u32..100_000).prop_flat_map(|total| {
        (Just(total), 0..metadata_piece_count(total)).prop_map(|(total_size, piece)| {
            let len = metadata_piece_len(total_size, piece).unwrap_or(0) as usize;
            MetadataMessage::Data {
                piece,
                total_size,
                data: Bytes::from(vec![(piece % 251) as u8; len]),
            }
        })
    });
    prop_oneof![
        any::<u32>().prop_map(|piece| MetadataMessage::Request { piece }),
        any::<u32>().prop_map(|piece| MetadataMessage::Reject { piece }),
        data,
    ]
}

proptest! {
    #[test]
    fn extended_handshake_round_trip(hs in handshake_strategy()) {
        prop_assert_eq!(ExtendedHandshake::decode(&hs.to_bytes()), Ok(hs));
    }

    #[test]
    fn metadata_round_trip(msg in metadata_strategy()) {
        prop_assert_eq!(MetadataMessage::decode(&msg.to_bytes()), Ok(msg));
    }

    #[test]
    fn pex_round_trip(
        added4 in peers(v4()), added6 in peers(v6()),
        dropped4 in proptest::collection::vec(v4(), 0..20),
        dropped6 in proptest::collection::vec(v6(), 0..20),
    ) {
        let msg = PexMessage {
            added: added4.into_iter().chain(added6).collect(),
            dropped: dropped4.into_iter().chain(dropped6).collect(),
        };
        prop_assert_eq!(PexMessage::decode(&msg.to_bytes().unwrap()), Ok(msg));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = ExtendedHandshake::decode(&bytes);
        let _ = MetadataMessage::decode(&Bytes::from(bytes.clone()));
        let _ = PexMessage::decode(&bytes);
    }

    #[test]
    fn arbitrary_dicts_never_panic(
        entries in proptest::collection::vec(
            (prop_oneof![
                Just("m"), Just("p"), Just("v"), Just("reqq"), Just("yourip"), Just("metadata_size"),
                Just("upload_only"), Just("msg_type"), Just("piece"), Just("total_size"), Just("added"),
                Just("added.f"), Just("added6"), Just("added6.f"), Just("dropped"), Just("dropped6"),
            ], prop_oneof![
                any::<i64>().prop_map(|i| format!("i{i}e").into_bytes()),
                proptest::collection::vec(any::<u8>(), 0..40)
                    .prop_map(|b| { let mut v = format!("{}:", b.len()).into_bytes(); v.extend(b); v }),
                Just(b"d6:ut_pexi1ee".to_vec()),
                Just(b"le".to_vec()),
            ]),
            0..6,
        ),
        tail in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut raw = b"d".to_vec();
        for (key, value) in &entries {
            raw.extend(format!("{}:{key}", key.len()).into_bytes());
            raw.extend(value);
        }
        raw.push(b'e');
        let _ = ExtendedHandshake::decode(&raw);
        let _ = PexMessage::decode(&raw);
        raw.extend(tail);
        let _ = MetadataMessage::decode(&Bytes::from(raw));
    }
}
