//! Restarts of the `rill-tracker` binary on one database (each test runs on SQLite and on
//! PostgreSQL, see [`on_both!`]).
//!
//! Private mode: SIGTERM drains everything; `kill -9` loses at most what was announced
//! since the last flush; after a restart the next announce is credited from the saved
//! baseline (exactly once), and the swarm comes back.
//!
//! Public mode: the swarms (peers, seeders and leechers, scrape's `downloaded`) survive
//! SIGTERM whole, and a `kill -9` loses at most what came after the last save.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::{
    AnnounceReply, AnnounceRequest, AnnounceResponse, ScrapeRequest, ScrapeResponse,
};
use rill_tests::tracker::TestDb;
use rill_tests::{http_get, tracker_bin};
use rill_tracker::private::Passkey;
use rill_tracker::swarm::ScrapeCounts;

use super::{hash, peer_id};

/// Bound on the tracker flushing what it was sent (its interval is 1 s).
const FLUSH_SEEN: Duration = Duration::from_secs(30);

/// A `rill-tracker` process on `db`, HTTP on a free loopback port, UDP off.
struct Running {
    child: Child,
    http: String,
}

impl Running {
    /// Private mode, writing the accounting every `flush_secs`.
    fn start(db: &TestDb, flush_secs: u64) -> Self {
        Self::spawn(
            db,
            true,
            &format!("[private]\nflush_interval_secs = {flush_secs}\n"),
        )
    }

    /// Public mode, saving the swarms every `save_secs`.
    fn public(db: &TestDb, save_secs: u64) -> Self {
        Self::spawn(
            db,
            false,
            &format!("[swarm]\nsave_interval_secs = {save_secs}\n"),
        )
    }

    fn spawn(db: &TestDb, private: bool, toml: &str) -> Self {
        let config = db.dir().join("tracker.toml");
        std::fs::write(&config, toml).unwrap();
        let mut command = Command::new(tracker_bin());
        if private {
            command.arg("--private");
        }
        let mut child = command
            .args(["--db", &db.url, "--config"])
            .arg(&config)
            .args(["--http", "127.0.0.1:0", "--udp", "off"])
            .current_dir(db.dir())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rill-tracker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let (mode, suffix) = if private {
            ("private tracker", "/announce/<passkey>")
        } else {
            ("public tracker", "/announce")
        };
        assert!(line.contains(mode), "{line}");
        let http = line
            .split_whitespace()
            .find_map(|word| word.strip_prefix("http://"))
            .and_then(|rest| rest.strip_suffix(suffix))
            .unwrap_or_else(|| panic!("no HTTP address in {line:?}"))
            .to_owned();
        Running { child, http }
    }

    /// A public announce.
    fn announce_public(&self, request: &AnnounceRequest) -> AnnounceReply {
        let base = format!("http://{}/announce", self.http);
        let (status, body) = http_get(&request.announce_url(&base)).unwrap();
        assert_eq!(status, 200);
        match AnnounceResponse::from_bytes(&body).unwrap() {
            AnnounceResponse::Success(reply) => reply,
            AnnounceResponse::Failure(reason) => panic!("refused: {reason}"),
        }
    }

    /// A public scrape of torrent 1.
    fn scrape(&self) -> ScrapeCounts {
        let request = ScrapeRequest {
            info_hashes: vec![hash(1)],
        };
        let url = format!("http://{}/scrape?{}", self.http, request.to_query());
        let (status, body) = http_get(&url).unwrap();
        assert_eq!(status, 200);
        let ScrapeResponse::Success(files) = ScrapeResponse::from_bytes(&body).unwrap() else {
            panic!("scrape refused");
        };
        let file = files.files.get(&hash(1)).expect("torrent 1 in the scrape");
        ScrapeCounts {
            complete: file.complete,
            incomplete: file.incomplete,
            downloaded: file.downloaded,
        }
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
    public_swarms_and_scrape_counts_survive_sigterm,
    public_kill_9_loses_at_most_one_save_interval,
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

/// A public seeder that completed (port 6001) and a leecher (port 6002) on torrent 1.
fn public_swarm(tracker: &Running) {
    let mut seeder = AnnounceRequest::new(hash(1), peer_id(1), 6001);
    seeder.left = 0;
    seeder.event = Some(AnnounceEvent::Completed);
    tracker.announce_public(&seeder);
    let mut leecher = AnnounceRequest::new(hash(1), peer_id(2), 6002);
    leecher.left = 1 << 20;
    tracker.announce_public(&leecher);
}

/// The peers a new leecher (port 6003) is handed, sorted.
fn handed(tracker: &Running) -> Vec<String> {
    let mut newcomer = AnnounceRequest::new(hash(1), peer_id(3), 6003);
    newcomer.left = 1 << 20;
    newcomer.numwant = Some(50);
    let reply = tracker.announce_public(&newcomer);
    let mut peers: Vec<String> = reply.peers.iter().map(|p| p.addr.to_string()).collect();
    peers.sort();
    peers
}

fn public_swarms_and_scrape_counts_survive_sigterm(db: TestDb) {
    // An hour between saves: only the save at SIGTERM can write.
    let tracker = Running::public(&db, 3600);
    public_swarm(&tracker);
    let before = tracker.scrape();
    assert_eq!(
        before,
        ScrapeCounts {
            complete: 1,
            incomplete: 1,
            downloaded: 1
        }
    );
    tracker.terminate();

    let tracker = Running::public(&db, 3600);
    assert_eq!(
        tracker.scrape(),
        before,
        "seeders, leechers and downloaded kept"
    );
    assert_eq!(handed(&tracker), ["127.0.0.1:6001", "127.0.0.1:6002"]);
    // The seeder's completion was counted before the restart: not again.
    let mut again = AnnounceRequest::new(hash(1), peer_id(1), 6001);
    again.left = 0;
    again.event = Some(AnnounceEvent::Completed);
    tracker.announce_public(&again);
    assert_eq!(tracker.scrape().downloaded, 1);
    tracker.terminate();
}

/// Waits (bounded) until the database holds a save of the swarms with `peers` peers on
/// torrent 1.
fn wait_saved(db: &TestDb, peers: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let saved = rill_tracker::db::Db::open(&db.url);
    let saved = runtime.block_on(saved).unwrap();
    let deadline = Instant::now() + FLUSH_SEEN;
    loop {
        let parts = runtime.block_on(saved.load_swarms()).unwrap();
        let seen: usize = parts
            .iter()
            .flat_map(|part| rill_tracker::swarm::snapshot::decode(part).unwrap())
            .filter(|t| t.info_hash == hash(1))
            .map(|t| t.peers.len())
            .sum();
        if seen >= peers {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tracker did not save {peers} peers within {FLUSH_SEEN:?}: {seen}"
        );
        // The wait is for another process's timer.
        std::thread::park_timeout(Duration::from_millis(50));
    }
    runtime.block_on(saved.close());
}

fn public_kill_9_loses_at_most_one_save_interval(db: TestDb) {
    let tracker = Running::public(&db, 1);
    public_swarm(&tracker);
    // Within one interval the swarm is in the database ...
    wait_saved(&db, 2);
    // ... so a kill -9 loses at most what came after: this third peer.
    let mut late = AnnounceRequest::new(hash(1), peer_id(4), 6004);
    late.left = 1 << 20;
    tracker.announce_public(&late);
    tracker.kill_9();

    let tracker = Running::public(&db, 1);
    let counts = tracker.scrape();
    assert_eq!((counts.complete, counts.downloaded), (1, 1), "{counts:?}");
    assert!(
        counts.incomplete == 1 || counts.incomplete == 2,
        "the leecher saved before the kill is back, the late one perhaps: {counts:?}"
    );
    let peers = handed(&tracker);
    assert!(
        peers.starts_with(&["127.0.0.1:6001".to_owned(), "127.0.0.1:6002".to_owned()]),
        "{peers:?}"
    );
    tracker.terminate();
}
