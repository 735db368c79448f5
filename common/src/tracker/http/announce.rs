//! The announce request as a query string (BEP 3, BEP 7 `ipv4`/`ipv6`, BEP 23 `compact`).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{
    HttpTrackerError, append_query, parse_number, parse_query, parse_text, percent_encode_bytes,
};
use crate::tracker::AnnounceEvent;
use crate::{InfoHash, PeerId};

/// Longest announce query accepted by [`AnnounceRequest::from_query`]. Real announces are
/// 200 to 400 bytes; the cap leaves room for long keys and addresses.
pub const MAX_ANNOUNCE_QUERY_LEN: usize = 4096;

/// An HTTP announce (BEP 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// The port the peer listens on (0 is passed through; the tracker decides).
    pub port: u16,
    /// Bytes uploaded since the `started` announce.
    pub uploaded: u64,
    /// Bytes downloaded since the `started` announce.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// The event, `None` for a regular announce (`event=` empty, `empty` or absent).
    pub event: Option<AnnounceEvent>,
    /// `compact=1` (BEP 23); absent or any other value is `false`.
    pub compact: bool,
    /// `no_peer_id=1`; absent or any other value is `false`.
    pub no_peer_id: bool,
    /// Peers wanted; a negative `numwant` (some clients send -1 for "default") reads as `None`.
    pub numwant: Option<u32>,
    /// The client's `key` (BEP 7), as text.
    pub key: Option<String>,
    /// `trackerid` from a previous reply.
    pub tracker_id: Option<Vec<u8>>,
    /// The legacy `ip` parameter (address or host name), untouched.
    pub ip: Option<String>,
    /// BEP 7 `ipv4`: an address (its port is then `port`) or an endpoint `a.b.c.d:port`.
    pub ipv4: Option<SocketAddrV4>,
    /// BEP 7 `ipv6`: an address (its port is then `port`) or an endpoint `[addr]:port`.
    pub ipv6: Option<SocketAddrV6>,
}

impl AnnounceRequest {
    /// A plain announce with counters at zero, compact, and every option unset.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16) -> Self {
        AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: None,
            compact: true,
            no_peer_id: false,
            numwant: None,
            key: None,
            tracker_id: None,
            ip: None,
            ipv4: None,
            ipv6: None,
        }
    }

    /// The query string (no leading `?`); binary values percent-encoded byte by byte.
    pub fn to_query(&self) -> String {
        let mut q = format!(
            "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact={}",
            percent_encode_bytes(self.info_hash.as_bytes()),
            percent_encode_bytes(self.peer_id.as_bytes()),
            self.port,
            self.uploaded,
            self.downloaded,
            self.left,
            u8::from(self.compact),
        );
        // Writing to a String cannot fail.
        if self.no_peer_id {
            q.push_str("&no_peer_id=1");
        }
        if let Some(event) = self.event {
            let _ = write!(q, "&event={}", event.as_str());
        }
        if let Some(numwant) = self.numwant {
            let _ = write!(q, "&numwant={numwant}");
        }
        if let Some(key) = &self.key {
            let _ = write!(q, "&key={}", percent_encode_bytes(key.as_bytes()));
        }
        if let Some(id) = &self.tracker_id {
            let _ = write!(q, "&trackerid={}", percent_encode_bytes(id));
        }
        if let Some(ip) = &self.ip {
            let _ = write!(q, "&ip={}", percent_encode_bytes(ip.as_bytes()));
        }
        // A bare address when the port is `port`, as BEP 7 allows; the endpoint otherwise.
        if let Some(v4) = self.ipv4 {
            let text = if v4.port() == self.port {
                v4.ip().to_string()
            } else {
                v4.to_string()
            };
            let _ = write!(q, "&ipv4={}", percent_encode_bytes(text.as_bytes()));
        }
        if let Some(v6) = self.ipv6 {
            let text = if v6.port() == self.port {
                v6.ip().to_string()
            } else {
                SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0).to_string()
            };
            let _ = write!(q, "&ipv6={}", percent_encode_bytes(text.as_bytes()));
        }
        q
    }

    /// The full announce URL: `base` (which may carry its own query, e.g. a passkey) plus
    /// this request's query.
    pub fn announce_url(&self, base: &str) -> String {
        append_query(base, &self.to_query())
    }

    /// Parses the raw query of an announce (what follows `?`, still percent-encoded).
    ///
    /// Required: `info_hash` (20 bytes), `peer_id` (20 bytes), `port`. `uploaded`,
    /// `downloaded` and `left` default to 0 when absent but must be numbers when present.
    pub fn from_query(raw_query: &[u8]) -> Result<Self, HttpTrackerError> {
        if raw_query.len() > MAX_ANNOUNCE_QUERY_LEN {
            return Err(HttpTrackerError::QueryTooLong {
                len: raw_query.len(),
                max: MAX_ANNOUNCE_QUERY_LEN,
            });
        }
        let mut fields = Fields::default();
        for param in parse_query(raw_query)? {
            fields.set(&param.key, &param.value)?;
        }
        fields.finish()
    }
}

/// The parameters of an announce as they are read: `None` until seen, so that the first
/// occurrence of a repeated parameter wins.
#[derive(Default)]
struct Fields {
    info_hash: Option<InfoHash>,
    peer_id: Option<PeerId>,
    port: Option<u16>,
    uploaded: Option<u64>,
    downloaded: Option<u64>,
    left: Option<u64>,
    event: Option<Option<AnnounceEvent>>,
    compact: Option<bool>,
    no_peer_id: Option<bool>,
    numwant: Option<Option<u32>>,
    key: Option<String>,
    tracker_id: Option<Vec<u8>>,
    ip: Option<String>,
    ipv4: Option<Vec<u8>>,
    ipv6: Option<Vec<u8>>,
}

impl Fields {
    /// Reads one parameter; unknown ones are ignored.
    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), HttpTrackerError> {
        match key {
            b"info_hash" => {
                if self.info_hash.is_some() {
                    return Err(HttpTrackerError::RepeatedParameter("info_hash"));
                }
                let hash = InfoHash::from_slice(value).map_err(|e| invalid("info_hash", e))?;
                self.info_hash = Some(hash);
            }
            b"peer_id" => {
                if self.peer_id.is_some() {
                    return Err(HttpTrackerError::RepeatedParameter("peer_id"));
                }
                let id = PeerId::from_slice(value).map_err(|e| invalid("peer_id", e))?;
                self.peer_id = Some(id);
            }
            b"port" if self.port.is_none() => self.port = Some(parse_number("port", value)?),
            b"uploaded" if self.uploaded.is_none() => {
                self.uploaded = Some(parse_number("uploaded", value)?);
            }
            b"downloaded" if self.downloaded.is_none() => {
                self.downloaded = Some(parse_number("downloaded", value)?);
            }
            b"left" if self.left.is_none() => self.left = Some(parse_number("left", value)?),
            b"event" if self.event.is_none() => {
                let event = AnnounceEvent::from_http(value).ok_or_else(|| {
                    invalid(
                        "event",
                        format!("unknown event {:?}", String::from_utf8_lossy(value)),
                    )
                })?;
                self.event = Some(event);
            }
            b"compact" if self.compact.is_none() => self.compact = Some(value == b"1"),
            b"no_peer_id" if self.no_peer_id.is_none() => self.no_peer_id = Some(value == b"1"),
            b"numwant" if self.numwant.is_none() => {
                let n: i64 = parse_number("numwant", value)?;
                // Negative means "the tracker's default"; more than u32 means "all".
                let numwant = if n < 0 {
                    None
                } else {
                    Some(u32::try_from(n).unwrap_or(u32::MAX))
                };
                self.numwant = Some(numwant);
            }
            b"key" if self.key.is_none() => self.key = Some(parse_text("key", value)?),
            b"trackerid" if self.tracker_id.is_none() => self.tracker_id = Some(value.to_vec()),
            b"ip" if self.ip.is_none() => self.ip = Some(parse_text("ip", value)?),
            b"ipv4" if self.ipv4.is_none() => self.ipv4 = Some(value.to_vec()),
            b"ipv6" if self.ipv6.is_none() => self.ipv6 = Some(value.to_vec()),
            _ => {}
        }
        Ok(())
    }

    /// Checks the required parameters and resolves the BEP 7 addresses against `port`.
    fn finish(self) -> Result<AnnounceRequest, HttpTrackerError> {
        let info_hash = self
            .info_hash
            .ok_or(HttpTrackerError::MissingParameter("info_hash"))?;
        let peer_id = self
            .peer_id
            .ok_or(HttpTrackerError::MissingParameter("peer_id"))?;
        let port = self
            .port
            .ok_or(HttpTrackerError::MissingParameter("port"))?;
        let ipv4 = match self.ipv4 {
            None => None,
            Some(text) => match parse_endpoint("ipv4", &text, port)? {
                SocketAddr::V4(v4) => Some(v4),
                SocketAddr::V6(_) => return Err(invalid("ipv4", "an IPv6 address")),
            },
        };
        let ipv6 = match self.ipv6 {
            None => None,
            Some(text) => match parse_endpoint("ipv6", &text, port)? {
                SocketAddr::V6(v6) => Some(v6),
                SocketAddr::V4(_) => return Err(invalid("ipv6", "an IPv4 address")),
            },
        };
        Ok(AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded: self.uploaded.unwrap_or(0),
            downloaded: self.downloaded.unwrap_or(0),
            left: self.left.unwrap_or(0),
            event: self.event.flatten(),
            compact: self.compact.unwrap_or(false),
            no_peer_id: self.no_peer_id.unwrap_or(false),
            numwant: self.numwant.flatten(),
            key: self.key,
            tracker_id: self.tracker_id,
            ip: self.ip,
            ipv4,
            ipv6,
        })
    }
}

fn invalid(name: &'static str, reason: impl ToString) -> HttpTrackerError {
    HttpTrackerError::InvalidParameter {
        name,
        reason: reason.to_string(),
    }
}

/// BEP 7: an address alone (port = `default_port`) or an endpoint (RFC 2732 brackets for IPv6).
fn parse_endpoint(
    name: &'static str,
    value: &[u8],
    default_port: u16,
) -> Result<SocketAddr, HttpTrackerError> {
    let text = std::str::from_utf8(value).map_err(|_| invalid(name, "not UTF-8"))?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    text.parse::<SocketAddr>()
        .map(|addr| match addr {
            SocketAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
            v4 => v4,
        })
        .map_err(|_| invalid(name, format!("{text:?} is not an address or endpoint")))
}
