//! `bencode::decode` and `decode_prefix` on arbitrary bytes.
//!
//! Checks, for every input that decodes:
//! - the canonical encoding decodes to an equal value, and re-encodes to itself;
//! - it is never longer than the input (canonical form only drops repeated keys);
//! - every dictionary's `raw()` bytes decode, alone, to an equal dictionary;
//! - `decode_prefix` agrees with `decode` (same value, all bytes used).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_common::bencode::{self, DecodeError, Value};

fuzz_target!(|data: &[u8]| {
    let prefix = bencode::decode_prefix(data);
    if let Ok((value, used)) = &prefix {
        assert!(*used <= data.len());
        let head = data.get(..*used).expect("used is within the input");
        assert_eq!(bencode::decode(head).as_ref(), Ok(value));
    }
    let Ok(value) = bencode::decode(data) else {
        match (&prefix, bencode::decode(data)) {
            (Ok((_, used)), Err(DecodeError::TrailingData(extra))) => {
                assert_eq!(used + extra, data.len());
            }
            (Ok(_), other) => panic!("prefix decoded but decode gave {other:?}"),
            (Err(_), _) => {}
        }
        return;
    };
    assert_eq!(prefix.as_ref().map(|(_, used)| *used), Ok(data.len()));

    let canonical = value.to_bytes();
    assert!(!canonical.is_empty(), "to_bytes failed on {value:?}");
    assert!(
        canonical.len() <= data.len(),
        "canonical form is longer than the input"
    );
    let again = bencode::decode(&canonical).expect("the canonical encoding decodes");
    assert_eq!(again, value);
    assert_eq!(
        again.to_bytes(),
        canonical,
        "canonical encoding is a fixed point"
    );

    check_raw(&value);
});

/// Every dictionary remembers the exact bytes it came from, and they decode to it.
fn check_raw(value: &Value<'_>) {
    match value {
        Value::Int(_) | Value::Bytes(_) => {}
        Value::List(items) => items.iter().for_each(check_raw),
        Value::Dict(dict) => {
            let raw = bencode::decode(dict.raw()).expect("a dictionary's raw bytes decode");
            assert_eq!(raw.as_dict(), Some(dict));
            dict.iter().for_each(|(_, v)| check_raw(v));
        }
    }
}
