//! Where a torrent's data lives on disk.
//!
//! - [`layout`]: pure mapping of pieces and blocks to file spans (BEP 3, BEP 47 pad files).
//! - [`fs`]: [`Storage`], blocking positioned I/O of blocks and SHA-1 checks of pieces,
//!   safe to share between threads; never truncates or deletes anything.
//! - [`disk`]: [`Disk`], the async handle the tokio shell uses: the same operations on
//!   blocking threads, with a bounded budget of queued writes.
//! - [`resume_file`]: the resume file on disk (atomic save, forgiving load) and the
//!   start-up decision of which pieces we have (trusted from the resume data, or hashed).
//! - [`error`]: [`StorageError`], one line naming the path and the cause.
//!
//! Files are opened through a bounded cache of handles (`handles`, 64 files by default).

pub mod disk;
pub mod error;
pub mod fs;
mod handles;
pub mod layout;
pub mod resume_file;

pub use disk::Disk;
pub use error::StorageError;
pub use fs::Storage;
