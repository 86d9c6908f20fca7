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
    /// The conversation's epoch when it was accepted; `None` before epochs existed.
    pub epoch: Option<u64>,
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
            epoch: e.epoch,
            id: e.id,
            sender: e.from,
            recipient: e.to,
            ts: e.ts,
        })
    }

    /// The envelope clients receive, identical to the one Redis held.
    pub fn envelope(&self) -> String {
        envelope::format(&self.id, &self.conv, self.seq, self.epoch, self.sender.as_deref(), self.recipient.as_deref(), self.ts, &self.data)
    }
}

/// A `chat_messages` row as selected: conv, seq, epoch, id, sender, recipient, created_at_ms, data.
type Row = (String, u64, Option<u64>, String, Option<String>, Option<String>, u64, String);

impl From<Row> for StoredMessage {
    fn from((conv, seq, epoch, id, sender, recipient, ts, data): Row) -> Self {
        StoredMessage { conv, seq, epoch, id, sender, recipient, ts, data }
    }
}

const COLUMNS: &str = "conv, seq, epoch, id, sender, recipient, created_at_ms, data";

fn row_params(r: &StoredMessage) -> [Value; 8] {
    [
        r.conv.clone().into(),
        r.seq.into(),
        r.epoch.into(),
        r.id.clone().into(),
        r.sender.clone().into(),
        r.recipient.clone().into(),
        r.ts.into(),
        r.data.clone().into(),
    ]
}

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

    /// Inserts messages and returns how many replaced another message at the same
    /// (conv, seq). A row already present with the same id is left as it is, so a batch
    /// written twice after a crash is still stored once. A row with another id is a message
    /// Redis lost and whose number it handed out again: the newer one takes the place, and the
    /// older is kept in `chat_messages_replaced`, never dropped silently.
    pub async fn insert(&self, rows: &[StoredMessage]) -> Result<u64, mysql_async::Error> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut sql = format!("INSERT IGNORE INTO chat_messages ({COLUMNS}) VALUES ");
        let mut params: Vec<Value> = Vec::with_capacity(rows.len() * 8);
        for (i, r) in rows.iter().enumerate() {
            sql.push_str(if i == 0 { "(?,?,?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?,?,?)" });
            params.extend(row_params(r));
        }
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(sql, params).await?;
        if conn.affected_rows() == rows.len() as u64 {
            return Ok(0);
        }
        // Some were there already: the same messages (a batch written again), or others.
        let mut replaced = 0;
        for r in rows {
            let held: Option<String> =
                conn.exec_first("SELECT id FROM chat_messages WHERE conv = ? AND seq = ?", (&r.conv, r.seq)).await?;
            if held.as_deref().is_none_or(|id| id == r.id) {
                continue;
            }
            let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
            tx.exec_drop(
                format!("INSERT INTO chat_messages_replaced ({COLUMNS}, replaced_by) SELECT {COLUMNS}, ? FROM chat_messages WHERE conv = ? AND seq = ?"),
                (&r.id, &r.conv, r.seq),
            )
            .await?;
            tx.exec_drop("DELETE FROM chat_messages WHERE conv = ? AND seq = ?", (&r.conv, r.seq)).await?;
            tx.exec_drop(format!("INSERT INTO chat_messages ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"), row_params(r).to_vec()).await?;
            tx.commit().await?;
            tracing::warn!(conv = %r.conv, seq = r.seq, old = %held.unwrap_or_default(), new = %r.id, "a message took the number of one Redis lost; the old row is in chat_messages_replaced");
            replaced += 1;
        }
        Ok(replaced)
    }

    /// Whether any message was ever stored (tells a Redis that lost its data from a new one).
    pub async fn has_messages(&self) -> Result<bool, mysql_async::Error> {
        let mut conn = self.pool.get_conn().await?;
        let one: Option<u8> = conn.query_first("SELECT 1 FROM chat_messages LIMIT 1").await?;
        Ok(one.is_some())
    }

    /// Messages of `conv` with `after < seq < before`, in order, at most `limit`.
    pub async fn range(&self, conv: &str, after: u64, before: u64, limit: usize) -> Result<Vec<StoredMessage>, mysql_async::Error> {
        let mut conn = self.pool.get_conn().await?;
        let rows: Vec<Row> = conn
            .exec(
                format!("SELECT {COLUMNS} FROM chat_messages WHERE conv = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?"),
                (conv, after, before, limit as u64),
            )
            .await?;
        Ok(rows.into_iter().map(StoredMessage::from).collect())
    }
}
