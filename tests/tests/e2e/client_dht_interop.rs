//! rill in a private loopback DHT made only of libtorrent sessions (issue 5):
//! - four `lt_dht.py` nodes, each on its own 127.0.N.1, the first bootstrapping nobody and the
//!   others bootstrapping off it, plus a libtorrent seed (`lt_magnet.py`) of a trackerless
//!   torrent announced in that DHT; rill, given only the magnet (no tracker, no `x.pe`, no
//!   `--peer`) and the first node as `--dht-bootstrap`, finds the seed, fetches the metadata
//!   and downloads it, compared byte for byte;
//! - the handshake's DHT bit and the `port` message (BEP 5): a libtorrent leecher whose DHT
//!   is on but has no bootstrap node connects to a rill seed, and its routing table fills,
//!   which only the DHT node learnt over that connection can do (with rill's DHT off, it stays
//!   empty and the test fails).
//!
//! The seed's arrival in the DHT is observed through a `dht_get_peers` round of the last
//! node, so nothing sleeps. Missing libtorrent skips locally and fails with CI set
//! ([`require_tool`]). Every wait is bounded in time.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rill_tests::peers::lt_dht::{LtDht, MagnetOptions, NodeOptions, lookup_hex};
use rill_tests::{RillOptions, RillPeer, require_tool};

use crate::client::{DOWNLOAD, EXIT, FILES, Payload};

/// Bound on any one wait on a libtorrent driver.
const WAIT: Duration = Duration::from_secs(60);
/// libtorrent DHT nodes besides the seed.
const NODES: u8 = 4;
/// Second octet of the first node's address (127.N.0.1); distinct from the other modules'.
const FIRST_NET: u8 = 110;

#[test]
fn rill_downloads_a_magnet_through_a_dht_of_libtorrent_nodes_only() {
    if !require_tool("libtorrent") {
        return;
    }
    // Build rill before the drivers start, so their time boxes do not include the build.
    rill_tests::rill_bin();
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let info_hash = rill_tests::torrent_info_hash(&payload.torrent).unwrap();
    let ip = |index: u8| Ipv4Addr::new(127, FIRST_NET + index, 0, 1);
    // libtorrent only keeps nodes that answered its own queries: every node looks up random
    // hashes each round; the last one also looks up the torrent, which is how the test sees
    // the seed arrive.
    let hex = info_hash.to_hex();
    let node_options = |index: u8| {
        (0..2).fold(NodeOptions::default(), |options, n| {
            options.find(lookup_hex(index * 2 + n))
        })
    };
    let started = Instant::now();
    let first = LtDht::node(ip(0), node_options(0)).unwrap();
    let bootstrap = first.addr();
    let mut nodes = vec![first];
    for index in 1..NODES {
        let mut options = node_options(index).bootstrap(bootstrap);
        if index == NODES - 1 {
            options = options.find(hex.clone());
        }
        nodes.push(LtDht::node(ip(index), options).unwrap());
    }
    let options = MagnetOptions::default().dht_bootstrap(bootstrap);
    let mut seed = LtDht::seed(ip(NODES), &payload.torrent, &payload.seed_dir, &options).unwrap();
    seed.wait_event("finished", WAIT).unwrap();
    eprintln!("seed checked after {:?}", started.elapsed());
    // The seed is announced once its DHT has nodes: the last node's lookups find it.
    let finder = nodes.last_mut().unwrap();
    finder.wait_peer(&hex, seed.addr(), WAIT).unwrap();

    eprintln!("seed found in the DHT after {:?}", started.elapsed());
    let magnet = format!("magnet:?xt=urn:btih:{hex}");
    let out = dir.path().join("rill");
    let options = RillOptions::default().args(["--dht-bootstrap", bootstrap.to_string().as_str()]);
    let mut rill = RillPeer::download(&[std::path::Path::new(&magnet)], &out, options).unwrap();
    let last = rill.wait_final(DOWNLOAD).unwrap();
    assert_eq!(last["have"], last["pieces"], "{last}");
    eprintln!("rill downloaded after {:?}", started.elapsed());
    payload.assert_copied(&out, &FILES);
    assert!(rill.wait_exit(EXIT).unwrap().success());
    drop(seed);
    drop(nodes);
}

#[test]
fn a_libtorrent_peer_learns_a_rill_seeds_dht_node_over_the_peer_connection() {
    if !require_tool("libtorrent") {
        return;
    }
    rill_tests::rill_bin();
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let ip = |index: u8| Ipv4Addr::new(127, FIRST_NET + 10 + index, 0, 1);
    // rill's DHT needs a bootstrap node to run at all: a lone libtorrent node.
    let node = LtDht::node(ip(0), NodeOptions::default()).unwrap();
    let options =
        RillOptions::default().args(["--dht-bootstrap", node.addr().to_string().as_str()]);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, options).unwrap();
    // The leecher's DHT is on (so it sets the handshake's DHT bit) with no bootstrap node:
    // its routing table can only fill from the DHT node it learns over the connection.
    let out = dir.path().join("libtorrent");
    std::fs::create_dir_all(&out).unwrap();
    let hex = rill_tests::torrent_info_hash(&payload.torrent)
        .unwrap()
        .to_hex();
    let options = MagnetOptions::default().dht_alone().peer(seed.addr());
    let magnet = format!("magnet:?xt=urn:btih:{hex}");
    let mut leech = LtDht::leech(ip(1), &magnet, &out, &options).unwrap();
    leech
        .wait_for("node in libtorrent's routing table", WAIT, |e| {
            (e["event"] == "stats" && e["dht_nodes"].as_u64().is_some_and(|n| n > 0)).then_some(())
        })
        .unwrap();
    drop(leech);
    drop(seed);
    drop(node);
}
