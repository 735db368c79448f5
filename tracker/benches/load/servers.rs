//! The trackers under load: rill-tracker in process, opentracker as a child process.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchResult;
use crate::population::Population;

/// rill-tracker on its own runtime (2 worker threads) in a background thread.
pub(crate) struct Rill {
    pub(crate) http: SocketAddr,
    pub(crate) udp: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Private mode's database folder, removed on drop.
    _db_dir: Option<tempfile::TempDir>,
}

/// Creates a SQLite database with the population's users and every torrent registered, and
/// returns its URL. Private mode runs with the default flush interval and no rate limit
/// (a simulated user announces far more often than a real one).
fn private_database(dir: &Path, pop: &Population) -> BenchResult<String> {
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let db = rill_tracker::db::Db::open(&url)
            .await
            .map_err(|e| e.to_string())?;
        for (i, key) in pop.passkeys.iter().flatten().enumerate() {
            db.add_user(&format!("user{i}"), key)
                .await
                .map_err(|e| e.to_string())?;
        }
        for hash in &pop.hashes {
            db.add_torrent(hash, false)
                .await
                .map_err(|e| e.to_string())?;
        }
        db.close().await;
        Ok::<(), String>(())
    })?;
    Ok(url)
}

impl Rill {
    /// Public mode, or private mode when `pop` has passkeys.
    pub(crate) fn start(pop: &Population) -> BenchResult<Self> {
        let mut config = rill_tracker::Config::default();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // Public mode as the command runs it: the swarms saved to a SQLite file every
        // `save_interval_secs` (5 s).
        config.database = Some(format!(
            "sqlite://{}",
            dir.path().join("public.db").display()
        ));
        if pop.passkeys.is_some() {
            config.mode = rill_tracker::config::Mode::Private;
            config.database = Some(private_database(dir.path(), pop)?);
            config.private.rate_limit_burst = 0;
            // For experiments: how much of private mode's cost is the flush.
            if let Some(secs) = std::env::var("LOAD_FLUSH_SECS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                config.private.flush_interval_secs = secs;
            }
        }
        let db_dir = Some(dir);
        let http = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        let (http_addr, udp_addr) = (
            http.local_addr().map_err(|e| e.to_string())?,
            udp.local_addr().map_err(|e| e.to_string())?,
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Named threads, so that `perf` can tell the trackers' work from the generator's
        // (`perf report --comm rill-private`).
        let name = if pop.passkeys.is_some() {
            "rill-private"
        } else {
            "rill-public"
        };
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(name)
                    .enable_all()
                    .build();
                let Ok(runtime) = runtime else { return };
                let listeners = rill_tracker::Listeners {
                    http: Some(http),
                    udp: Some(udp),
                };
                let result = runtime.block_on(rill_tracker::run(config, listeners, async {
                    let _ = stopped.await;
                }));
                if let Err(e) = result {
                    eprintln!("rill-tracker: {e}");
                }
            });
        let thread = thread.map_err(|e| e.to_string())?;
        Ok(Rill {
            http: http_addr,
            udp: udp_addr,
            stop: Some(stop),
            thread: Some(thread),
            _db_dir: db_dir,
        })
    }
}

impl Drop for Rill {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// opentracker as a child process, killed by PID on drop; its chroot directory removed.
pub(crate) struct OpenTracker {
    child: Child,
    dir: PathBuf,
    pub(crate) addr: SocketAddr,
}

impl OpenTracker {
    pub(crate) fn start(bin: &Path, pop: &Population) -> BenchResult<Self> {
        let dir =
            std::env::temp_dir().join(format!("rill-load-opentracker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let whitelist: String = pop
            .hashes
            .iter()
            .map(|h| format!("{}\n", h.to_hex()))
            .collect();
        std::fs::write(dir.join("whitelist"), whitelist).map_err(|e| e.to_string())?;
        set_mode(&dir, 0o755)?;
        set_mode(&dir.join("whitelist"), 0o644)?;
        let port = free_port()?;
        let child = Command::new(bin)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
            ])
            .arg("-d")
            .arg(&dir)
            // Read after the chroot into `dir`.
            .args(["-w", "/whitelist"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut tracker = OpenTracker {
            child,
            dir,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        // Bounded wait until it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(tracker.addr).is_err() {
            if let Ok(Some(status)) = tracker.child.try_wait() {
                return Err(format!("opentracker exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err("opentracker did not start listening within 10 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(tracker)
    }
}

impl Drop for OpenTracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(unix)]
pub(crate) fn set_mode(path: &Path, mode: u32) -> BenchResult<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

#[cfg(not(unix))]
pub(crate) fn set_mode(_: &Path, _: u32) -> BenchResult<()> {
    Ok(())
}

/// A port free for both TCP and UDP on 127.0.0.1 (a small race with other programs, fine here).
pub(crate) fn free_port() -> BenchResult<u16> {
    for _ in 0..100 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port".to_owned())
}

/// rill-tracker's `/stats` as JSON.
fn stats(http: SocketAddr) -> BenchResult<serde_json::Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(http).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(crate::REQUEST_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).map_err(|e| e.to_string())?;
    let body = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .and_then(|at| reply.get(at + 4..))
        .ok_or("no body in the /stats reply")?;
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// Private mode after the warm-up: waits (polling `/stats`, bounded) until a flush has
/// completed after this call and nothing is pending any more, so that the measured phases
/// start in a steady state instead of with the warm-up's 50,000 baselines still to write.
/// Returns how long it waited and what the flushes had cost by then.
pub(crate) fn wait_flushed(http: SocketAddr) -> BenchResult<String> {
    let start = Instant::now();
    let flushes = |p: &serde_json::Value| p["flushes"].as_u64().unwrap_or(0);
    let first = stats(http)?;
    let before = flushes(&first["private"]);
    loop {
        let p = stats(http)?["private"].clone();
        let pending =
            p["pending_credits"].as_u64().unwrap_or(0) + p["pending_peers"].as_u64().unwrap_or(0);
        if flushes(&p) > before && pending == 0 {
            return Ok(format!(
                "waited {} ms for the warm-up's flush; {} flushes, {} ms writing in all, last {} ms",
                start.elapsed().as_millis(),
                p["flushes"],
                p["total_flush_ms"],
                p["last_flush_ms"]
            ));
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "the warm-up's flush did not finish within 120 s: {p}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One line from rill-tracker's `/stats` on the database work of private mode: batches
/// written, the time spent writing (all and last), registry reloads.
pub(crate) fn private_stats(http: SocketAddr) -> BenchResult<String> {
    let stats = stats(http)?;
    let p = &stats["private"];
    Ok(format!(
        "{} flushes, {} ms writing in all, last {} ms; {} registry reloads, last {} ms; {} peers",
        p["flushes"],
        p["total_flush_ms"],
        p["last_flush_ms"],
        p["registry_reloads"],
        p["last_reload_ms"],
        p["peers"]
    ))
}
