//! PHP values to JSON: message payloads through PHP's own `json_encode`, token claims by hand.
//!
//! Messages go through `json_encode()` itself (called from Rust) so that `JsonSerializable`,
//! public-property objects, `[]` vs `{}`, float formatting (`serialize_precision`) and UTF-8
//! checks behave exactly as PHP devs expect; the result is spliced verbatim into the envelope.
//! Claims are converted here because they must become a `serde_json` map for
//! `chat_protocol::token`, and only plain data makes sense in a token.

use ext_php_rs::types::{ZendCallable, ZendHashTable, Zval};
use serde_json::{Map, Value};

use crate::args::{entries, type_name, ArrayArg, Key};
use crate::errors::{ChatError, Result};

/// `JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION`: compact
/// output, and `1.0` stays a float for JavaScript-side type checks.
const JSON_FLAGS: i64 = 256 | 64 | 1024;

/// Deepest claim nesting accepted; also stops reference cycles (`$a['x'] = &$a`).
const MAX_CLAIM_DEPTH: usize = 32;

/// `json_encode($value, JSON_FLAGS)`, or the reason it failed.
///
/// If `jsonSerialize()` throws, that exception is left pending and propagates to the caller
/// unchanged (the error returned here is then not thrown).
pub fn encode(value: &Zval) -> Result<String> {
    let encoded = call("json_encode", vec![value, &JSON_FLAGS])?;
    if let Some(s) = encoded.zend_str() {
        return String::from_utf8(s.as_bytes().to_vec())
            .map_err(|_| ChatError::Invalid("json_encode() returned invalid UTF-8".to_owned()));
    }
    // `false`: the reason is only available from json_last_error_msg().
    let reason = call("json_last_error_msg", vec![])?
        .string()
        .unwrap_or_default();
    Err(ChatError::Invalid(format!(
        "the message cannot be encoded as JSON: {reason}"
    )))
}

/// Refuses JSON text that is not I-JSON (RFC 7493), naming the rule it breaks
/// (`chat_protocol::ijson`): what the sidecar refuses from clients, PHP may not store either.
pub fn check_ijson(json: &str, limit: usize) -> Result<()> {
    chat_protocol::ijson::validate_str(json, limit).map_err(|e| {
        ChatError::Invalid(format!("the message is not I-JSON (RFC 7493), which every reader of it needs: {e}"))
    })
}

/// `json_decode($json, true)`: envelopes read back from Redis as PHP arrays.
pub fn decode(json: &str) -> Result<Zval> {
    let decoded = call("json_decode", vec![&json.to_owned(), &true])?;
    if decoded.is_null() {
        return Err(ChatError::Other("Redis held a message that is not valid JSON".to_owned()));
    }
    Ok(decoded)
}

pub(crate) fn call(name: &str, args: Vec<&dyn ext_php_rs::convert::IntoZvalDyn>) -> Result<Zval> {
    ZendCallable::try_from_name(name)
        .and_then(|f| f.try_call(args))
        .map_err(|e| ChatError::Other(format!("{name}() failed: {e}")))
}

/// The `$claims` array of `chat_token()` as a JSON object.
pub fn claims(claims: ArrayArg<'_>) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for (key, value) in claims.iter() {
        let name = match key {
            Key::Str(name) => name,
            Key::Int(_) | Key::Binary(_) => {
                return Err(ChatError::Invalid(format!(
                    "claim names must be UTF-8 strings; $claims has the key {key}"
                )))
            }
        };
        let json = to_json(value, 1, &name)?;
        map.insert(name, json);
    }
    Ok(map)
}

/// `claim` is the top-level claim being converted, for error messages.
fn to_json(value: &Zval, depth: usize, claim: &str) -> Result<Value> {
    let value = value.dereference();
    if value.is_null() {
        Ok(Value::Null)
    } else if let Some(b) = value.bool() {
        Ok(Value::Bool(b))
    } else if let Some(n) = value.long() {
        Ok(Value::from(n))
    } else if let Some(f) = value.double() {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| {
                ChatError::Invalid(format!(
                    "claim '{claim}' holds {f}, which JSON cannot represent"
                ))
            })
    } else if let Some(s) = value.zend_str() {
        std::str::from_utf8(s.as_bytes())
            .map(|s| Value::String(s.to_owned()))
            .map_err(|_| {
                ChatError::Invalid(format!(
                    "claim '{claim}' holds a string that is not valid UTF-8"
                ))
            })
    } else if let Some(ht) = value.array() {
        if depth >= MAX_CLAIM_DEPTH {
            return Err(ChatError::Invalid(format!(
                "claim '{claim}' is nested deeper than {MAX_CLAIM_DEPTH} levels (or refers to itself)"
            )));
        }
        array_to_json(ht, depth + 1, claim)
    } else {
        Err(ChatError::Invalid(format!(
            "claim '{claim}' holds a value of type {}; claims may only hold strings, numbers, booleans, null and arrays",
            type_name(value)
        )))
    }
}

/// A list (`[0 => …, 1 => …]`, or empty) becomes a JSON array, anything else an object, as
/// `json_encode` does.
fn array_to_json(ht: &ZendHashTable, depth: usize, claim: &str) -> Result<Value> {
    let is_list = entries(ht)
        .enumerate()
        .all(|(i, (k, _))| i64::try_from(i).is_ok_and(|i| k == Key::Int(i)));
    if is_list {
        entries(ht)
            .map(|(_, v)| to_json(v, depth, claim))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array)
    } else {
        entries(ht)
            .map(|(k, v)| {
                let k = match k {
                    Key::Int(n) => n.to_string(),
                    Key::Str(s) => s,
                    Key::Binary(_) => {
                        return Err(ChatError::Invalid(format!(
                            "claim '{claim}' holds an array key that is not valid UTF-8"
                        )))
                    }
                };
                Ok((k, to_json(v, depth, claim)?))
            })
            .collect::<Result<Map<_, _>>>()
            .map(Value::Object)
    }
}
