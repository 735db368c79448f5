use super::*;
use proptest::prelude::*;

fn int(i: i64) -> Value<'static> {
    Value::Int(i)
}

#[test]
fn decodes_each_kind() {
    assert_eq!(decode(b"i42e"), Ok(int(42)));
    assert_eq!(decode(b"i-7e"), Ok(int(-7)));
    assert_eq!(decode(b"i0e"), Ok(int(0)));
    assert_eq!(decode(b"4:spam"), Ok(Value::Bytes(b"spam")));
    assert_eq!(decode(b"0:"), Ok(Value::Bytes(b"")));
    assert_eq!(
        decode(b"l4:spami1ee"),
        Ok(Value::List(vec![Value::Bytes(b"spam"), int(1)]))
    );
    let value = decode(b"d3:cow3:moo4:spaml1:a1:bee").unwrap();
    let dict = value.as_dict().unwrap();
    assert_eq!(dict.get_str(b"cow"), Some("moo"));
    assert_eq!(dict.get_list(b"spam").map(<[_]>::len), Some(2));
    assert_eq!(dict.raw(), b"d3:cow3:moo4:spaml1:a1:bee");
}

#[test]
fn integer_limits() {
    assert_eq!(decode(b"i9223372036854775807e"), Ok(int(i64::MAX)));
    assert_eq!(decode(b"i-9223372036854775808e"), Ok(int(i64::MIN)));
    assert_eq!(
        decode(b"i9223372036854775808e"),
        Err(DecodeError::IntegerOverflow(1))
    );
    assert_eq!(
        decode(b"i-9223372036854775809e"),
        Err(DecodeError::IntegerOverflow(1))
    );
    assert_eq!(decode(b"i03e"), Err(DecodeError::LeadingZero(1)));
    assert_eq!(decode(b"i-0e"), Err(DecodeError::NegativeZero(1)));
    assert_eq!(decode(b"i-03e"), Err(DecodeError::LeadingZero(1)));
    assert_eq!(decode(b"03:abc"), Err(DecodeError::LeadingZero(0)));
    assert!(matches!(
        decode(b"ie"),
        Err(DecodeError::UnexpectedByte {
            byte: b'e',
            offset: 1
        })
    ));
    assert!(matches!(
        decode(b"i-e"),
        Err(DecodeError::UnexpectedByte { .. })
    ));
    assert!(matches!(
        decode(b"i1.5e"),
        Err(DecodeError::UnexpectedByte { byte: b'.', .. })
    ));
    assert!(matches!(
        decode(b"-3:abc"),
        Err(DecodeError::UnexpectedByte { byte: b'-', .. })
    ));
}

#[test]
fn string_lengths_are_bounded_by_the_input() {
    assert_eq!(
        decode(b"5:abc"),
        Err(DecodeError::StringTooLong {
            offset: 0,
            declared: 5,
            available: 3
        })
    );
    assert!(matches!(
        decode(b"99999999999999999999:x"),
        Err(DecodeError::IntegerOverflow(0))
    ));
    assert!(matches!(
        decode(b"4294967296:x"),
        Err(DecodeError::StringTooLong {
            declared: 4294967296,
            ..
        })
    ));
}

#[test]
fn truncation_and_garbage() {
    for input in [
        &b""[..],
        b"i42",
        b"l",
        b"d",
        b"d3:cow",
        b"l4:spam",
        b"4",
        b"4:",
    ] {
        assert!(
            decode(input).is_err(),
            "{:?}",
            input.escape_ascii().to_string()
        );
    }
    assert_eq!(decode(b"i1ei2e"), Err(DecodeError::TrailingData(3)));
    assert_eq!(
        decode(b"e"),
        Err(DecodeError::UnexpectedByte {
            byte: b'e',
            offset: 0
        })
    );
    assert_eq!(decode(b"di1ei2ee"), Err(DecodeError::KeyNotString(1)));
    assert_eq!(
        decode(b"d1:ae"),
        Err(DecodeError::UnexpectedByte {
            byte: b'e',
            offset: 4
        })
    );
}

#[test]
fn depth_is_limited() {
    let deep = |n: usize| [vec![b'l'; n], vec![b'e'; n]].concat();
    assert!(decode(&deep(DEFAULT_MAX_DEPTH)).is_ok());
    assert_eq!(
        decode(&deep(DEFAULT_MAX_DEPTH + 1)),
        Err(DecodeError::TooDeep(DEFAULT_MAX_DEPTH))
    );
    // A million-deep input fails fast instead of overflowing the stack.
    assert_eq!(
        decode(&deep(1_000_000)),
        Err(DecodeError::TooDeep(DEFAULT_MAX_DEPTH))
    );
    let limits = Limits { max_depth: 2 };
    assert!(decode_with(b"d1:ald1:xi1eeee", limits).is_err());
    assert!(decode_with(b"d1:ali1eee", limits).is_ok());
}

#[test]
fn unsorted_and_duplicate_keys_are_accepted_first_wins() {
    let input = b"d1:bi2e1:ai1e1:bi3ee";
    let value = decode(input).unwrap();
    let dict = value.as_dict().unwrap();
    assert_eq!(dict.get_int(b"b"), Some(2));
    assert_eq!(dict.len(), 2);
    let keys: Vec<_> = dict.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![&b"b"[..], b"a"]);
    // The raw bytes are untouched; the canonical encoding sorts and drops the duplicate.
    assert_eq!(dict.raw(), input);
    assert_eq!(value.to_bytes(), b"d1:ai1e1:bi2ee");
}

#[test]
fn many_keys_decode_in_near_linear_time() {
    // 200k keys, unsorted (descending) and then repeated: a scan per key would take minutes.
    let keys: Vec<String> = (0..200_000).rev().map(|i| format!("{i:08}")).collect();
    let mut input = b"d".to_vec();
    for key in keys.iter().chain(&keys) {
        input.extend_from_slice(format!("8:{key}i1e").as_bytes());
    }
    input.push(b'e');
    let value = decode(&input).unwrap();
    assert_eq!(value.as_dict().unwrap().len(), 200_000);
}

#[test]
fn raw_bytes_of_nested_dicts_are_exact() {
    let input = b"d8:announce3:url4:infod6:lengthi5e4:name1:xee";
    let value = decode(input).unwrap();
    let info = value.as_dict().unwrap().get_dict(b"info").unwrap();
    assert_eq!(info.raw(), b"d6:lengthi5e4:name1:xe");
}

#[test]
fn prefix_decoding_leaves_the_rest() {
    let (value, used) = decode_prefix(b"d8:msg_typei1e5:piecei0eeRAWDATA").unwrap();
    assert_eq!(value.as_dict().unwrap().get_int(b"piece"), Some(0));
    assert_eq!(used, 25);
}

#[test]
fn built_values_encode_canonically() {
    let dict = Dict::new()
        .with(b"zeta", Value::Int(-1))
        .with(
            b"alpha",
            Value::List(vec![Value::Bytes(b"x"), Value::Int(0)]),
        )
        .with(b"mid", Value::Dict(Dict::new()));
    assert_eq!(
        Value::Dict(dict).to_bytes(),
        b"d5:alphal1:xi0ee3:midde4:zetai-1ee"
    );
}

fn arb_value() -> impl Strategy<Value = OwnedValue> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(OwnedValue::Int),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(OwnedValue::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(OwnedValue::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..6),
                inner,
                0..6
            )
            .prop_map(|m| OwnedValue::Dict(m.into_iter().collect())),
        ]
    })
}

/// An owned mirror of [`Value`] for generating test inputs.
#[derive(Clone, Debug)]
enum OwnedValue {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<OwnedValue>),
    Dict(Vec<(Vec<u8>, OwnedValue)>),
}

impl OwnedValue {
    fn borrow(&self) -> Value<'_> {
        match self {
            OwnedValue::Int(i) => Value::Int(*i),
            OwnedValue::Bytes(b) => Value::Bytes(b),
            OwnedValue::List(l) => Value::List(l.iter().map(OwnedValue::borrow).collect()),
            OwnedValue::Dict(d) => {
                let mut dict = Dict::new();
                for (k, v) in d {
                    dict.insert(k, v.borrow());
                }
                Value::Dict(dict)
            }
        }
    }
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(value in arb_value()) {
        let value = value.borrow();
        let bytes = value.to_bytes();
        let decoded = decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &value);
        // Canonical: encoding the decoded value gives the same bytes.
        prop_assert_eq!(decoded.to_bytes(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let _ = decode_prefix(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(value in arb_value(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = value.borrow().to_bytes();
        for (index, byte) in flips {
            let i = index.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(decoded) = decode(&bytes) {
            let _ = decoded.to_bytes();
        }
    }
}
