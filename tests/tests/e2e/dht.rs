//! rill's DHT node (`rill::dht`) in a private loopback DHT with a libtorrent node.
//!
//! Eight rill nodes run in process, each on its own 127.0.N.1 address (port 0), bootstrapped
//! off the first. A python3-libtorrent session (`tests/drivers/lt_dht.py`, on 127.0.0.2)
//! joins with the first rill node as its only bootstrap node, with the settings a loopback
//! DHT needs (no routing/search IP restrictions, no rate-limit blocking). Then:
//! - a rill node pings libtorrent's node and gets an id back;
//! - libtorrent's `get_peers` finds the peer a rill node announced (rill answers its queries,
//!   gives tokens, and returns the stored peer);
//! - a rill lookup finds the peer libtorrent announced (libtorrent's `announce_peer` to rill
//!   nodes carried the tokens they gave it, and they stored its peer).
//!
//! Every wait is bounded in time and count; libtorrent is stopped (stdin closed, then
//! killed) when the test ends, pass or fail.
//!
//! Over IPv6 (BEP 32), with rill alone: a private DHT of rill nodes on `::1` only; a `rill
//! seed` bootstrapped off it announces its IPv6 address, and `rill download MAGNET` given
//! only that bootstrap node finds the seed over IPv6 and downloads from it; `rill dht ping`
//! and `rill dht get-peers` reach those IPv6-only nodes. Skipped where
//! `::1` cannot be bound, except with `CI` set (unless `RILL_TEST_NO_IPV6` says the runner
//! has no IPv6).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rill::dht::{Dht, DhtConfig};
use rill_common::InfoHash;
use rill_tests::libtorrent::driver;
use rill_tests::tools::{PYTHON, in_ci};
use rill_tests::{RillOptions, RillPeer, require_tool};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::{DOWNLOAD, Payload};

/// Bound on any one wait for libtorrent or a lookup.
const WAIT: Duration = Duration::from_secs(60);
/// Rill nodes in the loopback DHT.
const RILL_NODES: usize = 8;

/// A libtorrent DHT node driven by `lt_dht.py`.
struct LibtorrentDht {
    child: Child,
    events: mpsc::UnboundedReceiver<Value>,
}

impl LibtorrentDht {
    fn start(
        listen: Ipv4Addr,
        bootstrap: SocketAddr,
        announce: &[InfoHash],
        find: &[InfoHash],
    ) -> Self {
        let mut command = Command::new(PYTHON);
        command
            .arg(driver("lt_dht.py"))
            .arg("--listen")
            .arg(format!("{listen}:0"))
            .arg("--bootstrap")
            .arg(bootstrap.to_string())
            .arg("--max-seconds")
            .arg("120");
        for hash in announce {
            command.arg("--announce").arg(hash.to_hex());
        }
        for hash in find {
            command.arg("--find").arg(hash.to_hex());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start lt_dht.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, events) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(event) => {
                        if tx.send(event).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("lt_dht.py: {line}"),
                }
            }
        });
        LibtorrentDht { child, events }
    }

    /// Waits (bounded by [`WAIT`]) for an event that `pick` maps to `Some`.
    async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    if event["event"] == "exit" {
                        panic!("lt_dht.py exited while waiting for {what}: {event}");
                    }
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Ok(None) => panic!("lt_dht.py closed its output while waiting for {what}"),
                Err(_) => panic!("no {what} from libtorrent within {WAIT:?}"),
            }
        }
    }
}

impl Drop for LibtorrentDht {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rill_config(index: usize, bootstrap: Option<SocketAddr>) -> DhtConfig {
    let ip = Ipv4Addr::new(127, 0, 10 + index as u8, 1);
    let mut config = DhtConfig::new(SocketAddr::V4(SocketAddrV4::new(ip, 0)));
    config.bootstrap = bootstrap.iter().map(ToString::to_string).collect();
    config.node.query_timeout = Duration::from_secs(1);
    config
}

/// [`RILL_NODES`] rill nodes, node `i` started with `config(i, bootstrap)`, each bootstrapped
/// off the first.
async fn rill_network(config: impl Fn(usize, Option<SocketAddr>) -> DhtConfig) -> Vec<Dht> {
    let first = Dht::start(config(0, None)).await.unwrap();
    let seed = first.local_addr();
    let mut nodes = vec![first];
    for index in 1..RILL_NODES {
        let node = Dht::start(config(index, Some(seed))).await.unwrap();
        bounded("rill bootstrap", node.wait_bootstrapped())
            .await
            .unwrap();
        nodes.push(node);
    }
    nodes
}

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {WAIT:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rill_and_libtorrent_share_a_loopback_dht() {
    if !require_tool("libtorrent") {
        return;
    }
    let rill = rill_network(rill_config).await;
    let seed = rill[0].local_addr();

    // Announced by rill before libtorrent joins; libtorrent must find it.
    let by_rill = InfoHash::from_bytes([0x5E; 20]);
    let outcome = bounded("rill announce", rill[3].announce(by_rill, Some(7777)))
        .await
        .unwrap();
    assert!(outcome.announced >= 3, "{outcome:?}");
    let rill_peer = format!("{}:7777", rill[3].local_addr().ip());

    // Announced by libtorrent; rill must find it.
    let by_libtorrent = InfoHash::from_bytes([0xA7; 20]);
    let mut libtorrent = LibtorrentDht::start(
        Ipv4Addr::new(127, 0, 0, 2),
        seed,
        &[by_libtorrent],
        &[by_rill],
    );
    let lt_addr: SocketAddr = libtorrent
        .wait_for("listening", |e| {
            (e["event"] == "listening")
                .then(|| format!("{}:{}", e["address"].as_str().unwrap_or(""), e["port"]))
        })
        .await
        .parse()
        .expect("listening address");

    // libtorrent's table fills with rill nodes (it adds only nodes that answered it).
    libtorrent
        .wait_for("DHT nodes", |e| {
            (e["event"] == "stats" && e["dht_nodes"].as_u64() >= Some(3)).then_some(())
        })
        .await;

    // Our node pings libtorrent's (same UDP port as its TCP listen port).
    let lt_id = bounded("ping libtorrent", rill[5].ping(lt_addr))
        .await
        .expect("libtorrent answers a ping");
    assert_ne!(lt_id, rill[5].id());

    // libtorrent's get_peers finds the peer rill announced.
    let want = by_rill.to_hex();
    libtorrent
        .wait_for("libtorrent finding rill's peer", |e| {
            let hit = e["event"] == "peers"
                && e["info_hash"] == want.as_str()
                && e["peers"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p == rill_peer.as_str()));
            hit.then_some(())
        })
        .await;

    // A rill lookup finds libtorrent's peer once libtorrent has announced it (it re-announces
    // every second): a bounded poll on the external process.
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let peers = bounded("rill get_peers", rill[6].get_peers(by_libtorrent))
            .await
            .unwrap();
        if peers.contains(&lt_addr) {
            break;
        }
        assert!(
            attempts < 60 && started.elapsed() < WAIT,
            "rill never found libtorrent's peer {lt_addr} (last: {peers:?})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stats = rill[0].stats();
    assert!(stats.queries_answered > 0, "{stats:?}");

    drop(libtorrent);
    for node in rill {
        bounded("shutdown", node.shutdown()).await.unwrap();
    }
}

/// Whether `::1` can be bound; see the module's note on CI.
fn ipv6_loopback() -> bool {
    match std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => true,
        Err(error) => {
            let excused = std::env::var_os("RILL_TEST_NO_IPV6").is_some_and(|v| !v.is_empty());
            assert!(
                !in_ci() || excused,
                "::1 cannot be bound ({error}) but CI is set: give the runner IPv6 loopback, \
                 or set RILL_TEST_NO_IPV6=1 where it has none"
            );
            println!("skipping: ::1 cannot be bound ({error})");
            false
        }
    }
}

/// A rill node on `::1` alone (an IPv6-only node), bootstrapped off `bootstrap`.
fn ipv6_config(_index: usize, bootstrap: Option<SocketAddr>) -> DhtConfig {
    let mut config = DhtConfig::new(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)));
    config.bootstrap = bootstrap.iter().map(ToString::to_string).collect();
    config.node.query_timeout = Duration::from_secs(1);
    config
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `rill dht ping` and `rill dht get-peers` reach an IPv6-only DHT: the command's own node
/// opens an IPv6 socket beside its IPv4 one.
#[test]
fn rill_dht_commands_reach_an_ipv6_dht() {
    if !ipv6_loopback() {
        return;
    }
    let runtime = runtime();
    let nodes = runtime.block_on(rill_network(ipv6_config));
    let target = nodes[2].local_addr();
    let output = rill_tests::run_rill(["dht", "ping", target.to_string().as_str()]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim(),
        format!("{target} {}", nodes[2].id()),
        "{output:?}"
    );

    let info_hash = InfoHash::from_bytes([0x6B; 20]);
    let outcome = runtime
        .block_on(bounded(
            "announce",
            nodes[4].announce(info_hash, Some(4646)),
        ))
        .unwrap();
    assert!(outcome.announced > 0, "{outcome:?}");
    let bootstrap = nodes[0].local_addr().to_string();
    let output = rill_tests::run_rill([
        "dht",
        "get-peers",
        info_hash.to_hex().as_str(),
        "--dht-bootstrap",
        bootstrap.as_str(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let want = SocketAddr::from((Ipv6Addr::LOCALHOST, 4646)).to_string();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().any(|l| l == want), "{output:?}");
    runtime.block_on(async {
        for node in nodes {
            bounded("shutdown", node.shutdown()).await.unwrap();
        }
    });
}

#[test]
fn rill_downloads_a_magnet_found_over_the_ipv6_dht() {
    if !ipv6_loopback() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let runtime = runtime();
    let nodes = runtime.block_on(rill_network(ipv6_config));
    let bootstrap = nodes[0].local_addr().to_string();
    let options = || RillOptions::default().args(["--dht-bootstrap", bootstrap.as_str()]);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, options()).unwrap();

    // The seed announces its IPv6 address (its DHT has no IPv4 node): a bounded poll.
    let info_hash = rill_tests::torrent_info_hash(&payload.torrent).unwrap();
    let expected = SocketAddr::from((Ipv6Addr::LOCALHOST, seed.port()));
    let mut attempts = 0;
    loop {
        let peers = runtime
            .block_on(bounded(
                "get_peers",
                nodes[RILL_NODES - 1].get_peers(info_hash),
            ))
            .unwrap();
        if peers.contains(&expected) {
            assert!(peers.iter().all(SocketAddr::is_ipv6), "{peers:?}");
            break;
        }
        attempts += 1;
        assert!(
            attempts < 60,
            "rill's seed never reached the IPv6 DHT ({peers:?})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let magnet = format!("magnet:?xt=urn:btih:{}", info_hash.to_hex());
    let out = dir.path().join("rill");
    payload.assert_rill_downloads(std::path::Path::new(&magnet), &out, options(), DOWNLOAD);
    drop(seed);
    runtime.block_on(async {
        for node in nodes {
            bounded("shutdown", node.shutdown()).await.unwrap();
        }
    });
}
