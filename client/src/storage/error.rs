//! The one error type of the storage shell.
//!
//! Invariant: the `Display` of every [`StorageError`] is one line that names the path and
//! the cause in words a user can act on ("cannot write /dl/a.iso: disk full"), so the
//! torrent shell can show it as is when it stops the torrent.

use std::io;
use std::path::{Path, PathBuf};

use rill_common::pieces::{BlockError, BlockRef};
use thiserror::Error;

/// Why a storage operation failed.
#[derive(Debug, Error)]
pub enum StorageError {
    /// No space left on the device, or the user's disk quota is exhausted (ENOSPC, EDQUOT).
    #[error("cannot {action} {}: disk full", path.display())]
    DiskFull {
        /// What was being done ("write", "create", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
    },
    /// The user may not do this to the path (EACCES, EPERM).
    #[error("cannot {action} {}: permission denied", path.display())]
    PermissionDenied {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
    },
    /// The file system is mounted read-only (EROFS).
    #[error("cannot {action} {}: read-only file system", path.display())]
    ReadOnly {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
    },
    /// A component of the path exists but is not a directory (ENOTDIR).
    #[error("cannot {action} {}: not a directory (a part of the path is a file)", path.display())]
    NotADirectory {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
    },
    /// A file the torrent's data should be in is missing or shorter than the torrent says.
    #[error("cannot read {}: file missing or shorter than the torrent says", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// Any other I/O error, with the system's words for it.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// A block outside its piece, or data of the wrong length (a bug in the caller).
    #[error(
        "block {}+{} of piece {} does not fit the torrent: {reason}",
        block.begin, block.length, block.piece
    )]
    InvalidBlock {
        /// The block.
        block: BlockRef,
        /// What is wrong with it.
        reason: BlockError,
    },
    /// Data of another length than the block's (a bug in the caller).
    #[error(
        "block {}+{} of piece {} was given {len} bytes of data",
        block.begin, block.length, block.piece
    )]
    DataLength {
        /// The block.
        block: BlockRef,
        /// The length of the data given.
        len: usize,
    },
    /// A blocking disk task did not finish (the runtime is shutting down, or a bug).
    #[error("disk task failed: {0}")]
    TaskFailed(String),
    /// The number of piece hashes does not match the layout (a bug in the caller).
    #[error("the torrent has {expected} pieces but {found} piece hashes were given")]
    PieceHashes {
        /// The layout's piece count.
        expected: u32,
        /// The number of hashes given.
        found: usize,
    },
}

impl StorageError {
    /// Classifies an I/O error on `path` by its cause.
    pub fn from_io(action: &'static str, path: &Path, error: io::Error) -> StorageError {
        let path = path.to_path_buf();
        // std maps ENOSPC to StorageFull, EDQUOT to QuotaExceeded, EACCES and EPERM to
        // PermissionDenied, EROFS to ReadOnlyFilesystem and ENOTDIR to NotADirectory.
        match error.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                StorageError::DiskFull { action, path }
            }
            io::ErrorKind::PermissionDenied => StorageError::PermissionDenied { action, path },
            io::ErrorKind::ReadOnlyFilesystem => StorageError::ReadOnly { action, path },
            io::ErrorKind::NotADirectory => StorageError::NotADirectory { action, path },
            _ => StorageError::Io {
                action,
                path,
                error,
            },
        }
    }

    /// The path the error is about, if it is about one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            StorageError::DiskFull { path, .. }
            | StorageError::PermissionDenied { path, .. }
            | StorageError::ReadOnly { path, .. }
            | StorageError::NotADirectory { path, .. }
            | StorageError::Missing { path }
            | StorageError::Io { path, .. } => Some(path),
            StorageError::InvalidBlock { .. }
            | StorageError::DataLength { .. }
            | StorageError::PieceHashes { .. }
            | StorageError::TaskFailed(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_one_line_naming_the_path() {
        let path = Path::new("/downloads/some torrent/file.bin");
        let cases = [
            (28, "disk full"),         // ENOSPC
            (122, "disk full"),        // EDQUOT
            (13, "permission denied"), // EACCES
            (1, "permission denied"),  // EPERM
            (30, "read-only file system"),
            (20, "not a directory (a part of the path is a file)"),
            (5, "Input/output error (os error 5)"),
        ];
        for (code, cause) in cases {
            let error = StorageError::from_io("write", path, io::Error::from_raw_os_error(code));
            let expected = format!("cannot write {}: {cause}", path.display());
            assert_eq!(error.to_string(), expected, "errno {code}");
            assert_eq!(error.path(), Some(path));
        }
    }
}
