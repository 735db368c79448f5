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

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rill_tests::libtorrent::driver;
use rill_tests::tools::PYTHON;
use rill_tests::{RillOptions, RillPeer, require_tool};
use serde_json::Value;

use crate::client::{DOWNLOAD, EXIT, FILES, Payload};

/// Bound on any one wait on a libtorrent driver.
const WAIT: Duration = Duration::from_secs(60);
/// libtorrent DHT nodes besides the seed.
const NODES: u8 = 4;
/// Second octet of the first node's address (127.N.0.1); distinct from the other modules'.
const FIRST_NET: u8 = 110;

/// A python3-libtorrent driver speaking one JSON event per line.
struct Driver {
    name: &'static str,
    child: Child,
    events: mpsc::Receiver<Value>,
    addr: SocketAddr,
}

impl Driver {
    /// Starts `driver` listening on `ip` (port 0) with `args`; waits for its port.
    fn start(name: &'static str, ip: Ipv4Addr, args: &[String]) -> Self {
        let mut child = Command::new(PYTHON)
            .arg(driver(name))
            .arg("--listen")
            .arg(format!("{ip}:0"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
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
                    Err(_) => eprintln!("{name}: {line}"),
                }
            }
        });
        let mut peer = Driver {
            name,
            child,
            events,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let port = peer.wait_for("listening", |e| {
            (e["event"] == "listening").then(|| e["port"].as_u64().unwrap_or(0))
        });
        assert!(
            port > 0 && port <= u64::from(u16::MAX),
            "{name} port {port}"
        );
        peer.addr = SocketAddr::V4(SocketAddrV4::new(ip, port as u16));
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
                        "{} ended while waiting for {what}: {event}",
                        self.name
                    );
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(_) => panic!("no {what} from {} within {WAIT:?}", self.name),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 40-hex-digit info-hash nobody has, distinct per `n`, for the lookups that fill
/// libtorrent's tables.
fn lookup_hex(n: u8) -> String {
    format!("{:02x}", n.wrapping_mul(37).wrapping_add(11)).repeat(20)
}

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
    let node_args = |index: u8, bootstrap: Option<SocketAddr>, find: Option<&str>| {
        let mut args = vec!["--max-seconds".to_owned(), "300".to_owned()];
        if let Some(bootstrap) = bootstrap {
            args.extend(["--bootstrap".to_owned(), bootstrap.to_string()]);
        }
        for n in 0..2 {
            args.extend(["--find".to_owned(), lookup_hex(index * 2 + n)]);
        }
        if let Some(find) = find {
            args.extend(["--find".to_owned(), find.to_owned()]);
        }
        args
    };
    let started = Instant::now();
    let first = Driver::start("lt_dht.py", ip(0), &node_args(0, None, None));
    let bootstrap = first.addr;
    let mut nodes = vec![first];
    for index in 1..NODES {
        let find = (index == NODES - 1).then(|| info_hash.to_hex());
        nodes.push(Driver::start(
            "lt_dht.py",
            ip(index),
            &node_args(index, Some(bootstrap), find.as_deref()),
        ));
    }
    let mut seed = Driver::start(
        "lt_magnet.py",
        ip(NODES),
        &[
            "--seed".into(),
            payload.torrent.display().to_string(),
            "--save-path".into(),
            payload.seed_dir.display().to_string(),
            "--dht-bootstrap".into(),
            bootstrap.to_string(),
            "--max-seconds".into(),
            "300".into(),
        ],
    );
    seed.wait_for("the seed's check", |e| {
        (e["event"] == "finished").then_some(())
    });
    eprintln!("seed checked after {:?}", started.elapsed());
    // The seed is announced once its DHT has nodes: the last node's lookups find it.
    let seed_addr = seed.addr.to_string();
    let hex = info_hash.to_hex();
    let finder = nodes.last_mut().unwrap();
    finder.wait_for("the seed in the DHT", |e| {
        let found = e["event"] == "peers"
            && e["info_hash"] == hex.as_str()
            && e["peers"]
                .as_array()
                .is_some_and(|peers| peers.iter().any(|p| *p == seed_addr.as_str()));
        found.then_some(())
    });

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
    let node = Driver::start("lt_dht.py", ip(0), &["--max-seconds".into(), "300".into()]);
    let options = RillOptions::default().args(["--dht-bootstrap", node.addr.to_string().as_str()]);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, options).unwrap();
    // The leecher's DHT is on (so it sets the handshake's DHT bit) with no bootstrap node:
    // its routing table can only fill from the DHT node it learns over the connection.
    let out = dir.path().join("libtorrent");
    std::fs::create_dir_all(&out).unwrap();
    let hex = rill_tests::torrent_info_hash(&payload.torrent)
        .unwrap()
        .to_hex();
    let mut leech = Driver::start(
        "lt_magnet.py",
        ip(1),
        &[
            "--magnet".into(),
            format!("magnet:?xt=urn:btih:{hex}"),
            "--save-path".into(),
            out.display().to_string(),
            "--dht-bootstrap".into(),
            String::new(),
            "--peer".into(),
            seed.addr().to_string(),
            "--max-seconds".into(),
            "300".into(),
        ],
    );
    leech.wait_for("node in libtorrent's routing table", |e| {
        (e["event"] == "stats" && e["dht_nodes"].as_u64().is_some_and(|n| n > 0)).then_some(())
    });
    drop(leech);
    drop(seed);
    drop(node);
}
