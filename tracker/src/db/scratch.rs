//! Throwaway PostgreSQL schemas, so that many test trackers share one server without seeing
//! each other's rows: [`ScratchSchema::create`] makes a schema with a unique name and gives
//! the URL that selects it (`options[search_path]`); [`ScratchSchema::drop_schema`] removes
//! it with everything in it.
//!
//! Invariant: the schema name is made here from a fixed prefix, the process id, a counter
//! and random digits (only `[a-z0-9_]`), so the DDL text, which cannot bind an identifier,
//! is never built from input.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::DbError;

/// A PostgreSQL schema made for one test, on a server named by a `postgres://` URL.
#[derive(Debug)]
pub struct ScratchSchema {
    server: String,
    schema: String,
    url: String,
}

impl ScratchSchema {
    /// Creates a fresh schema on the server at `server` (a role that may create schemas).
    pub async fn create(server: &str) -> Result<ScratchSchema, DbError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "rill_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let mut conn = PgConnection::connect(server).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let separator = if server.contains('?') { '&' } else { '?' };
        Ok(ScratchSchema {
            url: format!("{server}{separator}options%5Bsearch_path%5D={schema}"),
            server: server.to_owned(),
            schema,
        })
    }

    /// The URL for [`super::Db::open`] or a tracker's `database` that uses this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.schema
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) -> Result<(), DbError> {
        let mut conn = PgConnection::connect(&self.server).await?;
        let schema = &self.schema;
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }
}
