//! [`RillPeer`]: the `rill` binary downloading or seeding, driven through its `--json`
//! progress lines (one JSON object per torrent per second on stdout, and a last one with
//! `"final": true` when the session ends).
//!
//! Invariants: every wait is bounded and fails with rill's recent output; the process is
//! ended by its PID on drop (SIGINT first, so it stops cleanly, then SIGKILL).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use super::process::Process;

/// How long [`RillPeer::seed`] and [`RillPeer::download`] wait for the first progress line
/// (a seed checks its data first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How a [`RillPeer`] runs. `Default`: any port, no extra peers, no extra flags.
#[derive(Clone, Debug, Default)]
pub struct RillOptions {
    /// `--port`; `None` passes `--port 0` (any free port).
    pub port: Option<u16>,
    /// `--peer ADDR` for each.
    pub peers: Vec<SocketAddr>,
    /// More arguments, e.g. `--seed`, `--max-down 1M`.
    pub args: Vec<String>,
}

impl RillOptions {
    /// Adds a `--peer`.
    pub fn peer(mut self, peer: SocketAddr) -> Self {
        self.peers.push(peer);
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--json".to_owned(),
            "--port".to_owned(),
            self.port.unwrap_or(0).to_string(),
        ];
        for peer in &self.peers {
            args.extend(["--peer".to_owned(), peer.to_string()]);
        }
        args.extend(self.args.iter().cloned());
        args
    }
}

/// A running `rill download` or `rill seed`.
pub struct RillPeer {
    process: Process,
    port: u16,
    last: Vec<Value>,
}

impl RillPeer {
    /// Starts `rill seed TORRENT --data DATA`; returns once it has checked its data and listens.
    pub fn seed(torrent: &Path, data: &Path, options: RillOptions) -> anyhow::Result<Self> {
        let mut command = crate::rill_command();
        command
            .arg("seed")
            .arg(torrent)
            .arg("--data")
            .arg(data)
            .args(options.to_args());
        Self::start("rill seed", command)
    }

    /// Starts `rill download TORRENT... -o OUT`; returns once it listens.
    pub fn download(torrents: &[&Path], out: &Path, options: RillOptions) -> anyhow::Result<Self> {
        let mut command = crate::rill_command();
        command
            .arg("download")
            .args(torrents)
            .arg("-o")
            .arg(out)
            .args(options.to_args());
        Self::start("rill download", command)
    }

    fn start(name: &str, mut command: Command) -> anyhow::Result<Self> {
        // rill's debug log goes to its stderr, whose last lines a failed wait reports: a
        // stall then says where it stood (the caller's own RUST_LOG wins).
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info,rill=debug");
        }
        let process = Process::spawn(name, command, Some("INT"))?;
        let mut peer = Self {
            process,
            port: 0,
            last: Vec::new(),
        };
        let first = peer.wait_json(START_TIMEOUT, |_| true)?;
        let port = first["listen_port"].as_u64().context("listen_port")?;
        peer.port = u16::try_from(port).context("listen_port")?;
        Ok(peer)
    }

    /// The port rill listens on (every address).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// rill's PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Waits up to `timeout` for a progress line that `accept` takes, and returns it.
    /// Fails if rill exits first or the time runs out.
    pub fn wait_json(
        &mut self,
        timeout: Duration,
        mut accept: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let last = &mut self.last;
        self.process.wait_line("a progress line", timeout, |line| {
            let value: Value = serde_json::from_str(line)
                .with_context(|| format!("rill printed a non-JSON line: {line}"))?;
            last.push(value.clone());
            Ok(accept(&value).then_some(value))
        })
    }

    /// Waits up to `timeout` for the last line (`"final": true`) and returns it; fails if
    /// its phase is not `done`.
    pub fn wait_final(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        let last = self.wait_json(timeout, |value| value["final"] == true)?;
        if last["phase"] != "done" {
            bail!("rill ended in phase {}: {}", last["phase"], self.stderr());
        }
        Ok(last)
    }

    /// Every progress line read so far.
    pub fn lines(&self) -> &[Value] {
        &self.last
    }

    /// Sends SIGINT (Ctrl-C) by PID.
    pub fn interrupt(&self) -> anyhow::Result<()> {
        signal(self.pid(), "INT")
    }

    /// Sends SIGKILL by PID and waits for the exit.
    pub fn kill(mut self) -> anyhow::Result<()> {
        signal(self.pid(), "KILL")?;
        let _ = self.process.stop();
        Ok(())
    }

    /// Waits up to `timeout` for rill to exit by itself (after its last line) and returns
    /// its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        self.process.wait_exit(timeout)
    }

    /// Stops rill (SIGINT, then SIGKILL after a grace period) and returns its status.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        self.process.stop()
    }

    /// rill's stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}

fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -s {name} {pid} failed: {status}");
    }
    Ok(())
}
