//! Test support: a fresh database per test on each backend, and [`on_both!`] to run a test
//! body on SQLite and on PostgreSQL.
//!
//! PostgreSQL comes from `RILL_TEST_POSTGRES` (`postgres://USER:PASSWORD@127.0.0.1:PORT/DB`,
//! a role that may create schemas; `.ci/run` starts one). Each test gets its own schema
//! (through the URL's `options[search_path]`), so tests run in parallel. When the variable
//! is unset, a PostgreSQL test FAILS if `CI` is set and is skipped with a notice otherwise.

use tempfile::TempDir;

use super::Db;
use super::backend::Stmt;

/// The environment variable naming the PostgreSQL server for tests.
pub(crate) const POSTGRES_ENV: &str = "RILL_TEST_POSTGRES";

/// One test's database.
pub(crate) struct TestDb {
    /// The URL [`Db::open`] takes (stable: reopening sees the same data).
    pub(crate) url: String,
    /// `"sqlite"` or `"postgres"`.
    pub(crate) kind: &'static str,
    /// The SQLite file's directory, removed on drop.
    _dir: Option<TempDir>,
    /// The PostgreSQL schema, dropped by [`TestDb::cleanup`].
    schema: Option<super::ScratchSchema>,
}

impl TestDb {
    /// A fresh SQLite file in a temp dir.
    pub(crate) fn sqlite() -> TestDb {
        let dir = TempDir::new().expect("temp dir");
        TestDb {
            url: format!("sqlite://{}", dir.path().join("tracker.db").display()),
            kind: "sqlite",
            _dir: Some(dir),
            schema: None,
        }
    }

    /// A fresh schema on the PostgreSQL server of `RILL_TEST_POSTGRES`; `None` (skip) when
    /// it is unset outside CI. Panics when it is unset in CI or the server is unreachable.
    pub(crate) async fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var(POSTGRES_ENV) else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{POSTGRES_ENV} is not set but CI is: the PostgreSQL tests must run in CI \
                     (.ci/run starts a server and sets {POSTGRES_ENV}=postgres://…)"
                );
            }
            eprintln!(
                "notice: PostgreSQL test skipped: set {POSTGRES_ENV}=postgres://USER:PASSWORD@HOST:PORT/DB to run it"
            );
            return None;
        };
        let scratch = super::ScratchSchema::create(&base)
            .await
            .unwrap_or_else(|e| panic!("cannot create a schema on {POSTGRES_ENV}: {e}"));
        Some(TestDb {
            url: scratch.url().to_owned(),
            kind: "postgres",
            _dir: None,
            schema: Some(scratch),
        })
    }

    /// Opens (and migrates) the database.
    pub(crate) async fn open(&self) -> Db {
        Db::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", self.kind))
    }

    /// Drops the test's PostgreSQL schema (a SQLite file goes with its temp dir).
    pub(crate) async fn cleanup(self) {
        if let Some(scratch) = self.schema {
            scratch.drop_schema().await.expect("drop schema");
        }
    }
}

impl Db {
    /// Runs raw SQL (tests only: triggers, sums).
    pub(crate) async fn execute_raw(&self, sql: &str) -> Result<(), super::DbError> {
        let mut tx = self.backend.begin().await?;
        tx.execute(Stmt::new(sql)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The integer in the first column of the first row of a query (tests only).
    pub(crate) async fn query_int(&self, sql: &str) -> i64 {
        let mut tx = self.backend.begin().await.expect("begin");
        let row = tx.fetch_optional(Stmt::new(sql)).await.expect("query");
        let value = row.expect("a row").int(0).expect("an integer");
        tx.commit().await.expect("commit");
        value
    }

    /// The text in the first column of the first row of a query (tests only).
    pub(crate) async fn query_text(&self, sql: &str) -> String {
        let mut tx = self.backend.begin().await.expect("begin");
        let row = tx.fetch_optional(Stmt::new(sql)).await.expect("query");
        let value = row.expect("a row").text(0).expect("text");
        tx.commit().await.expect("commit");
        value
    }

    /// The number of rows in `table` (tests only).
    pub(crate) async fn count(&self, table: &str) -> i64 {
        self.query_int(&format!("SELECT COUNT(*) FROM {table}"))
            .await
    }
}

/// Runs each named `async fn(&TestDb)` twice, as `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let db = $crate::db::testing::TestDb::sqlite();
                super::$name(&db).await;
                db.cleanup().await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(db) = $crate::db::testing::TestDb::postgres().await {
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            }
        }
    )*};
}

pub(crate) use on_both;
