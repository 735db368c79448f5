//! Torrents made by `rill create`, read by transmission-show and libtorrent, and their piece
//! hashes verified by libtorrent against the data; mktorrent makes the same info-hash.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use rill_tests::{
    libtorrent_check, libtorrent_view, mktorrent, require_tool, run_rill, transmission_show,
};

use crate::support::{assert_one_line_error, rill_view, write_data};

/// A folder of files whose sizes straddle 16 and 32 KiB piece boundaries, nested, with an
/// empty file and a non-ASCII name. Returns the folder.
fn album(root: &Path) -> PathBuf {
    let dir = root.join("Album ü");
    write_data(&dir.join("cover.jpg"), 20_000, 1);
    write_data(&dir.join("disc 1/01 track.flac"), 90_001, 2);
    write_data(&dir.join("disc 1/02 track.flac"), 32_768, 3);
    write_data(&dir.join("disc 2/notes/readme.txt"), 1, 4);
    write_data(&dir.join("empty.txt"), 0, 5);
    write_data(&dir.join("zz.bin"), 65_537, 6);
    dir
}

/// Runs `rill create SOURCE -o OUT ARGS...` and asserts it succeeded.
fn rill_create(source: &Path, out: &Path, args: &[&str]) {
    let mut all: Vec<OsString> = vec!["create".into(), source.into(), "-o".into(), out.into()];
    all.extend(args.iter().map(OsString::from));
    let output = run_rill(&all);
    assert!(
        output.status.success(),
        "rill create {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// transmission-show and libtorrent read `torrent` as rill does, and libtorrent finds every
/// piece of the data under `save_path` intact.
fn assert_tools_agree(torrent: &Path, save_path: &Path) {
    let ours = rill_view(torrent);
    if require_tool("transmission-show") {
        let theirs = transmission_show(torrent).unwrap();
        let diff = theirs.diff(&ours);
        assert!(diff.is_empty(), "transmission-show:\n{}", diff.join("\n"));
    }
    if require_tool("libtorrent") {
        let theirs = libtorrent_view(torrent).unwrap();
        let diff = theirs.diff(&ours);
        assert!(diff.is_empty(), "libtorrent:\n{}", diff.join("\n"));
        let (ok, count) = libtorrent_check(torrent, save_path).unwrap();
        assert_eq!(count, ours.piece_count);
        assert_eq!(ok, count, "libtorrent verified {ok} of {count} pieces");
    }
}

#[test]
fn folder_with_tiers_web_seeds_and_comment() {
    let tmp = tempfile::tempdir().unwrap();
    let source = album(tmp.path());
    let out = tmp.path().join("album.torrent");
    rill_create(
        &source,
        &out,
        &[
            "--tracker",
            "http://127.0.0.1:6969/announce,udp://127.0.0.1:6969/announce",
            "--tracker",
            "http://127.0.0.2:6969/announce",
            "--webseed",
            "http://127.0.0.1:8080/files/",
            "--comment",
            "made by rill, read by others",
            "--quiet",
        ],
    );
    let view = rill_view(&out);
    assert_eq!(view.name, "Album ü");
    assert_eq!(view.files.len(), 6);
    assert_eq!(view.trackers.len(), 2);
    assert_eq!(view.trackers[0].len(), 2);
    assert_eq!(
        view.piece_length, 16_384,
        "auto piece size for a small folder"
    );
    assert!(!view.private);
    assert_tools_agree(&out, tmp.path());
}

#[test]
fn private_folder_with_pad_files_and_a_given_piece_size() {
    let tmp = tempfile::tempdir().unwrap();
    let source = album(tmp.path());
    let out = tmp.path().join("album.torrent");
    rill_create(
        &source,
        &out,
        &[
            "--private",
            "--pad-files",
            "--piece-size",
            "32K",
            "--tracker",
            "http://127.0.0.1:6969/announce/0123456789abcdef0123456789abcdef",
            "--quiet",
        ],
    );
    let view = rill_view(&out);
    assert!(view.private);
    assert_eq!(view.piece_length, 32_768);
    assert!(view.files.iter().any(|f| f.pad), "pad files expected");
    assert_tools_agree(&out, tmp.path());
}

#[test]
fn single_file() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("image.iso");
    write_data(&source, 1_000_003, 7);
    let out = tmp.path().join("image.torrent");
    rill_create(&source, &out, &["--no-date", "--quiet"]);
    let view = rill_view(&out);
    assert!(!view.multi_file);
    assert_eq!(view.files.len(), 1);
    assert_eq!(view.files[0].path, "image.iso");
    assert_tools_agree(&out, tmp.path());
}

#[test]
fn libtorrent_notices_data_that_does_not_match() {
    if !require_tool("libtorrent") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = album(tmp.path());
    let out = tmp.path().join("album.torrent");
    rill_create(&source, &out, &["--quiet"]);
    let track = source.join("disc 1/01 track.flac");
    let mut data = fs::read(&track).unwrap();
    data[40_000] ^= 0xff;
    fs::write(&track, data).unwrap();
    let (ok, count) = libtorrent_check(&out, tmp.path()).unwrap();
    assert_eq!(ok, count - 1, "one damaged piece");
}

#[test]
fn same_info_hash_as_mktorrent() {
    if !require_tool("mktorrent") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = album(tmp.path());
    let ours = tmp.path().join("ours.torrent");
    let theirs = tmp.path().join("theirs.torrent");
    rill_create(
        &source,
        &ours,
        &["--piece-size", "32K", "--private", "--quiet"],
    );
    mktorrent(
        &source,
        &theirs,
        &["-l", "15", "-p", "-a", "http://127.0.0.1/announce"],
    )
    .unwrap();
    assert_eq!(rill_view(&ours).info_hash, rill_view(&theirs).info_hash);
}

#[test]
fn create_never_overwrites_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("data.bin");
    write_data(&source, 50_000, 8);
    let out = tmp.path().join("data.torrent");
    fs::write(&out, b"precious").unwrap();
    let output = run_rill([
        "create".as_ref(),
        source.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_one_line_error(&output, "existing output");
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    rill_create(&source, &out, &["--force", "--quiet"]);
    assert_eq!(rill_view(&out).total_size, 50_000);
}

#[test]
fn create_refuses_bad_requests_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let file = tmp.path().join("f.bin");
    write_data(&file, 10, 9);
    let out = tmp.path().join("o.torrent");
    for (source, extra, what) in [
        (&empty, vec![], "empty folder"),
        (
            &file,
            vec!["--piece-size", "100000"],
            "piece size not a power of two",
        ),
        (&file, vec!["--piece-size", "8K"], "piece size under 16 KiB"),
        (&file, vec!["--name", "../escape"], "unsafe name"),
    ] {
        let mut args: Vec<OsString> = vec![
            "create".into(),
            source.into(),
            "-o".into(),
            out.clone().into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        let output = run_rill(&args);
        assert_one_line_error(&output, what);
        assert!(!out.exists(), "{what}: no output written");
    }
}
