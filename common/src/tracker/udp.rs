//! UDP tracker packets (BEP 15) with the URL-data option of BEP 41.
//!
//! All integers are big-endian. Both directions encode and decode, for client and tracker.
//!
//! Invariants and choices:
//! - Decoders never panic and never allocate more than the packet's own size: truncated
//!   packets are [`UdpError::Truncated`]. Packets longer than a fixed-size message are
//!   accepted and the extra bytes ignored (BEP 15: "do not assume packets to be of a certain
//!   size"), except where the tail is a list (peers, hashes, counters): a ragged tail is an
//!   error.
//! - Announce replies carry 6-byte peers to an IPv4 request and 18-byte peers to an IPv6 one;
//!   which one is not in the packet, so [`Response::encode`] and [`Response::decode`] take
//!   the [`Family`] of the request's transport.
//! - A scrape carries 1 to [`MAX_SCRAPE_HASHES`] info hashes (BEP 15's "about 74", what fits
//!   in one 1500-byte datagram); an announce reply at most [`max_peers`] peers, the rest are
//!   not written.
//! - BEP 41 options follow the 98-byte announce: type 0 ends the list, type 1 is one byte of
//!   padding, type 2 is URL data (a length byte, then up to 255 bytes; chunks concatenate),
//!   any other type has a length byte and is skipped. A list that stops in the middle of an
//!   option makes the whole announce [`UdpError::BadOptions`]: the tracker may answer it with
//!   an error packet, using [`request_transaction_id`].
//!
//! A connect exchange:
//! ```
//! use rill_common::tracker::udp::{Family, Request, Response};
//!
//! let packet = Request::Connect { transaction_id: 7 }.encode();
//! assert_eq!(Request::decode(&packet), Ok(Request::Connect { transaction_id: 7 }));
//! let reply = Response::Connect { transaction_id: 7, connection_id: 42 }.encode(Family::V4);
//! assert_eq!(Response::decode(&reply, Family::V4)?.transaction_id(), 7);
//! # Ok::<(), rill_common::tracker::udp::UdpError>(())
//! ```
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};

use thiserror::Error;

use crate::compact::{self, V4_LEN, V6_LEN};
use crate::tracker::AnnounceEvent;
use crate::{InfoHash, PeerId};

/// The magic `protocol_id` of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Most info hashes in one scrape request (16 + 74 * 20 = 1496 bytes).
pub const MAX_SCRAPE_HASHES: usize = 74;
/// The datagram size [`Response::encode`] keeps announce replies within.
pub const MAX_PACKET_LEN: usize = 1496;
/// Bytes of an announce request before the BEP 41 options.
pub const ANNOUNCE_LEN: usize = 98;
/// Bytes of an announce reply before the peers.
const ANNOUNCE_REPLY_HEADER: usize = 20;
/// Most bytes in one BEP 41 URL-data option.
const MAX_URL_CHUNK: usize = 255;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_URL_DATA: u8 = 2;

/// The address family of the transport an announce came over, which sets the peer size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// 6-byte peers.
    V4,
    /// 18-byte peers.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        }
    }
}

/// Most peers an announce reply of this family holds within [`MAX_PACKET_LEN`].
pub const fn max_peers(family: Family) -> usize {
    let entry = match family {
        Family::V4 => V4_LEN,
        Family::V6 => V6_LEN,
    };
    (MAX_PACKET_LEN - ANNOUNCE_REPLY_HEADER) / entry
}

/// Why a packet is not a valid BEP 15 message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum UdpError {
    /// The packet ends before the message does.
    #[error("packet of {got} bytes is shorter than the {needed} bytes needed")]
    Truncated {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes the packet has.
        got: usize,
    },
    /// A connect request without the magic protocol id.
    #[error("connect request with protocol id {0:#x}, not 0x41727101980")]
    BadProtocolId(u64),
    /// An action this side of the protocol does not know.
    #[error("unknown action {0}")]
    UnknownAction(u32),
    /// An announce event outside 0..=4.
    #[error("unknown announce event {0}")]
    BadEvent(u32),
    /// A BEP 41 option list that stops in the middle of an option.
    #[error("malformed BEP 41 options: {0}")]
    BadOptions(&'static str),
    /// A list (peers, info hashes, scrape counters) whose length is not a whole number of entries.
    #[error("list of {len} bytes is not a multiple of {entry}")]
    Ragged {
        /// The list's length.
        len: usize,
        /// The size of one entry.
        entry: usize,
    },
    /// A scrape request with no info hash.
    #[error("scrape request without info hashes")]
    NoInfoHashes,
    /// A scrape request with more info hashes than [`MAX_SCRAPE_HASHES`].
    #[error("scrape request with {0} info hashes, more than {MAX_SCRAPE_HASHES}")]
    TooManyInfoHashes(usize),
}

/// A UDP announce (BEP 15 action 1), with its BEP 41 URL data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// From the connect reply.
    pub connection_id: u64,
    /// Echoed by the reply.
    pub transaction_id: u32,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Bytes missing.
    pub left: u64,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// The event (`None` is code 0).
    pub event: Option<AnnounceEvent>,
    /// The peer's address; 0.0.0.0 means "the packet's source address".
    pub ip: Ipv4Addr,
    /// The client's key.
    pub key: u32,
    /// Peers wanted; -1 asks for the tracker's default.
    pub num_want: i32,
    /// The port the peer listens on.
    pub port: u16,
    /// BEP 41 URL data: the announce URL's path and query (`/announce?passkey=...`), empty
    /// when the announce carries no options.
    pub url_data: Vec<u8>,
}

/// Counters of one torrent in a scrape reply, in request order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScrapeStats {
    /// Seeders.
    pub seeders: u32,
    /// Completed downloads.
    pub completed: u32,
    /// Leechers.
    pub leechers: u32,
}

/// A packet from client to tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Action 0: ask for a connection id.
    Connect {
        /// Echoed by the reply.
        transaction_id: u32,
    },
    /// Action 1: announce.
    Announce(AnnounceRequest),
    /// Action 2: scrape 1 to [`MAX_SCRAPE_HASHES`] torrents.
    Scrape {
        /// From the connect reply.
        connection_id: u64,
        /// Echoed by the reply.
        transaction_id: u32,
        /// The torrents.
        info_hashes: Vec<InfoHash>,
    },
}

/// A packet from tracker to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Action 0: the connection id to use for the next minutes.
    Connect {
        /// The request's.
        transaction_id: u32,
        /// To put in announces and scrapes.
        connection_id: u64,
    },
    /// Action 1: peers.
    Announce {
        /// The request's.
        transaction_id: u32,
        /// Seconds before the next announce.
        interval: u32,
        /// Leechers in the swarm.
        leechers: u32,
        /// Seeders in the swarm.
        seeders: u32,
        /// Peers, all of the request's [`Family`].
        peers: Vec<SocketAddr>,
    },
    /// Action 2: counters, one per requested info hash, in request order.
    Scrape {
        /// The request's.
        transaction_id: u32,
        /// The counters.
        stats: Vec<ScrapeStats>,
    },
    /// Action 3: the request failed.
    Error {
        /// The request's.
        transaction_id: u32,
        /// Why, as text (decoded lossily from UTF-8).
        message: String,
    },
}

/// The transaction id of a request packet (bytes 12..16), for answering an invalid one with
/// an error packet; `None` if the packet is too short to have one.
pub fn request_transaction_id(packet: &[u8]) -> Option<u32> {
    let mut reader = Reader::new(packet);
    reader.skip(12).ok()?;
    reader.u32().ok()
}

impl Request {
    /// Encodes the packet. A scrape with more than [`MAX_SCRAPE_HASHES`] hashes is written
    /// as is, and trackers refuse it: split long scrapes before.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_LEN);
        match self {
            Request::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Request::Announce(a) => {
                out.extend_from_slice(&a.connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&a.transaction_id.to_be_bytes());
                out.extend_from_slice(a.info_hash.as_bytes());
                out.extend_from_slice(a.peer_id.as_bytes());
                out.extend_from_slice(&a.downloaded.to_be_bytes());
                out.extend_from_slice(&a.left.to_be_bytes());
                out.extend_from_slice(&a.uploaded.to_be_bytes());
                out.extend_from_slice(&AnnounceEvent::to_udp(a.event).to_be_bytes());
                out.extend_from_slice(&a.ip.octets());
                out.extend_from_slice(&a.key.to_be_bytes());
                out.extend_from_slice(&a.num_want.to_be_bytes());
                out.extend_from_slice(&a.port.to_be_bytes());
                encode_url_data(&a.url_data, &mut out);
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for hash in info_hashes {
                    out.extend_from_slice(hash.as_bytes());
                }
            }
        }
        out
    }

    /// Decodes a packet received by a tracker.
    pub fn decode(packet: &[u8]) -> Result<Self, UdpError> {
        let mut r = Reader::new(packet);
        let connection_id = r.u64()?;
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT => {
                if connection_id != PROTOCOL_ID {
                    return Err(UdpError::BadProtocolId(connection_id));
                }
                Ok(Request::Connect { transaction_id })
            }
            ACTION_ANNOUNCE => {
                if packet.len() < ANNOUNCE_LEN {
                    return Err(UdpError::Truncated {
                        needed: ANNOUNCE_LEN,
                        got: packet.len(),
                    });
                }
                let info_hash = InfoHash::from_bytes(r.array()?);
                let peer_id = PeerId::from_bytes(r.array()?);
                let downloaded = r.u64()?;
                let left = r.u64()?;
                let uploaded = r.u64()?;
                let code = r.u32()?;
                let event = AnnounceEvent::from_udp(code).ok_or(UdpError::BadEvent(code))?;
                let ip = Ipv4Addr::from(r.array::<4>()?);
                let key = r.u32()?;
                let num_want = i32::from_be_bytes(r.array()?);
                let port = u16::from_be_bytes(r.array()?);
                let url_data = decode_url_data(r.rest())?;
                Ok(Request::Announce(AnnounceRequest {
                    connection_id,
                    transaction_id,
                    info_hash,
                    peer_id,
                    downloaded,
                    left,
                    uploaded,
                    event,
                    ip,
                    key,
                    num_want,
                    port,
                    url_data,
                }))
            }
            ACTION_SCRAPE => {
                let rest = r.rest();
                let hashes = rest.chunks_exact(20);
                if !hashes.remainder().is_empty() {
                    return Err(UdpError::Ragged {
                        len: rest.len(),
                        entry: 20,
                    });
                }
                match hashes.len() {
                    0 => return Err(UdpError::NoInfoHashes),
                    n if n > MAX_SCRAPE_HASHES => return Err(UdpError::TooManyInfoHashes(n)),
                    _ => {}
                }
                let info_hashes = hashes
                    .filter_map(|h| InfoHash::from_slice(h).ok())
                    .collect();
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            other => Err(UdpError::UnknownAction(other)),
        }
    }
}

impl Response {
    /// The transaction id the response answers.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// Encodes the packet. An announce reply carries only the peers of `family` (the
    /// request's transport), at most [`max_peers`]`(family)` of them; `family` matters for
    /// nothing else.
    pub fn encode(&self, family: Family) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_REPLY_HEADER);
        let mut header = |action: u32, transaction_id: u32| {
            out.extend_from_slice(&action.to_be_bytes());
            out.extend_from_slice(&transaction_id.to_be_bytes());
        };
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                header(ACTION_CONNECT, *transaction_id);
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                header(ACTION_ANNOUNCE, *transaction_id);
                for n in [interval, leechers, seeders] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
                peers
                    .iter()
                    .filter(|peer| Family::of(peer) == family)
                    .take(max_peers(family))
                    .for_each(|peer| compact::encode_peer(*peer, &mut out));
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                header(ACTION_SCRAPE, *transaction_id);
                for s in stats {
                    for n in [s.seeders, s.completed, s.leechers] {
                        out.extend_from_slice(&n.to_be_bytes());
                    }
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                header(ACTION_ERROR, *transaction_id);
                out.extend_from_slice(message.as_bytes());
            }
        }
        out
    }

    /// Decodes a packet received by a client; `family` is that of the socket it came on.
    pub fn decode(packet: &[u8], family: Family) -> Result<Self, UdpError> {
        let mut r = Reader::new(packet);
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT => Ok(Response::Connect {
                transaction_id,
                connection_id: r.u64()?,
            }),
            ACTION_ANNOUNCE => {
                let interval = r.u32()?;
                let leechers = r.u32()?;
                let seeders = r.u32()?;
                let rest = r.rest();
                let peers = match family {
                    Family::V4 => compact::decode_peers_v4(rest),
                    Family::V6 => compact::decode_peers_v6(rest),
                }
                .map_err(|e| UdpError::Ragged {
                    len: e.len,
                    entry: e.entry,
                })?;
                Ok(Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            ACTION_SCRAPE => {
                let rest = r.rest();
                let entries = rest.chunks_exact(12);
                if !entries.remainder().is_empty() {
                    return Err(UdpError::Ragged {
                        len: rest.len(),
                        entry: 12,
                    });
                }
                let stats = entries
                    .map(|entry| {
                        let mut e = Reader::new(entry);
                        Ok(ScrapeStats {
                            seeders: e.u32()?,
                            completed: e.u32()?,
                            leechers: e.u32()?,
                        })
                    })
                    .collect::<Result<_, UdpError>>()?;
                Ok(Response::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ACTION_ERROR => Ok(Response::Error {
                transaction_id,
                message: String::from_utf8_lossy(r.rest()).into_owned(),
            }),
            other => Err(UdpError::UnknownAction(other)),
        }
    }
}

/// Appends `url_data` as BEP 41 options: URL-data chunks of at most 255 bytes, then
/// end-of-options. Nothing at all for empty data.
pub fn encode_url_data(url_data: &[u8], out: &mut Vec<u8>) {
    if url_data.is_empty() {
        return;
    }
    for chunk in url_data.chunks(MAX_URL_CHUNK) {
        out.push(OPTION_URL_DATA);
        // A chunk is at most 255 bytes.
        out.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(chunk);
    }
    out.push(OPTION_END);
}

/// Reads BEP 41 options (the bytes after the 98-byte announce) and returns their URL data,
/// concatenated. Stops at end-of-options or the end of the bytes; skips NOPs and unknown
/// options; an option cut short is an error.
pub fn decode_url_data(options: &[u8]) -> Result<Vec<u8>, UdpError> {
    let mut url_data = Vec::new();
    let mut rest = options;
    while let Some((&kind, tail)) = rest.split_first() {
        match kind {
            OPTION_END => break,
            OPTION_NOP => rest = tail,
            _ => {
                let (&len, tail) = tail
                    .split_first()
                    .ok_or(UdpError::BadOptions("option without its length byte"))?;
                let body = tail
                    .get(..usize::from(len))
                    .ok_or(UdpError::BadOptions("option shorter than its length"))?;
                if kind == OPTION_URL_DATA {
                    url_data.extend_from_slice(body);
                }
                rest = tail.get(usize::from(len)..).unwrap_or_default();
            }
        }
    }
    Ok(url_data)
}

/// A bounds-checked big-endian cursor.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], UdpError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(UdpError::Truncated {
                needed: self.pos + N,
                got: self.buf.len(),
            })?;
        self.pos += N;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), UdpError> {
        if self.buf.len() < self.pos + n {
            return Err(UdpError::Truncated {
                needed: self.pos + n,
                got: self.buf.len(),
            });
        }
        self.pos += n;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, UdpError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, UdpError> {
        self.array().map(u64::from_be_bytes)
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
}
