//! The seam between the dialect-neutral queries (`queries.rs`) and the two databases: a
//! statement is SQL text with `?` placeholders plus a list of [`Arg`]s; a [`Tx`] runs it on
//! SQLite or PostgreSQL (numbering the placeholders `$1, $2, …` for PostgreSQL) and hands
//! back [`Row`]s read by column index. What differs between the dialects beyond that is in
//! [`Dialect`]: the bind-variable limit and the name of the two-argument maximum.
//!
//! Invariant: SQL text never holds a `?` other than a placeholder (no `?` in literals or
//! identifiers), so numbering them is a plain scan; it is only ever built from constant
//! fragments and placeholder counts.

use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Postgres, Sqlite, Transaction};

use super::DbError;

/// What differs between the SQL dialects.
#[derive(Debug)]
pub(super) struct Dialect {
    /// The most variables one statement may bind.
    pub(super) max_binds: usize,
    /// The two-argument maximum: SQLite's scalar `max`, PostgreSQL's `GREATEST`.
    pub(super) greatest: &'static str,
}

/// SQLite: 999 variables (the historic `SQLITE_MAX_VARIABLE_NUMBER`, the lowest any build
/// uses).
const SQLITE: Dialect = Dialect {
    max_binds: 999,
    greatest: "max",
};

/// PostgreSQL: the wire protocol counts parameters in 16 bits.
const POSTGRES: Dialect = Dialect {
    max_binds: 65_535,
    greatest: "GREATEST",
};

/// A connection pool to one of the databases.
#[derive(Clone, Debug)]
pub(super) enum Backend {
    /// `sqlite://PATH`.
    Sqlite(SqlitePool),
    /// `postgres://…`.
    Postgres(PgPool),
}

impl Backend {
    /// This backend's dialect.
    pub(super) fn dialect(&self) -> &'static Dialect {
        match self {
            Backend::Sqlite(_) => &SQLITE,
            Backend::Postgres(_) => &POSTGRES,
        }
    }

    /// Starts a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`,
    /// waiting out the busy timeout): a deferred transaction that reads first and writes
    /// later cannot wait for the lock and fails with "database is locked" when another
    /// connection wrote in between.
    pub(super) async fn begin(&self) -> Result<Tx, DbError> {
        Ok(match self {
            Backend::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Closes the pool.
    pub(super) async fn close(&self) {
        match self {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

/// A bound value.
#[derive(Clone, Debug)]
pub(super) enum Arg {
    /// A 64-bit integer.
    Int(i64),
    /// A flag (SQLite stores 0 or 1, PostgreSQL a `BOOLEAN`).
    Bool(bool),
    /// Text, or NULL.
    Text(Option<String>),
    /// Bytes (`BLOB`, `BYTEA`).
    Bytes(Vec<u8>),
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

impl From<bool> for Arg {
    fn from(value: bool) -> Self {
        Arg::Bool(value)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Text(Some(value.to_owned()))
    }
}

impl From<Option<&str>> for Arg {
    fn from(value: Option<&str>) -> Self {
        Arg::Text(value.map(str::to_owned))
    }
}

impl From<&[u8]> for Arg {
    fn from(value: &[u8]) -> Self {
        Arg::Bytes(value.to_vec())
    }
}

/// A statement: SQL with `?` placeholders and its arguments, in order.
#[derive(Clone, Debug)]
pub(super) struct Stmt {
    sql: String,
    args: Vec<Arg>,
    persistent: bool,
}

impl Stmt {
    /// A statement with no arguments yet.
    pub(super) fn new(sql: impl Into<String>) -> Self {
        Stmt {
            sql: sql.into(),
            args: Vec::new(),
            persistent: true,
        }
    }

    /// Marks the statement as one-off: not kept in the connection's prepared-statement
    /// cache. For multi-row statements, whose text changes with the row count: caching
    /// each would fill the cache (and the server's memory) with large plans used once.
    pub(super) fn one_off(mut self) -> Self {
        self.persistent = false;
        self
    }

    /// Binds the next placeholder.
    pub(super) fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Binds the next placeholder (in place, for loops).
    pub(super) fn push(&mut self, arg: impl Into<Arg>) {
        self.args.push(arg.into());
    }
}

/// `?, ?, ?` → `$1, $2, $3` (see the module invariant).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + sql.len() / 4);
    let mut n = 0u32;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! bind_all {
    ($sql:expr, $stmt:expr) => {{
        let mut query = sqlx::query(AssertSqlSafe($sql)).persistent($stmt.persistent);
        for arg in $stmt.args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bytes(v) => query.bind(v),
            };
        }
        query
    }};
}

/// An open transaction on either database; dropped without [`Tx::commit`] it rolls back.
pub(super) enum Tx {
    /// SQLite.
    Sqlite(Transaction<'static, Sqlite>),
    /// PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Runs a statement; returns the number of rows it changed.
    pub(super) async fn execute(&mut self, stmt: Stmt) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Tx::Sqlite(tx) => bind_all!(stmt.sql, stmt)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Tx::Postgres(tx) => bind_all!(numbered(&stmt.sql), stmt)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// Runs a query and returns every row.
    pub(super) async fn fetch_all(&mut self, stmt: Stmt) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match self {
            Tx::Sqlite(tx) => bind_all!(stmt.sql, stmt)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Tx::Postgres(tx) => bind_all!(numbered(&stmt.sql), stmt)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    /// Runs a query and returns its first row, if any.
    pub(super) async fn fetch_optional(&mut self, stmt: Stmt) -> Result<Option<Row>, sqlx::Error> {
        Ok(match self {
            Tx::Sqlite(tx) => bind_all!(stmt.sql, stmt)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Sqlite),
            Tx::Postgres(tx) => bind_all!(numbered(&stmt.sql), stmt)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Postgres),
        })
    }

    /// Commits.
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// A result row of either database, read by column index.
pub(super) enum Row {
    /// SQLite.
    Sqlite(SqliteRow),
    /// PostgreSQL.
    Postgres(PgRow),
}

macro_rules! get {
    ($row:expr, $index:expr, $ty:ty) => {
        match $row {
            Row::Sqlite(row) => sqlx::Row::try_get::<$ty, usize>(row, $index),
            Row::Postgres(row) => sqlx::Row::try_get::<$ty, usize>(row, $index),
        }
    };
}

impl Row {
    /// A 64-bit integer column.
    pub(super) fn int(&self, index: usize) -> Result<i64, sqlx::Error> {
        get!(self, index, i64)
    }

    /// A flag column (`INTEGER` 0/1 in SQLite, `BOOLEAN` in PostgreSQL).
    pub(super) fn flag(&self, index: usize) -> Result<bool, sqlx::Error> {
        get!(self, index, bool)
    }

    /// A text column.
    pub(super) fn text(&self, index: usize) -> Result<String, sqlx::Error> {
        get!(self, index, String)
    }

    /// A nullable text column.
    pub(super) fn opt_text(&self, index: usize) -> Result<Option<String>, sqlx::Error> {
        get!(self, index, Option<String>)
    }

    /// A bytes column.
    pub(super) fn bytes(&self, index: usize) -> Result<Vec<u8>, sqlx::Error> {
        get!(self, index, Vec<u8>)
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered("INSERT INTO t VALUES (?, ?), (?, ?)"),
            "INSERT INTO t VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
    }
}
