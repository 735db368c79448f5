//! Opening the PostgreSQL backend: a pool to `postgres://…`, migrations from
//! `migrations/postgres/` (sqlx takes an advisory lock, so trackers starting together
//! migrate once). The URL's `options[search_path]=SCHEMA` selects a schema (tests use one
//! each).

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use super::DbError;

/// The embedded migrations, in version order.
fn migrator() -> Migrator {
    super::embedded_migrator(&[
        (
            1,
            "initial",
            include_str!("../../migrations/postgres/0001_initial.sql"),
        ),
        (
            2,
            "swarms",
            include_str!("../../migrations/postgres/0002_swarms.sql"),
        ),
    ])
}

/// Connects to `url` and runs the migrations.
pub(super) async fn open(url: &str) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url)?;
    // One direct connection first: a wrong URL, password or a server that is down fails
    // at once (a pool would keep retrying until its acquire timeout).
    let mut conn = PgConnection::connect_with(&options).await?;
    migrator().run(&mut conn).await?;
    conn.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(pool)
}
