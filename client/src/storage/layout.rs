//! The torrent's byte space mapped onto its files (BEP 3: the pieces cover the files
//! concatenated in order; BEP 47: pad files are zeros that are never written).
//!
//! Pure: no `std::fs`. The storage shell asks a [`Layout`] where a block goes and does the
//! positioned I/O itself.
//!
//! Invariants:
//! - the files are in torrent order and file `i` starts where file `i - 1` ends (taken from
//!   [`Info`], whose parser guarantees it), so a byte offset is found by binary search
//!   (O(log files));
//! - [`Layout::spans`] yields the parts of a range in order, contiguous in torrent byte
//!   space, never a zero-length file, each inside its file, and their lengths add up to the
//!   part of the range inside the torrent;
//! - a pad file never makes a piece wanted ([`Layout::piece_priorities`]).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;

use rill_common::metainfo::Info;
use rill_common::pieces::PieceIndex;

/// Priority given to a file past the end of the list passed to [`Layout::piece_priorities`]
/// (the picker's default: wanted, normal).
pub const DEFAULT_FILE_PRIORITY: u8 = 1;

/// One file's place in the torrent's byte space.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileSlot {
    offset: u64,
    length: u64,
    pad: bool,
    path: Vec<String>,
}

impl FileSlot {
    fn end(&self) -> u64 {
        self.offset.saturating_add(self.length)
    }
}

/// The part of a range that lies in one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Index of the file in torrent order.
    pub file: usize,
    /// Byte offset inside that file.
    pub offset: u64,
    /// Number of bytes (never 0).
    pub len: u32,
    /// A BEP 47 pad file: never written, read as zeros.
    pub pad: bool,
}

/// Where each piece of a torrent lives among its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    name: String,
    multi_file: bool,
    piece_length: u32,
    piece_count: u32,
    total_length: u64,
    files: Vec<FileSlot>,
}

impl Layout {
    /// The layout of a parsed `info` dictionary.
    pub fn new(info: &Info) -> Layout {
        let mut offset = 0u64;
        let files = info
            .files
            .iter()
            .map(|file| {
                // Recomputed rather than trusted, so the invariant holds for any `Info`.
                let slot = FileSlot {
                    offset,
                    length: file.length,
                    pad: file.attr.pad,
                    path: file.path.clone(),
                };
                offset = offset.saturating_add(file.length);
                slot
            })
            .collect();
        Layout {
            name: info.name.clone(),
            multi_file: info.multi_file,
            piece_length: info.piece_length.max(1),
            piece_count: u32::try_from(info.piece_count()).unwrap_or(u32::MAX),
            total_length: offset,
            files,
        }
    }

    /// Bytes per piece (all but the last piece).
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Total bytes of the torrent, pad files included.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Number of files, pad and empty files included.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Length of file `file`, or `None` past the last file.
    pub fn file_length(&self, file: usize) -> Option<u64> {
        self.files.get(file).map(|slot| slot.length)
    }

    /// Byte offset of file `file` in the torrent, or `None` past the last file.
    pub fn file_offset(&self, file: usize) -> Option<u64> {
        self.files.get(file).map(|slot| slot.offset)
    }

    /// Whether file `file` is a BEP 47 pad file (false past the last file).
    pub fn is_pad(&self, file: usize) -> bool {
        self.files.get(file).is_some_and(|slot| slot.pad)
    }

    /// Path of file `file` relative to the download folder: `name/components` for a
    /// multi-file torrent, `name` for a single file; `None` past the last file.
    pub fn relative_path(&self, file: usize) -> Option<PathBuf> {
        let slot = self.files.get(file)?;
        let mut path = PathBuf::new();
        if self.multi_file {
            path.push(&self.name);
        }
        path.extend(&slot.path);
        Some(path)
    }

    /// The bytes of piece `index` in torrent byte space (empty at the end past the last piece).
    pub fn piece_range(&self, index: PieceIndex) -> Range<u64> {
        let start = u64::from(index.get())
            .saturating_mul(u64::from(self.piece_length))
            .min(self.total_length);
        let end = start
            .saturating_add(u64::from(self.piece_length))
            .min(self.total_length);
        start..end
    }

    /// Length of piece `index` (the last one may be short; 0 past the end).
    pub fn piece_size(&self, index: PieceIndex) -> u32 {
        let range = self.piece_range(index);
        u32::try_from(range.end - range.start).unwrap_or(u32::MAX)
    }

    /// The file holding torrent byte `pos` (the non-empty one), or `None` past the end.
    fn file_at(&self, pos: u64) -> Option<usize> {
        if pos >= self.total_length {
            return None;
        }
        // Empty files share their offset with the next file; the last file starting at or
        // before `pos` is the non-empty one holding it.
        let after = self.files.partition_point(|slot| slot.offset <= pos);
        after.checked_sub(1)
    }

    /// The files that hold bytes of piece `index`, in order (empty files between them
    /// included; an empty range past the last piece).
    pub fn files_of_piece(&self, index: PieceIndex) -> Range<usize> {
        let range = self.piece_range(index);
        if range.is_empty() {
            return 0..0;
        }
        match (self.file_at(range.start), self.file_at(range.end - 1)) {
            (Some(first), Some(last)) => first..last + 1,
            _ => 0..0,
        }
    }

    /// The pieces holding bytes of file `file`, or `None` for an empty file or past the
    /// last file.
    pub fn pieces_of_file(&self, file: usize) -> Option<RangeInclusive<PieceIndex>> {
        let slot = self.files.get(file)?;
        if slot.length == 0 {
            return None;
        }
        let piece_length = u64::from(self.piece_length);
        let first = u32::try_from(slot.offset / piece_length).ok()?;
        let last = u32::try_from((slot.end() - 1) / piece_length).ok()?;
        Some(PieceIndex::new(first)..=PieceIndex::new(last))
    }

    /// Where the `len` bytes at `begin` in piece `piece` live, file by file, in order. The
    /// range is not clamped to the piece (a block checked with `BlockRef::check` never
    /// leaves it); bytes past the end of the torrent are left out, so a range wholly
    /// outside yields nothing.
    pub fn spans(&self, piece: PieceIndex, begin: u32, len: u32) -> Spans<'_> {
        let start = u64::from(piece.get())
            .saturating_mul(u64::from(self.piece_length))
            .saturating_add(u64::from(begin));
        let end = start.saturating_add(u64::from(len)).min(self.total_length);
        Spans {
            layout: self,
            pos: start,
            end,
            file: self.file_at(start).unwrap_or(self.files.len()),
        }
    }

    /// Each piece's priority for [`crate::torrent::picker::Picker::set_priorities`]: the
    /// highest priority of the non-pad files it touches (0 = not wanted). Files past the
    /// end of `file_priorities` get [`DEFAULT_FILE_PRIORITY`].
    pub fn piece_priorities(&self, file_priorities: &[u8]) -> Vec<u8> {
        let mut pieces = vec![0u8; self.piece_count as usize];
        for (index, slot) in self.files.iter().enumerate() {
            let priority = file_priorities
                .get(index)
                .copied()
                .unwrap_or(DEFAULT_FILE_PRIORITY);
            if slot.pad || priority == 0 {
                continue;
            }
            let Some(range) = self.pieces_of_file(index) else {
                continue;
            };
            let (first, last) = (range.start().as_usize(), range.end().as_usize());
            for piece in pieces.iter_mut().take(last + 1).skip(first) {
                *piece = (*piece).max(priority);
            }
        }
        pieces
    }
}

/// Iterator over the [`Span`]s of a range, from [`Layout::spans`].
#[derive(Clone, Debug)]
pub struct Spans<'a> {
    layout: &'a Layout,
    pos: u64,
    end: u64,
    file: usize,
}

impl Iterator for Spans<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        if self.pos >= self.end {
            return None;
        }
        // Skip empty files (and, defensively, any file already passed).
        let slot = loop {
            let slot = self.layout.files.get(self.file)?;
            if slot.end() > self.pos {
                break slot;
            }
            self.file += 1;
        };
        let take = (slot.end().min(self.end) - self.pos).min(u64::from(u32::MAX));
        let span = Span {
            file: self.file,
            offset: self.pos - slot.offset,
            len: u32::try_from(take).unwrap_or(u32::MAX),
            pad: slot.pad,
        };
        self.pos += take;
        Some(span)
    }
}

#[cfg(test)]
#[path = "layout/tests.rs"]
pub(crate) mod tests;
