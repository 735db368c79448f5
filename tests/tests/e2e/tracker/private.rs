//! Private mode in process, over HTTP and UDP: passkeys, refusals, the allow-list, the rate
//! limit, accounting credited to the database, registry changes taking effect while the
//! tracker runs, and bad passkeys writing nothing. Every test runs twice ([`on_both!`]): on
//! a SQLite file in a temp dir and on a fresh schema of the PostgreSQL server named by
//! `RILL_TEST_POSTGRES` ([`TestDb`]; skipped with a notice when unset, failing under `CI`).

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::AnnounceRequest;
use rill_common::tracker::udp::{AnnounceRequest as UdpAnnounce, Request, Response};
use rill_common::{InfoHash, PeerId};
use rill_tests::TestTracker;
use rill_tests::tracker::TestDb;
use rill_tracker::Config;
use rill_tracker::private::Passkey;

use super::{addrs, decode_announce, failure_reason, hash, peer_id, request, sa, success};

on_both!(
    http_passkeys_users_and_torrents_are_checked,
    ip_param_is_never_believed_in_private_mode,
    announces_are_credited_to_the_database,
    rate_limit_and_allow_list,
    sql_metacharacters_in_a_passkey_are_refused_and_write_nothing,
    udp_passkey_in_bep41_url_data,
    admin_api_changes_take_effect_while_running,
    registry_reloads_run_apart_from_flushes,
);

/// Alice (enabled) and Bob (disabled); torrent 1 registered, 2 freeleech, 9 not registered.
struct Site {
    db: TestDb,
    alice: Passkey,
    bob: Passkey,
}

fn site(db: TestDb) -> Site {
    let alice = db.add_user("alice");
    let bob = db.add_user("bob");
    db.disable_user("bob", "ratio too low");
    db.add_torrent(hash(1), false);
    db.add_torrent(hash(2), true);
    Site { db, alice, bob }
}

fn start(db: &TestDb, edit: impl FnOnce(&mut Config)) -> TestTracker {
    let mut config = db.config();
    edit(&mut config);
    TestTracker::start(config)
}

fn announce_path(passkey: &str, request: &AnnounceRequest) -> String {
    format!("/announce/{passkey}?{}", request.to_query())
}

fn private_announce(
    tracker: &TestTracker,
    passkey: &Passkey,
    request: &AnnounceRequest,
) -> rill_common::tracker::http::AnnounceReply {
    success(decode_announce(
        &tracker.get(&announce_path(passkey.as_str(), request)),
    ))
}

fn refusal(tracker: &TestTracker, passkey: &str, request: &AnnounceRequest) -> String {
    failure_reason(&tracker.get(&announce_path(passkey, request)))
}

/// `request` with counters and an event.
fn with(
    mut request: AnnounceRequest,
    uploaded: u64,
    downloaded: u64,
    event: Option<AnnounceEvent>,
) -> AnnounceRequest {
    request.uploaded = uploaded;
    request.downloaded = downloaded;
    request.event = event;
    request
}

fn http_passkeys_users_and_torrents_are_checked(db: TestDb) {
    let Site { db, alice, bob } = site(db);
    let tracker = start(&db, |c| {
        c.announce.tracker_id = Some("rill-test".to_owned());
        c.announce.warning_message = Some("be nice".to_owned());
    });
    let leecher = request(hash(1), 1, 6001, 100);

    let reason = failure_reason(&tracker.get(&format!("/announce?{}", leecher.to_query())));
    assert!(reason.contains("/announce/<passkey>"), "{reason}");
    assert_eq!(refusal(&tracker, "short", &leecher), "invalid passkey");
    let unknown = TestDb::passkey_of("mallory");
    assert_eq!(
        refusal(&tracker, unknown.as_str(), &leecher),
        "unknown passkey"
    );
    assert_eq!(
        refusal(&tracker, bob.as_str(), &leecher),
        "account disabled: ratio too low"
    );
    assert_eq!(
        refusal(&tracker, alice.as_str(), &request(hash(9), 1, 6001, 100)),
        "torrent not registered with this tracker"
    );
    // A `stopped` for a torrent that is not registered is answered with success.
    let stop = with(
        request(hash(9), 1, 6001, 100),
        0,
        0,
        Some(AnnounceEvent::Stopped),
    );
    let stopped = private_announce(&tracker, &alice, &stop);
    assert!(stopped.peers.is_empty());

    // Admitted: a normal swarm, with the configured tracker id and warning.
    let first = private_announce(&tracker, &alice, &leecher);
    assert!(first.peers.is_empty());
    assert_eq!(first.tracker_id.as_deref(), Some(&b"rill-test"[..]));
    assert_eq!(first.warning_message.as_deref(), Some("be nice"));
    let carol = db.add_user("carol");
    tracker.sync(); // carol was added while the tracker runs
    let second = private_announce(&tracker, &carol, &request(hash(1), 2, 6002, 0));
    assert_eq!(addrs(&second), [sa("127.0.0.1:6001")]);

    // Scrape with a passkey: registered torrents only.
    let scrape = tracker.get(&format!(
        "/scrape/{}?info_hash={}&info_hash={}",
        alice.as_str(),
        hash(1).to_percent_encoded(),
        hash(9).to_percent_encoded()
    ));
    let files = match rill_common::tracker::http::ScrapeResponse::from_bytes(&scrape.body) {
        Ok(rill_common::tracker::http::ScrapeResponse::Success(reply)) => reply.files,
        other => panic!("{other:?}: {}", scrape.text()),
    };
    assert_eq!(files[&hash(1)].complete, 1);
    assert_eq!(files[&hash(1)].incomplete, 1);
    assert_eq!(files[&hash(9)].complete + files[&hash(9)].incomplete, 0);
    let reason = failure_reason(&tracker.get(&format!(
        "/scrape?info_hash={}",
        hash(1).to_percent_encoded()
    )));
    assert!(reason.contains("private"), "{reason}");
    let reason = failure_reason(&tracker.get(&format!(
        "/scrape/{}?info_hash={}",
        bob.as_str(),
        hash(1).to_percent_encoded()
    )));
    assert!(reason.starts_with("account disabled"), "{reason}");

    let stats: serde_json::Value = serde_json::from_slice(&tracker.get("/stats").body).unwrap();
    assert_eq!(stats["mode"], "private");
    assert_eq!(stats["private"]["users"], 3);
    assert_eq!(stats["private"]["registered_torrents"], 2);
    assert_eq!(stats["private"]["refused_passkey"], 4);
    assert_eq!(stats["private"]["refused_disabled"], 2);
    assert_eq!(stats["private"]["refused_unregistered"], 1);
}

fn ip_param_is_never_believed_in_private_mode(db: TestDb) {
    let Site { db, alice, .. } = site(db);
    let tracker = start(&db, |c| c.announce.allow_ip_param = true);
    let mut claimed = request(hash(1), 1, 6001, 100);
    claimed.ip = Some("192.0.2.7".to_owned());
    private_announce(&tracker, &alice, &claimed);
    let viewer = private_announce(&tracker, &alice, &request(hash(1), 2, 6002, 100));
    assert_eq!(addrs(&viewer), [sa("127.0.0.1:6001")]);
}

fn announces_are_credited_to_the_database(db: TestDb) {
    let Site { db, alice, .. } = site(db);
    let tracker = start(&db, |_| {});
    let base = request(hash(1), 1, 6001, 1000);
    private_announce(
        &tracker,
        &alice,
        &with(base.clone(), 0, 0, Some(AnnounceEvent::Started)),
    );
    private_announce(&tracker, &alice, &with(base.clone(), 100, 400, None));
    let mut done = with(base.clone(), 300, 1000, Some(AnnounceEvent::Completed));
    done.left = 0;
    private_announce(&tracker, &alice, &done);
    // A duplicate `completed` counts no second snatch and credits nothing new.
    private_announce(&tracker, &alice, &done);
    // Freeleech: download not credited.
    let free = request(hash(2), 1, 6001, 1000);
    private_announce(
        &tracker,
        &alice,
        &with(free.clone(), 0, 0, Some(AnnounceEvent::Started)),
    );
    private_announce(
        &tracker,
        &alice,
        &with(free, 50, 700, Some(AnnounceEvent::Stopped)),
    );
    tracker.sync();
    let stats = db.stats("alice");
    assert_eq!(stats.uploaded, 350);
    assert_eq!(stats.downloaded, 1000);
    assert_eq!(stats.snatches, 1);
    // A client restart (counters back to 0) re-baselines: nothing credited, nothing lost.
    private_announce(
        &tracker,
        &alice,
        &with(base.clone(), 0, 0, Some(AnnounceEvent::Started)),
    );
    private_announce(&tracker, &alice, &with(base, 20, 0, None));
    tracker.sync();
    assert_eq!(db.stats("alice").uploaded, 370);
    // The metrics show the writes.
    let metrics = tracker.get("/metrics").text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rill_tracker_flushes_total ")
                && l != "rill_tracker_flushes_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rill_tracker_flush_backlog{kind=\"credits\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rill_tracker_flush_backlog{kind=\"peers\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nrill_tracker_flush_failures_total 0\n"),
        "{metrics}"
    );
    // Flush latency: a total and the last write's, in seconds, non-zero after writes.
    let seconds = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(seconds("rill_tracker_flush_duration_seconds_sum") > 0.0);
    assert!(seconds("rill_tracker_flush_last_duration_seconds") > 0.0);
    assert!(
        seconds("rill_tracker_registry_reloads_total") >= 2.0,
        "two syncs"
    );
}

fn rate_limit_and_allow_list(db: TestDb) {
    let Site { db, alice, .. } = site(db);
    let tracker = start(&db, |c| {
        c.private.rate_limit_burst = 2;
        c.private.rate_limit_per_minute = 1;
    });
    let leecher = request(hash(1), 1, 6001, 100);
    private_announce(&tracker, &alice, &leecher);
    private_announce(&tracker, &alice, &leecher);
    assert_eq!(
        refusal(&tracker, alice.as_str(), &leecher),
        "announce rate limit exceeded: slow down"
    );
    // `stopped` is exempt, and a reload keeps the bucket (still refused after a sync).
    let stop = with(leecher.clone(), 0, 0, Some(AnnounceEvent::Stopped));
    private_announce(&tracker, &alice, &stop);
    tracker.sync();
    assert!(refusal(&tracker, alice.as_str(), &leecher).contains("rate limit"));

    // The allow-list, changed while the tracker runs.
    let dave = db.add_user("dave");
    db.allow_client("-TR");
    tracker.sync();
    let rill_client = request(hash(1), 3, 6003, 100); // peer id "-RL0100-…"
    assert_eq!(
        refusal(&tracker, dave.as_str(), &rill_client),
        "client not allowed on this tracker"
    );
    let mut transmission = rill_client.clone();
    transmission.peer_id = PeerId::from_bytes(*b"-TR3000-abcdefghijkl");
    private_announce(&tracker, &dave, &transmission);
}

fn sql_metacharacters_in_a_passkey_are_refused_and_write_nothing(db: TestDb) {
    let Site { db, alice, .. } = site(db);
    let tracker = start(&db, |_| {});
    let leecher = request(hash(1), 1, 6001, 100);
    let users = db.user_count();
    for evil in [
        "'%20OR%20'1'%3D'1",
        "%27%3B%20DROP%20TABLE%20users%3B%20--",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'--",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%00",
        "..%2F..%2Fetc%2Fpasswd",
        "a/b",
        "%E2%80%AEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        assert_eq!(
            refusal(&tracker, evil, &leecher),
            "invalid passkey",
            "{evil}"
        );
        let scrape = tracker.get(&format!(
            "/scrape/{evil}?info_hash={}",
            hash(1).to_percent_encoded()
        ));
        assert_eq!(failure_reason(&scrape), "invalid passkey", "{evil}");
    }
    tracker.sync();
    let stats: serde_json::Value = serde_json::from_slice(&tracker.get("/stats").body).unwrap();
    assert_eq!(stats["private"]["peers"], 0, "no baseline was made");
    assert_eq!(stats["torrents"], 0, "no swarm was made");
    assert_eq!(db.user_count(), users);
    assert_eq!(db.stats("alice"), Default::default());
    // The tracker still serves.
    private_announce(&tracker, &alice, &leecher);
}

fn udp_announce(connection_id: u64, info_hash: InfoHash, url_data: &str, uploaded: u64) -> Request {
    Request::Announce(UdpAnnounce {
        connection_id,
        transaction_id: 5,
        info_hash,
        peer_id: peer_id(4),
        downloaded: 0,
        left: 10,
        uploaded,
        event: None,
        ip: std::net::Ipv4Addr::UNSPECIFIED,
        key: 0,
        num_want: -1,
        port: 6004,
        url_data: url_data.as_bytes().to_vec(),
    })
}

fn udp_error(response: Response) -> String {
    match response {
        Response::Error { message, .. } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn udp_passkey_in_bep41_url_data(db: TestDb) {
    let Site { db, alice, bob } = site(db);
    let tracker = start(&db, |_| {});
    let client = tracker.udp_client();
    let id = client.connect(1);
    let path = format!("/announce/{}", alice.as_str());

    let reason = udp_error(client.request(&udp_announce(id, hash(1), "", 0)));
    assert!(reason.contains("private"), "{reason}");
    let reason = udp_error(client.request(&udp_announce(id, hash(1), "/announce", 0)));
    assert!(reason.contains("private"), "{reason}");
    let reason = udp_error(client.request(&udp_announce(id, hash(1), "/announce/x'--", 0)));
    assert_eq!(reason, "invalid passkey");
    let bob_path = format!("/announce/{}", bob.as_str());
    let reason = udp_error(client.request(&udp_announce(id, hash(1), &bob_path, 0)));
    assert!(reason.starts_with("account disabled"), "{reason}");
    let reason = udp_error(client.request(&udp_announce(id, hash(9), &path, 0)));
    assert_eq!(reason, "torrent not registered with this tracker");

    for uploaded in [0, 5000] {
        match client.request(&udp_announce(id, hash(1), &format!("{path}?x=1"), uploaded)) {
            Response::Announce { leechers, .. } => assert_eq!(leechers, 1),
            other => panic!("{other:?}"),
        }
    }
    // A BEP 15 scrape carries no URL data: refused in private mode.
    let scrape = Request::Scrape {
        connection_id: id,
        transaction_id: 6,
        info_hashes: vec![hash(1)],
    };
    assert!(udp_error(client.request(&scrape)).contains("private"));
    tracker.sync();
    assert_eq!(db.stats("alice").uploaded, 5000);
}

fn admin_api_changes_take_effect_while_running(db: TestDb) {
    let Site { db, .. } = site(db);
    let token = "a-long-enough-admin-token";
    let tracker = start(&db, |c| c.admin_token = Some(token.to_owned()));
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];

    let refused = tracker.post_json("/admin/users", &[], r#"{"name":"erin"}"#);
    assert_eq!(refused.status, 401, "{}", refused.text());
    let created = tracker.post_json("/admin/users", &auth, r#"{"name":"erin"}"#);
    assert_eq!(created.status, 201, "{}", created.text());
    let user: serde_json::Value = serde_json::from_slice(&created.body).unwrap();
    let erin = Passkey::parse(user["passkey"].as_str().unwrap()).unwrap();
    let body = format!(r#"{{"info_hash":"{}"}}"#, hash(3).to_hex());
    let registered = tracker.post_json("/admin/torrents", &auth, &body);
    assert_eq!(registered.status, 201, "{}", registered.text());
    tracker.sync();
    private_announce(&tracker, &erin, &request(hash(3), 5, 6005, 100));

    let disabled = tracker.post_json("/admin/users/erin/disable", &auth, r#"{"reason":"bye"}"#);
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    tracker.sync();
    assert_eq!(
        refusal(&tracker, erin.as_str(), &request(hash(3), 5, 6005, 100)),
        "account disabled: bye"
    );
}

/// Writes run every flush interval, but the registry is reloaded only every reload interval
/// (it reads every row) or at once on request: a user added from outside is unknown after
/// a flush, and known after a sync.
fn registry_reloads_run_apart_from_flushes(db: TestDb) {
    let Site { db, alice, .. } = site(db);
    let tracker = start(&db, |c| {
        c.private.flush_interval_secs = 1;
        c.private.reload_interval_secs = 3600;
    });
    let stats =
        || -> serde_json::Value { serde_json::from_slice(&tracker.get("/stats").body).unwrap() };
    let carol = db.add_user("carol");
    let base = request(hash(1), 1, 6001, 1000);
    private_announce(&tracker, &alice, &with(base.clone(), 0, 0, None));
    private_announce(&tracker, &alice, &with(base, 10, 0, None));
    // Bounded wait for the flush timer (another task's clock, not a delay of ours).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while db.stats("alice").uploaded < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "no flush: {}",
            stats()
        );
        std::thread::park_timeout(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        stats()["private"]["registry_reloads"],
        0,
        "a flush reloads nothing"
    );
    assert_eq!(
        refusal(&tracker, carol.as_str(), &request(hash(1), 2, 6002, 0)),
        "unknown passkey"
    );
    tracker.sync();
    assert_eq!(stats()["private"]["registry_reloads"], 1);
    private_announce(&tracker, &carol, &request(hash(1), 2, 6002, 0));
}
