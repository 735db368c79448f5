//! The resume file: what a restarted download may trust without hashing its data again.
//!
//! Pure: encoding and decoding only; the shell reads and writes the file and stats the data
//! files. The format is a bencoded dictionary (BEP 3 bencoding, canonical: keys sorted):
//!
//! ```text
//! version     i1e                       refused if not RESUME_VERSION
//! info-hash   20 bytes                  refused if not the torrent's
//! pieces      piece count               refused if not the torrent's
//! have        bitfield, BEP 3 bit order verified pieces only
//! files       list of [size, mtime]     per file, unix seconds, as the shell saw them at save
//! priorities  one byte per file         0 = not wanted
//! uploaded    bytes, total              downloaded  bytes, total
//! ```
//!
//! Invariants:
//! - `have` only ever holds pieces whose SHA-1 matched. **The shell's duty**: save the
//!   resume file only after the data of every piece in `have` has been flushed (fsync), and
//!   replace it atomically (write a temporary file, then rename). Then a `kill -9` at any
//!   moment, even in the middle of a write, cannot leave a piece marked verified that is
//!   not on disk: a piece being written is not in `have` yet, and a saved `have` describes
//!   data that was already durable.
//! - [`trusted_pieces`] drops every piece touching a file whose size or mtime differs from
//!   the saved one (changed by someone else since the save). A change that keeps both the
//!   size and the mtime second is not detectable this way; callers who cannot accept that
//!   re-check everything.
//! - [`ResumeData::from_bytes`] never panics; it refuses another torrent's file, a wrong
//!   bitfield length, an unknown version and anything malformed.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use rill_common::bencode::{self, DecodeError, Dict, Value};
use rill_common::bitfield::{Bitfield, BitfieldError};
use rill_common::info_hash::InfoHash;
use rill_common::metainfo::MAX_FILES;
use rill_common::pieces::PieceIndex;
use thiserror::Error;

use crate::storage::layout::Layout;

/// The format version written by [`ResumeData::to_bytes`]; others are refused.
pub const RESUME_VERSION: i64 = 1;

/// A file's size and modification time (unix seconds) as the shell saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the unix epoch (may be negative).
    pub mtime: i64,
}

/// The state a download saves so it can continue without re-checking its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeData {
    /// The torrent this belongs to.
    pub info_hash: InfoHash,
    /// The pieces verified (SHA-1 matched) and flushed before the save.
    pub have: Bitfield,
    /// Each file's size and mtime at the save, in torrent order.
    pub files: Vec<FileStamp>,
    /// Each file's priority (0 = not wanted), in torrent order.
    pub file_priorities: Vec<u8>,
    /// Bytes uploaded over the torrent's life.
    pub uploaded: u64,
    /// Bytes downloaded over the torrent's life.
    pub downloaded: u64,
}

/// Why a resume file cannot be used (the caller then checks the data from scratch).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ResumeError {
    /// Not valid bencode.
    #[error("resume file is not valid bencode: {0}")]
    Bencode(#[from] DecodeError),
    /// Valid bencode, but not a dictionary.
    #[error("resume file is not a dictionary")]
    NotADictionary,
    /// A field is missing or has the wrong type.
    #[error("resume file lacks a valid `{0}` field")]
    Missing(&'static str),
    /// Written by a format version this build does not know.
    #[error("resume file has unknown version {0}")]
    UnknownVersion(i64),
    /// Belongs to another torrent.
    #[error("resume file is for torrent {found}, not {expected}")]
    OtherTorrent {
        /// The torrent being resumed.
        expected: InfoHash,
        /// The info-hash in the file.
        found: InfoHash,
    },
    /// Saved for a different number of pieces.
    #[error("resume file is for {found} pieces, the torrent has {expected}")]
    PieceCount {
        /// The torrent's piece count.
        expected: u32,
        /// The count in the file.
        found: i64,
    },
    /// The have-bitfield does not fit the piece count.
    #[error("resume file has a bad bitfield: {0}")]
    Bitfield(#[from] BitfieldError),
    /// A value out of range or inconsistent with another.
    #[error("resume file is invalid: {0}")]
    Invalid(&'static str),
}

/// Bencode integers are signed; sizes and totals beyond `i64::MAX` are saturated.
fn int(value: u64) -> Value<'static> {
    Value::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

fn unsigned(dict: &Dict<'_>, key: &'static str) -> Result<u64, ResumeError> {
    let value = dict
        .get_int(key.as_bytes())
        .ok_or(ResumeError::Missing(key))?;
    u64::try_from(value).map_err(|_| ResumeError::Invalid("negative count"))
}

impl ResumeData {
    /// Canonical bencoding of the resume data (the file's whole content).
    pub fn to_bytes(&self) -> Vec<u8> {
        let files = self
            .files
            .iter()
            .map(|stamp| Value::List(vec![int(stamp.size), Value::Int(stamp.mtime)]))
            .collect();
        Value::Dict(
            Dict::new()
                .with(b"version", Value::Int(RESUME_VERSION))
                .with(b"info-hash", Value::Bytes(self.info_hash.as_bytes()))
                .with(b"pieces", Value::Int(i64::from(self.have.piece_count())))
                .with(b"have", Value::Bytes(self.have.as_bytes()))
                .with(b"files", Value::List(files))
                .with(b"priorities", Value::Bytes(&self.file_priorities))
                .with(b"uploaded", int(self.uploaded))
                .with(b"downloaded", int(self.downloaded)),
        )
        .to_bytes()
    }

    /// Reads a resume file for the torrent `expected` of `piece_count` pieces.
    pub fn from_bytes(
        bytes: &[u8],
        expected: &InfoHash,
        piece_count: u32,
    ) -> Result<ResumeData, ResumeError> {
        let value = bencode::decode(bytes)?;
        let dict = value.as_dict().ok_or(ResumeError::NotADictionary)?;
        let version = dict
            .get_int(b"version")
            .ok_or(ResumeError::Missing("version"))?;
        if version != RESUME_VERSION {
            return Err(ResumeError::UnknownVersion(version));
        }
        let hash = dict
            .get_bytes(b"info-hash")
            .and_then(|raw| InfoHash::from_slice(raw).ok())
            .ok_or(ResumeError::Missing("info-hash"))?;
        if hash != *expected {
            return Err(ResumeError::OtherTorrent {
                expected: *expected,
                found: hash,
            });
        }
        let pieces = dict
            .get_int(b"pieces")
            .ok_or(ResumeError::Missing("pieces"))?;
        if pieces != i64::from(piece_count) {
            return Err(ResumeError::PieceCount {
                expected: piece_count,
                found: pieces,
            });
        }
        let have = dict
            .get_bytes(b"have")
            .ok_or(ResumeError::Missing("have"))?;
        let have = Bitfield::from_bytes(have, piece_count)?;
        let files = dict
            .get_list(b"files")
            .ok_or(ResumeError::Missing("files"))?;
        if files.len() > MAX_FILES {
            return Err(ResumeError::Invalid("too many files"));
        }
        let files = files
            .iter()
            .map(file_stamp)
            .collect::<Result<Vec<_>, _>>()?;
        let file_priorities = dict
            .get_bytes(b"priorities")
            .ok_or(ResumeError::Missing("priorities"))?
            .to_vec();
        if file_priorities.len() != files.len() {
            return Err(ResumeError::Invalid("not one priority per file"));
        }
        Ok(ResumeData {
            info_hash: hash,
            have,
            files,
            file_priorities,
            uploaded: unsigned(dict, "uploaded")?,
            downloaded: unsigned(dict, "downloaded")?,
        })
    }
}

/// One `[size, mtime]` entry of the `files` list.
fn file_stamp(value: &Value<'_>) -> Result<FileStamp, ResumeError> {
    match value.as_list() {
        Some([Value::Int(size), Value::Int(mtime)]) => Ok(FileStamp {
            size: u64::try_from(*size).map_err(|_| ResumeError::Invalid("negative file size"))?,
            mtime: *mtime,
        }),
        _ => Err(ResumeError::Missing("files")),
    }
}

/// The saved pieces that can be trusted without hashing them again, given each file's
/// current size and mtime (in torrent order; pad files' entries are ignored, as pad files
/// are never on disk). A piece touching any file whose size or mtime changed since the
/// save is dropped; if the file count or piece count does not match the torrent, nothing
/// is trusted.
pub fn trusted_pieces(data: &ResumeData, current_files: &[FileStamp], layout: &Layout) -> Bitfield {
    let piece_count = layout.piece_count();
    if data.have.piece_count() != piece_count
        || data.files.len() != layout.file_count()
        || current_files.len() != layout.file_count()
    {
        return Bitfield::new(piece_count);
    }
    let mut trusted = data.have.clone();
    let changed = data
        .files
        .iter()
        .zip(current_files)
        .enumerate()
        .filter(|(file, (saved, now))| saved != now && !layout.is_pad(*file));
    for (file, _) in changed {
        if let Some(pieces) = layout.pieces_of_file(file) {
            for piece in pieces.start().get()..=pieces.end().get() {
                trusted.set(PieceIndex::new(piece), false);
            }
        }
    }
    trusted
}

/// The saved pieces [`trusted_pieces`] drops: verified once, but in a file changed since,
/// so they must be hashed again before they count.
pub fn pieces_to_recheck(
    data: &ResumeData,
    current_files: &[FileStamp],
    layout: &Layout,
) -> Bitfield {
    let trusted = trusted_pieces(data, current_files, layout);
    let mut recheck = Bitfield::new(layout.piece_count());
    if data.have.piece_count() == layout.piece_count() {
        for piece in data.have.iter().filter(|piece| !trusted.get(*piece)) {
            recheck.set(piece, true);
        }
    }
    recheck
}

#[cfg(test)]
#[path = "resume/tests.rs"]
mod tests;
