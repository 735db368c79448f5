//! Load benchmark: rill-tracker (in process) side by side with opentracker (Debian's package)
//! in the same run, over HTTP and UDP on loopback.
//!
//! Run: `cargo bench -p rill-tracker --bench load` (plain `main`, no criterion). Knobs (env):
//! `LOAD_SECS` (measured seconds per phase, default 10), `LOAD_CONNS` (HTTP connections and
//! UDP sockets, default 64). opentracker is skipped with a line saying so when
//! `/usr/bin/opentracker` (or `$OPENTRACKER`) is absent.
//!
//! The load: 1000 torrents; a population of 50,000 simulated peers, each with its own peer
//! id, port and torrent (so swarms hold about 50 peers); every request is a random peer's
//! announce (`compact=1`, `numwant=50`, random `left` with a fifth seeders, random
//! `uploaded`/`downloaded`, `event=started` one time in twenty). A warm-up announces every
//! peer once with `event=started` before anything is measured. HTTP runs over `LOAD_CONNS`
//! HTTP/1.1 connections, one request in flight each (raw `TcpStream`, replies read by
//! `Content-Length`); a server that closes after each reply (opentracker does) gets a new
//! connection per request, whose connect time counts in the latency. UDP runs over
//! `LOAD_CONNS` sockets, each connecting once (BEP 15) and then announcing, one in flight each.
//!
//! opentracker runs as `opentracker -i 127.0.0.1 -p PORT -P PORT -d DIR -w /whitelist`: it
//! chroots into `DIR` and drops to `nobody`, and Debian's build refuses torrents that are not
//! whitelisted, so the whitelist (hex info hashes) lives inside `DIR`, world-readable. It is
//! killed by PID when the run ends, also on error.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rill_common::tracker::http::percent_encode_bytes;
use rill_common::tracker::udp::{self, Family, Request, Response};
use rill_common::{InfoHash, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TORRENTS: usize = 1000;
const PEERS: usize = 50_000;
const NUMWANT: u32 = 50;
/// A bound on requests per phase, whatever the duration.
const MAX_REQUESTS: u64 = 5_000_000;
/// How long one request may take before it counts as lost (UDP) or fails the run (HTTP).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

type BenchResult<T> = Result<T, String>;

/// One simulated peer: always announces to the same torrent from the same port.
struct Peer {
    peer_id: PeerId,
    /// Percent-encoded peer id, precomputed so that the generator stays cheap.
    peer_id_query: String,
    port: u16,
    torrent: usize,
}

/// The fixed load: torrents and peers.
struct Population {
    hashes: Vec<InfoHash>,
    hash_queries: Vec<String>,
    peers: Vec<Peer>,
}

impl Population {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let hashes: Vec<InfoHash> = (0..TORRENTS)
            .map(|_| InfoHash::from_bytes(rng.random()))
            .collect();
        let hash_queries = hashes
            .iter()
            .map(|h| percent_encode_bytes(h.as_bytes()))
            .collect();
        let peers = (0..PEERS)
            .map(|i| {
                let mut id = *b"-LB0001-000000000000";
                rng.fill(&mut id[8..]);
                let peer_id = PeerId::from_bytes(id);
                Peer {
                    peer_id,
                    peer_id_query: percent_encode_bytes(peer_id.as_bytes()),
                    // Distinct ports: every peer comes from 127.0.0.1, and trackers key
                    // peers by address and port.
                    port: 10_000 + u16::try_from(i).unwrap_or(0),
                    torrent: rng.random_range(0..TORRENTS),
                }
            })
            .collect();
        Population {
            hashes,
            hash_queries,
            peers,
        }
    }
}

/// What one announce says besides who is asking.
struct Draw {
    left: u64,
    uploaded: u64,
    downloaded: u64,
    started: bool,
}

fn draw(rng: &mut StdRng, warm_up: bool) -> Draw {
    let left = if rng.random_ratio(1, 5) {
        0
    } else {
        rng.random_range(1..1_u64 << 32)
    };
    Draw {
        left,
        uploaded: rng.random_range(0..1_u64 << 34),
        downloaded: rng.random_range(0..1_u64 << 34),
        started: warm_up || rng.random_ratio(1, 20),
    }
}

fn http_request(pop: &Population, peer: &Peer, d: &Draw, host: &str) -> Vec<u8> {
    let event = if d.started { "&event=started" } else { "" };
    format!(
        "GET /announce?info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}\
         {event}&compact=1&numwant={NUMWANT} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        pop.hash_queries[peer.torrent],
        peer.peer_id_query,
        peer.port,
        d.uploaded,
        d.downloaded,
        d.left
    )
    .into_bytes()
}

/// Peers in a compact bencoded announce reply (`5:peers<len>:`), or `None` if it has none.
fn compact_peers(body: &[u8]) -> Option<usize> {
    let at = body.windows(7).position(|w| w == b"5:peers")? + 7;
    let rest = body.get(at..)?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let len: usize = std::str::from_utf8(rest.get(..colon)?).ok()?.parse().ok()?;
    Some(len / 6)
}

/// Measured figures of one phase.
#[derive(Default)]
struct Sample {
    latencies_us: Vec<u32>,
    peers: u64,
    failures: u64,
    lost: u64,
    connects: u64,
    /// When the last reply came (the phase's end, not counting waits for lost packets).
    last_reply: Option<Instant>,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
        self.peers += other.peers;
        self.failures += other.failures;
        self.lost += other.lost;
        self.connects += other.connects;
        self.last_reply = self.last_reply.max(other.last_reply);
    }
}

/// A phase's result row.
struct Row {
    tracker: &'static str,
    protocol: &'static str,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    mean_peers: f64,
    note: String,
}

fn summarise(
    tracker: &'static str,
    protocol: &'static str,
    mut s: Sample,
    elapsed: Duration,
) -> Row {
    s.latencies_us.sort_unstable();
    let n = s.latencies_us.len();
    let pct = |p: f64| {
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n.max(1)) - 1;
        f64::from(s.latencies_us.get(i).copied().unwrap_or(0)) / 1000.0
    };
    let ok = n as u64 - s.failures;
    Row {
        tracker,
        protocol,
        per_sec: n as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        mean_peers: if ok == 0 {
            0.0
        } else {
            s.peers as f64 / ok as f64
        },
        note: format!(
            "{n} replies, {} failures, {} lost, {} connections",
            s.failures, s.lost, s.connects
        ),
    }
}

/// One HTTP connection's loop: announces until `deadline` or `budget` requests.
async fn http_worker(
    addr: SocketAddr,
    pop: Arc<Population>,
    seed: u64,
    peers: Option<Vec<usize>>,
    deadline: Instant,
    budget: u64,
) -> BenchResult<Sample> {
    let mut rng = StdRng::seed_from_u64(seed);
    let host = addr.to_string();
    let mut sample = Sample::default();
    let mut stream: Option<TcpStream> = None;
    // Until a server is seen closing after a reply, connections are reused.
    let mut keep_alive = true;
    let mut buf = Vec::with_capacity(4096);
    let warm_up = peers.is_some();
    let mut i = 0;
    loop {
        let peer = match &peers {
            Some(list) => match list.get(i) {
                Some(&p) => p,
                None => break,
            },
            None => {
                if i as u64 >= budget || Instant::now() >= deadline {
                    break;
                }
                rng.random_range(0..PEERS)
            }
        };
        i += 1;
        let peer = &pop.peers[peer];
        let request = http_request(&pop, peer, &draw(&mut rng, warm_up), &host);
        let start = Instant::now();
        let mut attempts = 0;
        let body = loop {
            attempts += 1;
            if attempts > 3 {
                return Err(format!("{addr}: no reply after reconnecting"));
            }
            if stream.is_none() {
                let s = TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                let _ = s.set_nodelay(true);
                sample.connects += 1;
                stream = Some(s);
            }
            let Some(s) = stream.as_mut() else { continue };
            let fresh = attempts > 1;
            let reply = tokio::time::timeout(REQUEST_TIMEOUT, exchange(s, &request, &mut buf))
                .await
                .map_err(|_| format!("{addr}: HTTP reply timed out"))?;
            match reply {
                Ok(Some((body, close))) => {
                    if close {
                        stream = None;
                    }
                    break body;
                }
                // Closed before any reply byte: the server does not keep connections.
                Ok(None) | Err(_) if !fresh => {
                    keep_alive = false;
                    stream = None;
                }
                Ok(None) => return Err(format!("{addr}: closed without a reply")),
                Err(e) => return Err(format!("{addr}: {e}")),
            }
        };
        let latency = start.elapsed();
        sample.last_reply = Some(Instant::now());
        if !keep_alive {
            stream = None;
        }
        if !warm_up {
            sample
                .latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            match compact_peers(&body) {
                Some(n) => sample.peers += n as u64,
                None => sample.failures += 1,
            }
        }
    }
    Ok(sample)
}

/// Writes one request and reads one reply: `Ok(None)` if the connection was closed before
/// any byte of it, else the body and whether the server closes the connection.
async fn exchange(
    s: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<(Vec<u8>, bool)>> {
    s.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) if buf.is_empty() && e.kind() == ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(std::io::Error::other(
                "connection closed inside a reply head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("reply head too long"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("reply without Content-Length"))?;
    if length > 1 << 20 {
        return Err(std::io::Error::other("reply body too long"));
    }
    let close = head.starts_with("http/1.0") || head.contains("\nconnection: close");
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed inside a body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some((body, close)))
}

/// Announces every peer once (event=started) over HTTP to fill the swarms.
async fn warm_up(addr: SocketAddr, pop: &Arc<Population>, conns: usize) -> BenchResult<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conns {
        let list: Vec<usize> = (c..PEERS).step_by(conns).collect();
        let far = Instant::now() + Duration::from_secs(600);
        tasks.spawn(http_worker(
            addr,
            Arc::clone(pop),
            c as u64,
            Some(list),
            far,
            u64::MAX,
        ));
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn http_phase(
    addr: SocketAddr,
    pop: &Arc<Population>,
    conns: usize,
    secs: u64,
) -> BenchResult<(Sample, Duration)> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let budget = MAX_REQUESTS / conns as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conns {
        let seed = 1000 + c as u64;
        tasks.spawn(http_worker(
            addr,
            Arc::clone(pop),
            seed,
            None,
            deadline,
            budget,
        ));
    }
    let mut total = Sample::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.map_err(|e| e.to_string())??);
    }
    let end = total.last_reply.unwrap_or_else(Instant::now);
    Ok((total, end.duration_since(start)))
}

/// One UDP socket: connects once (again only if the tracker says the id expired), then
/// announces random peers, one request in flight.
async fn udp_worker(
    addr: SocketAddr,
    pop: Arc<Population>,
    seed: u64,
    deadline: Instant,
    budget: u64,
) -> BenchResult<Sample> {
    let mut rng = StdRng::seed_from_u64(seed);
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| e.to_string())?;
    socket.connect(addr).await.map_err(|e| e.to_string())?;
    let mut sample = Sample::default();
    let mut buf = vec![0u8; 2048];
    let mut connection_id = None;
    let mut transaction_id: u32 = rng.random();
    let mut sent = 0;
    while sent < budget && Instant::now() < deadline {
        transaction_id = transaction_id.wrapping_add(1);
        let Some(id) = connection_id else {
            let packet = Request::Connect { transaction_id }.encode();
            socket.send(&packet).await.map_err(|e| e.to_string())?;
            let got = tokio::time::timeout(REQUEST_TIMEOUT, socket.recv(&mut buf)).await;
            sample.connects += 1;
            if let Ok(Ok(len)) = got
                && let Ok(Response::Connect {
                    transaction_id: t,
                    connection_id: c,
                }) = Response::decode(&buf[..len], Family::V4)
                && t == transaction_id
            {
                connection_id = Some(c);
            } else if sample.connects > 20 {
                return Err(format!("{addr}: UDP connect keeps failing"));
            }
            continue;
        };
        let peer = &pop.peers[rng.random_range(0..PEERS)];
        let d = draw(&mut rng, false);
        let packet = Request::Announce(udp::AnnounceRequest {
            connection_id: id,
            transaction_id,
            info_hash: pop.hashes[peer.torrent],
            peer_id: peer.peer_id,
            downloaded: d.downloaded,
            left: d.left,
            uploaded: d.uploaded,
            event: d
                .started
                .then_some(rill_common::tracker::AnnounceEvent::Started),
            ip: Ipv4Addr::UNSPECIFIED,
            key: 0,
            num_want: NUMWANT as i32,
            port: peer.port,
            url_data: Vec::new(),
        })
        .encode();
        let start = Instant::now();
        socket.send(&packet).await.map_err(|e| e.to_string())?;
        sent += 1;
        // Read until this transaction's reply (a late reply to a lost one is skipped).
        let reply = loop {
            match tokio::time::timeout_at((start + REQUEST_TIMEOUT).into(), socket.recv(&mut buf))
                .await
            {
                Err(_) => break None,
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(len)) => {
                    let r = Response::decode(&buf[..len], Family::V4);
                    match r {
                        Ok(Response::Announce {
                            transaction_id: t,
                            peers,
                            ..
                        }) if t == transaction_id => break Some(Ok(peers.len())),
                        Ok(Response::Error {
                            transaction_id: t,
                            message,
                        }) if t == transaction_id => break Some(Err(message)),
                        _ => {}
                    }
                }
            }
        };
        let latency = start.elapsed();
        if reply.is_some() {
            sample.last_reply = Some(Instant::now());
        }
        match reply {
            None => sample.lost += 1,
            Some(Ok(peers)) => {
                sample.peers += peers as u64;
                sample
                    .latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            Some(Err(_)) => {
                // An expired or unknown connection id: connect again.
                sample.failures += 1;
                sample
                    .latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                connection_id = None;
            }
        }
    }
    Ok(sample)
}

async fn udp_phase(
    addr: SocketAddr,
    pop: &Arc<Population>,
    conns: usize,
    secs: u64,
) -> BenchResult<(Sample, Duration)> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let budget = MAX_REQUESTS / conns as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conns {
        let seed = 2000 + c as u64;
        tasks.spawn(udp_worker(addr, Arc::clone(pop), seed, deadline, budget));
    }
    let mut total = Sample::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.map_err(|e| e.to_string())??);
    }
    let end = total.last_reply.unwrap_or_else(Instant::now);
    Ok((total, end.duration_since(start)))
}

/// rill-tracker on its own runtime (2 worker threads) in a background thread.
struct Rill {
    http: SocketAddr,
    udp: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Rill {
    fn start() -> BenchResult<Self> {
        let http = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        let (http_addr, udp_addr) = (
            http.local_addr().map_err(|e| e.to_string())?,
            udp.local_addr().map_err(|e| e.to_string())?,
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build();
            let Ok(runtime) = runtime else { return };
            let listeners = rill_tracker::Listeners {
                http: Some(http),
                udp: Some(udp),
            };
            let config = rill_tracker::Config::default();
            let result = runtime.block_on(rill_tracker::run(config, listeners, async {
                let _ = stopped.await;
            }));
            if let Err(e) = result {
                eprintln!("rill-tracker: {e}");
            }
        });
        Ok(Rill {
            http: http_addr,
            udp: udp_addr,
            stop: Some(stop),
            thread: Some(thread),
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
struct OpenTracker {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl OpenTracker {
    fn start(bin: &Path, pop: &Population) -> BenchResult<Self> {
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
fn set_mode(path: &Path, mode: u32) -> BenchResult<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> BenchResult<()> {
    Ok(())
}

/// A port free for both TCP and UDP on 127.0.0.1 (a small race with other programs, fine here).
fn free_port() -> BenchResult<u16> {
    for _ in 0..100 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port".to_owned())
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// Warm-up, HTTP and UDP phases against one tracker.
async fn measure(
    name: &'static str,
    http: SocketAddr,
    udp: SocketAddr,
    pop: &Arc<Population>,
    conns: usize,
    secs: u64,
) -> BenchResult<Vec<Row>> {
    eprintln!("{name}: warm-up ({PEERS} peers announce started over HTTP)");
    warm_up(http, pop, conns).await?;
    eprintln!("{name}: HTTP, {conns} connections, {secs} s");
    let (s, t) = http_phase(http, pop, conns, secs).await?;
    let http_row = summarise(name, "HTTP", s, t);
    eprintln!("{name}: UDP, {conns} sockets, {secs} s");
    let (s, t) = udp_phase(udp, pop, conns, secs).await?;
    let udp_row = summarise(name, "UDP", s, t);
    Ok(vec![http_row, udp_row])
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` (or `--all-targets`) does not,
    // and a test run must not start a minute of load.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: skipped (not run by `cargo bench`)");
        return;
    }
    let conns = env_or("LOAD_CONNS", 64) as usize;
    let secs = env_or("LOAD_SECS", 10);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("load: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let pop = Arc::new(Population::new());
    let mut rows = Vec::new();
    let result = (|| -> BenchResult<()> {
        let rill = Rill::start()?;
        rows.extend(runtime.block_on(measure("rill", rill.http, rill.udp, &pop, conns, secs))?);
        drop(rill);
        let bin = std::env::var_os("OPENTRACKER")
            .map_or_else(|| PathBuf::from("/usr/bin/opentracker"), PathBuf::from);
        if bin.exists() {
            let ot = OpenTracker::start(&bin, &pop)?;
            let addr = ot.addr;
            let measured = runtime.block_on(measure("opentracker", addr, addr, &pop, conns, secs));
            drop(ot);
            rows.extend(measured?);
        } else {
            println!(
                "opentracker: skipped ({} not found; `apt-get install opentracker`)",
                bin.display()
            );
        }
        Ok(())
    })();
    print_table(&rows, conns, secs);
    if let Err(e) = result {
        eprintln!("load: {e}");
        std::process::exit(1);
    }
}

fn print_table(rows: &[Row], conns: usize, secs: u64) {
    println!();
    println!(
        "load: {TORRENTS} torrents, {PEERS} peers, numwant {NUMWANT}, {conns} connections/sockets, {secs} s per phase"
    );
    println!(
        "{:<12} {:<5} {:>12} {:>9} {:>9} {:>11}  notes",
        "tracker", "proto", "announces/s", "p50 ms", "p99 ms", "peers/reply"
    );
    for r in rows {
        println!(
            "{:<12} {:<5} {:>12.0} {:>9.3} {:>9.3} {:>11.1}  {}",
            r.tracker, r.protocol, r.per_sec, r.p50_ms, r.p99_ms, r.mean_peers, r.note
        );
    }
    let rate: HashMap<(&str, &str), f64> = rows
        .iter()
        .map(|r| ((r.tracker, r.protocol), r.per_sec))
        .collect();
    let ratio = |a: (&str, &str), b: (&str, &str)| match (rate.get(&a), rate.get(&b)) {
        (Some(x), Some(y)) if *y > 0.0 => format!("{:.2}x", x / y),
        _ => "n/a".to_owned(),
    };
    println!();
    println!(
        "rill/opentracker HTTP: {} (target >= 1.5x)",
        ratio(("rill", "HTTP"), ("opentracker", "HTTP"))
    );
    println!(
        "rill/opentracker UDP:  {}",
        ratio(("rill", "UDP"), ("opentracker", "UDP"))
    );
    println!(
        "rill UDP/HTTP:         {} (target >= 2x)",
        ratio(("rill", "UDP"), ("rill", "HTTP"))
    );
}
