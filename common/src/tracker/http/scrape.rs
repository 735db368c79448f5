//! Scrape requests and replies (BEP 48).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::response::{decode_reply, get_bytes, get_u32};
use super::{HttpTrackerError, append_query, parse_query, percent_encode_bytes};
use crate::InfoHash;
use crate::bencode::{Dict, Value};

/// Most entries [`ScrapeResponse::from_bytes`] keeps from the `files` dictionary; the rest
/// are dropped.
pub const MAX_SCRAPE_FILES: usize = 10_000;

/// Bytes of one `info_hash=` parameter with a fully escaped hash and its `&`.
const SCRAPE_PARAM_LEN: usize = "info_hash=".len() + 60 + 1;
/// Room for other parameters (a passkey, say) in a scrape query.
const SCRAPE_QUERY_SLACK: usize = 1024;

/// The longest scrape query accepted for a cap of `max_hashes` info hashes.
pub fn max_scrape_query_len(max_hashes: usize) -> usize {
    max_hashes
        .saturating_mul(SCRAPE_PARAM_LEN)
        .saturating_add(SCRAPE_QUERY_SLACK)
}

/// A scrape: one `info_hash` parameter per torrent (BEP 48); none asks for every torrent,
/// which trackers may refuse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// The torrents, in request order.
    pub info_hashes: Vec<InfoHash>,
}

impl ScrapeRequest {
    /// The query string (no leading `?`).
    pub fn to_query(&self) -> String {
        self.info_hashes
            .iter()
            .map(|hash| format!("info_hash={}", percent_encode_bytes(hash.as_bytes())))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The full scrape URL: `base` (which may carry its own query) plus this request's query.
    pub fn scrape_url(&self, base: &str) -> String {
        append_query(base, &self.to_query())
    }

    /// Parses a raw scrape query. Refuses more than `max_hashes` info hashes and queries
    /// longer than [`max_scrape_query_len`]`(max_hashes)`; other parameters are ignored,
    /// repeated hashes are kept (the tracker answers each once, since its reply is keyed).
    pub fn from_query(raw_query: &[u8], max_hashes: usize) -> Result<Self, HttpTrackerError> {
        let max = max_scrape_query_len(max_hashes);
        if raw_query.len() > max {
            return Err(HttpTrackerError::QueryTooLong {
                len: raw_query.len(),
                max,
            });
        }
        let mut info_hashes = Vec::new();
        for param in parse_query(raw_query)? {
            if param.key == b"info_hash" {
                if info_hashes.len() == max_hashes {
                    return Err(HttpTrackerError::TooManyInfoHashes {
                        count: max_hashes + 1,
                        max: max_hashes,
                    });
                }
                let hash = InfoHash::from_slice(&param.value).map_err(|e| {
                    HttpTrackerError::InvalidParameter {
                        name: "info_hash",
                        reason: e.to_string(),
                    }
                })?;
                info_hashes.push(hash);
            }
        }
        Ok(ScrapeRequest { info_hashes })
    }
}

/// One torrent's counters in a scrape reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads ever reported.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
    /// The torrent's name, which some trackers add.
    pub name: Option<String>,
}

/// A successful scrape reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeReply {
    /// Counters per torrent (sorted by info hash, as bencode sorts the raw keys).
    pub files: BTreeMap<InfoHash, ScrapeStats>,
    /// `flags` -> `min_request_interval`: seconds to wait before scraping again.
    pub min_request_interval: Option<u32>,
}

/// A scrape reply: counters, or the tracker's refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScrapeResponse {
    /// The scrape was answered.
    Success(ScrapeReply),
    /// `failure reason`.
    Failure(String),
}

impl ScrapeResponse {
    /// Encodes the reply (keys sorted).
    pub fn to_bytes(&self) -> Vec<u8> {
        let reply = match self {
            ScrapeResponse::Failure(reason) => {
                return Value::Dict(
                    Dict::new().with(b"failure reason", Value::Bytes(reason.as_bytes())),
                )
                .to_bytes();
            }
            ScrapeResponse::Success(reply) => reply,
        };
        let mut files = Dict::new();
        for (hash, stats) in &reply.files {
            let mut entry = Dict::new()
                .with(b"complete", Value::Int(stats.complete.into()))
                .with(b"downloaded", Value::Int(stats.downloaded.into()))
                .with(b"incomplete", Value::Int(stats.incomplete.into()));
            if let Some(name) = &stats.name {
                entry.insert(b"name", Value::Bytes(name.as_bytes()));
            }
            files.insert(hash.as_bytes(), Value::Dict(entry));
        }
        let mut dict = Dict::new().with(b"files", Value::Dict(files));
        if let Some(interval) = reply.min_request_interval {
            dict.insert(
                b"flags",
                Value::Dict(Dict::new().with(b"min_request_interval", Value::Int(interval.into()))),
            );
        }
        Value::Dict(dict).to_bytes()
    }

    /// Decodes a reply. Entries whose key is not 20 bytes or whose value is not a dictionary
    /// are skipped; a missing counter reads as 0, a counter of the wrong type is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HttpTrackerError> {
        decode_reply(bytes, ScrapeResponse::Failure, Self::success)
    }

    fn success(dict: &Dict<'_>) -> Result<Self, HttpTrackerError> {
        let mut files = BTreeMap::new();
        match dict.get(b"files") {
            None => {}
            Some(Value::Dict(entries)) => {
                for (key, entry) in entries.iter().take(MAX_SCRAPE_FILES) {
                    let (Ok(hash), Some(entry)) = (InfoHash::from_slice(key), entry.as_dict())
                    else {
                        continue;
                    };
                    let stats = ScrapeStats {
                        complete: get_u32(entry, "complete")?.unwrap_or(0),
                        downloaded: get_u32(entry, "downloaded")?.unwrap_or(0),
                        incomplete: get_u32(entry, "incomplete")?.unwrap_or(0),
                        name: get_bytes(entry, "name")?
                            .map(|n| String::from_utf8_lossy(n).into_owned()),
                    };
                    files.insert(hash, stats);
                }
            }
            Some(other) => {
                return Err(HttpTrackerError::InvalidKey {
                    key: "files",
                    reason: format!("a {}, not a dictionary", other.kind()),
                });
            }
        }
        let min_request_interval = match dict.get_dict(b"flags") {
            Some(flags) => get_u32(flags, "min_request_interval")?,
            None => None,
        };
        Ok(ScrapeResponse::Success(ScrapeReply {
            files,
            min_request_interval,
        }))
    }
}
