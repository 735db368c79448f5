//! Magnet links (BEP 9, BEP 53): `magnet:?xt=urn:btih:<info-hash>&dn=…&tr=…`.
//!
//! Parameters read: `xt` (`urn:btih:` with 40 hex or 32 base32 digits; `urn:btmh:` v2
//! multihashes are recognised, and a link with only a v2 hash is refused), `dn` (display
//! name; `+` means a space), `tr` (trackers, also numbered `tr.1`, `tr.2`, …), `ws` (web
//! seeds), `x.pe` (peers: `host:port`, `ipv4:port` or `[ipv6]:port`) and `so` (BEP 53 file
//! selection: zero-based file indices and inclusive ranges, `0,2,4-6`, which the client
//! applies once the metadata is known: see [`Magnet::selected_files`]). Other parameters
//! are ignored.
//!
//! BEP 53 says nothing of malformed lists. A malformed `so` (an item that is not a decimal
//! index or `a-b` with `a <= b`, an empty list, or more than [`MAX_SELECTION_ITEMS`] items
//! over all `so` parameters) refuses the whole link with [`MagnetError::BadSelection`] or
//! [`MagnetError::TooManySelections`] rather than being ignored: ignoring it would quietly
//! download every file of what may be a very large torrent when the link asked for one.
//! Indices past the torrent's last file are not an error (the link is written before the
//! metadata is known): they select nothing.
//!
//! Invariants of a parsed [`Magnet`]: the text was at most [`MAX_LEN`] bytes; values are
//! percent-decoded (invalid UTF-8 replaced); trackers and web seeds are non-empty and keep
//! their order; every `so` range has `start <= end` and there are at most
//! [`MAX_SELECTION_ITEMS`] `so` items. Formatting percent-encodes every value so that
//! `Magnet::parse(&magnet.to_string())` gives the same magnet back.
//!
//! ```
//! use rill_common::magnet::Magnet;
//!
//! let magnet = Magnet::parse(
//!     "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Big+Buck+Bunny\
//!      &tr=udp%3A%2F%2Ftracker.example%3A6969",
//! )?;
//! assert_eq!(magnet.display_name.as_deref(), Some("Big Buck Bunny"));
//! assert_eq!(magnet.trackers, ["udp://tracker.example:6969"]);
//! # Ok::<(), rill_common::magnet::MagnetError>(())
//! ```
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use thiserror::Error;

use crate::InfoHash;

/// Longest magnet link parsed; real ones with dozens of trackers stay under a few KiB.
pub const MAX_LEN: usize = 65_536;

/// Most `so` items (indices and ranges, over all `so` parameters) in one link.
pub const MAX_SELECTION_ITEMS: usize = 1024;

/// Escaped in values: all but unreserved characters and the `:` and `/` of URLs, which
/// cannot be mistaken for separators inside a query.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'/');

/// A parsed magnet link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info-hash (`xt=urn:btih:`).
    pub info_hash: InfoHash,
    /// `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// `tr`, `tr.N`: tracker URLs, in link order.
    pub trackers: Vec<String>,
    /// `x.pe`: peers to contact directly.
    pub peers: Vec<PeerAddress>,
    /// `ws`: web seed URLs (BEP 19).
    pub web_seeds: Vec<String>,
    /// `so`: only these files are wanted (BEP 53); empty means all.
    pub select_only: Vec<FileSelection>,
}

/// A peer address in `x.pe`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddress {
    /// An IP literal and port (`1.2.3.4:6881`, `[::1]:6881`).
    Ip(SocketAddr),
    /// A host name and port, to be resolved by the caller.
    Host {
        /// The host name.
        host: String,
        /// The TCP port.
        port: u16,
    },
}

/// One item of a BEP 53 `so` list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FileSelection {
    /// One file index.
    Index(usize),
    /// The file indices from start to end, both included.
    Range(RangeInclusive<usize>),
}

/// Why a text is not a usable magnet link.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum MagnetError {
    /// It does not start with `magnet:?`.
    #[error("not a magnet link: it does not start with `magnet:?`")]
    NotMagnet,
    /// More than [`MAX_LEN`] bytes.
    #[error("magnet link of {0} bytes is longer than {MAX_LEN}")]
    TooLong(usize),
    /// No `xt=urn:btih:` (nor `urn:btmh:`) parameter.
    #[error("magnet link has no xt=urn:btih: parameter")]
    NoInfoHash,
    /// A btih value that is neither hex nor base32 of 20 bytes.
    #[error("info-hash `{0}` in magnet link is not 40 hex or 32 base32 characters")]
    BadInfoHash(String),
    /// Two different btih values.
    #[error("magnet link has two different info-hashes: {0} and {1}")]
    ConflictingInfoHashes(InfoHash, InfoHash),
    /// A btmh value that is not a SHA-256 multihash (`1220` then 64 hex digits).
    #[error("v2 info-hash `{0}` in magnet link is not `1220` followed by 64 hex characters")]
    BadV2InfoHash(String),
    /// Only a v2 (btmh) info-hash.
    #[error("v2-only magnet links are not supported yet")]
    V2Only,
    /// An `x.pe` value that is not `host:port`.
    #[error("peer `{0}` in magnet link is not host:port, ipv4:port or [ipv6]:port")]
    BadPeer(String),
    /// An `so` value that is not a list of indices and ranges.
    #[error("file selection `{0}` in magnet link is not like `0,2,4-6`")]
    BadSelection(String),
    /// More than [`MAX_SELECTION_ITEMS`] `so` items.
    #[error("file selection in magnet link has {0} items, more than {MAX_SELECTION_ITEMS}")]
    TooManySelections(usize),
}

impl Magnet {
    /// A magnet link with only an info-hash.
    pub fn new(info_hash: InfoHash) -> Self {
        Magnet {
            info_hash,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            web_seeds: Vec::new(),
            select_only: Vec::new(),
        }
    }

    /// Parses a magnet link (surrounding whitespace is ignored).
    pub fn parse(text: &str) -> Result<Magnet, MagnetError> {
        let text = text.trim();
        if text.len() > MAX_LEN {
            return Err(MagnetError::TooLong(text.len()));
        }
        let query = text
            .get(..8)
            .filter(|prefix| prefix.eq_ignore_ascii_case("magnet:?"))
            .and_then(|_| text.get(8..))
            .ok_or(MagnetError::NotMagnet)?;
        let mut builder = Builder::default();
        for pair in query.split('&') {
            // A parameter without `=` carries nothing.
            if let Some((key, value)) = pair.split_once('=') {
                builder.add(&key.to_ascii_lowercase(), value)?;
            }
        }
        builder.finish()
    }

    /// Whether file `index` is wanted: true for every file when `so` is absent.
    pub fn selects(&self, index: usize) -> bool {
        self.select_only.is_empty() || self.select_only.iter().any(|s| s.contains(index))
    }

    /// BEP 53: the indices below `file_count` that `so` selects, ascending and without
    /// repeats; `None` when the link has no `so` (every file is wanted). `Some` of an empty
    /// list when `so` names no file of the torrent. Takes at most `file_count` ×
    /// [`MAX_SELECTION_ITEMS`] steps, whatever the ranges.
    pub fn selected_files(&self, file_count: usize) -> Option<Vec<usize>> {
        if self.select_only.is_empty() {
            return None;
        }
        Some((0..file_count).filter(|&i| self.selects(i)).collect())
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Magnet::parse(text)
    }
}

impl fmt::Display for Magnet {
    /// `magnet:?xt=urn:btih:<hex>&dn=…&tr=…&ws=…&x.pe=…&so=…`, values percent-encoded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(name) = &self.display_name {
            write!(f, "&dn={}", utf8_percent_encode(name, VALUE))?;
        }
        for tracker in &self.trackers {
            write!(f, "&tr={}", utf8_percent_encode(tracker, VALUE))?;
        }
        for seed in &self.web_seeds {
            write!(f, "&ws={}", utf8_percent_encode(seed, VALUE))?;
        }
        for peer in &self.peers {
            write!(f, "&x.pe={}", utf8_percent_encode(&peer.to_string(), VALUE))?;
        }
        let mut items = self.select_only.iter();
        if let Some(first) = items.next() {
            write!(f, "&so={first}")?;
            items.try_for_each(|item| write!(f, ",{item}"))?;
        }
        Ok(())
    }
}

/// What has been read so far while parsing.
#[derive(Default)]
struct Builder {
    info_hash: Option<InfoHash>,
    has_v2: bool,
    display_name: Option<String>,
    trackers: Vec<String>,
    peers: Vec<PeerAddress>,
    web_seeds: Vec<String>,
    select_only: Vec<FileSelection>,
}

impl Builder {
    fn add(&mut self, key: &str, raw: &str) -> Result<(), MagnetError> {
        // Numbered forms (`tr.1`, `xt.2`) mean the same as the plain key.
        let key = match key.rsplit_once('.') {
            Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => key,
        };
        match key {
            "xt" => self.exact_topic(&decode(raw))?,
            "dn" if self.display_name.is_none() => {
                // Form encoding: `+` is a space, `%2B` a plus.
                self.display_name = Some(decode(&raw.replace('+', " ")));
            }
            "tr" => push_non_empty(&mut self.trackers, decode(raw)),
            "ws" => push_non_empty(&mut self.web_seeds, decode(raw)),
            "x.pe" => {
                let text = decode(raw);
                self.peers.push(text.parse()?);
            }
            "so" => {
                let text = decode(raw);
                // Counted before parsing, so a huge list is refused without being collected.
                let count = self.select_only.len() + text.split(',').count();
                if count > MAX_SELECTION_ITEMS {
                    return Err(MagnetError::TooManySelections(count));
                }
                let items = parse_selection(&text).ok_or(MagnetError::BadSelection(text))?;
                self.select_only.extend(items);
            }
            _ => {}
        }
        Ok(())
    }

    fn exact_topic(&mut self, value: &str) -> Result<(), MagnetError> {
        if let Some(hash) = strip_prefix_ignore_case(value, "urn:btih:") {
            let hash: InfoHash = hash
                .parse()
                .map_err(|_| MagnetError::BadInfoHash(hash.to_owned()))?;
            match self.info_hash {
                Some(first) if first != hash => {
                    return Err(MagnetError::ConflictingInfoHashes(first, hash));
                }
                _ => self.info_hash = Some(hash),
            }
        } else if let Some(multihash) = strip_prefix_ignore_case(value, "urn:btmh:") {
            // BEP 52 magnets: a SHA-256 multihash (code 0x12, length 0x20) in hex.
            let valid = multihash.len() == 68
                && multihash.starts_with("1220")
                && multihash.bytes().all(|b| b.is_ascii_hexdigit());
            if !valid {
                return Err(MagnetError::BadV2InfoHash(multihash.to_owned()));
            }
            self.has_v2 = true;
        }
        // Other URNs (ed2k, sha1, …) are not BitTorrent's.
        Ok(())
    }

    fn finish(self) -> Result<Magnet, MagnetError> {
        let info_hash = match (self.info_hash, self.has_v2) {
            (Some(hash), _) => hash,
            (None, true) => return Err(MagnetError::V2Only),
            (None, false) => return Err(MagnetError::NoInfoHash),
        };
        Ok(Magnet {
            info_hash,
            display_name: self.display_name,
            trackers: self.trackers,
            peers: self.peers,
            web_seeds: self.web_seeds,
            select_only: self.select_only,
        })
    }
}

fn decode(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

fn push_non_empty(list: &mut Vec<String>, value: String) {
    if !value.is_empty() {
        list.push(value);
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .and_then(|_| text.get(prefix.len()..))
}

/// `0,2,4-6` → indices and ranges; `None` if any item is malformed or a range is reversed.
fn parse_selection(text: &str) -> Option<Vec<FileSelection>> {
    text.split(',')
        .map(|item| match item.split_once('-') {
            None => parse_index(item).map(FileSelection::Index),
            Some((start, end)) => {
                let (start, end) = (parse_index(start)?, parse_index(end)?);
                (start <= end).then_some(FileSelection::Range(start..=end))
            }
        })
        .collect()
}

/// A file index: ASCII digits only (`usize::from_str` would also take a leading `+`).
fn parse_index(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl FileSelection {
    /// Whether `index` is selected by this item.
    pub fn contains(&self, index: usize) -> bool {
        match self {
            FileSelection::Index(i) => *i == index,
            FileSelection::Range(range) => range.contains(&index),
        }
    }
}

impl fmt::Display for FileSelection {
    /// `3` or `4-6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileSelection::Index(i) => write!(f, "{i}"),
            FileSelection::Range(range) => write!(f, "{}-{}", range.start(), range.end()),
        }
    }
}

impl FromStr for PeerAddress {
    type Err = MagnetError;

    /// `1.2.3.4:6881`, `[::1]:6881` or `host.example:6881`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(PeerAddress::Ip(addr));
        }
        let bad = || MagnetError::BadPeer(text.to_owned());
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        // `u16::from_str` takes a leading `+`; a URL port is digits only (RFC 3986), and
        // `1.2.3.4:+1` must not become a host named `1.2.3.4` that formats as an IP literal.
        let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        match (host_ok && port_ok, port.parse::<u16>()) {
            (true, Ok(port)) => Ok(PeerAddress::Host {
                host: host.to_owned(),
                port,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for PeerAddress {
    /// `1.2.3.4:6881`, `[::1]:6881` or `host:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddress::Ip(addr) => write!(f, "{addr}"),
            PeerAddress::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests;
