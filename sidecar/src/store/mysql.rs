//! The `chat_messages` table: idempotent batch inserts and ordered range reads.
//! Every statement uses bound parameters.

use chat_protocol::envelope;
use mysql_async::prelude::*;
use mysql_async::{Opts, Pool, Value};

/// One message as stored: a row of `chat_messages`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub conv: String,
    pub seq: u64,
    pub id: String,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub ts: u64,
    pub data: String,
}

impl StoredMessage {
    /// Splits an envelope (as the push script wrote it) into columns.
    pub fn from_envelope(env: &str) -> Option<StoredMessage> {
        let e: chat_protocol::Envelope = serde_json::from_str(env).ok()?;
        Some(StoredMessage {
            data: envelope::data_of(env)?.to_owned(),
            conv: e.conv,
            seq: e.seq,
            id: e.id,
            sender: e.from,
            recipient: e.to,
            ts: e.ts,
        })
    }

    /// The envelope clients receive, identical to the one Redis held.
    pub fn envelope(&self) -> String {
        envelope::format(&self.id, &self.conv, self.seq, self.sender.as_deref(), self.recipient.as_deref(), self.ts, &self.data)
    }
}

/// A `chat_messages` row as selected: conv, seq, id, sender, recipient, created_at_ms, data.
type Row = (String, u64, String, Option<String>, Option<String>, u64, String);

/// History in MySQL.
#[derive(Clone)]
pub struct History {
    pool: Pool,
}

impl History {
    /// Connects and applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<History> {
        let opts = Opts::from_url(url).map_err(|e| anyhow::anyhow!("CHAT_MYSQL_URL is not a MySQL URL: {e}"))?;
        let pool = Pool::new(opts);
        let mut conn = pool.get_conn().await.map_err(|e| anyhow::anyhow!("cannot connect to MySQL (CHAT_MYSQL_URL): {e}"))?;
        super::migrations::apply(&mut conn).await?;
        Ok(History { pool })
    }

    /// Inserts messages; rows already present (same conv and seq) are left as they are, so a
    /// batch written twice after a crash is still stored once.
    pub async fn insert(&self, rows: &[StoredMessage]) -> Result<(), mysql_async::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut sql = String::from(
            "INSERT IGNORE INTO chat_messages (conv, seq, id, sender, recipient, created_at_ms, data) VALUES ",
        );
        let mut params: Vec<Value> = Vec::with_capacity(rows.len() * 7);
        for (i, r) in rows.iter().enumerate() {
            sql.push_str(if i == 0 { "(?,?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?,?)" });
            params.extend([
                r.conv.clone().into(),
                r.seq.into(),
                r.id.clone().into(),
                r.sender.clone().into(),
                r.recipient.clone().into(),
                r.ts.into(),
                r.data.clone().into(),
            ]);
        }
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(sql, params).await
    }

    /// Messages of `conv` with `after < seq < before`, in order, at most `limit`.
    pub async fn range(&self, conv: &str, after: u64, before: u64, limit: usize) -> Result<Vec<StoredMessage>, mysql_async::Error> {
        let mut conn = self.pool.get_conn().await?;
        let rows: Vec<Row> = conn
            .exec(
                "SELECT conv, seq, id, sender, recipient, created_at_ms, data FROM chat_messages
                 WHERE conv = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?",
                (conv, after, before, limit as u64),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(conv, seq, id, sender, recipient, ts, data)| StoredMessage { conv, seq, id, sender, recipient, ts, data })
            .collect())
    }
}
