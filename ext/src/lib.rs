//! PHP extension `chat`: lets a PHP-FPM app push chat messages and query presence through
//! Redis, where `chat-sidecar` nodes pick them up and deliver them over `WebSocket`s.
//!
//! Everything both sides must agree on (keys, Lua scripts, ids, tokens) comes from
//! `chat_protocol`; this crate only adapts it to PHP. Module layout:
//! - [`functions`]: the `chat_*` PHP functions;
//! - [`clients`]: functions on single connections (GatewayClient facade);
//! - [`args`]: parameter types ext-php-rs lacks (int-tolerant ids, `array $x = []`);
//! - [`json`]: message encoding via PHP's `json_encode`, claims conversion;
//! - [`conn`]: the per-process Redis connection;
//! - [`ini`]: the `chat.*` settings;
//! - [`errors`]: the `Chat\*` exception classes;
//! - [`info`]: the `phpinfo()` section.

mod args;
mod clients;
mod conn;
mod errors;
mod functions;
mod info;
mod ini;
mod json;

use ext_php_rs::error::php_error;
use ext_php_rs::ffi::{ZEND_RESULT_CODE_FAILURE, ZEND_RESULT_CODE_SUCCESS};
use ext_php_rs::flags::ErrorType;
use ext_php_rs::prelude::*;

/// MINIT, before ext-php-rs's own registration. Runs inside the engine's startup, where a
/// panic would abort PHP, hence the `catch_unwind`.
fn startup(_ty: i32, module_number: i32) -> i32 {
    let outcome = std::panic::catch_unwind(|| {
        ini::register(module_number);
        errors::register_classes().map_err(|e| e.to_string())
    });
    let failure = match outcome {
        Ok(Ok(())) => return ZEND_RESULT_CODE_SUCCESS,
        Ok(Err(e)) => e,
        Err(_) => "panic during startup".to_owned(),
    };
    php_error(
        &ErrorType::CoreWarning,
        &format!("chat: cannot register the Chat\\* exception classes: {failure}"),
    );
    ZEND_RESULT_CODE_FAILURE
}

#[php_module]
#[php(startup = "startup")]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    // The crate is `chat-ext`, but PHP code checks `extension_loaded('chat')`.
    let module = module.name("chat").version(chat_protocol::VERSION);
    clients::register(functions::register(module)).info_function(info::module_info)
}
