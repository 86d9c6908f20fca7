//! Durable history in MySQL/MariaDB: schema migrations, the batch writer fed by the Redis
//! persistence log, range reads for replaying what Redis no longer holds, and the dataset
//! marker that tells whether Redis still holds everything (`dataset`).

pub mod dataset;
mod migrations;
mod mysql;
pub mod persister;

pub use mysql::{History, StoredMessage};
