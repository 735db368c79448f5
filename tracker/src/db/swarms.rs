//! The saved swarms (both modes): the `swarms` table holds the swarm store's snapshot
//! (`crate::swarm::snapshot`) as a few opaque parts, replaced whole in one transaction, so
//! that a reader sees the previous save or the new one, never a mix.

use super::DbError;
use super::backend::{Backend, Stmt};

/// Replaces the saved swarms with `parts`, stamped `saved_at` (unix seconds).
pub(super) async fn save(
    backend: &Backend,
    parts: &[Vec<u8>],
    saved_at: u64,
) -> Result<(), DbError> {
    let mut tx = backend.begin().await?;
    tx.execute(Stmt::new("DELETE FROM swarms")).await?;
    let saved_at = i64::try_from(saved_at).unwrap_or(i64::MAX);
    for (part, data) in (0i64..).zip(parts) {
        tx.execute(
            Stmt::new("INSERT INTO swarms (part, saved_at, data) VALUES (?, ?, ?)")
                .bind(part)
                .bind(saved_at)
                .bind(data.as_slice()),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The saved parts, in order (none if nothing was saved).
pub(super) async fn load(backend: &Backend) -> Result<Vec<Vec<u8>>, DbError> {
    let mut tx = backend.begin().await?;
    let rows = tx
        .fetch_all(Stmt::new("SELECT data FROM swarms ORDER BY part"))
        .await?;
    tx.commit().await?;
    Ok(rows
        .iter()
        .map(|row| row.bytes(0))
        .collect::<Result<_, _>>()?)
}
