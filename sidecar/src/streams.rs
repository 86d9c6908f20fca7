//! Reads from conversation streams: the starting cursor, and the messages after a cursor.

use std::sync::Arc;

use chat_protocol::{Conversation, Keys};
use redis::aio::ConnectionManager;

/// Where a connection stands in one conversation.
#[derive(Debug)]
pub struct Cursor {
    pub conv: Conversation,
    /// `conv` as on the wire (`u:alice`); shared with the node's pending acknowledgements.
    pub conv_id: Arc<str>,
    pub stream_key: String,
    /// Last sequence number delivered to the client.
    pub seq: u64,
    /// Where this session started the conversation (its welcome cursor, or the join point of a
    /// group joined while connected); a long-poll rewind never goes before it.
    pub start: u64,
    /// Highest sequence reported as acknowledged (automatic mode) to [`crate::acks::Acks`].
    pub reported: u64,
}

impl Cursor {
    /// A cursor before the conversation's first message.
    pub fn new(keys: &Keys, conv: Conversation) -> Self {
        Cursor { conv_id: Arc::from(conv.to_string()), stream_key: keys.stream(&conv), conv, seq: 0, start: 0, reported: 0 }
    }

    /// Starts delivery after `seq`.
    pub fn start_at(&mut self, seq: u64) {
        self.seq = seq;
        self.start = seq;
        self.reported = seq;
    }

    /// The conversation's latest sequence number.
    pub async fn latest(redis: &mut ConnectionManager, keys: &Keys, conv: &Conversation) -> redis::RedisResult<u64> {
        let seq: Option<u64> = redis::cmd("GET").arg(keys.seq(conv)).query_async(redis).await?;
        Ok(seq.unwrap_or(0))
    }
}

/// Up to `count` messages with sequence numbers above `after`, in order: `(seq, envelope)`.
pub async fn read_after(
    redis: &mut ConnectionManager,
    stream_key: &str,
    after: u64,
    count: usize,
) -> redis::RedisResult<Vec<(u64, String)>> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream_key)
        .arg(format!("({after}-0"))
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(redis)
        .await?;
    Ok(entries
        .into_iter()
        .filter_map(|(id, fields)| {
            let seq = id.split_once('-')?.0.parse().ok()?;
            let envelope = fields.into_iter().find(|(k, _)| k == "e")?.1;
            Some((seq, envelope))
        })
        .collect())
}
