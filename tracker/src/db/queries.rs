//! The database operations, written once for both dialects over `backend.rs`'s seam.
//!
//! Multi-row statements are chunked so that no statement binds more than the dialect's
//! limit. Every operation runs in one transaction, reads too (one snapshot on SQLite; under
//! PostgreSQL's default READ COMMITTED each statement sees the latest commits).

use std::collections::BTreeMap;

use rill_common::{InfoHash, PeerId};

use super::backend::{Backend, Dialect, Row, Stmt, Tx};
use super::{DbError, UserStats};
use crate::private::{
    Batch, ClientPrefix, Credit, Passkey, PeerChange, PeerKey, PeerRecord, Registry, Snapshot,
    Torrent, TorrentId, UploadMultiplier, User, UserId,
};

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Whether `error` is a unique-constraint violation naming `column` (PostgreSQL names the
/// constraint `<table>_<column>_key`, SQLite says `UNIQUE constraint failed: <table>.<column>`).
fn violates_unique(error: &sqlx::Error, table: &str, column: &str) -> bool {
    let sqlx::Error::Database(e) = error else {
        return false;
    };
    if !e.is_unique_violation() {
        return false;
    }
    let constraint = format!("{table}_{column}_key");
    let sqlite = format!("{table}.{column}");
    e.constraint() == Some(constraint.as_str()) || e.message().contains(&sqlite)
}

const USER_COLUMNS: &str = "id, name, passkey, disabled_reason";
const TORRENT_COLUMNS: &str = "id, info_hash, freeleech, upload_multiplier_percent";

fn user_from_row(row: &Row) -> Result<User, DbError> {
    let name = row.text(1)?;
    let passkey = Passkey::parse(&row.text(2)?).map_err(|e| DbError::Corrupt {
        table: "users",
        detail: format!("user {name}: {e}"),
    })?;
    Ok(User {
        id: UserId(from_sql(row.int(0)?)),
        name,
        passkey,
        disabled: row.opt_text(3)?,
    })
}

fn torrent_from_row(row: &Row) -> Result<Torrent, DbError> {
    let id = row.int(0)?;
    let info_hash = InfoHash::from_slice(&row.bytes(1)?).map_err(|e| DbError::Corrupt {
        table: "torrents",
        detail: format!("torrent id {id}: {e}"),
    })?;
    Ok(Torrent {
        id: TorrentId(from_sql(id)),
        info_hash,
        freeleech: row.flag(2)?,
        upload_multiplier: UploadMultiplier(u32::try_from(row.int(3)?).unwrap_or(0)),
    })
}

async fn users_in(tx: &mut Tx) -> Result<Vec<User>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
    tx.fetch_all(Stmt::new(sql))
        .await?
        .iter()
        .map(user_from_row)
        .collect()
}

async fn torrents_in(tx: &mut Tx) -> Result<Vec<Torrent>, DbError> {
    let sql = format!("SELECT {TORRENT_COLUMNS} FROM torrents ORDER BY id");
    tx.fetch_all(Stmt::new(sql))
        .await?
        .iter()
        .map(torrent_from_row)
        .collect()
}

async fn user_in(tx: &mut Tx, name: &str) -> Result<User, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?");
    let row = tx.fetch_optional(Stmt::new(sql).bind(name)).await?;
    user_from_row(&row.ok_or_else(|| DbError::UnknownUser(name.to_owned()))?)
}

pub(super) async fn list_users(backend: &Backend) -> Result<Vec<User>, DbError> {
    let mut tx = backend.begin().await?;
    let users = users_in(&mut tx).await?;
    tx.commit().await?;
    Ok(users)
}

pub(super) async fn list_torrents(backend: &Backend) -> Result<Vec<Torrent>, DbError> {
    let mut tx = backend.begin().await?;
    let torrents = torrents_in(&mut tx).await?;
    tx.commit().await?;
    Ok(torrents)
}

pub(super) async fn load_registry(backend: &Backend) -> Result<Registry, DbError> {
    let corrupt = |table| {
        move |e: crate::private::RegistryError| DbError::Corrupt {
            table,
            detail: e.to_string(),
        }
    };
    let mut tx = backend.begin().await?;
    let mut registry = Registry::new();
    for user in users_in(&mut tx).await? {
        registry.add_user(user).map_err(corrupt("users"))?;
    }
    for torrent in torrents_in(&mut tx).await? {
        registry.add_torrent(torrent).map_err(corrupt("torrents"))?;
    }
    let rows = tx
        .fetch_all(Stmt::new(
            "SELECT prefix FROM allowed_clients ORDER BY prefix",
        ))
        .await?;
    tx.commit().await?;
    let clients = rows
        .iter()
        .map(|row| ClientPrefix::parse(&row.text(0)?).map_err(corrupt("allowed_clients")))
        .collect::<Result<Vec<_>, _>>()?;
    registry.set_allowed_clients(clients);
    Ok(registry)
}

fn peer_from_row(row: &Row) -> Result<PeerRecord, DbError> {
    let peer_id = PeerId::from_slice(&row.bytes(2)?).map_err(|e| DbError::Corrupt {
        table: "peers",
        detail: e.to_string(),
    })?;
    Ok(PeerRecord {
        key: PeerKey {
            user: UserId(from_sql(row.int(0)?)),
            torrent: TorrentId(from_sql(row.int(1)?)),
            peer_id,
        },
        uploaded: from_sql(row.int(3)?),
        downloaded: from_sql(row.int(4)?),
        last_seen: from_sql(row.int(5)?),
        seeder: row.flag(6)?,
        snatched: row.flag(7)?,
        carry: u8::try_from(row.int(8)?).unwrap_or(0).min(99),
    })
}

pub(super) async fn load_snapshot(backend: &Backend) -> Result<Snapshot, DbError> {
    let mut tx = backend.begin().await?;
    let peers = tx
        .fetch_all(Stmt::new(
            "SELECT user_id, torrent_id, peer_id, uploaded, downloaded, last_seen, seeder, \
             snatched, carry FROM peers ORDER BY user_id, torrent_id, peer_id",
        ))
        .await?
        .iter()
        .map(peer_from_row)
        .collect::<Result<Vec<_>, DbError>>()?;
    let marks = tx
        .fetch_all(Stmt::new(
            "SELECT user_id, torrent_id, seeded_until FROM user_torrent \
             WHERE seeded_until > 0 ORDER BY user_id, torrent_id",
        ))
        .await?;
    tx.commit().await?;
    let seeded_until = marks
        .iter()
        .map(|row| {
            Ok((
                UserId(from_sql(row.int(0)?)),
                TorrentId(from_sql(row.int(1)?)),
                from_sql(row.int(2)?),
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Snapshot {
        peers,
        seeded_until,
    })
}

/// `<head> VALUES (?, ..), (?, ..) <tail>` for `rows` rows of `columns` binds.
/// A statement of a batch write: a full-size chunk has the same text every time, so it is
/// prepared once per connection and cached (re-parsing ~1,000 placeholders per chunk was
/// about a sixth of SQLite's worker time in a flush); the last, shorter chunk of a batch is one-off.
fn chunk_stmt(sql: String, full: bool) -> Stmt {
    let stmt = Stmt::new(sql);
    if full { stmt } else { stmt.one_off() }
}

fn multi_row(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let tuple = format!("({})", vec!["?"; columns].join(", "));
    format!("{head} VALUES {} {tail}", vec![tuple; rows].join(", "))
}

/// The conflict clause of the credit upsert: each counter is a saturating `+=` (SQLite
/// would turn an overflowing sum into a REAL, PostgreSQL would fail the statement), the
/// seeding mark is the maximum of the stored and the new one. Stored columns are qualified
/// with the table name (PostgreSQL finds a bare name ambiguous next to `excluded`).
fn credit_upsert(dialect: &Dialect) -> String {
    let saturating_add = |column: &str| {
        format!(
            "{column} = CASE WHEN user_torrent.{column} > 9223372036854775807 - excluded.{column} \
             THEN 9223372036854775807 ELSE user_torrent.{column} + excluded.{column} END"
        )
    };
    format!(
        "ON CONFLICT (user_id, torrent_id) DO UPDATE SET {}, {}, {}, {}, \
         seeded_until = {}(user_torrent.seeded_until, excluded.seeded_until)",
        saturating_add("uploaded"),
        saturating_add("downloaded"),
        saturating_add("snatches"),
        saturating_add("seeding_secs"),
        dialect.greatest,
    )
}

/// The batch's credits merged per (user, torrent) (saturating sums, the later seeding
/// mark) and sorted by key. The ledger hands out batches like this already; merging again
/// keeps both backends alike on any batch (PostgreSQL refuses an upsert that names one row
/// twice, SQLite would apply both) and the key order keeps concurrent writers from
/// deadlocking.
fn merged_credits(credits: &[Credit]) -> Vec<Credit> {
    let mut merged: BTreeMap<(UserId, TorrentId), Credit> = BTreeMap::new();
    for credit in credits {
        merged
            .entry((credit.user, credit.torrent))
            .and_modify(|m| {
                m.delta.uploaded = m.delta.uploaded.saturating_add(credit.delta.uploaded);
                m.delta.downloaded = m.delta.downloaded.saturating_add(credit.delta.downloaded);
                m.delta.snatches = m.delta.snatches.saturating_add(credit.delta.snatches);
                m.delta.seeding_secs = m
                    .delta
                    .seeding_secs
                    .saturating_add(credit.delta.seeding_secs);
                m.seeded_until = m.seeded_until.max(credit.seeded_until);
            })
            .or_insert(*credit);
    }
    merged.into_values().collect()
}

/// The batch's baseline changes, the last one per key winning, split into upserts and
/// removals, each sorted by key.
fn final_peer_changes(changes: &[PeerChange]) -> (Vec<PeerRecord>, Vec<PeerKey>) {
    let mut last: BTreeMap<PeerKey, &PeerChange> = BTreeMap::new();
    for change in changes {
        let key = match change {
            PeerChange::Upsert(record) => record.key,
            PeerChange::Remove(key) => *key,
        };
        last.insert(key, change);
    }
    let mut upserts = Vec::new();
    let mut removals = Vec::new();
    for change in last.into_values() {
        match change {
            PeerChange::Upsert(record) => upserts.push(*record),
            PeerChange::Remove(key) => removals.push(*key),
        }
    }
    (upserts, removals)
}

pub(super) async fn apply(backend: &Backend, batch: &Batch) -> Result<(), DbError> {
    let dialect = backend.dialect();
    let credits = merged_credits(&batch.credits);
    let (upserts, removals) = final_peer_changes(&batch.peers);
    let mut tx = backend.begin().await?;

    const CREDIT_COLUMNS: usize = 7;
    let upsert = credit_upsert(dialect);
    let rows = dialect.max_binds / CREDIT_COLUMNS;
    for chunk in credits.chunks(rows) {
        let sql = multi_row(
            "INSERT INTO user_torrent (user_id, torrent_id, uploaded, downloaded, snatches, \
             seeding_secs, seeded_until)",
            CREDIT_COLUMNS,
            chunk.len(),
            &upsert,
        );
        let mut stmt = chunk_stmt(sql, chunk.len() == rows);
        for credit in chunk {
            stmt.push(to_sql(credit.user.0));
            stmt.push(to_sql(credit.torrent.0));
            stmt.push(to_sql(credit.delta.uploaded));
            stmt.push(to_sql(credit.delta.downloaded));
            stmt.push(i64::from(credit.delta.snatches));
            stmt.push(to_sql(credit.delta.seeding_secs));
            stmt.push(to_sql(credit.seeded_until));
        }
        tx.execute(stmt).await?;
    }

    const PEER_COLUMNS: usize = 9;
    let rows = dialect.max_binds / PEER_COLUMNS;
    for chunk in upserts.chunks(rows) {
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
        let mut stmt = chunk_stmt(sql, chunk.len() == rows);
        for p in chunk {
            stmt.push(to_sql(p.key.user.0));
            stmt.push(to_sql(p.key.torrent.0));
            stmt.push(p.key.peer_id.as_bytes().as_slice());
            stmt.push(to_sql(p.uploaded));
            stmt.push(to_sql(p.downloaded));
            stmt.push(to_sql(p.last_seen));
            stmt.push(p.seeder);
            stmt.push(p.snatched);
            stmt.push(i64::from(p.carry));
        }
        tx.execute(stmt).await?;
    }

    const KEY_COLUMNS: usize = 3;
    let rows = dialect.max_binds / KEY_COLUMNS;
    for chunk in removals.chunks(rows) {
        let sql = format!(
            "DELETE FROM peers WHERE (user_id, torrent_id, peer_id) IN (VALUES {})",
            vec!["(?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut stmt = chunk_stmt(sql, chunk.len() == rows);
        for key in chunk {
            stmt.push(to_sql(key.user.0));
            stmt.push(to_sql(key.torrent.0));
            stmt.push(key.peer_id.as_bytes().as_slice());
        }
        tx.execute(stmt).await?;
    }

    tx.commit().await?;
    Ok(())
}

pub(super) async fn add_user(
    backend: &Backend,
    name: &str,
    passkey: &Passkey,
) -> Result<User, DbError> {
    let mut tx = backend.begin().await?;
    let taken = tx
        .fetch_optional(Stmt::new("SELECT id FROM users WHERE name = ?").bind(name))
        .await?;
    if taken.is_some() {
        return Err(DbError::DuplicateUser(name.to_owned()));
    }
    let stmt = Stmt::new("INSERT INTO users (name, passkey) VALUES (?, ?) RETURNING id")
        .bind(name)
        .bind(passkey.as_str());
    let row = match tx.fetch_optional(stmt).await {
        // A concurrent add of the same name, between the check and the insert.
        Err(e) if violates_unique(&e, "users", "name") => {
            return Err(DbError::DuplicateUser(name.to_owned()));
        }
        Err(e) if violates_unique(&e, "users", "passkey") => {
            return Err(DbError::DuplicatePasskey);
        }
        other => other?,
    };
    let id = row.map(|row| row.int(0)).transpose()?.unwrap_or_default();
    tx.commit().await?;
    Ok(User {
        id: UserId(from_sql(id)),
        name: name.to_owned(),
        passkey: *passkey,
        disabled: None,
    })
}

pub(super) async fn user(backend: &Backend, name: &str) -> Result<User, DbError> {
    let mut tx = backend.begin().await?;
    let user = user_in(&mut tx, name).await?;
    tx.commit().await?;
    Ok(user)
}

/// Runs an `UPDATE users … WHERE name = ? RETURNING` and returns the user.
async fn update_user(backend: &Backend, stmt: Stmt, name: &str) -> Result<User, DbError> {
    let mut tx = backend.begin().await?;
    let row = match tx.fetch_optional(stmt).await {
        Err(e) if violates_unique(&e, "users", "passkey") => {
            return Err(DbError::DuplicatePasskey);
        }
        other => other?,
    };
    let user = user_from_row(&row.ok_or_else(|| DbError::UnknownUser(name.to_owned()))?)?;
    tx.commit().await?;
    Ok(user)
}

pub(super) async fn set_disabled(
    backend: &Backend,
    name: &str,
    reason: Option<&str>,
) -> Result<User, DbError> {
    let sql =
        format!("UPDATE users SET disabled_reason = ? WHERE name = ? RETURNING {USER_COLUMNS}");
    update_user(backend, Stmt::new(sql).bind(reason).bind(name), name).await
}

pub(super) async fn reset_passkey(
    backend: &Backend,
    name: &str,
    passkey: &Passkey,
) -> Result<User, DbError> {
    let sql = format!("UPDATE users SET passkey = ? WHERE name = ? RETURNING {USER_COLUMNS}");
    let stmt = Stmt::new(sql).bind(passkey.as_str()).bind(name);
    update_user(backend, stmt, name).await
}

pub(super) async fn add_torrent(
    backend: &Backend,
    info_hash: &InfoHash,
    freeleech: bool,
    multiplier: UploadMultiplier,
) -> Result<Torrent, DbError> {
    let sql = format!(
        "INSERT INTO torrents (info_hash, freeleech, upload_multiplier_percent) \
         VALUES (?, ?, ?) RETURNING {TORRENT_COLUMNS}"
    );
    let stmt = Stmt::new(sql)
        .bind(info_hash.as_bytes().as_slice())
        .bind(freeleech)
        .bind(i64::from(multiplier.0));
    let mut tx = backend.begin().await?;
    let row = match tx.fetch_optional(stmt).await {
        Err(e) if violates_unique(&e, "torrents", "info_hash") => {
            return Err(DbError::DuplicateTorrent(*info_hash));
        }
        other => other?,
    };
    let torrent = torrent_from_row(&row.ok_or(DbError::UnknownTorrent(*info_hash))?)?;
    tx.commit().await?;
    Ok(torrent)
}

pub(super) async fn remove_torrent(
    backend: &Backend,
    info_hash: &InfoHash,
) -> Result<Torrent, DbError> {
    let mut tx = backend.begin().await?;
    let sql = format!("DELETE FROM torrents WHERE info_hash = ? RETURNING {TORRENT_COLUMNS}");
    let row = tx
        .fetch_optional(Stmt::new(sql).bind(info_hash.as_bytes().as_slice()))
        .await?;
    let torrent = torrent_from_row(&row.ok_or(DbError::UnknownTorrent(*info_hash))?)?;
    tx.execute(Stmt::new("DELETE FROM peers WHERE torrent_id = ?").bind(to_sql(torrent.id.0)))
        .await?;
    tx.commit().await?;
    Ok(torrent)
}

/// Sums counter rows in Rust with saturation (SQL's `SUM` fails, or turns to a float, on
/// overflow).
fn add_row(total: UserStats, row: &Row, first: usize) -> Result<UserStats, sqlx::Error> {
    Ok(UserStats {
        uploaded: total.uploaded.saturating_add(from_sql(row.int(first)?)),
        downloaded: total
            .downloaded
            .saturating_add(from_sql(row.int(first + 1)?)),
        snatches: total.snatches.saturating_add(from_sql(row.int(first + 2)?)),
        seeding_secs: total
            .seeding_secs
            .saturating_add(from_sql(row.int(first + 3)?)),
    })
}

pub(super) async fn user_stats(backend: &Backend, name: &str) -> Result<UserStats, DbError> {
    let mut tx = backend.begin().await?;
    let user = user_in(&mut tx, name).await?;
    let rows = tx
        .fetch_all(
            Stmt::new(
                "SELECT uploaded, downloaded, snatches, seeding_secs FROM user_torrent \
                 WHERE user_id = ?",
            )
            .bind(to_sql(user.id.0)),
        )
        .await?;
    tx.commit().await?;
    let mut total = UserStats::default();
    for row in &rows {
        total = add_row(total, row, 0)?;
    }
    Ok(total)
}

pub(super) async fn all_user_stats(backend: &Backend) -> Result<Vec<(User, UserStats)>, DbError> {
    let mut tx = backend.begin().await?;
    let users = users_in(&mut tx).await?;
    let rows = tx
        .fetch_all(Stmt::new(
            "SELECT user_id, uploaded, downloaded, snatches, seeding_secs FROM user_torrent \
             ORDER BY user_id",
        ))
        .await?;
    tx.commit().await?;
    let mut totals = std::collections::HashMap::<u64, UserStats>::new();
    for row in &rows {
        let total = totals.entry(from_sql(row.int(0)?)).or_default();
        *total = add_row(*total, row, 1)?;
    }
    Ok(users
        .into_iter()
        .map(|user| {
            let stats = totals.get(&user.id.0).copied().unwrap_or_default();
            (user, stats)
        })
        .collect())
}

pub(super) async fn allow_client(backend: &Backend, prefix: &ClientPrefix) -> Result<(), DbError> {
    // A prefix is printable ASCII by construction.
    let text = String::from_utf8_lossy(prefix.as_bytes()).into_owned();
    let mut tx = backend.begin().await?;
    tx.execute(
        Stmt::new("INSERT INTO allowed_clients (prefix) VALUES (?) ON CONFLICT DO NOTHING")
            .bind(text.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
