//! Decoding of KRPC packets into [`Message`]s (BEP 5, 32, 42, 43).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::SocketAddr;

use super::{
    Body, KrpcError, MAX_NODES, MAX_PACKET_LEN, MAX_TRANSACTION_ID_LEN, MAX_VALUES, Message,
    NODE_V4_LEN, NODE_V6_LEN, NodeId, Query, Response, Want, decode_nodes_v4, decode_nodes_v6,
};
use crate::InfoHash;
use crate::bencode::{self, Dict, Value};
use crate::compact::{self, V4_LEN, V6_LEN};

pub(super) fn message(packet: &[u8]) -> Result<Message, KrpcError> {
    if packet.len() > MAX_PACKET_LEN {
        return Err(KrpcError::TooLarge(packet.len()));
    }
    let value = bencode::decode(packet)?;
    let top = value.as_dict().ok_or(KrpcError::WrongType {
        key: "message",
        expected: "dictionary",
        found: value.kind(),
    })?;
    let transaction_id = bytes(top, "t")?;
    if transaction_id.len() > MAX_TRANSACTION_ID_LEN {
        return Err(KrpcError::TransactionIdTooLong(transaction_id.len()));
    }
    let kind = bytes(top, "y")?;
    let rest = || -> Result<Message, KrpcError> {
        let body = match kind {
            b"q" => Body::Query(query(top)?),
            b"r" => Body::Response(response(dict(top, "r")?)?),
            b"e" => error(top)?,
            other => {
                return Err(KrpcError::UnknownType(
                    String::from_utf8_lossy(other).into_owned(),
                ));
            }
        };
        Ok(Message {
            transaction_id: transaction_id.to_vec(),
            version: optional_bytes(top, "v")?.map(<[u8]>::to_vec),
            ip: optional_bytes(top, "ip")?.map(ip).transpose()?,
            read_only: optional_int(top, "ro")?.is_some_and(|ro| ro != 0),
            body,
        })
    };
    // A malformed query still gets an answer (error 203), so keep what it needs.
    rest().map_err(|source| match (kind, top.get_bytes(b"q")) {
        (b"q", method) => KrpcError::InvalidQuery {
            transaction_id: transaction_id.to_vec(),
            method: method.unwrap_or_default().to_vec(),
            source: Box::new(source),
        },
        _ => source,
    })
}

fn query(top: &Dict<'_>) -> Result<Query, KrpcError> {
    let method = bytes(top, "q")?;
    let args = dict(top, "a")?;
    Ok(match method {
        b"ping" => Query::Ping {
            id: id(args, "id")?,
        },
        b"find_node" => Query::FindNode {
            id: id(args, "id")?,
            target: id(args, "target")?,
            want: want(args)?,
        },
        b"get_peers" => Query::GetPeers {
            id: id(args, "id")?,
            info_hash: InfoHash::from_bytes(*id(args, "info_hash")?.as_bytes()),
            want: want(args)?,
        },
        b"announce_peer" => {
            let implied_port = optional_int(args, "implied_port")?.is_some_and(|i| i != 0);
            let port = match optional_int(args, "port")? {
                Some(port) => u16::try_from(port).map_err(|_| KrpcError::BadPort(port))?,
                // BEP 5: with implied_port the port argument is ignored, so tolerate its absence.
                None if implied_port => 0,
                None => return Err(KrpcError::MissingKey("port")),
            };
            Query::AnnouncePeer {
                id: id(args, "id")?,
                info_hash: InfoHash::from_bytes(*id(args, "info_hash")?.as_bytes()),
                port,
                implied_port,
                token: bytes(args, "token")?.to_vec(),
            }
        }
        other => Query::Other {
            method: other.to_vec(),
            id: args
                .get_bytes(b"id")
                .and_then(|b| NodeId::from_slice(b).ok()),
        },
    })
}

fn response(r: &Dict<'_>) -> Result<Response, KrpcError> {
    let mut nodes = Vec::new();
    if let Some(list) = optional_bytes(r, "nodes")? {
        check_count("nodes", list.len() / NODE_V4_LEN, MAX_NODES)?;
        nodes = decode_nodes_v4(list).map_err(|source| KrpcError::Ragged {
            key: "nodes",
            source,
        })?;
    }
    let mut nodes6 = Vec::new();
    if let Some(list) = optional_bytes(r, "nodes6")? {
        check_count("nodes6", list.len() / NODE_V6_LEN, MAX_NODES)?;
        nodes6 = decode_nodes_v6(list).map_err(|source| KrpcError::Ragged {
            key: "nodes6",
            source,
        })?;
    }
    let values = match r.get(b"values") {
        None => Vec::new(),
        Some(Value::List(list)) => {
            check_count("values", list.len(), MAX_VALUES)?;
            list.iter().map(peer).collect::<Result<_, _>>()?
        }
        Some(other) => return Err(wrong_type("values", "list", other)),
    };
    Ok(Response {
        id: id(r, "id")?,
        nodes,
        nodes6,
        values,
        token: optional_bytes(r, "token")?.map(<[u8]>::to_vec),
    })
}

fn error(top: &Dict<'_>) -> Result<Body, KrpcError> {
    let list = match top.get(b"e") {
        None => return Err(KrpcError::MissingKey("e")),
        Some(Value::List(list)) => list,
        Some(other) => return Err(wrong_type("e", "list", other)),
    };
    match list.as_slice() {
        [Value::Int(code), Value::Bytes(message), ..] => Ok(Body::Error {
            code: *code,
            message: String::from_utf8_lossy(message).into_owned(),
        }),
        _ => Err(KrpcError::BadErrorList),
    }
}

fn want(args: &Dict<'_>) -> Result<Want, KrpcError> {
    let mut want = Want::default();
    match args.get(b"want") {
        None => {}
        Some(Value::List(list)) => {
            // Unknown entries are ignored: BEP 32 leaves room for other families.
            for entry in list {
                match entry.as_bytes() {
                    Some(b"n4") => want.v4 = true,
                    Some(b"n6") => want.v6 = true,
                    _ => {}
                }
            }
        }
        Some(other) => return Err(wrong_type("want", "list", other)),
    }
    Ok(want)
}

fn peer(value: &Value<'_>) -> Result<SocketAddr, KrpcError> {
    let bytes = value
        .as_bytes()
        .ok_or_else(|| wrong_type("values", "list of strings", value))?;
    compact_addr(bytes).ok_or(KrpcError::BadPeer(bytes.len()))
}

fn ip(bytes: &[u8]) -> Result<SocketAddr, KrpcError> {
    compact_addr(bytes).ok_or(KrpcError::BadIp(bytes.len()))
}

fn compact_addr(bytes: &[u8]) -> Option<SocketAddr> {
    if let Ok(v4) = <[u8; V4_LEN]>::try_from(bytes) {
        return Some(SocketAddr::V4(compact::decode_v4(v4)));
    }
    <[u8; V6_LEN]>::try_from(bytes)
        .ok()
        .map(|v6| SocketAddr::V6(compact::decode_v6(v6)))
}

fn check_count(key: &'static str, count: usize, max: usize) -> Result<(), KrpcError> {
    if count > max {
        return Err(KrpcError::TooMany { key, count, max });
    }
    Ok(())
}

fn wrong_type(key: &'static str, expected: &'static str, found: &Value<'_>) -> KrpcError {
    KrpcError::WrongType {
        key,
        expected,
        found: found.kind(),
    }
}

fn id(dict: &Dict<'_>, key: &'static str) -> Result<NodeId, KrpcError> {
    let raw = bytes(dict, key)?;
    NodeId::from_slice(raw).map_err(|_| KrpcError::BadId {
        key,
        len: raw.len(),
    })
}

fn dict<'d, 'a>(parent: &'d Dict<'a>, key: &'static str) -> Result<&'d Dict<'a>, KrpcError> {
    match parent.get(key.as_bytes()) {
        None => Err(KrpcError::MissingKey(key)),
        Some(Value::Dict(d)) => Ok(d),
        Some(other) => Err(wrong_type(key, "dictionary", other)),
    }
}

fn bytes<'a>(dict: &Dict<'a>, key: &'static str) -> Result<&'a [u8], KrpcError> {
    optional_bytes(dict, key)?.ok_or(KrpcError::MissingKey(key))
}

fn optional_bytes<'a>(dict: &Dict<'a>, key: &'static str) -> Result<Option<&'a [u8]>, KrpcError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b)),
        Some(other) => Err(wrong_type(key, "string", other)),
    }
}

fn optional_int(dict: &Dict<'_>, key: &'static str) -> Result<Option<i64>, KrpcError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(Value::Int(i)) => Ok(Some(*i)),
        Some(other) => Err(wrong_type(key, "integer", other)),
    }
}
