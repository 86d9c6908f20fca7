//! The `phpinfo()` / `php --ri chat` section.
//!
//! Settings are shown here with the Redis password masked and the JWT secret reduced to
//! "set"/"not set". That is also why this does not call `display_ini_entries()` as C extensions
//! usually do: it would print `chat.jwt_secret` in clear on every `phpinfo()` page.
//! The build rows come from `ext/build.rs`.

use ext_php_rs::zend::ModuleEntry;
use ext_php_rs::{info_table_end, info_table_row, info_table_start};

use crate::ini;

/// MINFO. An `extern "C"` callback whose panics ext-php-rs does not catch, so nothing in here
/// may panic: values are read without validation and stripped of NUL bytes.
pub extern "C" fn module_info(_module: *mut ModuleEntry) {
    let _ = std::panic::catch_unwind(rows);
}

fn rows() {
    let secret = if ini::jwt_secret().is_empty() {
        "not set"
    } else {
        "set"
    };
    let row = |name: &str, value: &str| {
        let (name, value) = (name.replace('\0', ""), value.replace('\0', "\\0"));
        info_table_row!(name, value);
    };
    info_table_start!();
    row("chat support", "enabled");
    row("version", chat_protocol::VERSION);
    // Recorded by build.rs, so a bug report can say exactly which build is loaded.
    row("build", env!("CHAT_BUILD_GIT"));
    row(
        "build profile",
        concat!(env!("CHAT_BUILD_PROFILE"), ", ", env!("CHAT_BUILD_TARGET")),
    );
    row("built with", env!("CHAT_BUILD_RUSTC"));
    row("built for PHP", env!("CHAT_BUILD_PHP"));
    row(
        "redis url (chat.redis_url)",
        &ini::redact_url(&ini::redis_url()),
    );
    row("namespace (chat.namespace)", &ini::raw(ini::NAMESPACE));
    row(
        "timeout (chat.timeout_ms)",
        &format!("{} ms", ini::raw(ini::TIMEOUT_MS)),
    );
    row(
        "failover timeout (chat.failover_timeout_ms)",
        &format!("{} ms", ini::raw(ini::FAILOVER_TIMEOUT_MS)),
    );
    row("retention (chat.retention)", &ini::raw(ini::RETENTION));
    row(
        "max message bytes (chat.max_message_bytes)",
        &ini::raw(ini::MAX_MESSAGE_BYTES),
    );
    row("jwt secret (chat.jwt_secret)", secret);
    info_table_end!();
}
