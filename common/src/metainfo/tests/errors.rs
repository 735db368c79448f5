//! Every `MetainfoError`, from hand-built torrents.

use super::*;

#[test]
fn bencode_errors() {
    for bytes in [&b"d4:info"[..], b"", b"i1", b"d4:infod", b"5:abc"] {
        assert!(
            matches!(Metainfo::from_bytes(bytes), Err(MetainfoError::Bencode(_))),
            "{bytes:?}"
        );
    }
    let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
    assert_eq!(
        Metainfo::from_bytes(&deep),
        Err(MetainfoError::Bencode(DecodeError::TooDeep(64)))
    );
    assert!(matches!(
        Metainfo::from_bytes(b"d4:info999999999999:xe"),
        Err(MetainfoError::Bencode(DecodeError::StringTooLong { .. }))
    ));
}

#[test]
fn not_a_dictionary() {
    assert_eq!(
        Metainfo::from_bytes(b"le"),
        Err(MetainfoError::NotADictionary)
    );
    assert_eq!(Info::from_bytes(b"i1e"), Err(MetainfoError::NotADictionary));
    assert_eq!(
        Metainfo::from_bytes(b"d4:infoli1eee"),
        Err(MetainfoError::WrongType {
            field: "info",
            expected: "dictionary"
        })
    );
}

#[test]
fn missing_fields() {
    assert_eq!(
        Metainfo::from_bytes(b"d8:announce1:ae"),
        Err(MetainfoError::MissingField("info"))
    );
    let without = |key: &[u8], field| {
        let info: Dict<'_> = single_info()
            .iter()
            .filter(|(k, _)| *k != key)
            .fold(Dict::new(), |d, (k, v)| d.with(k, v.clone()));
        assert_eq!(
            parse_info(info),
            Err(MetainfoError::MissingField(field)),
            "{field}"
        );
    };
    without(b"name", "name");
    without(b"piece length", "piece length");
    without(b"pieces", "pieces");
    without(b"length", "length");
    let pathless = Value::Dict(Dict::new().with(b"length", Value::Int(5)));
    assert_eq!(
        parse_info(multi_info(vec![pathless], 1)),
        Err(MetainfoError::MissingField("path"))
    );
}

#[test]
fn wrong_types() {
    let cases: Vec<(Dict<'static>, &str, &str)> = vec![
        (single_info().with(b"name", Value::Int(1)), "name", "string"),
        (
            single_info().with(b"piece length", Value::Bytes(b"1")),
            "piece length",
            "integer",
        ),
        (
            single_info().with(b"pieces", Value::Int(1)),
            "pieces",
            "string",
        ),
        (
            single_info().with(b"length", Value::Bytes(b"1")),
            "length",
            "integer",
        ),
        (single_info().with(b"files", Value::Int(1)), "files", "list"),
        (
            single_info().with(b"files", Value::List(vec![Value::Int(1)])),
            "files",
            "list of dictionaries",
        ),
        (single_info().with(b"attr", Value::Int(1)), "attr", "string"),
        (
            single_info().with(b"meta version", Value::Bytes(b"2")),
            "meta version",
            "integer",
        ),
        (
            multi_info(
                vec![Value::Dict(
                    Dict::new()
                        .with(b"length", Value::Int(5))
                        .with(b"path", Value::Bytes(b"a")),
                )],
                1,
            ),
            "path",
            "list of strings",
        ),
        (
            multi_info(
                vec![Value::Dict(
                    Dict::new()
                        .with(b"length", Value::Int(5))
                        .with(b"path", Value::List(vec![Value::Int(1)])),
                )],
                1,
            ),
            "path",
            "list of strings",
        ),
    ];
    for (info, field, expected) in cases {
        assert_eq!(
            parse_info(info),
            Err(MetainfoError::WrongType { field, expected }),
            "{field}"
        );
    }
}

#[test]
fn piece_length_limits() {
    let with_length = |n: i64| parse_info(single_info().with(b"piece length", Value::Int(n)));
    assert_eq!(with_length(0), Err(MetainfoError::ZeroPieceLength));
    assert_eq!(
        with_length(-16384),
        Err(MetainfoError::NegativeLength(-16384))
    );
    assert_eq!(
        with_length(1 << 30),
        Err(MetainfoError::PieceLengthTooLarge(1 << 30))
    );
    assert_eq!(
        with_length(1 << 40),
        Err(MetainfoError::PieceLengthTooLarge(1 << 40))
    );
    assert!(with_length(i64::from(MAX_PIECE_LENGTH)).is_ok());
    // Not a power of two, not a multiple of 16 KiB: accepted, as real clients do.
    assert_eq!(with_length(1000).unwrap().info.piece_length, 1000);
}

#[test]
fn piece_hash_count() {
    assert_eq!(
        parse_info(single_info().with(b"pieces", Value::Bytes(&HASHES[..21]))),
        Err(MetainfoError::PiecesNotMultipleOf20(21))
    );
    assert_eq!(
        parse_info(single_info().with(b"pieces", Value::Bytes(hashes(2)))),
        Err(MetainfoError::PieceCountMismatch {
            expected: 1,
            actual: 2
        })
    );
    assert_eq!(
        parse_info(single_info().with(b"length", Value::Int(16385))),
        Err(MetainfoError::PieceCountMismatch {
            expected: 2,
            actual: 1
        })
    );
}

#[test]
fn negative_and_overflowing_lengths() {
    assert_eq!(
        parse_info(single_info().with(b"length", Value::Int(-1))),
        Err(MetainfoError::NegativeLength(-1))
    );
    assert_eq!(
        parse_info(multi_info(vec![file(-5, &["a"])], 1)),
        Err(MetainfoError::NegativeLength(-5))
    );
    let files = vec![
        file(i64::MAX, &["a"]),
        file(i64::MAX, &["b"]),
        file(2, &["c"]),
    ];
    assert_eq!(
        parse_info(multi_info(files, 1)),
        Err(MetainfoError::TotalLengthOverflow)
    );
}

#[test]
fn unsafe_paths() {
    let cases: [(&[&'static str], &str); 8] = [
        (&["..", "etc", "passwd"], "`.` or `..` path component"),
        (&["a", ".", "b"], "`.` or `..` path component"),
        (&["", "etc"], "empty path component"),
        (&["/etc/passwd"], "path separator inside a component"),
        (&["a\\..\\b"], "path separator inside a component"),
        (&["a\0b"], "NUL byte in path component"),
        (&["C:", "x"], "Windows drive prefix"),
        (&[], "empty path"),
    ];
    for (path, reason) in cases {
        let result = parse_info(multi_info(vec![file(25, path)], 3));
        assert_eq!(
            result,
            Err(MetainfoError::UnsafePath {
                path: path.join("/"),
                reason
            }),
            "{path:?}"
        );
    }
    let deep = vec![Value::Bytes(b"d"); 200];
    let entry = Dict::new()
        .with(b"length", Value::Int(25))
        .with(b"path", Value::List(deep));
    assert!(matches!(
        parse_info(multi_info(vec![Value::Dict(entry)], 3)),
        Err(MetainfoError::UnsafePath {
            reason: "path nested too deep",
            ..
        })
    ));
    // The single-file name and the multi-file root are checked too.
    for name in [&b".."[..], b"", b"a/b", b"/abs", b"D:"] {
        for info in [single_info(), multi_info(vec![file(25, &["a"])], 3)] {
            assert!(
                matches!(
                    parse_info(info.with(b"name", Value::Bytes(name))),
                    Err(MetainfoError::UnsafePath { .. })
                ),
                "{name:?}"
            );
        }
    }
    // A safe `name.utf-8` wins over an unsafe `name`... and an unsafe one is refused.
    let info = single_info()
        .with(b"name", Value::Bytes(b".."))
        .with(b"name.utf-8", Value::Bytes(b"ok"));
    assert_eq!(parse_info(info).unwrap().info.name, "ok");
    let info = single_info().with(b"name.utf-8", Value::Bytes(b".."));
    assert!(matches!(
        parse_info(info),
        Err(MetainfoError::UnsafePath { .. })
    ));
}

#[test]
fn duplicate_and_conflicting_paths() {
    let files = vec![file(5, &["a", "b"]), file(5, &["c"]), file(5, &["a", "b"])];
    assert_eq!(
        parse_info(multi_info(files, 2)),
        Err(MetainfoError::DuplicatePath("a/b".into()))
    );
    let files = vec![file(5, &["a", "b"]), file(5, &["a"])];
    assert_eq!(
        parse_info(multi_info(files, 1)),
        Err(MetainfoError::PathConflict {
            file: "a".into(),
            other: "a/b".into()
        })
    );
    // Look-alikes that are not prefixes are fine, and pad files may share names.
    let pad = |len| {
        let Value::Dict(d) = file(len, &[".pad", "5"]) else {
            unreachable!()
        };
        Value::Dict(d.with(b"attr", Value::Bytes(b"p")))
    };
    let files = vec![
        file(5, &["a", "b"]),
        pad(5),
        file(5, &["a", "bc"]),
        pad(5),
        file(5, &["ab"]),
    ];
    assert_eq!(
        parse_info(multi_info(files, 3)).unwrap().info.files.len(),
        5
    );
}

#[test]
fn v2_and_hybrid() {
    let file_tree = Value::Dict(Dict::new().with(b"a", Value::Dict(Dict::new())));
    let v2 = Dict::new()
        .with(b"name", Value::Bytes(b"x"))
        .with(b"piece length", Value::Int(16384))
        .with(b"meta version", Value::Int(2))
        .with(b"file tree", file_tree.clone());
    assert_eq!(parse_info(v2.clone()), Err(MetainfoError::V2Only));
    assert_eq!(
        MetainfoError::V2Only.to_string(),
        "v2-only torrents (BEP 52) are not supported yet"
    );
    // `file tree` without `meta version` and without v1 pieces: still v2-only.
    let no_version = Dict::new()
        .with(b"name", Value::Bytes(b"x"))
        .with(b"file tree", file_tree.clone());
    assert_eq!(parse_info(no_version), Err(MetainfoError::V2Only));

    let hybrid = single_info()
        .with(b"meta version", Value::Int(2))
        .with(b"file tree", file_tree);
    let bytes = Value::Dict(
        Dict::new()
            .with(b"info", Value::Dict(hybrid))
            .with(b"piece layers", Value::Dict(Dict::new())),
    )
    .to_bytes();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(m.version(), MetaVersion::Hybrid);
    let expected: [u8; 32] = Sha256::digest(m.raw_info()).into();
    assert_eq!(m.info_hash_v2, Some(expected));
    assert_eq!(m.info.name, "a.txt");

    let v1 = parse_info(single_info().with(b"meta version", Value::Int(1))).unwrap();
    assert_eq!(v1.version(), MetaVersion::V1);
    assert_eq!(
        parse_info(single_info().with(b"meta version", Value::Int(3))),
        Err(MetainfoError::UnsupportedMetaVersion(3))
    );
}

#[test]
fn empty_torrents() {
    assert_eq!(
        parse_info(multi_info(vec![], 0)),
        Err(MetainfoError::NoFiles)
    );
    assert_eq!(
        parse_info(multi_info(vec![file(0, &["a"]), file(0, &["b"])], 0)),
        Err(MetainfoError::EmptyTorrent)
    );
    assert_eq!(
        parse_info(
            single_info()
                .with(b"length", Value::Int(0))
                .with(b"pieces", Value::Bytes(b""))
        ),
        Err(MetainfoError::EmptyTorrent)
    );
}

#[test]
fn files_list_wins_over_length() {
    let info = multi_info(vec![file(25, &["a"])], 3).with(b"length", Value::Int(7));
    let m = parse_info(info).unwrap();
    assert!(m.info.multi_file);
    assert_eq!(m.info.total_length(), 25);
}

#[test]
fn too_many_files() {
    let entry = b"d6:lengthi0e4:pathl1:aee";
    let count = MAX_FILES + 1;
    let mut bytes = b"d4:infod5:filesl".to_vec();
    bytes.reserve(entry.len() * count + 64);
    for _ in 0..count {
        bytes.extend_from_slice(entry);
    }
    bytes.extend_from_slice(b"e4:name1:x12:piece lengthi1e6:pieces0:ee");
    assert_eq!(
        Metainfo::from_bytes(&bytes),
        Err(MetainfoError::TooManyFiles(count))
    );
}

#[test]
fn error_messages() {
    let cases = [
        (
            MetainfoError::MissingField("pieces"),
            "missing field `pieces`",
        ),
        (
            MetainfoError::WrongType {
                field: "length",
                expected: "integer",
            },
            "field `length` has the wrong type: expected integer",
        ),
        (
            MetainfoError::PieceCountMismatch {
                expected: 3,
                actual: 2,
            },
            "the files need 3 pieces but 2 piece hashes are given",
        ),
        (
            MetainfoError::UnsafePath {
                path: "../x".into(),
                reason: "`.` or `..` path component",
            },
            "unsafe path \"../x\": `.` or `..` path component",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
}
