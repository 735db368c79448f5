//! The SQLite backend: one file in WAL mode, migrations from `migrations/sqlite/`.
//!
//! Multi-row statements are chunked so that no statement binds more than
//! [`MAX_BINDS`] variables (SQLite's historic `SQLITE_MAX_VARIABLE_NUMBER`, the lowest any
//! build uses). SQL text is built only from constant fragments and placeholder counts.

use std::borrow::Cow;
use std::str::FromStr;

use rill_common::{InfoHash, PeerId};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlitePool};

use super::{DbError, UserStats};
use crate::private::{
    Batch, ClientPrefix, Passkey, PeerChange, PeerKey, PeerRecord, Registry, Snapshot, Torrent,
    TorrentId, UploadMultiplier, User, UserId,
};

/// The most variables one statement binds.
const MAX_BINDS: usize = 999;

/// The embedded migrations, in version order.
fn migrator() -> Migrator {
    let initial = include_str!("../../migrations/sqlite/0001_initial.sql");
    Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("initial"),
        MigrationType::Simple,
        initial.into_sql_str(),
        false,
    )])
}

/// Opens (creating) the file at `path` in WAL mode and runs the migrations.
pub(super) async fn open(path: &str) -> Result<SqlitePool, DbError> {
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL + NORMAL survives a killed process (the tracker's crash model); only an
        // OS crash or power loss can drop the last commits.
        .synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    migrator().run(&pool).await?;
    Ok(pool)
}

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

type UserRow = (i64, String, String, Option<String>);
type TorrentRow = (i64, Vec<u8>, i64, i64);

const USER_COLUMNS: &str = "id, name, passkey, disabled_reason";
const TORRENT_COLUMNS: &str = "id, info_hash, freeleech, upload_multiplier_percent";

fn user_from_row((id, name, passkey, disabled): UserRow) -> Result<User, DbError> {
    let passkey = Passkey::parse(&passkey).map_err(|e| DbError::Corrupt {
        table: "users",
        detail: format!("user {name}: {e}"),
    })?;
    Ok(User {
        id: UserId(from_sql(id)),
        name,
        passkey,
        disabled,
    })
}

fn torrent_from_row((id, info_hash, freeleech, percent): TorrentRow) -> Result<Torrent, DbError> {
    let info_hash = InfoHash::from_slice(&info_hash).map_err(|e| DbError::Corrupt {
        table: "torrents",
        detail: format!("torrent id {id}: {e}"),
    })?;
    Ok(Torrent {
        id: TorrentId(from_sql(id)),
        info_hash,
        freeleech: freeleech != 0,
        upload_multiplier: UploadMultiplier(u32::try_from(percent).unwrap_or(0)),
    })
}

pub(super) async fn list_users(pool: &SqlitePool) -> Result<Vec<User>, DbError> {
    let sql = AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"));
    let rows: Vec<UserRow> = sqlx::query_as(sql).fetch_all(pool).await?;
    rows.into_iter().map(user_from_row).collect()
}

pub(super) async fn list_torrents(pool: &SqlitePool) -> Result<Vec<Torrent>, DbError> {
    let sql = AssertSqlSafe(format!(
        "SELECT {TORRENT_COLUMNS} FROM torrents ORDER BY id"
    ));
    let rows: Vec<TorrentRow> = sqlx::query_as(sql).fetch_all(pool).await?;
    rows.into_iter().map(torrent_from_row).collect()
}

pub(super) async fn load_registry(pool: &SqlitePool) -> Result<Registry, DbError> {
    let corrupt = |table| {
        move |e: crate::private::RegistryError| DbError::Corrupt {
            table,
            detail: e.to_string(),
        }
    };
    let mut registry = Registry::new();
    for user in list_users(pool).await? {
        registry.add_user(user).map_err(corrupt("users"))?;
    }
    for torrent in list_torrents(pool).await? {
        registry.add_torrent(torrent).map_err(corrupt("torrents"))?;
    }
    let prefixes: Vec<(String,)> =
        sqlx::query_as("SELECT prefix FROM allowed_clients ORDER BY prefix")
            .fetch_all(pool)
            .await?;
    let clients = prefixes
        .iter()
        .map(|(p,)| ClientPrefix::parse(p).map_err(corrupt("allowed_clients")))
        .collect::<Result<Vec<_>, _>>()?;
    registry.set_allowed_clients(clients);
    Ok(registry)
}

type PeerRow = (i64, i64, Vec<u8>, i64, i64, i64, i64, i64, i64);

pub(super) async fn load_snapshot(pool: &SqlitePool) -> Result<Snapshot, DbError> {
    let rows: Vec<PeerRow> = sqlx::query_as(
        "SELECT user_id, torrent_id, peer_id, uploaded, downloaded, last_seen, seeder, \
         snatched, carry FROM peers ORDER BY user_id, torrent_id, peer_id",
    )
    .fetch_all(pool)
    .await?;
    let peers = rows
        .into_iter()
        .map(
            |(user, torrent, peer_id, up, down, seen, seeder, snatched, carry)| {
                let peer_id = PeerId::from_slice(&peer_id).map_err(|e| DbError::Corrupt {
                    table: "peers",
                    detail: e.to_string(),
                })?;
                Ok(PeerRecord {
                    key: PeerKey {
                        user: UserId(from_sql(user)),
                        torrent: TorrentId(from_sql(torrent)),
                        peer_id,
                    },
                    uploaded: from_sql(up),
                    downloaded: from_sql(down),
                    last_seen: from_sql(seen),
                    seeder: seeder != 0,
                    snatched: snatched != 0,
                    carry: u8::try_from(carry).unwrap_or(0).min(99),
                })
            },
        )
        .collect::<Result<Vec<_>, DbError>>()?;
    let marks: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT user_id, torrent_id, seeded_until FROM user_torrent \
         WHERE seeded_until > 0 ORDER BY user_id, torrent_id",
    )
    .fetch_all(pool)
    .await?;
    let seeded_until = marks
        .into_iter()
        .map(|(u, t, mark)| (UserId(from_sql(u)), TorrentId(from_sql(t)), from_sql(mark)))
        .collect();
    Ok(Snapshot {
        peers,
        seeded_until,
    })
}

/// `INSERT INTO <head> VALUES (?, ..), (?, ..) <tail>` for `rows` rows of `columns` binds.
fn multi_row(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let tuple = format!("({})", vec!["?"; columns].join(", "));
    format!("{head} VALUES {} {tail}", vec![tuple; rows].join(", "))
}

/// The conflict clause of the credit upsert: each counter is a saturating `+=` (SQLite
/// would turn an overflowing sum into a REAL, which no longer reads back as an integer),
/// the seeding mark is `max(stored, new)`.
const CREDIT_UPSERT: &str = "ON CONFLICT (user_id, torrent_id) DO UPDATE SET \
     uploaded = CASE WHEN uploaded > 9223372036854775807 - excluded.uploaded \
         THEN 9223372036854775807 ELSE uploaded + excluded.uploaded END, \
     downloaded = CASE WHEN downloaded > 9223372036854775807 - excluded.downloaded \
         THEN 9223372036854775807 ELSE downloaded + excluded.downloaded END, \
     snatches = CASE WHEN snatches > 9223372036854775807 - excluded.snatches \
         THEN 9223372036854775807 ELSE snatches + excluded.snatches END, \
     seeding_secs = CASE WHEN seeding_secs > 9223372036854775807 - excluded.seeding_secs \
         THEN 9223372036854775807 ELSE seeding_secs + excluded.seeding_secs END, \
     seeded_until = max(seeded_until, excluded.seeded_until)";

pub(super) async fn apply(pool: &SqlitePool, batch: &Batch) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;

    const CREDIT_COLUMNS: usize = 7;
    for chunk in batch.credits.chunks(MAX_BINDS / CREDIT_COLUMNS) {
        let sql = multi_row(
            "INSERT INTO user_torrent (user_id, torrent_id, uploaded, downloaded, snatches, \
             seeding_secs, seeded_until)",
            CREDIT_COLUMNS,
            chunk.len(),
            CREDIT_UPSERT,
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for credit in chunk {
            query = query
                .bind(to_sql(credit.user.0))
                .bind(to_sql(credit.torrent.0))
                .bind(to_sql(credit.delta.uploaded))
                .bind(to_sql(credit.delta.downloaded))
                .bind(i64::from(credit.delta.snatches))
                .bind(to_sql(credit.delta.seeding_secs))
                .bind(to_sql(credit.seeded_until));
        }
        query.execute(&mut *tx).await?;
    }

    let (upserts, removals): (Vec<PeerRecord>, Vec<PeerKey>) = {
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        for change in &batch.peers {
            match change {
                PeerChange::Upsert(record) => upserts.push(*record),
                PeerChange::Remove(key) => removals.push(*key),
            }
        }
        (upserts, removals)
    };

    const PEER_COLUMNS: usize = 9;
    for chunk in upserts.chunks(MAX_BINDS / PEER_COLUMNS) {
        let sql = multi_row(
            "INSERT INTO peers (user_id, torrent_id, peer_id, uploaded, downloaded, last_seen, \
             seeder, snatched, carry)",
            PEER_COLUMNS,
            chunk.len(),
            "ON CONFLICT (user_id, torrent_id, peer_id) DO UPDATE SET \
             uploaded = excluded.uploaded, downloaded = excluded.downloaded, \
             last_seen = excluded.last_seen, seeder = excluded.seeder, \
             snatched = excluded.snatched, carry = excluded.carry",
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for p in chunk {
            query = query
                .bind(to_sql(p.key.user.0))
                .bind(to_sql(p.key.torrent.0))
                .bind(p.key.peer_id.as_bytes().to_vec())
                .bind(to_sql(p.uploaded))
                .bind(to_sql(p.downloaded))
                .bind(to_sql(p.last_seen))
                .bind(p.seeder)
                .bind(p.snatched)
                .bind(i64::from(p.carry));
        }
        query.execute(&mut *tx).await?;
    }

    const KEY_COLUMNS: usize = 3;
    for chunk in removals.chunks(MAX_BINDS / KEY_COLUMNS) {
        let tuple = "(?, ?, ?)";
        let sql = format!(
            "DELETE FROM peers WHERE (user_id, torrent_id, peer_id) IN (VALUES {})",
            vec![tuple; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for key in chunk {
            query = query
                .bind(to_sql(key.user.0))
                .bind(to_sql(key.torrent.0))
                .bind(key.peer_id.as_bytes().to_vec());
        }
        query.execute(&mut *tx).await?;
    }

    tx.commit().await?;
    Ok(())
}

pub(super) async fn add_user(
    pool: &SqlitePool,
    name: &str,
    passkey: &Passkey,
) -> Result<User, DbError> {
    let mut tx = pool.begin().await?;
    let taken: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    if taken.is_some() {
        return Err(DbError::DuplicateUser(name.to_owned()));
    }
    let inserted: Result<(i64,), sqlx::Error> =
        sqlx::query_as("INSERT INTO users (name, passkey) VALUES (?, ?) RETURNING id")
            .bind(name)
            .bind(passkey.as_str())
            .fetch_one(&mut *tx)
            .await;
    let (id,) = match inserted {
        Err(e) if is_unique_violation(&e) => return Err(DbError::DuplicatePasskey),
        other => other?,
    };
    tx.commit().await?;
    Ok(User {
        id: UserId(from_sql(id)),
        name: name.to_owned(),
        passkey: *passkey,
        disabled: None,
    })
}

pub(super) async fn user(pool: &SqlitePool, name: &str) -> Result<User, DbError> {
    let sql = AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?"));
    let row: Option<UserRow> = sqlx::query_as(sql).bind(name).fetch_optional(pool).await?;
    user_from_row(row.ok_or_else(|| DbError::UnknownUser(name.to_owned()))?)
}

pub(super) async fn set_disabled(
    pool: &SqlitePool,
    name: &str,
    reason: Option<&str>,
) -> Result<User, DbError> {
    let sql = AssertSqlSafe(format!(
        "UPDATE users SET disabled_reason = ? WHERE name = ? RETURNING {USER_COLUMNS}"
    ));
    let row: Option<UserRow> = sqlx::query_as(sql)
        .bind(reason)
        .bind(name)
        .fetch_optional(pool)
        .await?;
    user_from_row(row.ok_or_else(|| DbError::UnknownUser(name.to_owned()))?)
}

pub(super) async fn reset_passkey(
    pool: &SqlitePool,
    name: &str,
    passkey: &Passkey,
) -> Result<User, DbError> {
    let sql = AssertSqlSafe(format!(
        "UPDATE users SET passkey = ? WHERE name = ? RETURNING {USER_COLUMNS}"
    ));
    let row: Result<Option<UserRow>, sqlx::Error> = sqlx::query_as(sql)
        .bind(passkey.as_str())
        .bind(name)
        .fetch_optional(pool)
        .await;
    let row = match row {
        Err(e) if is_unique_violation(&e) => return Err(DbError::DuplicatePasskey),
        other => other?,
    };
    user_from_row(row.ok_or_else(|| DbError::UnknownUser(name.to_owned()))?)
}

pub(super) async fn add_torrent(
    pool: &SqlitePool,
    info_hash: &InfoHash,
    freeleech: bool,
    multiplier: UploadMultiplier,
) -> Result<Torrent, DbError> {
    let sql = AssertSqlSafe(format!(
        "INSERT INTO torrents (info_hash, freeleech, upload_multiplier_percent) VALUES (?, ?, ?) \
         RETURNING {TORRENT_COLUMNS}"
    ));
    let row: Result<TorrentRow, sqlx::Error> = sqlx::query_as(sql)
        .bind(info_hash.as_bytes().to_vec())
        .bind(freeleech)
        .bind(i64::from(multiplier.0))
        .fetch_one(pool)
        .await;
    match row {
        Err(e) if is_unique_violation(&e) => Err(DbError::DuplicateTorrent(*info_hash)),
        other => torrent_from_row(other?),
    }
}

pub(super) async fn remove_torrent(
    pool: &SqlitePool,
    info_hash: &InfoHash,
) -> Result<Torrent, DbError> {
    let mut tx = pool.begin().await?;
    let sql = AssertSqlSafe(format!(
        "DELETE FROM torrents WHERE info_hash = ? RETURNING {TORRENT_COLUMNS}"
    ));
    let row: Option<TorrentRow> = sqlx::query_as(sql)
        .bind(info_hash.as_bytes().to_vec())
        .fetch_optional(&mut *tx)
        .await?;
    let torrent = torrent_from_row(row.ok_or(DbError::UnknownTorrent(*info_hash))?)?;
    sqlx::query("DELETE FROM peers WHERE torrent_id = ?")
        .bind(to_sql(torrent.id.0))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(torrent)
}

pub(super) async fn user_stats(pool: &SqlitePool, name: &str) -> Result<UserStats, DbError> {
    let user = user(pool, name).await?;
    // Summed in Rust with saturation: SQL's SUM fails on overflow.
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT uploaded, downloaded, snatches, seeding_secs FROM user_torrent WHERE user_id = ?",
    )
    .bind(to_sql(user.id.0))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .fold(UserStats::default(), |total, (up, down, snatches, secs)| {
            UserStats {
                uploaded: total.uploaded.saturating_add(from_sql(up)),
                downloaded: total.downloaded.saturating_add(from_sql(down)),
                snatches: total.snatches.saturating_add(from_sql(snatches)),
                seeding_secs: total.seeding_secs.saturating_add(from_sql(secs)),
            }
        }))
}

pub(super) async fn allow_client(pool: &SqlitePool, prefix: &ClientPrefix) -> Result<(), DbError> {
    // A prefix is printable ASCII by construction.
    let text = String::from_utf8_lossy(prefix.as_bytes()).into_owned();
    sqlx::query("INSERT INTO allowed_clients (prefix) VALUES (?) ON CONFLICT DO NOTHING")
        .bind(text)
        .execute(pool)
        .await?;
    Ok(())
}
