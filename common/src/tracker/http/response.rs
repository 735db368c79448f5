//! The announce reply (BEP 3), compact peers (BEP 23 `peers`, BEP 7 `peers6`).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};

use super::HttpTrackerError;
use crate::PeerId;
use crate::bencode::{self, Dict, Value};
use crate::compact::{self, V4_LEN, V6_LEN};

/// Most peers [`AnnounceResponse::from_bytes`] keeps from one reply; the rest are dropped.
/// Trackers send 50 to 200.
pub const MAX_RESPONSE_PEERS: usize = 2000;

/// A peer in an announce reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Its address (IPv4 or IPv6).
    pub addr: SocketAddr,
    /// Its peer id: only the dictionary model carries one.
    pub peer_id: Option<PeerId>,
}

/// A successful announce reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceReply {
    /// Seconds the client should wait before the next regular announce.
    pub interval: u32,
    /// `min interval`: announces sooner than this may be refused.
    pub min_interval: Option<u32>,
    /// Seeders in the swarm.
    pub complete: Option<u32>,
    /// Leechers in the swarm.
    pub incomplete: Option<u32>,
    /// `tracker id`, to send back as `trackerid`.
    pub tracker_id: Option<Vec<u8>>,
    /// `warning message`: shown to the user, the reply is otherwise valid.
    pub warning_message: Option<String>,
    /// The peers, IPv4 and IPv6.
    pub peers: Vec<Peer>,
}

/// An announce reply: peers, or the tracker's refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnnounceResponse {
    /// The announce was accepted.
    Success(AnnounceReply),
    /// `failure reason`: the announce was refused; no other key matters.
    Failure(String),
}

impl AnnounceResponse {
    /// Encodes the reply (keys sorted).
    ///
    /// `compact`: IPv4 peers as 6-byte entries in `peers` (always present, possibly empty) and
    /// IPv6 peers as 18-byte entries in `peers6` (present only when there are some); peer ids
    /// are dropped. Otherwise `peers` is a list of `{ip, port, peer id}` dictionaries, IPv6
    /// addresses as text (BEP 7), `peer id` left out when `no_peer_id` or unknown.
    pub fn to_bytes(&self, compact: bool, no_peer_id: bool) -> Vec<u8> {
        let reply = match self {
            AnnounceResponse::Failure(reason) => {
                return Value::Dict(
                    Dict::new().with(b"failure reason", Value::Bytes(reason.as_bytes())),
                )
                .to_bytes();
            }
            AnnounceResponse::Success(reply) => reply,
        };
        let mut dict = Dict::new().with(b"interval", Value::Int(reply.interval.into()));
        let optional_ints = [
            (&b"min interval"[..], reply.min_interval),
            (b"complete", reply.complete),
            (b"incomplete", reply.incomplete),
        ];
        for (key, value) in optional_ints {
            if let Some(v) = value {
                dict.insert(key, Value::Int(v.into()));
            }
        }
        if let Some(id) = &reply.tracker_id {
            dict.insert(b"tracker id", Value::Bytes(id));
        }
        if let Some(warning) = &reply.warning_message {
            dict.insert(b"warning message", Value::Bytes(warning.as_bytes()));
        }
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let texts: Vec<String>;
        if compact {
            for peer in &reply.peers {
                match peer.addr {
                    SocketAddr::V4(_) => compact::encode_peer(peer.addr, &mut v4),
                    SocketAddr::V6(_) => compact::encode_peer(peer.addr, &mut v6),
                }
            }
            dict.insert(b"peers", Value::Bytes(&v4));
            if !v6.is_empty() {
                dict.insert(b"peers6", Value::Bytes(&v6));
            }
        } else {
            texts = reply
                .peers
                .iter()
                .map(|p| p.addr.ip().to_string())
                .collect();
            let list = reply
                .peers
                .iter()
                .zip(&texts)
                .map(|(peer, ip)| {
                    let mut entry = Dict::new()
                        .with(b"ip", Value::Bytes(ip.as_bytes()))
                        .with(b"port", Value::Int(peer.addr.port().into()));
                    if let (false, Some(id)) = (no_peer_id, &peer.peer_id) {
                        entry.insert(b"peer id", Value::Bytes(id.as_bytes()));
                    }
                    Value::Dict(entry)
                })
                .collect();
            dict.insert(b"peers", Value::List(list));
        }
        Value::Dict(dict).to_bytes()
    }

    /// Decodes a reply in either model (both `peers` forms, plus `peers6`).
    ///
    /// Lenient where real trackers are sloppy: a dictionary-model peer whose `ip` is a host
    /// name, or that lacks a valid `ip`/`port`, is skipped (Rill does not resolve peer host
    /// names); a `peer id` that is not 20 bytes is dropped. Strict where the reply is
    /// unusable: no `interval`, compact peers whose length is not a multiple of the entry.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HttpTrackerError> {
        decode_reply(bytes, AnnounceResponse::Failure, Self::success)
    }

    fn success(dict: &Dict<'_>) -> Result<Self, HttpTrackerError> {
        let interval =
            get_u32(dict, "interval")?.ok_or(HttpTrackerError::MissingKey("interval"))?;
        let mut peers = Vec::new();
        match dict.get(b"peers") {
            None => {}
            Some(Value::Bytes(raw)) => decode_compact::<V4_LEN>(raw, "peers", &mut peers, |c| {
                SocketAddr::V4(compact::decode_v4(c))
            })?,
            Some(Value::List(list)) => decode_dict_peers(list, &mut peers),
            Some(other) => return Err(invalid("peers", other.kind())),
        }
        match dict.get(b"peers6") {
            None => {}
            Some(Value::Bytes(raw)) => decode_compact::<V6_LEN>(raw, "peers6", &mut peers, |c| {
                SocketAddr::V6(compact::decode_v6(c))
            })?,
            Some(Value::List(list)) => decode_dict_peers(list, &mut peers),
            Some(other) => return Err(invalid("peers6", other.kind())),
        }
        Ok(AnnounceResponse::Success(AnnounceReply {
            interval,
            min_interval: get_u32(dict, "min interval")?,
            complete: get_u32(dict, "complete")?,
            incomplete: get_u32(dict, "incomplete")?,
            tracker_id: get_bytes(dict, "tracker id")?.map(<[u8]>::to_vec),
            warning_message: get_bytes(dict, "warning message")?
                .map(|w| String::from_utf8_lossy(w).into_owned()),
            peers,
        }))
    }
}

/// Decodes a tracker reply (announce or scrape): a bencoded dictionary that either carries
/// a `failure reason` string, handed to `failure` (no other key matters then), or is
/// handed to `success`.
pub(crate) fn decode_reply<T>(
    bytes: &[u8],
    failure: impl FnOnce(String) -> T,
    success: impl FnOnce(&Dict<'_>) -> Result<T, HttpTrackerError>,
) -> Result<T, HttpTrackerError> {
    let value = bencode::decode(bytes)?;
    let dict = value
        .as_dict()
        .ok_or(HttpTrackerError::NotADict(value.kind()))?;
    match get_bytes(dict, "failure reason")? {
        Some(reason) => Ok(failure(String::from_utf8_lossy(reason).into_owned())),
        None => success(dict),
    }
}

fn invalid(key: &'static str, reason: &str) -> HttpTrackerError {
    HttpTrackerError::InvalidKey {
        key,
        reason: reason.to_owned(),
    }
}

/// An optional non-negative integer that fits in `u32`.
pub(crate) fn get_u32(dict: &Dict<'_>, key: &'static str) -> Result<Option<u32>, HttpTrackerError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(value) => {
            let n = value
                .as_int()
                .ok_or_else(|| invalid(key, &format!("a {}, not an integer", value.kind())))?;
            u32::try_from(n)
                .map(Some)
                .map_err(|_| invalid(key, &format!("{n} is out of range")))
        }
    }
}

/// An optional byte string.
pub(crate) fn get_bytes<'a>(
    dict: &Dict<'a>,
    key: &'static str,
) -> Result<Option<&'a [u8]>, HttpTrackerError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(value) => value
            .as_bytes()
            .map(Some)
            .ok_or_else(|| invalid(key, &format!("a {}, not a string", value.kind()))),
    }
}

/// Appends compact peers, up to the cap, without allocating for the ones dropped.
fn decode_compact<const N: usize>(
    raw: &[u8],
    key: &'static str,
    peers: &mut Vec<Peer>,
    decode: impl Fn([u8; N]) -> SocketAddr,
) -> Result<(), HttpTrackerError> {
    let chunks = raw.chunks_exact(N);
    if !chunks.remainder().is_empty() {
        return Err(invalid(
            key,
            &format!("{} bytes is not a multiple of {N}", raw.len()),
        ));
    }
    let room = MAX_RESPONSE_PEERS.saturating_sub(peers.len());
    peers.extend(
        chunks
            .take(room)
            .filter_map(|chunk| <[u8; N]>::try_from(chunk).ok())
            .map(|chunk| Peer {
                addr: decode(chunk),
                peer_id: None,
            }),
    );
    Ok(())
}

/// Appends dictionary-model peers, up to the cap, skipping unusable entries.
fn decode_dict_peers(list: &[Value<'_>], peers: &mut Vec<Peer>) {
    let room = MAX_RESPONSE_PEERS.saturating_sub(peers.len());
    peers.extend(list.iter().filter_map(dict_peer).take(room));
}

fn dict_peer(value: &Value<'_>) -> Option<Peer> {
    let entry = value.as_dict()?;
    let ip: IpAddr = entry.get_str(b"ip")?.parse().ok()?;
    let port = u16::try_from(entry.get_int(b"port")?).ok()?;
    let peer_id = entry
        .get_bytes(b"peer id")
        .and_then(|id| PeerId::from_slice(id).ok());
    Some(Peer {
        addr: SocketAddr::new(ip, port),
        peer_id,
    })
}
