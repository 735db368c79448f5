//! `.torrent` files (BEP 3, 12, 19, 27, 47, 52): parsing, and creating new ones ([`create`]).
//!
//! Invariants of a parsed [`Metainfo`]:
//! - `info_hash` is the SHA-1 of the exact `info` bytes of the input ([`Metainfo::raw_info`]),
//!   never of a re-encoding; `info_hash_v2` (hybrids only) is their SHA-256 (BEP 52);
//! - every file path is sanitised ([`path`]): nothing can name a place outside the download
//!   folder; see [`Info`] for the rest.
//!
//! Choices, where the BEPs leave room:
//! - Unknown keys are ignored. Wrong types in the `info` dictionary are errors (they decide
//!   what is downloaded, and `private` decides whether peers are sought outside the tracker);
//!   wrong types in the descriptive top-level fields (`announce`, `announce-list`, `url-list`,
//!   `comment`, `created by`, `creation date`) make that field absent, as in libtorrent.
//! - Names that are not UTF-8 are decoded lossily (invalid bytes become U+FFFD) so old
//!   torrents still load; the `name.utf-8`/`path.utf-8` variants win when present and valid.
//!   The info-hash is unaffected since it is taken over the raw bytes.
//! - Any piece length from 1 byte to [`MAX_PIECE_LENGTH`] is accepted: BEP 3 only says powers
//!   of two are usual, libtorrent and Transmission load other lengths, and old tools made them.
//! - A torrent whose files hold no bytes at all is refused ([`MetainfoError::EmptyTorrent`]).
//! - v2-only torrents are refused; hybrids are used through their v1 part, and their
//!   `file tree` is not cross-checked against the v1 file list.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

pub mod create;
mod info;
pub mod path;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::InfoHash;
use crate::bencode::{self, DecodeError, Dict, Value};

pub use info::{FileAttr, FileEntry, Info, MAX_FILES, MAX_PIECE_LENGTH};

/// Which metainfo format a torrent uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaVersion {
    /// BEP 3 only.
    V1,
    /// BEP 52 hybrid: v1 and v2 metadata side by side; used through its v1 part.
    Hybrid,
}

/// Why bytes are not a usable torrent.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum MetainfoError {
    /// Not valid bencode (truncated, nested too deep, a string longer than the input...).
    #[error("invalid bencode: {0}")]
    Bencode(#[from] DecodeError),
    /// The input is not a dictionary (the whole torrent, or the bytes given to
    /// [`Info::from_bytes`]); an `info` value of another kind is [`MetainfoError::WrongType`].
    #[error("a torrent must be a bencoded dictionary")]
    NotADictionary,
    /// A required key is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A key holds the wrong kind of value.
    #[error("field `{field}` has the wrong type: expected {expected}")]
    WrongType {
        /// The key.
        field: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// `piece length` is 0.
    #[error("piece length is zero")]
    ZeroPieceLength,
    /// `piece length` is above [`MAX_PIECE_LENGTH`].
    #[error("piece length {0} is larger than the 512 MiB limit")]
    PieceLengthTooLarge(u64),
    /// `pieces` is not a whole number of SHA-1 hashes.
    #[error("pieces is {0} bytes, not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    /// The number of hashes does not match the total length.
    #[error("the files need {expected} pieces but {actual} piece hashes are given")]
    PieceCountMismatch {
        /// `ceil(total length / piece length)`.
        expected: u64,
        /// Hashes in `pieces`.
        actual: u64,
    },
    /// A length (file or piece) below zero.
    #[error("negative length {0}")]
    NegativeLength(i64),
    /// A file name or path that could escape the download folder or is otherwise unusable.
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The path as given (components joined by `/`).
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A BEP 52 torrent without v1 metadata.
    #[error("v2-only torrents (BEP 52) are not supported yet")]
    V2Only,
    /// A `meta version` other than 1 or 2.
    #[error("unsupported meta version {0}")]
    UnsupportedMetaVersion(i64),
    /// An empty `files` list.
    #[error("the torrent lists no files")]
    NoFiles,
    /// The files hold zero bytes in total.
    #[error("the torrent's files are all empty")]
    EmptyTorrent,
    /// More files than [`MAX_FILES`].
    #[error("{0} files is more than the limit of 1048576")]
    TooManyFiles(usize),
    /// File lengths add up past `u64::MAX`.
    #[error("the total length overflows 64 bits")]
    TotalLengthOverflow,
    /// Two files with the same path.
    #[error("two files share the path {0:?}")]
    DuplicatePath(String),
    /// A file whose path is also a folder of another file.
    #[error("file {file:?} is also the folder of {other:?}")]
    PathConflict {
        /// The file used as a folder.
        file: String,
        /// The file inside it.
        other: String,
    },
}

/// A parsed `.torrent` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo {
    /// The `info` dictionary.
    pub info: Info,
    /// SHA-1 of the raw `info` bytes.
    pub info_hash: InfoHash,
    /// BEP 52 hybrids: SHA-256 of the raw `info` bytes.
    pub info_hash_v2: Option<[u8; 32]>,
    /// The tracker URL (`announce`).
    pub announce: Option<String>,
    /// BEP 12 tracker tiers (`announce-list`), empty tiers and non-string URLs dropped.
    pub announce_list: Vec<Vec<String>>,
    /// BEP 19 web seeds (`url-list`), a single string or a list.
    pub url_list: Vec<String>,
    /// Free text (`comment`).
    pub comment: Option<String>,
    /// The creating program (`created by`).
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch (`creation date`).
    pub creation_date: Option<i64>,
    raw_info: Vec<u8>,
    version: MetaVersion,
}

impl Metainfo {
    /// Parses a `.torrent` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        let value = bencode::decode(bytes)?;
        let root = value.as_dict().ok_or(MetainfoError::NotADictionary)?;
        let info_dict = root
            .get(b"info")
            .ok_or(MetainfoError::MissingField("info"))?
            .as_dict()
            .ok_or(MetainfoError::WrongType {
                field: "info",
                expected: "dictionary",
            })?;
        let raw_info = info_dict.raw();
        let (info, version) = info::parse(info_dict)?;
        let info_hash_v2 =
            (version == MetaVersion::Hybrid).then(|| Sha256::digest(raw_info).into());
        Ok(Metainfo {
            info,
            info_hash: InfoHash::of_info(raw_info),
            info_hash_v2,
            announce: root.get(b"announce").and_then(url),
            announce_list: announce_list(root),
            url_list: url_list(root),
            comment: text(root, b"comment"),
            created_by: text(root, b"created by"),
            creation_date: root.get_int(b"creation date"),
            raw_info: raw_info.to_vec(),
            version,
        })
    }

    /// The exact bytes of the `info` dictionary (for BEP 9 ut_metadata).
    pub fn raw_info(&self) -> &[u8] {
        &self.raw_info
    }

    /// The tracker tiers: `announce-list` if it has any URL (BEP 12), else `[[announce]]`.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            return self.announce_list.clone();
        }
        self.announce.iter().map(|url| vec![url.clone()]).collect()
    }

    /// Plain v1 or hybrid.
    pub fn version(&self) -> MetaVersion {
        self.version
    }
}

/// A descriptive string field: lossily decoded, absent if empty or of the wrong type.
fn text(dict: &Dict<'_>, key: &[u8]) -> Option<String> {
    dict.get_bytes(key)
        .filter(|bytes| !bytes.is_empty())
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// A URL: UTF-8, not empty, surrounding white space trimmed.
fn url(value: &Value<'_>) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
}

fn announce_list(root: &Dict<'_>) -> Vec<Vec<String>> {
    root.get_list(b"announce-list")
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_list)
        .map(|tier| tier.iter().filter_map(url).collect::<Vec<_>>())
        .filter(|tier| !tier.is_empty())
        .collect()
}

fn url_list(root: &Dict<'_>) -> Vec<String> {
    match root.get(b"url-list") {
        Some(Value::List(items)) => items.iter().filter_map(url).collect(),
        Some(single) => url(single).into_iter().collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
