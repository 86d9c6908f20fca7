//! Parameter types for the `#[php_function]`s, where ext-php-rs's stock ones do not fit.
//!
//! - [`StrArg`] is a `string` parameter that also takes an `int`. ext-php-rs does no type
//!   juggling (a C extension's `string $uid` would turn `42` into `"42"` in non-strict mode),
//!   and PHP apps very often hold user ids as ints: `chat_push($user->id, …)` must work. It also
//!   keeps non-UTF-8 bytes, so id validation can refuse them with a `Chat\InvalidArgumentException`
//!   naming the problem rather than a bare `TypeError`.
//! - [`ArrayArg`] is an `array` parameter that can carry the default `[]`: `&ZendHashTable`
//!   has no [`StubLiteral`], so `array $options = []` cannot be spelled with it.
//! - [`entries`] iterates a PHP array. ext-php-rs's `ZendHashTable::iter()` and `values()`
//!   panic on a string key that is not UTF-8 (`["\xff" => 1]`), so keys are read raw here.
//! - [`type_name`] names a value's type as PHP's `get_debug_type()` does, for error messages:
//!   ext-php-rs's `DataType` prints Rust-side names (`Double`, `True`).

use std::borrow::Cow;
use std::fmt;

use ext_php_rs::convert::{FromZval, StubLiteral};
use ext_php_rs::flags::DataType;
use ext_php_rs::types::{ZendHashTable, Zval};

/// A `string` (or `int`) argument, as the bytes PHP passed.
#[derive(Debug, Clone)]
pub struct StrArg<'a>(Cow<'a, [u8]>);

impl StrArg<'_> {
    /// The argument as text, if it is UTF-8.
    pub fn utf8(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The argument as text, with invalid UTF-8 replaced by U+FFFD, which no id accepts: the
    /// validation error then names the offending character.
    pub fn lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<'a> FromZval<'a> for StrArg<'a> {
    const TYPE: DataType = DataType::String;

    fn from_zval(zval: &'a Zval) -> Option<Self> {
        if let Some(s) = zval.zend_str() {
            return Some(StrArg(Cow::Borrowed(s.as_bytes())));
        }
        zval.long()
            .map(|n| StrArg(Cow::Owned(n.to_string().into_bytes())))
    }
}

impl StubLiteral for StrArg<'_> {
    // Needed for `Option<StrArg>` parameters with a `None` default (rendered `null`, so this
    // runs only for a string default): a PHP single-quoted literal.
    fn stub_literal(&self) -> String {
        let text = self.lossy();
        format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// An `array` argument that may be omitted (then it is [`ArrayArg::EMPTY`]).
#[derive(Debug, Clone, Copy)]
pub struct ArrayArg<'a>(Option<&'a ZendHashTable>);

impl<'a> ArrayArg<'a> {
    /// The default `[]`.
    pub const EMPTY: ArrayArg<'static> = ArrayArg(None);

    pub fn iter(self) -> impl Iterator<Item = (Key, &'a Zval)> + 'a {
        self.0.into_iter().flat_map(entries)
    }
}

impl<'a> FromZval<'a> for ArrayArg<'a> {
    const TYPE: DataType = DataType::Array;

    fn from_zval(zval: &'a Zval) -> Option<Self> {
        zval.array().map(|ht| ArrayArg(Some(ht)))
    }
}

impl StubLiteral for ArrayArg<'_> {
    // Only ever rendered for the default value, which is always the empty array.
    fn stub_literal(&self) -> String {
        "[]".to_owned()
    }
}

/// A PHP array key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Int(i64),
    Str(String),
    /// A string key that is not UTF-8, with invalid bytes replaced by U+FFFD.
    Binary(String),
}

impl fmt::Display for Key {
    /// As PHP code would write the key: `0`, `'name'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::Str(s) | Key::Binary(s) => write!(f, "'{s}'"),
        }
    }
}

/// The entries of `ht`, in order.
pub fn entries(ht: &ZendHashTable) -> impl Iterator<Item = (Key, &Zval)> {
    let mut iter = ht.iter();
    std::iter::from_fn(move || {
        let (key, value) = iter.next_zval()?;
        let key = match (key.long(), key.zend_str()) {
            (Some(n), _) => Key::Int(n),
            (None, Some(s)) => match std::str::from_utf8(s.as_bytes()) {
                Ok(s) => Key::Str(s.to_owned()),
                Err(_) => Key::Binary(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            },
            // The engine only has int and string keys.
            (None, None) => Key::Binary(String::new()),
        };
        Some((key, value))
    })
}

/// The type of `value` as PHP's `get_debug_type()` names it: `null`, `bool`, `int`, `float`,
/// `string`, `array`, the class name of an object, `resource`.
pub fn type_name(value: &Zval) -> String {
    let value = value.dereference();
    let name = if value.is_null() {
        "null"
    } else if value.is_bool() {
        "bool"
    } else if value.is_long() {
        "int"
    } else if value.is_double() {
        "float"
    } else if value.is_string() {
        "string"
    } else if value.is_array() {
        "array"
    } else if let Some(obj) = value.object() {
        return obj.get_class_name().unwrap_or_else(|_| "object".to_owned());
    } else if value.is_resource() {
        "resource"
    } else {
        "unknown"
    };
    name.to_owned()
}
