//! The `chat.*` INI settings: their table, typed and validated reads, and URL redaction.
//!
//! Values are read from the engine's live directive table on every call rather than cached at
//! MINIT, so `ini_set()`, per-pool `php_value` and `-d` all take effect, and a bad value fails
//! only the calls that use it, with an exception naming the setting.

use std::ffi::{c_int, c_void, CStr};
use std::time::Duration;

use chat_protocol::{ids, Keys};
use ext_php_rs::ffi::{zend_ini_entry, zend_string, ZEND_RESULT_CODE_SUCCESS};
use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::zend::{ExecutorGlobals, IniEntryDef, IniEntryDefs};

use crate::errors::{ChatError, Result};

pub const REDIS_URL: &str = "chat.redis_url";
pub const NAMESPACE: &str = "chat.namespace";
pub const JWT_SECRET: &str = "chat.jwt_secret";
pub const TIMEOUT_MS: &str = "chat.timeout_ms";
pub const RETENTION: &str = "chat.retention";
pub const MAX_MESSAGE_BYTES: &str = "chat.max_message_bytes";
pub const FAILOVER_TIMEOUT_MS: &str = "chat.failover_timeout_ms";

// The defaults must be C string literals; the test below keeps them equal to the protocol's.
static ENTRIES: IniEntryDefs<8> = IniEntryDefs::new([
    entry(c"chat.redis_url", c"redis://127.0.0.1:6379"),
    entry(c"chat.namespace", c"chat"),
    entry(c"chat.jwt_secret", c""),
    entry(c"chat.timeout_ms", c"1000"),
    entry(c"chat.retention", c"10000"),
    entry(c"chat.max_message_bytes", c"65536"),
    entry(c"chat.failover_timeout_ms", c"5000"),
    IniEntryDef::end(),
]);

/// A setting changeable anywhere (php.ini, pool config, `-d`, `ini_set`).
const fn entry(name: &'static CStr, default: &'static CStr) -> IniEntryDef {
    let mut def = IniEntryDef::new(name, default, IniEntryPermission::All);
    def.on_modify = Some(accept);
    def
}

/// Accepts every value. Without any handler the engine refuses `ini_restore()` at runtime;
/// validating here instead would make PHP silently fall back to the default for a bad php.ini
/// value, whereas validating on use throws an exception naming the setting.
unsafe extern "C" fn accept(
    _entry: *mut zend_ini_entry,
    _new_value: *mut zend_string,
    _mh_arg1: *mut c_void,
    _mh_arg2: *mut c_void,
    _mh_arg3: *mut c_void,
    _stage: c_int,
) -> c_int {
    ZEND_RESULT_CODE_SUCCESS
}

/// Registers the settings; called from MINIT.
pub fn register(module_number: i32) {
    IniEntryDef::register(ENTRIES.as_slice(), module_number);
}

/// The current value of a setting (after `ini_set`), or `""` if it is somehow missing.
pub fn raw(name: &str) -> String {
    let globals = ExecutorGlobals::get();
    // SAFETY: `EG(ini_directives)` is set up before any request runs and holds
    // `zend_ini_entry` pointers owned by the engine; we copy the value out before the guard
    // (and with it our borrow) ends.
    unsafe {
        globals
            .ini_directives
            .as_ref()
            .and_then(|table| table.get(name))
            .and_then(|zv| zv.ptr::<zend_ini_entry>())
            .and_then(|entry| entry.as_ref())
            .and_then(|entry| entry.value.as_ref())
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default()
    }
}

pub fn redis_url() -> String {
    raw(REDIS_URL)
}

/// Key names under `chat.namespace`, which ends up in every key and so obeys the id rules.
pub fn keys() -> Result<Keys> {
    let ns = raw(NAMESPACE);
    ids::validate(NAMESPACE, &ns).map_err(|e| ChatError::Other(e.to_string()))?;
    Ok(Keys::new(ns))
}

pub fn jwt_secret() -> String {
    raw(JWT_SECRET)
}

/// Connect, read and write timeout.
pub fn timeout() -> Result<Duration> {
    positive(TIMEOUT_MS, &raw(TIMEOUT_MS)).map(Duration::from_millis)
}

/// How long a call keeps trying while a Sentinel-managed master is switched over (only for
/// `redis+sentinel://` URLs; `0` = fail at once).
pub fn failover_timeout() -> Result<Duration> {
    let value = raw(FAILOVER_TIMEOUT_MS);
    match value.trim().parse::<u64>() {
        Ok(n) => Ok(Duration::from_millis(n)),
        Err(_) => Err(ChatError::Other(format!("{FAILOVER_TIMEOUT_MS} must be a whole number >= 0, got {value:?}"))),
    }
}

pub fn retention() -> Result<u64> {
    positive(RETENTION, &raw(RETENTION))
}

pub fn max_message_bytes() -> Result<usize> {
    let n = positive(MAX_MESSAGE_BYTES, &raw(MAX_MESSAGE_BYTES))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn positive(name: &str, value: &str) -> Result<u64> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ChatError::Other(format!(
            "{name} must be a whole number >= 1, got {value:?}"
        ))),
    }
}

/// `url` with any password replaced by `***`, for messages and `phpinfo()`: exception messages
/// end up in logs and error pages. Handles `redis://user:pass@host` and the
/// `redis+unix:///path?pass=…` form.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let (scheme, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, pass)) if !pass.is_empty() => format!("{user}:***@{host}"),
            _ => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let path = match path.split_once('?') {
        Some((before, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) if !v.is_empty() && matches!(k, "pass" | "password" | "sentinel_password") => {
                        format!("{k}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{before}?{}", query.join("&"))
        }
        None => path.to_owned(),
    };
    format!("{scheme}{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_of(name: &str) -> String {
        ENTRIES
            .as_slice()
            .iter()
            .filter(|e| !e.name.is_null())
            // SAFETY: every non-terminal entry was built from C string literals.
            .find(|e| unsafe { std::ffi::CStr::from_ptr(e.name) }.to_str() == Ok(name))
            .map(|e| {
                unsafe { std::ffi::CStr::from_ptr(e.value) }
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_else(|| panic!("{name} not registered"))
    }

    #[test]
    fn defaults_follow_the_protocol() {
        assert_eq!(
            default_of(RETENTION),
            chat_protocol::DEFAULT_RETENTION.to_string()
        );
        assert_eq!(
            default_of(MAX_MESSAGE_BYTES),
            chat_protocol::DEFAULT_MAX_MESSAGE_BYTES.to_string()
        );
        assert_eq!(default_of(NAMESPACE), "chat");
        assert_eq!(default_of(JWT_SECRET), "");
    }

    #[test]
    fn positive_numbers_only() {
        assert_eq!(positive("x", " 250 "), Ok(250));
        for bad in ["0", "-1", "", "1.5", "64K"] {
            assert!(positive("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://app:s3cret@host", "redis://app:***@host"),
            ("redis://app@host", "redis://app@host"),
            ("redis://u:p@ss@host/1", "redis://u:***@host/1"),
            (
                "redis+unix:///run/redis.sock?db=1&pass=s3cret",
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }
}
