//! The schema: the embedded sqlx migrations, which of them the database has applied, and
//! applying or reverting them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreResult};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A known migration and when it was applied (None = pending).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    pub applied_at: Option<DateTime<Utc>>,
}

impl Store {
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Every known migration with when it was applied.
    pub async fn migrations(&self) -> StoreResult<Vec<MigrationState>> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        let applied: Vec<(i64, DateTime<Utc>)> = if exists {
            sqlx::query_as("SELECT version, installed_on FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await?
        } else {
            Vec::new()
        };
        Ok(MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| MigrationState {
                version: m.version,
                description: m.description.to_string(),
                applied_at: applied.iter().find(|(v, _)| *v == m.version).map(|(_, at)| *at),
            })
            .collect())
    }

    pub async fn pending_migrations(&self) -> StoreResult<Vec<MigrationState>> {
        Ok(self
            .migrations()
            .await?
            .into_iter()
            .filter(|m| m.applied_at.is_none())
            .collect())
    }

    /// Undoes the applied migrations after `version` (0: all of them).
    pub async fn revert_to(&self, version: i64) -> StoreResult<()> {
        MIGRATOR.undo(&self.pool, version).await?;
        Ok(())
    }
}
