//! Framing a payload into records, incrementally and in bounded memory: lines (JSON lines,
//! text), elements of a top-level JSON array. A record longer than the limit is skipped up to
//! its end without being kept, and reported with its size.

use std::io::{self, BufRead};

/// What framing produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Framed {
    /// A record was appended to the output buffer; it starts at `line` (1-based).
    Record { line: u64 },
    /// A record starting at `line` was longer than the limit and was skipped.
    TooLarge { line: u64, bytes: u64 },
    /// The framing itself is broken at `line` (JSON arrays only); nothing more can be read.
    Broken { line: u64, reason: String },
    /// The end of the input.
    End,
}

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Skips a UTF-8 byte-order mark at the start of the input.
pub(crate) fn skip_bom(r: &mut impl BufRead) -> io::Result<()> {
    if r.fill_buf()?.starts_with(BOM) {
        r.consume(BOM.len());
    }
    Ok(())
}

/// The first byte that is not whitespace in the first buffer of input, without consuming it.
pub(crate) fn peek_first_byte(r: &mut impl BufRead) -> io::Result<Option<u8>> {
    Ok(r.fill_buf()?
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace()))
}

/// Reads lines (terminated by `\n` or `\r\n`, or by the end of input).
pub(crate) struct LineReader<R> {
    inner: R,
    next_line: u64,
}

impl<R: BufRead> LineReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            next_line: 1,
        }
    }

    pub(crate) fn line(&self) -> u64 {
        self.next_line
    }

    /// Appends the next line, without its terminator, to `out`; at most `max` bytes are kept.
    pub(crate) fn next(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<Framed> {
        let start = out.len();
        let line = self.next_line;
        let mut len = 0u64;
        let mut too_large = false;
        let mut any = false;
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                if !any {
                    return Ok(Framed::End);
                }
                break;
            }
            any = true;
            let (piece, used, found) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            len += piece.len() as u64;
            if !too_large {
                if out.len() - start + piece.len() > max {
                    too_large = true;
                    out.truncate(start);
                } else {
                    out.extend_from_slice(piece);
                }
            }
            self.inner.consume(used);
            if found {
                break;
            }
        }
        self.next_line += 1;
        if too_large {
            return Ok(Framed::TooLarge { line, bytes: len });
        }
        if out.len() > start && out.last() == Some(&b'\r') {
            out.pop();
        }
        Ok(Framed::Record { line })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    Start,
    First,
    Next,
    After,
    Done,
}

/// Splits a top-level JSON array into the text of its elements, without parsing them.
pub(crate) struct ArraySplitter<R> {
    inner: R,
    line: u64,
    state: ArrayState,
}

impl<R: BufRead> ArraySplitter<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            line: 1,
            state: ArrayState::Start,
        }
    }

    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// Skips whitespace and returns the next byte without consuming it.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let newlines = buf[..i].iter().filter(|&&b| b == b'\n').count();
                    let first = buf[i];
                    self.line += newlines as u64;
                    self.inner.consume(i);
                    return Ok(Some(first));
                }
                None => {
                    let newlines = buf.iter().filter(|&&b| b == b'\n').count();
                    let n = buf.len();
                    self.line += newlines as u64;
                    self.inner.consume(n);
                }
            }
        }
    }

    fn broken(&mut self, reason: &str) -> Framed {
        self.state = ArrayState::Done;
        Framed::Broken {
            line: self.line,
            reason: reason.to_owned(),
        }
    }

    /// Appends the text of the next element to `out`; at most `max` bytes are kept.
    pub(crate) fn next(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<Framed> {
        loop {
            let next = self.peek()?;
            match (self.state, next) {
                (ArrayState::Done, None) => return Ok(Framed::End),
                (ArrayState::Done, Some(_)) => {
                    return Ok(self.broken("data after the end of the JSON array"));
                }
                (ArrayState::Start, Some(b'[')) => {
                    self.inner.consume(1);
                    self.state = ArrayState::First;
                }
                (ArrayState::Start, _) => {
                    return Ok(self.broken("expected '[' to start a JSON array"));
                }
                (ArrayState::First | ArrayState::After, Some(b']')) => {
                    self.inner.consume(1);
                    self.state = ArrayState::Done;
                }
                (ArrayState::After, Some(b',')) => {
                    self.inner.consume(1);
                    self.state = ArrayState::Next;
                }
                (ArrayState::After, Some(_)) => {
                    return Ok(self.broken("expected ',' or ']' after an array element"));
                }
                (_, None) => {
                    return Ok(self.broken("unexpected end of input inside the JSON array"));
                }
                (ArrayState::First | ArrayState::Next, Some(_)) => {
                    return self.element(out, max);
                }
            }
        }
    }

    /// Copies one element: up to a `,` or `]` outside strings and nesting.
    fn element(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<Framed> {
        let start = out.len();
        let line = self.line;
        let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
        let mut len = 0u64;
        let mut too_large = false;
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                if depth == 0 && !in_str && len > 0 {
                    // A complete value, but the array is not closed: the next call says so.
                    self.state = ArrayState::After;
                    return Ok(if too_large {
                        Framed::TooLarge { line, bytes: len }
                    } else {
                        Framed::Record { line }
                    });
                }
                out.truncate(start);
                return Ok(self.broken("unexpected end of input inside a JSON array element"));
            }
            // Outside strings the element's structure is scanned byte by byte (few bytes);
            // inside a string, memchr jumps to its next quote or backslash. Newlines are counted
            // apart over the piece taken.
            let mut end = None;
            let mut i = 0;
            while i < buf.len() {
                if in_str {
                    if escaped {
                        escaped = false;
                        i += 1;
                        continue;
                    }
                    match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                        None => i = buf.len(),
                        Some(j) => {
                            if buf[i + j] == b'\\' {
                                escaped = true;
                            } else {
                                in_str = false;
                            }
                            i += j + 1;
                        }
                    }
                    continue;
                }
                match buf[i] {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => depth -= 1,
                    b',' | b']' if depth == 0 => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            let piece_len = end.unwrap_or(buf.len());
            self.line += memchr::memchr_iter(b'\n', &buf[..piece_len]).count() as u64;
            len += piece_len as u64;
            if !too_large {
                if out.len() - start + piece_len > max {
                    too_large = true;
                    out.truncate(start);
                } else {
                    out.extend_from_slice(&buf[..piece_len]);
                }
            }
            self.inner.consume(piece_len);
            if end.is_some() {
                self.state = ArrayState::After;
                return Ok(if too_large {
                    Framed::TooLarge { line, bytes: len }
                } else {
                    Framed::Record { line }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Framed, String)> {
        let mut r = LineReader::new(io::BufReader::with_capacity(4, input));
        let mut out = Vec::new();
        let mut got = Vec::new();
        loop {
            out.clear();
            let f = r.next(&mut out, max).unwrap();
            if f == Framed::End {
                return got;
            }
            got.push((f, String::from_utf8_lossy(&out).into_owned()));
        }
    }

    #[test]
    fn lines_are_bounded() {
        let got = lines(b"ab\r\n\nxxxxxxxxxxxx\nlast", 5);
        assert_eq!(
            got,
            vec![
                (Framed::Record { line: 1 }, "ab".into()),
                (Framed::Record { line: 2 }, "".into()),
                (Framed::TooLarge { line: 3, bytes: 12 }, "".into()),
                (Framed::Record { line: 4 }, "last".into()),
            ]
        );
    }

    fn elements(input: &[u8]) -> Vec<(Framed, String)> {
        let mut r = ArraySplitter::new(io::BufReader::with_capacity(3, input));
        let mut out = Vec::new();
        let mut got = Vec::new();
        loop {
            out.clear();
            let f = r.next(&mut out, 20).unwrap();
            let end = matches!(f, Framed::End | Framed::Broken { .. });
            got.push((f, String::from_utf8_lossy(&out).into_owned()));
            if end {
                return got;
            }
        }
    }

    #[test]
    fn array_elements() {
        let got = elements(b" [ {\"a\": \"],{\"},\n {\"b\": [1, 2]} , 3,\n{\"long\": \"xxxxxxxxxxxxxxxxxxxxxx\"}]\n");
        assert_eq!(
            got,
            vec![
                (Framed::Record { line: 1 }, "{\"a\": \"],{\"}".into()),
                (Framed::Record { line: 2 }, "{\"b\": [1, 2]} ".into()),
                (Framed::Record { line: 2 }, "3".into()),
                (Framed::TooLarge { line: 3, bytes: 34 }, "".into()),
                (Framed::End, "".into()),
            ]
        );
        assert_eq!(elements(b"[]"), vec![(Framed::End, "".into())]);
        // Two values without a comma frame as one element, which the JSON parser rejects.
        assert_eq!(
            elements(b"[{} {}]")[0],
            (Framed::Record { line: 1 }, "{} {}".into())
        );
    }

    proptest::proptest! {
        /// Lines come out whole, without their terminator (`\n`, or `\r\n`) and with their
        /// number, whatever the reader's buffer size.
        #[test]
        fn lines_survive_any_buffer_size(
            texts in proptest::collection::vec("[a-c\r ]{0,12}", 1..8),
            capacity in 1usize..9,
        ) {
            let input = texts.iter().map(|t| format!("{t}\n")).collect::<String>();
            let mut r = LineReader::new(io::BufReader::with_capacity(capacity, input.as_bytes()));
            let mut out = Vec::new();
            for (i, t) in texts.iter().enumerate() {
                out.clear();
                let f = r.next(&mut out, 1 << 20).unwrap();
                proptest::prop_assert_eq!(f, Framed::Record { line: i as u64 + 1 });
                let want = t.strip_suffix('\r').unwrap_or(t);
                proptest::prop_assert_eq!(String::from_utf8_lossy(&out), want);
            }
            out.clear();
            proptest::prop_assert_eq!(r.next(&mut out, 1 << 20).unwrap(), Framed::End);
        }

        /// Elements with strings full of quotes, backslashes, brackets and commas, separated by
        /// newlines, come out whole and with their line, whatever the reader's buffer size.
        #[test]
        fn array_elements_survive_any_buffer_size(
            texts in proptest::collection::vec("[a-c\"\\\\,\\[\\]{} ]{0,12}", 1..8),
            capacity in 1usize..9,
        ) {
            let values: Vec<String> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| serde_json::json!({ "t": t, "n": [i, {"u": t}] }).to_string())
                .collect();
            let input = format!("[\n{}\n]", values.join(",\n"));
            let mut r = ArraySplitter::new(io::BufReader::with_capacity(capacity, input.as_bytes()));
            let mut out = Vec::new();
            for (i, v) in values.iter().enumerate() {
                out.clear();
                let f = r.next(&mut out, 1 << 20).unwrap();
                proptest::prop_assert_eq!(f, Framed::Record { line: i as u64 + 2 });
                let got = String::from_utf8_lossy(&out).into_owned();
                proptest::prop_assert_eq!(got.trim(), v.as_str());
            }
            out.clear();
            proptest::prop_assert_eq!(r.next(&mut out, 1 << 20).unwrap(), Framed::End);
        }
    }

    #[test]
    fn broken_arrays() {
        for (input, reason) in [
            (&b"{}"[..], "expected '['"),
            (b"[{}", "unexpected end of input inside the JSON array"),
            (
                b"[{\"a\":1",
                "unexpected end of input inside a JSON array element",
            ),
            (b"[{}] x", "data after the end"),
        ] {
            let got = elements(input);
            let (last, _) = got.last().unwrap();
            assert!(
                matches!(last, Framed::Broken { reason: r, .. } if r.contains(reason)),
                "{input:?}: {got:?}"
            );
        }
    }
}
