//! Extension payloads: the BEP 10 extended handshake, BEP 9 `ut_metadata` and BEP 11
//! `ut_pex`. These are the payloads of [`super::Message::Extended`]; the extended id that
//! selects them is the connection's business (id 0 is always the handshake, the others are
//! the ids the receiver announced in its `m` dictionary).
//!
//! Decoding rules: unknown keys are ignored; a known key of the wrong type or out of range
//! is an error naming the key. Caps, applied before anything is allocated for them:
//! - [`MAX_METADATA_SIZE`] = 8 MiB for `metadata_size`/`total_size`: 512 metadata pieces,
//!   an info dict for about 400,000 pieces, far beyond real torrents. libtorrent's default
//!   limit is larger (30 MiB); 8 MiB bounds what a magnet fetch buffers per torrent.
//! - [`MAX_PEX_PEERS`] = 200 entries per PEX list (`added`, `added6`, `dropped`,
//!   `dropped6`). The convention agreed by the Azureus and µTorrent developers is at most
//!   50 added and 50 dropped per message; libtorrent sends at most 100 added per message
//!   and keeps at most `max_pex_peers` per connection, refusing messages over 500 KiB.
//!   200 per list is double the largest list a well-behaved client sends.
//! - A `ut_metadata` data message must carry exactly its piece: 16 KiB, or the remainder for
//!   the last piece (BEP 9).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::bencode::{self, DecodeError, Dict, Value};
use crate::compact::{self, CompactError, V4_LEN, V6_LEN};

/// The extended message id of the extended handshake (BEP 10).
pub const HANDSHAKE_ID: u8 = 0;
/// The `m` name of the metadata extension (BEP 9).
pub const UT_METADATA: &str = "ut_metadata";
/// The `m` name of peer exchange (BEP 11).
pub const UT_PEX: &str = "ut_pex";
/// The size of a metadata piece (BEP 9): 16 KiB.
pub const METADATA_PIECE_LEN: u32 = 16384;
/// The largest `metadata_size` accepted (see the module docs).
pub const MAX_METADATA_SIZE: u32 = 8 * 1024 * 1024;
/// The most entries accepted in one PEX list (see the module docs).
pub const MAX_PEX_PEERS: usize = 200;

/// Why an extension payload is invalid.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ExtensionError {
    /// The payload is not bencode.
    #[error("invalid bencode: {0}")]
    Bencode(#[from] DecodeError),
    /// The payload is not a dictionary.
    #[error("payload is a {0}, not a dictionary")]
    NotADict(&'static str),
    /// A key with a value of the wrong type.
    #[error("`{key}` is a {found}, expected a {expected}")]
    WrongType {
        /// The key (`m.name` for an entry of `m`).
        key: String,
        /// The type it should have.
        expected: &'static str,
        /// The type it has.
        found: &'static str,
    },
    /// An integer outside its key's range.
    #[error("`{key}` = {value} is out of range")]
    OutOfRange {
        /// The key.
        key: String,
        /// The value.
        value: i64,
    },
    /// A byte string of a length its key does not allow.
    #[error("`{key}` has {len} bytes, which is not a valid length")]
    WrongLength {
        /// The key.
        key: &'static str,
        /// Its length.
        len: usize,
    },
    /// A required key is missing.
    #[error("missing `{0}`")]
    MissingKey(&'static str),
    /// Metadata larger than [`MAX_METADATA_SIZE`].
    #[error("metadata of {size} bytes is larger than the limit of {max}")]
    MetadataTooLarge {
        /// The size announced.
        size: i64,
        /// The limit.
        max: u32,
    },
    /// A `ut_metadata` `msg_type` other than 0, 1, 2.
    #[error("unknown ut_metadata msg_type {0}")]
    UnknownMetadataType(i64),
    /// A metadata piece index past the last piece, or data of the wrong length for it.
    #[error("metadata piece {piece} of {len} bytes does not fit metadata of {total_size} bytes")]
    BadMetadataPiece {
        /// The piece index.
        piece: u32,
        /// The data's length.
        len: usize,
        /// The metadata's size.
        total_size: u32,
    },
    /// More PEX entries in one list than [`MAX_PEX_PEERS`].
    #[error("`{key}` has {count} peers, more than the limit of {max}")]
    TooManyPeers {
        /// The key.
        key: &'static str,
        /// The entries in it.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A compact peer list of a ragged length.
    #[error("`{key}`: {source}")]
    Compact {
        /// The key.
        key: &'static str,
        /// The problem.
        source: CompactError,
    },
    /// A PEX flags string whose length is not the number of peers it describes.
    #[error("`{key}` has {flags} flags for {peers} peers")]
    FlagsMismatch {
        /// The flags key.
        key: &'static str,
        /// The flag bytes.
        flags: usize,
        /// The peers.
        peers: usize,
    },
}

fn wrong_type(key: impl Into<String>, expected: &'static str, found: &Value<'_>) -> ExtensionError {
    ExtensionError::WrongType {
        key: key.into(),
        expected,
        found: found.kind(),
    }
}

fn top_dict<'a>(value: &'a Value<'a>) -> Result<&'a Dict<'a>, ExtensionError> {
    value
        .as_dict()
        .ok_or(ExtensionError::NotADict(value.kind()))
}

fn opt_int(dict: &Dict<'_>, key: &'static str) -> Result<Option<i64>, ExtensionError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(Value::Int(i)) => Ok(Some(*i)),
        Some(other) => Err(wrong_type(key, "integer", other)),
    }
}

/// An optional integer key converted to `T`; out-of-range values are errors.
fn opt_int_in<T: TryFrom<i64>>(
    dict: &Dict<'_>,
    key: &'static str,
) -> Result<Option<T>, ExtensionError> {
    opt_int(dict, key)?
        .map(|value| {
            T::try_from(value).map_err(|_| ExtensionError::OutOfRange {
                key: key.into(),
                value,
            })
        })
        .transpose()
}

fn opt_bytes<'a>(dict: &Dict<'a>, key: &'static str) -> Result<Option<&'a [u8]>, ExtensionError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b)),
        Some(other) => Err(wrong_type(key, "string", other)),
    }
}

fn int(value: u32) -> Value<'static> {
    Value::Int(i64::from(value))
}

/// Checks an announced metadata size against [`MAX_METADATA_SIZE`].
fn metadata_size(dict: &Dict<'_>, key: &'static str) -> Result<Option<u32>, ExtensionError> {
    match opt_int(dict, key)? {
        None => Ok(None),
        Some(size) if size < 0 => Err(ExtensionError::OutOfRange {
            key: key.into(),
            value: size,
        }),
        Some(size) if size > i64::from(MAX_METADATA_SIZE) => {
            Err(ExtensionError::MetadataTooLarge {
                size,
                max: MAX_METADATA_SIZE,
            })
        }
        Some(size) => Ok(u32::try_from(size).ok()),
    }
}

/// The extended handshake (BEP 10): the extension message ids the sender assigned, and
/// what it says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// `m`: extension name → the id the sender wants to receive it under; 0 disables an
    /// extension announced earlier. Names that are not UTF-8 are dropped.
    pub messages: BTreeMap<String, u8>,
    /// `v`: client name and version (lossy UTF-8).
    pub client: Option<String>,
    /// `p`: the sender's listening TCP port.
    pub port: Option<u16>,
    /// `reqq`: how many outstanding requests the sender queues.
    pub request_queue: Option<u32>,
    /// `yourip`: the receiver's address as the sender sees it.
    pub your_ip: Option<IpAddr>,
    /// `metadata_size` (BEP 9): the info dict's size, at most [`MAX_METADATA_SIZE`].
    pub metadata_size: Option<u32>,
    /// `upload_only` (BEP 21): the sender is a partial seed and downloads nothing.
    pub upload_only: bool,
}

impl ExtendedHandshake {
    /// The id the sender assigned to extension `name`, unless absent or disabled.
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.messages.get(name).copied().filter(|id| *id != 0)
    }

    /// Decodes an extended handshake payload.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let value = bencode::decode(payload)?;
        let dict = top_dict(&value)?;
        let mut messages = BTreeMap::new();
        match dict.get(b"m") {
            None => {}
            Some(Value::Dict(m)) => {
                for (name, id) in m.iter() {
                    let Ok(name) = std::str::from_utf8(name) else {
                        continue;
                    };
                    let key = || format!("m.{name}");
                    let Value::Int(raw) = id else {
                        return Err(wrong_type(key(), "integer", id));
                    };
                    let id = u8::try_from(*raw).map_err(|_| ExtensionError::OutOfRange {
                        key: key(),
                        value: *raw,
                    })?;
                    messages.insert(name.to_owned(), id);
                }
            }
            Some(other) => return Err(wrong_type("m", "dictionary", other)),
        }
        let your_ip = match opt_bytes(dict, "yourip")? {
            None => None,
            Some(ip) => Some(match (<[u8; 4]>::try_from(ip), <[u8; 16]>::try_from(ip)) {
                (Ok(v4), _) => IpAddr::V4(Ipv4Addr::from(v4)),
                (_, Ok(v6)) => IpAddr::V6(Ipv6Addr::from(v6)),
                _ => {
                    return Err(ExtensionError::WrongLength {
                        key: "yourip",
                        len: ip.len(),
                    });
                }
            }),
        };
        Ok(ExtendedHandshake {
            messages,
            client: opt_bytes(dict, "v")?.map(|v| String::from_utf8_lossy(v).into_owned()),
            port: opt_int_in(dict, "p")?,
            request_queue: opt_int_in(dict, "reqq")?,
            your_ip,
            metadata_size: metadata_size(dict, "metadata_size")?,
            upload_only: opt_int(dict, "upload_only")?.is_some_and(|flag| flag != 0),
        })
    }

    /// The bencoded payload (keys sorted; absent fields omitted).
    pub fn to_bytes(&self) -> Bytes {
        let ip = match self.your_ip {
            Some(IpAddr::V4(ip)) => ip.octets().to_vec(),
            Some(IpAddr::V6(ip)) => ip.octets().to_vec(),
            None => Vec::new(),
        };
        let m = self.messages.iter().fold(Dict::new(), |m, (name, id)| {
            m.with(name.as_bytes(), int(u32::from(*id)))
        });
        let mut dict = Dict::new().with(b"m", Value::Dict(m));
        if let Some(client) = &self.client {
            dict.insert(b"v", Value::Bytes(client.as_bytes()));
        }
        if let Some(port) = self.port {
            dict.insert(b"p", int(u32::from(port)));
        }
        if let Some(reqq) = self.request_queue {
            dict.insert(b"reqq", int(reqq));
        }
        if self.your_ip.is_some() {
            dict.insert(b"yourip", Value::Bytes(&ip));
        }
        if let Some(size) = self.metadata_size {
            dict.insert(b"metadata_size", int(size));
        }
        if self.upload_only {
            dict.insert(b"upload_only", Value::Int(1));
        }
        Bytes::from(Value::Dict(dict).to_bytes())
    }
}

/// The number of 16 KiB metadata pieces in metadata of `total_size` bytes.
pub const fn metadata_piece_count(total_size: u32) -> u32 {
    total_size.div_ceil(METADATA_PIECE_LEN)
}

/// The length of metadata piece `piece` (16 KiB but the last), `None` past the end.
pub fn metadata_piece_len(total_size: u32, piece: u32) -> Option<u32> {
    let begin = piece.checked_mul(METADATA_PIECE_LEN)?;
    let len = total_size.checked_sub(begin)?.min(METADATA_PIECE_LEN);
    (len > 0).then_some(len)
}

/// A `ut_metadata` message (BEP 9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: asks for a piece of the info dict.
    Request {
        /// The metadata piece.
        piece: u32,
    },
    /// `msg_type` 1: a piece of the info dict, which follows the bencoded dictionary.
    Data {
        /// The metadata piece.
        piece: u32,
        /// The info dict's size, at most [`MAX_METADATA_SIZE`].
        total_size: u32,
        /// The piece's bytes: a slice of the payload, not a copy.
        data: Bytes,
    },
    /// `msg_type` 2: the sender will not send this piece.
    Reject {
        /// The metadata piece.
        piece: u32,
    },
}

impl MetadataMessage {
    /// Decodes a `ut_metadata` payload. A data message must carry exactly its piece, and its
    /// `total_size` must be within [`MAX_METADATA_SIZE`]; bytes after the dictionary of a
    /// request or reject are ignored.
    pub fn decode(payload: &Bytes) -> Result<Self, ExtensionError> {
        let (value, used) = bencode::decode_prefix(payload)?;
        let dict = top_dict(&value)?;
        let msg_type = opt_int(dict, "msg_type")?.ok_or(ExtensionError::MissingKey("msg_type"))?;
        let piece = opt_int_in(dict, "piece")?.ok_or(ExtensionError::MissingKey("piece"))?;
        match msg_type {
            0 => Ok(MetadataMessage::Request { piece }),
            2 => Ok(MetadataMessage::Reject { piece }),
            1 => {
                let total_size = metadata_size(dict, "total_size")?
                    .ok_or(ExtensionError::MissingKey("total_size"))?;
                let data = payload.slice(used.min(payload.len())..);
                let expected = metadata_piece_len(total_size, piece);
                if expected.and_then(|len| usize::try_from(len).ok()) != Some(data.len()) {
                    return Err(ExtensionError::BadMetadataPiece {
                        piece,
                        len: data.len(),
                        total_size,
                    });
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                })
            }
            other => Err(ExtensionError::UnknownMetadataType(other)),
        }
    }

    /// The payload: the bencoded dictionary, then the data of a data message.
    pub fn to_bytes(&self) -> Bytes {
        let (msg_type, piece) = match self {
            MetadataMessage::Request { piece } => (0, piece),
            MetadataMessage::Data { piece, .. } => (1, piece),
            MetadataMessage::Reject { piece } => (2, piece),
        };
        let mut dict = Dict::new()
            .with(b"msg_type", Value::Int(msg_type))
            .with(b"piece", int(*piece));
        let MetadataMessage::Data {
            total_size, data, ..
        } = self
        else {
            return Bytes::from(Value::Dict(dict).to_bytes());
        };
        dict.insert(b"total_size", int(*total_size));
        let head = Value::Dict(dict).to_bytes();
        let mut out = BytesMut::with_capacity(head.len() + data.len());
        out.extend_from_slice(&head);
        out.extend_from_slice(data);
        out.freeze()
    }
}

/// PEX flags of an added peer (BEP 11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// 0x01: prefers encryption (the `e` of its extended handshake).
    pub const ENCRYPTION: PexFlags = PexFlags(0x01);
    /// 0x02: a seed, or upload only.
    pub const SEED: PexFlags = PexFlags(0x02);
    /// 0x04: supports uTP.
    pub const UTP: PexFlags = PexFlags(0x04);
    /// 0x08: supports `ut_holepunch`.
    pub const HOLEPUNCH: PexFlags = PexFlags(0x08);
    /// 0x10: the sender reached it by an outgoing connection.
    pub const REACHABLE: PexFlags = PexFlags(0x10);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: PexFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of bits.
    pub const fn union(self, other: PexFlags) -> PexFlags {
        PexFlags(self.0 | other.0)
    }
}

/// An added peer and its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PexPeer {
    /// The peer's address.
    pub addr: SocketAddr,
    /// What the sender knows about it.
    pub flags: PexFlags,
}

/// A `ut_pex` message (BEP 11). IPv4 and IPv6 peers share each list; decoding yields the
/// IPv4 ones first, and encoding splits them by family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers the sender connected to since its last message.
    pub added: Vec<PexPeer>,
    /// Peers the sender disconnected from since its last message.
    pub dropped: Vec<SocketAddr>,
}

/// A compact list under `key`, at most [`MAX_PEX_PEERS`] entries.
fn pex_list(
    dict: &Dict<'_>,
    key: &'static str,
    entry: usize,
) -> Result<Vec<SocketAddr>, ExtensionError> {
    let bytes = opt_bytes(dict, key)?.unwrap_or_default();
    let count = bytes.len() / entry;
    if count > MAX_PEX_PEERS {
        return Err(ExtensionError::TooManyPeers {
            key,
            count,
            max: MAX_PEX_PEERS,
        });
    }
    let decoded = if entry == V4_LEN {
        compact::decode_peers_v4(bytes)
    } else {
        compact::decode_peers_v6(bytes)
    };
    decoded.map_err(|source| ExtensionError::Compact { key, source })
}

/// Pairs added peers with their flags (missing flags are 0).
fn with_flags(
    dict: &Dict<'_>,
    key: &'static str,
    peers: Vec<SocketAddr>,
) -> Result<impl Iterator<Item = PexPeer>, ExtensionError> {
    let flags = opt_bytes(dict, key)?;
    if let Some(flags) = flags
        && flags.len() != peers.len()
    {
        return Err(ExtensionError::FlagsMismatch {
            key,
            flags: flags.len(),
            peers: peers.len(),
        });
    }
    let flags = flags
        .unwrap_or_default()
        .iter()
        .copied()
        .chain(std::iter::repeat(0));
    Ok(peers.into_iter().zip(flags).map(|(addr, flags)| PexPeer {
        addr,
        flags: PexFlags(flags),
    }))
}

impl PexMessage {
    /// Decodes a `ut_pex` payload; absent keys are empty lists, absent flags are 0.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let value = bencode::decode(payload)?;
        let dict = top_dict(&value)?;
        let added4 = pex_list(dict, "added", V4_LEN)?;
        let added6 = pex_list(dict, "added6", V6_LEN)?;
        let mut added = Vec::with_capacity(added4.len() + added6.len());
        added.extend(with_flags(dict, "added.f", added4)?);
        added.extend(with_flags(dict, "added6.f", added6)?);
        let mut dropped = pex_list(dict, "dropped", V4_LEN)?;
        dropped.extend(pex_list(dict, "dropped6", V6_LEN)?);
        Ok(PexMessage { added, dropped })
    }

    /// The bencoded payload, all six keys present as libtorrent sends them. Refuses a list
    /// of one family longer than [`MAX_PEX_PEERS`], which the receiver would refuse.
    pub fn to_bytes(&self) -> Result<Bytes, ExtensionError> {
        let mut lists: [Vec<u8>; 6] = Default::default();
        let [added, added_f, added6, added6_f, dropped, dropped6] = &mut lists;
        for peer in &self.added {
            let (list, flags) = match peer.addr {
                SocketAddr::V4(_) => (&mut *added, &mut *added_f),
                SocketAddr::V6(_) => (&mut *added6, &mut *added6_f),
            };
            compact::encode_peer(peer.addr, list);
            flags.push(peer.flags.0);
        }
        for addr in &self.dropped {
            let list = if addr.is_ipv4() {
                &mut *dropped
            } else {
                &mut *dropped6
            };
            compact::encode_peer(*addr, list);
        }
        const KEYS: [&str; 6] = [
            "added", "added.f", "added6", "added6.f", "dropped", "dropped6",
        ];
        const ENTRY: [usize; 6] = [V4_LEN, 1, V6_LEN, 1, V4_LEN, V6_LEN];
        let mut dict = Dict::new();
        for ((key, entry), list) in KEYS.iter().zip(ENTRY).zip(&lists) {
            let count = list.len() / entry;
            if count > MAX_PEX_PEERS {
                return Err(ExtensionError::TooManyPeers {
                    key,
                    count,
                    max: MAX_PEX_PEERS,
                });
            }
            dict.insert(key.as_bytes(), Value::Bytes(list));
        }
        Ok(Bytes::from(Value::Dict(dict).to_bytes()))
    }
}
