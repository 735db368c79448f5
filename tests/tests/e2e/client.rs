//! The `rill` client end to end on loopback: `rill seed` and several `rill download`s, with
//! rill-tracker in process ([`TestTracker`]) or with `--peer` and no tracker, on a multi-file
//! torrent made by `rill create`, every file compared byte for byte. Also the one-line errors
//! of `rill download` and `rill seed`.
//!
//! Every wait is bounded ([`DOWNLOAD`]); nothing sleeps.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rill_tests::{RillOptions, RillPeer, TestTracker, http_scrape, run_rill, torrent_info_hash};
use rill_tracker::Config;

use crate::support::{assert_one_line_error, write_data};

/// Bound on one download of the test payload between rill peers.
pub const DOWNLOAD: Duration = Duration::from_secs(120);

/// Bound on rill exiting by itself after its last progress line (it announces `stopped`
/// first, for a few seconds at most).
pub const EXIT: Duration = Duration::from_secs(30);

/// The files of the test torrent, sizes off piece boundaries, one empty.
pub const FILES: [(&str, usize); 5] = [
    ("a.bin", 1_500_000),
    ("sub/b.bin", 700_001),
    ("sub/deeper/c.bin", 1_048_576),
    ("empty.txt", 0),
    ("z.txt", 17),
];

/// A torrent and its data: `seed_dir` holds the folder `NAME/` the torrent describes.
pub struct Payload {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// The folder holding `NAME/`.
    pub seed_dir: PathBuf,
    /// The torrent's name (its folder).
    pub name: String,
}

impl Payload {
    /// A libtorrent seed of this payload (waits until it serves; panics if it cannot start).
    pub fn libtorrent_seed(
        &self,
        options: rill_tests::LibtorrentOptions,
    ) -> rill_tests::LibtorrentPeer {
        rill_tests::LibtorrentPeer::seed(&self.torrent, &self.seed_dir, options)
            .expect("start a libtorrent seed")
    }

    /// Writes the data under `root/seed/payload` and `rill create`s `root/payload.torrent`
    /// with 64 KiB pieces, announcing to `tracker` if given.
    pub fn new(root: &Path, tracker: Option<&str>) -> Self {
        Self::with_files(root, tracker, &FILES)
    }

    /// Like [`Payload::new`] with other files.
    pub fn with_files(root: &Path, tracker: Option<&str>, files: &[(&str, usize)]) -> Self {
        Self::named(root, tracker, "payload", files)
    }

    /// Like [`Payload::with_files`], the torrent named `name`.
    pub fn named(root: &Path, tracker: Option<&str>, name: &str, files: &[(&str, usize)]) -> Self {
        let seed_dir = root.join("seed");
        let folder = seed_dir.join(name);
        for (seed, (name, len)) in (1u64..).zip(files) {
            write_data(&folder.join(name), *len, seed);
        }
        let torrent = root.join(format!("{name}.torrent"));
        let mut args: Vec<String> = vec![
            "create".into(),
            folder.display().to_string(),
            "-o".into(),
            torrent.display().to_string(),
            "--piece-size".into(),
            "64K".into(),
            "--quiet".into(),
        ];
        if let Some(url) = tracker {
            args.extend(["--tracker".into(), url.into()]);
        }
        let output = run_rill(&args);
        assert!(
            output.status.success(),
            "rill create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Payload {
            torrent,
            seed_dir,
            name: name.to_owned(),
        }
    }

    /// The torrent's info-hash.
    pub fn info_hash(&self) -> rill_common::InfoHash {
        rill_tests::torrent_info_hash(&self.torrent).expect("read the payload's torrent")
    }

    /// Runs `rill download SOURCE -o out` with `options` and checks that it ends with every
    /// piece within `timeout`, every file byte for byte, and exit status 0.
    pub fn assert_rill_downloads(
        &self,
        source: &Path,
        out: &Path,
        options: RillOptions,
        timeout: Duration,
    ) {
        let mut rill = RillPeer::download(&[source], out, options).unwrap();
        let last = rill.wait_final(timeout).unwrap();
        assert_eq!(last["have"], last["pieces"], "{last}");
        self.assert_copied(out, &FILES);
        assert!(rill.wait_exit(EXIT).unwrap().success());
    }

    /// Like [`Payload::assert_copied`], for another client's download: libtorrent 2.0 reports
    /// a torrent finished once every piece hashed, which it may do from its store buffer
    /// before the last writes reach the files, so a mismatch is re-read for a bounded time.
    /// (rill's own downloads are checked at once: its last line comes after a sync.)
    pub fn assert_copied_eventually(&self, dir: &Path, files: &[(&str, usize)]) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for (name, len) in files {
            let ours = fs::read(self.seed_dir.join(&self.name).join(name)).unwrap();
            loop {
                let theirs = fs::read(dir.join(&self.name).join(name)).unwrap_or_default();
                if theirs.len() == *len && theirs == ours {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{name} in {}: contents differ",
                    dir.display()
                );
                // The wait is for another process's disk writes.
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
    }

    /// Asserts that `dir/NAME` holds exactly the seed's files, byte for byte.
    pub fn assert_copied(&self, dir: &Path, files: &[(&str, usize)]) {
        for (name, len) in files {
            let ours = fs::read(self.seed_dir.join(&self.name).join(name)).unwrap();
            let theirs = fs::read(dir.join(&self.name).join(name))
                .unwrap_or_else(|err| panic!("{name} in {}: {err}", dir.display()));
            assert_eq!(theirs.len(), *len, "{name}: length");
            assert!(theirs == ours, "{name}: contents differ");
        }
    }
}

#[test]
fn one_rill_seed_and_three_rill_leechers_through_rill_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = TestTracker::start(Config::default());
    let payload = Payload::new(dir.path(), Some(&tracker.announce_url()));
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let mut leechers: Vec<(RillPeer, PathBuf)> = (0..3)
        .map(|n| {
            let out = dir.path().join(format!("leech{n}"));
            let peer =
                RillPeer::download(&[&payload.torrent], &out, RillOptions::default()).unwrap();
            (peer, out)
        })
        .collect();
    for (peer, out) in &mut leechers {
        let last = peer.wait_final(DOWNLOAD).unwrap();
        assert_eq!(last["have"], last["pieces"], "{last}");
        payload.assert_copied(out, &FILES);
    }
    for (mut peer, _) in leechers {
        let status = peer.wait_exit(EXIT).unwrap();
        assert!(status.success(), "a finished download exits 0: {status}");
    }
    // Each leecher announced `completed`, then `stopped` before it exited; the seed stays.
    let info_hash = torrent_info_hash(&payload.torrent).unwrap();
    let reply = http_scrape(&tracker.announce_url(), &[info_hash]).unwrap();
    let stats = reply.files.get(&info_hash).cloned().unwrap_or_default();
    assert_eq!(
        (stats.complete, stats.incomplete, stats.downloaded),
        (1, 0, 3),
        "{stats:?}"
    );
    drop(seed);
}

#[test]
fn download_from_a_peer_given_by_address_without_a_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let out = dir.path().join("leech");
    let options = RillOptions::default().peer(seed.addr());
    let mut leech = RillPeer::download(&[&payload.torrent], &out, options).unwrap();
    let last = leech.wait_final(DOWNLOAD).unwrap();
    assert_eq!(last["verified_this_run"], last["pieces"], "{last}");
    payload.assert_copied(&out, &FILES);
    assert!(leech.wait_exit(EXIT).unwrap().success());
}

#[test]
fn only_files_downloads_just_those_files() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let out = dir.path().join("leech");
    // Files in torrent order: a.bin, empty.txt, sub/b.bin, sub/deeper/c.bin, z.txt.
    let info = run_rill([
        "info".as_ref(),
        "--json".as_ref(),
        payload.torrent.as_os_str(),
    ]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let index = info["files"]
        .as_array()
        .unwrap()
        .iter()
        .position(|file| file["path"].as_str().is_some_and(|p| p.ends_with("c.bin")))
        .expect("c.bin is listed");
    let options = RillOptions::default()
        .peer(seed.addr())
        .args(["--only-files".to_owned(), index.to_string()]);
    let mut leech = RillPeer::download(&[&payload.torrent], &out, options).unwrap();
    let last = leech.wait_final(DOWNLOAD).unwrap();
    assert_eq!(last["left"], 0, "{last}");
    assert!(last["have"].as_u64() < last["pieces"].as_u64(), "{last}");
    payload.assert_copied(&out, &[("sub/deeper/c.bin", 1_048_576)]);
}

#[test]
fn seed_refuses_incomplete_data_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    write_data(&payload.seed_dir.join("payload/sub/b.bin"), 700_001, 99);
    let output = run_rill([
        "seed".as_ref(),
        payload.torrent.as_os_str(),
        "--data".as_ref(),
        payload.seed_dir.as_os_str(),
        "--port".as_ref(),
        "0".as_ref(),
        "--quiet".as_ref(),
    ]);
    assert_one_line_error(&output, "rill seed with damaged data");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("incomplete"),
        "{output:?}"
    );
}

#[test]
fn a_missing_torrent_file_is_one_line() {
    let output = run_rill([
        "download",
        "/nonexistent/x.torrent",
        "--quiet",
        "--port",
        "0",
    ]);
    assert_one_line_error(&output, "rill download of a missing file");
}

/// Serves `body` once over HTTP on 127.0.0.1 and returns the URL.
fn serve_once(body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            request.push(byte[0]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-bittorrent\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    });
    format!("http://{addr}/payload.torrent")
}

#[test]
fn download_a_torrent_given_by_http_url() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let url = serve_once(fs::read(&payload.torrent).unwrap());
    let out = dir.path().join("leech");
    let options = RillOptions::default().peer(seed.addr());
    let mut leech = RillPeer::download(&[Path::new(&url)], &out, options).unwrap();
    leech.wait_final(DOWNLOAD).unwrap();
    payload.assert_copied(&out, &FILES);
}

#[test]
fn download_from_a_peer_over_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let out = dir.path().join("leech");
    let v6 = std::net::SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), seed.port());
    let mut leech =
        RillPeer::download(&[&payload.torrent], &out, RillOptions::default().peer(v6)).unwrap();
    leech.wait_final(DOWNLOAD).unwrap();
    payload.assert_copied(&out, &FILES);
}

#[test]
fn two_torrents_download_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let first = Payload::named(&dir.path().join("one"), None, "first", &FILES);
    let second = Payload::named(&dir.path().join("two"), None, "second", &FILES[..2]);
    let seed_one = RillPeer::seed(&first.torrent, &first.seed_dir, RillOptions::default()).unwrap();
    let seed_two =
        RillPeer::seed(&second.torrent, &second.seed_dir, RillOptions::default()).unwrap();
    let out = dir.path().join("leech");
    let options = RillOptions::default()
        .peer(seed_one.addr())
        .peer(seed_two.addr());
    let mut leech = RillPeer::download(&[&first.torrent, &second.torrent], &out, options).unwrap();
    let mut done = std::collections::BTreeSet::new();
    while done.len() < 2 {
        let last = leech.wait_final(DOWNLOAD).unwrap();
        assert_eq!(last["have"], last["pieces"], "{last}");
        done.insert(last["name"].as_str().unwrap().to_owned());
    }
    first.assert_copied(&out, &FILES);
    second.assert_copied(&out, &FILES[..2]);
    assert!(leech.wait_exit(EXIT).unwrap().success());
}

#[test]
fn a_seed_with_a_ratio_stops_by_itself_once_reached() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let options = RillOptions::default().args(["--seed-ratio", "1"]);
    let mut seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, options).unwrap();
    let out = dir.path().join("leech");
    let options = RillOptions::default().peer(seed.addr());
    let mut leech = RillPeer::download(&[&payload.torrent], &out, options).unwrap();
    leech.wait_final(DOWNLOAD).unwrap();
    let last = seed.wait_final(DOWNLOAD).unwrap();
    assert!(
        last["uploaded"].as_u64() >= last["total_bytes"].as_u64(),
        "{last}"
    );
    assert!(seed.wait_exit(EXIT).unwrap().success());
}

#[test]
fn a_file_in_the_way_of_the_download_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let out = dir.path().join("leech");
    // `sub` must be a folder; a file there makes every write below it fail (ENOTDIR).
    fs::create_dir_all(out.join("payload")).unwrap();
    fs::write(out.join("payload/sub"), b"in the way").unwrap();
    let peer = seed.addr().to_string();
    let output = rill_tests::rill_command()
        .args(["download".as_ref(), payload.torrent.as_os_str()])
        .args(["-o".as_ref(), out.as_os_str()])
        .args(["--peer", &peer, "--port", "0", "--quiet"])
        .output()
        .unwrap();
    assert_one_line_error(&output, "rill download into a blocked folder");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sub"), "the line names the path: {stderr}");
}

#[test]
fn the_same_torrent_twice_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let output = run_rill([
        "download".as_ref(),
        payload.torrent.as_os_str(),
        payload.torrent.as_os_str(),
        "--port".as_ref(),
        "0".as_ref(),
        "--quiet".as_ref(),
    ]);
    assert_one_line_error(&output, "rill download of one torrent twice");
}

#[test]
fn output_that_is_a_file_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let output = run_rill([
        "download".as_ref(),
        payload.torrent.as_os_str(),
        "-o".as_ref(),
        payload.torrent.as_os_str(),
        "--port".as_ref(),
        "0".as_ref(),
        "--quiet".as_ref(),
    ]);
    assert_one_line_error(&output, "rill download -o FILE");
}

#[test]
fn a_config_file_with_a_typo_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let config = dir.path().join("rill.toml");
    fs::write(&config, "max-peer = 10\n").unwrap();
    let output = run_rill([
        "download".as_ref(),
        payload.torrent.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert_one_line_error(&output, "rill download with a bad config file");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max-peer"), "names the key: {stderr}");
}

#[test]
fn flags_win_over_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    // The file's port is taken by the seed: only `--port 0` (a flag, from RillOptions) lets
    // the download listen at all.
    let config = dir.path().join("rill.toml");
    fs::write(&config, format!("port = {}\nmax-peers = 5\n", seed.port())).unwrap();
    let out = dir.path().join("leech");
    let options = RillOptions::default()
        .peer(seed.addr())
        .args(["--config".to_owned(), config.display().to_string()]);
    let mut leech = RillPeer::download(&[&payload.torrent], &out, options).unwrap();
    assert_ne!(leech.port(), seed.port());
    leech.wait_final(DOWNLOAD).unwrap();
    payload.assert_copied(&out, &FILES);
}
