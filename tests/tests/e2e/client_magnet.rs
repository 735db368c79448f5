//! Magnet links (BEP 9) and the DHT in the client, with real clients on loopback:
//! - rill given only a magnet link and a peer's address (`x.pe` or `--peer`) fetches the
//!   info dict over `ut_metadata` from a libtorrent seed, then downloads the files;
//! - rill given only the magnet and one bootstrap node of a private loopback DHT (rill nodes
//!   in process, a libtorrent seed announced in it) finds the seed, fetches the metadata and
//!   downloads;
//! - a libtorrent leecher given only the magnet and rill's address fetches the metadata from
//!   a rill seed and downloads;
//! - a libtorrent leecher given only the magnet and the bootstrap node finds a rill seed
//!   (announced by rill) through the DHT and downloads;
//! - a private torrent (BEP 27) is never announced to the DHT, while a public one is;
//! - `rill info MAGNET --save`, `rill dht ping` and `rill dht get-peers`.
//!
//! Files are compared byte for byte. Missing tools skip locally and fail with CI set
//! ([`require_tool`]). Every wait is bounded.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rill::dht::{Dht, DhtConfig};
use rill_common::InfoHash;
use rill_tests::libtorrent::driver;
use rill_tests::tools::PYTHON;
use rill_tests::{
    LibtorrentOptions, LibtorrentPeer, RillOptions, RillPeer, loopback_address, require_tool,
};
use serde_json::Value;

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
    payload.assert_rill_downloads(std::path::Path::new(&magnet), &out, options, DOWNLOAD);
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
    payload.assert_rill_downloads(std::path::Path::new(&magnet), &out, options, DOWNLOAD);
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

/// Bound on any one wait on libtorrent or the DHT.
const WAIT: Duration = Duration::from_secs(60);
/// rill DHT nodes in process.
const DHT_NODES: usize = 6;

/// A libtorrent peer driven by `lt_magnet.py`.
struct LtMagnet {
    child: Child,
    events: mpsc::Receiver<Value>,
    addr: SocketAddr,
}

impl LtMagnet {
    fn start(args: &[String]) -> Self {
        let listen = loopback_address();
        let mut child = Command::new(PYTHON)
            .arg(driver("lt_magnet.py"))
            .arg("--listen")
            .arg(format!("{listen}:0"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start lt_magnet.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(event) => {
                        if tx.send(event).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("lt_magnet.py: {line}"),
                }
            }
        });
        let mut peer = LtMagnet {
            child,
            events,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let port = peer.wait_for("listening", |e| {
            (e["event"] == "listening").then(|| e["port"].as_u64().unwrap_or(0))
        });
        peer.addr = SocketAddr::V4(SocketAddrV4::new(listen, port as u16));
        peer
    }

    /// Waits (bounded by [`WAIT`]) for an event that `pick` maps to `Some`.
    fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    assert!(
                        event["event"] != "exit" && event["event"] != "error",
                        "lt_magnet.py ended while waiting for {what}: {event}"
                    );
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(_) => panic!("no {what} from libtorrent within {WAIT:?}"),
            }
        }
    }
}

impl Drop for LtMagnet {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private loopback DHT of rill nodes in process, each on its own 127.0.N.1, bootstrapped
/// off the first; the runtime's threads keep them running while the test blocks.
struct LoopbackDht {
    runtime: tokio::runtime::Runtime,
    nodes: Vec<Dht>,
}

impl LoopbackDht {
    fn start(first_net: u8) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let nodes = runtime.block_on(async {
            let config = |index: usize, bootstrap: Option<SocketAddr>| {
                let ip = Ipv4Addr::new(127, first_net + index as u8, 0, 1);
                let mut config = DhtConfig::new(SocketAddr::V4(SocketAddrV4::new(ip, 0)));
                config.bootstrap = bootstrap.iter().map(ToString::to_string).collect();
                config.node.query_timeout = Duration::from_secs(1);
                config
            };
            let first = Dht::start(config(0, None)).await.unwrap();
            let seed = first.local_addr();
            let mut nodes = vec![first];
            for index in 1..DHT_NODES {
                let node = Dht::start(config(index, Some(seed))).await.unwrap();
                tokio::time::timeout(WAIT, node.wait_bootstrapped())
                    .await
                    .expect("bootstrap within the bound")
                    .unwrap();
                nodes.push(node);
            }
            nodes
        });
        LoopbackDht { runtime, nodes }
    }

    fn bootstrap(&self) -> SocketAddr {
        self.nodes[0].local_addr()
    }

    /// Peers of `info_hash` a lookup from the last node finds.
    fn get_peers(&self, info_hash: InfoHash) -> Vec<SocketAddr> {
        let node = self.nodes.last().unwrap();
        self.runtime.block_on(async {
            tokio::time::timeout(WAIT, node.get_peers(info_hash))
                .await
                .expect("lookup within the bound")
                .unwrap()
        })
    }
}

#[test]
fn rill_downloads_a_magnet_found_through_a_loopback_dht() {
    if !require_tool("libtorrent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let dht = LoopbackDht::start(40);
    let bootstrap = dht.bootstrap().to_string();
    let mut seed = LtMagnet::start(&[
        "--seed".into(),
        payload.torrent.display().to_string(),
        "--save-path".into(),
        payload.seed_dir.display().to_string(),
        "--dht-bootstrap".into(),
        bootstrap.clone(),
    ]);
    seed.wait_for("the seed's check", |e| {
        (e["event"] == "finished").then_some(())
    });
    // The seed is announced once libtorrent has nodes: a bounded poll on the DHT.
    let info_hash = rill_tests::torrent_info_hash(&payload.torrent).unwrap();
    let mut attempts = 0;
    while !dht.get_peers(info_hash).contains(&seed.addr) {
        attempts += 1;
        assert!(attempts < 60, "libtorrent's seed never reached the DHT");
        std::thread::sleep(Duration::from_millis(500));
    }

    let magnet = magnet_of(&payload.torrent, "");
    let out = dir.path().join("rill");
    let options = RillOptions::default().args(["--dht-bootstrap", bootstrap.as_str()]);
    payload.assert_rill_downloads(std::path::Path::new(&magnet), &out, options, DOWNLOAD);
    assert!(
        out.join(".rill/dht.json").exists(),
        "the routing table is saved on exit"
    );
}

#[test]
fn libtorrent_fetches_metadata_from_a_rill_seed_given_a_magnet() {
    if !require_tool("libtorrent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let out = dir.path().join("libtorrent");
    std::fs::create_dir_all(&out).unwrap();
    let mut leech = LtMagnet::start(&[
        "--magnet".into(),
        magnet_of(&payload.torrent, ""),
        "--save-path".into(),
        out.display().to_string(),
        "--peer".into(),
        seed.addr().to_string(),
    ]);
    leech.wait_for("metadata", |e| (e["event"] == "metadata").then_some(()));
    leech.wait_for("the download", |e| (e["event"] == "finished").then_some(()));
    payload.assert_copied(&out, &FILES);
}

#[test]
fn a_private_torrent_never_touches_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let public = Payload::named(&dir.path().join("public"), None, "public", &FILES[..2]);
    let private = Payload::named(&dir.path().join("private"), None, "private", &FILES[..2]);
    let private_torrent = dir.path().join("private-flag.torrent");
    let output = rill_tests::run_rill([
        "create".as_ref(),
        private.seed_dir.join("private").as_os_str(),
        "-o".as_ref(),
        private_torrent.as_os_str(),
        "--private".as_ref(),
        "--quiet".as_ref(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let dht = LoopbackDht::start(50);
    let bootstrap = dht.bootstrap().to_string();
    let options = || RillOptions::default().args(["--dht-bootstrap", bootstrap.as_str()]);
    let private_seed = RillPeer::seed(&private_torrent, &private.seed_dir, options()).unwrap();
    let public_seed = RillPeer::seed(&public.torrent, &public.seed_dir, options()).unwrap();

    // The public seed is announced (so announcing works at all): a bounded poll on the DHT.
    let public_hash = rill_tests::torrent_info_hash(&public.torrent).unwrap();
    let mut attempts = 0;
    loop {
        let peers = dht.get_peers(public_hash);
        if peers.iter().any(|p| p.port() == public_seed.port()) {
            break;
        }
        attempts += 1;
        assert!(
            attempts < 60,
            "the public seed never reached the DHT: {peers:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The private seed started first, yet no node ever stored it.
    let private_hash = rill_tests::torrent_info_hash(&private_torrent).unwrap();
    assert_eq!(dht.get_peers(private_hash), Vec::<SocketAddr>::new());
    let stored: usize = dht.nodes.iter().map(|n| n.stats().peers_stored).sum();
    assert!(stored > 0, "the public seed is stored somewhere");
    drop(private_seed);
    drop(public_seed);
}

#[test]
fn rill_info_fetches_and_saves_a_magnets_torrent() {
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
    let magnet = magnet_of(
        &payload.torrent,
        "&tr=http%3A%2F%2F127.0.0.1%3A1%2Fannounce",
    );
    let saved = dir.path().join("saved.torrent");
    let peer = seed.addr().to_string();
    let output = rill_tests::run_rill([
        "info",
        magnet.as_str(),
        "--json",
        "--no-dht",
        "--peer",
        peer.as_str(),
        "--save",
        saved.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["name"], "payload", "{json}");
    let original = rill_tests::torrent_info_hash(&payload.torrent).unwrap();
    assert_eq!(rill_tests::torrent_info_hash(&saved).unwrap(), original);
    let raw = std::fs::read(&saved).unwrap();
    let metainfo = rill_common::metainfo::Metainfo::from_bytes(&raw).unwrap();
    assert_eq!(
        metainfo.trackers(),
        vec![vec!["http://127.0.0.1:1/announce".to_owned()]]
    );
}

#[test]
fn rill_dht_ping_and_get_peers_on_a_loopback_dht() {
    let dht = LoopbackDht::start(60);
    let bootstrap = dht.bootstrap().to_string();
    let target = dht.nodes[2].local_addr();
    let output = rill_tests::run_rill(["dht", "ping", target.to_string().as_str()]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim(),
        format!("{target} {}", dht.nodes[2].id()),
        "{output:?}"
    );

    let info_hash = InfoHash::from_bytes([0x3C; 20]);
    let announcer = &dht.nodes[4];
    let outcome = dht.runtime.block_on(async {
        tokio::time::timeout(WAIT, announcer.announce(info_hash, Some(4242)))
            .await
            .expect("announce within the bound")
            .unwrap()
    });
    assert!(outcome.announced > 0, "{outcome:?}");
    let output = rill_tests::run_rill([
        "dht",
        "get-peers",
        info_hash.to_hex().as_str(),
        "--dht-bootstrap",
        bootstrap.as_str(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let want = format!("{}:4242", announcer.local_addr().ip());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().any(|l| l == want), "{output:?}");
}

#[test]
fn libtorrent_finds_a_rill_seed_through_a_loopback_dht() {
    if !require_tool("libtorrent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let dht = LoopbackDht::start(70);
    let bootstrap = dht.bootstrap().to_string();
    let options = RillOptions::default().args(["--dht-bootstrap", bootstrap.as_str()]);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, options).unwrap();
    // rill announces its seed: a bounded poll on the DHT.
    let info_hash = rill_tests::torrent_info_hash(&payload.torrent).unwrap();
    let mut attempts = 0;
    while !dht
        .get_peers(info_hash)
        .iter()
        .any(|p| p.port() == seed.port())
    {
        attempts += 1;
        assert!(attempts < 60, "rill's seed never reached the DHT");
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = dir.path().join("libtorrent");
    std::fs::create_dir_all(&out).unwrap();
    let mut leech = LtMagnet::start(&[
        "--magnet".into(),
        magnet_of(&payload.torrent, ""),
        "--save-path".into(),
        out.display().to_string(),
        "--dht-bootstrap".into(),
        bootstrap,
    ]);
    leech.wait_for("metadata", |e| (e["event"] == "metadata").then_some(()));
    leech.wait_for("the download", |e| (e["event"] == "finished").then_some(()));
    payload.assert_copied(&out, &FILES);
    drop(seed);
}

#[test]
fn a_libtorrent_seed_that_dials_rill_serves_it_the_metadata() {
    if !require_tool("libtorrent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    // A DHT where nobody has the torrent: rill has a source, but only the incoming
    // connection can bring the metadata.
    let dht = LoopbackDht::start(80);
    let port = rill_tests::free_port(Ipv4Addr::LOCALHOST).unwrap();
    let magnet = magnet_of(&payload.torrent, "");
    let out = dir.path().join("rill");
    let options = RillOptions {
        port: Some(port),
        ..RillOptions::default()
    }
    .args(["--dht-bootstrap", dht.bootstrap().to_string().as_str()]);
    let rill = {
        let out = out.clone();
        std::thread::spawn(move || {
            RillPeer::download(&[std::path::Path::new(&magnet)], &out, options)
        })
    };
    // rill listens before it fetches: a bounded poll on its port.
    let rill_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut attempts = 0;
    while std::net::TcpStream::connect(rill_addr).is_err() {
        attempts += 1;
        assert!(attempts < 100, "rill never listened on {rill_addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _seed = LtMagnet::start(&[
        "--seed".into(),
        payload.torrent.display().to_string(),
        "--save-path".into(),
        payload.seed_dir.display().to_string(),
        "--peer".into(),
        rill_addr.to_string(),
    ]);
    let mut rill = rill.join().unwrap().unwrap();
    let last = rill.wait_final(DOWNLOAD).unwrap();
    assert_eq!(last["have"], last["pieces"], "{last}");
    payload.assert_copied(&out, &FILES);
    assert!(rill.wait_exit(EXIT).unwrap().success());
}
