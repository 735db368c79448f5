//! Announcing to trackers (BEP 3, 12, 15, 23): when to announce, and the HTTP and UDP clients.
//!
//! - [`schedule`]: the pure schedule: BEP 12 tiers, intervals, failure backoff, events.
//! - [`http`]: announce and scrape over HTTP and HTTPS (BEP 3, 7, 23, 48) through reqwest.
//! - [`udp`]: announce and scrape over UDP (BEP 15, BEP 41 URL data).
//! - [`task`]: the per-torrent shell: [`spawn`] an [`Announcer`] that keeps announcing and
//!   hands the peers it learns to the torrent.
//!
//! [`Request`], [`Reply`] and [`ScrapeCounts`] are the same for both transports; errors are
//! one [`AnnounceError`], whose text is what the progress display shows.

#[cfg(test)]
mod fake;
pub mod http;
pub mod schedule;
pub mod task;
pub mod udp;

use std::net::SocketAddr;

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::HttpTrackerError;
use rill_common::tracker::udp::UdpError;
use rill_common::{InfoHash, PeerId};
use thiserror::Error;

pub use schedule::{Schedule, ScheduleConfig, tiers};
pub use task::{AnnounceConfig, Announcer, Progress, TrackerStatus, spawn};

/// One announce, whatever the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we listen on.
    pub port: u16,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// The event, `None` for a regular announce.
    pub event: Option<AnnounceEvent>,
    /// Peers wanted; `None` for the tracker's default.
    pub numwant: Option<u32>,
    /// Our `key` (BEP 7; the UDP `key` field), the same for the whole session.
    pub key: u32,
    /// The `tracker id` the tracker gave before (HTTP only).
    pub tracker_id: Option<Vec<u8>>,
}

/// A successful announce reply, whatever the transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// Seconds before the next regular announce.
    pub interval: u32,
    /// `min interval` (HTTP only).
    pub min_interval: Option<u32>,
    /// Seeders in the swarm, when the tracker says.
    pub seeders: Option<u32>,
    /// Leechers in the swarm, when the tracker says.
    pub leechers: Option<u32>,
    /// `tracker id` to send back (HTTP only).
    pub tracker_id: Option<Vec<u8>>,
    /// `warning message`, for the display (HTTP only).
    pub warning: Option<String>,
    /// The peers, IPv4 and IPv6.
    pub peers: Vec<SocketAddr>,
}

/// One torrent's counters from a scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Seeders.
    pub seeders: u32,
    /// Leechers.
    pub leechers: u32,
    /// Completed downloads ever reported.
    pub completed: u32,
}

/// Why an announce or scrape failed.
#[derive(Debug, Error)]
pub enum AnnounceError {
    /// The tracker refused: HTTP `failure reason` or a UDP error packet, with its text.
    #[error("tracker refused: {0}")]
    Refused(String),
    /// The URL is not one we can announce to.
    #[error("bad tracker URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's scheme is neither http, https nor udp.
    #[error("unsupported tracker scheme in {0:?}")]
    UnsupportedScheme(String),
    /// The tracker cannot be scraped (no BEP 48 scrape URL).
    #[error("tracker {0:?} has no scrape URL")]
    NoScrape(String),
    /// Connecting, sending or receiving failed.
    #[error("network error: {0}")]
    Network(String),
    /// No answer in time (after every retransmission, for UDP).
    #[error("no answer from the tracker in time")]
    Timeout,
    /// An HTTP status other than 200, without a bencoded failure reason.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The reply is longer than the cap.
    #[error("reply longer than the {max}-byte limit")]
    TooLarge {
        /// The cap.
        max: usize,
    },
    /// The HTTP reply is not a valid tracker reply.
    #[error("invalid reply: {0}")]
    InvalidHttp(#[from] HttpTrackerError),
    /// The UDP reply is not a valid BEP 15 packet, or not the one asked for.
    #[error("invalid reply: {0}")]
    InvalidUdp(#[from] UdpError),
    /// A UDP reply of another kind than the request's.
    #[error("unexpected reply to a {0} request")]
    Unexpected(&'static str),
}

/// The transports a tracker URL can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://` or `https://`.
    Http,
    /// `udp://`.
    Udp,
}

impl Scheme {
    /// The transport of `url`, case-insensitively; `None` for any other scheme.
    pub fn of(url: &str) -> Option<Self> {
        let scheme = url.split_once("://")?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "http" | "https" => Some(Scheme::Http),
            "udp" => Some(Scheme::Udp),
            _ => None,
        }
    }
}

/// `scheme://host:port` of a URL, without the path and query (which may hold a passkey).
pub fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(invalid URL)".to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or(rest);
    // Drop any user info too.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}
