//! [`TransmissionPeer`]: `transmission-cli` (Transmission 3.00) seeding or leeching one
//! torrent, configured through a temporary `-g` folder.
//!
//! Run by hand the way this module does (`settings.json` as [`TransmissionPeer`] writes it):
//! `timeout 120 transmission-cli -g CONFIG_DIR -w DOWNLOAD_DIR -f DONE_SCRIPT FILE.torrent`.
//! Its stdout is a status line rewritten with `\r` about once a second (`Progress: 42.0%, dl
//! from 1 of 1 peers (…)`, `Seeding, uploading to …`), but block-buffered on a pipe (even
//! under `stdbuf -o0`), so it arrives in 4 KiB bursts: nothing here waits on it. Its log
//! (`message-level` 2) goes to stderr unbuffered; the driver waits on that and on the done
//! script.
//! Transmission verifies data already in the download folder when a torrent is added, so a
//! seed is a torrent whose data is there. The done script (`-f`) runs when a download
//! completes, and also once a torrent that was complete when added is verified; it touches
//! a marker file, which [`TransmissionPeer::wait_finished`] waits on.
//!
//! Loopback quirks (Transmission 3.00): peers with 127.x addresses learnt from a tracker are
//! dropped, so Transmission never dials them; the other side must connect to it, e.g. a
//! libtorrent peer that announces after Transmission did. It announces from its
//! `bind-address-ipv4`. At start it announces `event=stopped&numwant=0` first (the torrent is
//! added paused, then started), then `event=started&numwant=80`, then scrapes; a tracker must
//! answer the unknown peer's `stopped` with success. It sends no `stopped` when it exits.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

use super::process::Process;
use super::{free_port, loopback_address};

/// How long [`TransmissionPeer::seed`] waits for verification and
/// [`TransmissionPeer::leech`] for the first status line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How a [`TransmissionPeer`] is set up. `Default`: a fresh [`loopback_address`], a free port,
/// plaintext preferred, a 120 s time box, no extra settings.
#[derive(Clone, Debug)]
pub struct TransmissionOptions {
    /// Listen (and announce) address; `None` takes the next [`loopback_address`].
    pub address: Option<Ipv4Addr>,
    /// Peer port; `None` picks a free one ([`free_port`]).
    pub port: Option<u16>,
    /// `settings.json`'s `encryption`: 0 prefers plaintext, 1 prefers encryption, 2 requires it.
    pub encryption: u8,
    /// `transmission-cli` runs under `timeout`, which ends it after this many seconds.
    pub max_seconds: u64,
    /// Extra or overriding `settings.json` keys, e.g. `{"peer-limit-per-torrent": 5}`.
    pub settings: Map<String, Value>,
}

impl Default for TransmissionOptions {
    fn default() -> Self {
        Self {
            address: None,
            port: None,
            encryption: 0,
            max_seconds: 120,
            settings: Map::new(),
        }
    }
}

impl TransmissionOptions {
    /// Sets the listen address.
    pub fn address(mut self, address: Ipv4Addr) -> Self {
        self.address = Some(address);
        self
    }
}

/// A running `transmission-cli` with one torrent on one loopback address. Dropping it stops
/// it ([`TransmissionPeer::stop`]); its config folder is then deleted.
pub struct TransmissionPeer {
    process: Process,
    address: SocketAddrV4,
    marker: PathBuf,
    config: TempDir,
}

impl TransmissionPeer {
    /// Starts a seed of `torrent` whose data is in `download_dir`. Returns once Transmission
    /// has verified it (its done script ran); fails (with its output) if that never happens,
    /// e.g. because a piece is wrong. Call [`crate::require_tool`]`("transmission-cli")` first.
    pub fn seed(
        torrent: &Path,
        download_dir: &Path,
        options: TransmissionOptions,
    ) -> anyhow::Result<Self> {
        let mut peer = Self::start(torrent, download_dir, &options)?;
        // Transmission runs the done script after verifying a torrent that is complete when
        // added, as after a download.
        peer.wait_finished(START_TIMEOUT)
            .context("Transmission seed verifying its data")?;
        Ok(peer)
    }

    /// Starts a leecher of `torrent` saving into `download_dir`. Returns once Transmission
    /// has added the torrent (its log says so; it listens by then). Call [`crate::require_tool`]`("transmission-cli")` first.
    pub fn leech(
        torrent: &Path,
        download_dir: &Path,
        options: TransmissionOptions,
    ) -> anyhow::Result<Self> {
        let mut peer = Self::start(torrent, download_dir, &options)?;
        // The session binds its peer port before it adds the torrent, and logs the copy of
        // the torrent it saves in the config folder.
        let stderr = peer.process.stderr_handle();
        let added = format!("Saved \"{}", peer.config.path().join("torrents").display());
        peer.process
            .wait_until("the torrent to be added", START_TIMEOUT, || {
                stderr.lock().is_ok_and(|text| text.contains(&added))
            })?;
        Ok(peer)
    }

    fn start(
        torrent: &Path,
        download_dir: &Path,
        options: &TransmissionOptions,
    ) -> anyhow::Result<Self> {
        let address = options.address.unwrap_or_else(loopback_address);
        let port = match options.port {
            Some(port) => port,
            None => free_port(address)?,
        };
        let config = tempfile::Builder::new()
            .prefix("rill-transmission-")
            .tempdir()
            .context("creating transmission-cli's config folder")?;
        let settings = settings(address, port, options);
        fs::write(
            config.path().join("settings.json"),
            serde_json::to_vec_pretty(&settings)?,
        )
        .context("writing settings.json")?;
        let marker = config.path().join("done");
        let script = config.path().join("done.sh");
        fs::write(
            &script,
            format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
        )
        .context("writing the done script")?;
        make_executable(&script)?;
        fs::create_dir_all(download_dir)
            .with_context(|| format!("creating {}", download_dir.display()))?;
        let mut command = Command::new("timeout");
        command
            .args([
                "-k",
                "5",
                &options.max_seconds.to_string(),
                "transmission-cli",
            ])
            .arg("-g")
            .arg(config.path())
            .arg("-w")
            .arg(download_dir)
            .arg("-f")
            .arg(&script)
            .arg(torrent);
        // SIGINT: `timeout` passes it on, and transmission-cli closes its session and exits
        // 0 (SIGTERM kills it on the spot). Either way it sends no `stopped` announce.
        let process = Process::spawn("transmission-cli", command, Some("INT"))?;
        Ok(Self {
            process,
            address: SocketAddrV4::new(address, port),
            marker,
            config,
        })
    }

    /// The address and port Transmission listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(self.address)
    }

    /// The port Transmission listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The PID of the `timeout` process that runs `transmission-cli`.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The config folder (`-g`): `settings.json`, `resume/`, `torrents/`.
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// Waits up to `timeout` for the download to complete (the done script's marker file).
    /// Fails with Transmission's recent status lines and stderr if it exits or time runs out.
    pub fn wait_finished(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let marker = self.marker.clone();
        self.process
            .wait_until("the done script", timeout, || marker.exists())
    }

    /// The status lines printed so far but not yet read (they arrive in bursts).
    pub fn status_lines(&mut self) -> Vec<String> {
        let mut lines = self.process.drain();
        lines.retain(|line| is_status(line));
        lines
    }

    /// Stops Transmission gracefully (SIGINT by PID: it saves its resume file and exits, with
    /// status 0) and waits for it, killing it after a few seconds. Note: transmission-cli
    /// does not announce `stopped` on the way out, so a tracker keeps it until it expires.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        self.process.stop()
    }

    /// Transmission's stderr so far (its log).
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}

/// Whether `line` is one of transmission-cli's status lines.
fn is_status(line: &str) -> bool {
    ["Progress:", "Seeding", "Verifying", "Stopped", "Queued"]
        .iter()
        .any(|start| line.starts_with(start))
}

/// `settings.json` for a loopback peer: every discovery but the tracker off, one address,
/// no limits, no RPC, files under their final names from the start.
fn settings(address: Ipv4Addr, port: u16, options: &TransmissionOptions) -> Value {
    let mut settings = json!({
        "dht-enabled": false,
        "lpd-enabled": false,
        "pex-enabled": false,
        "utp-enabled": false,
        "port-forwarding-enabled": false,
        "bind-address-ipv4": address.to_string(),
        "bind-address-ipv6": "::1",
        "peer-port": port,
        "peer-port-random-on-start": false,
        "encryption": options.encryption,
        "speed-limit-up-enabled": false,
        "speed-limit-down-enabled": false,
        "alt-speed-enabled": false,
        "ratio-limit-enabled": false,
        "idle-seeding-limit-enabled": false,
        "rpc-enabled": false,
        "blocklist-enabled": false,
        "rename-partial-files": false,
        "incomplete-dir-enabled": false,
        "watch-dir-enabled": false,
        "start-added-torrents": true,
        "download-queue-enabled": false,
        "seed-queue-enabled": false,
        "queue-stalled-enabled": false,
        "message-level": 2,
    });
    if let Value::Object(map) = &mut settings {
        map.extend(options.settings.clone());
    }
    settings
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod 755 {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_pin_address_and_port_and_take_overrides() {
        let mut options = TransmissionOptions::default();
        options
            .settings
            .insert("peer-limit-per-torrent".into(), 5.into());
        options.settings.insert("pex-enabled".into(), true.into());
        let settings = settings(Ipv4Addr::new(127, 0, 0, 9), 51_000, &options);
        assert_eq!(settings["bind-address-ipv4"], "127.0.0.9");
        assert_eq!(settings["peer-port"], 51_000);
        assert_eq!(settings["encryption"], 0);
        assert_eq!(settings["dht-enabled"], false);
        assert_eq!(settings["pex-enabled"], true);
        assert_eq!(settings["peer-limit-per-torrent"], 5);
    }

    #[test]
    fn status_lines_are_told_apart_from_the_banner() {
        assert!(is_status(
            "Seeding, uploading to 0 of 0 peer(s), 0 kB/s [0.00]"
        ));
        assert!(is_status(
            "Progress: 0.0%, dl from 0 of 0 peers (0 kB/s), ul to 0 (0 kB/s) [0.00]"
        ));
        assert!(!is_status("transmission-cli 3.00 (bb6b5a062e)"));
    }
}
