//! The `info` dictionary (BEP 3): name, piece length, piece hashes and the file list, with
//! BEP 27 `private`, BEP 47 `attr`/`symlink path` and the BEP 52 hybrid detection.
//!
//! Invariants of a parsed [`Info`]:
//! - every path (file, symlink target, name) passed [`super::path::path_problem`];
//! - no two non-pad files share a path, and no non-pad file is also a folder of another;
//! - `1 <= piece_length <= MAX_PIECE_LENGTH`, total length is positive and fits in `u64`;
//! - `pieces.len() == ceil(total_length / piece_length)`;
//! - `files` are in torrent order, `files[i].offset` is the sum of the lengths before it.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use crate::bencode::{self, Dict, Value};

use super::path::{self, MAX_PATH_DEPTH};
use super::{MetaVersion, MetainfoError};

/// Largest accepted piece length: 512 MiB (libtorrent and Transmission refuse far smaller
/// caps in practice; anything larger cannot be held in memory for checking).
pub const MAX_PIECE_LENGTH: u32 = 512 * 1024 * 1024;

/// Most files one torrent may list.
pub const MAX_FILES: usize = 1 << 20;

/// Names of pad files written by BitComet before BEP 47; treated as pad files like libtorrent does.
const LEGACY_PAD_PREFIX: &str = "_____padding_file_";

/// The parsed `info` dictionary of a v1 (or hybrid) torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The suggested file name (single-file) or root folder name (multi-file), sanitised.
    pub name: String,
    /// Bytes per piece; every piece but the last has exactly this length.
    pub piece_length: u32,
    /// The SHA-1 of each piece, in order.
    pub pieces: Vec<[u8; 20]>,
    /// The files in torrent order; one entry named `[name]` for a single-file torrent.
    pub files: Vec<FileEntry>,
    /// BEP 27: peers come from the tracker only (no DHT, PEX or local discovery).
    pub private: bool,
    /// Whether the torrent has a `files` list (its files live in a folder called `name`).
    pub multi_file: bool,
}

/// One file of a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Sanitised components below the torrent's root; single-file: `[name]`.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// Byte offset of the file in the torrent's concatenated data.
    pub offset: u64,
    /// BEP 47 attributes.
    pub attr: FileAttr,
    /// BEP 47: target of a symlink, as components below the torrent's root.
    pub symlink_path: Option<Vec<String>>,
}

/// BEP 47 file attributes (the `attr` string).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileAttr {
    /// `p`: a pad file, zeros that are never written to disk.
    pub pad: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden.
    pub hidden: bool,
    /// `l`: a symbolic link (see [`FileEntry::symlink_path`]).
    pub symlink: bool,
}

impl FileAttr {
    /// Reads the BEP 47 `attr` letters; unknown letters are ignored.
    pub fn from_letters(letters: &[u8]) -> Self {
        FileAttr {
            pad: letters.contains(&b'p'),
            executable: letters.contains(&b'x'),
            hidden: letters.contains(&b'h'),
            symlink: letters.contains(&b'l'),
        }
    }

    /// The BEP 47 `attr` letters, in a fixed order (`lxhp` subset).
    pub fn to_letters(self) -> String {
        [
            (self.symlink, 'l'),
            (self.executable, 'x'),
            (self.hidden, 'h'),
            (self.pad, 'p'),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, letter)| *letter)
        .collect()
    }
}

impl Info {
    /// Parses the bencoded `info` dictionary alone (BEP 9 metadata).
    pub fn from_bytes(raw_info: &[u8]) -> Result<Info, MetainfoError> {
        let value = bencode::decode(raw_info)?;
        let dict = value.as_dict().ok_or(MetainfoError::NotADictionary)?;
        parse(dict).map(|(info, _)| info)
    }

    /// Sum of all file lengths, pad files included.
    pub fn total_length(&self) -> u64 {
        self.files
            .last()
            .map_or(0, |file| file.offset.saturating_add(file.length))
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Length of piece `index` (the last one may be shorter), or `None` past the end.
    pub fn piece_size(&self, index: u32) -> Option<u32> {
        let index = usize::try_from(index).ok()?;
        if index >= self.pieces.len() {
            return None;
        }
        let start = u64::try_from(index)
            .ok()?
            .checked_mul(u64::from(self.piece_length))?;
        let remaining = self.total_length().checked_sub(start)?;
        u32::try_from(remaining.min(u64::from(self.piece_length))).ok()
    }
}

/// Parses an `info` dictionary and tells whether it is plain v1 or a v1/v2 hybrid.
pub(super) fn parse(dict: &Dict<'_>) -> Result<(Info, MetaVersion), MetainfoError> {
    let version = meta_version(dict)?;
    let piece_length = piece_length(dict)?;
    let pieces_bytes = dict
        .get(b"pieces")
        .ok_or(MetainfoError::MissingField("pieces"))?
        .as_bytes()
        .ok_or(wrong("pieces", "string"))?;
    if pieces_bytes.len() % 20 != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20(pieces_bytes.len()));
    }
    let name = utf8_preferred(dict, b"name.utf-8", b"name", "name")?;
    if let Some(reason) = path::component_problem(&name) {
        return Err(MetainfoError::UnsafePath { path: name, reason });
    }
    let private = match dict.get(b"private") {
        None => false,
        Some(value) => value.as_int().ok_or(wrong("private", "integer"))? != 0,
    };

    // libtorrent's rule: a `files` list makes a multi-file torrent, whatever else is there.
    let (files, multi_file) = match dict.get(b"files") {
        Some(list) => {
            let list = list.as_list().ok_or(wrong("files", "list"))?;
            (file_list(list)?, true)
        }
        None => (vec![single_file(dict, &name)?], false),
    };
    let total = files
        .last()
        .map_or(0, |file| file.offset.saturating_add(file.length));
    if total == 0 {
        return Err(MetainfoError::EmptyTorrent);
    }
    check_unique_paths(&files)?;

    let expected = total.div_ceil(u64::from(piece_length));
    let actual = (pieces_bytes.len() / 20) as u64;
    if expected != actual {
        return Err(MetainfoError::PieceCountMismatch { expected, actual });
    }
    let pieces = pieces_bytes
        .chunks_exact(20)
        .filter_map(|chunk| <[u8; 20]>::try_from(chunk).ok())
        .collect();
    let info = Info {
        name,
        piece_length,
        pieces,
        files,
        private,
        multi_file,
    };
    Ok((info, version))
}

fn wrong(field: &'static str, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType { field, expected }
}

/// BEP 52: `meta version` 2 with v1 `pieces` is a hybrid; without them, v2 only.
fn meta_version(dict: &Dict<'_>) -> Result<MetaVersion, MetainfoError> {
    let has_v1 = dict.get(b"pieces").is_some();
    match dict.get(b"meta version") {
        None if !has_v1 && dict.get(b"file tree").is_some() => Err(MetainfoError::V2Only),
        None => Ok(MetaVersion::V1),
        Some(value) => match value.as_int().ok_or(wrong("meta version", "integer"))? {
            1 => Ok(MetaVersion::V1),
            2 if has_v1 => Ok(MetaVersion::Hybrid),
            2 => Err(MetainfoError::V2Only),
            other => Err(MetainfoError::UnsupportedMetaVersion(other)),
        },
    }
}

fn piece_length(dict: &Dict<'_>) -> Result<u32, MetainfoError> {
    let value = dict
        .get(b"piece length")
        .ok_or(MetainfoError::MissingField("piece length"))?
        .as_int()
        .ok_or(wrong("piece length", "integer"))?;
    match u64::try_from(value) {
        Err(_) => Err(MetainfoError::NegativeLength(value)),
        Ok(0) => Err(MetainfoError::ZeroPieceLength),
        Ok(len) => u32::try_from(len)
            .ok()
            .filter(|&len| len <= MAX_PIECE_LENGTH)
            .ok_or(MetainfoError::PieceLengthTooLarge(len)),
    }
}

/// A length field: present, an integer, not negative.
fn length(dict: &Dict<'_>) -> Result<u64, MetainfoError> {
    let value = dict
        .get(b"length")
        .ok_or(MetainfoError::MissingField("length"))?
        .as_int()
        .ok_or(wrong("length", "integer"))?;
    u64::try_from(value).map_err(|_| MetainfoError::NegativeLength(value))
}

fn attr(dict: &Dict<'_>) -> Result<FileAttr, MetainfoError> {
    match dict.get(b"attr") {
        None => Ok(FileAttr::default()),
        Some(value) => value
            .as_bytes()
            .map(FileAttr::from_letters)
            .ok_or(wrong("attr", "string")),
    }
}

/// The `*.utf-8` variant of a string field when it is present and valid UTF-8, else the
/// plain field, decoded lossily (invalid sequences become U+FFFD) so old torrents still load.
fn utf8_preferred(
    dict: &Dict<'_>,
    utf8_key: &[u8],
    key: &[u8],
    field: &'static str,
) -> Result<String, MetainfoError> {
    if let Some(name) = dict.get_str(utf8_key) {
        return Ok(name.to_owned());
    }
    let bytes = dict
        .get(key)
        .ok_or(MetainfoError::MissingField(field))?
        .as_bytes()
        .ok_or(wrong(field, "string"))?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// A list of path components, lossily decoded, not yet sanitised.
fn components(list: &[Value<'_>], field: &'static str) -> Result<Vec<String>, MetainfoError> {
    if list.len() > MAX_PATH_DEPTH {
        return Err(MetainfoError::UnsafePath {
            path: format!("({} components)", list.len()),
            reason: "path nested too deep",
        });
    }
    list.iter()
        .map(|item| {
            item.as_bytes()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .ok_or(wrong(field, "list of strings"))
        })
        .collect()
}

/// The `path.utf-8` list when present and all valid UTF-8, else `path`.
fn file_path(dict: &Dict<'_>) -> Result<Vec<String>, MetainfoError> {
    if let Some(list) = dict.get_list(b"path.utf-8")
        && list.iter().all(|item| item.as_str().is_some())
    {
        return components(list, "path.utf-8").and_then(sanitised);
    }
    let list = dict
        .get(b"path")
        .ok_or(MetainfoError::MissingField("path"))?
        .as_list()
        .ok_or(wrong("path", "list of strings"))?;
    components(list, "path").and_then(sanitised)
}

fn sanitised(components: Vec<String>) -> Result<Vec<String>, MetainfoError> {
    match path::path_problem(&components) {
        None => Ok(components),
        Some(reason) => Err(MetainfoError::UnsafePath {
            path: path::display(&components),
            reason,
        }),
    }
}

fn symlink_path(dict: &Dict<'_>, attr: FileAttr) -> Result<Option<Vec<String>>, MetainfoError> {
    if !attr.symlink {
        return Ok(None);
    }
    let list = dict
        .get(b"symlink path")
        .ok_or(MetainfoError::MissingField("symlink path"))?
        .as_list()
        .ok_or(wrong("symlink path", "list of strings"))?;
    components(list, "symlink path")
        .and_then(sanitised)
        .map(Some)
}

fn single_file(dict: &Dict<'_>, name: &str) -> Result<FileEntry, MetainfoError> {
    let attr = attr(dict)?;
    Ok(FileEntry {
        path: vec![name.to_owned()],
        length: length(dict)?,
        offset: 0,
        attr,
        symlink_path: symlink_path(dict, attr)?,
    })
}

fn file_list(list: &[Value<'_>]) -> Result<Vec<FileEntry>, MetainfoError> {
    if list.is_empty() {
        return Err(MetainfoError::NoFiles);
    }
    if list.len() > MAX_FILES {
        return Err(MetainfoError::TooManyFiles(list.len()));
    }
    let mut files = Vec::with_capacity(list.len());
    let mut offset: u64 = 0;
    for item in list {
        let dict = item
            .as_dict()
            .ok_or(wrong("files", "list of dictionaries"))?;
        let length = length(dict)?;
        let path = file_path(dict)?;
        let mut attr = attr(dict)?;
        if path
            .last()
            .is_some_and(|name| name.starts_with(LEGACY_PAD_PREFIX))
        {
            attr.pad = true;
        }
        let symlink_path = symlink_path(dict, attr)?;
        files.push(FileEntry {
            path,
            length,
            offset,
            attr,
            symlink_path,
        });
        offset = offset
            .checked_add(length)
            .ok_or(MetainfoError::TotalLengthOverflow)?;
    }
    Ok(files)
}

/// Refuses two files at the same path, and a file that is also the folder of another:
/// either would make two files share one place on disk. Pad files are left out, since they
/// are never written and libtorrent names several of them alike (`.pad/16384`).
fn check_unique_paths(files: &[FileEntry]) -> Result<(), MetainfoError> {
    let mut paths: Vec<&[String]> = files
        .iter()
        .filter(|file| !file.attr.pad)
        .map(|file| file.path.as_slice())
        .collect();
    paths.sort_unstable();
    // In sorted order, a path that is a prefix of another sorts right before the paths it
    // prefixes, so comparing neighbours finds every clash.
    for pair in paths.windows(2) {
        if let [first, second] = pair {
            if first == second {
                return Err(MetainfoError::DuplicatePath(path::display(first)));
            }
            if second.starts_with(first) {
                return Err(MetainfoError::PathConflict {
                    file: path::display(first),
                    other: path::display(second),
                });
            }
        }
    }
    Ok(())
}
