//! Property tests (run briefly by `cargo test`, so by `make test`) for what a client sends: the
//! frame decoder `wire::parse_client`, the I-JSON check `ijson::validate`, and the envelope
//! builder `envelope::format` that splices an accepted payload.
//!
//! The I-JSON check is compared against an independent reference: serde_json (which refuses
//! lone surrogates, numbers that overflow a double, and invalid UTF-8 by itself) plus a small
//! visitor for the rules serde_json does not have (depth, duplicate member names,
//! noncharacters). Inputs are generated JSON values, those values mutated byte by byte, and
//! the values with a poison shape planted in them. `PROPTEST_CASES` raises the case count for
//! a longer run.

use std::collections::HashSet;
use std::fmt;

use chat_protocol::envelope::{self, Envelope};
use chat_protocol::ijson::{self, MAX_DEPTH};
use chat_protocol::wire::{self, ClientFrame};
use proptest::prelude::*;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

const LIMIT: usize = 1 << 20;

/// The reference: what a consumer using serde_json, with the I-JSON rules it lacks added, makes
/// of `bytes`.
fn reference(bytes: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Depth is checked by the visitor; serde_json's own limit (128) is above ours.
    Node { depth: 0 }.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

fn nonchar(s: &str) -> bool {
    s.chars().any(|c| {
        let c = c as u32;
        (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
    })
}

struct Node {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        if v.is_finite() { Ok(()) } else { Err(E::custom("number overflows a double")) }
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        if nonchar(s) { Err(E::custom("noncharacter")) } else { Ok(()) }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom("too deep"));
        }
        while seq.next_element_seed(Node { depth: self.depth + 1 })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom("too deep"));
        }
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if nonchar(&name) {
                return Err(serde::de::Error::custom("noncharacter in a name"));
            }
            if !names.insert(name) {
                return Err(serde::de::Error::custom("duplicate name"));
            }
            map.next_value_seed(Node { depth: self.depth + 1 })?;
        }
        Ok(())
    }
}

/// Strings as apps send them, and the odd characters around the rules.
fn text() -> impl Strategy<Value = String> {
    let odd = prop_oneof![
        Just('\u{0}'), Just('"'), Just('\\'), Just('\u{1f}'), Just('é'), Just('😀'), Just('\u{FFFD}'),
        Just('\u{FDCF}'), Just('\u{FDF0}'), Just('\u{10FFFD}'),
    ];
    proptest::collection::vec(prop_oneof![4 => proptest::char::range('a', 'z'), 1 => odd, 1 => any::<char>()], 0..12)
        .prop_map(|chars| chars.into_iter().collect::<String>())
        .prop_filter("noncharacters are refused by design", |s| !nonchar(s))
}

/// JSON values every consumer can read (finite numbers, unique names, depth ≤ 8).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(text(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A byte-level change to a JSON text.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let fragment = prop_oneof![
        Just(b"\\ud800".to_vec()), Just(b"\\udc00".to_vec()), Just(b"\\ud83d\\ude00".to_vec()), Just(b"1e400".to_vec()),
        Just(b"-0.0e-400".to_vec()), Just(b"[[[[".to_vec()), Just(b"]}".to_vec()), Just(b"\"a\":1,".to_vec()),
        Just(b"9".repeat(310)), Just(b",".to_vec()), Just(b"\\".to_vec()), Just(b"\"".to_vec()), Just(b"\xef\xbf\xbf".to_vec()), Just(b"\xed\xa0\x80".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..4),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<usize>(), fragment).prop_map(|(at, f)| Mutation::Insert(at, f)),
        (any::<usize>(), 1usize..8).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let n = bytes.len().max(1);
    match m {
        Mutation::Flip(at, b) => {
            if !bytes.is_empty() {
                let at = at % n;
                bytes[at] = *b;
            }
        }
        Mutation::Insert(at, f) => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, f.iter().copied());
        }
        Mutation::Remove(at, k) => {
            let at = at % n;
            let end = (at + k).min(bytes.len());
            if at < end {
                bytes.drain(at..end);
            }
        }
        Mutation::Truncate(at) => bytes.truncate(at % n),
    }
    bytes
}

/// Payloads that break exactly one rule, planted inside a valid value.
fn poison() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        Just(("surrogate", r#""\ud800""#.to_owned())),
        Just(("surrogate", r#""x\udfff""#.to_owned())),
        Just(("number", "1e400".to_owned())),
        Just(("number", "-2e308".to_owned())),
        Just(("number", "9".repeat(309))),
        Just(("depth", "[".repeat(10_000) + &"]".repeat(10_000))),
        Just(("depth", "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH))),
        Just(("duplicate_name", r#"{"a":1,"a":1}"#.to_owned())),
        Just(("noncharacter", "\"\u{FFFE}\"".to_owned())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every value a consumer can read passes, and as a `send` frame decodes to the same bytes,
    /// which the envelope builder splices into an envelope that parses back to the same value.
    #[test]
    fn readable_values_pass_and_survive_the_envelope(v in value(), pretty in any::<bool>()) {
        let data = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { v.to_string() };
        prop_assert_eq!(ijson::validate_str(&data, LIMIT), Ok(()));
        prop_assert_eq!(reference(data.as_bytes()), Ok(()));
        let frame = format!(r#"{{"type":"send","to":"bob","data":{data},"ref":"r1"}}"#);
        let Ok(ClientFrame::Send { data: raw, .. }) = wire::parse_client(&frame) else {
            return Err(TestCaseError::fail(format!("not a send frame: {frame}")));
        };
        prop_assert_eq!(raw.get(), data.as_str());
        let env = envelope::format("01JD3X6W8M4B2Q9T5R7Y0ZKC1N", "u:bob", 7, Some(1764950400000000), Some("alice"), Some("bob"), 1, raw.get());
        prop_assert_eq!(envelope::data_of(&env), Some(data.as_str()));
        let parsed: Envelope = serde_json::from_str(&env).map_err(|e| TestCaseError::fail(format!("{e}: {env}")))?;
        // serde_json's float parsing is not exact (no float_roundtrip), so compare with the
        // payload parsed alone rather than with `v`.
        prop_assert_eq!(parsed.data, serde_json::from_str::<Value>(&data).unwrap());
    }

    /// On any change to a valid text, the check and the reference agree, and neither the
    /// check nor the frame decoder panics.
    #[test]
    fn the_check_agrees_with_the_reference_on_mutated_input(v in value(), ms in proptest::collection::vec(mutation(), 1..4)) {
        let bytes = ms.iter().fold(v.to_string().into_bytes(), apply);
        let ours = ijson::validate(&bytes, LIMIT);
        let theirs = reference(&bytes);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "ours {:?}, reference {:?}, input {:?}", ours, theirs, String::from_utf8_lossy(&bytes));
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = wire::parse_client(text);
            let _ = wire::parse_client(&format!(r#"{{"type":"send","group":"g","data":{text}}}"#));
        }
    }

    /// A poison shape anywhere in a valid value is refused, naming its rule.
    #[test]
    fn a_planted_poison_is_refused_by_its_rule(v in value(), (rule, bad) in poison(), at_end in any::<bool>()) {
        let planted = if at_end { format!(r#"{{"v":{v},"p":{bad}}}"#) } else { format!("[{bad},{v}]") };
        let e = ijson::validate_str(&planted, LIMIT);
        // The depth-64 poison is refused only once it sits inside the wrapper.
        prop_assert_eq!(e.as_ref().map_err(|e| e.rule()), Err(rule), "{:?}", e);
        prop_assert!(reference(planted.as_bytes()).is_err());
    }

    /// Arbitrary text never panics the frame decoder, and a frame it decodes as `send` carries
    /// syntactically valid JSON.
    #[test]
    fn the_frame_decoder_takes_any_text(text in "\\PC{0,64}|\\{\"type\":\"(send|signal|auth|ping|ack|read|typing)\",.{0,48}") {
        if let Ok(ClientFrame::Send { data, .. } | ClientFrame::Signal { data, .. }) = wire::parse_client(&text) {
            prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(data.get()).is_ok());
        }
    }
}
