use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use crate::pieces::{BlockRef, PieceIndex};
use crate::wire::codec::{
    DEFAULT_MAX_LEN, DEFAULT_MAX_PIECES, WireError, decode, decode_detached, decode_detached_with,
    encode, max_len_for, piece_header,
};
use crate::wire::message::{self, Message};

fn block(piece: u32, begin: u32, length: u32) -> BlockRef {
    BlockRef {
        piece: PieceIndex(piece),
        begin,
        length,
    }
}

fn encoded(msg: &Message) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(msg, &mut out).unwrap();
    out.to_vec()
}

fn decode_all(bytes: &[u8]) -> Vec<Message> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(msg) = decode(&mut buf, DEFAULT_MAX_LEN).unwrap() {
        out.push(msg);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

/// Wire bytes as BEP 3, 5, 6 and 10 lay them out: `<len><id><payload>`.
fn known_answers() -> Vec<(Message, Vec<u8>)> {
    vec![
        (Message::KeepAlive, vec![0, 0, 0, 0]),
        (Message::Choke, vec![0, 0, 0, 1, 0]),
        (Message::Unchoke, vec![0, 0, 0, 1, 1]),
        (Message::Interested, vec![0, 0, 0, 1, 2]),
        (Message::NotInterested, vec![0, 0, 0, 1, 3]),
        (
            Message::Have(PieceIndex(0x0102_0304)),
            vec![0, 0, 0, 5, 4, 1, 2, 3, 4],
        ),
        (
            Message::Bitfield(Bytes::from_static(&[0xff, 0x80])),
            vec![0, 0, 0, 3, 5, 0xff, 0x80],
        ),
        (
            Message::Request(block(1, 0x4000, 0x4000)),
            vec![0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (
            Message::Piece {
                index: PieceIndex(2),
                begin: 0x8000,
                data: Bytes::from_static(b"abc"),
            },
            vec![0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0x80, 0, b'a', b'b', b'c'],
        ),
        (
            Message::Cancel(block(1, 0, 0x4000)),
            vec![0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0],
        ),
        (Message::Port(6881), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
        (
            Message::Suggest(PieceIndex(7)),
            vec![0, 0, 0, 5, 0x0d, 0, 0, 0, 7],
        ),
        (Message::HaveAll, vec![0, 0, 0, 1, 0x0e]),
        (Message::HaveNone, vec![0, 0, 0, 1, 0x0f]),
        (
            Message::RejectRequest(block(3, 16, 32)),
            vec![0, 0, 0, 13, 0x10, 0, 0, 0, 3, 0, 0, 0, 16, 0, 0, 0, 32],
        ),
        (
            Message::AllowedFast(PieceIndex(0x1234)),
            vec![0, 0, 0, 5, 0x11, 0, 0, 0x12, 0x34],
        ),
        (
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"de"),
            },
            vec![0, 0, 0, 4, 20, 0, b'd', b'e'],
        ),
        (
            Message::Unknown {
                id: 21,
                payload: Bytes::from_static(&[9]),
            },
            vec![0, 0, 0, 2, 21, 9],
        ),
    ]
}

#[test]
fn known_answers_encode_and_decode() {
    for (msg, bytes) in known_answers() {
        assert_eq!(encoded(&msg), bytes, "encoding {}", msg.name());
        assert_eq!(
            decode_all(&bytes),
            vec![msg.clone()],
            "decoding {}",
            msg.name()
        );
        assert_eq!(msg.body_len() + 4, bytes.len());
    }
}

#[test]
fn every_split_point_needs_more_bytes_then_decodes() {
    for (msg, bytes) in known_answers() {
        for split in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..split]);
            assert_eq!(
                decode(&mut buf, DEFAULT_MAX_LEN),
                Ok(None),
                "{} at {split}",
                msg.name()
            );
            assert_eq!(&buf[..], &bytes[..split], "nothing consumed");
            buf.extend_from_slice(&bytes[split..]);
            assert_eq!(decode(&mut buf, DEFAULT_MAX_LEN), Ok(Some(msg.clone())));
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn huge_declared_length_is_refused_without_allocating() {
    type Decode = fn(&mut BytesMut, u32) -> Result<Option<Message>, WireError>;
    for decoder in [decode as Decode, decode_detached as Decode] {
        for id in [message::PIECE, message::BITFIELD, message::HAVE, 99] {
            let mut buf = BytesMut::with_capacity(16);
            buf.put_u32(0xffff_ffff);
            buf.put_u8(id);
            let capacity = buf.capacity();
            assert_eq!(
                decoder(&mut buf, DEFAULT_MAX_LEN),
                Err(WireError::TooLong {
                    declared: 0xffff_ffff,
                    max: DEFAULT_MAX_LEN
                })
            );
            assert_eq!(buf.capacity(), capacity);
        }
    }
    // Refused from the prefix alone, before the id arrives.
    let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
    let capacity = buf.capacity();
    assert!(decode(&mut buf, DEFAULT_MAX_LEN).is_err());
    assert_eq!(buf.capacity(), capacity);
}

#[test]
fn cap_is_inclusive() {
    let mut buf = BytesMut::new();
    buf.put_u32(10);
    buf.put_u8(message::BITFIELD);
    buf.put_bytes(0, 9);
    assert!(decode(&mut buf.clone(), 9).is_err());
    assert!(decode(&mut buf, 10).unwrap().is_some());
}

#[test]
fn fixed_lengths_are_checked_as_soon_as_the_id_arrives() {
    let mut buf = BytesMut::from(&[0, 0, 0, 6, message::HAVE][..]);
    let capacity = buf.capacity();
    assert_eq!(
        decode(&mut buf, DEFAULT_MAX_LEN),
        Err(WireError::WrongLength {
            name: "have",
            len: 6,
            expected: 5
        })
    );
    assert_eq!(buf.capacity(), capacity);
    for (len, id) in [
        (2, message::CHOKE),
        (12, message::REQUEST),
        (14, message::CANCEL),
        (2, message::PORT),
        (4, message::SUGGEST),
        (2, message::HAVE_ALL),
        (1, message::REJECT_REQUEST),
        (1, message::ALLOWED_FAST),
    ] {
        let mut buf = BytesMut::new();
        buf.put_u32(len);
        buf.put_u8(id);
        assert!(matches!(
            decode(&mut buf, DEFAULT_MAX_LEN),
            Err(WireError::WrongLength { .. })
        ));
    }
    for (len, id) in [(8, message::PIECE), (1, message::EXTENDED)] {
        let mut buf = BytesMut::new();
        buf.put_u32(len);
        buf.put_u8(id);
        assert!(matches!(
            decode(&mut buf, DEFAULT_MAX_LEN),
            Err(WireError::TooShort { .. })
        ));
    }
}

#[test]
fn piece_data_is_not_copied() {
    let msg = Message::Piece {
        index: PieceIndex(1),
        begin: 0,
        data: Bytes::from(vec![7u8; 16384]),
    };
    let mut buf = BytesMut::new();
    encode(&msg, &mut buf).unwrap();
    let base = buf.as_ptr();
    let Some(Message::Piece { data, .. }) = decode(&mut buf, DEFAULT_MAX_LEN).unwrap() else {
        panic!("not a piece");
    };
    assert_eq!(data.as_ptr(), base.wrapping_add(13));
    assert_eq!(data.len(), 16384);
}

#[test]
fn detached_payloads_are_exact_copies_and_leave_the_buffer_unshared() {
    let msgs = [
        Message::Piece {
            index: PieceIndex(1),
            begin: 16384,
            data: Bytes::from(vec![7u8; 16384]),
        },
        Message::Bitfield(Bytes::from_static(&[0xff, 0x80])),
        Message::Extended {
            id: 3,
            payload: Bytes::from_static(b"d1:ai1ee"),
        },
        Message::Unknown {
            id: 99,
            payload: Bytes::from_static(b"??"),
        },
    ];
    let mut buf = BytesMut::with_capacity(64 * 1024);
    for msg in &msgs {
        encode(msg, &mut buf).unwrap();
    }
    let (start, end) = (buf.as_ptr(), buf.as_ptr().wrapping_add(buf.capacity()));
    let mut held = Vec::new();
    for msg in &msgs {
        let got = decode_detached(&mut buf, DEFAULT_MAX_LEN).unwrap().unwrap();
        assert_eq!(&got, msg);
        let payload = match &got {
            Message::Piece { data, .. } => data.clone(),
            Message::Bitfield(payload)
            | Message::Extended { payload, .. }
            | Message::Unknown { payload, .. } => payload.clone(),
            other => panic!("unexpected {other:?}"),
        };
        // A copy: outside the receive buffer.
        assert!(payload.as_ptr() < start || payload.as_ptr() >= end);
        held.push(got);
    }
    assert!(buf.is_empty());
    // The buffer is still unique: with the messages alive, asking for more room than is left
    // at its end moves back to its start instead of allocating.
    assert!(buf.capacity() < 60 * 1024);
    buf.reserve(60 * 1024);
    assert_eq!(buf.as_ptr(), start);
    drop(held);
}

#[test]
fn detached_with_makes_every_payload_copy_through_the_given_function() {
    let msgs = [
        Message::Piece {
            index: PieceIndex(2),
            begin: 0,
            data: Bytes::from(vec![1u8; 16384]),
        },
        Message::Have(PieceIndex(4)),
        Message::Bitfield(Bytes::from_static(&[0x80])),
        Message::Extended {
            id: 0,
            payload: Bytes::from_static(b"de"),
        },
    ];
    let mut buf = BytesMut::new();
    for msg in &msgs {
        encode(msg, &mut buf).unwrap();
    }
    let mut copied = Vec::new();
    let mut copy = |bytes: &[u8]| {
        copied.push(bytes.len());
        Bytes::copy_from_slice(bytes)
    };
    let mut out = Vec::new();
    while let Some(msg) = decode_detached_with(&mut buf, DEFAULT_MAX_LEN, &mut copy).unwrap() {
        out.push(msg);
    }
    assert_eq!(out, msgs);
    assert_eq!(copied, [16384, 1, 2]);
}

#[test]
fn piece_header_matches_encode() {
    let data = Bytes::from_static(b"block data");
    let msg = Message::Piece {
        index: PieceIndex(9),
        begin: 16384,
        data: data.clone(),
    };
    let header = piece_header(PieceIndex(9), 16384, data.len()).unwrap();
    let mut vectored = header.to_vec();
    vectored.extend_from_slice(&data);
    assert_eq!(vectored, encoded(&msg));
    assert!(piece_header(PieceIndex(0), 0, usize::MAX).is_err());
}

#[test]
fn default_cap() {
    assert_eq!(DEFAULT_MAX_LEN, 262_145);
    assert_eq!(max_len_for(1000), DEFAULT_MAX_LEN);
    assert_eq!(max_len_for(DEFAULT_MAX_PIECES), DEFAULT_MAX_LEN);
    assert_eq!(max_len_for(DEFAULT_MAX_PIECES * 2), 2 * 262_144 + 1);
    assert_eq!(max_len_for(u32::MAX), (1 << 29) + 1);
}

#[test]
fn unknown_ids_are_values() {
    let msgs = decode_all(&[0, 0, 0, 3, 0x0a, 1, 2, 0, 0, 0, 1, 1]);
    assert_eq!(
        msgs,
        vec![
            Message::Unknown {
                id: 0x0a,
                payload: Bytes::from_static(&[1, 2])
            },
            Message::Unchoke
        ]
    );
}

fn payload() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn block_strategy() -> impl Strategy<Value = BlockRef> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(p, b, l)| block(p, b, l))
}

fn is_known(id: u8) -> bool {
    matches!(id, 0..=9 | 0x0d..=0x11 | 20)
}

pub(super) fn message_strategy() -> impl Strategy<Value = Message> {
    let index = any::<u32>().prop_map(PieceIndex);
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        index.clone().prop_map(Message::Have),
        index.clone().prop_map(Message::Suggest),
        index.clone().prop_map(Message::AllowedFast),
        payload().prop_map(Message::Bitfield),
        block_strategy().prop_map(Message::Request),
        block_strategy().prop_map(Message::Cancel),
        block_strategy().prop_map(Message::RejectRequest),
        any::<u16>().prop_map(Message::Port),
        (index, any::<u32>(), payload()).prop_map(|(index, begin, data)| Message::Piece {
            index,
            begin,
            data
        }),
        (any::<u8>(), payload()).prop_map(|(id, payload)| Message::Extended { id, payload }),
        (
            any::<u8>().prop_filter("unknown id", |id| !is_known(*id)),
            payload()
        )
            .prop_map(|(id, payload)| Message::Unknown { id, payload }),
    ]
}

proptest! {
    #[test]
    fn message_round_trip(msg in message_strategy()) {
        let bytes = encoded(&msg);
        let mut buf = BytesMut::from(&bytes[..]);
        prop_assert_eq!(decode(&mut buf, DEFAULT_MAX_LEN), Ok(Some(msg)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn streams_decode_in_order_whatever_the_chunking(
        msgs in proptest::collection::vec(message_strategy(), 0..40),
        chunk in 1usize..50,
    ) {
        let mut wire = BytesMut::new();
        for msg in &msgs {
            encode(msg, &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(msg) = decode(&mut buf, DEFAULT_MAX_LEN).unwrap() {
                out.push(msg);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(out, msgs);
    }

    #[test]
    fn detached_and_shared_decode_agree_whatever_the_chunking(
        msgs in proptest::collection::vec(message_strategy(), 0..40),
        chunk in 1usize..200,
    ) {
        let mut wire = BytesMut::new();
        for msg in &msgs {
            encode(msg, &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(msg) = decode_detached(&mut buf, DEFAULT_MAX_LEN).unwrap() {
                out.push(msg);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(out, msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic_detached(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        max_len in any::<u32>(),
    ) {
        let mut shared = BytesMut::from(&bytes[..]);
        let mut detached = BytesMut::from(&bytes[..]);
        let capacity = detached.capacity();
        loop {
            let a = decode(&mut shared, max_len.min(DEFAULT_MAX_LEN));
            let b = decode_detached(&mut detached, max_len.min(DEFAULT_MAX_LEN));
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(shared.len(), detached.len());
            if !matches!(a, Ok(Some(_))) {
                break;
            }
        }
        prop_assert!(detached.capacity() <= capacity.max(2 * (DEFAULT_MAX_LEN as usize + 4)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), max_len in any::<u32>()) {
        let mut buf = BytesMut::from(&bytes[..]);
        let before = buf.len();
        let capacity = buf.capacity();
        loop {
            let len = buf.len();
            match decode(&mut buf, max_len.min(DEFAULT_MAX_LEN)) {
                Ok(Some(_)) => prop_assert!(buf.len() < len),
                Ok(None) => {
                    prop_assert_eq!(buf.len(), len);
                    break;
                }
                Err(_) => break,
            }
        }
        prop_assert!(buf.len() <= before);
        // Reserving is bounded by the cap.
        prop_assert!(buf.capacity() <= capacity.max(2 * (DEFAULT_MAX_LEN as usize + 4)));
    }
}
