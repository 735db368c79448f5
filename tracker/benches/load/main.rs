//! Load benchmark: rill-tracker (in process) side by side with opentracker (Debian's package)
//! in the same run, over HTTP and UDP on loopback.
//!
//! Run: `cargo bench -p rill-tracker --bench load` (plain `main`, no criterion). Knobs (env):
//! `LOAD_SECS` (measured seconds per phase, default 10: two flush intervals), `LOAD_ROUNDS`
//! (rounds of rill's four phases, default 3), `LOAD_PROTO` (`http` or `udp`: rill's phases
//! of one protocol only, for profiles), `LOAD_CONNS` (HTTP connections and
//! UDP requests in flight, default 64), `LOAD_UDP_THREADS` (UDP generator threads, one
//! socket each, default 2), `LOAD_UDP_GEN=tokio` (the older generator: one tokio task and
//! socket per request in flight), `LOAD_FLUSH_SECS` (private mode's flush interval, default
//! the tracker's 5 s; 60 or more leaves the flush out). opentracker is skipped with a line
//! saying so when `/usr/bin/opentracker` (or `$OPENTRACKER`) is absent.
//!
//! rill-tracker runs twice, both in process at once: public mode (`rill`) and private mode
//! (`rill-private`: `USERS` users, every torrent registered, each peer announcing to
//! `/announce/<passkey>` over HTTP and with BEP 41 URL data over UDP, accounting flushed to
//! SQLite every 5 s, no rate limit); opentracker runs beside them. The three are warmed up,
//! then their phases interleaved in `LOAD_ROUNDS` rounds of public, private, opentracker
//! HTTP, then the same over UDP (every other round in the reverse order); a round's
//! trackers get the same request sequence, and the table gives each figure's median over
//! the rounds, the ratios of the medians and every round's own ratio: a slow spell of the
//! shared machine then hits all of them, instead of whichever ran in it.
//! Each row also gives the tracker's CPU time and wake-ups per announce (`cpu.rs`).
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
//! Private mode is measured in a steady state, with its flushes: each private phase starts
//! just after a flush has written everything pending (one announce, then `/stats` polled
//! until a flush is done and nothing is pending), so that the flushes 5 s and 10 s later,
//! which write all of the phase's work but its last fraction of a second, fall inside it;
//! after the phase the bench waits for the flush of that last part, so that no private
//! flush falls into a public phase.
//!
//! opentracker runs as `opentracker -i 127.0.0.1 -p PORT -P PORT -d DIR -w /whitelist`: it
//! chroots into `DIR` and drops to `nobody`, and Debian's build refuses torrents that are not
//! whitelisted, so the whitelist (hex info hashes) lives inside `DIR`, world-readable. It is
//! killed by PID when the run ends, also on error.

mod cpu;
mod http;
mod population;
mod report;
mod servers;
mod udp;
mod udp_batch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A tracker under load.
struct Target {
    name: &'static str,
    http: SocketAddr,
    udp: SocketAddr,
    pop: Arc<Population>,
    templates: Arc<Vec<Vec<u8>>>,
    /// The name its threads carry (CPU accounting), `None` for another process.
    threads: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Proto {
    Http,
    Udp,
}

impl Target {
    fn new(
        name: &'static str,
        http: SocketAddr,
        udp: SocketAddr,
        pop: &Arc<Population>,
        threads: Option<&'static str>,
    ) -> BenchResult<Self> {
        Ok(Target {
            name,
            http,
            udp,
            pop: Arc::clone(pop),
            templates: udp_batch::templates(pop)?,
            threads,
        })
    }

    /// Whether the private flush is part of the phases (see the module doc).
    fn flushes(&self) -> bool {
        self.pop.passkeys.is_some() && env_or("LOAD_FLUSH_SECS", 5) < 60
    }

    /// Waits until a flush has written everything pending (after one announce, so that
    /// there is something to write: a flush of nothing is not counted in `/stats`).
    async fn wait_flushed(&self, announce_first: bool) -> BenchResult<String> {
        if announce_first {
            let (http, pop) = (self.http, Arc::clone(&self.pop));
            let far = Instant::now() + Duration::from_secs(60);
            http::http_worker(http, pop, 7, Some(vec![0]), far, 1).await?;
        }
        let http = self.http;
        tokio::task::spawn_blocking(move || servers::wait_flushed(http))
            .await
            .map_err(|e| e.to_string())?
    }

    async fn warm_up(&self, conns: usize) -> BenchResult<()> {
        eprintln!(
            "{}: warm-up ({PEERS} peers announce started over HTTP)",
            self.name
        );
        warm_up(self.http, &self.pop, conns).await?;
        if self.flushes() {
            // Steady state: the warm-up's baselines written before anything is measured.
            let waited = self.wait_flushed(false).await?;
            eprintln!("{}: {waited}", self.name);
        }
        Ok(())
    }

    /// One measured phase.
    async fn phase(&self, proto: Proto, conns: usize, secs: u64, round: u64) -> BenchResult<Row> {
        if self.flushes() {
            self.wait_flushed(true).await?;
        }
        let cpu = || self.threads.and_then(cpu::tracker_threads);
        let before = cpu();
        let (sample, elapsed, label) = match proto {
            Proto::Http => {
                let (s, t) = http_phase(self.http, &self.pop, conns, secs, round).await?;
                (s, t, "HTTP")
            }
            Proto::Udp if std::env::var("LOAD_UDP_GEN").is_ok_and(|v| v == "tokio") => {
                let (s, t) = udp_phase(self.udp, &self.pop, conns, secs, round).await?;
                (s, t, "UDP")
            }
            Proto::Udp => {
                let threads = env_or("LOAD_UDP_THREADS", 2) as usize;
                let (s, t) =
                    udp_batch::udp_phase(self.udp, &self.templates, conns, threads, secs, round)
                        .await?;
                (s, t, "UDP")
            }
        };
        let used = cpu().zip(before).map(|(after, before)| after.since(before));
        let row = summarise(self.name, label, sample, elapsed, used);
        eprintln!("round {round}: {}", row.line());
        if self.flushes() {
            // The flush of the phase's last part, before anything else is measured.
            self.wait_flushed(false).await?;
        }
        Ok(row)
    }
}

/// `LOAD_PROTO=http` or `udp` runs rill's phases of one protocol only (for profiles).
fn protocols() -> Vec<Proto> {
    match std::env::var("LOAD_PROTO").as_deref() {
        Ok("http") => vec![Proto::Http],
        Ok("udp") => vec![Proto::Udp],
        _ => vec![Proto::Http, Proto::Udp],
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` (or `--all-targets`) does not,
    // and a test run must not start minutes of load.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: skipped (not run by `cargo bench`)");
        return;
    }
    let conns = env_or("LOAD_CONNS", 64) as usize;
    let secs = env_or("LOAD_SECS", 10);
    let rounds = env_or("LOAD_ROUNDS", 3);
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
    let mut rows = Vec::new();
    let result = (|| -> BenchResult<()> {
        let pop = Arc::new(Population::new());
        let private = Arc::new(Population::private());
        let public_rill = Rill::start(&pop)?;
        let private_rill = Rill::start(&private)?;
        let public = Target::new(
            "rill",
            public_rill.http,
            public_rill.udp,
            &pop,
            Some("rill-public"),
        )?;
        let secret = Target::new(
            "rill-private",
            private_rill.http,
            private_rill.udp,
            &private,
            Some("rill-private"),
        )?;
        let bin = std::env::var_os("OPENTRACKER")
            .map_or_else(|| PathBuf::from("/usr/bin/opentracker"), PathBuf::from);
        let ot = if bin.exists() {
            Some(OpenTracker::start(&bin, &pop)?)
        } else {
            println!(
                "opentracker: skipped ({} not found; `apt-get install opentracker`)",
                bin.display()
            );
            None
        };
        let other = match &ot {
            Some(ot) => Some(Target::new("opentracker", ot.addr, ot.addr, &pop, None)?),
            None => None,
        };
        let mut targets = vec![&public, &secret];
        targets.extend(other.as_ref());
        runtime.block_on(async {
            for target in &targets {
                target.warm_up(conns).await?;
            }
            for round in 0..rounds {
                for proto in protocols() {
                    // Every other round in the reverse order, so that no tracker always
                    // follows the same one.
                    let mut order = targets.clone();
                    if round % 2 == 1 {
                        order.reverse();
                    }
                    for target in order {
                        rows.push(target.phase(proto, conns, secs, round).await?);
                    }
                }
            }
            Ok::<(), String>(())
        })?;
        // Where private mode's background work went during the phases.
        match servers::private_stats(private_rill.http) {
            Ok(line) => println!("rill-private: {line}"),
            Err(e) => eprintln!("rill-private: /stats: {e}"),
        }
        drop(ot);
        Ok(())
    })();
    print_table(&rows, conns, secs, rounds);
    if let Err(e) = result {
        eprintln!("load: {e}");
        std::process::exit(1);
    }
}
