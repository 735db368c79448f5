use bytes::BytesMut;
use proptest::prelude::*;

use crate::info_hash::InfoHash;
use crate::peer_id::PeerId;
use crate::wire::handshake::{
    HANDSHAKE_LEN, Handshake, HandshakeError, HandshakePrefix, PROTOCOL, Reserved,
};

fn sample() -> Handshake {
    Handshake::new(
        Reserved::NONE
            .with_extension_protocol(true)
            .with_fast(true)
            .with_dht(true),
        InfoHash::from_bytes([0xaa; 20]),
        PeerId::from_bytes(*b"-RL0100-abcdefghijkl"),
    )
}

#[test]
fn known_answer() {
    let mut expected = b"\x13BitTorrent protocol".to_vec();
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
    expected.extend_from_slice(&[0xaa; 20]);
    expected.extend_from_slice(b"-RL0100-abcdefghijkl");
    assert_eq!(sample().to_bytes().to_vec(), expected);
    assert_eq!(expected.len(), HANDSHAKE_LEN);
    let mut buf = BytesMut::from(&expected[..]);
    buf.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(Handshake::decode(&mut buf), Ok(Some(sample())));
    assert_eq!(&buf[..], &[0, 0, 0, 0], "only the handshake is consumed");
}

#[test]
fn reserved_bits() {
    let r = Reserved([0, 0, 0, 0, 0, 0x10, 0, 0]);
    assert!(r.extension_protocol() && !r.fast() && !r.dht());
    let r = Reserved([0, 0, 0, 0, 0, 0, 0, 0x04]);
    assert!(!r.extension_protocol() && r.fast() && !r.dht());
    let r = Reserved([0, 0, 0, 0, 0, 0, 0, 0x01]);
    assert!(!r.extension_protocol() && !r.fast() && r.dht());
    let all = Reserved([0xff; 8]);
    let cleared = all
        .with_extension_protocol(false)
        .with_fast(false)
        .with_dht(false);
    assert_eq!(cleared.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0xff, 0xfa]);
}

#[test]
fn every_split_point() {
    let bytes = sample().to_bytes();
    for split in 0..HANDSHAKE_LEN {
        let mut buf = BytesMut::from(&bytes[..split]);
        assert_eq!(Handshake::decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), split);
        let prefix = HandshakePrefix::peek(&buf).unwrap();
        assert_eq!(prefix.is_some(), split >= 48, "prefix at {split}");
        if let Some(prefix) = prefix {
            assert_eq!(prefix.info_hash, sample().info_hash);
            assert_eq!(prefix.reserved, sample().reserved);
        }
        buf.extend_from_slice(&bytes[split..]);
        assert_eq!(Handshake::decode(&mut buf), Ok(Some(sample())));
    }
}

#[test]
fn wrong_protocol_is_refused_early() {
    let mut buf = BytesMut::from(&b"GET /"[..]);
    assert_eq!(
        Handshake::decode(&mut buf),
        Err(HandshakeError::WrongProtocol {
            offset: 0,
            found: b'G'
        })
    );
    let mut buf = BytesMut::from(&b"\x13BitTorrent Protocol"[..]);
    assert_eq!(
        Handshake::decode(&mut buf),
        Err(HandshakeError::WrongProtocol {
            offset: 12,
            found: b'P'
        })
    );
    assert!(HandshakePrefix::peek(&PROTOCOL[..5]).unwrap().is_none());
}

proptest! {
    #[test]
    fn round_trip(reserved in any::<[u8; 8]>(), hash in any::<[u8; 20]>(), id in any::<[u8; 20]>()) {
        let hs = Handshake::new(Reserved(reserved), InfoHash::from_bytes(hash), PeerId::from_bytes(id));
        let mut buf = BytesMut::new();
        hs.encode(&mut buf);
        prop_assert_eq!(Handshake::decode(&mut buf), Ok(Some(hs)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100), keep_protocol in any::<bool>()) {
        let mut input = if keep_protocol { PROTOCOL.to_vec() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        let _ = HandshakePrefix::peek(&input);
        let mut buf = BytesMut::from(&input[..]);
        if let Ok(Some(_)) = Handshake::decode(&mut buf) {
            prop_assert_eq!(buf.len(), input.len() - HANDSHAKE_LEN);
        }
    }
}
