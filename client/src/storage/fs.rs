//! A torrent's data in files on disk: positioned writes and reads of blocks (a run of
//! contiguous blocks in one vectored `pwritev` per file span), SHA-1 checks of pieces
//! (BEP 3), all blocking, for the torrent's disk worker thread and the start-up check.
//!
//! Invariants:
//! - every path is the torrent's [`Layout::relative_path`] (sanitised by the metainfo
//!   parser) joined under the root; nothing outside the root is named;
//! - nothing already on disk is ever lost: files are opened without truncation, a file
//!   shorter than the torrent says is only ever grown (to its full length, sparse, with
//!   `set_len`), a longer one is left as it is, and nothing is ever deleted;
//! - pad files (BEP 47) are never created, written or read: they read as zeros;
//! - directories and files are created lazily, on the first write into them;
//! - a missing or short file means "that data is not there" for [`Storage::verify_piece`]
//!   and [`Storage::check`], never an error; only [`Storage::read_block`] (serving a piece
//!   we said we have) reports it, as [`StorageError::Missing`];
//! - [`Storage::sync`] makes every write done before it durable (fsync of the files, and of
//!   the directory of each file it created), so a resume file saved after it never
//!   promises data a crash could lose.
//!
//! `Storage` is `Send + Sync`; all methods take `&self` and may run on many threads at
//! once (positioned I/O shares no file cursor; see the `handles` module for the handle
//! cache).

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use rayon::prelude::*;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::{BlockError, BlockRef, PieceIndex};
use sha1::{Digest, Sha1};

use super::error::StorageError;
use super::handles::{DEFAULT_CAPACITY, Handles};
use super::layout::Layout;
use crate::torrent::resume::FileStamp;

/// Bytes read at a time when hashing a piece: bounds a check's memory per thread, and
/// small enough that the bytes just read are still in the CPU cache when hashed.
const HASH_CHUNK: u32 = 256 << 10;

thread_local! {
    /// Each thread's buffer for hashing (at most [`HASH_CHUNK`] bytes), reused so a check
    /// neither allocates nor faults in fresh pages per piece.
    static HASH_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One torrent's files under a download folder.
pub struct Storage {
    root: PathBuf,
    layout: Layout,
    piece_hashes: Vec<[u8; 20]>,
    handles: Handles,
    /// Per file: written since the last [`Storage::sync`].
    dirty: Vec<AtomicBool>,
    /// Per file: created by us and its directory entry not yet synced.
    created: Vec<AtomicBool>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("root", &self.root)
            .field("files", &self.layout.file_count())
            .field("pieces", &self.layout.piece_count())
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// The storage of a torrent laid out as `layout` under `root` (the download folder),
    /// with one SHA-1 per piece. Nothing is created until the first write.
    pub fn open(
        root: &Path,
        layout: Layout,
        piece_hashes: Vec<[u8; 20]>,
    ) -> Result<Storage, StorageError> {
        if piece_hashes.len() != layout.piece_count() as usize {
            return Err(StorageError::PieceHashes {
                expected: layout.piece_count(),
                found: piece_hashes.len(),
            });
        }
        match fs::metadata(root) {
            Ok(meta) if !meta.is_dir() => {
                return Err(StorageError::NotADirectory {
                    action: "use",
                    path: root.to_path_buf(),
                });
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(StorageError::from_io("use", root, error)),
        }
        let flags = || (0..layout.file_count()).map(|_| AtomicBool::new(false));
        Ok(Storage {
            root: root.to_path_buf(),
            dirty: flags().collect(),
            created: flags().collect(),
            layout,
            piece_hashes,
            handles: Handles::new(DEFAULT_CAPACITY),
        })
    }

    /// The torrent's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The download folder the files are under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where file `file` lives on disk, or `None` past the last file.
    pub fn path(&self, file: usize) -> Option<PathBuf> {
        self.layout
            .relative_path(file)
            .map(|relative| self.root.join(relative))
    }

    fn path_or_root(&self, file: usize) -> PathBuf {
        self.path(file).unwrap_or_else(|| self.root.clone())
    }

    /// Checks that `block` lies inside its piece and that `len` bytes are given for it.
    fn check_block(&self, block: BlockRef, len: usize) -> Result<(), StorageError> {
        let invalid = |reason| StorageError::InvalidBlock { block, reason };
        PieceIndex::checked(block.piece.get(), self.layout.piece_count()).map_err(invalid)?;
        let piece_len = self.layout.piece_size(block.piece);
        block.check(piece_len, piece_len).map_err(invalid)?;
        if len != block.length as usize {
            return Err(StorageError::DataLength { block, len });
        }
        Ok(())
    }

    /// Writes the data of `block` where the layout puts it (pad files skipped), creating
    /// directories and files as needed. `data` must be exactly the block's length.
    pub fn write_block(&self, block: BlockRef, data: &[u8]) -> Result<(), StorageError> {
        self.check_block(block, data.len())?;
        let mut at = 0usize;
        for span in self.layout.spans(block.piece, block.begin, block.length) {
            let len = span.len as usize;
            let part = data.get(at..at + len).unwrap_or_default();
            at += len;
            if span.pad {
                continue;
            }
            let handle = self.writable(span.file)?;
            // Marked before the write, so a sync racing with it cannot miss it.
            if let Some(flag) = self.dirty.get(span.file) {
                flag.store(true, Ordering::Release);
            }
            handle.write_all_at(part, span.offset).map_err(|error| {
                StorageError::from_io("write", &self.path_or_root(span.file), error)
            })?;
        }
        Ok(())
    }

    /// Writes `blocks`, contiguous and in this order, into `piece` from byte `begin`: one
    /// vectored positioned write (`pwritev`) per file span rather than one `pwrite` per
    /// block. Each block must lie inside the piece.
    pub fn write_run(
        &self,
        piece: PieceIndex,
        begin: u32,
        blocks: &[Bytes],
    ) -> Result<(), StorageError> {
        let mut total = 0u32;
        for data in blocks {
            let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let block = BlockRef {
                piece,
                begin: begin.saturating_add(total),
                length,
            };
            self.check_block(block, data.len())?;
            total = total.saturating_add(length);
        }
        // The cursor into `blocks`: block index and offset within it.
        let (mut index, mut within) = (0usize, 0usize);
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(blocks.len());
        for span in self.layout.spans(piece, begin, total) {
            slices.clear();
            let mut want = span.len as usize;
            while want > 0 {
                let Some(data) = blocks.get(index) else {
                    break;
                };
                let part = data.get(within..).unwrap_or_default();
                let take = part.len().min(want);
                if !span.pad {
                    slices.push(IoSlice::new(part.get(..take).unwrap_or_default()));
                }
                want -= take;
                within += take;
                if within == data.len() {
                    index += 1;
                    within = 0;
                }
            }
            if span.pad {
                continue;
            }
            let handle = self.writable(span.file)?;
            if let Some(flag) = self.dirty.get(span.file) {
                flag.store(true, Ordering::Release);
            }
            write_all_vectored_at(&handle, &mut slices, span.offset).map_err(|error| {
                StorageError::from_io("write", &self.path_or_root(span.file), error)
            })?;
        }
        Ok(())
    }

    /// Fills `buf` with the bytes at `begin` in `piece` (zeros for pad files): `Ok(false)`
    /// when a file is missing or too short to hold them, or the range passes the piece.
    pub fn read_range(
        &self,
        piece: PieceIndex,
        begin: u32,
        buf: &mut [u8],
    ) -> Result<bool, StorageError> {
        if piece.get() >= self.layout.piece_count() {
            return Ok(false);
        }
        let end = u64::from(begin) + buf.len() as u64;
        if end > u64::from(self.layout.piece_size(piece)) {
            return Ok(false);
        }
        Ok(self.read_into(piece, begin, buf)?.is_ok())
    }

    /// The SHA-1 piece `piece` must have, or `None` past the last piece.
    pub fn piece_hash(&self, piece: PieceIndex) -> Option<[u8; 20]> {
        self.piece_hashes.get(piece.as_usize()).copied()
    }

    /// Reads the data of `block` (zeros for pad files). A missing or short file is
    /// [`StorageError::Missing`]: call this only for pieces we have.
    pub fn read_block(&self, block: BlockRef) -> Result<Bytes, StorageError> {
        self.check_block(block, block.length as usize)?;
        let mut buf = vec![0u8; block.length as usize];
        match self.read_into(block.piece, block.begin, &mut buf)? {
            Ok(()) => Ok(Bytes::from(buf)),
            Err(file) => Err(StorageError::Missing {
                path: self.path_or_root(file),
            }),
        }
    }

    /// Whether piece `piece` on disk matches its SHA-1; a missing or short file is `false`.
    pub fn verify_piece(&self, piece: PieceIndex) -> Result<bool, StorageError> {
        let Some(expected) = self.piece_hashes.get(piece.as_usize()) else {
            let reason = BlockError::PieceOutOfRange {
                index: piece.get(),
                piece_count: self.layout.piece_count(),
            };
            let block = BlockRef {
                piece,
                begin: 0,
                length: 0,
            };
            return Err(StorageError::InvalidBlock { block, reason });
        };
        let size = self.layout.piece_size(piece);
        let mut hasher = Sha1::new();
        let complete = HASH_BUFFER.with_borrow_mut(|buf| {
            buf.resize(size.min(HASH_CHUNK) as usize, 0);
            let mut begin = 0u32;
            while begin < size {
                let len = (size - begin).min(HASH_CHUNK);
                let chunk = &mut buf[..len as usize];
                if self.read_into(piece, begin, chunk)?.is_err() {
                    return Ok(false);
                }
                hasher.update(&*chunk);
                begin += len;
            }
            Ok::<_, StorageError>(true)
        })?;
        if !complete {
            return Ok(false);
        }
        Ok(hasher.finalize().as_slice() == expected)
    }

    /// Verifies the pieces set in `pieces` on all cores and returns those whose data matches
    /// its SHA-1. Missing or short files mean "not had", not an error. `progress` is called
    /// once per piece checked, from any thread, with that piece's length in bytes.
    pub fn check(
        &self,
        pieces: &Bitfield,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Bitfield, StorageError> {
        let count = self.layout.piece_count();
        let todo: Vec<PieceIndex> = pieces.iter().filter(|piece| piece.get() < count).collect();
        let good = todo
            .par_iter()
            .map(|&piece| {
                let good = self.verify_piece(piece)?;
                progress(u64::from(self.layout.piece_size(piece)));
                Ok((piece, good))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let mut have = Bitfield::new(count);
        for (piece, _) in good.into_iter().filter(|(_, good)| *good) {
            have.set(piece, true);
        }
        Ok(have)
    }

    /// The pieces whose files all exist and are long enough to hold them (pad files
    /// aside): the only pieces worth hashing. Cheap: one `stat` per file.
    pub fn pieces_on_disk(&self) -> Bitfield {
        let sizes: Vec<Option<u64>> = (0..self.layout.file_count())
            .map(|file| {
                let path = self.path(file)?;
                fs::metadata(path).ok().map(|meta| meta.len())
            })
            .collect();
        let mut present = Bitfield::new(self.layout.piece_count());
        for index in 0..self.layout.piece_count() {
            let piece = PieceIndex::new(index);
            let size = self.layout.piece_size(piece);
            let all_there = self.layout.spans(piece, 0, size).all(|span| {
                span.pad
                    || sizes
                        .get(span.file)
                        .copied()
                        .flatten()
                        .is_some_and(|len| len >= span.offset + u64::from(span.len))
            });
            present.set(piece, all_there);
        }
        present
    }

    /// Each file's size and mtime now, in torrent order, for the resume file; a missing
    /// file and a pad file get the default (zero) stamp.
    pub fn file_stamps(&self) -> Vec<FileStamp> {
        (0..self.layout.file_count())
            .map(|file| {
                if self.layout.is_pad(file) {
                    return FileStamp::default();
                }
                self.path(file)
                    .and_then(|path| fs::metadata(path).ok())
                    .map(|meta| FileStamp {
                        size: meta.len(),
                        mtime: meta.mtime(),
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Makes every write that returned before this call durable: fsync of each file
    /// written since the last sync, and of the directory of each file created (writes
    /// running concurrently with it are left for the next sync).
    pub fn sync(&self) -> Result<(), StorageError> {
        for (file, dirty) in self.dirty.iter().enumerate() {
            if !dirty.swap(false, Ordering::AcqRel) {
                continue;
            }
            let result = self.sync_file(file);
            if result.is_err() {
                dirty.store(true, Ordering::Release);
            }
            result?;
        }
        for (file, created) in self.created.iter().enumerate() {
            if !created.swap(false, Ordering::AcqRel) {
                continue;
            }
            let Some(parent) = self
                .path(file)
                .and_then(|p| p.parent().map(Path::to_path_buf))
            else {
                continue;
            };
            let result = File::open(&parent).and_then(|dir| dir.sync_all());
            if let Err(error) = result {
                created.store(true, Ordering::Release);
                return Err(StorageError::from_io("sync", &parent, error));
            }
        }
        Ok(())
    }

    fn sync_file(&self, file: usize) -> Result<(), StorageError> {
        let path = self.path_or_root(file);
        let handle = match self.handles.get(file, false) {
            Some(handle) => handle,
            // Evicted since the write: fsync through a new descriptor flushes the same
            // inode's dirty pages.
            None => {
                Arc::new(File::open(&path).map_err(|e| StorageError::from_io("sync", &path, e))?)
            }
        };
        handle
            .sync_all()
            .map_err(|error| StorageError::from_io("sync", &path, error))
    }

    /// Creates the torrent's empty files (no write ever creates them); call it when the
    /// download is complete. Existing files are not touched (not even opened).
    pub fn create_empty_files(&self) -> Result<(), StorageError> {
        for file in 0..self.layout.file_count() {
            let empty = self.layout.file_length(file) == Some(0) && !self.layout.is_pad(file);
            if empty && fs::symlink_metadata(self.path_or_root(file)).is_err() {
                self.writable(file)?;
            }
        }
        Ok(())
    }

    /// Fills `buf` with the torrent bytes at `begin` in `piece`. `Ok(Err(file))` when file
    /// `file` is missing or too short to hold them.
    fn read_into(
        &self,
        piece: PieceIndex,
        begin: u32,
        buf: &mut [u8],
    ) -> Result<Result<(), usize>, StorageError> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let mut at = 0usize;
        let mut last_file = 0usize;
        for span in self.layout.spans(piece, begin, len) {
            let span_len = span.len as usize;
            let Some(part) = buf.get_mut(at..at + span_len) else {
                return Ok(Err(span.file));
            };
            at += span_len;
            last_file = span.file;
            if span.pad {
                part.fill(0);
                continue;
            }
            let Some(handle) = self.readable(span.file)? else {
                return Ok(Err(span.file));
            };
            match handle.read_exact_at(part, span.offset) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(Err(span.file));
                }
                Err(error) => {
                    return Err(StorageError::from_io(
                        "read",
                        &self.path_or_root(span.file),
                        error,
                    ));
                }
            }
        }
        // Past the end of the torrent: the bytes are not anywhere.
        Ok(if at == buf.len() {
            Ok(())
        } else {
            Err(last_file)
        })
    }

    /// An open handle of `file` for reading, or `None` if the file does not exist.
    fn readable(&self, file: usize) -> Result<Option<Arc<File>>, StorageError> {
        if let Some(handle) = self.handles.get(file, false) {
            return Ok(Some(handle));
        }
        let path = self.path_or_root(file);
        match File::open(&path) {
            Ok(handle) => Ok(Some(self.handles.insert(file, handle, false))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StorageError::from_io("open", &path, error)),
        }
    }

    /// An open handle of `file` for writing, creating the file (and its directories) and
    /// growing it to its full length if needed.
    fn writable(&self, file: usize) -> Result<Arc<File>, StorageError> {
        if let Some(handle) = self.handles.get(file, true) {
            return Ok(handle);
        }
        let path = self.path_or_root(file);
        let handle = self.open_for_write(file, &path)?;
        Ok(self.handles.insert(file, handle, true))
    }

    fn open_for_write(&self, file: usize, path: &Path) -> Result<File, StorageError> {
        let mut options = OpenOptions::new();
        // Never `truncate`: an existing file may hold verified data.
        options.read(true).write(true);
        let handle = match options.open(path) {
            Ok(handle) => handle,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                options.create(true);
                let handle = match options.open(path) {
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        if let Some(parent) = path.parent() {
                            fs::create_dir_all(parent).map_err(|error| {
                                StorageError::from_io("create directory", parent, error)
                            })?;
                        }
                        options.open(path)
                    }
                    other => other,
                }
                .map_err(|error| StorageError::from_io("create", path, error))?;
                if let Some(flag) = self.created.get(file) {
                    flag.store(true, Ordering::Release);
                }
                handle
            }
            Err(error) => return Err(StorageError::from_io("open", path, error)),
        };
        let meta = handle
            .metadata()
            .map_err(|error| StorageError::from_io("open", path, error))?;
        let length = self.layout.file_length(file).unwrap_or(0);
        // Grow only, and only regular files (a device such as /dev/null cannot be sized).
        // Growing with set_len allocates nothing: the file is sparse until written.
        if meta.is_file() && meta.len() < length {
            handle
                .set_len(length)
                .map_err(|error| StorageError::from_io("allocate", path, error))?;
        }
        Ok(handle)
    }
}

/// Writes every byte of `slices` at `offset`, going on after short writes.
fn write_all_vectored_at(
    file: &File,
    mut slices: &mut [IoSlice<'_>],
    mut offset: u64,
) -> io::Result<()> {
    while !slices.is_empty() {
        // At most IOV_MAX (1024 on Linux) slices per call.
        let first = slices.get(..slices.len().min(1024)).unwrap_or_default();
        match rustix::io::pwritev(file, first, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                offset += written as u64;
                IoSlice::advance_slices(&mut slices, written);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "fs/tests.rs"]
pub(crate) mod tests;
