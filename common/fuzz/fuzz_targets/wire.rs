//! The peer wire decoders on arbitrary bytes: the message codec, the handshake, and the
//! BEP 10 / BEP 9 / BEP 11 extension payloads.
//!
//! Checks:
//! - `wire::decode` in a loop (bounded: each message consumes at least 4 bytes): every
//!   decoded message re-encodes to exactly the bytes it consumed, `Ok(None)` consumes
//!   nothing, and feeding the same bytes in small chunks gives the same messages and the
//!   same final outcome; run with the default cap and with a tiny one;
//! - `Handshake::decode`: a decoded handshake re-encodes to the first 68 bytes and
//!   consumes exactly them; `Ok(None)` only below 68 bytes, consuming nothing; it agrees
//!   with `HandshakePrefix::peek` (first 48 bytes, `Ok(None)` only below 48);
//! - `ExtendedHandshake`, `MetadataMessage`, `PexMessage`: `decode(to_bytes(x)) == x`.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use rill_common::wire::extension::{ExtendedHandshake, MetadataMessage, PexMessage};
use rill_common::wire::handshake::{HANDSHAKE_LEN, HandshakePrefix, PREFIX_LEN};
use rill_common::wire::{self, DEFAULT_MAX_LEN, Handshake, Message, WireError};

/// Bytes added to the buffer at a time in the streaming pass.
const CHUNK: usize = 7;

fuzz_target!(|data: &[u8]| {
    for max_len in [DEFAULT_MAX_LEN, 16] {
        let whole = decode_whole(data, max_len);
        assert_eq!(decode_chunked(data, max_len), whole);
    }
    handshake(data);
    extension_payloads(data);
});

/// Decoded messages, then what stopped the loop: `None` (needs more bytes) or the error.
type Outcome = (Vec<Message>, Option<WireError>);

fn decode_whole(data: &[u8], max_len: u32) -> Outcome {
    let mut buf = BytesMut::from(data);
    let mut messages = Vec::new();
    // Each decoded message consumes at least its 4-byte prefix.
    for _ in 0..=data.len() / 4 {
        let start = data.len() - buf.len();
        match wire::decode(&mut buf, max_len) {
            Ok(Some(msg)) => {
                let end = data.len() - buf.len();
                let mut again = BytesMut::new();
                wire::encode(&msg, &mut again).expect("a decoded message encodes");
                assert_eq!(&again[..], &data[start..end], "re-encoding of {msg:?}");
                assert_eq!(msg.body_len() + 4, end - start);
                messages.push(msg);
            }
            Ok(None) => {
                assert_eq!(&buf[..], &data[start..], "Ok(None) consumed bytes");
                return (messages, None);
            }
            Err(err) => return (messages, Some(err)),
        }
    }
    panic!("decode looped without consuming bytes");
}

fn decode_chunked(data: &[u8], max_len: u32) -> Outcome {
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    let mut stop = None;
    for chunk in data.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        loop {
            match wire::decode(&mut buf, max_len) {
                Ok(Some(msg)) => messages.push(msg),
                Ok(None) => break,
                Err(err) => {
                    stop = Some(err);
                    break;
                }
            }
        }
        if stop.is_some() {
            break;
        }
    }
    (messages, stop)
}

fn handshake(data: &[u8]) {
    let prefix = HandshakePrefix::peek(data);
    match &prefix {
        Ok(Some(p)) => {
            assert_eq!(&p.reserved.0[..], &data[20..28]);
            assert_eq!(&p.info_hash.as_bytes()[..], &data[28..PREFIX_LEN]);
        }
        Ok(None) => assert!(data.len() < PREFIX_LEN),
        Err(_) => {}
    }
    let mut buf = BytesMut::from(data);
    match Handshake::decode(&mut buf) {
        Ok(Some(hs)) => {
            assert_eq!(&hs.to_bytes()[..], &data[..HANDSHAKE_LEN]);
            assert_eq!(&buf[..], &data[HANDSHAKE_LEN..]);
            assert!(matches!(prefix, Ok(Some(p)) if p.info_hash == hs.info_hash));
        }
        Ok(None) => {
            assert!(data.len() < HANDSHAKE_LEN);
            assert_eq!(&buf[..], data);
            assert!(prefix.is_ok());
        }
        Err(_) => assert!(prefix.is_err()),
    }
}

fn extension_payloads(data: &[u8]) {
    if let Ok(hs) = ExtendedHandshake::decode(data) {
        let again = ExtendedHandshake::decode(&hs.to_bytes());
        assert_eq!(again.as_ref(), Ok(&hs));
    }
    if let Ok(msg) = MetadataMessage::decode(&Bytes::copy_from_slice(data)) {
        let again = MetadataMessage::decode(&msg.to_bytes());
        assert_eq!(again.as_ref(), Ok(&msg));
    }
    if let Ok(pex) = PexMessage::decode(data) {
        let bytes = pex.to_bytes().expect("a decoded PEX message encodes");
        assert_eq!(PexMessage::decode(&bytes).as_ref(), Ok(&pex));
    }
}
