//! Magnet links (BEP 9) with real clients on loopback: rill given only a magnet link and a
//! peer's address (`x.pe` or `--peer`) fetches the info dict over `ut_metadata` from a
//! libtorrent seed, then downloads the files byte for byte. Missing tools skip locally and
//! fail with CI set ([`require_tool`]). Every wait is bounded.

use rill_tests::{LibtorrentOptions, LibtorrentPeer, RillOptions, RillPeer, require_tool};

use crate::client::{DOWNLOAD, EXIT, FILES, Payload};

/// `magnet:?xt=urn:btih:HEX` plus `extra` (already encoded).
fn magnet_of(torrent: &std::path::Path, extra: &str) -> String {
    let info_hash = rill_tests::torrent_info_hash(torrent).unwrap();
    format!("magnet:?xt=urn:btih:{}{extra}", info_hash.to_hex())
}

#[test]
fn rill_fetches_metadata_from_a_libtorrent_seed_given_x_pe() {
    if !require_tool("libtorrent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = LibtorrentPeer::seed(
        &payload.torrent,
        &payload.seed_dir,
        LibtorrentOptions::default(),
    )
    .unwrap();
    let magnet = magnet_of(&payload.torrent, &format!("&x.pe={}", seed.addr()));
    let out = dir.path().join("rill");
    let options = RillOptions::default().args(["--no-dht"]);
    let mut rill = RillPeer::download(&[std::path::Path::new(&magnet)], &out, options).unwrap();
    let last = rill.wait_final(DOWNLOAD).unwrap();
    assert_eq!(last["have"], last["pieces"], "{last}");
    payload.assert_copied(&out, &FILES);
    assert!(rill.wait_exit(EXIT).unwrap().success());
}

#[test]
fn rill_fetches_metadata_from_a_libtorrent_seed_given_peer() {
    if !require_tool("libtorrent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = LibtorrentPeer::seed(
        &payload.torrent,
        &payload.seed_dir,
        LibtorrentOptions::default(),
    )
    .unwrap();
    let magnet = magnet_of(&payload.torrent, "&dn=files");
    let out = dir.path().join("rill");
    let options = RillOptions::default().peer(seed.addr()).args(["--no-dht"]);
    let mut rill = RillPeer::download(&[std::path::Path::new(&magnet)], &out, options).unwrap();
    let last = rill.wait_final(DOWNLOAD).unwrap();
    assert_eq!(last["have"], last["pieces"], "{last}");
    payload.assert_copied(&out, &FILES);
    assert!(rill.wait_exit(EXIT).unwrap().success());
}

#[test]
fn a_magnet_with_no_way_to_find_peers_is_one_line() {
    let output = rill_tests::run_rill([
        "download",
        "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
        "--quiet",
        "--port",
        "0",
        "--no-dht",
    ]);
    crate::support::assert_one_line_error(&output, "rill download MAGNET --no-dht");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("names no trackers"),
        "{output:?}"
    );
}
