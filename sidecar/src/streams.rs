//! Reads from conversation streams: the starting cursor, and the messages after a cursor.

use std::sync::Arc;

use chat_protocol::{Conversation, Keys};
use crate::engine::Redis;

/// Where a connection stands in one conversation.
#[derive(Debug)]
pub struct Cursor {
    pub conv: Conversation,
    /// `conv` as on the wire (`u:alice`); shared with the node's pending acknowledgements.
    pub conv_id: Arc<str>,
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
    pub fn new(conv: Conversation) -> Self {
        Cursor { conv_id: Arc::from(conv.to_string()), conv, seq: 0, start: 0, reported: 0 }
    }

    /// Starts delivery after `seq`.
    pub fn start_at(&mut self, seq: u64) {
        self.seq = seq;
        self.start = seq;
        self.reported = seq;
    }

    /// The conversation's latest sequence number.
    pub async fn latest(redis: &mut Redis, keys: &Keys, conv: &Conversation) -> redis::RedisResult<u64> {
        let seq: Option<u64> = redis::cmd("GET").arg(keys.seq(conv)).query_async(redis).await?;
        Ok(seq.unwrap_or(0))
    }
}

/// A conversation's current epoch (see `protocol/lua/push.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    pub id: u64,
    /// The epoch's first message is `base + 1`; the numbers between `prev` and `base` were never
    /// messages.
    pub base: u64,
    /// The last sequence of the previous epoch that survived.
    pub prev: u64,
}

/// Reads `conv`'s epoch; a conversation without one is in its first epoch from 0.
pub async fn epoch_of(redis: &mut Redis, keys: &Keys, conv: &Conversation) -> redis::RedisResult<Epoch> {
    let (id, base, prev): (Option<u64>, Option<u64>, Option<u64>) =
        redis::cmd("HMGET").arg(keys.epoch(conv)).arg("e").arg("b").arg("p").query_async(redis).await?;
    Ok(Epoch { id: id.unwrap_or(0), base: base.unwrap_or(0), prev: prev.unwrap_or(0) })
}

/// Up to `count` messages with sequence numbers above `after`, in order: `(seq, envelope)`.
pub async fn read_after(
    redis: &mut Redis,
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

/// A session's cursors by live channel: a small vector, not a hash map. Sessions hold one to a
/// few conversations, and the lookup on every delivered message is then a pointer compare (the
/// hub hands over the same `Arc` the join returned) instead of hashing the channel name.
#[derive(Debug, Default)]
pub struct CursorMap(Vec<(Arc<str>, Cursor)>);

impl CursorMap {
    fn position(&self, topic: &str) -> Option<usize> {
        let ptr = topic.as_ptr();
        self.0.iter().position(|(t, _)| t.as_ptr() == ptr && t.len() == topic.len()).or_else(|| self.0.iter().position(|(t, _)| **t == *topic))
    }

    /// Room for `n` more cursors and no more (a vector's first growth would make room for
    /// four, some 400 bytes for a session that holds only its inbox).
    pub fn reserve_exact(&mut self, n: usize) {
        self.0.reserve_exact(n);
    }

    pub fn get(&self, topic: &str) -> Option<&Cursor> {
        self.position(topic).map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, topic: &str) -> Option<&mut Cursor> {
        self.position(topic).map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, topic: &str) -> bool {
        self.position(topic).is_some()
    }

    /// Adds or replaces the cursor of `topic`.
    pub fn insert(&mut self, topic: Arc<str>, cursor: Cursor) {
        match self.position(&topic) {
            Some(i) => self.0[i].1 = cursor,
            None => self.0.push((topic, cursor)),
        }
    }

    pub fn remove_entry(&mut self, topic: &str) -> Option<(Arc<str>, Cursor)> {
        self.position(topic).map(|i| self.0.swap_remove(i))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().map(|(t, _)| t)
    }

    pub fn values(&self) -> impl Iterator<Item = &Cursor> {
        self.0.iter().map(|(_, c)| c)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Cursor> {
        self.0.iter_mut().map(|(_, c)| c)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Arc<str>, &mut Cursor)> {
        self.0.iter_mut().map(|(t, c)| (&*t, c))
    }
}

impl std::ops::Index<&str> for CursorMap {
    type Output = Cursor;

    fn index(&self, topic: &str) -> &Cursor {
        self.get(topic).expect("a cursor of this session")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cursors_by_the_same_arc_or_an_equal_name() {
        let mut map = CursorMap::default();
        let inbox: Arc<str> = Arc::from("chat:{u:a}:live");
        map.insert(inbox.clone(), Cursor::new(Conversation::Inbox("a".into())));
        map.insert(Arc::from("chat:{g:x}:live"), Cursor::new(Conversation::Group("x".into())));
        map.get_mut(&inbox).unwrap().seq = 7;
        assert_eq!(map.get("chat:{u:a}:live").map(|c| c.seq), Some(7), "an equal name from elsewhere");
        assert!(map.contains_key("chat:{g:x}:live"));
        let (topic, _) = map.remove_entry("chat:{g:x}:live").unwrap();
        assert_eq!(&*topic, "chat:{g:x}:live");
        assert!(map.get("chat:{g:x}:live").is_none());
        assert_eq!(map.keys().count(), 1);
    }
}
