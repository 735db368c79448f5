//! Announce and scrape over UDP (BEP 15), with the announce URL's path and query sent as
//! BEP 41 URL data (so passkey URLs like `udp://host:port/announce/<passkey>` work).
//!
//! Invariants:
//! - One socket per tracker, connected to it: datagrams from anyone else never arrive.
//! - A reply counts only if it carries the transaction id of the request in flight; other
//!   datagrams are ignored (a garbled one with our transaction id is an error).
//! - A request is sent again after `base_timeout * 2^n` without an answer, `n` from 0 to
//!   [`UdpConfig::max_retransmits`] (BEP 15 says 15 s and up to 8); then it fails with
//!   [`AnnounceError::Timeout`].
//! - A connection id is reused for [`UdpConfig::connection_ttl`] (BEP 15: one minute) and
//!   dropped after an error packet, so the next request connects again.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rill_common::InfoHash;
use rill_common::tracker::udp::{
    self as codec, Family, Request as Packet, Response as PacketReply,
};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{AnnounceError, Reply, Request, ScrapeCounts};

/// Largest datagram read; anything longer is cut (and then fails to decode).
const MAX_DATAGRAM: usize = 65_536;

/// Retransmission and connection-id timing of the UDP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// The wait for the first answer; doubled for each retransmission (BEP 15: 15 s).
    pub base_timeout: Duration,
    /// Most retransmissions of one request (`n` runs from 0 to this).
    pub max_retransmits: u32,
    /// How long a connection id is reused (BEP 15: one minute).
    pub connection_ttl: Duration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            base_timeout: Duration::from_secs(15),
            // 15 + 30 + 60 s: BEP 15 allows 8, but a dead tracker should not hold up the next
            // tier for over an hour.
            max_retransmits: 2,
            connection_ttl: Duration::from_secs(60),
        }
    }
}

/// The parts of a `udp://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, sent as BEP 41 URL data (empty when the URL has neither).
    pub url_data: Vec<u8>,
}

impl UdpUrl {
    /// Parses `udp://host:port[/path][?query]`; the host may be `[IPv6]`.
    pub fn parse(url: &str) -> Result<Self, AnnounceError> {
        let bad = |reason: &str| AnnounceError::BadUrl {
            url: super::display_url(url),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if !scheme.eq_ignore_ascii_case("udp") {
            return Err(AnnounceError::UnsupportedScheme(super::display_url(url)));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, url_data) = rest.split_at(end);
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed `[`"))?;
            let port = after.strip_prefix(':').ok_or_else(|| bad("no port"))?;
            (host, port)
        } else {
            authority.rsplit_once(':').ok_or_else(|| bad("no port"))?
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(UdpUrl {
            host: host.to_owned(),
            port,
            url_data: url_data.as_bytes().to_vec(),
        })
    }
}

/// A BEP 15 client for one tracker.
#[derive(Debug)]
pub struct UdpTracker {
    socket: UdpSocket,
    family: Family,
    url_data: Vec<u8>,
    config: UdpConfig,
    /// The connection id and when it was received.
    connection: Option<(u64, Instant)>,
}

impl UdpTracker {
    /// Resolves the tracker of `url` (its first address) and opens a socket to it.
    pub async fn open(url: &str, config: UdpConfig) -> Result<Self, AnnounceError> {
        let parsed = UdpUrl::parse(url)?;
        let addr = tokio::net::lookup_host((parsed.host.as_str(), parsed.port))
            .await
            .map_err(|e| AnnounceError::Network(format!("resolving {}: {e}", parsed.host)))?
            .next()
            .ok_or_else(|| AnnounceError::Network(format!("{} has no address", parsed.host)))?;
        Self::open_addr(addr, parsed.url_data, config).await
    }

    /// Opens a socket to the tracker at `addr`, sending `url_data` with announces.
    pub async fn open_addr(
        addr: SocketAddr,
        url_data: Vec<u8>,
        config: UdpConfig,
    ) -> Result<Self, AnnounceError> {
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let io = |e: std::io::Error| AnnounceError::Network(e.to_string());
        let socket = UdpSocket::bind(local).await.map_err(io)?;
        socket.connect(addr).await.map_err(io)?;
        Ok(UdpTracker {
            socket,
            family: Family::of(&addr),
            url_data,
            config,
            connection: None,
        })
    }

    /// Announces `request` (its `tracker_id` is not part of BEP 15 and is ignored).
    pub async fn announce(&mut self, request: &Request) -> Result<Reply, AnnounceError> {
        for attempt in 0..=self.config.max_retransmits {
            let connection_id = self.connection_id().await?;
            let transaction_id = rand::random();
            let packet = Packet::Announce(codec::AnnounceRequest {
                connection_id,
                transaction_id,
                info_hash: request.info_hash,
                peer_id: request.peer_id,
                downloaded: request.downloaded,
                left: request.left,
                uploaded: request.uploaded,
                event: request.event,
                ip: Ipv4Addr::UNSPECIFIED,
                key: request.key,
                num_want: request
                    .numwant
                    .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
                port: request.port,
                url_data: self.url_data.clone(),
            });
            match self.round_trip(&packet, transaction_id, attempt).await? {
                None => {}
                Some(PacketReply::Announce {
                    interval,
                    leechers,
                    seeders,
                    peers,
                    ..
                }) => {
                    return Ok(Reply {
                        interval,
                        seeders: Some(seeders),
                        leechers: Some(leechers),
                        peers,
                        ..Reply::default()
                    });
                }
                Some(other) => return Err(self.refused(other, "announce")),
            }
        }
        Err(AnnounceError::Timeout)
    }

    /// Scrapes one torrent.
    pub async fn scrape(&mut self, info_hash: InfoHash) -> Result<ScrapeCounts, AnnounceError> {
        for attempt in 0..=self.config.max_retransmits {
            let connection_id = self.connection_id().await?;
            let transaction_id = rand::random();
            let packet = Packet::Scrape {
                connection_id,
                transaction_id,
                info_hashes: vec![info_hash],
            };
            match self.round_trip(&packet, transaction_id, attempt).await? {
                None => {}
                Some(PacketReply::Scrape { stats, .. }) => {
                    let stats = stats.first().ok_or(AnnounceError::Unexpected("scrape"))?;
                    return Ok(ScrapeCounts {
                        seeders: stats.seeders,
                        leechers: stats.leechers,
                        completed: stats.completed,
                    });
                }
                Some(other) => return Err(self.refused(other, "scrape")),
            }
        }
        Err(AnnounceError::Timeout)
    }

    /// The error for a reply of the wrong kind; an error packet also drops the connection id
    /// (trackers answer an expired one with an error).
    fn refused(&mut self, reply: PacketReply, request: &'static str) -> AnnounceError {
        match reply {
            PacketReply::Error { message, .. } => {
                self.connection = None;
                AnnounceError::Refused(message)
            }
            _ => AnnounceError::Unexpected(request),
        }
    }

    /// A live connection id, connecting (with retransmissions) when there is none.
    async fn connection_id(&mut self) -> Result<u64, AnnounceError> {
        if let Some((id, at)) = self.connection
            && at.elapsed() < self.config.connection_ttl
        {
            return Ok(id);
        }
        self.connection = None;
        for attempt in 0..=self.config.max_retransmits {
            let transaction_id = rand::random();
            let packet = Packet::Connect { transaction_id };
            match self.round_trip(&packet, transaction_id, attempt).await? {
                None => {}
                Some(PacketReply::Connect { connection_id, .. }) => {
                    self.connection = Some((connection_id, Instant::now()));
                    return Ok(connection_id);
                }
                Some(other) => return Err(self.refused(other, "connect")),
            }
        }
        Err(AnnounceError::Timeout)
    }

    /// Sends `packet` and waits `base_timeout * 2^attempt` for the reply with
    /// `transaction_id`: `None` if none came.
    async fn round_trip(
        &self,
        packet: &Packet,
        transaction_id: u32,
        attempt: u32,
    ) -> Result<Option<PacketReply>, AnnounceError> {
        let io = |e: std::io::Error| AnnounceError::Network(e.to_string());
        self.socket.send(&packet.encode()).await.map_err(io)?;
        let wait = self
            .config
            .base_timeout
            .saturating_mul(1 << attempt.min(16));
        let deadline = Instant::now() + wait;
        let mut buf = vec![0; MAX_DATAGRAM];
        loop {
            let len = match tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await {
                Err(_) => return Ok(None),
                Ok(result) => result.map_err(io)?,
            };
            let datagram = buf.get(..len).unwrap_or_default();
            let ours = datagram
                .get(4..8)
                .is_some_and(|id| id == transaction_id.to_be_bytes());
            if !ours {
                tracing::debug!(len, "ignoring a UDP datagram that is not our reply");
                continue;
            }
            return PacketReply::decode(datagram, self.family)
                .map(Some)
                .map_err(AnnounceError::from);
        }
    }
}

#[cfg(test)]
#[path = "udp_tests.rs"]
mod tests;
