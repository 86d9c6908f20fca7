//! The few RESP2 replies a subscribed connection receives, parsed in place.
//!
//! The pub/sub link reads many notifications per system call; each is parsed where it lies in
//! the read buffer and described by byte ranges, so nothing is allocated per notification until
//! the hub builds the frame its connections share. Only what the link sends can come back:
//! `message` pushes, (un)subscribe confirmations, PING's answer, AUTH's `+OK`, and errors.

use std::ops::Range;

/// A reply longer than this is taken for a broken stream rather than buffered without end
/// (chat messages are bounded far below it, see `chat.max_message_bytes`).
const MAX_REPLY: usize = 64 << 20;

/// One reply; ranges index the buffer given to [`parse`].
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A notification published on `channel`.
    Message { channel: Range<usize>, payload: Range<usize> },
    /// The answer to PING (`*2 pong ""` while subscribed, `+PONG` otherwise).
    Pong,
    /// `+OK` and other simple strings.
    Simple(Range<usize>),
    /// `-ERR …`: the text after the dash.
    Error(Range<usize>),
    /// Anything else the link does not act on (`subscribe` / `unsubscribe` confirmations).
    Other,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unexpected data from Redis on the pub/sub connection: {0}")]
pub struct ProtocolError(&'static str);

/// Elements of a reply array we keep; pub/sub replies have three (`pmessage` has four).
const MAX_ELEMENTS: usize = 4;

#[derive(Clone, Debug, Default)]
enum Element {
    #[default]
    Nil,
    Bulk(Range<usize>),
    Int,
}

/// Parses the reply at the start of `buf`: `Ok(None)` when it is not complete yet, else the
/// reply and how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let Some((head, mut at)) = line(buf, 0)? else { return Ok(None) };
    let Some((&kind, rest)) = head.split_first() else { return Err(ProtocolError("an empty line")) };
    let text = 1..head.len();
    let reply = match kind {
        b'+' if rest.eq_ignore_ascii_case(b"PONG") => Reply::Pong,
        b'+' => Reply::Simple(text),
        b'-' => Reply::Error(text),
        b':' => Reply::Other,
        b'$' => match bulk(buf, head, at)? {
            Some((_, end)) => {
                at = end;
                Reply::Other
            }
            None => return Ok(None),
        },
        b'*' => {
            let n = number(rest)?;
            if !(0..=MAX_ELEMENTS as i64).contains(&n) {
                return Err(ProtocolError("a reply array of unexpected length"));
            }
            let mut items: [Element; MAX_ELEMENTS] = Default::default();
            for item in items.iter_mut().take(n as usize) {
                let Some((head, next)) = line(buf, at)? else { return Ok(None) };
                *item = match head.first() {
                    Some(b'$') => match bulk(buf, head, next)? {
                        Some((range, end)) => {
                            at = end;
                            range.map_or(Element::Nil, Element::Bulk)
                        }
                        None => return Ok(None),
                    },
                    Some(b':') => {
                        number(&head[1..])?;
                        at = next;
                        Element::Int
                    }
                    _ => return Err(ProtocolError("a nested reply")),
                };
            }
            classify(buf, &items[..n as usize])
        }
        _ => return Err(ProtocolError("an unknown reply type")),
    };
    Ok(Some((reply, at)))
}

fn classify(buf: &[u8], items: &[Element]) -> Reply {
    let word = |e: &Element| match e {
        Element::Bulk(r) => &buf[r.clone()],
        _ => &[],
    };
    match items {
        [kind, Element::Bulk(channel), Element::Bulk(payload)] if word(kind) == b"message" => {
            Reply::Message { channel: channel.clone(), payload: payload.clone() }
        }
        [kind, _] if word(kind) == b"pong" => Reply::Pong,
        _ => Reply::Other,
    }
}

/// The line starting at `at` (without its CRLF) and where the next one starts.
fn line(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let rest = &buf[at.min(buf.len())..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(end) if end > 0 && rest[end - 1] == b'\r' => Ok(Some((&rest[..end - 1], at + end + 1))),
        Some(_) => Err(ProtocolError("a line not ended by CRLF")),
        // A header line is short: a long run without a newline is not RESP.
        None if rest.len() > 64 => Err(ProtocolError("a header line without an end")),
        None => Ok(None),
    }
}

/// A bulk string whose `$<len>` header is `head` and whose data starts at `at`: its range
/// (`None` for the nil bulk) and where the next reply starts; `Ok(None)` if incomplete.
#[allow(clippy::type_complexity)]
fn bulk(buf: &[u8], head: &[u8], at: usize) -> Result<Option<(Option<Range<usize>>, usize)>, ProtocolError> {
    let len = number(&head[1..])?;
    if len == -1 {
        return Ok(Some((None, at)));
    }
    let len = usize::try_from(len).map_err(|_| ProtocolError("a negative length"))?;
    if len > MAX_REPLY {
        return Err(ProtocolError("a reply over 64 MiB"));
    }
    let end = at + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError("a bulk string not ended by CRLF"));
    }
    Ok(Some((Some(at..end), end + 2)))
}

fn number(digits: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(digits).ok().and_then(|s| s.parse().ok()).ok_or(ProtocolError("a malformed number"))
}

/// Appends one command, as RESP, to `out`.
pub fn command<'a>(out: &mut Vec<u8>, args: impl ExactSizeIterator<Item = &'a [u8]>) {
    push_header(out, b'*', args.len());
    for arg in args {
        push_header(out, b'$', arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(mut buf: &[u8]) -> Vec<Reply> {
        let mut out = Vec::new();
        while let Some((reply, n)) = parse(buf).unwrap() {
            // Ranges index the slice they were parsed from; shift to compare content.
            out.push(reply);
            buf = &buf[n..];
        }
        assert!(buf.is_empty(), "left over: {:?}", String::from_utf8_lossy(buf));
        out
    }

    const STREAM: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$7\r\nlive:u1\r\n:1\r\n\
        *3\r\n$7\r\nmessage\r\n$7\r\nlive:u1\r\n$5\r\nhe\r\no\r\n\
        *2\r\n$4\r\npong\r\n$0\r\n\r\n+PONG\r\n+OK\r\n-NOAUTH Authentication required.\r\n";

    #[test]
    fn reads_what_a_subscribed_connection_receives() {
        let replies = all(STREAM);
        assert_eq!(replies.len(), 6);
        assert_eq!(replies[0], Reply::Other, "subscribe confirmations need no action");
        let message_at = STREAM.windows(9).position(|w| w == b"*3\r\n$7\r\nm").unwrap();
        let Reply::Message { channel, payload } = &replies[1] else { panic!("{:?}", replies[1]) };
        let first = parse(STREAM).unwrap().unwrap().1;
        assert_eq!(first, message_at);
        let msg = &STREAM[first..];
        assert_eq!(&msg[channel.clone()], b"live:u1");
        assert_eq!(&msg[payload.clone()], b"he\r\no", "a payload may contain CRLF");
        assert_eq!(replies[2], Reply::Pong);
        assert_eq!(replies[3], Reply::Pong);
        assert!(matches!(replies[4], Reply::Simple(_)));
        let Reply::Error(text) = &replies[5] else { panic!() };
        let last = &STREAM[STREAM.len() - 34..];
        assert_eq!(&last[text.clone()], b"NOAUTH Authentication required.");
    }

    #[test]
    fn an_incomplete_reply_waits_for_more_at_every_cut() {
        let message = b"*3\r\n$7\r\nmessage\r\n$7\r\nlive:u1\r\n$5\r\nhello\r\n";
        for cut in 0..message.len() {
            assert_eq!(parse(&message[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse(message).unwrap().unwrap().1, message.len());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"?\r\n"[..],
            b"*9\r\n",
            b"*3\r\n*1\r\n",
            b"$5\r\nhelloXX",
            b"$-7\r\n",
            b"*x\r\n",
            b"+OK\n",
            b"$99999999999\r\n",
            &[b'a'; 100],
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn commands_are_encoded_as_resp_arrays() {
        let mut out = Vec::new();
        command(&mut out, [&b"SUBSCRIBE"[..], b"a", b"live:g"].into_iter());
        command(&mut out, [&b"PING"[..]].into_iter());
        assert_eq!(out, b"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$6\r\nlive:g\r\n*1\r\n$4\r\nPING\r\n");
    }
}
