//! Durable history in MySQL/MariaDB: schema migrations, the batch writer fed by the Redis
//! persistence log, and range reads for replaying what Redis no longer holds.

mod migrations;
mod mysql;
pub mod persister;

pub use mysql::{History, StoredMessage};
