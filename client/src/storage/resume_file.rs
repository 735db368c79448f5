//! The resume file on disk, and the start-up decision of which pieces we have.
//!
//! The format and what it may be trusted for are in [`crate::torrent::resume`]; this module
//! reads and writes the file and hashes what it cannot vouch for.
//!
//! Invariants:
//! - a torrent's resume file is `<download dir>/.rill/<info-hash hex>.resume`;
//! - [`checkpoint`] is how the shell saves: sync, then stamps, then [`save`];
//! - [`save`] replaces the file atomically (temporary file in the same directory, fsync,
//!   rename, fsync of the directory): a crash leaves the old file or the new one, never a
//!   mix. The caller must [`Storage::sync`] before taking the data it saves, so `have`
//!   never promises data that is not durable;
//! - [`load`] never fails on a corrupt or mismatched file: it warns and returns `None`,
//!   and the data is then checked by hash;
//! - [`startup_have`] trusts a saved piece only if every file it touches has the size and
//!   mtime saved with it, and hashes every other piece whose files are on disk; a piece
//!   that does not match its SHA-1 is never reported as had (so after a `kill -9`, pieces
//!   completed after the last save are found, and a half-written one is not trusted).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rill_common::bitfield::Bitfield;
use rill_common::info_hash::InfoHash;

use super::error::StorageError;
use super::fs::Storage;
use super::layout::DEFAULT_FILE_PRIORITY;
use crate::torrent::resume::{ResumeData, trusted_pieces};

/// The folder, inside the download folder, that holds resume files.
pub const RESUME_DIR: &str = ".rill";

/// The longest resume file read (a bitfield of 2^24 pieces plus stamps for many files is
/// far below this).
const MAX_RESUME_LEN: u64 = 64 << 20;

/// Where the resume file of torrent `info_hash` downloading into `download_dir` lives.
pub fn resume_path(download_dir: &Path, info_hash: &InfoHash) -> PathBuf {
    download_dir
        .join(RESUME_DIR)
        .join(format!("{}.resume", info_hash.to_hex()))
}

/// Reads the resume file at `path` for torrent `info_hash` of `piece_count` pieces.
/// `Ok(None)` if there is none, or if it is corrupt, too large or another torrent's (with
/// a warning logged); `Err` only if an existing file cannot be read, which the caller may
/// also just log before checking the data by hash.
pub fn load(
    path: &Path,
    info_hash: &InfoHash,
    piece_count: u32,
) -> Result<Option<ResumeData>, StorageError> {
    let bytes = match read_capped(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            tracing::warn!(path = %path.display(), "resume file too large, ignored");
            return Ok(None);
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StorageError::from_io("read", path, error)),
    };
    match ResumeData::from_bytes(&bytes, info_hash, piece_count) {
        Ok(data) => Ok(Some(data)),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "resume file ignored; the data will be checked");
            Ok(None)
        }
    }
}

/// The file's bytes, or `None` if it is larger than [`MAX_RESUME_LEN`].
fn read_capped(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_RESUME_LEN + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= MAX_RESUME_LEN).then_some(bytes))
}

/// Writes `data` to `path` atomically and durably, creating the folder if needed.
pub fn save(path: &Path, data: &ResumeData) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)
        .map_err(|error| StorageError::from_io("create directory", dir, error))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".resume-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|error| StorageError::from_io("create", dir, error))?;
    let temp_path = temp.path().to_path_buf();
    let write = |file: &mut File| {
        file.write_all(&data.to_bytes())?;
        file.sync_all()
    };
    write(temp.as_file_mut()).map_err(|error| StorageError::from_io("write", &temp_path, error))?;
    // On failure the temporary file is removed when `temp` drops; the old file stays.
    temp.persist(path)
        .map_err(|error| StorageError::from_io("replace", path, error.error))?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| StorageError::from_io("sync", dir, error))
}

/// Saves a resume file the way the format requires: first [`Storage::sync`] (so every
/// piece in `data.have`, verified before this call, is durable), then the files' stamps
/// taken now replace `data.files`, then the atomic [`save`]. Priorities are padded with
/// [`DEFAULT_FILE_PRIORITY`] (or cut) to one per file.
pub fn checkpoint(
    storage: &Storage,
    path: &Path,
    mut data: ResumeData,
) -> Result<(), StorageError> {
    storage.sync()?;
    data.files = storage.file_stamps();
    data.file_priorities
        .resize(storage.layout().file_count(), DEFAULT_FILE_PRIORITY);
    save(path, &data)
}

/// Which pieces to take as had at start-up, and which to hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartupPlan {
    /// Saved as verified, every file they touch unchanged since: had without hashing.
    pub trusted: Bitfield,
    /// Every other piece whose files are on disk and long enough: to hash.
    pub to_check: Bitfield,
}

impl StartupPlan {
    /// Bytes the check will hash (the total for a progress bar).
    pub fn bytes_to_check(&self, storage: &Storage) -> u64 {
        self.to_check
            .iter()
            .map(|piece| u64::from(storage.layout().piece_size(piece)))
            .sum()
    }
}

/// Decides, from the resume data (if any) and the files on disk, which pieces are trusted
/// and which must be hashed. Cheap: one `stat` per file, no reading.
pub fn plan_startup(storage: &Storage, resume: Option<&ResumeData>) -> StartupPlan {
    let layout = storage.layout();
    let on_disk = storage.pieces_on_disk();
    let mut trusted = match resume {
        Some(data) => trusted_pieces(data, &storage.file_stamps(), layout),
        None => Bitfield::new(layout.piece_count()),
    };
    let mut to_check = on_disk.clone();
    for piece in on_disk.iter() {
        if trusted.get(piece) {
            to_check.set(piece, false);
        }
    }
    // Belt and braces: a saved piece whose data is not all there is not trusted.
    let missing: Vec<_> = trusted
        .iter()
        .filter(|piece| !on_disk.get(*piece))
        .collect();
    for piece in missing {
        trusted.set(piece, false);
    }
    StartupPlan { trusted, to_check }
}

/// The pieces we have at start-up: those the resume data vouches for, plus those on disk
/// that match their SHA-1 (hashed on all cores; `progress` gets each checked piece's length
/// in bytes; [`plan_startup`] and [`StartupPlan::bytes_to_check`] give the total).
pub fn startup_have(
    storage: &Storage,
    resume: Option<&ResumeData>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Bitfield, StorageError> {
    let plan = plan_startup(storage, resume);
    let mut have = storage.check(&plan.to_check, progress)?;
    for piece in plan.trusted.iter() {
        have.set(piece, true);
    }
    Ok(have)
}

#[cfg(test)]
#[path = "resume_file/tests.rs"]
mod tests;
