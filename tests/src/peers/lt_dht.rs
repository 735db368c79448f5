//! libtorrent in a private loopback DHT, for the magnet and DHT interop tests: [`LtDht`]
//! drives `tests/drivers/lt_dht.py` (a bare DHT node that looks up and announces
//! info-hashes) and `tests/drivers/lt_magnet.py` (a seed announced in the DHT, or a leecher
//! that starts from a magnet link alone); see those files for their options and events.
//!
//! Invariants:
//! - Each driver listens on one explicit IPv4 address given by the caller (libtorrent runs no
//!   DHT on a socket it treats as local, such as 0.0.0.0, and keeps one routing entry per
//!   address, so every node of a DHT needs its own address: 127.N.0.1, or
//!   [`super::loopback_address`]); its DHT UDP port is its TCP port.
//! - Every wait is bounded by the caller's timeout and fails with the driver's recent output;
//!   an `error` or `exit` event fails the wait at once. The process is ended by its own handle
//!   when the [`LtDht`] is dropped (stdin closed, on which the drivers exit).
//! - A driver that dies of a signal before it listens is started once more, as
//!   [`super::LibtorrentPeer`] does (python3-libtorrent 2.0.8 has crashed while starting).
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use std::time::Duration;
//! use rill_tests::peers::lt_dht::{LtDht, NodeOptions};
//!
//! # fn main() -> anyhow::Result<()> {
//! let first = LtDht::node(Ipv4Addr::new(127, 110, 0, 1), NodeOptions::default())?;
//! let options = NodeOptions::default().bootstrap(first.addr());
//! let mut second = LtDht::node(Ipv4Addr::new(127, 111, 0, 1), options)?;
//! second.wait_for("a table entry", Duration::from_secs(30), |e| {
//!     (e["event"] == "stats" && e["dht_nodes"].as_u64() > Some(0)).then_some(())
//! })?;
//! # Ok(())
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use super::process::Process;
use crate::libtorrent::driver;
use crate::tools::PYTHON;

/// How long a driver may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of a bare DHT node (`lt_dht.py`). `Default`: no bootstrap node (the first node
/// of a DHT), no lookups, a 300 s time box.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The node it bootstraps from; `None` for the first node of a DHT.
    pub bootstrap: Option<SocketAddr>,
    /// Info-hashes (hex) it looks up every round, each answer an event `peers`.
    /// libtorrent only keeps nodes that answered its own queries: a few lookups of hashes
    /// nobody has ([`lookup_hex`]) fill its table.
    pub find: Vec<String>,
    /// The driver exits by itself after this many seconds.
    pub max_seconds: u64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            bootstrap: None,
            find: Vec::new(),
            max_seconds: 300,
        }
    }
}

impl NodeOptions {
    /// Bootstraps from `node`.
    pub fn bootstrap(mut self, node: SocketAddr) -> Self {
        self.bootstrap = Some(node);
        self
    }

    /// Also looks up `info_hash_hex` every round.
    pub fn find(mut self, info_hash_hex: impl Into<String>) -> Self {
        self.find.push(info_hash_hex.into());
        self
    }
}

/// Options of a seed or leecher (`lt_magnet.py`). `Default`: DHT off, no peers, a 300 s
/// time box.
#[derive(Clone, Debug)]
pub struct MagnetOptions {
    /// `None`: DHT off. `Some(nodes)`: DHT on, bootstrapped from `nodes` (none at all when
    /// empty: its table can then only fill from nodes learnt over peer connections).
    pub dht: Option<Vec<SocketAddr>>,
    /// Peers it connects to once the torrent is added.
    pub peers: Vec<SocketAddr>,
    /// The driver exits by itself after this many seconds.
    pub max_seconds: u64,
}

impl Default for MagnetOptions {
    fn default() -> Self {
        MagnetOptions {
            dht: None,
            peers: Vec::new(),
            max_seconds: 300,
        }
    }
}

impl MagnetOptions {
    /// DHT on, bootstrapped from `node`.
    pub fn dht_bootstrap(mut self, node: SocketAddr) -> Self {
        self.dht.get_or_insert_with(Vec::new).push(node);
        self
    }

    /// DHT on with no bootstrap node.
    pub fn dht_alone(mut self) -> Self {
        self.dht.get_or_insert_with(Vec::new);
        self
    }

    /// Connects to `peer` once the torrent is added.
    pub fn peer(mut self, peer: SocketAddr) -> Self {
        self.peers.push(peer);
        self
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec!["--max-seconds".to_owned(), self.max_seconds.to_string()];
        if let Some(nodes) = &self.dht {
            let nodes: Vec<String> = nodes.iter().map(ToString::to_string).collect();
            args.extend(["--dht-bootstrap".to_owned(), nodes.join(",")]);
        }
        for peer in &self.peers {
            args.extend(["--peer".to_owned(), peer.to_string()]);
        }
        args
    }
}

/// A running libtorrent driver speaking one JSON event per line. Dropping it stops it.
pub struct LtDht {
    name: String,
    process: Process,
    addr: SocketAddr,
}

impl LtDht {
    /// Starts a bare DHT node on `ip` (any port). Returns once it listens.
    /// Call [`crate::require_tool`]`("libtorrent")` first.
    pub fn node(ip: Ipv4Addr, options: NodeOptions) -> anyhow::Result<Self> {
        let mut args = vec!["--max-seconds".to_owned(), options.max_seconds.to_string()];
        if let Some(bootstrap) = options.bootstrap {
            args.extend(["--bootstrap".to_owned(), bootstrap.to_string()]);
        }
        for hex in options.find {
            args.extend(["--find".to_owned(), hex]);
        }
        Self::start("lt_dht.py", ip, &args)
    }

    /// Starts a seed of `torrent` (data under `save_path`) on `ip`, announced in the DHT
    /// every second when `options.dht` is on. Returns once it listens; wait for its
    /// `finished` event (the data checked) before counting on it.
    pub fn seed(
        ip: Ipv4Addr,
        torrent: &Path,
        save_path: &Path,
        options: &MagnetOptions,
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            "--seed".to_owned(),
            torrent.display().to_string(),
            "--save-path".to_owned(),
            save_path.display().to_string(),
        ];
        args.extend(options.args());
        Self::start("lt_magnet.py", ip, &args)
    }

    /// Starts a leecher of `magnet` saving into `save_path` on `ip`: events `metadata` and
    /// `finished` follow. Returns once it listens.
    pub fn leech(
        ip: Ipv4Addr,
        magnet: &str,
        save_path: &Path,
        options: &MagnetOptions,
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            "--magnet".to_owned(),
            magnet.to_owned(),
            "--save-path".to_owned(),
            save_path.display().to_string(),
        ];
        args.extend(options.args());
        Self::start("lt_magnet.py", ip, &args)
    }

    fn start(script: &str, ip: Ipv4Addr, args: &[String]) -> anyhow::Result<Self> {
        match Self::start_once(script, ip, args) {
            Err(err) if err.to_string().contains("exited (signal:") => {
                eprintln!("{script} crashed while starting, starting it again: {err}");
                Self::start_once(script, ip, args)
            }
            started => started,
        }
    }

    fn start_once(script: &str, ip: Ipv4Addr, args: &[String]) -> anyhow::Result<Self> {
        let mut command = Command::new(PYTHON);
        command
            .arg(driver(script))
            .arg("--listen")
            .arg(format!("{ip}:0"))
            .args(args);
        let name = format!("{script} on {ip}");
        let process = Process::spawn(&name, command, None)?;
        let mut driver = LtDht {
            name,
            process,
            addr: SocketAddr::V4(SocketAddrV4::new(ip, 0)),
        };
        let port = driver.wait_for("listening", START_TIMEOUT, |e| {
            (e["event"] == "listening").then(|| e["port"].as_u64())
        })?;
        let port = port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .context("listening event without a port")?;
        driver.addr.set_port(port);
        Ok(driver)
    }

    /// The address it listens on: TCP for peers, UDP for the DHT.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits up to `timeout` for an event that `pick` maps to `Some`, and returns that value.
    /// Fails on an `error` or `exit` event, when the driver ends, and on timeout.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&Value) -> Option<T>,
    ) -> anyhow::Result<T> {
        let name = &self.name;
        self.process.wait_line(what, timeout, |line| {
            let event: Value = serde_json::from_str(line)
                .with_context(|| format!("{name} printed a non-JSON line: {line}"))?;
            if event["event"] == "error" || event["event"] == "exit" {
                bail!("{name} ended: {event}");
            }
            Ok(pick(&event))
        })
    }

    /// Waits up to `timeout` for an event named `name` (`finished`, `metadata`, …).
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> anyhow::Result<Value> {
        self.wait_for(name, timeout, |e| (e["event"] == name).then(|| e.clone()))
    }

    /// Waits up to `timeout` until a `dht_get_peers` reply to this node's lookups (see
    /// [`NodeOptions::find`]) lists `peer` for `info_hash_hex`.
    pub fn wait_peer(
        &mut self,
        info_hash_hex: &str,
        peer: SocketAddr,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let peer = peer.to_string();
        self.wait_for(&format!("{peer} in the DHT"), timeout, |e| {
            let found = e["event"] == "peers"
                && e["info_hash"] == info_hash_hex
                && e["peers"]
                    .as_array()
                    .is_some_and(|peers| peers.iter().any(|p| *p == peer.as_str()));
            found.then_some(())
        })
    }
}

/// A 40-hex-digit info-hash nobody has, distinct for each `n`, for the lookups that fill a
/// libtorrent node's table.
pub fn lookup_hex(n: u8) -> String {
    format!("{:02x}", n.wrapping_mul(37).wrapping_add(11)).repeat(20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_hashes_are_distinct_info_hashes() {
        let hashes: std::collections::HashSet<String> = (0..=255).map(lookup_hex).collect();
        assert_eq!(hashes.len(), 256);
        assert!(
            hashes
                .iter()
                .all(|h| h.len() == 40 && h.parse::<rill_common::InfoHash>().is_ok())
        );
    }

    #[test]
    fn magnet_options_turn_the_dht_on_with_or_without_nodes() {
        assert!(
            !MagnetOptions::default()
                .args()
                .contains(&"--dht-bootstrap".to_owned())
        );
        let alone = MagnetOptions::default().dht_alone().args();
        assert_eq!(alone[2..], ["--dht-bootstrap".to_owned(), String::new()]);
        let node: SocketAddr = "127.0.0.9:7".parse().unwrap();
        let two = MagnetOptions::default()
            .dht_bootstrap(node)
            .dht_bootstrap(node)
            .peer(node)
            .args();
        assert_eq!(
            two[2..],
            [
                "--dht-bootstrap",
                "127.0.0.9:7,127.0.0.9:7",
                "--peer",
                "127.0.0.9:7"
            ]
            .map(String::from)
        );
    }
}
