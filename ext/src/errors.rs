//! The exception classes PHP code catches, and the error type every PHP function returns.
//!
//! ```text
//! \RuntimeException
//!  └─ Chat\ChatException                  anything the extension refuses or cannot do
//!      ├─ Chat\ConnectionException        Redis unreachable, timed out, connection lost
//!      └─ Chat\InvalidArgumentException   bad id, option, message, ttl or claim
//! ```
//!
//! The classes are registered the way a C extension registers them (plain internal classes
//! inheriting everything from `\RuntimeException`), not as `#[php_class]` structs: those get a
//! Rust-backed object and a generated `__construct` that refuses `new` from PHP, but apps and
//! tests must be able to construct, subclass and serialize these like any exception.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use chat_protocol::{IdError, TokenError};
use ext_php_rs::args::ArgInfoTables;
use ext_php_rs::builders::ClassBuilder;
use ext_php_rs::exception::PhpException;
use ext_php_rs::zend::{ce, ClassEntry};

/// Why a PHP function failed; each variant is thrown as its own exception class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// `Chat\InvalidArgumentException`: the caller passed something we refuse.
    #[error("{0}")]
    Invalid(String),
    /// `Chat\ConnectionException`: Redis could not be reached or the connection broke.
    #[error("{0}")]
    Connection(String),
    /// `Chat\ChatException`: configuration problems and errors Redis reported.
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = ChatError> = std::result::Result<T, E>;

impl From<IdError> for ChatError {
    fn from(e: IdError) -> Self {
        ChatError::Invalid(e.to_string())
    }
}

impl From<TokenError> for ChatError {
    fn from(e: TokenError) -> Self {
        match e {
            // Missing configuration, not the caller's argument.
            TokenError::NoSecret => ChatError::Other(e.to_string()),
            _ => ChatError::Invalid(e.to_string()),
        }
    }
}

impl From<ChatError> for PhpException {
    fn from(e: ChatError) -> Self {
        let (slot, message) = match e {
            ChatError::Invalid(m) => (&INVALID_ARGUMENT, m),
            ChatError::Connection(m) => (&CONNECTION, m),
            ChatError::Other(m) => (&CHAT, m),
        };
        PhpException::new(message, 0, class_entry(slot))
    }
}

// Class entries captured at MINIT, like a C extension's `zend_class_entry *` globals. A SAPI
// that restarts the module (FrankenPHP workers) runs MINIT again, which overwrites them.
static CHAT: AtomicPtr<ClassEntry> = AtomicPtr::new(ptr::null_mut());
static CONNECTION: AtomicPtr<ClassEntry> = AtomicPtr::new(ptr::null_mut());
static INVALID_ARGUMENT: AtomicPtr<ClassEntry> = AtomicPtr::new(ptr::null_mut());

fn class_entry(slot: &AtomicPtr<ClassEntry>) -> &'static ClassEntry {
    // SAFETY: the pointer was handed to us by `zend_register_internal_class_ex` and stays valid
    // until module shutdown; PHP functions of this module only run before that.
    unsafe { slot.load(Ordering::Acquire).as_ref() }.unwrap_or_else(ce::exception)
}

unsafe extern "C" {
    // Exported by the PHP binary, as for C extensions including `ext/spl/spl_exceptions.h`.
    // Looking the class up by name does not work yet in MINIT (`EG(class_table)` is only set
    // up for requests), and ext-php-rs's `ce` module has no SPL classes.
    static spl_ce_RuntimeException: *mut ClassEntry;
}

fn runtime_exception() -> &'static ClassEntry {
    // SAFETY: SPL is always compiled into PHP 8 and starts before dynamically loaded
    // extensions, so this is set and lives for the process. The fallback only keeps MINIT
    // panic-free.
    unsafe { spl_ce_RuntimeException.as_ref() }.unwrap_or_else(ce::exception)
}

fn chat_exception() -> &'static ClassEntry {
    class_entry(&CHAT)
}

/// Registers the three classes; called from MINIT.
pub fn register_classes() -> ext_php_rs::error::Result<()> {
    fn keep(slot: &AtomicPtr<ClassEntry>, ce: &'static mut ClassEntry, arg_info: ArgInfoTables) {
        slot.store(ce, Ordering::Release);
        // The engine may keep pointers into these for the life of the process.
        std::mem::forget(arg_info);
    }
    ClassBuilder::new("Chat\\ChatException")
        .extends((runtime_exception, "\\RuntimeException"))
        .registration(|ce, args| keep(&CHAT, ce, args))
        .register()?;
    ClassBuilder::new("Chat\\ConnectionException")
        .extends((chat_exception, "\\Chat\\ChatException"))
        .registration(|ce, args| keep(&CONNECTION, ce, args))
        .register()?;
    ClassBuilder::new("Chat\\InvalidArgumentException")
        .extends((chat_exception, "\\Chat\\ChatException"))
        .registration(|ce, args| keep(&INVALID_ARGUMENT, ce, args))
        .register()?;
    Ok(())
}
