//! Versioned schema migrations, applied at start under a MySQL named lock so several nodes
//! starting together apply each one exactly once.

use mysql_async::prelude::*;
use mysql_async::Conn;

/// (version, description, SQL). Append only; never edit an applied migration.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "messages table", include_str!("../../migrations/001_messages.sql")),
    (2, "message epochs", include_str!("../../migrations/002_epoch.sql")),
    (3, "replaced messages", include_str!("../../migrations/003_replaced.sql")),
];

pub async fn apply(conn: &mut Conn) -> anyhow::Result<()> {
    let locked: Option<i64> = conn.query_first("SELECT GET_LOCK('chat_migrations', 60)").await?;
    anyhow::ensure!(locked == Some(1), "could not take the chat_migrations lock within 60 s");
    let result = apply_locked(conn).await;
    let _: Option<i64> = conn.query_first("SELECT RELEASE_LOCK('chat_migrations')").await?;
    result
}

async fn apply_locked(conn: &mut Conn) -> anyhow::Result<()> {
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS chat_schema_migrations (
           version INT UNSIGNED PRIMARY KEY,
           description VARCHAR(200) NOT NULL,
           applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
         ) ENGINE=InnoDB",
    )
    .await?;
    let applied: Vec<u32> = conn.query("SELECT version FROM chat_schema_migrations").await?;
    for (version, description, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(version, description, "applying schema migration");
        conn.query_drop(*sql).await?;
        conn.exec_drop(
            "INSERT INTO chat_schema_migrations (version, description) VALUES (?, ?)",
            (version, description),
        )
        .await?;
    }
    Ok(())
}
