//! `Metainfo::from_bytes` and `Info::from_bytes` on arbitrary bytes.
//!
//! Checks, for every input that parses:
//! - the info-hash is the SHA-1 of `raw_info()` (a v2 hash only for hybrids), and `raw_info()` alone parses with
//!   `Info::from_bytes` to the same `Info`;
//! - the invariants `metainfo::info` documents: piece length within bounds, one hash per
//!   piece, offsets that add up, a positive total, safe and distinct paths;
//! - tracker URLs and web seeds are non-empty and trimmed.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use rill_common::InfoHash;
use rill_common::metainfo::{Info, MAX_PIECE_LENGTH, MetaVersion, Metainfo, path};

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = Metainfo::from_bytes(data) {
        assert_eq!(meta.info_hash, InfoHash::of_info(meta.raw_info()));
        let hybrid = meta.version() == MetaVersion::Hybrid;
        assert_eq!(meta.info_hash_v2.is_some(), hybrid);
        let alone = Info::from_bytes(meta.raw_info()).expect("raw_info parses on its own");
        assert_eq!(alone, meta.info);
        check_info(&meta.info);
        let urls = meta
            .trackers()
            .into_iter()
            .flatten()
            .chain(meta.url_list.iter().cloned());
        for url in urls {
            assert!(!url.is_empty() && url.trim() == url, "bad URL {url:?}");
        }
        assert!(meta.announce_list.iter().all(|tier| !tier.is_empty()));
    }
    if let Ok(info) = Info::from_bytes(data) {
        check_info(&info);
    }
});

fn check_info(info: &Info) {
    assert!((1..=MAX_PIECE_LENGTH).contains(&info.piece_length));
    assert!(!info.files.is_empty());
    assert_eq!(path::component_problem(&info.name), None);
    if !info.multi_file {
        assert_eq!(info.files.len(), 1);
        assert_eq!(info.files[0].path, std::slice::from_ref(&info.name));
    }

    let mut offset = 0u64;
    for file in &info.files {
        assert_eq!(file.offset, offset);
        offset = offset.checked_add(file.length).expect("total fits in u64");
        assert_eq!(path::path_problem(&file.path), None, "{:?}", file.path);
        if let Some(target) = &file.symlink_path {
            assert!(file.attr.symlink);
            assert_eq!(path::path_problem(target), None, "{target:?}");
        }
    }
    let total = info.total_length();
    assert_eq!(total, offset);
    assert!(total > 0);

    let piece_length = u64::from(info.piece_length);
    let count = u32::try_from(info.piece_count()).expect("piece count fits in u32");
    assert_eq!(u64::from(count), total.div_ceil(piece_length));
    let last = count.checked_sub(1).expect("at least one piece");
    let last_size = info.piece_size(last).expect("the last piece has a size");
    assert!(last_size > 0);
    assert_eq!(u64::from(last) * piece_length + u64::from(last_size), total);
    if let Some(before) = last.checked_sub(1) {
        assert_eq!(info.piece_size(before), Some(info.piece_length));
    }
    assert_eq!(info.piece_size(count), None);

    // No two non-pad files at one path, and no non-pad file that is another's folder.
    let real: Vec<&[String]> = info
        .files
        .iter()
        .filter(|f| !f.attr.pad)
        .map(|f| f.path.as_slice())
        .collect();
    let paths: HashSet<&[String]> = real.iter().copied().collect();
    assert_eq!(paths.len(), real.len(), "two files share a path");
    for file in &real {
        for depth in 1..file.len() {
            let folder = file.get(..depth).expect("depth is within the path");
            assert!(!paths.contains(folder), "{folder:?} is a file and a folder");
        }
    }
}
