//! rill-tracker's `GET /metrics` (Prometheus text format 0.0.4), in process: requests over
//! HTTP and UDP, good and bad, then the exact counters and gauges.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rill_common::InfoHash;
use rill_common::tracker::http::percent_encode_bytes;
use rill_common::tracker::udp::{Request, Response};
use rill_tests::{TestTracker, UdpClient};
use rill_tracker::Config;

use super::{hash, ok_announce, request, udp};

fn http_announce(tracker: &TestTracker, info_hash: InfoHash, peer: u8, port: u16, left: u64) {
    ok_announce(tracker, &request(info_hash, peer, port, left));
}

fn udp_announce(
    client: &UdpClient,
    connection_id: u64,
    info_hash: InfoHash,
    peer: u8,
    port: u16,
    left: u64,
) -> Response {
    let announce = udp::udp_announce(connection_id, u32::from(peer), info_hash, peer, port, left);
    client.request(&Request::Announce(announce))
}

/// Parses the text exposition format line by line: `# HELP name text`, `# TYPE name
/// counter|gauge` (once per family, before its samples), and `name{labels} value`. Returns
/// each series (`name{labels}` as written) with its value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut helped = Vec::new();
    let mut typed = Vec::new();
    let mut series = BTreeMap::new();
    let valid_name = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    assert!(text.ends_with('\n'), "the text ends with a line feed");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has a text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            assert!(!helped.contains(&name), "HELP repeated: {line}");
            helped.push(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(valid_name(name), "{line}");
            assert!(kind == "counter" || kind == "gauge", "{line}");
            assert!(!typed.contains(&name), "TYPE repeated: {line}");
            if kind == "counter" {
                assert!(
                    name.ends_with("_total"),
                    "counter names end in _total: {line}"
                );
            }
            typed.push(name);
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let (key, value) = line.rsplit_once(' ').expect("a sample has a value");
            let name = key.split('{').next().unwrap_or_default();
            assert!(valid_name(name), "{line}");
            assert_eq!(
                typed.last(),
                Some(&name),
                "sample outside its family: {line}"
            );
            if let Some(labels) = key.strip_prefix(name).filter(|l| !l.is_empty()) {
                let labels = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("labels in braces: {line}"));
                for pair in labels.split(',') {
                    let (label, quoted) = pair.split_once('=').expect("label=\"value\"");
                    assert!(valid_name(label), "{line}");
                    assert!(
                        quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                        "{line}"
                    );
                }
            }
            let value: f64 = value.parse().unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(
                series.insert(key.to_owned(), value).is_none(),
                "series repeated: {line}"
            );
        }
    }
    assert_eq!(helped, typed, "every family has HELP and TYPE");
    series
}

fn scrape_metrics(tracker: &TestTracker) -> BTreeMap<String, f64> {
    let reply = tracker.get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let content_type = reply.content_type.clone().unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse(&reply.text())
}

#[test]
fn metrics_count_requests_by_protocol_result_and_kind() {
    let tracker = TestTracker::start(Config::default());
    let before = scrape_metrics(&tracker);
    assert_eq!(
        before["rill_tracker_announces_total{protocol=\"http\",result=\"ok\"}"],
        0.0
    );
    assert_eq!(before["rill_tracker_torrents"], 0.0);

    // HTTP: three announces (a seeder and a leecher of torrent 1, a leecher of torrent 2),
    // a malformed announce and one over the query size limit (4096 bytes), one scrape, one
    // scrape over the hash limit (64 by default).
    http_announce(&tracker, hash(1), 1, 6001, 0);
    http_announce(&tracker, hash(1), 2, 6002, 10);
    http_announce(&tracker, hash(2), 3, 6003, 10);
    let bad = tracker.get("/announce?info_hash=short&port=1");
    assert!(bad.text().contains("failure reason"), "{}", bad.text());
    let long = tracker.get(&format!("/announce?x={}", "a".repeat(5000)));
    assert!(long.text().contains("failure reason"), "{}", long.text());
    let scrape = tracker.get(&format!(
        "/scrape?info_hash={}",
        percent_encode_bytes(hash(1).as_bytes())
    ));
    assert!(scrape.text().contains("files"), "{}", scrape.text());
    let too_many: Vec<String> = (0..65u8)
        .map(|n| format!("info_hash={}", percent_encode_bytes(hash(n).as_bytes())))
        .collect();
    let refused = tracker.get(&format!("/scrape?{}", too_many.join("&")));
    assert!(
        refused.text().contains("failure reason"),
        "{}",
        refused.text()
    );

    // UDP: one connect, two announces (a seeder of torrent 2, a leecher of torrent 3), one
    // announce with a wrong connection id, and garbage that is dropped unanswered.
    let client = tracker.udp_client();
    let connection_id = client.connect(1);
    for (info_hash, peer, port, left) in [(hash(2), 4, 6004, 0), (hash(3), 5, 6005, 5)] {
        let reply = udp_announce(&client, connection_id, info_hash, peer, port, left);
        assert!(matches!(reply, Response::Announce { .. }), "{reply:?}");
    }
    let wrong = udp_announce(&client, connection_id ^ 1, hash(3), 6, 6006, 5);
    assert!(matches!(wrong, Response::Error { .. }), "{wrong:?}");
    client.send_raw(&[0xff; 16]);

    // The garbage has no reply to wait for: poll until it is counted (bounded).
    let dropped = "rill_tracker_errors_total{protocol=\"udp\",kind=\"garbage_dropped\"}";
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut metrics = scrape_metrics(&tracker);
    for _ in 0..10_000 {
        if metrics[dropped] >= 1.0 || Instant::now() > deadline {
            break;
        }
        std::thread::yield_now();
        metrics = scrape_metrics(&tracker);
    }

    let expected: &[(&str, f64)] = &[
        (
            "rill_tracker_announces_total{protocol=\"http\",result=\"ok\"}",
            3.0,
        ),
        (
            "rill_tracker_announces_total{protocol=\"http\",result=\"failure\"}",
            2.0,
        ),
        (
            "rill_tracker_announces_total{protocol=\"udp\",result=\"ok\"}",
            2.0,
        ),
        (
            "rill_tracker_announces_total{protocol=\"udp\",result=\"failure\"}",
            1.0,
        ),
        (
            "rill_tracker_scrapes_total{protocol=\"http\",result=\"ok\"}",
            1.0,
        ),
        (
            "rill_tracker_scrapes_total{protocol=\"http\",result=\"failure\"}",
            1.0,
        ),
        (
            "rill_tracker_scrapes_total{protocol=\"udp\",result=\"ok\"}",
            0.0,
        ),
        (
            "rill_tracker_scrapes_total{protocol=\"udp\",result=\"failure\"}",
            0.0,
        ),
        ("rill_tracker_udp_connects_total", 1.0),
        (
            "rill_tracker_errors_total{protocol=\"http\",kind=\"bad_query\"}",
            1.0,
        ),
        (
            "rill_tracker_errors_total{protocol=\"http\",kind=\"query_too_long\"}",
            1.0,
        ),
        (
            "rill_tracker_errors_total{protocol=\"http\",kind=\"too_many_hashes\"}",
            1.0,
        ),
        (
            "rill_tracker_errors_total{protocol=\"http\",kind=\"refused\"}",
            0.0,
        ),
        (
            "rill_tracker_errors_total{protocol=\"udp\",kind=\"too_many_hashes\"}",
            0.0,
        ),
        (
            "rill_tracker_errors_total{protocol=\"udp\",kind=\"bad_packet\"}",
            0.0,
        ),
        (
            "rill_tracker_errors_total{protocol=\"udp\",kind=\"bad_connection_id\"}",
            1.0,
        ),
        (
            "rill_tracker_errors_total{protocol=\"udp\",kind=\"refused\"}",
            0.0,
        ),
        (
            "rill_tracker_errors_total{protocol=\"http\",kind=\"passkey\"}",
            0.0,
        ),
        (
            "rill_tracker_errors_total{protocol=\"udp\",kind=\"passkey\"}",
            0.0,
        ),
        (dropped, 1.0),
        ("rill_tracker_torrents", 3.0),
        ("rill_tracker_seeders", 2.0),
        ("rill_tracker_leechers", 3.0),
    ];
    for (series, value) in expected {
        assert_eq!(metrics.get(*series), Some(value), "{series}: {metrics:#?}");
    }
    assert_eq!(
        metrics.len(),
        expected.len(),
        "no other series: {metrics:#?}"
    );
}
