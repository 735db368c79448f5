//! rill-tracker in process on port 0, over HTTP and UDP.
//!
//! - this file: HTTP (announce, scrape, bad input, proxies, /stats) and the shared helpers.
//! - `udp`: BEP 15 over a std UDP socket.
//! - `command`: the `rill-tracker` binary (flags, errors, SIGTERM).
//! - `private`: private mode in process (passkeys, refusals, accounting, bad passkeys), on
//!   SQLite and PostgreSQL.
//! - `restart`: private mode across restarts of the binary (SIGTERM, `kill -9`), on SQLite
//!   and PostgreSQL.

/// Runs each named `fn(TestDb)` twice, as `NAME::sqlite` (a SQLite file in a temp dir) and
/// `NAME::postgres` (a fresh schema on `RILL_TEST_POSTGRES`'s server: skipped with a notice
/// when the variable is unset, failing when `CI` is set).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(rill_tests::tracker::TestDb::new());
            }

            #[test]
            fn postgres() {
                if let Some(db) = rill_tests::tracker::TestDb::postgres() {
                    super::$name(db);
                }
            }
        }
    )*};
}

mod command;
mod metrics;
mod private;
mod restart;
mod udp;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::{
    AnnounceReply, AnnounceRequest, AnnounceResponse, ScrapeRequest, ScrapeResponse,
    percent_encode_bytes,
};
use rill_common::{InfoHash, PeerId};
use rill_tests::{HttpReply, TestTracker};
use rill_tracker::Config;

fn hash(n: u8) -> InfoHash {
    InfoHash::from_bytes([n; 20])
}

fn peer_id(n: u8) -> PeerId {
    let mut id = *b"-RL0100-000000000000";
    id[19] = b'a' + n;
    PeerId::from_bytes(id)
}

/// An announce of peer `peer` (its id) listening on `port`, with `left` bytes to go.
fn request(info_hash: InfoHash, peer: u8, port: u16, left: u64) -> AnnounceRequest {
    let mut request = AnnounceRequest::new(info_hash, peer_id(peer), port);
    request.left = left;
    request
}

fn http_announce(tracker: &TestTracker, request: &AnnounceRequest) -> AnnounceResponse {
    decode_announce(&tracker.get(&format!("/announce?{}", request.to_query())))
}

fn decode_announce(reply: &HttpReply) -> AnnounceResponse {
    assert_bencoded_200(reply);
    AnnounceResponse::from_bytes(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.text()))
}

fn assert_bencoded_200(reply: &HttpReply) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
}

fn success(response: AnnounceResponse) -> AnnounceReply {
    match response {
        AnnounceResponse::Success(reply) => reply,
        AnnounceResponse::Failure(reason) => panic!("announce failed: {reason}"),
    }
}

fn ok_announce(tracker: &TestTracker, request: &AnnounceRequest) -> AnnounceReply {
    success(http_announce(tracker, request))
}

fn addrs(reply: &AnnounceReply) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = reply.peers.iter().map(|p| p.addr).collect();
    addrs.sort();
    addrs
}

fn sa(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The `failure reason` of an HTTP reply (announce or scrape), asserting HTTP 200 and bencode.
fn failure_reason(reply: &HttpReply) -> String {
    assert_bencoded_200(reply);
    match AnnounceResponse::from_bytes(&reply.body) {
        Ok(AnnounceResponse::Failure(reason)) => reason,
        other => panic!("expected a failure, got {other:?}: {}", reply.text()),
    }
}

fn scrape(tracker: &TestTracker, hashes: &[InfoHash]) -> ScrapeResponse {
    let query = ScrapeRequest {
        info_hashes: hashes.to_vec(),
    }
    .to_query();
    let reply = tracker.get(&format!("/scrape?{query}"));
    assert_bencoded_200(&reply);
    ScrapeResponse::from_bytes(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.text()))
}

fn scrape_files(
    response: ScrapeResponse,
) -> std::collections::BTreeMap<InfoHash, rill_common::tracker::http::ScrapeStats> {
    match response {
        ScrapeResponse::Success(reply) => reply.files,
        ScrapeResponse::Failure(reason) => panic!("scrape failed: {reason}"),
    }
}

fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    edit(&mut config);
    config
}

#[test]
fn two_http_peers_see_each_other() {
    let tracker = TestTracker::start(Config::default());
    let first = ok_announce(&tracker, &request(hash(1), 1, 6001, 100));
    assert!(first.peers.is_empty());
    assert_eq!((first.complete, first.incomplete), (Some(0), Some(1)));
    assert!(first.interval >= 1800 && first.interval <= 1800 + 180);
    assert_eq!(first.min_interval, Some(300));
    let second = ok_announce(&tracker, &request(hash(1), 2, 6002, 0));
    assert_eq!(addrs(&second), [sa("127.0.0.1:6001")]);
    assert_eq!((second.complete, second.incomplete), (Some(1), Some(1)));
    let first = ok_announce(&tracker, &request(hash(1), 1, 6001, 100));
    assert_eq!(addrs(&first), [sa("127.0.0.1:6002")]);
    // Another torrent is another swarm.
    let other = ok_announce(&tracker, &request(hash(2), 3, 6003, 100));
    assert!(other.peers.is_empty());
}

#[test]
fn compact_is_the_default_and_dictionary_model_on_request() {
    let tracker = TestTracker::start(Config::default());
    ok_announce(&tracker, &request(hash(1), 1, 6001, 100));

    // No `compact` at all: compact, `peers` a 6-byte string.
    let mut query = request(hash(1), 2, 6002, 100).to_query();
    query = query.replace("&compact=1", "");
    let reply = tracker.get(&format!("/announce?{query}"));
    assert!(
        reply.body.windows(9).any(|w| w == b"5:peers6:"),
        "{}",
        reply.text()
    );

    // compact=0: a list of dictionaries with peer ids ...
    let mut dict = request(hash(1), 2, 6002, 100);
    dict.compact = false;
    let reply = tracker.get(&format!("/announce?{}", dict.to_query()));
    assert!(
        reply.body.windows(8).any(|w| w == b"5:peersl"),
        "{}",
        reply.text()
    );
    let peers = success(decode_announce(&reply)).peers;
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].addr, sa("127.0.0.1:6001"));
    assert_eq!(peers[0].peer_id, Some(peer_id(1)));

    // ... and without them when no_peer_id=1.
    dict.no_peer_id = true;
    let reply = tracker.get(&format!("/announce?{}", dict.to_query()));
    assert!(
        !reply.body.windows(7).any(|w| w == b"peer id"),
        "{}",
        reply.text()
    );
    let peers = success(decode_announce(&reply)).peers;
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, None);
}

#[test]
fn empty_swarm_still_has_peers_key() {
    let tracker = TestTracker::start(Config::default());
    let reply = tracker.get(&format!(
        "/announce?{}",
        request(hash(9), 1, 6001, 1).to_query()
    ));
    assert_bencoded_200(&reply);
    assert!(
        reply.body.windows(9).any(|w| w == b"5:peers0:"),
        "{}",
        reply.text()
    );
}

#[test]
fn ipv6_peers_go_to_peers6() {
    let tracker = TestTracker::start_on(Config::default(), IpAddr::V6(Ipv6Addr::LOCALHOST));
    ok_announce(&tracker, &request(hash(1), 1, 6001, 100));
    let reply = tracker.get(&format!(
        "/announce?{}",
        request(hash(1), 2, 6002, 100).to_query()
    ));
    // `peers` present and empty, the ::1 peer in `peers6`.
    assert!(
        reply.body.windows(9).any(|w| w == b"5:peers0:"),
        "{}",
        reply.text()
    );
    assert!(
        reply.body.windows(11).any(|w| w == b"6:peers618:"),
        "{}",
        reply.text()
    );
    assert_eq!(addrs(&success(decode_announce(&reply))), [sa("[::1]:6001")]);
}

#[test]
fn dual_stack_listener_serves_both_families() {
    let tracker = TestTracker::start_on(Config::default(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let port = tracker.http_addr.port();
    // An IPv4 client on a dual-stack socket is an IPv4 peer, not ::ffff:127.0.0.1.
    let v4 = tracker.get_url(&format!(
        "http://127.0.0.1:{port}/announce?{}",
        request(hash(1), 1, 6001, 100).to_query()
    ));
    assert!(success(decode_announce(&v4)).peers.is_empty());
    let v6 = ok_announce(&tracker, &request(hash(1), 2, 6002, 100));
    assert_eq!(addrs(&v6), [sa("127.0.0.1:6001")]);
    let v4 = tracker.get_url(&format!(
        "http://127.0.0.1:{port}/announce?{}",
        request(hash(1), 1, 6001, 100).to_query()
    ));
    assert_eq!(addrs(&success(decode_announce(&v4))), [sa("[::1]:6002")]);
}

#[test]
fn stopped_removes_the_peer() {
    let tracker = TestTracker::start(Config::default());
    ok_announce(&tracker, &request(hash(1), 1, 6001, 100));
    ok_announce(&tracker, &request(hash(1), 2, 6002, 100));
    let mut stop = request(hash(1), 2, 6002, 100);
    stop.event = Some(AnnounceEvent::Stopped);
    let stopped = ok_announce(&tracker, &stop);
    assert!(stopped.peers.is_empty(), "no peers for a leaving peer");
    let third = ok_announce(&tracker, &request(hash(1), 3, 6003, 100));
    assert_eq!(addrs(&third), [sa("127.0.0.1:6001")]);
    assert_eq!(third.incomplete, Some(2));
}

#[test]
fn completed_counts_in_scrape_and_multi_hash_scrape() {
    let tracker = TestTracker::start(Config::default());
    ok_announce(&tracker, &request(hash(1), 1, 6001, 100));
    ok_announce(&tracker, &request(hash(1), 2, 6002, 100));
    let mut done = request(hash(1), 2, 6002, 0);
    done.event = Some(AnnounceEvent::Completed);
    ok_announce(&tracker, &done);
    ok_announce(&tracker, &request(hash(2), 3, 6003, 0));

    let files = scrape_files(scrape(&tracker, &[hash(1), hash(2), hash(3)]));
    assert_eq!(files.len(), 3);
    let one = &files[&hash(1)];
    assert_eq!((one.complete, one.incomplete, one.downloaded), (1, 1, 1));
    let two = &files[&hash(2)];
    assert_eq!((two.complete, two.incomplete, two.downloaded), (1, 0, 0));
    let unknown = &files[&hash(3)];
    assert_eq!(
        (unknown.complete, unknown.incomplete, unknown.downloaded),
        (0, 0, 0)
    );
}

#[test]
fn full_scrape_is_off_by_default_and_works_when_enabled() {
    let tracker = TestTracker::start(Config::default());
    ok_announce(&tracker, &request(hash(1), 1, 6001, 0));
    let reason = failure_reason(&tracker.get("/scrape"));
    assert!(reason.contains("full scrape"), "{reason}");

    let tracker = TestTracker::start(config(|c| c.scrape.full_scrape = true));
    ok_announce(&tracker, &request(hash(1), 1, 6001, 0));
    ok_announce(&tracker, &request(hash(2), 1, 6001, 5));
    let reply = tracker.get("/scrape");
    assert_bencoded_200(&reply);
    let files = scrape_files(ScrapeResponse::from_bytes(&reply.body).unwrap());
    assert_eq!(
        files.keys().copied().collect::<Vec<_>>(),
        [hash(1), hash(2)]
    );
}

#[test]
fn numwant_is_capped() {
    let tracker = TestTracker::start(config(|c| {
        c.announce.default_numwant = 2;
        c.announce.max_numwant = 3;
    }));
    for n in 0..6 {
        ok_announce(&tracker, &request(hash(1), n, 7000 + u16::from(n), 100));
    }
    let mut asks_many = request(hash(1), 10, 7010, 100);
    asks_many.numwant = Some(100);
    assert_eq!(ok_announce(&tracker, &asks_many).peers.len(), 3);
    assert_eq!(
        ok_announce(&tracker, &request(hash(1), 10, 7010, 100))
            .peers
            .len(),
        2
    );
    let mut asks_one = request(hash(1), 10, 7010, 100);
    asks_one.numwant = Some(1);
    assert_eq!(ok_announce(&tracker, &asks_one).peers.len(), 1);
}

#[test]
fn every_bad_http_request_gets_a_bencoded_failure_and_the_tracker_stays_up() {
    let tracker = TestTracker::start(Config::default());
    let good = request(hash(1), 1, 6001, 100).to_query();
    let without_hash = good
        .split('&')
        .filter(|p| !p.starts_with("info_hash="))
        .collect::<Vec<_>>()
        .join("&");
    let too_many: Vec<InfoHash> = (0..=64).map(hash).collect();
    let cases = [
        ("/announce".to_owned(), "info_hash"),
        ("/announce?garbage%%%&&==".to_owned(), "escape"),
        ("/announce?\u{1}\u{2}".to_owned(), "info_hash"),
        (format!("/announce?{without_hash}"), "info_hash"),
        (format!("/announce?{good}&info_hash=%00"), "info_hash"),
        (
            "/announce?info_hash=short&peer_id=x&port=1".to_owned(),
            "info_hash",
        ),
        (
            format!("/announce?{}", good.replace("port=6001", "port=70000")),
            "port",
        ),
        (
            format!("/announce?{}", good.replace("left=100", "left=-1")),
            "left",
        ),
        (format!("/announce?{good}&event=exploded"), "event"),
        (
            format!("/announce?{good}&pad={}", "x".repeat(5000)),
            "limit",
        ),
        (
            format!(
                "/scrape?{}",
                ScrapeRequest {
                    info_hashes: too_many
                }
                .to_query()
            ),
            "info hashes",
        ),
        ("/scrape?info_hash=abc".to_owned(), "info_hash"),
        ("/scrape?info_hash=%zz".to_owned(), "escape"),
    ];
    for (path, expected) in &cases {
        let reason = failure_reason(&tracker.get(path));
        assert!(
            reason.contains(expected),
            "{path}: {reason:?} should mention {expected:?}"
        );
    }
    // Still serving.
    assert_eq!(tracker.get("/health").body, b"ok");
    ok_announce(&tracker, &request(hash(1), 1, 6001, 100));
    // An unknown path is a plain 404, not a tracker reply.
    assert_eq!(tracker.get("/nowhere").status, 404);
}

#[test]
fn forwarded_for_is_ignored_from_untrusted_peers() {
    let tracker = TestTracker::start(Config::default());
    let path = format!("/announce?{}", request(hash(1), 1, 6001, 100).to_query());
    let headers = [
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Real-IP", "203.0.113.8"),
    ];
    success(decode_announce(&tracker.get_with_headers(&path, &headers)));
    let seen = ok_announce(&tracker, &request(hash(1), 2, 6002, 100));
    assert_eq!(addrs(&seen), [sa("127.0.0.1:6001")]);
}

#[test]
fn forwarded_for_is_believed_from_trusted_proxies() {
    let tracker = TestTracker::start(config(|c| {
        c.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    }));
    let path = format!("/announce?{}", request(hash(1), 1, 6001, 100).to_query());
    // The client claimed 198.51.100.1; our proxy saw 203.0.113.7.
    let headers = [("X-Forwarded-For", "198.51.100.1, 203.0.113.7")];
    success(decode_announce(&tracker.get_with_headers(&path, &headers)));
    let seen = ok_announce(&tracker, &request(hash(1), 2, 6002, 100));
    assert_eq!(addrs(&seen), [sa("203.0.113.7:6001")]);
}

#[test]
fn real_ip_is_believed_from_trusted_proxies_only() {
    let path = format!("/announce?{}", request(hash(1), 1, 6001, 100).to_query());
    let headers = [("X-Real-IP", "203.0.113.9")];
    let seen_after = |tracker: &TestTracker| {
        success(decode_announce(&tracker.get_with_headers(&path, &headers)));
        addrs(&ok_announce(tracker, &request(hash(1), 2, 6002, 100)))
    };
    let trusted = TestTracker::start(config(|c| {
        c.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }));
    assert_eq!(seen_after(&trusted), [sa("203.0.113.9:6001")]);
    let untrusted = TestTracker::start(config(|c| {
        c.http.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    }));
    assert_eq!(seen_after(&untrusted), [sa("127.0.0.1:6001")]);
}

/// Peers not heard from within `peer_ttl_secs` are dropped by the purge timer, and so is
/// the torrent once its swarm is empty (a bounded wait for the tracker's own timer).
#[test]
fn silent_peers_expire_and_empty_torrents_are_dropped() {
    let tracker = TestTracker::start(config(|c| {
        c.announce.interval_secs = 1;
        c.announce.interval_jitter_secs = 0;
        c.announce.min_interval_secs = 1;
        c.swarm.peer_ttl_secs = 2;
        c.swarm.purge_interval_secs = 1;
    }));
    ok_announce(&tracker, &request(hash(1), 1, 6001, 100));
    ok_announce(&tracker, &request(hash(1), 2, 6002, 0));
    let stats =
        || -> serde_json::Value { serde_json::from_slice(&tracker.get("/stats").body).unwrap() };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while stats()["torrents"] != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never purged: {}",
            stats()
        );
        std::thread::park_timeout(std::time::Duration::from_millis(50));
    }
    let after = stats();
    assert_eq!(
        (&after["seeders"], &after["leechers"]),
        (&0.into(), &0.into())
    );
    let files = scrape_files(scrape(&tracker, &[hash(1)]));
    assert_eq!(files[&hash(1)].complete + files[&hash(1)].incomplete, 0);
    // A newcomer is handed nobody.
    assert!(
        ok_announce(&tracker, &request(hash(1), 3, 6003, 100))
            .peers
            .is_empty()
    );
}

#[test]
fn ip_parameter_only_when_allowed() {
    let claim = |tracker: &TestTracker| {
        let mut claimed = request(hash(1), 1, 6001, 100);
        claimed.ip = Some("192.0.2.55".to_owned());
        ok_announce(tracker, &claimed);
        addrs(&ok_announce(tracker, &request(hash(1), 2, 6002, 100)))
    };
    let tracker = TestTracker::start(Config::default());
    assert_eq!(claim(&tracker), [sa("127.0.0.1:6001")]);
    let tracker = TestTracker::start(config(|c| c.announce.allow_ip_param = true));
    assert_eq!(claim(&tracker), [sa("192.0.2.55:6001")]);
}

#[test]
fn stats_count_requests_and_peers() {
    let tracker = TestTracker::start(Config::default());
    ok_announce(&tracker, &request(hash(1), 1, 6001, 100));
    ok_announce(&tracker, &request(hash(1), 2, 6002, 0));
    scrape(&tracker, &[hash(1)]);
    failure_reason(&tracker.get("/announce?nonsense"));
    let reply = tracker.get("/stats");
    assert_eq!(reply.status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(stats["torrents"], 1, "{stats}");
    assert_eq!(stats["seeders"], 1, "{stats}");
    assert_eq!(stats["leechers"], 1, "{stats}");
    assert_eq!(stats["announces"], 2, "{stats}");
    assert_eq!(stats["scrapes"], 1, "{stats}");
    assert_eq!(stats["http"]["failures"], 1, "{stats}");
}

#[test]
fn graceful_stop_returns_ok() {
    let tracker = TestTracker::start(Config::default());
    ok_announce(&tracker, &request(hash(1), 1, 6001, 100));
    tracker.stop().expect("a clean stop");
}

#[test]
fn percent_encoding_of_every_byte_is_accepted() {
    // Info hashes whose bytes are all "special": every byte is escaped, and `+` is literal.
    let tracker = TestTracker::start(Config::default());
    let weird = InfoHash::from_bytes(*b"+ &=%?#/\\\0\x7f\xff+ &=%?#/");
    let query = format!(
        "info_hash={}&peer_id={}&port=6001&left=5",
        percent_encode_bytes(weird.as_bytes()),
        percent_encode_bytes(peer_id(1).as_bytes())
    );
    success(decode_announce(&tracker.get(&format!("/announce?{query}"))));
    let files = scrape_files(scrape(&tracker, &[weird]));
    assert_eq!(files[&weird].incomplete, 1);
}
