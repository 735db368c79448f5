//! Opening the SQLite backend: one file in WAL mode, migrations from `migrations/sqlite/`.

use std::str::FromStr;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::DbError;

/// The embedded migrations, in version order.
fn migrator() -> Migrator {
    super::embedded_migrator(&[
        (
            1,
            "initial",
            include_str!("../../migrations/sqlite/0001_initial.sql"),
        ),
        (
            2,
            "swarms",
            include_str!("../../migrations/sqlite/0002_swarms.sql"),
        ),
    ])
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
