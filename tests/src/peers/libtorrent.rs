//! [`LibtorrentPeer`]: a python3-libtorrent session seeding or leeching one torrent, run by
//! `tests/drivers/lt_peer.py` (see that file for its events and options).
//!
//! PEX (`ut_pex`) is on, as libtorrent's default: two libtorrent peers that share a third learn
//! of each other within a second or two. The DHT is off unless [`LibtorrentOptions::dht`].
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//! use rill_tests::{LibtorrentOptions, LibtorrentPeer};
//!
//! # fn main() -> anyhow::Result<()> {
//! let tracker = "http://127.0.0.1:6969/announce";
//! let options = LibtorrentOptions::default().tracker(tracker);
//! let seed = LibtorrentPeer::seed(Path::new("t.torrent"), Path::new("data"), options.clone())?;
//! let mut leech = LibtorrentPeer::leech(Path::new("t.torrent"), Path::new("out"), options)?;
//! leech.wait_finished(Duration::from_secs(60))?;
//! # drop(seed);
//! # Ok(())
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use super::loopback_address;
use super::process::Process;
use crate::libtorrent::driver;
use crate::tools::PYTHON;

/// How long [`LibtorrentPeer::seed`] and [`LibtorrentPeer::leech`] wait for the session to
/// listen and, for a seed, to verify its data.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How a [`LibtorrentPeer`] is set up. `Default`: a fresh [`loopback_address`], any port, the
/// torrent's own trackers, no extra peers, a 120 s time box, TCP only, plaintext only.
#[derive(Clone, Debug)]
pub struct LibtorrentOptions {
    /// Listen address; `None` takes the next [`loopback_address`].
    pub address: Option<Ipv4Addr>,
    /// Listen port; 0 lets the system pick.
    pub port: u16,
    /// Peers to connect to once the torrent is added.
    pub peers: Vec<SocketAddr>,
    /// Trackers to announce to instead of the torrent's (each its own tier).
    pub trackers: Vec<String>,
    /// Keep the torrent's trackers and add [`LibtorrentOptions::trackers`] after them.
    pub keep_trackers: bool,
    /// The driver exits by itself after this many seconds.
    pub max_seconds: u64,
    /// Allow uTP (off by default: it stalls on a loaded 2-core machine).
    pub utp: bool,
    /// Allow encrypted (RC4/obfuscated) connections; plaintext only when false.
    pub encryption: bool,
    /// The torrent's download rate limit in bytes/s (`--download-limit`); `None`: none.
    pub download_limit: Option<u64>,
    /// Never dial a peer (`--no-outgoing`): every connection is one the other side made.
    pub no_outgoing: bool,
    /// Turn the DHT on with these bootstrap nodes (`--dht-bootstrap`, comma-separated;
    /// empty for none); `None`: DHT off.
    pub dht_bootstrap: Option<String>,
}

impl Default for LibtorrentOptions {
    fn default() -> Self {
        Self {
            address: None,
            port: 0,
            peers: Vec::new(),
            trackers: Vec::new(),
            keep_trackers: false,
            max_seconds: 120,
            utp: false,
            encryption: false,
            download_limit: None,
            no_outgoing: false,
            dht_bootstrap: None,
        }
    }
}

impl LibtorrentOptions {
    /// Adds a tracker URL (replacing the torrent's trackers unless `keep_trackers`).
    pub fn tracker(mut self, url: impl Into<String>) -> Self {
        self.trackers.push(url.into());
        self
    }

    /// Adds a peer to connect to at start.
    pub fn peer(mut self, peer: SocketAddr) -> Self {
        self.peers.push(peer);
        self
    }

    /// Sets the listen address.
    pub fn address(mut self, address: Ipv4Addr) -> Self {
        self.address = Some(address);
        self
    }

    /// Limits the torrent's download rate to `bytes_per_second` (e.g. to keep a leecher
    /// incomplete for the length of a test).
    pub fn download_limit(mut self, bytes_per_second: u64) -> Self {
        self.download_limit = Some(bytes_per_second);
        self
    }

    /// Never dials a peer: only connections the other side makes.
    pub fn no_outgoing(mut self) -> Self {
        self.no_outgoing = true;
        self
    }

    /// Turns the DHT on with these bootstrap nodes (none when empty), with the private
    /// loopback DHT settings; the handshake then carries the DHT bit (BEP 5).
    pub fn dht(mut self, bootstrap: &[SocketAddr]) -> Self {
        let nodes: Vec<String> = bootstrap.iter().map(ToString::to_string).collect();
        self.dht_bootstrap = Some(nodes.join(","));
        self
    }

    fn args(&self, address: Ipv4Addr) -> Vec<String> {
        let mut args = vec![
            "--listen".to_owned(),
            format!("{address}:{}", self.port),
            "--max-seconds".to_owned(),
            self.max_seconds.to_string(),
        ];
        for peer in &self.peers {
            args.extend(["--peer".to_owned(), peer.to_string()]);
        }
        for tracker in &self.trackers {
            args.extend(["--tracker".to_owned(), tracker.clone()]);
        }
        if self.keep_trackers {
            args.push("--keep-trackers".to_owned());
        }
        if self.utp {
            args.push("--utp".to_owned());
        }
        if self.encryption {
            args.push("--encryption".to_owned());
        }
        if let Some(limit) = self.download_limit {
            args.extend(["--download-limit".to_owned(), limit.to_string()]);
        }
        if self.no_outgoing {
            args.push("--no-outgoing".to_owned());
        }
        if let Some(nodes) = &self.dht_bootstrap {
            args.extend(["--dht-bootstrap".to_owned(), nodes.clone()]);
        }
        args
    }
}

/// A running `lt_peer.py`: one libtorrent session with one torrent on one loopback address.
/// Dropping it stops it ([`LibtorrentPeer::stop`]).
pub struct LibtorrentPeer {
    process: Process,
    address: SocketAddrV4,
    finished: bool,
    events: Vec<Value>,
}

impl LibtorrentPeer {
    /// Starts a seed of `torrent` whose data is under `save_path` (the torrent's top folder or
    /// single file is in it). Returns once libtorrent listens and has verified every piece;
    /// fails if a piece is missing or wrong. Call [`crate::require_tool`]`("libtorrent")` first.
    pub fn seed(
        torrent: &Path,
        save_path: &Path,
        options: LibtorrentOptions,
    ) -> anyhow::Result<Self> {
        let mut peer = Self::start("--seed", torrent, save_path, &options)?;
        peer.wait_finished(START_TIMEOUT)
            .context("libtorrent seed verifying its data")?;
        Ok(peer)
    }

    /// Starts a leecher of `torrent` saving into `save_path`. Returns once libtorrent listens.
    /// Call [`crate::require_tool`]`("libtorrent")` first.
    pub fn leech(
        torrent: &Path,
        save_path: &Path,
        options: LibtorrentOptions,
    ) -> anyhow::Result<Self> {
        Self::start("--leech", torrent, save_path, &options)
    }

    /// Starts the driver; once more if the first one dies of a signal before it listens
    /// (python3-libtorrent 2.0.8 has been seen to crash with SIGSEGV while starting a
    /// session, before any traffic: not something the test is about).
    fn start(
        mode: &str,
        torrent: &Path,
        save_path: &Path,
        options: &LibtorrentOptions,
    ) -> anyhow::Result<Self> {
        match Self::start_once(mode, torrent, save_path, options) {
            Err(err) if err.to_string().contains("exited (signal:") => {
                eprintln!("lt_peer.py {mode} crashed while starting, starting it again: {err}");
                Self::start_once(mode, torrent, save_path, options)
            }
            started => started,
        }
    }

    fn start_once(
        mode: &str,
        torrent: &Path,
        save_path: &Path,
        options: &LibtorrentOptions,
    ) -> anyhow::Result<Self> {
        let address = options.address.unwrap_or_else(loopback_address);
        let mut command = Command::new(PYTHON);
        command
            .arg(driver("lt_peer.py"))
            .arg(mode)
            .arg("--torrent")
            .arg(torrent)
            .arg("--save-path")
            .arg(save_path)
            .args(options.args(address));
        let process = Process::spawn(&format!("lt_peer.py {mode}"), command, None)?;
        let mut peer = Self {
            process,
            address: SocketAddrV4::new(address, 0),
            finished: false,
            events: Vec::new(),
        };
        let port = peer.wait_event("listening", START_TIMEOUT, |event| {
            Ok(event["port"].as_u64())
        })?;
        peer.address
            .set_port(u16::try_from(port).context("listening port")?);
        Ok(peer)
    }

    /// The address and port the session listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(self.address)
    }

    /// The port the session listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The driver's PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Waits up to `timeout` for the torrent to be complete and verified (at once for a seed).
    /// Fails with the driver's recent events and stderr if it reports an error, exits or
    /// the time runs out.
    pub fn wait_finished(&mut self, timeout: Duration) -> anyhow::Result<()> {
        if !self.finished {
            self.wait_event("finished", timeout, |_| Ok(Some(())))?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for an event named `name` that `accept` maps to `Some`, and
    /// returns that value. Fails on an `error` event, on exit and on timeout. Events seen on
    /// the way are kept ([`LibtorrentPeer::events`]).
    pub fn wait_event<T>(
        &mut self,
        name: &str,
        timeout: Duration,
        mut accept: impl FnMut(&Value) -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let Self {
            process,
            finished,
            events,
            ..
        } = self;
        process.wait_line(&format!("event {name:?}"), timeout, |line| {
            let event = parse_event(line)?;
            let kind = event["event"].as_str().unwrap_or_default().to_owned();
            *finished |= kind == "finished";
            events.push(event.clone());
            if kind == "error" {
                bail!("lt_peer.py reported an error: {}", event["message"]);
            }
            if kind == name {
                return accept(&event);
            }
            Ok(None)
        })
    }

    /// Every event read so far, plus those already printed but not yet read.
    pub fn events(&mut self) -> &[Value] {
        for line in self.process.drain() {
            if let Ok(event) = parse_event(&line) {
                self.finished |= event["event"] == "finished";
                self.events.push(event);
            }
        }
        &self.events
    }

    /// Asks the session to connect to `peer` now.
    pub fn connect(&mut self, peer: SocketAddr) -> anyhow::Result<()> {
        self.process.send_line(&format!("connect {peer}"))
    }

    /// Asks the session to announce to its trackers now, ignoring their minimum interval.
    pub fn reannounce(&mut self) -> anyhow::Result<()> {
        self.process.send_line("announce")
    }

    /// Asks the session to scrape its trackers now (answered by a `scrape_reply` event).
    pub fn scrape(&mut self) -> anyhow::Result<()> {
        self.process.send_line("scrape")
    }

    /// The peers connected now (the driver's `peers` event: address, port, client,
    /// peer_id, outgoing, seed, source, totals), asked for and waited on up to `timeout`.
    pub fn peers(&mut self, timeout: Duration) -> anyhow::Result<Vec<Value>> {
        self.process.send_line("peers")?;
        self.wait_event("peers", timeout, |event| {
            Ok(event["peers"].as_array().cloned())
        })
    }

    /// The torrent's status now (a `progress` event), asked for and waited on up to
    /// `timeout`.
    pub fn status(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        // Progress events also come by themselves: those already printed are set aside, and
        // the first one after the command is at most one progress interval old.
        self.events();
        self.process.send_line("status")?;
        self.wait_event("progress", timeout, |event| Ok(Some(event.clone())))
    }

    /// The nodes of the DHT's routing table now (empty with the DHT off), asked for and
    /// waited on up to `timeout`.
    pub fn dht_nodes(&mut self, timeout: Duration) -> anyhow::Result<Vec<SocketAddr>> {
        self.process.send_line("dht")?;
        self.wait_event("dht", timeout, |event| {
            let Some(nodes) = event["nodes"].as_array() else {
                return Ok(None);
            };
            nodes
                .iter()
                .map(|node| {
                    let text = node.as_str().context("a DHT node that is not a string")?;
                    text.parse().with_context(|| format!("DHT node {text}"))
                })
                .collect::<anyhow::Result<Vec<SocketAddr>>>()
                .map(Some)
        })
    }

    /// Stops the driver: closes its stdin, on which it announces `stopped` to its trackers and
    /// exits; kills it by PID if it has not exited within a few seconds. Returns its status.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        self.process.stop()
    }

    /// The driver's stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}

fn parse_event(line: &str) -> anyhow::Result<Value> {
    serde_json::from_str(line)
        .with_context(|| format!("lt_peer.py printed a non-JSON line: {line}"))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::libtorrent::libtorrent_create;
    use crate::tools::require_tool;

    /// A folder `root/seed/data` of two files and a v1 torrent of it with a dead tracker.
    fn torrent(root: &Path) -> std::path::PathBuf {
        let data = root.join("seed").join("data");
        fs::create_dir_all(data.join("sub")).unwrap();
        fs::write(
            data.join("a.bin"),
            (0..100_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        fs::write(data.join("sub").join("b.bin"), vec![7u8; 40_000]).unwrap();
        let out = root.join("data.torrent");
        let options = ["--v1-only", "--tracker", "http://127.0.0.1:1/announce"];
        libtorrent_create(&data, &out, &options).unwrap();
        out
    }

    #[test]
    fn leecher_given_the_seed_address_downloads_without_a_tracker() {
        if !require_tool("libtorrent") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let torrent = torrent(dir.path());
        let seed = LibtorrentPeer::seed(
            &torrent,
            &dir.path().join("seed"),
            LibtorrentOptions::default(),
        )
        .unwrap();
        assert!(seed.addr().ip().is_loopback());
        assert_ne!(seed.port(), 0);
        let leech_dir = dir.path().join("leech");
        let options = LibtorrentOptions::default().peer(seed.addr());
        let mut leech = LibtorrentPeer::leech(&torrent, &leech_dir, options).unwrap();
        assert_ne!(leech.addr().ip(), seed.addr().ip());
        leech.wait_finished(Duration::from_secs(60)).unwrap();
        // libtorrent 2.0 may report "finished" before its last writes reach the files: a
        // mismatch is read again, for a bounded time.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for name in ["a.bin", "sub/b.bin"] {
            let ours = fs::read(dir.path().join("seed/data").join(name)).unwrap();
            while fs::read(leech_dir.join("data").join(name)).unwrap_or_default() != ours {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{name}: the leecher's copy differs"
                );
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
        let events = leech.events();
        assert!(
            events
                .iter()
                .any(|event| event["event"] == "peer_connected")
        );
    }

    #[test]
    fn seed_with_damaged_data_is_refused_with_the_piece_count() {
        if !require_tool("libtorrent") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let torrent = torrent(dir.path());
        fs::write(dir.path().join("seed/data/sub/b.bin"), vec![8u8; 40_000]).unwrap();
        let err = LibtorrentPeer::seed(
            &torrent,
            &dir.path().join("seed"),
            LibtorrentOptions::default(),
        )
        .err()
        .expect("damaged data must not seed");
        let message = format!("{err:#}");
        assert!(message.contains("seed data incomplete"), "{message}");
    }
}
