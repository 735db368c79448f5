//! Creating `.torrent` files from a file or a folder (BEP 3, 12, 19, 27, 47).
//!
//! This is a file tool, so unlike the rest of the crate it reads the file system (`std::fs`).
//!
//! Rules, chosen for determinism and safety:
//! - A folder is walked recursively and its files are sorted by path (component by
//!   component, byte order), so the same folder always gives the same torrent.
//! - Hidden files are included, as mktorrent and libtorrent do. Empty files are included.
//! - Symbolic links inside the folder are **skipped** (neither followed, which could loop or
//!   leave the folder, nor stored as BEP 47 links); so are sockets, FIFOs and devices.
//!   The path given itself may be a symlink and is followed.
//! - Every name must be UTF-8 and pass the parser's path rules, so what is created always
//!   parses back; otherwise [`CreateError::BadName`].
//! - Pieces are hashed in parallel on rayon's pool, each piece read across file boundaries.
//!   After each piece the progress callback gets that piece's length and the total to hash;
//!   calls come from several threads, in any order, so callers add up the lengths.
//! - With `pad_files`, BEP 47 pad files (`.pad/<size>`, attribute `p`) are inserted so that
//!   every non-empty file after the first starts on a piece boundary, as libtorrent does.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha1::{Digest, Sha1};
use thiserror::Error;

use super::path::{self, MAX_PATH_DEPTH};
use super::{MAX_FILES, MAX_PIECE_LENGTH};
use crate::bencode::{Dict, Value};

/// Smallest piece length [`create`] uses or accepts: one block, 16 KiB.
pub const MIN_PIECE_LENGTH: u32 = 16 * 1024;

/// Largest piece length [`auto_piece_length`] picks: 16 MiB.
pub const MAX_AUTO_PIECE_LENGTH: u32 = 16 * 1024 * 1024;

/// [`auto_piece_length`] keeps the piece count at or below this (a 40 KiB hash list, the
/// target libtorrent 1.x used).
pub const TARGET_PIECE_COUNT: u64 = 2048;

/// What to put in a new torrent besides the files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Bytes per piece: a power of two from 16 KiB to 512 MiB; `None` = [`auto_piece_length`].
    pub piece_length: Option<u32>,
    /// BEP 27 private flag.
    pub private: bool,
    /// Tracker tiers (BEP 12); the first URL becomes `announce`.
    pub trackers: Vec<Vec<String>>,
    /// BEP 19 web seeds (`url-list`).
    pub web_seeds: Vec<String>,
    /// `comment`.
    pub comment: Option<String>,
    /// `created by`; `None` = `Rill <version>`.
    pub created_by: Option<String>,
    /// `creation date` in seconds since the Unix epoch; `None` leaves it out.
    pub creation_date: Option<i64>,
    /// Insert BEP 47 pad files so files start on piece boundaries (multi-file only).
    pub pad_files: bool,
    /// The torrent's name; `None` = the file or folder name.
    pub name: Option<String>,
}

/// Why a torrent could not be created.
#[derive(Debug, Error)]
pub enum CreateError {
    /// Reading a file or folder failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The folder holds no regular files.
    #[error("no files to share in {0}")]
    NoFiles(PathBuf),
    /// The files hold no bytes.
    #[error("every file in {0} is empty")]
    Empty(PathBuf),
    /// More files than the parser accepts.
    #[error("{0} files is more than a torrent may hold")]
    TooManyFiles(usize),
    /// The content is larger than a torrent can describe.
    #[error("the files add up to more than 2^63 bytes")]
    TooLarge,
    /// A requested piece length that is not a power of two in range.
    #[error("piece length {0} is not a power of two from 16 KiB to 512 MiB")]
    BadPieceLength(u32),
    /// A name that is not UTF-8 or that the parser would refuse.
    #[error("cannot put {path} in a torrent: {reason}")]
    BadName {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong with its name.
        reason: &'static str,
    },
    /// A file's size changed between listing and hashing.
    #[error("{0} changed size while it was being hashed")]
    FileChanged(PathBuf),
}

/// The piece length used when none is given: the smallest power of two from 16 KiB to
/// 16 MiB that keeps the piece count at or below [`TARGET_PIECE_COUNT`] (so 1025 to 2048
/// pieces between 32 MiB and 32 GiB of content; fewer below, more above).
pub fn auto_piece_length(total: u64) -> u32 {
    let mut length = MIN_PIECE_LENGTH;
    while length < MAX_AUTO_PIECE_LENGTH && total.div_ceil(u64::from(length)) > TARGET_PIECE_COUNT {
        length *= 2;
    }
    length
}

/// One stretch of the torrent's data: a file on disk or a pad file.
struct Entry {
    /// Components below the torrent's root (`[name]` for a single file).
    path: Vec<String>,
    length: u64,
    offset: u64,
    /// Where to read it from; `None` for pad files (zeros).
    source: Option<PathBuf>,
}

/// Creates a torrent of the file or folder at `path`; returns its bencoded bytes.
/// `progress(bytes, total)` is called after each piece with its length and the total to hash.
pub fn create(
    path: &Path,
    options: &CreateOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<u8>, CreateError> {
    let io_error = |source| CreateError::Io {
        path: path.to_owned(),
        source,
    };
    let metadata = fs::metadata(path).map_err(io_error)?;
    let name = match &options.name {
        Some(name) => name.clone(),
        None => root_name(path)?,
    };
    if let Some(reason) = path::component_problem(&name) {
        return Err(CreateError::BadName {
            path: path.to_owned(),
            reason,
        });
    }
    let multi_file = metadata.is_dir();
    let mut files = if multi_file {
        walk(path)?
    } else {
        vec![(vec![name.clone()], path.to_owned(), metadata.len())]
    };
    if files.is_empty() {
        return Err(CreateError::NoFiles(path.to_owned()));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));

    let total_unpadded = files
        .iter()
        .try_fold(0u64, |sum, file| sum.checked_add(file.2))
        .filter(|&total| i64::try_from(total).is_ok())
        .ok_or(CreateError::TooLarge)?;
    if total_unpadded == 0 {
        return Err(CreateError::Empty(path.to_owned()));
    }
    let piece_length = match options.piece_length {
        None => auto_piece_length(total_unpadded),
        Some(length)
            if length.is_power_of_two()
                && (MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&length) =>
        {
            length
        }
        Some(length) => return Err(CreateError::BadPieceLength(length)),
    };
    let entries = layout(files, piece_length, options.pad_files && multi_file)?;
    let pieces = hash_pieces(&entries, piece_length, progress)?;
    Ok(encode(
        options,
        &name,
        multi_file,
        piece_length,
        &entries,
        &pieces,
    ))
}

/// The name of the file or folder itself, as UTF-8.
fn root_name(path: &Path) -> Result<String, CreateError> {
    // `.` or `dir/..` have no file name of their own; the canonical path does.
    let canonical;
    let named = if path.file_name().is_some() {
        path
    } else {
        canonical = path.canonicalize().map_err(|source| CreateError::Io {
            path: path.to_owned(),
            source,
        })?;
        &canonical
    };
    named
        .file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .ok_or(CreateError::BadName {
            path: path.to_owned(),
            reason: "the name is not UTF-8",
        })
}

/// Regular files below `root`: (components, full path, length). Symlinks are skipped.
fn walk(root: &Path) -> Result<Vec<(Vec<String>, PathBuf, u64)>, CreateError> {
    let mut files = Vec::new();
    let mut folders = vec![(Vec::<String>::new(), root.to_owned())];
    while let Some((prefix, folder)) = folders.pop() {
        let io_error = |source| CreateError::Io {
            path: folder.clone(),
            source,
        };
        for entry in fs::read_dir(&folder).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            let full = entry.path();
            let kind = entry.file_type().map_err(|source| CreateError::Io {
                path: full.clone(),
                source,
            })?;
            if !kind.is_dir() && !kind.is_file() {
                continue;
            }
            let bad_name = |reason| CreateError::BadName {
                path: full.clone(),
                reason,
            };
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| bad_name("the name is not UTF-8"))?;
            if let Some(reason) = path::component_problem(&name) {
                return Err(bad_name(reason));
            }
            let mut components = prefix.clone();
            components.push(name);
            if components.len() > MAX_PATH_DEPTH {
                return Err(bad_name("path nested too deep"));
            }
            if kind.is_dir() {
                folders.push((components, full));
            } else {
                let length = entry
                    .metadata()
                    .map_err(|source| CreateError::Io {
                        path: full.clone(),
                        source,
                    })?
                    .len();
                files.push((components, full, length));
                if files.len() > MAX_FILES {
                    return Err(CreateError::TooManyFiles(files.len()));
                }
            }
        }
    }
    Ok(files)
}

/// Offsets of the files in the concatenated data, with pad files if asked for.
fn layout(
    files: Vec<(Vec<String>, PathBuf, u64)>,
    piece_length: u32,
    pad: bool,
) -> Result<Vec<Entry>, CreateError> {
    let piece_length = u64::from(piece_length);
    let mut entries = Vec::with_capacity(files.len());
    let mut offset: u64 = 0;
    for (path, source, length) in files {
        let misaligned = offset % piece_length;
        if pad && offset > 0 && length > 0 && misaligned != 0 {
            let pad_length = piece_length - misaligned;
            entries.push(Entry {
                path: vec![".pad".to_owned(), pad_length.to_string()],
                length: pad_length,
                offset,
                source: None,
            });
            offset += pad_length;
        }
        entries.push(Entry {
            path,
            length,
            offset,
            source: Some(source),
        });
        offset = offset
            .checked_add(length)
            .filter(|&total| i64::try_from(total).is_ok())
            .ok_or(CreateError::TooLarge)?;
    }
    if entries.len() > MAX_FILES {
        return Err(CreateError::TooManyFiles(entries.len()));
    }
    Ok(entries)
}

/// SHA-1 of every piece, computed in parallel.
fn hash_pieces(
    entries: &[Entry],
    piece_length: u32,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<u8>, CreateError> {
    let total = entries
        .last()
        .map_or(0, |entry| entry.offset + entry.length);
    let count = total.div_ceil(u64::from(piece_length));
    let hashes: Vec<[u8; 20]> = (0..count)
        .into_par_iter()
        .map_init(Vec::new, |buffer, index| {
            let start = index * u64::from(piece_length);
            let end = total.min(start + u64::from(piece_length));
            read_range(entries, start, end, buffer)?;
            let hash: [u8; 20] = Sha1::digest(buffer.as_slice()).into();
            progress(end - start, total);
            Ok(hash)
        })
        .collect::<Result<_, CreateError>>()?;
    Ok(hashes.concat())
}

/// Fills `buffer` with the torrent's bytes `start..end`, reading across file boundaries.
fn read_range(
    entries: &[Entry],
    start: u64,
    end: u64,
    buffer: &mut Vec<u8>,
) -> Result<(), CreateError> {
    buffer.clear();
    buffer.resize(usize::try_from(end - start).unwrap_or_default(), 0);
    let first = entries.partition_point(|entry| entry.offset + entry.length <= start);
    for entry in entries.iter().skip(first) {
        if entry.offset >= end {
            break;
        }
        let Some(source) = &entry.source else {
            continue; // A pad file: the buffer is zeroed already.
        };
        let from = start.max(entry.offset);
        let to = end.min(entry.offset + entry.length);
        if from >= to {
            continue;
        }
        let slice = usize::try_from(from - start)
            .ok()
            .zip(usize::try_from(to - start).ok())
            .and_then(|(a, b)| buffer.get_mut(a..b))
            .ok_or_else(|| CreateError::FileChanged(source.clone()))?;
        read_file_part(source, entry.length, from - entry.offset, slice)?;
    }
    Ok(())
}

/// Reads `slice.len()` bytes at `position` of the file, which must still be `length` long.
fn read_file_part(
    source: &Path,
    length: u64,
    position: u64,
    slice: &mut [u8],
) -> Result<(), CreateError> {
    let io_error = |source_error| CreateError::Io {
        path: source.to_owned(),
        source: source_error,
    };
    let mut file = File::open(source).map_err(io_error)?;
    if file.metadata().map_err(io_error)?.len() != length {
        return Err(CreateError::FileChanged(source.to_owned()));
    }
    file.seek(SeekFrom::Start(position)).map_err(io_error)?;
    file.read_exact(slice).map_err(|error| {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            CreateError::FileChanged(source.to_owned())
        } else {
            io_error(error)
        }
    })
}

/// The bencoded torrent.
fn encode(
    options: &CreateOptions,
    name: &str,
    multi_file: bool,
    piece_length: u32,
    entries: &[Entry],
    pieces: &[u8],
) -> Vec<u8> {
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let mut info = Dict::new()
        .with(b"name", Value::Bytes(name.as_bytes()))
        .with(b"piece length", int(u64::from(piece_length)))
        .with(b"pieces", Value::Bytes(pieces));
    if options.private {
        info.insert(b"private", Value::Int(1));
    }
    if multi_file {
        let files = entries
            .iter()
            .map(|entry| {
                let path = entry
                    .path
                    .iter()
                    .map(|c| Value::Bytes(c.as_bytes()))
                    .collect();
                let mut file = Dict::new()
                    .with(b"length", int(entry.length))
                    .with(b"path", Value::List(path));
                if entry.source.is_none() {
                    file.insert(b"attr", Value::Bytes(b"p"));
                }
                Value::Dict(file)
            })
            .collect();
        info.insert(b"files", Value::List(files));
    } else {
        info.insert(b"length", int(entries.iter().map(|e| e.length).sum()));
    }

    let created_by = options
        .created_by
        .clone()
        .unwrap_or_else(|| format!("Rill {}", env!("CARGO_PKG_VERSION")));
    let tiers: Vec<Vec<&str>> = options
        .trackers
        .iter()
        .map(|tier| {
            tier.iter()
                .map(|url| url.trim())
                .filter(|url| !url.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|tier| !tier.is_empty())
        .collect();
    let mut root = Dict::new()
        .with(b"info", Value::Dict(info))
        .with(b"created by", Value::Bytes(created_by.as_bytes()));
    if let Some(first) = tiers.first().and_then(|tier| tier.first()) {
        root.insert(b"announce", Value::Bytes(first.as_bytes()));
    }
    if tiers.iter().map(Vec::len).sum::<usize>() > 1 {
        let list = tiers
            .iter()
            .map(|tier| Value::List(tier.iter().map(|u| Value::Bytes(u.as_bytes())).collect()))
            .collect();
        root.insert(b"announce-list", Value::List(list));
    }
    let seeds: Vec<Value<'_>> = options
        .web_seeds
        .iter()
        .map(|url| url.trim())
        .filter(|url| !url.is_empty())
        .map(|url| Value::Bytes(url.as_bytes()))
        .collect();
    if !seeds.is_empty() {
        root.insert(b"url-list", Value::List(seeds));
    }
    if let Some(comment) = options.comment.as_deref().filter(|c| !c.is_empty()) {
        root.insert(b"comment", Value::Bytes(comment.as_bytes()));
    }
    if let Some(date) = options.creation_date {
        root.insert(b"creation date", Value::Int(date));
    }
    Value::Dict(root).to_bytes()
}

#[cfg(test)]
mod tests;
