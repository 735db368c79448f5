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
//! - a magnet's `so` (BEP 53) selects the files rill downloads, `--only-files` wins over it,
//!   and an `so` naming none of the torrent's files is a one-line error;
//! - `rill info MAGNET --save`, `rill dht ping` and `rill dht get-peers`.
//!
//! Files are compared byte for byte. Missing tools skip locally and fail with CI set
//! ([`require_tool`]). Every wait is bounded.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use rill::dht::{Dht, DhtConfig};
use rill_common::InfoHash;
use rill_tests::peers::lt_dht::{LtDht, MagnetOptions};
use rill_tests::{LibtorrentOptions, RillOptions, RillPeer, loopback_address, require_tool};
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
    let seed = payload.libtorrent_seed(LibtorrentOptions::default());
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
    let seed = payload.libtorrent_seed(LibtorrentOptions::default());
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

/// BEP 53: `so=0,3` of the payload (files in torrent order: a.bin, empty.txt, sub/b.bin,
/// sub/deeper/c.bin, z.txt) downloads a.bin and c.bin only; `--only-files` wins over `so`;
/// an `so` that names none of the torrent's files fails in one line once the metadata is in.
#[test]
fn a_magnets_so_selects_the_files_rill_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let total: u64 = FILES.iter().map(|(_, len)| *len as u64).sum();
    let download = |name: &str, so: &str, flags: &[&str]| {
        let magnet = magnet_of(&payload.torrent, &format!("&x.pe={}&so={so}", seed.addr()));
        let out = dir.path().join(name);
        let options = RillOptions::default()
            .args(["--no-dht"])
            .args(flags.iter().copied());
        let mut rill = RillPeer::download(&[std::path::Path::new(&magnet)], &out, options).unwrap();
        let last = rill.wait_final(DOWNLOAD).unwrap();
        assert!(rill.wait_exit(EXIT).unwrap().success());
        assert_eq!(last["left"], 0, "{last}");
        assert_eq!(last["total_bytes"], total, "{last}");
        (out, last)
    };

    let (out, last) = download("so", "0,3", &[]);
    let wanted = (FILES[0].1 + FILES[2].1) as u64;
    assert!(last["have"].as_u64() < last["pieces"].as_u64(), "{last}");
    // Whole pieces are fetched: a little of the files next to the wanted ones may come too.
    let wanted_bytes = last["wanted_bytes"].as_u64().unwrap();
    assert!(wanted_bytes >= wanted && wanted_bytes < total, "{last}");
    payload.assert_copied(&out, &[FILES[0], FILES[2]]);
    let not_copied = |out: &std::path::Path, name: &str| {
        let theirs = std::fs::read(out.join("payload").join(name)).unwrap_or_default();
        theirs != std::fs::read(payload.seed_dir.join("payload").join(name)).unwrap()
    };
    // sub/b.bin (file 2) has whole pieces of its own between a.bin and c.bin.
    assert!(not_copied(&out, "sub/b.bin"), "sub/b.bin is not selected");

    // The flag wins: only z.txt, whatever `so` says.
    let (out, last) = download("flag", "0,3", &["--only-files", "4"]);
    assert!(
        last["wanted_bytes"].as_u64() < Some(64 * 1024 + 1),
        "{last}"
    );
    payload.assert_copied(&out, &[FILES[4]]);
    assert!(not_copied(&out, "a.bin"), "a.bin is not wanted");

    let magnet = magnet_of(&payload.torrent, &format!("&x.pe={}&so=5-9", seed.addr()));
    let out = dir.path().join("none");
    let output = rill_tests::run_rill([
        "download",
        magnet.as_str(),
        "--quiet",
        "--port",
        "0",
        "-o",
        out.to_str().unwrap(),
    ]);
    crate::support::assert_one_line_error(&output, "a magnet whose so names no file");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("so=5-9 names none of the torrent's files (0 to 4)"),
        "{stderr}"
    );
}

/// Bound on any one wait on libtorrent or the DHT.
const WAIT: Duration = Duration::from_secs(60);
/// rill DHT nodes in process.
const DHT_NODES: usize = 6;

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
    let options = MagnetOptions::default().dht_bootstrap(dht.bootstrap());
    let mut seed = LtDht::seed(
        loopback_address(),
        &payload.torrent,
        &payload.seed_dir,
        &options,
    )
    .unwrap();
    seed.wait_event("finished", WAIT).unwrap();
    // The seed is announced once libtorrent has nodes: a bounded poll on the DHT.
    let info_hash = rill_tests::torrent_info_hash(&payload.torrent).unwrap();
    let mut attempts = 0;
    while !dht.get_peers(info_hash).contains(&seed.addr()) {
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
    let options = MagnetOptions::default().peer(seed.addr());
    let magnet = magnet_of(&payload.torrent, "");
    let mut leech = LtDht::leech(loopback_address(), &magnet, &out, &options).unwrap();
    leech.wait_event("metadata", WAIT).unwrap();
    leech.wait_event("finished", WAIT).unwrap();
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
    let seed = payload.libtorrent_seed(LibtorrentOptions::default());
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
    let options = MagnetOptions::default().dht_bootstrap(dht.bootstrap());
    let magnet = magnet_of(&payload.torrent, "");
    let mut leech = LtDht::leech(loopback_address(), &magnet, &out, &options).unwrap();
    leech.wait_event("metadata", WAIT).unwrap();
    leech.wait_event("finished", WAIT).unwrap();
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
    let options = MagnetOptions::default().peer(rill_addr);
    let _seed = LtDht::seed(
        loopback_address(),
        &payload.torrent,
        &payload.seed_dir,
        &options,
    )
    .unwrap();
    let mut rill = rill.join().unwrap().unwrap();
    let last = rill.wait_final(DOWNLOAD).unwrap();
    assert_eq!(last["have"], last["pieces"], "{last}");
    payload.assert_copied(&out, &FILES);
    assert!(rill.wait_exit(EXIT).unwrap().success());
}
