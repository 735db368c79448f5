//! `GET /metrics`: the tracker's counters and swarm totals in the Prometheus text exposition
//! format, version 0.0.4, written by hand.
//!
//! Invariants:
//! - Every family has one `# HELP` and one `# TYPE` line, then its samples; names are
//!   `rill_tracker_*`, counters end in `_total`.
//! - The label sets are fixed and always present (zeros included), so that `rate()` works
//!   from the first scrape; an error kind is listed only for the protocol that can produce it.
//! - Only metrics that exist are emitted: the flush families only in private mode.
//!
//! Families:
//! - `rill_tracker_announces_total{protocol, result}` and `rill_tracker_scrapes_total{protocol,
//!   result}`: `result="ok"` answered, `"failure"` refused or malformed (a failure reply).
//! - `rill_tracker_udp_connects_total`: BEP 15 connects answered.
//! - `rill_tracker_errors_total{protocol, kind}`: failures by cause, plus UDP garbage dropped
//!   unanswered (`kind="garbage_dropped"`, which is not a failure reply).
//! - `rill_tracker_torrents`, `rill_tracker_seeders`, `rill_tracker_leechers`: gauges.
//! - Private mode: `rill_tracker_flushes_total`, `rill_tracker_flush_failures_total`,
//!   `rill_tracker_flush_duration_seconds_sum` (counter) and
//!   `rill_tracker_flush_last_duration_seconds` (gauge): the accounting writes;
//!   `rill_tracker_flush_backlog{kind="credits"|"peers"}` (gauge): what waits for the next.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use rill_common::tracker::http::HttpTrackerError;

use crate::service::{CounterSnapshot, ErrorKind, PrivateStats, Protocol, Service};
use crate::store::StoreTotals;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE_0_0_4: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The handler of `GET /metrics`.
pub async fn metrics(State(service): State<Arc<Service>>) -> Response {
    let counters = service.counters();
    let mut body = render(
        &counters.snapshot(Protocol::Http),
        &counters.snapshot(Protocol::Udp),
        service.totals(),
        service.private().is_some(),
    );
    if let (Some(stats), Some(private)) = (service.private_stats(), service.private()) {
        let total_micros = private
            .flush
            .total_micros
            .load(std::sync::atomic::Ordering::Relaxed);
        let last_micros = private
            .flush
            .last_micros
            .load(std::sync::atomic::Ordering::Relaxed);
        render_flush(&mut body, &stats, total_micros, last_micros);
    }
    ([(CONTENT_TYPE, CONTENT_TYPE_0_0_4)], body).into_response()
}

/// The error kind of an HTTP query the codec rejected.
pub fn kind_of(error: &HttpTrackerError) -> ErrorKind {
    match error {
        HttpTrackerError::QueryTooLong { .. } => ErrorKind::QueryTooLong,
        HttpTrackerError::TooManyInfoHashes { .. } => ErrorKind::TooManyHashes,
        _ => ErrorKind::BadQuery,
    }
}

const PROTOCOLS: [(Protocol, &str); 2] = [(Protocol::Http, "http"), (Protocol::Udp, "udp")];

/// The exposition text of both protocols' counters and the swarm totals; private mode's
/// error kinds only when `private`.
pub fn render(
    http: &CounterSnapshot,
    udp: &CounterSnapshot,
    totals: StoreTotals,
    private: bool,
) -> String {
    let of = |protocol| match protocol {
        Protocol::Http => http,
        Protocol::Udp => udp,
    };
    let mut out = String::with_capacity(2048);
    family(
        &mut out,
        "rill_tracker_announces_total",
        "counter",
        "Announces by protocol and result (ok: answered; failure: refused or malformed).",
    );
    for (protocol, name) in PROTOCOLS {
        let c = of(protocol);
        sample(
            &mut out,
            "rill_tracker_announces_total",
            &[("protocol", name), ("result", "ok")],
            c.announces,
        );
        sample(
            &mut out,
            "rill_tracker_announces_total",
            &[("protocol", name), ("result", "failure")],
            c.announce_failures,
        );
    }
    family(
        &mut out,
        "rill_tracker_scrapes_total",
        "counter",
        "Scrapes by protocol and result (ok: answered; failure: refused or malformed).",
    );
    for (protocol, name) in PROTOCOLS {
        let c = of(protocol);
        sample(
            &mut out,
            "rill_tracker_scrapes_total",
            &[("protocol", name), ("result", "ok")],
            c.scrapes,
        );
        sample(
            &mut out,
            "rill_tracker_scrapes_total",
            &[("protocol", name), ("result", "failure")],
            c.scrape_failures,
        );
    }
    family(
        &mut out,
        "rill_tracker_udp_connects_total",
        "counter",
        "UDP connect requests answered (BEP 15).",
    );
    sample(
        &mut out,
        "rill_tracker_udp_connects_total",
        &[],
        udp.connects,
    );
    family(
        &mut out,
        "rill_tracker_errors_total",
        "counter",
        "Requests refused, malformed or (UDP garbage) dropped, by protocol and kind.",
    );
    for (protocol, name) in PROTOCOLS {
        for kind in ErrorKind::ALL {
            if kind.applies_to(protocol) && (private || !kind.private_only()) {
                sample(
                    &mut out,
                    "rill_tracker_errors_total",
                    &[("protocol", name), ("kind", kind.as_str())],
                    of(protocol).error(kind),
                );
            }
        }
    }
    let gauges = [
        (
            "rill_tracker_torrents",
            "Torrents with at least one peer.",
            totals.torrents,
        ),
        (
            "rill_tracker_seeders",
            "Peers with nothing left to download, over every torrent.",
            totals.seeders,
        ),
        (
            "rill_tracker_leechers",
            "Peers still downloading, over every torrent.",
            totals.leechers,
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help);
        sample(&mut out, name, &[], value);
    }
    out
}

/// Appends private mode's flush families (see the module doc).
pub fn render_flush(out: &mut String, stats: &PrivateStats, total_micros: u64, last_micros: u64) {
    let counters = [
        (
            "rill_tracker_flushes_total",
            "Accounting batches written to the database.",
            stats.flushes,
        ),
        (
            "rill_tracker_flush_failures_total",
            "Accounting writes that failed (each batch is kept and retried).",
            stats.flush_failures,
        ),
        (
            "rill_tracker_registry_reloads_total",
            "Reloads of users, torrents and the client allow-list from the database.",
            stats.registry_reloads,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help);
        sample(out, name, &[], value);
    }
    let seconds = |micros: u64| format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    for (name, kind, help, micros) in [
        (
            "rill_tracker_flush_duration_seconds_sum",
            "counter",
            "Seconds spent writing accounting batches, in total.",
            total_micros,
        ),
        (
            "rill_tracker_flush_last_duration_seconds",
            "gauge",
            "Seconds the last accounting write took.",
            last_micros,
        ),
    ] {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {}", seconds(micros));
    }
    let name = "rill_tracker_flush_backlog";
    family(
        out,
        name,
        "gauge",
        "What waits for the next write: credit entries (per peer baseline) and changed peer baselines.",
    );
    sample(out, name, &[("kind", "credits")], stats.pending_credits);
    sample(out, name, &[("kind", "peers")], stats.pending_peers);
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line; label values here are fixed identifiers, which need no escaping.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{value}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_help_type_and_values() {
        let mut http = CounterSnapshot {
            announces: 3,
            announce_failures: 1,
            scrapes: 2,
            ..CounterSnapshot::default()
        };
        http.errors[ErrorKind::ALL
            .iter()
            .position(|&k| k == ErrorKind::BadQuery)
            .unwrap()] = 1;
        let udp = CounterSnapshot {
            connects: 4,
            announces: 5,
            ..CounterSnapshot::default()
        };
        let totals = StoreTotals {
            torrents: 2,
            seeders: 1,
            leechers: 6,
        };
        let text = render(&http, &udp, totals, false);
        assert!(!text.contains("rate_limited"));
        assert!(render(&http, &udp, totals, true).contains("kind=\"rate_limited\"} 0"));
        for line in [
            "# TYPE rill_tracker_announces_total counter",
            "rill_tracker_announces_total{protocol=\"http\",result=\"ok\"} 3",
            "rill_tracker_announces_total{protocol=\"http\",result=\"failure\"} 1",
            "rill_tracker_announces_total{protocol=\"udp\",result=\"ok\"} 5",
            "rill_tracker_scrapes_total{protocol=\"http\",result=\"ok\"} 2",
            "rill_tracker_udp_connects_total 4",
            "rill_tracker_errors_total{protocol=\"http\",kind=\"bad_query\"} 1",
            "rill_tracker_errors_total{protocol=\"udp\",kind=\"garbage_dropped\"} 0",
            "# TYPE rill_tracker_torrents gauge",
            "rill_tracker_torrents 2",
            "rill_tracker_seeders 1",
            "rill_tracker_leechers 6",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        // Kinds that a protocol cannot produce are not listed.
        assert!(!text.contains("protocol=\"http\",kind=\"bad_connection_id\""));
        assert!(!text.contains("protocol=\"udp\",kind=\"bad_query\""));
        // Each family is declared once, before its samples.
        for name in [
            "rill_tracker_announces_total",
            "rill_tracker_errors_total",
            "rill_tracker_leechers",
        ] {
            let help = format!("# HELP {name} ");
            assert_eq!(text.matches(&help).count(), 1, "{name}");
            let first_sample = text.lines().position(|l| l.starts_with(name)).unwrap();
            let type_line = text
                .lines()
                .position(|l| {
                    l == format!("# TYPE {name} counter") || l == format!("# TYPE {name} gauge")
                })
                .unwrap();
            assert!(type_line < first_sample, "{name}");
        }
    }

    #[test]
    fn flush_families() {
        let stats = PrivateStats {
            flushes: 3,
            pending_credits: 2,
            pending_peers: 5,
            ..PrivateStats::default()
        };
        let mut text = String::new();
        render_flush(&mut text, &stats, 2_500_000, 1_234);
        for line in [
            "# TYPE rill_tracker_flushes_total counter",
            "rill_tracker_flushes_total 3",
            "rill_tracker_flush_failures_total 0",
            "rill_tracker_flush_duration_seconds_sum 2.500000",
            "rill_tracker_flush_last_duration_seconds 0.001234",
            "rill_tracker_flush_backlog{kind=\"credits\"} 2",
            "rill_tracker_flush_backlog{kind=\"peers\"} 5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn codec_errors_map_to_kinds() {
        let too_long = HttpTrackerError::QueryTooLong {
            len: 9000,
            max: 8192,
        };
        assert_eq!(kind_of(&too_long), ErrorKind::QueryTooLong);
        let too_many = HttpTrackerError::TooManyInfoHashes { count: 75, max: 74 };
        assert_eq!(kind_of(&too_many), ErrorKind::TooManyHashes);
        let missing = HttpTrackerError::MissingParameter("info_hash");
        assert_eq!(kind_of(&missing), ErrorKind::BadQuery);
    }
}
