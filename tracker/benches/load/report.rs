//! Measured figures, their summary rows and the printed table.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cpu::Cpu;
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
    /// The tracker's CPU per announce, in microseconds (see `cpu.rs`).
    cpu_us: Option<f64>,
    /// Times the tracker's threads were scheduled, per announce.
    slices: Option<f64>,
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
    cpu: Option<Cpu>,
) -> Row {
    s.latencies_us.sort_unstable();
    let n = s.latencies_us.len();
    let pct = |p: f64| {
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n.max(1)) - 1;
        f64::from(s.latencies_us.get(i).copied().unwrap_or(0)) / 1000.0
    };
    let ok = n as u64 - s.failures;
    let per = |x: f64| (n > 0).then(|| x / n as f64);
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
        cpu_us: cpu.and_then(|c| per(c.on_cpu.as_secs_f64() * 1e6)),
        slices: cpu.and_then(|c| per(c.slices as f64)),
        note: format!(
            "{n} replies, {} failures, {} lost, {} connections",
            s.failures, s.lost, s.connects
        ),
    }
}

impl Row {
    /// A one-line progress report of this phase.
    pub(crate) fn line(&self) -> String {
        format!(
            "{} {}: {:.0}/s, p99 {:.3} ms, {} µs CPU and {} wake-ups per announce",
            self.tracker,
            self.protocol,
            self.per_sec,
            self.p99_ms,
            opt(self.cpu_us, 2),
            opt(self.slices, 3)
        )
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => xs.get(n / 2).copied(),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// Prints one line per tracker and protocol: the median rate over the rounds (latencies and
/// CPU of the median round), every round's rate; then the ratios of the medians, each with
/// its per-round ratios (a round runs both trackers back to back).
pub(crate) fn print_table(rows: &[Row], conns: usize, secs: u64, rounds: u64) {
    println!();
    println!(
        "load: {TORRENTS} torrents, {PEERS} peers, numwant {NUMWANT}, {conns} connections/sockets, \
         {secs} s per phase, {rounds} rounds (the trackers' phases interleaved)"
    );
    println!(
        "{:<12} {:<5} {:>12} {:>9} {:>9} {:>11} {:>8} {:>8}  rounds (announces/s)",
        "tracker", "proto", "announces/s", "p50 ms", "p99 ms", "peers/reply", "CPU µs", "wake-ups"
    );
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in rows {
        if !keys.contains(&(r.tracker, r.protocol)) {
            keys.push((r.tracker, r.protocol));
        }
    }
    let of = |key: (&str, &str)| -> Vec<&Row> {
        rows.iter()
            .filter(|r| (r.tracker, r.protocol) == key)
            .collect()
    };
    let mut medians: HashMap<(&str, &str), f64> = HashMap::new();
    for &key in &keys {
        let runs = of(key);
        let Some(m) = median(runs.iter().map(|r| r.per_sec).collect()) else {
            continue;
        };
        medians.insert(key, m);
        // The round nearest the median stands for the latencies and CPU.
        let Some(r) = runs
            .iter()
            .min_by(|a, b| (a.per_sec - m).abs().total_cmp(&(b.per_sec - m).abs()))
        else {
            continue;
        };
        let all: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.per_sec)).collect();
        println!(
            "{:<12} {:<5} {:>12.0} {:>9.3} {:>9.3} {:>11.1} {:>8} {:>8}  {}; {}",
            r.tracker,
            r.protocol,
            m,
            r.p50_ms,
            r.p99_ms,
            r.mean_peers,
            opt(r.cpu_us, 2),
            opt(r.slices, 3),
            all.join(" "),
            r.note
        );
    }
    let ratio = |a: (&str, &str), b: (&str, &str)| match (medians.get(&a), medians.get(&b)) {
        (Some(x), Some(y)) if *y > 0.0 => format!("{:.2}x", x / y),
        _ => "n/a".to_owned(),
    };
    // Round by round: the two rows of one round were measured minutes apart at most.
    let rounds_of = |a: (&str, &str), b: (&str, &str)| {
        let (a, b) = (of(a), of(b));
        let each: Vec<String> = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| format!("{:.2}", x.per_sec / y.per_sec))
            .collect();
        let cpu = match (
            median(a.iter().filter_map(|r| r.cpu_us).collect()),
            median(b.iter().filter_map(|r| r.cpu_us).collect()),
        ) {
            (Some(x), Some(y)) if x > 0.0 => format!("; CPU per announce {:.2}x", x / y),
            _ => String::new(),
        };
        format!("rounds {}{cpu}", each.join(" "))
    };
    let (public, private, ot) = ("rill", "rill-private", "opentracker");
    println!();
    println!(
        "rill/opentracker HTTP: {} (target >= 1.5x; {})",
        ratio((public, "HTTP"), (ot, "HTTP")),
        rounds_of((public, "HTTP"), (ot, "HTTP"))
    );
    println!(
        "rill/opentracker UDP:  {} ({})",
        ratio((public, "UDP"), (ot, "UDP")),
        rounds_of((public, "UDP"), (ot, "UDP"))
    );
    println!(
        "rill UDP/HTTP:         {} (target >= 2x; {})",
        ratio((public, "UDP"), (public, "HTTP")),
        rounds_of((public, "UDP"), (public, "HTTP"))
    );
    for proto in ["HTTP", "UDP"] {
        println!(
            "rill private/public {proto:<4}: {} (target >= 0.8x; {})",
            ratio((private, proto), (public, proto)),
            rounds_of((private, proto), (public, proto))
        );
    }
}
