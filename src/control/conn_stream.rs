//! `list-connections` in bounded memory on both ends. The answer keeps its
//! one-line shape (`{"v":1,"result":"connections","connections":[...]}`),
//! so any client can still read it whole; but the daemon writes it entry by
//! entry as the workers hand them over ([`write_connections`]), and rvsadm
//! decodes it entry by entry as it arrives ([`read_connections`]). A table
//! of a million connections then never exists as one string or one vector
//! on either side.

use std::fmt;
use std::io::{self, BufRead, Write};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

use super::proto::{check_version, encode_response, ConnEntry, DecodeError, Response};

/// Writes the `connections` answer without its newline: the same bytes as
/// `encode_response(&Response::Connections { connections })`, without ever
/// holding `connections`. Returns how many entries were written.
pub fn write_connections<W: Write>(
    w: &mut W,
    entries: impl Iterator<Item = ConnEntry>,
) -> io::Result<u64> {
    // The envelope around the list comes from the encoder itself, so that
    // the streamed line cannot drift from the one-shot encoding.
    let empty = encode_response(&Response::Connections {
        connections: Vec::new(),
    });
    let (head, tail) = empty
        .split_once("[]")
        .expect("an empty connections answer holds one []");
    w.write_all(head.as_bytes())?;
    w.write_all(b"[")?;
    let mut n = 0u64;
    for e in entries {
        if n > 0 {
            w.write_all(b",")?;
        }
        serde_json::to_writer(&mut *w, &e)?;
        n += 1;
    }
    w.write_all(b"]")?;
    w.write_all(tail.as_bytes())?;
    Ok(n)
}

/// What a `list-connections` answer turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Listing {
    /// A `connections` answer: this many entries went to the callback.
    Streamed(u64),
    /// Any other answer (an error, say), whole.
    Answer(Response),
}

/// Why an answer could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection closed before the answer began.
    Closed,
    /// Reading failed (a timeout, a reset), possibly midway.
    Io(io::Error),
    /// The bytes are not a valid answer.
    Decode(DecodeError),
}

/// Reads one answer line from `r`, handing each connection to `each` as it
/// is decoded. Only one entry is held at a time; any other field (and any
/// other answer) is small and kept whole.
pub fn read_connections<R: BufRead>(
    r: &mut R,
    each: &mut dyn FnMut(ConnEntry),
) -> Result<Listing, ReadError> {
    if r.fill_buf().map_err(ReadError::Io)?.is_empty() {
        return Err(ReadError::Closed);
    }
    let mut de = serde_json::Deserializer::from_reader(&mut *r);
    let envelope = Envelope { each }
        .deserialize(&mut de)
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Io => ReadError::Io(e.into()),
            serde_json::error::Category::Eof => ReadError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the answer ended midway",
            )),
            _ => ReadError::Decode(DecodeError(format!("malformed answer: {e}"))),
        })?;
    drop(de);
    // The rest of the line must be blank.
    let mut rest = String::new();
    r.read_line(&mut rest).map_err(ReadError::Io)?;
    if !rest.trim().is_empty() {
        return Err(ReadError::Decode(DecodeError(
            "malformed answer: data after the JSON object".into(),
        )));
    }
    let (others, streamed) = envelope;
    let value = serde_json::Value::Object(others);
    check_version(&value).map_err(ReadError::Decode)?;
    match value.get("result").and_then(|r| r.as_str()) {
        Some("connections") => Ok(Listing::Streamed(streamed)),
        _ if streamed > 0 => Err(ReadError::Decode(DecodeError(
            "malformed answer: connections in an answer of another kind".into(),
        ))),
        _ => serde_json::from_value(value)
            .map(Listing::Answer)
            .map_err(|e| ReadError::Decode(DecodeError(format!("invalid message: {e}")))),
    }
}

/// The answer object: `connections` is streamed to the callback, every other
/// field is kept (they are small) to check the version and, for another kind
/// of answer, to decode it whole.
struct Envelope<'a> {
    each: &'a mut dyn FnMut(ConnEntry),
}

type Kept = (serde_json::Map<String, serde_json::Value>, u64);

impl<'de> DeserializeSeed<'de> for Envelope<'_> {
    type Value = Kept;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kept, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Envelope<'_> {
    type Value = Kept;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kept, A::Error> {
        let mut others = serde_json::Map::new();
        let mut streamed = 0;
        while let Some(key) = map.next_key::<String>()? {
            if key == "connections" {
                streamed += map.next_value_seed(Entries {
                    each: &mut *self.each,
                })?;
            } else if others.contains_key(&key) {
                // serde_json keeps the last of duplicate keys; so do we,
                // without growing.
                others.insert(key, map.next_value()?);
            } else if others.len() < 64 {
                others.insert(key, map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok((others, streamed))
    }
}

/// The `connections` array, one entry at a time.
struct Entries<'a> {
    each: &'a mut dyn FnMut(ConnEntry),
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of connections")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(e) = seq.next_element::<ConnEntry>()? {
            (self.each)(e);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::ConnProtocol as Protocol;
    use std::io::{BufReader, Cursor};

    fn entry(i: u32) -> ConnEntry {
        ConnEntry {
            protocol: if i.is_multiple_of(2) {
                Protocol::Tcp
            } else {
                Protocol::Udp
            },
            expire: i,
            state: "ESTABLISHED".into(),
            client: format!("10.0.{}.{}:{}", i / 250 % 250, i % 250, 1024 + i % 60000)
                .parse()
                .unwrap(),
            virtual_addr: "[2001:db8::1]:80".parse().unwrap(),
            destination: "192.0.2.7:8080".parse().unwrap(),
            template: i.is_multiple_of(7),
        }
    }

    fn streamed(n: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let w = write_connections(&mut out, (0..n).map(entry)).unwrap();
        assert_eq!(w, n as u64);
        out
    }

    #[test]
    fn the_stream_is_the_one_shot_encoding() {
        for n in [0, 1, 2, 57] {
            let one_shot = encode_response(&Response::Connections {
                connections: (0..n).map(entry).collect(),
            });
            assert_eq!(String::from_utf8(streamed(n)).unwrap(), one_shot, "{n}");
        }
    }

    #[test]
    fn read_back_entry_by_entry_through_a_small_buffer() {
        let mut line = streamed(1000);
        line.push(b'\n');
        line.extend_from_slice(b"{\"v\":1,\"result\":\"ok\"}\n");
        // A tiny buffer: entries straddle every read.
        let mut r = BufReader::with_capacity(7, Cursor::new(line));
        let mut got = Vec::new();
        let l = read_connections(&mut r, &mut |e| got.push(e)).unwrap();
        assert_eq!(l, Listing::Streamed(1000));
        assert_eq!(got, (0..1000).map(entry).collect::<Vec<_>>());
        // The next answer on the connection is untouched.
        let mut next = String::new();
        r.read_line(&mut next).unwrap();
        assert_eq!(next, "{\"v\":1,\"result\":\"ok\"}\n");
    }

    #[test]
    fn other_answers_come_back_whole() {
        let line = b"{\"v\":1,\"result\":\"error\",\"message\":\"rvsd: busy\"}\n".to_vec();
        let mut r = Cursor::new(line);
        let l = read_connections(&mut r, &mut |_| panic!("no entries")).unwrap();
        assert_eq!(l, Listing::Answer(Response::error("rvsd: busy")));
        // Key order does not matter, nor unknown fields.
        let line = br#"{"connections":[],"future":[1,2],"result":"connections","v":1}"#.to_vec();
        let l = read_connections(&mut Cursor::new(line), &mut |_| {}).unwrap();
        assert_eq!(l, Listing::Streamed(0));
    }

    #[test]
    fn bad_answers_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"{\"v\":2,\"result\":\"connections\",\"connections\":[]}\n",
            b"{\"result\":\"connections\",\"connections\":[]}\n",
            b"{\"v\":1,\"result\":\"connections\",\"connections\":[{\"protocol\":\"x\"}]}\n",
            b"{\"v\":1,\"result\":\"connections\",\"connections\":{}}\n",
            b"{\"v\":1,\"result\":\"ok\",\"connections\":[]} trailing\n",
            b"[1,2,3]\n",
            b"nonsense\n",
            b"{\"v\":1,\"result\":\"frobnicated\"}\n",
        ];
        for c in cases {
            let r = read_connections(&mut Cursor::new(c.to_vec()), &mut |_| {});
            assert!(
                matches!(r, Err(ReadError::Decode(_))),
                "{}: {r:?}",
                String::from_utf8_lossy(c)
            );
        }
        assert!(matches!(
            read_connections(&mut Cursor::new(Vec::new()), &mut |_| {}),
            Err(ReadError::Closed)
        ));
        let cut = b"{\"v\":1,\"result\":\"connections\",\"connections\":[".to_vec();
        assert!(matches!(
            read_connections(&mut Cursor::new(cut), &mut |_| {}),
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof
        ));
    }

    /// A writer that fails after `left` bytes, as a client that went away.
    struct Gone {
        left: usize,
    }
    impl Write for Gone {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = b.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_writer_stops_at_the_first_failed_write() {
        // An endless table: were it collected first, this would not end.
        let mut pulled = 0u64;
        let entries = (0..).map(|i| {
            pulled += 1;
            entry(i)
        });
        let e = write_connections(&mut Gone { left: 100_000 }, entries).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(pulled < 2000, "{pulled} entries pulled for 100 kB");
    }
}
