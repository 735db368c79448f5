//! A bounded cache of open file handles, shared by the threads doing a torrent's I/O.
//!
//! Invariants:
//! - at most `capacity` handles stay cached; past it the least recently used one is dropped
//!   from the cache (a thread still using it keeps it open through its `Arc`);
//! - the lock is held only to look up or insert, never across a system call, so reads and
//!   writes on different files (and on the same file: positioned I/O needs no shared
//!   cursor) run in parallel;
//! - a cached read-only handle is replaced by a writable one when a write needs it, never
//!   the other way.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, PoisonError};

/// How many open files a torrent keeps by default.
pub const DEFAULT_CAPACITY: usize = 64;

struct Entry {
    file: Arc<File>,
    writable: bool,
    last_used: u64,
}

struct Inner {
    entries: HashMap<usize, Entry>,
    tick: u64,
}

/// Open files by file index, least recently used evicted first.
pub struct Handles {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Handles {
    /// An empty cache holding at most `capacity` files (at least one).
    pub fn new(capacity: usize) -> Handles {
        Handles {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                tick: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the map inconsistent: every update is one insert
        // or remove.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached handle of `file`, if there is one good enough (writable when asked).
    pub fn get(&self, file: usize, writable: bool) -> Option<Arc<File>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.entries.get_mut(&file)?;
        if writable && !entry.writable {
            return None;
        }
        entry.last_used = tick;
        Some(Arc::clone(&entry.file))
    }

    /// Caches a freshly opened handle and returns the one to use: an equally good handle
    /// another thread cached meanwhile wins, so all threads share one.
    pub fn insert(&self, file: usize, handle: File, writable: bool) -> Arc<File> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(entry) = inner.entries.get_mut(&file)
            && (entry.writable || !writable)
        {
            entry.last_used = tick;
            return Arc::clone(&entry.file);
        }
        let handle = Arc::new(handle);
        inner.entries.insert(
            file,
            Entry {
                file: Arc::clone(&handle),
                writable,
                last_used: tick,
            },
        );
        if inner.entries.len() > self.capacity {
            // O(capacity), fine for tens of files; opening a file costs far more.
            let oldest = inner
                .entries
                .iter()
                .filter(|(index, _)| **index != file)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(index, _)| *index);
            if let Some(oldest) = oldest {
                inner.entries.remove(&oldest);
            }
        }
        handle
    }

    /// Number of cached handles.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file() -> File {
        tempfile::tempfile().unwrap()
    }

    #[test]
    fn evicts_least_recently_used() {
        let handles = Handles::new(2);
        handles.insert(0, temp_file(), false);
        handles.insert(1, temp_file(), false);
        assert!(handles.get(0, false).is_some());
        handles.insert(2, temp_file(), false);
        assert_eq!(handles.len(), 2);
        assert!(handles.get(1, false).is_none(), "1 was least recently used");
        assert!(handles.get(0, false).is_some());
        assert!(handles.get(2, false).is_some());
    }

    #[test]
    fn read_only_handle_is_upgraded_never_downgraded() {
        let handles = Handles::new(4);
        let read = handles.insert(0, temp_file(), false);
        assert!(handles.get(0, true).is_none());
        let write = handles.insert(0, temp_file(), true);
        assert!(!Arc::ptr_eq(&read, &write));
        let again = handles.insert(0, temp_file(), false);
        assert!(Arc::ptr_eq(&again, &write), "the writable handle is kept");
        assert!(Arc::ptr_eq(&handles.get(0, false).unwrap(), &write));
    }
}
