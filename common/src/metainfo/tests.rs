//! Hand-built torrents: every field and every error.

use sha1::{Digest, Sha1};

use super::*;

/// Enough piece hashes for any test here; slices of it are `'static`.
pub(super) static HASHES: [u8; 20 * 16] = [0xAB; 20 * 16];

pub(super) fn hashes(count: usize) -> &'static [u8] {
    &HASHES[..20 * count]
}

/// A single-file info dict: `a.txt`, 100 bytes, 16 KiB pieces.
pub(super) fn single_info() -> Dict<'static> {
    Dict::new()
        .with(b"name", Value::Bytes(b"a.txt"))
        .with(b"piece length", Value::Int(16384))
        .with(b"length", Value::Int(100))
        .with(b"pieces", Value::Bytes(hashes(1)))
}

pub(super) fn file(length: i64, path: &[&'static str]) -> Value<'static> {
    let path = path.iter().map(|c| Value::Bytes(c.as_bytes())).collect();
    Value::Dict(
        Dict::new()
            .with(b"length", Value::Int(length))
            .with(b"path", Value::List(path)),
    )
}

/// A multi-file info dict with these files and 10-byte pieces.
pub(super) fn multi_info(files: Vec<Value<'static>>, pieces: usize) -> Dict<'static> {
    Dict::new()
        .with(b"name", Value::Bytes(b"root"))
        .with(b"piece length", Value::Int(10))
        .with(b"files", Value::List(files))
        .with(b"pieces", Value::Bytes(hashes(pieces)))
}

fn wrap(info: Dict<'_>) -> Vec<u8> {
    Value::Dict(Dict::new().with(b"info", Value::Dict(info))).to_bytes()
}

pub(super) fn parse_info(info: Dict<'_>) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes(&wrap(info))
}

fn parse_root(root: Dict<'_>) -> Metainfo {
    let root = root.with(b"info", Value::Dict(single_info()));
    Metainfo::from_bytes(&Value::Dict(root).to_bytes()).unwrap()
}

#[test]
fn single_file_fields() {
    let m = parse_info(single_info()).unwrap();
    assert_eq!(m.info.name, "a.txt");
    assert_eq!(m.info.piece_length, 16384);
    assert_eq!(m.info.pieces, vec![[0xAB; 20]]);
    assert!(!m.info.multi_file);
    assert!(!m.info.private);
    assert_eq!(
        m.info.files,
        vec![FileEntry {
            path: vec!["a.txt".into()],
            length: 100,
            offset: 0,
            attr: FileAttr::default(),
            symlink_path: None,
        }]
    );
    assert_eq!(m.info.total_length(), 100);
    assert_eq!(m.info.piece_count(), 1);
    assert_eq!(m.info.piece_size(0), Some(100));
    assert_eq!(m.info.piece_size(1), None);
    assert_eq!(m.version(), MetaVersion::V1);
    assert_eq!(m.info_hash_v2, None);
    assert_eq!(m.announce, None);
    assert!(m.trackers().is_empty());
}

#[test]
fn info_hash_is_over_the_raw_bytes_not_a_re_encoding() {
    // Keys out of order and an unknown key: a re-encoding would sort them.
    let raw_info: &[u8] = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:\
aaaaaaaaaaaaaaaaaaaa1:zi1e1:ai0ee";
    let mut torrent = b"d8:announce3:url4:info".to_vec();
    torrent.extend_from_slice(raw_info);
    torrent.push(b'e');
    let m = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(m.raw_info(), raw_info);
    let expected: [u8; 20] = Sha1::digest(raw_info).into();
    assert_eq!(m.info_hash.as_bytes(), &expected);
    // Known answer, computed independently with Python's hashlib.
    assert_eq!(
        m.info_hash.to_hex(),
        "c794c5bf896ba3fe6ab76888a22471832f9c52fc"
    );
    assert_ne!(bencode::decode(raw_info).unwrap().to_bytes(), raw_info);
    assert_eq!(Info::from_bytes(raw_info).unwrap(), m.info);
}

#[test]
fn multi_file_offsets_and_piece_sizes() {
    let info = multi_info(
        vec![file(7, &["a"]), file(0, &["e"]), file(18, &["d", "b"])],
        3,
    );
    let m = parse_info(info).unwrap();
    assert!(m.info.multi_file);
    assert_eq!(m.info.name, "root");
    let summary: Vec<_> = m
        .info
        .files
        .iter()
        .map(|f| (f.path.join("/"), f.length, f.offset))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a".to_owned(), 7, 0),
            ("e".to_owned(), 0, 7),
            ("d/b".to_owned(), 18, 7)
        ]
    );
    assert_eq!(m.info.total_length(), 25);
    assert_eq!(
        (0..4).map(|i| m.info.piece_size(i)).collect::<Vec<_>>(),
        vec![Some(10), Some(10), Some(5), None]
    );
}

#[test]
fn trackers_tiers_and_fallback() {
    let tier = |urls: &[&'static str]| {
        Value::List(urls.iter().map(|u| Value::Bytes(u.as_bytes())).collect())
    };
    let m = parse_root(
        Dict::new()
            .with(b"announce", Value::Bytes(b"http://a/announce"))
            .with(
                b"announce-list",
                Value::List(vec![
                    tier(&["http://b", " udp://c:1 "]),
                    tier(&[]),
                    Value::List(vec![Value::Int(3), Value::Bytes(b"")]),
                    Value::Int(1),
                    tier(&["http://d"]),
                ]),
            ),
    );
    assert_eq!(m.announce.as_deref(), Some("http://a/announce"));
    let expected = vec![vec!["http://b", "udp://c:1"], vec!["http://d"]];
    assert_eq!(m.announce_list, expected);
    assert_eq!(m.trackers(), expected);

    let m = parse_root(Dict::new().with(b"announce", Value::Bytes(b"http://a")));
    assert_eq!(m.trackers(), vec![vec!["http://a".to_owned()]]);
    let m = parse_root(Dict::new().with(b"announce-list", Value::Bytes(b"http://a")));
    assert!(m.announce_list.is_empty());
}

#[test]
fn url_list_string_or_list() {
    let m = parse_root(Dict::new().with(b"url-list", Value::Bytes(b"http://seed/")));
    assert_eq!(m.url_list, vec!["http://seed/"]);
    let m = parse_root(Dict::new().with(
        b"url-list",
        Value::List(vec![
            Value::Bytes(b"http://a/"),
            Value::Int(1),
            Value::Bytes(b""),
            Value::Bytes(b"http://b/"),
        ]),
    ));
    assert_eq!(m.url_list, vec!["http://a/", "http://b/"]);
    let m = parse_root(Dict::new().with(b"url-list", Value::Bytes(b"")));
    assert!(m.url_list.is_empty());
}

#[test]
fn descriptive_fields_and_their_wrong_types() {
    let m = parse_root(
        Dict::new()
            .with(b"comment", Value::Bytes(b"hello"))
            .with(b"created by", Value::Bytes(b"mktorrent 1.1"))
            .with(b"creation date", Value::Int(1_700_000_000))
            .with(b"unknown key", Value::List(vec![])),
    );
    assert_eq!(m.comment.as_deref(), Some("hello"));
    assert_eq!(m.created_by.as_deref(), Some("mktorrent 1.1"));
    assert_eq!(m.creation_date, Some(1_700_000_000));

    let m = parse_root(
        Dict::new()
            .with(b"comment", Value::Int(1))
            .with(b"created by", Value::List(vec![]))
            .with(b"creation date", Value::Bytes(b"today"))
            .with(b"announce", Value::Int(1)),
    );
    assert_eq!(
        (m.comment, m.created_by, m.creation_date, m.announce),
        (None, None, None, None)
    );
    let m = parse_root(Dict::new().with(b"comment", Value::Bytes(b"caf\xe9")));
    assert_eq!(m.comment.as_deref(), Some("caf\u{fffd}"));
}

#[test]
fn private_flag() {
    for (value, expected) in [(1, true), (0, false), (2, true)] {
        let m = parse_info(single_info().with(b"private", Value::Int(value))).unwrap();
        assert_eq!(m.info.private, expected);
    }
    assert_eq!(
        parse_info(single_info().with(b"private", Value::Bytes(b"1"))),
        Err(MetainfoError::WrongType {
            field: "private",
            expected: "integer"
        })
    );
}

#[test]
fn bep47_attributes_and_pad_files() {
    let with = |length: i64, path: &'static str, attr: &'static [u8]| {
        let Value::Dict(d) = file(length, &[path]) else {
            unreachable!()
        };
        Value::Dict(d.with(b"attr", Value::Bytes(attr)))
    };
    let link = {
        let Value::Dict(d) = with(0, "link", b"l") else {
            unreachable!()
        };
        Value::Dict(d.with(
            b"symlink path",
            Value::List(vec![Value::Bytes(b"d"), Value::Bytes(b"x")]),
        ))
    };
    let files = vec![
        with(5, "x", b"xh"),
        with(5, "pad", b"p"),
        link,
        file(5, &["_____padding_file_0"]),
        with(5, "q", b"?z"),
    ];
    let m = parse_info(multi_info(files, 2)).unwrap();
    let attrs: Vec<_> = m.info.files.iter().map(|f| f.attr).collect();
    let attr = |pad, executable, hidden, symlink| FileAttr {
        pad,
        executable,
        hidden,
        symlink,
    };
    assert_eq!(
        attrs,
        vec![
            attr(false, true, true, false),
            attr(true, false, false, false),
            attr(false, false, false, true),
            attr(true, false, false, false),
            attr(false, false, false, false),
        ]
    );
    assert_eq!(
        m.info.files[2].symlink_path,
        Some(vec!["d".to_owned(), "x".to_owned()])
    );
    assert_eq!(attr(true, true, true, true).to_letters(), "lxhp");
    assert_eq!(
        FileAttr::from_letters(b"lxhp"),
        attr(true, true, true, true)
    );

    // Single-file torrents carry `attr` in the info dictionary itself.
    let m = parse_info(single_info().with(b"attr", Value::Bytes(b"x"))).unwrap();
    assert!(m.info.files[0].attr.executable);
}

#[test]
fn symlink_needs_a_safe_target() {
    let info = single_info().with(b"attr", Value::Bytes(b"l"));
    assert_eq!(
        parse_info(info.clone()),
        Err(MetainfoError::MissingField("symlink path"))
    );
    let escaping = info.with(
        b"symlink path",
        Value::List(vec![Value::Bytes(b".."), Value::Bytes(b"etc")]),
    );
    assert!(matches!(
        parse_info(escaping),
        Err(MetainfoError::UnsafePath { .. })
    ));
}

#[test]
fn utf8_variants_are_preferred_and_bad_utf8_is_lossy() {
    let info = single_info()
        .with(b"name", Value::Bytes(b"caf\xe9.txt"))
        .with(b"name.utf-8", Value::Bytes("café.txt".as_bytes()));
    assert_eq!(parse_info(info).unwrap().info.name, "café.txt");

    let info = single_info()
        .with(b"name", Value::Bytes(b"caf\xe9.txt"))
        .with(b"name.utf-8", Value::Bytes(b"\xff"));
    let m = parse_info(info).unwrap();
    assert_eq!(m.info.name, "caf\u{fffd}.txt");
    assert_eq!(m.info.files[0].path, vec!["caf\u{fffd}.txt".to_owned()]);

    let Value::Dict(entry) = file(25, &["plain"]) else {
        unreachable!()
    };
    let good = entry.clone().with(
        b"path.utf-8",
        Value::List(vec![Value::Bytes("ü".as_bytes())]),
    );
    let m = parse_info(multi_info(vec![Value::Dict(good)], 3)).unwrap();
    assert_eq!(m.info.files[0].path, vec!["ü".to_owned()]);
    let bad = entry.with(b"path.utf-8", Value::List(vec![Value::Bytes(b"\xff")]));
    let m = parse_info(multi_info(vec![Value::Dict(bad)], 3)).unwrap();
    assert_eq!(m.info.files[0].path, vec!["plain".to_owned()]);
}

mod errors;
