//! Persistence (sqlx): the saved swarms (both modes, `swarms.rs`) and, for private mode,
//! users, torrents, the client allow-list, credited totals and peer baselines. This is a shell around [`crate::private`]'s pure state: it
//! loads a [`Registry`] and a [`Snapshot`] at start and writes the [`Batch`]es that
//! [`crate::private::PrivateTracker::take_pending`] hands out.
//!
//! Backends: SQLite (`sqlite://PATH`, opened by `sqlite.rs`) and PostgreSQL
//! (`postgres://…`, `postgres.rs`), each with its own migrations directory. The operations
//! are written once (`queries.rs`) over a small seam (`backend.rs`): statements with `?`
//! placeholders and typed arguments, run in a transaction of either database, rows read by
//! column index, and a per-dialect table for what differs (`max` vs `GREATEST`, the
//! bind-variable limit); the schemas differ only in column types (`BLOB`/`BYTEA`,
//! `INTEGER`/`BOOLEAN` flags). Runtime queries only: building needs no database.
//!
//! Invariants:
//! - [`Db::apply`] writes a whole batch in ONE transaction or nothing: credits are `+=`
//!   upserts (merged per key and sorted by key again, whatever order the batch has;
//!   chunked under the dialect's bind-variable limit; sums saturate at `i64::MAX`),
//!   `seeded_until` is stored as `max(stored, new)` (0 changes nothing), baselines are
//!   upserted or deleted. A failed `apply` leaves the database as it was; the caller gives
//!   the batch back with `restore_pending` and retries later. Applying the same batch twice
//!   credits it twice: at-most-once delivery is the caller's job (one batch in flight, see
//!   the ledger's module doc).
//! - Every query binds its inputs; SQL text is only ever built from constant fragments and
//!   placeholder counts, never from input.
//! - Migrations (`migrations/<dialect>/*.sql`, embedded at compile time) run at [`Db::open`];
//!   reopening an up-to-date database runs none.
//! - Counters are `u64` in Rust and 64-bit signed in SQL: values are clamped to `i64::MAX`
//!   on the way in (no real counter gets near it), negative stored values read back as 0.

mod backend;
mod postgres;
mod queries;
mod scratch;
mod sqlite;
mod swarms;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use rill_common::InfoHash;
use thiserror::Error;

use backend::Backend;
pub use scratch::ScratchSchema;

use crate::private::{Batch, Passkey, Registry, Snapshot, Torrent, UploadMultiplier, User};

/// Why a database operation failed.
#[derive(Debug, Error)]
pub enum DbError {
    /// A URL that names no supported database.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// `add_user` with a name already taken.
    #[error("user {0} already exists")]
    DuplicateUser(String),
    /// Another user already has this passkey.
    #[error("another user already has this passkey")]
    DuplicatePasskey,
    /// No user with this name.
    #[error("no user named {0}")]
    UnknownUser(String),
    /// A user name that is empty, too long or holds control characters.
    #[error("invalid user name {0:?}: 1 to 64 characters, no control characters")]
    InvalidName(String),
    /// `add_torrent` with an info hash already registered.
    #[error("torrent {0} is already registered")]
    DuplicateTorrent(InfoHash),
    /// No registered torrent with this info hash.
    #[error("torrent {0} is not registered")]
    UnknownTorrent(InfoHash),
    /// A stored row that does not decode (a passkey, info hash or peer id of the wrong shape).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Running the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A write that never ran: its task was cancelled (the runtime is shutting down).
    #[error("database write interrupted: {0}")]
    Interrupted(String),
    /// The database failed (connection, I/O, constraint, closed pool).
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

/// A user's credited totals over all torrents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserStats {
    /// Upload credit in bytes (multipliers applied).
    pub uploaded: u64,
    /// Download credit in bytes.
    pub downloaded: u64,
    /// Snatches.
    pub snatches: u64,
    /// Seconds seeded.
    pub seeding_secs: u64,
}

/// A connection pool to the tracker's database, migrated.
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
}

impl Db {
    /// Opens and migrates the database at `url`: `sqlite://PATH` (created if missing, WAL
    /// journal; `sqlite://tracker.db` is relative, `sqlite:///var/lib/x.db` absolute), or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (also `postgresql://`; libpq-style
    /// query parameters such as `sslmode` and `options[search_path]=SCHEMA` apply).
    pub async fn open(url: &str) -> Result<Db, DbError> {
        let backend = if let Some(path) = url.strip_prefix("sqlite://") {
            Backend::Sqlite(sqlite::open(path).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::open(url).await?)
        } else {
            return Err(DbError::UnsupportedUrl(url.to_owned()));
        };
        Ok(Db { backend })
    }

    /// Which database this is: `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool: later calls fail with a database error.
    pub async fn close(&self) {
        self.backend.close().await;
    }

    /// Users, torrents and the client allow-list, for `PrivateTracker::new`.
    pub async fn load_registry(&self) -> Result<Registry, DbError> {
        queries::load_registry(&self.backend).await
    }

    /// Peer baselines and seeding marks, for `PrivateTracker::restore`.
    pub async fn load_snapshot(&self) -> Result<Snapshot, DbError> {
        queries::load_snapshot(&self.backend).await
    }

    /// Replaces the saved swarms (the swarm store's snapshot, in parts) in one transaction.
    pub async fn save_swarms(&self, parts: &[Vec<u8>], saved_at: u64) -> Result<(), DbError> {
        swarms::save(&self.backend, parts, saved_at).await
    }

    /// The saved swarms' parts, in order; empty if none were saved.
    pub async fn load_swarms(&self) -> Result<Vec<Vec<u8>>, DbError> {
        swarms::load(&self.backend).await
    }

    /// Writes a batch in one transaction (see the module doc); on error nothing is written.
    pub async fn apply(&self, batch: &Batch) -> Result<(), DbError> {
        if batch.is_empty() {
            return Ok(());
        }
        queries::apply(&self.backend, batch).await
    }

    /// Adds an enabled user with this passkey and returns it.
    pub async fn add_user(&self, name: &str, passkey: &Passkey) -> Result<User, DbError> {
        check_name(name)?;
        queries::add_user(&self.backend, name, passkey).await
    }

    /// Every user, by id.
    pub async fn list_users(&self) -> Result<Vec<User>, DbError> {
        queries::list_users(&self.backend).await
    }

    /// The user with this name.
    pub async fn user(&self, name: &str) -> Result<User, DbError> {
        queries::user(&self.backend, name).await
    }

    /// Disables a user with a reason (its announces are refused with it); returns it.
    pub async fn disable_user(&self, name: &str, reason: &str) -> Result<User, DbError> {
        queries::set_disabled(&self.backend, name, Some(reason)).await
    }

    /// Enables a user again; returns it.
    pub async fn enable_user(&self, name: &str) -> Result<User, DbError> {
        queries::set_disabled(&self.backend, name, None).await
    }

    /// Gives a user a new passkey (the old one stops working); returns the user.
    pub async fn reset_passkey(&self, name: &str, passkey: &Passkey) -> Result<User, DbError> {
        queries::reset_passkey(&self.backend, name, passkey).await
    }

    /// Registers a torrent (upload multiplier 1×) and returns it.
    pub async fn add_torrent(
        &self,
        info_hash: &InfoHash,
        freeleech: bool,
    ) -> Result<Torrent, DbError> {
        self.add_torrent_with(info_hash, freeleech, UploadMultiplier::ONE)
            .await
    }

    /// Registers a torrent with an upload multiplier and returns it.
    pub async fn add_torrent_with(
        &self,
        info_hash: &InfoHash,
        freeleech: bool,
        multiplier: UploadMultiplier,
    ) -> Result<Torrent, DbError> {
        queries::add_torrent(&self.backend, info_hash, freeleech, multiplier).await
    }

    /// Unregisters a torrent and deletes its peer baselines; users' credited totals for it
    /// are kept (ids are never reused). Returns the removed torrent.
    pub async fn remove_torrent(&self, info_hash: &InfoHash) -> Result<Torrent, DbError> {
        queries::remove_torrent(&self.backend, info_hash).await
    }

    /// Every registered torrent, by id.
    pub async fn list_torrents(&self) -> Result<Vec<Torrent>, DbError> {
        queries::list_torrents(&self.backend).await
    }

    /// A user's credited totals over all torrents (zeros for a user with none).
    pub async fn user_stats(&self, name: &str) -> Result<UserStats, DbError> {
        queries::user_stats(&self.backend, name).await
    }

    /// Every user with its credited totals, by user id.
    pub async fn all_user_stats(&self) -> Result<Vec<(User, UserStats)>, DbError> {
        queries::all_user_stats(&self.backend).await
    }

    /// Adds a client prefix to the allow-list (no-op if present).
    pub async fn allow_client(&self, prefix: &crate::private::ClientPrefix) -> Result<(), DbError> {
        queries::allow_client(&self.backend, prefix).await
    }
}

/// The user-name rule: 1 to 64 characters, no control characters (anything else, SQL
/// metacharacters included, is stored verbatim: every query binds it).
fn check_name(name: &str) -> Result<(), DbError> {
    let ok = (1..=64).contains(&name.chars().count()) && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(DbError::InvalidName(name.escape_debug().to_string()))
    }
}

/// A migrator over migrations embedded in the binary, given as `(version, name, sql)` in
/// version order: each backend lists its own files (`migrations/sqlite/`, `migrations/postgres/`).
fn embedded_migrator(migrations: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, name, sql)| {
                Migration::new(
                    version,
                    std::borrow::Cow::Borrowed(name),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect(),
    )
}
