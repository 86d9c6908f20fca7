//! I-JSON (RFC 7493) at the door: the check every app payload passes where it enters — a
//! client's `send` and `signal` frames, `POST /send`, and the PHP extension's `json_encode`
//! output — before it is spliced into an envelope.
//!
//! Why: a payload is stored once and then read by every consumer downstream (the MySQL writer,
//! `chat_history()`'s `json_decode`, webhooks, replays, browsers). Plain JSON syntax is not
//! enough for all of them: serde_json refuses a lone surrogate (`"\ud800"`) or a number that
//! overflows a double (`1e400`), and its recursion limit (128) refuses deep nesting, while
//! the raw value a frame carries was only checked for syntax. One such payload made a
//! conversation's history unreadable for everyone (issue 17). So the door refuses what some
//! consumer cannot read, with the rule it broke:
//!
//! - at most `max_bytes` bytes (the caller's documented limit);
//! - valid UTF-8 (RFC 7493 §2.1), with no surrogate code point, raw or escaped, outside a
//!   proper `\uD8xx\uDCxx` pair, and no Unicode noncharacter (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF);
//! - numbers that an IEEE 754 double can hold without overflowing to infinity (§2.2:
//!   `1e400` is refused; `1e-400` rounds to 0 and is accepted, as are long integers, which lose
//!   precision in JavaScript but are still finite);
//! - no object with the same member name twice (§2.3), compared after unescaping;
//! - arrays and objects nested at most [`MAX_DEPTH`] deep: RFC 7493 leaves depth to the
//!   protocol; 64 leaves room under serde_json's 128 and PHP's 512 for the envelope and the
//!   webhook body that wrap the payload.
//!
//! The validator is a single pass over the bytes with an explicit stack, so no input can
//! overflow the call stack, and it allocates only for objects' member names.

use std::borrow::Cow;
use std::collections::HashSet;

/// Deepest nesting of arrays and objects a payload may have (`[[1]]` is 2 deep).
pub const MAX_DEPTH: usize = 64;

/// Member names per object checked by a linear scan before a hash set takes over.
const SCAN_NAMES: usize = 16;

/// Why a payload is not I-JSON; [`IJsonError::rule`] names the rule for error frames and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IJsonError {
    #[error("{len} bytes, over the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("not valid UTF-8 (at byte {at})")]
    NotUtf8 { at: usize },
    #[error("not JSON: {what} at byte {at}")]
    Syntax { what: &'static str, at: usize },
    #[error("a lone surrogate \\u{code:04x} at byte {at}: I-JSON strings hold no surrogate outside a pair")]
    LoneSurrogate { code: u16, at: usize },
    #[error("the noncharacter U+{code:04X} at byte {at}: I-JSON strings hold no Unicode noncharacters")]
    Noncharacter { code: u32, at: usize },
    #[error("the number {text} at byte {at} overflows an IEEE 754 double")]
    NumberOutOfRange { text: String, at: usize },
    #[error("nested deeper than {limit} arrays and objects (at byte {at})")]
    TooDeep { limit: usize, at: usize },
    #[error("the member name {name:?} appears twice in one object (at byte {at})")]
    DuplicateName { name: String, at: usize },
}

impl IJsonError {
    /// A short, stable name of the broken rule (`size`, `utf8`, `syntax`, `surrogate`,
    /// `noncharacter`, `number`, `depth`, `duplicate_name`), for metrics and tests.
    pub fn rule(&self) -> &'static str {
        match self {
            IJsonError::TooLarge { .. } => "size",
            IJsonError::NotUtf8 { .. } => "utf8",
            IJsonError::Syntax { .. } => "syntax",
            IJsonError::LoneSurrogate { .. } => "surrogate",
            IJsonError::Noncharacter { .. } => "noncharacter",
            IJsonError::NumberOutOfRange { .. } => "number",
            IJsonError::TooDeep { .. } => "depth",
            IJsonError::DuplicateName { .. } => "duplicate_name",
        }
    }
}

/// Checks that `json` is one I-JSON value (with optional surrounding whitespace) of at most
/// `max_bytes` bytes.
pub fn validate(json: &[u8], max_bytes: usize) -> Result<(), IJsonError> {
    if json.len() > max_bytes {
        return Err(IJsonError::TooLarge { len: json.len(), limit: max_bytes });
    }
    let text = std::str::from_utf8(json).map_err(|e| IJsonError::NotUtf8 { at: e.valid_up_to() })?;
    Validator { text, b: text.as_bytes(), i: 0 }.document()
}

/// [`validate`] for text already known to be UTF-8.
pub fn validate_str(json: &str, max_bytes: usize) -> Result<(), IJsonError> {
    validate(json.as_bytes(), max_bytes)
}

fn is_noncharacter(c: u32) -> bool {
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
}

/// An open array or object.
enum Open<'a> {
    Array,
    Object(Names<'a>),
}

/// The member names seen so far in one object.
enum Names<'a> {
    Few(Vec<Cow<'a, str>>),
    Many(HashSet<Cow<'a, str>>),
}

impl<'a> Names<'a> {
    /// Adds `name`; false if the object already had it.
    fn insert(&mut self, name: Cow<'a, str>) -> bool {
        match self {
            Names::Few(list) => {
                if list.contains(&name) {
                    return false;
                }
                if list.len() < SCAN_NAMES {
                    list.push(name);
                } else {
                    let mut set: HashSet<_> = list.drain(..).collect();
                    set.insert(name);
                    *self = Names::Many(set);
                }
                true
            }
            Names::Many(set) => set.insert(name),
        }
    }
}

/// What starting a value did.
enum Started {
    /// A whole value was read (a scalar, `[]` or `{}`).
    Done,
    /// An array or object was opened: its first value comes next.
    Opened,
}

struct Validator<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Validator<'a> {
    fn syntax(&self, what: &'static str) -> IJsonError {
        IJsonError::Syntax { what, at: self.i }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn document(mut self) -> Result<(), IJsonError> {
        let mut stack: Vec<Open<'a>> = Vec::new();
        'value: loop {
            self.ws();
            if let Started::Opened = self.start_value(&mut stack)? {
                continue 'value;
            }
            // A value is complete: close what ends here, until the next value or the end.
            loop {
                self.ws();
                let Some(top) = stack.last_mut() else { break 'value };
                match (top, self.peek()) {
                    (Open::Array, Some(b',')) => {
                        self.i += 1;
                        continue 'value;
                    }
                    (Open::Object(names), Some(b',')) => {
                        self.i += 1;
                        self.ws();
                        let at = self.i;
                        let name = self.member_name()?;
                        if !names.insert(name.clone()) {
                            return Err(IJsonError::DuplicateName { name: name.chars().take(64).collect(), at });
                        }
                        continue 'value;
                    }
                    (Open::Array, Some(b']')) | (Open::Object(_), Some(b'}')) => {
                        self.i += 1;
                        stack.pop();
                    }
                    (Open::Array, _) => return Err(self.syntax("expected ',' or ']'")),
                    (Open::Object(_), _) => return Err(self.syntax("expected ',' or '}'")),
                }
            }
        }
        if self.i != self.b.len() {
            return Err(self.syntax("trailing characters after the value"));
        }
        Ok(())
    }

    /// Reads a value, or opens an array or object (pushed on `stack`, with an object's first
    /// member name and its colon read).
    fn start_value(&mut self, stack: &mut Vec<Open<'a>>) -> Result<Started, IJsonError> {
        match self.peek() {
            Some(open @ (b'[' | b'{')) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(IJsonError::TooDeep { limit: MAX_DEPTH, at: self.i });
                }
                self.i += 1;
                self.ws();
                if open == b'[' {
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Started::Done);
                    }
                    stack.push(Open::Array);
                } else {
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Started::Done);
                    }
                    let name = self.member_name()?;
                    stack.push(Open::Object(Names::Few(vec![name])));
                }
                Ok(Started::Opened)
            }
            Some(b'"') => self.string(false).map(|_| Started::Done),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| Started::Done),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(_) => Err(self.syntax("expected a value")),
            None => Err(self.syntax("unexpected end, expected a value")),
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<Started, IJsonError> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(Started::Done)
        } else {
            Err(self.syntax("expected true, false or null"))
        }
    }

    /// A member name and the colon after it.
    fn member_name(&mut self) -> Result<Cow<'a, str>, IJsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("expected a member name in double quotes"));
        }
        let name = self.string(true)?.expect("decoded on request");
        self.ws();
        if self.peek() != Some(b':') {
            return Err(self.syntax("expected ':' after a member name"));
        }
        self.i += 1;
        Ok(name)
    }

    /// A string starting at its opening quote; with `decode`, its unescaped text (borrowed
    /// when it has no escapes).
    fn string(&mut self, decode: bool) -> Result<Option<Cow<'a, str>>, IJsonError> {
        self.i += 1;
        let start = self.i;
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.syntax("unterminated string"));
            };
            match c {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    if !decode {
                        return Ok(None);
                    }
                    return Ok(Some(match owned {
                        None => Cow::Borrowed(&self.text[start..end]),
                        Some(mut s) => {
                            s.push_str(&self.text[run..end]);
                            Cow::Owned(s)
                        }
                    }));
                }
                b'\\' => {
                    let at = self.i;
                    let decoded = self.escape()?;
                    if decode {
                        let s = owned.get_or_insert_with(String::new);
                        s.push_str(&self.text[run..at]);
                        s.push(decoded);
                    }
                    run = self.i;
                }
                0x00..=0x1F => return Err(self.syntax("unescaped control character in a string")),
                0x80.. => {
                    let ch = self.text[self.i..].chars().next().expect("valid UTF-8 at a char boundary");
                    if is_noncharacter(ch as u32) {
                        return Err(IJsonError::Noncharacter { code: ch as u32, at: self.i });
                    }
                    self.i += ch.len_utf8();
                }
                _ => self.i += 1,
            }
        }
    }

    /// An escape sequence at `self.i` (the backslash); returns the character it stands for.
    fn escape(&mut self) -> Result<char, IJsonError> {
        let at = self.i;
        let c = match self.b.get(self.i + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.i += 2;
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        // A high surrogate stands only as the first half of a pair.
                        let low = if self.b[self.i..].starts_with(b"\\u") {
                            self.i += 2;
                            self.hex4()?
                        } else {
                            return Err(IJsonError::LoneSurrogate { code: first, at });
                        };
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(IJsonError::LoneSurrogate { code: first, at });
                        }
                        0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(IJsonError::LoneSurrogate { code: first, at }),
                    other => u32::from(other),
                };
                if is_noncharacter(code) {
                    return Err(IJsonError::Noncharacter { code, at });
                }
                return Ok(char::from_u32(code).expect("not a surrogate"));
            }
            _ => return Err(self.syntax("bad escape sequence")),
        };
        self.i += 2;
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u16, IJsonError> {
        let digits = self.b.get(self.i..self.i + 4).ok_or_else(|| self.syntax("short \\u escape"))?;
        let mut v: u16 = 0;
        for &d in digits {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.syntax("bad hex digit in a \\u escape")),
            };
            v = v << 4 | u16::from(n);
        }
        self.i += 4;
        Ok(v)
    }

    fn digits(&mut self) -> usize {
        let from = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - from
    }

    fn number(&mut self) -> Result<(), IJsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_digits = match self.peek() {
            Some(b'0') => {
                self.i += 1;
                1
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax("bad number")),
        };
        let mut plain = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            plain = false;
            if self.digits() == 0 {
                return Err(self.syntax("expected a digit after the decimal point"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            plain = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.syntax("expected a digit in the exponent"));
            }
        }
        // An integer of up to 308 digits is below f64::MAX (1.8e308); only longer integers,
        // fractions and exponents need the exact parse.
        if plain && int_digits <= 308 {
            return Ok(());
        }
        let text = &self.text[start..self.i];
        let finite = text.parse::<f64>().is_ok_and(f64::is_finite);
        if !finite {
            let shown: String = text.chars().take(32).collect();
            let text = if shown.len() < text.len() { format!("{shown}…") } else { shown };
            return Err(IJsonError::NumberOutOfRange { text, at: start });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;

    fn rule(json: &str) -> &'static str {
        validate_str(json, LIMIT).map(|()| "ok").unwrap_or_else(|e| e.rule())
    }

    #[test]
    fn accepts_ordinary_payloads() {
        for ok in [
            r#"{"text":"hi","n":1,"f":-1.5e-3,"list":[true,false,null,{}],"e":[]}"#,
            r#""just a string""#,
            "0",
            "-0.0",
            " \t\r\n[ 1 , 2 ] \n",
            r#""\ud83d\ude00 \u00e9 é 😀 \" \\ \/ \b \f \n \r \t""#,
            "1e-400",
            "123456789012345678901234567890",
            "1.7976931348623157e308",
            r#"{"a":1,"b":{"a":2}}"#,
        ] {
            assert_eq!(rule(ok), "ok", "{ok}");
        }
    }

    #[test]
    fn refuses_each_poison_shape_by_its_rule() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let cases: Vec<(String, &str)> = vec![
            (r#""\ud800""#.into(), "surrogate"),
            (r#""\udc00""#.into(), "surrogate"),
            (r#""\ud800\u0041""#.into(), "surrogate"),
            (r#""\ud800x""#.into(), "surrogate"),
            (r#"{"\uDBFF":1}"#.into(), "surrogate"),
            ("1e400".into(), "number"),
            ("-1E+309".into(), "number"),
            ("9".repeat(309), "number"),
            (deep, "depth"),
            (r#"{"a":1,"a":2}"#.into(), "duplicate_name"),
            (r#"{"a":1,"\u0061":2}"#.into(), "duplicate_name"),
            ("\"\u{FFFF}\"".into(), "noncharacter"),
            (r#""\uFDD0""#.into(), "noncharacter"),
            (r#""\udbff\udfff""#.into(), "noncharacter"),
            ("{".into(), "syntax"),
            ("[1,]".into(), "syntax"),
            ("01".into(), "syntax"),
            ("1.".into(), "syntax"),
            ("\"a\u{1}\"".into(), "syntax"),
            ("tru".into(), "syntax"),
            ("[1] [2]".into(), "syntax"),
            ("".into(), "syntax"),
            (r#""\x""#.into(), "syntax"),
            (r#""\u12""#.into(), "syntax"),
            ("NaN".into(), "syntax"),
            ("Infinity".into(), "syntax"),
        ];
        for (json, want) in cases {
            assert_eq!(rule(&json), want, "{}", json.chars().take(40).collect::<String>());
        }
        assert_eq!(validate(b"\"\xed\xa0\x80\"", LIMIT).unwrap_err().rule(), "utf8", "an encoded surrogate is not UTF-8");
        assert_eq!(validate(b"\"\xff\"", LIMIT).unwrap_err().rule(), "utf8");
        assert_eq!(validate(b"[1,2]", 4).unwrap_err(), IJsonError::TooLarge { len: 5, limit: 4 });
    }

    #[test]
    fn depth_is_counted_in_arrays_and_objects_alike() {
        let arrays = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert_eq!(rule(&arrays(MAX_DEPTH)), "ok");
        assert_eq!(rule(&arrays(MAX_DEPTH + 1)), "depth");
        let objects = |n: usize| r#"{"a":"#.repeat(n) + "1" + &"}".repeat(n);
        assert_eq!(rule(&objects(MAX_DEPTH)), "ok");
        assert_eq!(rule(&objects(MAX_DEPTH + 1)), "depth");
    }

    #[test]
    fn duplicate_names_are_found_in_large_objects_and_only_within_one_object() {
        let members: Vec<String> = (0..100).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let object = format!("{{{}}}", members.join(","));
        assert_eq!(rule(&object), "ok");
        assert_eq!(rule(&format!("{{{},\"k7\":0}}", members.join(","))), "duplicate_name");
        assert_eq!(rule(r#"[{"a":1},{"a":1}]"#), "ok");
    }

    #[test]
    fn messages_name_the_rule_and_the_place() {
        let e = validate_str(r#"{"text":"\ud800"}"#, LIMIT).unwrap_err();
        assert_eq!(e, IJsonError::LoneSurrogate { code: 0xd800, at: 9 });
        assert!(e.to_string().contains("lone surrogate \\ud800 at byte 9"), "{e}");
        let e = validate_str(&format!("[{}]", "9".repeat(500)), LIMIT).unwrap_err();
        assert!(e.to_string().len() < 120, "long numbers are shortened: {e}");
    }
}
