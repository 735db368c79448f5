//! Torrents created from generated data in a temporary folder, parsed back and checked
//! piece by piece with an independent SHA-1.

use std::sync::Mutex;

use sha1::{Digest, Sha1};

use super::*;
use crate::metainfo::Metainfo;

/// Deterministic, non-repeating-looking bytes.
fn data(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Writes files (relative path, length) under a fresh folder `content`.
fn folder(files: &[(&str, usize)]) -> (tempfile::TempDir, PathBuf, Vec<(String, Vec<u8>)>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    fs::create_dir(&root).unwrap();
    let mut written = Vec::new();
    for (i, (path, length)) in files.iter().enumerate() {
        let full = root.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        let bytes = data(i as u64 + 1, *length);
        fs::write(&full, &bytes).unwrap();
        written.push(((*path).to_owned(), bytes));
    }
    written.sort_by(|a, b| {
        let split = |p: &str| p.split('/').map(str::to_owned).collect::<Vec<_>>();
        split(&a.0).cmp(&split(&b.0))
    });
    (dir, root, written)
}

fn options(piece_length: u32) -> CreateOptions {
    CreateOptions {
        piece_length: Some(piece_length),
        creation_date: Some(1_700_000_000),
        ..CreateOptions::default()
    }
}

/// The torrent's data rebuilt from what was parsed: files read back, pads as zeros.
fn concatenated(m: &Metainfo, root: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for file in &m.info.files {
        if file.attr.pad {
            all.extend(std::iter::repeat_n(0u8, file.length as usize));
        } else if m.info.multi_file {
            all.extend(fs::read(root.join(file.path.join("/"))).unwrap());
        } else {
            all.extend(fs::read(root).unwrap());
        }
    }
    all
}

fn check_every_piece(m: &Metainfo, all: &[u8]) {
    let pieces: Vec<&[u8]> = all.chunks(m.info.piece_length as usize).collect();
    assert_eq!(pieces.len(), m.info.piece_count());
    for (index, piece) in pieces.iter().enumerate() {
        let expected: [u8; 20] = Sha1::digest(piece).into();
        assert_eq!(m.info.pieces[index], expected, "piece {index}");
        assert_eq!(m.info.piece_size(index as u32), Some(piece.len() as u32));
    }
}

#[test]
fn folder_round_trip_with_every_piece_checked() {
    let files = [
        ("b.bin", 40_000),
        ("a/z.bin", 16_384),
        ("a/y/deep.bin", 70_001),
        ("empty", 0),
        (".hidden", 123),
        ("a-b", 5),
    ];
    let (_dir, root, written) = folder(&files);
    let seen = Mutex::new(Vec::new());
    let bytes = create(&root, &options(16384), &|n, total| {
        seen.lock().unwrap().push((n, total))
    })
    .unwrap();
    let m = Metainfo::from_bytes(&bytes).unwrap();

    assert_eq!(m.info.name, "content");
    assert!(m.info.multi_file);
    let paths: Vec<String> = m.info.files.iter().map(|f| f.path.join("/")).collect();
    let expected: Vec<String> = written.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(paths, expected);
    assert_eq!(
        paths,
        [
            ".hidden",
            "a/y/deep.bin",
            "a/z.bin",
            "a-b",
            "b.bin",
            "empty"
        ]
    );
    let total: usize = files.iter().map(|f| f.1).sum();
    assert_eq!(m.info.total_length(), total as u64);
    let all = concatenated(&m, &root);
    assert_eq!(all, written.concat_bytes());
    check_every_piece(&m, &all);

    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), m.info.piece_count());
    assert!(seen.iter().all(|&(_, t)| t == total as u64));
    assert_eq!(seen.iter().map(|&(n, _)| n).sum::<u64>(), total as u64);

    // Canonical bencode: re-encoding the decoded value changes nothing.
    assert_eq!(crate::bencode::decode(&bytes).unwrap().to_bytes(), bytes);

    // Deterministic: the same folder and options give the same bytes.
    assert_eq!(create(&root, &options(16384), &|_, _| {}).unwrap(), bytes);
}

trait ConcatBytes {
    fn concat_bytes(&self) -> Vec<u8>;
}

impl ConcatBytes for Vec<(String, Vec<u8>)> {
    fn concat_bytes(&self) -> Vec<u8> {
        self.iter().flat_map(|(_, b)| b.iter().copied()).collect()
    }
}

#[test]
fn pad_files_align_every_file_to_a_piece() {
    let (_dir, root, _) = folder(&[("a", 20_000), ("b", 1), ("c", 0), ("d", 50_000)]);
    let opts = CreateOptions {
        pad_files: true,
        ..options(16384)
    };
    let m = Metainfo::from_bytes(&create(&root, &opts, &|_, _| {}).unwrap()).unwrap();
    let summary: Vec<(String, u64, bool)> = m
        .info
        .files
        .iter()
        .map(|f| (f.path.join("/"), f.length, f.attr.pad))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a".to_owned(), 20_000, false),
            (".pad/12768".to_owned(), 12_768, true),
            ("b".to_owned(), 1, false),
            ("c".to_owned(), 0, false),
            (".pad/16383".to_owned(), 16_383, true),
            ("d".to_owned(), 50_000, false),
        ]
    );
    for file in m.info.files.iter().filter(|f| !f.attr.pad && f.length > 0) {
        assert_eq!(file.offset % 16384, 0, "{:?}", file.path);
    }
    check_every_piece(&m, &concatenated(&m, &root));
}

#[test]
fn single_file_and_metadata_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("movie.mkv");
    fs::write(&path, data(9, 100_000)).unwrap();
    let opts = CreateOptions {
        private: true,
        trackers: vec![
            vec!["http://a/announce".into(), " ".into()],
            vec![],
            vec!["udp://b:80".into()],
        ],
        web_seeds: vec!["http://seed/".into()],
        comment: Some("a comment".into()),
        ..options(32768)
    };
    let m = Metainfo::from_bytes(&create(&path, &opts, &|_, _| {}).unwrap()).unwrap();
    assert_eq!(m.info.name, "movie.mkv");
    assert!(!m.info.multi_file);
    assert!(m.info.private);
    assert_eq!(m.info.files[0].path, vec!["movie.mkv".to_owned()]);
    assert_eq!(m.info.total_length(), 100_000);
    assert_eq!(m.info.piece_length, 32768);
    assert_eq!(m.announce.as_deref(), Some("http://a/announce"));
    assert_eq!(
        m.announce_list,
        vec![vec!["http://a/announce"], vec!["udp://b:80"]]
    );
    assert_eq!(m.url_list, vec!["http://seed/"]);
    assert_eq!(m.comment.as_deref(), Some("a comment"));
    assert_eq!(
        m.created_by,
        Some(format!("Rill {}", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(m.creation_date, Some(1_700_000_000));
    check_every_piece(&m, &concatenated(&m, &path));

    // One tracker: `announce` only. A given name and creator are used.
    let opts = CreateOptions {
        trackers: vec![vec!["http://a/announce".into()]],
        name: Some("renamed".into()),
        created_by: Some("test".into()),
        ..options(16384)
    };
    let bytes = create(&path, &opts, &|_, _| {}).unwrap();
    assert!(!bytes.windows(13).any(|w| w == b"announce-list"));
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(m.trackers(), vec![vec!["http://a/announce".to_owned()]]);
    assert_eq!(m.info.name, "renamed");
    assert_eq!(m.created_by.as_deref(), Some("test"));
    assert!(!m.info.private);
}

#[test]
fn auto_piece_length_rule() {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    let cases = [
        (0, 16 * KIB),
        (1, 16 * KIB),
        (32 * MIB, 16 * KIB),
        (32 * MIB + 1, 32 * KIB),
        (700 * MIB, 512 * KIB),
        (GIB, 512 * KIB),
        (4 * GIB, 2 * MIB),
        (32 * GIB, 16 * MIB),
        (u64::MAX, 16 * MIB),
    ];
    for (total, expected) in cases {
        assert_eq!(u64::from(auto_piece_length(total)), expected, "{total}");
    }
    let (_dir, root, _) = folder(&[("a", 100)]);
    let opts = CreateOptions::default();
    let m = Metainfo::from_bytes(&create(&root, &opts, &|_, _| {}).unwrap()).unwrap();
    assert_eq!(m.info.piece_length, 16384);
    assert_eq!(m.creation_date, None);
}

#[test]
fn refusals() {
    let (_dir, root, _) = folder(&[("a", 100)]);
    for bad in [0, 1000, 8192, 16385, 1 << 30] {
        assert!(
            matches!(
                create(&root, &options(bad), &|_, _| {}),
                Err(CreateError::BadPieceLength(n)) if n == bad
            ),
            "{bad}"
        );
    }
    let bad_name = CreateOptions {
        name: Some("..".into()),
        ..options(16384)
    };
    assert!(matches!(
        create(&root, &bad_name, &|_, _| {}),
        Err(CreateError::BadName { .. })
    ));

    let empty = tempfile::tempdir().unwrap();
    fs::create_dir(empty.path().join("sub")).unwrap();
    assert!(matches!(
        create(empty.path(), &options(16384), &|_, _| {}),
        Err(CreateError::NoFiles(_))
    ));
    fs::write(empty.path().join("sub/zero"), b"").unwrap();
    assert!(matches!(
        create(empty.path(), &options(16384), &|_, _| {}),
        Err(CreateError::Empty(_))
    ));
    let missing = empty.path().join("missing");
    let error = create(&missing, &options(16384), &|_, _| {}).unwrap_err();
    assert!(matches!(&error, CreateError::Io { path, .. } if *path == missing));
    assert!(error.to_string().contains("missing"));
}

#[cfg(unix)]
#[test]
fn symlinks_are_skipped_and_unsafe_names_refused() {
    let (_dir, root, _) = folder(&[("real", 10)]);
    std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
    std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
    let m = Metainfo::from_bytes(&create(&root, &options(16384), &|_, _| {}).unwrap()).unwrap();
    let paths: Vec<String> = m.info.files.iter().map(|f| f.path.join("/")).collect();
    assert_eq!(paths, ["real"]);

    fs::write(root.join("back\\slash"), b"x").unwrap();
    assert!(matches!(
        create(&root, &options(16384), &|_, _| {}),
        Err(CreateError::BadName {
            reason: "path separator inside a component",
            ..
        })
    ));
}

#[test]
fn a_file_that_shrinks_is_reported() {
    let (_dir, root, _) = folder(&[("a", 100)]);
    let entries = vec![Entry {
        path: vec!["a".into()],
        length: 200,
        offset: 0,
        source: Some(root.join("a")),
    }];
    assert!(matches!(
        hash_pieces(&entries, 16384, &|_, _| {}),
        Err(CreateError::FileChanged(path)) if path == root.join("a")
    ));
}

/// Linux file systems take any bytes as a name (macOS ones insist on UTF-8).
#[cfg(target_os = "linux")]
#[test]
fn non_utf8_names_are_refused() {
    let (_dir, root, _) = folder(&[("ok", 10)]);
    use std::os::unix::ffi::OsStrExt;
    let latin1 = root.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    fs::write(&latin1, b"x").unwrap();
    assert!(matches!(
        create(&root, &options(16384), &|_, _| {}),
        Err(CreateError::BadName {
            reason: "the name is not UTF-8",
            ..
        })
    ));
}
