//! Bencode (BEP 3): a bounded, tolerant decoder and a canonical encoder.
//!
//! Decoding borrows from the input: byte strings are slices of it and every dictionary keeps
//! the exact bytes it was decoded from ([`Dict::raw`]), so an info-hash is always the SHA-1 of
//! the original `info` bytes, never of a re-encoding.
//!
//! Invariants of a decoded [`Value`]:
//! - nesting never exceeds [`Limits::max_depth`] (lists and dictionaries both count);
//! - a string's declared length never exceeds the bytes that remain, so nothing is allocated
//!   for a length that the input cannot back; lists and dictionaries grow one element at a time;
//! - integers fit in `i64`; leading zeros (`i03e`, `03:abc`) and `i-0e` are refused.
//!
//! Dictionary keys: real clients accept unsorted keys and keep the first of duplicate keys
//! (libtorrent and Transmission both do), and torrents in the wild have both, so decoding
//! does too: [`Dict`] keeps keys in input order and drops a repeated key's later values.
//! bendy's decoder rejects unsorted keys with no way to relax it, which is why decoding is
//! done here; encoding goes through bendy's encoder and is canonical (keys sorted,
//! each once).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::collections::BTreeSet;

use bendy::encoding::{Encoder, SingleItemEncoder, ToBencode};
use thiserror::Error;

/// Default nesting limit: far deeper than any real torrent or message (which nest 4 or 5 deep).
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Limits applied while decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of lists and dictionaries; the top-level container is depth 1.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why some bytes are not valid bencode. Offsets are from the start of the input.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input stops in the middle of a value.
    #[error("bencode ends unexpectedly at byte {0}")]
    UnexpectedEnd(usize),
    /// A byte that cannot start or continue a value here.
    #[error("unexpected byte {byte:#04x} at byte {offset}")]
    UnexpectedByte {
        /// The offending byte.
        byte: u8,
        /// Where it is.
        offset: usize,
    },
    /// An integer or string length with a superfluous leading zero.
    #[error("number with a leading zero at byte {0}")]
    LeadingZero(usize),
    /// `i-0e`.
    #[error("negative zero at byte {0}")]
    NegativeZero(usize),
    /// An integer that does not fit in 64 bits.
    #[error("integer at byte {0} does not fit in 64 bits")]
    IntegerOverflow(usize),
    /// A string whose declared length is longer than the rest of the input.
    #[error("string at byte {offset} declares {declared} bytes but only {available} remain")]
    StringTooLong {
        /// Where the string starts.
        offset: usize,
        /// The length it declares.
        declared: u64,
        /// The bytes left in the input.
        available: usize,
    },
    /// Lists and dictionaries nested deeper than the limit.
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    /// A dictionary key that is not a byte string.
    #[error("dictionary key at byte {0} is not a string")]
    KeyNotString(usize),
    /// Bytes left after a complete value.
    #[error("{0} bytes of trailing data after the value")]
    TrailingData(usize),
}

/// A decoded bencode value, borrowing from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// `i42e`
    Int(i64),
    /// `4:spam`: any bytes, not necessarily UTF-8.
    Bytes(&'a [u8]),
    /// `l...e`
    List(Vec<Value<'a>>),
    /// `d...e`
    Dict(Dict<'a>),
}

/// A dictionary: keys in input order, each key once (the first occurrence wins).
#[derive(Clone, Debug, Default)]
pub struct Dict<'a> {
    entries: Vec<(&'a [u8], Value<'a>)>,
    raw: &'a [u8],
}

impl PartialEq for Dict<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Dict<'_> {}

impl<'a> Value<'a> {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A word for the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Bytes(_) => "string",
            Value::List(_) => "list",
            Value::Dict(_) => "dictionary",
        }
    }

    /// The canonical encoding: dictionary keys sorted, each once.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut encoder = Encoder::new().with_max_depth(usize::MAX);
        // The encoder fails only on unsorted keys or excess depth, which `encode` rules out.
        encoder
            .emit(self)
            .and_then(|()| encoder.get_output())
            .unwrap_or_default()
    }
}

impl<'a> Dict<'a> {
    /// An empty dictionary, for building a value to encode.
    pub fn new() -> Self {
        Dict::default()
    }

    /// Sets `key` to `value`, replacing an earlier value of the same key.
    pub fn insert(&mut self, key: &'a [u8], value: Value<'a>) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Builder form of [`Dict::insert`].
    pub fn with(mut self, key: &'a [u8], value: Value<'a>) -> Self {
        self.insert(key, value);
        self
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The integer value of `key`, if present and an integer.
    pub fn get_int(&self, key: &[u8]) -> Option<i64> {
        self.get(key).and_then(Value::as_int)
    }

    /// The byte-string value of `key`, if present and a string.
    pub fn get_bytes(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.get(key).and_then(Value::as_bytes)
    }

    /// The UTF-8 string value of `key`, if present, a string and valid UTF-8.
    pub fn get_str(&self, key: &[u8]) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The list value of `key`, if present and a list.
    pub fn get_list(&self, key: &[u8]) -> Option<&[Value<'a>]> {
        self.get(key).and_then(Value::as_list)
    }

    /// The dictionary value of `key`, if present and a dictionary.
    pub fn get_dict(&self, key: &[u8]) -> Option<&Dict<'a>> {
        self.get(key).and_then(Value::as_dict)
    }

    /// The entries in input (or insertion) order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &Value<'a>)> {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// The number of distinct keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The exact input bytes this dictionary was decoded from (`d` to `e`); empty for a
    /// dictionary built in code.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

impl ToBencode for Value<'_> {
    const MAX_DEPTH: usize = usize::MAX;

    fn encode(&self, encoder: SingleItemEncoder) -> Result<(), bendy::encoding::Error> {
        match self {
            Value::Int(i) => encoder.emit_int(*i),
            Value::Bytes(b) => encoder.emit_bytes(b),
            Value::List(items) => encoder.emit_list(|e| items.iter().try_for_each(|v| e.emit(v))),
            Value::Dict(dict) => {
                let mut sorted: Vec<_> = dict.entries.iter().collect();
                sorted.sort_unstable_by_key(|(k, _)| *k);
                encoder.emit_dict(|mut e| sorted.iter().try_for_each(|(k, v)| e.emit_pair(k, v)))
            }
        }
    }
}

/// Decodes exactly one value that spans all of `input`, with the default limits.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    decode_with(input, Limits::default())
}

/// Decodes exactly one value that spans all of `input`.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Value<'_>, DecodeError> {
    let (value, used) = decode_prefix_with(input, limits)?;
    match input.len() - used {
        0 => Ok(value),
        extra => Err(DecodeError::TrailingData(extra)),
    }
}

/// Decodes one value at the start of `input` and says how many bytes it took; the rest is
/// left alone (BEP 9 metadata pieces follow their dictionary this way).
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), DecodeError> {
    decode_prefix_with(input, Limits::default())
}

/// [`decode_prefix`] with explicit limits.
pub fn decode_prefix_with(input: &[u8], limits: Limits) -> Result<(Value<'_>, usize), DecodeError> {
    let mut parser = Parser {
        input,
        pos: 0,
        limits,
    };
    let value = parser.value(0)?;
    Ok((value, parser.pos))
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::UnexpectedEnd(self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                self.int(b'e').map(Value::Int)
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                let depth = self.enter(depth)?;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                let start = self.pos;
                let depth = self.enter(depth)?;
                let mut dict = Dict::new();
                // Keys seen so far, built only once a key arrives out of order: sorted input
                // (the norm) can repeat only the previous key, so duplicates cost O(1) to find
                // there and O(log n) otherwise, never a scan of the whole dictionary.
                let mut seen: Option<BTreeSet<&'a [u8]>> = None;
                while self.peek()? != b'e' {
                    let key_at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(DecodeError::KeyNotString(key_at));
                    }
                    let key = self.bytes()?;
                    let value = self.value(depth)?;
                    let last = dict.entries.last().map(|(k, _)| *k);
                    let fresh = match (&mut seen, last) {
                        (Some(seen), _) => seen.insert(key),
                        (None, None) => true,
                        (None, Some(last)) if key > last => true,
                        (None, Some(_)) => {
                            let keys = seen.insert(dict.entries.iter().map(|(k, _)| *k).collect());
                            keys.insert(key)
                        }
                    };
                    if fresh {
                        dict.entries.push((key, value));
                    }
                }
                self.pos += 1;
                dict.raw = self.input.get(start..self.pos).unwrap_or_default();
                Ok(Value::Dict(dict))
            }
            byte => Err(DecodeError::UnexpectedByte {
                byte,
                offset: self.pos,
            }),
        }
    }

    /// Steps over the opening `l` or `d`, checking the depth limit.
    fn enter(&mut self, depth: usize) -> Result<usize, DecodeError> {
        let depth = depth + 1;
        if depth > self.limits.max_depth {
            return Err(DecodeError::TooDeep(self.limits.max_depth));
        }
        self.pos += 1;
        Ok(depth)
    }

    /// A byte string: `<length>:<bytes>`.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let offset = self.pos;
        let declared = self.int(b':')?;
        let available = self.input.len() - self.pos;
        let len = usize::try_from(declared)
            .ok()
            .filter(|&len| len <= available)
            .ok_or(DecodeError::StringTooLong {
                offset,
                declared: declared.unsigned_abs(),
                available,
            })?;
        let bytes = self
            .input
            .get(self.pos..self.pos + len)
            .ok_or(DecodeError::UnexpectedEnd(self.input.len()))?;
        self.pos += len;
        Ok(bytes)
    }

    /// Digits with an optional sign up to `terminator`, which is consumed. A string length
    /// (terminator `:`) may not be negative.
    fn int(&mut self, terminator: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        let negative = self.peek()? == b'-';
        if negative {
            if terminator == b':' {
                return Err(DecodeError::UnexpectedByte {
                    byte: b'-',
                    offset: start,
                });
            }
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut value: i64 = 0;
        loop {
            let byte = self.peek()?;
            match byte {
                b'0'..=b'9' => {
                    let digit = i64::from(byte - b'0');
                    // Accumulate negatively so that i64::MIN fits.
                    value = value
                        .checked_mul(10)
                        .and_then(|v| {
                            if negative {
                                v.checked_sub(digit)
                            } else {
                                v.checked_add(digit)
                            }
                        })
                        .ok_or(DecodeError::IntegerOverflow(start))?;
                    self.pos += 1;
                }
                b if b == terminator && self.pos > digits_start => break,
                byte => {
                    return Err(DecodeError::UnexpectedByte {
                        byte,
                        offset: self.pos,
                    });
                }
            }
        }
        let digits = self.pos - digits_start;
        self.pos += 1;
        if digits > 1 && self.input.get(digits_start) == Some(&b'0') {
            return Err(DecodeError::LeadingZero(start));
        }
        if negative && value == 0 {
            return Err(DecodeError::NegativeZero(start));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests;
