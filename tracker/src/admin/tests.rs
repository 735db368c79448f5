//! Tests of the admin commands ([`run`]) on both database backends, the clap shape of
//! [`Command`], and the input parsers. The REST API's tests are in `tests/api.rs`.

mod api;

use clap::Parser;
use proptest::prelude::*;

use super::*;
use crate::db::testing::{TestDb, on_both};
use crate::private::{Batch, Credit, Delta, TorrentId};

const BASE: &str = "http://tracker.example:6969";

fn fixture(name: &str) -> String {
    format!("{}/../fixtures/torrents/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The binary's shape: admin commands flattened into its subcommands.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn parse(args: &[&str]) -> Result<Command, clap::Error> {
    Cli::try_parse_from(std::iter::once("rill-tracker").chain(args.iter().copied()))
        .map(|cli| cli.command)
}

fn cmd(args: &[&str]) -> Command {
    parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

async fn run_ok(db: &Db, args: &[&str]) -> String {
    run(&cmd(args), db, BASE)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

async fn run_err(db: &Db, args: &[&str]) -> AdminError {
    match run(&cmd(args), db, BASE).await {
        Ok(text) => panic!("{args:?} succeeded: {text}"),
        Err(e) => e,
    }
}

#[test]
fn the_command_line_parses_into_commands() {
    assert_eq!(
        cmd(&["user", "add", "alice", "--json"]),
        Command::User(UserCommand::Add {
            name: "alice".into(),
            output: Output { json: true },
        })
    );
    assert_eq!(
        cmd(&["user", "disable", "bob", "--reason", "ratio"]),
        Command::User(UserCommand::Disable {
            name: "bob".into(),
            reason: Some("ratio".into()),
            output: Output::default(),
        })
    );
    assert_eq!(
        cmd(&["user", "passkey-reset", "bob"]),
        Command::User(UserCommand::PasskeyReset {
            name: "bob".into(),
            output: Output::default(),
        })
    );
    assert_eq!(
        cmd(&[
            "torrent",
            "add",
            "x.torrent",
            "--freeleech",
            "--multiplier",
            "2.5"
        ]),
        Command::Torrent(TorrentCommand::Add {
            torrent: "x.torrent".into(),
            freeleech: true,
            multiplier: Some(UploadMultiplier(250)),
            output: Output::default(),
        })
    );
    assert_eq!(
        cmd(&["stats"]),
        Command::Stats {
            name: None,
            output: Output::default()
        }
    );
    assert_eq!(
        cmd(&["stats", "alice", "--json"]),
        Command::Stats {
            name: Some("alice".into()),
            output: Output { json: true }
        }
    );
    let err = parse(&["torrent", "add", "x", "--multiplier", "1.234"]).unwrap_err();
    assert!(
        err.to_string().contains("invalid upload multiplier"),
        "{err}"
    );
    assert!(parse(&["user", "add"]).is_err());
    assert!(parse(&["user", "frobnicate", "x"]).is_err());
}

#[test]
fn multipliers_parse_exactly_in_percent() {
    for (text, percent) in [
        ("1", 100),
        ("1.5", 150),
        ("1.50", 150),
        ("0.25", 25),
        ("0", 0),
        ("2.05", 205),
        ("100", 10_000),
    ] {
        assert_eq!(
            parse_multiplier(text).unwrap(),
            UploadMultiplier(percent),
            "{text}"
        );
    }
    for bad in [
        "", "1.", ".5", "1.234", "-1", "+1", "1e2", " 1", "abc", "100.01", "1000", "1,5", "½",
        "0x10",
    ] {
        assert!(
            matches!(parse_multiplier(bad), Err(AdminError::BadMultiplier(_))),
            "{bad:?}"
        );
    }
    assert_eq!(format_multiplier(UploadMultiplier(150)), "1.5");
    assert_eq!(format_multiplier(UploadMultiplier(100)), "1");
    assert_eq!(format_multiplier(UploadMultiplier(5)), "0.05");
    assert_eq!(format_multiplier(UploadMultiplier(0)), "0");
}

proptest! {
    #[test]
    fn every_multiplier_round_trips_through_its_text(percent in 0..=MAX_MULTIPLIER_PERCENT) {
        let multiplier = UploadMultiplier(percent);
        prop_assert_eq!(parse_multiplier(&format_multiplier(multiplier)).unwrap(), multiplier);
    }

    #[test]
    fn arbitrary_multiplier_text_never_panics(text in ".{0,12}") {
        if let Ok(multiplier) = parse_multiplier(&text) {
            prop_assert!(multiplier.0 <= MAX_MULTIPLIER_PERCENT);
        }
    }
}

#[test]
fn announce_urls_join_the_base_and_the_passkey() {
    let key = Passkey::parse("abcdefghijklmnopqrstuvwxyz012345").unwrap();
    let want = "http://t.example:6969/announce/abcdefghijklmnopqrstuvwxyz012345";
    for base in [
        "http://t.example:6969",
        "http://t.example:6969/",
        "http://t.example:6969/announce",
        "http://t.example:6969/announce/",
    ] {
        assert_eq!(announce_url(base, &key), want, "{base}");
    }
}

fn passkey_in(text: &str) -> Passkey {
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("passkey: "))
        .unwrap_or_else(|| panic!("no passkey line in {text}"));
    Passkey::parse(line).unwrap()
}

async fn user_commands(t: &TestDb) {
    let db = t.open().await;
    let text = run_ok(&db, &["user", "add", "alice"]).await;
    let key = passkey_in(&text);
    assert!(text.starts_with("added user alice (id "), "{text}");
    assert!(
        text.contains(&format!("announce URL: {BASE}/announce/{}", key.as_str())),
        "{text}"
    );
    assert_eq!(db.user("alice").await.unwrap().passkey, key);

    let err = run_err(&db, &["user", "add", "alice"]).await;
    assert_eq!(err.to_string(), "user alice already exists");
    let long = "x".repeat(65);
    for bad in ["", "a\tb", long.as_str()] {
        let err = run_err(&db, &["user", "add", bad]).await;
        assert!(
            matches!(err, AdminError::Db(DbError::InvalidName(_))),
            "{err}"
        );
    }

    let json = run_ok(&db, &["user", "add", "bob", "--json"]).await;
    let bob: UserView = serde_json::from_str(&json).unwrap();
    assert_eq!(bob.name, "bob");
    assert_eq!(
        bob.announce_url.as_deref(),
        Some(format!("{BASE}/announce/{}", bob.passkey).as_str())
    );
    // SQL metacharacters are a name like any other: stored verbatim, nothing else changes.
    let evil = "'; DROP TABLE users; --";
    run_ok(&db, &["user", "add", evil]).await;

    let list = run_ok(&db, &["user", "list"]).await;
    assert!(list.contains("alice") && list.contains("bob") && list.contains(evil));
    assert!(list.ends_with("3 user(s)\n"), "{list}");
    let users: Vec<UserView> =
        serde_json::from_str(&run_ok(&db, &["user", "list", "--json"]).await).unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", evil]);
    assert_eq!(users[1], bob);

    let text = run_ok(
        &db,
        &["user", "disable", "bob", "--reason", "ratio too low"],
    )
    .await;
    assert_eq!(
        text,
        format!(
            "disabled user bob (id {}, disabled: ratio too low)\n",
            bob.id
        )
    );
    let view: UserView =
        serde_json::from_str(&run_ok(&db, &["user", "disable", "alice", "--json"]).await).unwrap();
    assert_eq!(view.disabled.as_deref(), Some(DEFAULT_DISABLE_REASON));
    let err = run_err(&db, &["user", "disable", "bob", "--reason", "a\nb"]).await;
    assert!(matches!(err, AdminError::BadReason), "{err}");
    let registry = db.load_registry().await.unwrap();
    assert_eq!(
        registry.user_by_passkey(&key).unwrap().disabled.as_deref(),
        Some(DEFAULT_DISABLE_REASON)
    );
    let text = run_ok(&db, &["user", "enable", "alice"]).await;
    assert!(text.contains("(id 1, enabled)"), "{text}");
    assert_eq!(db.user("alice").await.unwrap().disabled, None);

    let text = run_ok(&db, &["user", "passkey-reset", "alice"]).await;
    let new_key = passkey_in(&text);
    assert_ne!(new_key, key);
    assert!(text.contains(&format!("{BASE}/announce/{}", new_key.as_str())));
    let registry = db.load_registry().await.unwrap();
    assert!(registry.user_by_passkey(&key).is_none());
    assert!(registry.user_by_passkey(&new_key).is_some());

    for args in [
        &["user", "disable", "zed"][..],
        &["user", "enable", "zed"],
        &["user", "passkey-reset", "zed"],
        &["stats", "zed"],
    ] {
        let err = run_err(&db, args).await;
        assert_eq!(err.to_string(), "no user named zed", "{args:?}");
    }
    assert_eq!(db.list_users().await.unwrap().len(), 3);
}

async fn torrent_commands(t: &TestDb) {
    let db = t.open().await;
    let hex = "0123456789abcdef0123456789abcdef01234567";
    let text = run_ok(
        &db,
        &["torrent", "add", hex, "--freeleech", "--multiplier", "1.5"],
    )
    .await;
    assert_eq!(
        text,
        format!("registered torrent {hex} (id 1, upload ×1.5, freeleech)\n")
    );
    let err = run_err(&db, &["torrent", "add", &hex.to_uppercase()]).await;
    assert!(
        matches!(err, AdminError::Db(DbError::DuplicateTorrent(_))),
        "{err}"
    );

    // A .torrent file: the info hash of its raw info dictionary.
    let json = run_ok(
        &db,
        &[
            "torrent",
            "add",
            &fixture("valid/mk_single.torrent"),
            "--json",
        ],
    )
    .await;
    let view: TorrentView = serde_json::from_str(&json).unwrap();
    assert_eq!(view.info_hash, "300bdfb68c80d4b93e27a1281aa894c0680f8cfa");
    assert_eq!(
        (view.freeleech, view.upload_multiplier_percent),
        (false, 100)
    );
    // Base32 names the same torrent.
    let b32 = InfoHash::from_hex(&view.info_hash).unwrap().to_base32();
    let err = run_err(&db, &["torrent", "add", &b32]).await;
    assert!(matches!(err, AdminError::Db(DbError::DuplicateTorrent(_))));

    for bad in [
        "xyz",
        "'; DROP TABLE torrents; --",
        &hex[..39],
        "g123456789abcdef0123456789abcdef01234567",
    ] {
        let err = run_err(&db, &["torrent", "add", bad]).await;
        assert!(matches!(err, AdminError::BadTorrentArg(_)), "{bad}: {err}");
    }
    let err = run_err(&db, &["torrent", "add", "/nonexistent/x.torrent"]).await;
    assert!(matches!(err, AdminError::ReadTorrentFile { .. }), "{err}");
    let err = run_err(
        &db,
        &["torrent", "add", &fixture("malformed/garbage.torrent")],
    )
    .await;
    assert!(matches!(err, AdminError::BadTorrentFile { .. }), "{err}");
    assert!(
        err.to_string().contains("is not a valid .torrent file"),
        "{err}"
    );

    let list = run_ok(&db, &["torrent", "list"]).await;
    assert!(list.contains(hex) && list.contains("300bdfb6"), "{list}");
    assert!(list.ends_with("2 torrent(s)\n"), "{list}");
    let all: Vec<TorrentView> =
        serde_json::from_str(&run_ok(&db, &["torrent", "list", "--json"]).await).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].upload_multiplier_percent, 150);
    assert!(all[0].freeleech);

    let text = run_ok(&db, &["torrent", "remove", hex]).await;
    assert!(
        text.starts_with(&format!("removed torrent {hex}")),
        "{text}"
    );
    let err = run_err(&db, &["torrent", "remove", hex]).await;
    assert!(
        matches!(err, AdminError::Db(DbError::UnknownTorrent(_))),
        "{err}"
    );
    run_ok(
        &db,
        &["torrent", "remove", &fixture("valid/mk_single.torrent")],
    )
    .await;
    assert!(db.list_torrents().await.unwrap().is_empty());
}

async fn stats_command(t: &TestDb) {
    let db = t.open().await;
    let alice = db.add_user("alice", &new_passkey()).await.unwrap();
    db.add_user("bob", &new_passkey()).await.unwrap();
    let credit = |torrent, uploaded| Credit {
        user: alice.id,
        torrent: TorrentId(torrent),
        delta: Delta {
            uploaded,
            downloaded: 7,
            snatches: 1,
            seeding_secs: 60,
        },
        seeded_until: 0,
    };
    db.apply(&Batch {
        credits: vec![credit(1, 1000), credit(2, 24)],
        peers: vec![],
    })
    .await
    .unwrap();

    let one: StatsView =
        serde_json::from_str(&run_ok(&db, &["stats", "alice", "--json"]).await).unwrap();
    let want = StatsView {
        name: "alice".into(),
        uploaded: 1024,
        downloaded: 14,
        snatches: 2,
        seeding_secs: 120,
    };
    assert_eq!(one, want);
    let all: Vec<StatsView> =
        serde_json::from_str(&run_ok(&db, &["stats", "--json"]).await).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], want);
    assert_eq!((all[1].name.as_str(), all[1].uploaded), ("bob", 0));
    let text = run_ok(&db, &["stats"]).await;
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().nth(1).unwrap().contains("1024"), "{text}");
}

on_both!(user_commands, torrent_commands, stats_command);
