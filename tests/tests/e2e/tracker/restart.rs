//! Private mode across restarts of the `rill-tracker` binary, on one database (each test
//! runs on SQLite and on PostgreSQL, see [`on_both!`]):
//! SIGTERM drains everything; `kill -9` loses at most what was announced since the last
//! flush; after a restart the next announce is credited from the saved baseline (exactly
//! once), and the swarm comes back.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::{AnnounceReply, AnnounceRequest, AnnounceResponse};
use rill_tests::tracker::TestDb;
use rill_tests::{http_get, tracker_bin};
use rill_tracker::private::Passkey;

use super::{hash, peer_id};

/// Bound on the tracker flushing what it was sent (its interval is 1 s).
const FLUSH_SEEN: Duration = Duration::from_secs(30);

/// A `rill-tracker --private` process on `db`, HTTP on a free loopback port, UDP off.
struct Running {
    child: Child,
    http: String,
}

impl Running {
    fn start(db: &TestDb, flush_secs: u64) -> Self {
        let config = db.dir().join("tracker.toml");
        std::fs::write(
            &config,
            format!(
                "[private]\nflush_interval_secs = {flush_secs}\nswarm_file = {:?}\n",
                db.swarm_file().display().to_string()
            ),
        )
        .unwrap();
        let mut child = Command::new(tracker_bin())
            .args(["--private", "--db", &db.url, "--config"])
            .arg(&config)
            .args(["--http", "127.0.0.1:0", "--udp", "off"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rill-tracker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("private tracker"), "{line}");
        let http = line
            .split_whitespace()
            .find_map(|word| word.strip_prefix("http://"))
            .and_then(|rest| rest.strip_suffix("/announce/<passkey>"))
            .unwrap_or_else(|| panic!("no HTTP address in {line:?}"))
            .to_owned();
        Running { child, http }
    }

    fn announce(&self, passkey: &Passkey, request: &AnnounceRequest) -> AnnounceReply {
        let base = format!("http://{}/announce/{}", self.http, passkey.as_str());
        let (status, body) = http_get(&request.announce_url(&base)).unwrap();
        assert_eq!(status, 200);
        match AnnounceResponse::from_bytes(&body).unwrap() {
            AnnounceResponse::Success(reply) => reply,
            AnnounceResponse::Failure(reason) => panic!("refused: {reason}"),
        }
    }

    /// SIGTERM, and a clean exit.
    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful stop exits 0, got {status}");
    }

    /// SIGKILL: no chance to flush.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn leecher(uploaded: u64, downloaded: u64, event: Option<AnnounceEvent>) -> AnnounceRequest {
    let mut request = AnnounceRequest::new(hash(1), peer_id(1), 6001);
    request.left = 1 << 30;
    request.uploaded = uploaded;
    request.downloaded = downloaded;
    request.event = event;
    request
}

/// Waits (bounded) until alice's uploaded credit reaches `uploaded`, and returns it.
fn wait_uploaded(db: &TestDb, uploaded: u64) -> u64 {
    let deadline = Instant::now() + FLUSH_SEEN;
    loop {
        let seen = db.stats("alice").uploaded;
        if seen >= uploaded {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "the tracker did not flush {uploaded} within {FLUSH_SEEN:?}: {seen}"
        );
        // The wait is for another process's timer.
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

fn site(db: TestDb) -> (TestDb, Passkey) {
    let alice = db.add_user("alice");
    db.add_user("bob");
    db.add_torrent(hash(1), false);
    (db, alice)
}

on_both!(
    sigterm_loses_nothing_and_a_restart_credits_exactly_once,
    kill_9_loses_at_most_one_flush_interval_and_never_double_credits,
);

fn sigterm_loses_nothing_and_a_restart_credits_exactly_once(db: TestDb) {
    let (db, alice) = site(db);
    let bob = TestDb::passkey_of("bob");
    // An hour between flushes: only the drain at SIGTERM can write.
    let tracker = Running::start(&db, 3600);
    tracker.announce(&alice, &leecher(0, 0, Some(AnnounceEvent::Started)));
    tracker.announce(&alice, &leecher(1000, 500, None));
    tracker.terminate();
    let stats = db.stats("alice");
    assert_eq!((stats.uploaded, stats.downloaded), (1000, 500));

    let tracker = Running::start(&db, 3600);
    // The swarm survived: bob is handed alice's peer.
    let mut other = AnnounceRequest::new(hash(1), peer_id(2), 6002);
    other.left = 0;
    let reply = tracker.announce(&bob, &other);
    let peers: Vec<String> = reply.peers.iter().map(|p| p.addr.to_string()).collect();
    assert_eq!(peers, ["127.0.0.1:6001"]);
    // The next announce is credited from the saved baseline: +500 up, +200 down.
    tracker.announce(&alice, &leecher(1500, 700, None));
    tracker.terminate();
    let stats = db.stats("alice");
    assert_eq!((stats.uploaded, stats.downloaded), (1500, 700));
}

fn kill_9_loses_at_most_one_flush_interval_and_never_double_credits(db: TestDb) {
    let (db, alice) = site(db);
    let tracker = Running::start(&db, 1);
    tracker.announce(&alice, &leecher(0, 0, Some(AnnounceEvent::Started)));
    tracker.announce(&alice, &leecher(1000, 0, None));
    // Within one interval it is in the database ...
    assert_eq!(wait_uploaded(&db, 1000), 1000);
    // ... so a kill -9 loses at most what came after.
    tracker.announce(&alice, &leecher(2000, 0, None));
    tracker.kill_9();
    let kept = db.stats("alice").uploaded;
    assert!(kept == 1000 || kept == 2000, "{kept}");

    // After the restart, the stored baseline matches the stored credit: the next announce
    // brings the total to exactly what the client reports, whichever flush survived.
    let tracker = Running::start(&db, 1);
    tracker.announce(&alice, &leecher(3000, 0, None));
    assert_eq!(wait_uploaded(&db, 3000), 3000);
    tracker.terminate();
    assert_eq!(db.stats("alice").uploaded, 3000);
}
