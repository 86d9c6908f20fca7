//! The one contract the PHP extension (`ext/`) and `chat-sidecar` compile against.
//!
//! Everything both sides must agree on lives here and nowhere else:
//! - [`ijson`]: the I-JSON (RFC 7493) check every app payload passes where it enters;
//! - [`ids`]: what a user id or group name may contain, and the conversation ids built from them;
//! - [`keys`]: every Redis key and channel name, with the hash tags Redis Cluster needs;
//! - [`scripts`]: the Lua scripts (push, presence, kick) and how to call them;
//! - [`live`]: the payload format published on a conversation's notification channel;
//! - [`envelope`]: the message envelope clients receive;
//! - [`token`]: the HS256 connect token minted by PHP and verified by the sidecar;
//! - [`wire`]: the client wire protocol (frames, error codes, close codes);
//! - [`topology`]: what a Redis URL names (one Redis or a Sentinel-managed master) and how many
//!   replicas must confirm a write.

pub mod envelope;
pub mod ids;
pub mod ijson;
pub mod keys;
pub mod live;
pub mod scripts;
pub mod token;
pub mod topology;
pub mod wire;

pub use envelope::Envelope;
pub use ids::{Conversation, IdError, MessageId};
pub use keys::Keys;
pub use token::{Claims, TokenError};

/// Version of this contract, reported by both the extension and the sidecar.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Default number of messages a conversation's Redis stream keeps before trimming.
pub const DEFAULT_RETENTION: u64 = 10_000;

/// Default bound of the persistence log's backlog. Entries leave the log once written to MySQL
/// and are never trimmed before: once this many wait (MySQL unreachable for a while), pushes
/// are refused rather than accepted into a history with a hole.
pub const DEFAULT_LOG_CAP: u64 = 1_000_000;

/// Default upper bound, in bytes, of one message's JSON payload.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
