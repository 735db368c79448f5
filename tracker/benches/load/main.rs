//! Load benchmark: rill-tracker (in process) side by side with opentracker (Debian's package)
//! in the same run, over HTTP and UDP on loopback.
//!
//! Run: `cargo bench -p rill-tracker --bench load` (plain `main`, no criterion). Knobs (env):
//! `LOAD_SECS` (measured seconds per phase, default 10), `LOAD_CONNS` (HTTP connections and
//! UDP requests in flight, default 64), `LOAD_UDP_THREADS` (UDP generator threads, one
//! socket each, default 2), `LOAD_UDP_GEN=tokio` (the older generator: one tokio task and
//! socket per request in flight), `LOAD_FLUSH_SECS` (private mode's flush interval, default
//! the tracker's 5 s; 60 or more leaves the flush out). opentracker is skipped with a line
//! saying so when `/usr/bin/opentracker` (or `$OPENTRACKER`) is absent.
//!
//! rill-tracker runs twice: public mode, then private mode (`rill-private`: `USERS` users,
//! every torrent registered, each peer announcing to `/announce/<passkey>` over HTTP and
//! with BEP 41 URL data over UDP, accounting flushed to SQLite every 5 s, no rate limit).
//!
//! The load: 1000 torrents; a population of 50,000 simulated peers, each with its own peer
//! id, port and torrent (so swarms hold about 50 peers); every request is a random peer's
//! announce (`compact=1`, `numwant=50`, random `left` with a fifth seeders, random
//! `uploaded`/`downloaded`, `event=started` one time in twenty). A warm-up announces every
//! peer once with `event=started` before anything is measured. HTTP runs over `LOAD_CONNS`
//! HTTP/1.1 connections, one request in flight each (raw `TcpStream`, replies read by
//! `Content-Length`); a server that closes after each reply (opentracker does) gets a new
//! connection per request, whose connect time counts in the latency. UDP runs with
//! `LOAD_CONNS` announces in flight from `LOAD_UDP_THREADS` blocking generator threads
//! (`udp_batch`: one socket each, connected once (BEP 15), replies drained per wake-up and
//! answered with one `sendmmsg`), so the generator costs little of the shared cores.
//!
//! Private mode is measured in a steady state: after its warm-up the bench waits until the
//! tracker has flushed the warm-up's baselines (`/stats`: a flush done, nothing pending);
//! the flushes that fall inside the measured phases stay in them.
//!
//! opentracker runs as `opentracker -i 127.0.0.1 -p PORT -P PORT -d DIR -w /whitelist`: it
//! chroots into `DIR` and drops to `nobody`, and Debian's build refuses torrents that are not
//! whitelisted, so the whitelist (hex info hashes) lives inside `DIR`, world-readable. It is
//! killed by PID when the run ends, also on error.

mod http;
mod population;
mod report;
mod servers;
mod udp;
mod udp_batch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{http_phase, warm_up};
use population::Population;
use report::{Row, print_table, summarise};
use servers::{OpenTracker, Rill};
use udp::udp_phase;

const TORRENTS: usize = 1000;
const PEERS: usize = 50_000;
/// Users in private mode (each peer belongs to one, round robin).
const USERS: usize = 1000;
const NUMWANT: u32 = 50;
/// A bound on requests per phase, whatever the duration.
const MAX_REQUESTS: u64 = 5_000_000;
/// How long one request may take before it counts as lost (UDP) or fails the run (HTTP).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

type BenchResult<T> = Result<T, String>;

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
    if pop.passkeys.is_some() && env_or("LOAD_FLUSH_SECS", 5) < 60 {
        // Steady state: the warm-up's baselines written before anything is measured.
        let waited = tokio::task::spawn_blocking(move || servers::wait_flushed(http))
            .await
            .map_err(|e| e.to_string())??;
        eprintln!("{name}: {waited}");
    }
    eprintln!("{name}: HTTP, {conns} connections, {secs} s");
    let (s, t) = http_phase(http, pop, conns, secs).await?;
    let http_row = summarise(name, "HTTP", s, t);
    let (s, t) = if std::env::var("LOAD_UDP_GEN").is_ok_and(|v| v == "tokio") {
        eprintln!("{name}: UDP (tokio generator), {conns} sockets, {secs} s");
        udp_phase(udp, pop, conns, secs).await?
    } else {
        let threads = env_or("LOAD_UDP_THREADS", 2) as usize;
        eprintln!("{name}: UDP, {conns} in flight over {threads} sockets, {secs} s");
        let templates = udp_batch::templates(pop)?;
        udp_batch::udp_phase(udp, &templates, conns, threads, secs).await?
    };
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
        let rill = Rill::start(&pop)?;
        rows.extend(runtime.block_on(measure("rill", rill.http, rill.udp, &pop, conns, secs))?);
        drop(rill);
        let private = Arc::new(Population::private());
        let rill = Rill::start(&private)?;
        let measured = measure("rill-private", rill.http, rill.udp, &private, conns, secs);
        rows.extend(runtime.block_on(measured)?);
        // Where private mode's background work went during the phases.
        match servers::private_stats(rill.http) {
            Ok(line) => println!("rill-private: {line}"),
            Err(e) => eprintln!("rill-private: /stats: {e}"),
        }
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
