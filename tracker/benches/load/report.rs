//! Measured figures, their summary rows and the printed table.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::{BenchResult, MAX_REQUESTS, NUMWANT, PEERS, TORRENTS};

/// Measured figures of one phase.
#[derive(Default)]
pub(crate) struct Sample {
    pub(crate) latencies_us: Vec<u32>,
    pub(crate) peers: u64,
    pub(crate) failures: u64,
    pub(crate) lost: u64,
    pub(crate) connects: u64,
    /// When the last reply came (the phase's end, not counting waits for lost packets).
    pub(crate) last_reply: Option<Instant>,
}

impl Sample {
    pub(crate) fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
        self.peers += other.peers;
        self.failures += other.failures;
        self.lost += other.lost;
        self.connects += other.connects;
        self.last_reply = self.last_reply.max(other.last_reply);
    }
}

/// A phase's result row.
pub(crate) struct Row {
    tracker: &'static str,
    protocol: &'static str,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    mean_peers: f64,
    note: String,
}

/// Runs one measured phase: `conns` workers, each made by `worker(seed, deadline, budget)`
/// (seeds from `first_seed` on, a share of `MAX_REQUESTS` each), until `secs` have passed;
/// returns their merged samples and the phase's length up to the last reply.
pub(crate) async fn run_phase<W, F>(
    conns: usize,
    secs: u64,
    first_seed: u64,
    worker: W,
) -> BenchResult<(Sample, Duration)>
where
    W: Fn(u64, Instant, u64) -> F,
    F: std::future::Future<Output = BenchResult<Sample>> + Send + 'static,
{
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let budget = MAX_REQUESTS / conns as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conns {
        tasks.spawn(worker(first_seed + c as u64, deadline, budget));
    }
    let mut total = Sample::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.map_err(|e| e.to_string())??);
    }
    let end = total.last_reply.unwrap_or_else(Instant::now);
    Ok((total, end.duration_since(start)))
}

pub(crate) fn summarise(
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

pub(crate) fn print_table(rows: &[Row], conns: usize, secs: u64) {
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
    println!(
        "rill private/public HTTP: {} (target >= 0.8x)",
        ratio(("rill-private", "HTTP"), ("rill", "HTTP"))
    );
    println!(
        "rill private/public UDP:  {} (target >= 0.8x)",
        ratio(("rill-private", "UDP"), ("rill", "UDP"))
    );
}
