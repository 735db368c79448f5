//! Tests of the database layer, each run on SQLite (a fresh file) and on PostgreSQL (a
//! fresh schema; see `testing.rs` for `RILL_TEST_POSTGRES`).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::tracker::AnnounceEvent;
use rill_common::{InfoHash, PeerId};

use super::testing::{TestDb, on_both};
use super::*;
use crate::private::{
    Credit, Delta, PeerChange, PeerKey, PeerRecord, PrivateAnnounce, PrivateConfig, PrivateTracker,
    Session, TorrentId, UserId,
};

const T0: u64 = 1_700_000_000;

fn key(seed: u64) -> Passkey {
    Passkey::generate(&mut StdRng::seed_from_u64(seed))
}

fn hash(n: u8) -> InfoHash {
    InfoHash::from_bytes([n; 20])
}

fn peer(n: u8) -> PeerId {
    let mut id = [n; 20];
    id[..8].copy_from_slice(b"-RL0100-");
    PeerId::from_bytes(id)
}

fn config() -> PrivateConfig {
    PrivateConfig {
        rate_limit: None,
        ..PrivateConfig::default()
    }
}

fn announce(
    info_hash: InfoHash,
    peer_id: PeerId,
    up: u64,
    down: u64,
    left: u64,
) -> PrivateAnnounce {
    PrivateAnnounce {
        info_hash,
        peer_id,
        event: None,
        uploaded: up,
        downloaded: down,
        left,
    }
}

async fn count(db: &Db, table: &str) -> i64 {
    db.count(table).await
}

async fn migrations_run_on_a_fresh_file_and_reopening_is_idempotent(t: &TestDb) {
    let db = t.open().await;
    assert_eq!(db.kind(), t.kind);
    for table in [
        "users",
        "torrents",
        "user_torrent",
        "peers",
        "allowed_clients",
        "swarms",
    ] {
        assert_eq!(count(&db, table).await, 0, "{table}");
    }
    assert_eq!(count(&db, "_sqlx_migrations").await, 2);
    if t.kind == "sqlite" {
        assert_eq!(db.query_text("PRAGMA journal_mode").await, "wal");
    }
    db.add_user("alice", &key(1)).await.unwrap();
    db.close().await;

    let db = t.open().await;
    assert_eq!(count(&db, "_sqlx_migrations").await, 2);
    assert_eq!(db.list_users().await.unwrap().len(), 1);
    if let Some(rest) = t.url.strip_prefix("postgres://") {
        // The libpq spelling of the scheme names the same database.
        let db = Db::open(&format!("postgresql://{rest}")).await.unwrap();
        assert_eq!(db.list_users().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn other_schemes_are_refused_clearly() {
    let err = Db::open("mysql://localhost/rill").await.unwrap_err();
    assert!(matches!(err, DbError::UnsupportedUrl(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "unsupported database URL \"mysql://localhost/rill\": expected sqlite://PATH or postgres://…"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_server_is_a_database_error() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let err = Db::open("postgres://rill:rill@127.0.0.1:1/rill")
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Sqlx(_)), "{err}");
}

async fn user_admin_operations_round_trip(t: &TestDb) {
    let db = t.open().await;
    let alice = db.add_user("alice", &key(1)).await.unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.disabled, None);
    let err = db.add_user("alice", &key(2)).await.unwrap_err();
    assert_eq!(err.to_string(), "user alice already exists");
    let err = db.add_user("carol", &key(1)).await.unwrap_err();
    assert!(matches!(err, DbError::DuplicatePasskey), "{err}");
    let bob = db.add_user("bob", &key(2)).await.unwrap();
    assert_ne!(alice.id, bob.id);
    for bad in ["", "a\nb", &"x".repeat(65)] {
        assert!(matches!(
            db.add_user(bad, &key(9)).await,
            Err(DbError::InvalidName(_))
        ));
    }

    let disabled = db.disable_user("bob", "ratio too low").await.unwrap();
    assert_eq!(disabled.disabled.as_deref(), Some("ratio too low"));
    let registry = db.load_registry().await.unwrap();
    assert_eq!(
        registry.user(bob.id).unwrap().disabled.as_deref(),
        Some("ratio too low")
    );
    assert_eq!(db.enable_user("bob").await.unwrap().disabled, None);

    let err = db.reset_passkey("bob", &key(1)).await.unwrap_err();
    assert!(matches!(err, DbError::DuplicatePasskey), "{err}");
    let reset = db.reset_passkey("bob", &key(3)).await.unwrap();
    assert_eq!(reset.passkey, key(3));
    let registry = db.load_registry().await.unwrap();
    assert_eq!(registry.user_by_passkey(&key(3)).unwrap().id, bob.id);
    assert!(registry.user_by_passkey(&key(2)).is_none());

    assert_eq!(
        db.list_users().await.unwrap(),
        vec![alice.clone(), db.user("bob").await.unwrap()]
    );
    for err in [
        db.disable_user("zed", "x").await.unwrap_err(),
        db.enable_user("zed").await.unwrap_err(),
        db.reset_passkey("zed", &key(4)).await.unwrap_err(),
        db.user_stats("zed").await.unwrap_err(),
    ] {
        assert_eq!(err.to_string(), "no user named zed");
    }
    assert_eq!(db.user_stats("alice").await.unwrap(), UserStats::default());
}

async fn torrent_admin_operations_round_trip(t: &TestDb) {
    let db = t.open().await;
    let one = db.add_torrent(&hash(1), false).await.unwrap();
    let two = db.add_torrent(&hash(2), true).await.unwrap();
    assert!(two.freeleech && !one.freeleech);
    assert_eq!(one.upload_multiplier, crate::private::UploadMultiplier::ONE);
    let err = db.add_torrent(&hash(1), true).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("torrent {} is already registered", hash(1))
    );
    assert_eq!(db.list_torrents().await.unwrap(), vec![one, two]);
    let registry = db.load_registry().await.unwrap();
    assert_eq!(registry.torrent(&hash(2)), Some(&two));

    assert_eq!(db.remove_torrent(&hash(1)).await.unwrap(), one);
    assert!(matches!(
        db.remove_torrent(&hash(1)).await,
        Err(DbError::UnknownTorrent(_))
    ));
    // Ids are never reused: a re-registered info hash is a new torrent.
    let again = db.add_torrent(&hash(1), false).await.unwrap();
    assert!(again.id > two.id);

    let prefix = crate::private::ClientPrefix::parse("-qB").unwrap();
    db.allow_client(&prefix).await.unwrap();
    db.allow_client(&prefix).await.unwrap();
    assert_eq!(
        db.load_registry().await.unwrap().allowed_clients(),
        &[prefix]
    );
}

/// Announces, flushes, "restarts" on the stored state, and checks the next announce is
/// credited from the stored baseline: once, not twice, not from zero.
async fn a_restart_on_stored_state_credits_the_next_announce_once(t: &TestDb) {
    let db = t.open().await;
    let alice = db.add_user("alice", &key(1)).await.unwrap();
    let torrent = db.add_torrent(&hash(1), false).await.unwrap();

    let mut tracker = PrivateTracker::new(config(), db.load_registry().await.unwrap());
    let mut first = announce(hash(1), peer(1), 0, 0, 0);
    first.event = Some(AnnounceEvent::Started);
    let admitted = tracker.check(&key(1), &first, T0).unwrap();
    assert_eq!(admitted.session, Session::New);
    tracker
        .check(&key(1), &announce(hash(1), peer(1), 1000, 0, 0), T0 + 60)
        .unwrap();
    let batch = tracker.take_pending();
    db.apply(&batch).await.unwrap();
    db.close().await;

    let db = t.open().await;
    let snapshot = db.load_snapshot().await.unwrap();
    assert_eq!(snapshot, tracker.snapshot());
    let mut restarted = PrivateTracker::new(config(), db.load_registry().await.unwrap());
    restarted.restore(snapshot);
    let admitted = restarted
        .check(&key(1), &announce(hash(1), peer(1), 1500, 0, 0), T0 + 120)
        .unwrap();
    assert_eq!(admitted.session, Session::Continued);
    assert_eq!(admitted.credited.uploaded, 500);
    assert_eq!(admitted.credited.seeding_secs, 60);
    db.apply(&restarted.take_pending()).await.unwrap();

    let stats = db.user_stats("alice").await.unwrap();
    assert_eq!(stats.uploaded, 1500);
    assert_eq!(stats.seeding_secs, 120);
    let stored = db.load_snapshot().await.unwrap();
    assert_eq!(stored.peers.len(), 1);
    assert_eq!(stored.peers[0].uploaded, 1500);
    assert_eq!(stored.seeded_until, vec![(alice.id, torrent.id, T0 + 120)]);

    // `stopped` credits the last delta and deletes the stored baseline.
    let mut stop = announce(hash(1), peer(1), 1600, 0, 0);
    stop.event = Some(AnnounceEvent::Stopped);
    restarted.check(&key(1), &stop, T0 + 130).unwrap();
    db.apply(&restarted.take_pending()).await.unwrap();
    assert_eq!(db.load_snapshot().await.unwrap().peers, vec![]);
    assert_eq!(db.user_stats("alice").await.unwrap().uploaded, 1600);
}

async fn applying_one_batch_twice_credits_twice_so_the_caller_keeps_one_in_flight(t: &TestDb) {
    let db = t.open().await;
    let alice = db.add_user("alice", &key(1)).await.unwrap();
    let batch = Batch {
        credits: vec![Credit {
            user: alice.id,
            torrent: TorrentId(1),
            delta: Delta {
                uploaded: 10,
                downloaded: 20,
                snatches: 1,
                seeding_secs: 30,
            },
            seeded_until: T0,
        }],
        peers: vec![],
    };
    db.apply(&batch).await.unwrap();
    db.apply(&batch).await.unwrap();
    let stats = db.user_stats("alice").await.unwrap();
    assert_eq!(
        stats,
        UserStats {
            uploaded: 20,
            downloaded: 40,
            snatches: 2,
            seeding_secs: 60
        }
    );
    // Sums saturate at i64::MAX rather than overflow (u64 deltas are clamped to it too).
    let mut huge = batch.clone();
    huge.credits[0].delta.uploaded = u64::MAX;
    db.apply(&huge).await.unwrap();
    db.apply(&huge).await.unwrap();
    let stats = db.user_stats("alice").await.unwrap();
    assert_eq!(stats.uploaded, i64::MAX as u64);
    assert_eq!(stats.downloaded, 80);
    // seeded_until is max(stored, new), and 0 changes nothing.
    let mut older = batch.clone();
    older.credits[0].seeded_until = 0;
    db.apply(&older).await.unwrap();
    assert_eq!(
        db.load_snapshot().await.unwrap().seeded_until,
        vec![(alice.id, TorrentId(1), T0)]
    );
}

/// A write that fails half-way (a trigger aborts the peer upserts, after the credits were
/// written) leaves nothing behind; the batch given back is retried and lands exactly once.
async fn a_failed_apply_writes_nothing_and_the_restored_batch_is_retried(t: &TestDb) {
    let db = t.open().await;
    db.add_user("alice", &key(1)).await.unwrap();
    db.add_torrent(&hash(1), false).await.unwrap();
    let mut tracker = PrivateTracker::new(config(), db.load_registry().await.unwrap());
    tracker
        .check(&key(1), &announce(hash(1), peer(1), 0, 0, 100), T0)
        .unwrap();
    db.apply(&tracker.take_pending()).await.unwrap();
    tracker
        .check(&key(1), &announce(hash(1), peer(1), 700, 100, 0), T0 + 60)
        .unwrap();

    let (create, drop) = failing_trigger(t);
    for sql in create {
        db.execute_raw(sql).await.unwrap();
    }
    let batch = tracker.take_pending();
    assert!(!batch.credits.is_empty() && !batch.peers.is_empty());
    let err = db.apply(&batch).await.unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(count(&db, "user_torrent").await, 0);
    assert_eq!(db.load_snapshot().await.unwrap().peers[0].uploaded, 0);
    tracker.restore_pending(batch);

    // A closed pool fails too, and writes nothing.
    let closed = t.open().await;
    closed.close().await;
    let batch = tracker.take_pending();
    assert!(matches!(closed.apply(&batch).await, Err(DbError::Sqlx(_))));
    tracker.restore_pending(batch);

    db.execute_raw(drop).await.unwrap();
    db.apply(&tracker.take_pending()).await.unwrap();
    let stats = db.user_stats("alice").await.unwrap();
    assert_eq!((stats.uploaded, stats.downloaded), (700, 100));
    assert_eq!(db.load_snapshot().await.unwrap(), tracker.snapshot());
    assert!(tracker.take_pending().is_empty());
}

/// A batch built by hand, out of order and naming keys twice, lands the same on both
/// backends: credits summed per key, the last baseline change per peer wins.
async fn unsorted_batches_with_repeated_keys_are_merged(t: &TestDb) {
    let db = t.open().await;
    let alice = db.add_user("alice", &key(1)).await.unwrap();
    let bob = db.add_user("bob", &key(2)).await.unwrap();
    let credit = |user: UserId, uploaded: u64, seeded_until: u64| Credit {
        user,
        torrent: TorrentId(1),
        delta: Delta {
            uploaded,
            downloaded: 1,
            snatches: 1,
            seeding_secs: 10,
        },
        seeded_until,
    };
    let record = |user: UserId, uploaded: u64| PeerRecord {
        key: PeerKey {
            user,
            torrent: TorrentId(1),
            peer_id: peer(1),
        },
        uploaded,
        downloaded: 0,
        last_seen: T0,
        seeder: true,
        snatched: false,
        carry: 0,
    };
    let batch = Batch {
        credits: vec![
            credit(bob.id, 5, T0),
            credit(alice.id, 100, T0 + 9),
            credit(bob.id, u64::MAX, 0),
            credit(alice.id, 20, T0 + 3),
        ],
        peers: vec![
            PeerChange::Upsert(record(bob.id, 1)),
            PeerChange::Upsert(record(alice.id, 7)),
            PeerChange::Remove(record(bob.id, 0).key),
            PeerChange::Upsert(record(alice.id, 8)),
        ],
    };
    db.apply(&batch).await.unwrap();
    let stats = db.user_stats("alice").await.unwrap();
    assert_eq!(
        stats,
        UserStats {
            uploaded: 120,
            downloaded: 2,
            snatches: 2,
            seeding_secs: 20
        }
    );
    assert_eq!(
        db.user_stats("bob").await.unwrap().uploaded,
        i64::MAX as u64
    );
    let snapshot = db.load_snapshot().await.unwrap();
    assert_eq!(snapshot.peers, vec![record(alice.id, 8)]);
    assert_eq!(
        snapshot.seeded_until,
        vec![(alice.id, TorrentId(1), T0 + 9), (bob.id, TorrentId(1), T0)]
    );
}

/// SQL that makes every update of `peers` fail with "disk on fire", and SQL that undoes it.
fn failing_trigger(t: &TestDb) -> (Vec<&'static str>, &'static str) {
    if t.kind == "sqlite" {
        let create = "CREATE TRIGGER fail_peers BEFORE UPDATE ON peers \
                      BEGIN SELECT RAISE(ABORT, 'disk on fire'); END";
        (vec![create], "DROP TRIGGER fail_peers")
    } else {
        let function = "CREATE FUNCTION fail_peers() RETURNS trigger LANGUAGE plpgsql AS \
                        $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$";
        let trigger = "CREATE TRIGGER fail_peers BEFORE UPDATE ON peers \
                       FOR EACH ROW EXECUTE FUNCTION fail_peers()";
        (vec![function, trigger], "DROP TRIGGER fail_peers ON peers")
    }
}

/// More rows than one statement may bind: the chunks all land, in one transaction.
async fn large_batches_are_chunked_under_the_bind_limit(t: &TestDb) {
    let db = t.open().await;
    let record = |user: u64, n: u8| PeerRecord {
        key: PeerKey {
            user: UserId(user),
            torrent: TorrentId(1),
            peer_id: peer(n),
        },
        uploaded: user,
        downloaded: 2 * user,
        last_seen: T0,
        seeder: n.is_multiple_of(2),
        snatched: n.is_multiple_of(3),
        carry: 42,
    };
    // Enough rows for three statements of each kind under this dialect's limit.
    let limit = db.backend.dialect().max_binds as u64;
    let (users, credited) = (limit / 3 + 5, 2 * (limit / 7) + 5);
    let credits: Vec<Credit> = (1..=credited)
        .map(|user| Credit {
            user: UserId(user),
            torrent: TorrentId(1),
            delta: Delta {
                uploaded: user,
                ..Delta::default()
            },
            seeded_until: 0,
        })
        .collect();
    let peers: Vec<PeerChange> = (1..=users)
        .flat_map(|user| [record(user, 1), record(user, 2)])
        .map(PeerChange::Upsert)
        .collect();
    db.apply(&Batch { credits, peers }).await.unwrap();
    assert_eq!(count(&db, "user_torrent").await as u64, credited);
    assert_eq!(count(&db, "peers").await as u64, 2 * users);
    let sum = db
        .query_int("SELECT CAST(SUM(uploaded) AS BIGINT) FROM user_torrent")
        .await;
    assert_eq!(sum as u64, credited * (credited + 1) / 2);
    let snapshot = db.load_snapshot().await.unwrap();
    assert_eq!(snapshot.peers[0], record(1, 1));
    assert_eq!(snapshot.peers[1], record(1, 2));

    let removals: Vec<PeerChange> = (1..=users)
        .map(|user| PeerChange::Remove(record(user, 1).key))
        .collect();
    db.apply(&Batch {
        credits: vec![],
        peers: removals,
    })
    .await
    .unwrap();
    let left = db.load_snapshot().await.unwrap().peers;
    assert_eq!(left.len() as u64, users);
    assert!(left.iter().all(|p| p.key.peer_id == peer(2)));
}

async fn sql_metacharacters_are_stored_verbatim_and_change_nothing_else(t: &TestDb) {
    let db = t.open().await;
    let alice = db.add_user("alice", &key(1)).await.unwrap();
    let evil = "'; DROP TABLE users; --";
    let mallory = db.add_user(evil, &key(2)).await.unwrap();
    let quoted = "x\" OR 1=1; DELETE FROM torrents WHERE '1'='1";
    db.add_torrent(&hash(1), false).await.unwrap();
    let disabled = db.disable_user(evil, quoted).await.unwrap();
    assert_eq!(disabled.name, evil);
    assert_eq!(disabled.disabled.as_deref(), Some(quoted));

    let users = db.list_users().await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0], alice);
    assert_eq!(users[1].name, evil);
    assert_eq!(users[1].id, mallory.id);
    assert_eq!(db.list_torrents().await.unwrap().len(), 1);
    assert_eq!(
        db.user(evil).await.unwrap().disabled.as_deref(),
        Some(quoted)
    );
    // A name that only looks like a match selects nothing.
    let err = db.user("' OR '1'='1").await.unwrap_err();
    assert!(matches!(err, DbError::UnknownUser(_)), "{err}");
    let err = db.enable_user("alice' OR '1'='1").await.unwrap_err();
    assert!(matches!(err, DbError::UnknownUser(_)), "{err}");
    assert_eq!(db.user("alice").await.unwrap().disabled, None);
}

/// Many admin writes at once, some failing on a duplicate: each fails only for its own
/// reason, never with "database is locked" (SQLite write transactions begin IMMEDIATE, so
/// one that read first never has to upgrade its lock against another writer).
async fn concurrent_admin_writes_never_see_a_locked_database(t: &TestDb) {
    let db = t.open().await;
    let mut tasks = Vec::new();
    for round in 0..4u64 {
        for n in 0..8u64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                // Every name twice per round: one of the pair fails as a duplicate.
                db.add_user(&format!("user{round}x{}", n / 2), &key(100 * round + n))
                    .await
            }));
        }
    }
    let (mut added, mut duplicates) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => added += 1,
            Err(DbError::DuplicateUser(_)) => duplicates += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((added, duplicates), (16, 16));
    assert_eq!(db.list_users().await.unwrap().len(), 16);
}

on_both!(
    migrations_run_on_a_fresh_file_and_reopening_is_idempotent,
    user_admin_operations_round_trip,
    torrent_admin_operations_round_trip,
    a_restart_on_stored_state_credits_the_next_announce_once,
    applying_one_batch_twice_credits_twice_so_the_caller_keeps_one_in_flight,
    a_failed_apply_writes_nothing_and_the_restored_batch_is_retried,
    large_batches_are_chunked_under_the_bind_limit,
    unsorted_batches_with_repeated_keys_are_merged,
    sql_metacharacters_are_stored_verbatim_and_change_nothing_else,
    concurrent_admin_writes_never_see_a_locked_database,
    saved_swarms_are_replaced_whole,
);

/// Each save replaces the previous one whole (fewer parts leave none of the old behind),
/// bytes come back as they went in, in part order.
async fn saved_swarms_are_replaced_whole(t: &TestDb) {
    let db = t.open().await;
    assert!(db.load_swarms().await.unwrap().is_empty());
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let parts = vec![b"one".to_vec(), Vec::new(), big];
    db.save_swarms(&parts, T0).await.unwrap();
    assert_eq!(db.load_swarms().await.unwrap(), parts);
    db.save_swarms(&[b"two".to_vec()], T0 + 5).await.unwrap();
    assert_eq!(db.load_swarms().await.unwrap(), [b"two".to_vec()]);
    db.close().await;
}
