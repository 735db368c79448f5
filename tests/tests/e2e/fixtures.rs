//! rill-common against the fixtures: what real tools recorded, and the malformed torrents.

use std::fs;

use rill_common::metainfo::{MetaVersion, Metainfo};
use rill_tests::{FileView, ToolView, malformed_fixtures, valid_fixtures};

/// rill-common's view of a parsed torrent, in the fixtures' shape.
fn view_of(meta: &Metainfo) -> ToolView {
    let info = &meta.info;
    ToolView {
        tool: "rill-common".into(),
        creator: meta.created_by.clone(),
        made_with: None,
        info_hash: Some(meta.info_hash.to_hex()),
        info_hash_v2: meta
            .info_hash_v2
            .map(|h| h.iter().map(|b| format!("{b:02x}")).collect()),
        name: info.name.clone(),
        piece_length: info.piece_length.into(),
        piece_count: info.piece_count() as u64,
        total_size: info.total_length(),
        private: info.private,
        multi_file: info.multi_file,
        files: info
            .files
            .iter()
            .map(|f| FileView {
                path: f.path.join("/"),
                length: f.length,
                pad: f.attr.pad,
            })
            .collect(),
        trackers: meta.trackers(),
        web_seeds: meta.url_list.clone(),
        comment: meta.comment.clone(),
        exact: true,
    }
}

#[test]
fn valid_fixtures_parse_as_their_tools_report() {
    let fixtures = valid_fixtures();
    assert!(fixtures.len() >= 13, "fixtures missing: {}", fixtures.len());
    for (path, expected) in fixtures {
        let bytes = fs::read(&path).unwrap();
        let meta =
            Metainfo::from_bytes(&bytes).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let diff = expected.diff(&view_of(&meta));
        assert!(diff.is_empty(), "{}:\n{}", path.display(), diff.join("\n"));
        let hybrid = expected.info_hash_v2.is_some();
        assert_eq!(
            meta.version() == MetaVersion::Hybrid,
            hybrid,
            "{}",
            path.display()
        );
        if hybrid {
            assert_eq!(
                view_of(&meta).info_hash_v2,
                expected.info_hash_v2,
                "{}",
                path.display()
            );
        }
        // The piece hashes and the raw info bytes survive: the info dict parses on its own
        // (as it arrives over BEP 9) to the same files.
        let info = rill_common::metainfo::Info::from_bytes(meta.raw_info()).unwrap();
        assert_eq!(info, meta.info, "{}", path.display());
    }
}

#[test]
fn malformed_fixtures_are_refused_with_the_expected_error() {
    let fixtures = malformed_fixtures();
    assert!(fixtures.len() >= 20, "fixtures missing: {}", fixtures.len());
    for (path, variant) in fixtures {
        let bytes = fs::read(&path).unwrap();
        match Metainfo::from_bytes(&bytes) {
            Ok(_) => panic!("{} parsed, expected {variant}", path.display()),
            Err(err) => {
                let debug = format!("{err:?}");
                assert!(
                    debug.starts_with(&variant),
                    "{}: expected {variant}, got {debug}",
                    path.display()
                );
                let text = err.to_string();
                assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
            }
        }
    }
}
