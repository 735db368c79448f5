//! HTTP tracker announce and scrape: query strings and bencoded replies (BEP 3, 7, 23, 48).
//!
//! - [`AnnounceRequest`]: `to_query` for the client, `from_query` (raw, byte-wise
//!   percent-encoded query) for the tracker.
//! - [`AnnounceResponse`]: success or failure; `to_bytes` writes the compact (BEP 23, BEP 7)
//!   or dictionary model, `from_bytes` reads either.
//! - [`ScrapeRequest`], [`ScrapeResponse`] (BEP 48), [`scrape_url`].
//!
//! Invariants and choices:
//! - Query decoding is byte-wise and strict: every `%` must start two hex digits, `+` is a
//!   literal `+` (BitTorrent clients escape every binary byte, so `+` is never a space here).
//! - Queries longer than [`MAX_ANNOUNCE_QUERY_LEN`] (announce) or the scrape bound are
//!   refused before anything is decoded.
//! - Unknown parameters are ignored; when a known parameter repeats, the first occurrence
//!   wins, except `info_hash` and `peer_id` in an announce, which must appear once (which
//!   torrent or peer is meant would be ambiguous).
//! - Replies are decoded with caps: at most [`MAX_RESPONSE_PEERS`] peers are kept (the rest
//!   are dropped) and at most [`MAX_SCRAPE_FILES`] scrape entries.
//!
//! The tracker's side of an announce:
//! ```
//! use rill_common::tracker::http::{AnnounceReply, AnnounceRequest, AnnounceResponse};
//!
//! let raw = b"info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A\
//!             &peer_id=-RL0100-abcdefghijkl&port=6881&compact=1";
//! let request = AnnounceRequest::from_query(raw)?;
//! let reply = AnnounceResponse::Success(AnnounceReply { interval: 1800, ..Default::default() });
//! let body = reply.to_bytes(request.compact, request.no_peer_id);
//! assert_eq!(body, b"d8:intervali1800e5:peers0:e");
//! # Ok::<(), rill_common::tracker::http::HttpTrackerError>(())
//! ```
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

mod announce;
mod response;
mod scrape;
#[cfg(test)]
mod tests;

pub use announce::{AnnounceRequest, MAX_ANNOUNCE_QUERY_LEN};
pub use response::{AnnounceReply, AnnounceResponse, MAX_RESPONSE_PEERS, Peer};
pub use scrape::{
    MAX_SCRAPE_FILES, ScrapeReply, ScrapeRequest, ScrapeResponse, ScrapeStats, max_scrape_query_len,
};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use thiserror::Error;

use crate::bencode::DecodeError;

/// Everything but RFC 3986 unreserved characters is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes every byte except RFC 3986 unreserved characters, as trackers expect for
/// binary `info_hash` and `peer_id`.
pub fn percent_encode_bytes(bytes: &[u8]) -> String {
    percent_encode(bytes, ESCAPED).to_string()
}

/// Why an HTTP tracker query or reply is invalid.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum HttpTrackerError {
    /// The query string is longer than the cap.
    #[error("query of {len} bytes is longer than the {max}-byte limit")]
    QueryTooLong {
        /// The query's length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A `%` not followed by two hex digits.
    #[error("bad percent-escape at byte {0} of the query")]
    BadEscape(usize),
    /// A required parameter is absent.
    #[error("missing parameter `{0}`")]
    MissingParameter(&'static str),
    /// A parameter that must appear once appears again.
    #[error("parameter `{0}` is repeated")]
    RepeatedParameter(&'static str),
    /// A parameter whose value is invalid.
    #[error("invalid `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// More info hashes than the caller allows in one scrape.
    #[error("{count} info hashes in one scrape, more than the limit of {max}")]
    TooManyInfoHashes {
        /// How many the request has (counted up to `max + 1`).
        count: usize,
        /// The cap.
        max: usize,
    },
    /// The reply is not valid bencode.
    #[error("reply is not bencode: {0}")]
    Bencode(#[from] DecodeError),
    /// The reply is not a dictionary.
    #[error("reply is a {0}, not a dictionary")]
    NotADict(&'static str),
    /// A required key of the reply is absent.
    #[error("reply lacks `{0}`")]
    MissingKey(&'static str),
    /// A key of the reply has the wrong type or an out-of-range value.
    #[error("invalid `{key}` in reply: {reason}")]
    InvalidKey {
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Appends `query` to an announce or scrape URL that may already have a query (a passkey,
/// say): `?` if it has none, `&` if it has one, nothing if it already ends in `?` or `&`.
pub fn append_query(base: &str, query: &str) -> String {
    let separator = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!("{base}{separator}{query}")
}

/// The scrape URL of an announce URL by the BEP 48 convention: the text after the last `/` of
/// the path must start with `announce`, which becomes `scrape` (`/announce.php?pk=1` ->
/// `/scrape.php?pk=1`). `None` when the tracker cannot be scraped that way.
pub fn scrape_url(announce_url: &str) -> Option<String> {
    let path_end = announce_url.find('?').unwrap_or(announce_url.len());
    let (path, query) = announce_url.split_at(path_end);
    let slash = path.rfind('/')?;
    let (head, last) = path.split_at(slash + 1);
    let rest = last.strip_prefix("announce")?;
    Some(format!("{head}scrape{rest}{query}"))
}

/// One decoded `key=value` pair of a query.
pub(crate) struct Param {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

/// Splits a raw query on `&` and `=` and percent-decodes keys and values byte-wise. A leading
/// `?` is skipped, empty segments are ignored, a segment without `=` has an empty value.
pub(crate) fn parse_query(raw: &[u8]) -> Result<Vec<Param>, HttpTrackerError> {
    let raw = raw.strip_prefix(b"?").unwrap_or(raw);
    let mut params = Vec::new();
    let mut offset = 0;
    for segment in raw.split(|&b| b == b'&') {
        if !segment.is_empty() {
            let eq = segment.iter().position(|&b| b == b'=');
            let (key, value) = match eq {
                Some(eq) => (
                    segment.get(..eq).unwrap_or_default(),
                    segment.get(eq + 1..).unwrap_or_default(),
                ),
                None => (segment, &[][..]),
            };
            let value_offset = offset + eq.map_or(segment.len(), |eq| eq + 1);
            params.push(Param {
                key: unescape(key, offset)?,
                value: unescape(value, value_offset)?,
            });
        }
        offset += segment.len() + 1;
    }
    Ok(params)
}

/// Strict byte-wise percent-decoding; `offset` places errors in the whole query.
fn unescape(text: &[u8], offset: usize) -> Result<Vec<u8>, HttpTrackerError> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        if byte == b'%' {
            let hex = |j: usize| text.get(j).and_then(|&d| (d as char).to_digit(16));
            match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                _ => return Err(HttpTrackerError::BadEscape(offset + i)),
            }
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    Ok(out)
}

/// Parses a decimal parameter value.
pub(crate) fn parse_number<T: std::str::FromStr>(
    name: &'static str,
    value: &[u8],
) -> Result<T, HttpTrackerError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| HttpTrackerError::InvalidParameter {
            name,
            reason: format!(
                "{:?} is not a number in range",
                String::from_utf8_lossy(value)
            ),
        })
}

/// A parameter value as UTF-8 text.
pub(crate) fn parse_text(name: &'static str, value: &[u8]) -> Result<String, HttpTrackerError> {
    String::from_utf8(value.to_vec()).map_err(|_| HttpTrackerError::InvalidParameter {
        name,
        reason: "not UTF-8".to_owned(),
    })
}
