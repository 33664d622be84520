//! A reader that refuses overly long lines, so one giant CSV line cannot exhaust memory.

use std::io::{self, Read};

/// Longest line accepted by the importer (1 MiB).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Wraps a reader and fails with `InvalidData` once a line exceeds the limit, or when the
/// input ends inside a quoted field.
#[derive(Debug)]
pub(crate) struct LineLimit<R> {
    inner: R,
    limit: usize,
    current: usize,
    line: u64,
    quote: Syntax,
    /// The line where the open quoted field started.
    quote_line: u64,
    /// Bytes read so far (to skip a byte-order mark at the start, as the csv reader does).
    offset: u64,
    /// The line of text found after a closing quote, once seen.
    after_quote: Option<u64>,
}

/// Where the bytes read so far leave the CSV syntax (RFC 4180 quoting, as the `csv` crate
/// reads it): only a quote at the start of a field opens a quoted field, `""` inside one is
/// a quote, and any other quote closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: closing, or the first half of `""`.
    QuoteInQuoted,
}

impl<R> LineLimit<R> {
    pub(crate) fn new(inner: R, limit: usize) -> Self {
        LineLimit {
            inner,
            limit,
            current: 0,
            line: 1,
            quote: Syntax::FieldStart,
            quote_line: 1,
            offset: 0,
            after_quote: None,
        }
    }

    fn step(&mut self, b: u8) {
        let at = self.offset;
        self.offset += 1;
        if at < 3 && self.quote == Syntax::FieldStart && b == [0xEF, 0xBB, 0xBF][at as usize] {
            return; // a UTF-8 byte-order mark, which the csv reader skips
        }
        if self.quote == Syntax::QuoteInQuoted && !matches!(b, b'"' | b',' | b'\n' | b'\r') {
            // `"Ada"x`: the csv reader would glue the rest on, and a second stray quote
            // later could hide rows inside one field (RFC 4180 allows no text here).
            self.after_quote.get_or_insert(self.line);
        }
        self.quote = match (self.quote, b) {
            (Syntax::FieldStart, b'"') => {
                self.quote_line = self.line;
                Syntax::Quoted
            }
            (Syntax::Quoted, b'"') => Syntax::QuoteInQuoted,
            (Syntax::QuoteInQuoted, b'"') => Syntax::Quoted,
            (Syntax::Quoted, _) => Syntax::Quoted,
            (_, b',' | b'\n' | b'\r') => Syntax::FieldStart,
            _ => Syntax::Unquoted,
        };
    }
}

impl<R> LineLimit<R> {
    /// Follows the syntax and the line lengths through `bytes`. Runs of bytes that change
    /// nothing but the line length (no quote, no newline) are skipped with `memchr`: a run
    /// leaves a field's start after `,` or `\r` and its middle otherwise, and a quoted field
    /// quoted. Every other byte goes through [`LineLimit::consume_byte`], which defines the
    /// outcome (a test checks the two agree on random input).
    fn consume(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while let Some((&first, tail)) = rest.split_first() {
            if self.offset < 3 || self.quote == Syntax::QuoteInQuoted {
                self.consume_byte(first)?;
                rest = tail;
                continue;
            }
            let run = memchr::memchr2(b'"', b'\n', rest).unwrap_or(rest.len());
            if let Some(&last) = run.checked_sub(1).and_then(|i| rest.get(i)) {
                self.offset += run as u64;
                self.current += run;
                if self.current > self.limit {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{TOO_LONG}:{}", self.line),
                    ));
                }
                if self.quote != Syntax::Quoted {
                    self.quote =
                        if matches!(last, b',' | b'\r') { Syntax::FieldStart } else { Syntax::Unquoted };
                }
            }
            rest = rest.get(run..).unwrap_or_default();
            if let Some((&special, tail)) = rest.split_first() {
                self.consume_byte(special)?;
                rest = tail;
            }
        }
        Ok(())
    }

    /// Follows the syntax and the line length through one byte.
    fn consume_byte(&mut self, b: u8) -> io::Result<()> {
        self.step(b);
        if let Some(line) = self.after_quote {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{AFTER_QUOTE}:{line}")));
        }
        if b == b'\n' {
            self.current = 0;
            self.line += 1;
        } else {
            self.current += 1;
            if self.current > self.limit {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{TOO_LONG}:{}", self.line)));
            }
        }
        Ok(())
    }
}

/// Marker text of the error, recognised by the importer.
pub(crate) const TOO_LONG: &str = "line longer than the limit";
/// Marker text of the error for a quoted field the input ends in.
pub(crate) const UNTERMINATED: &str = "unterminated quoted field";
/// Marker text of the error for text after a quoted field's closing quote.
pub(crate) const AFTER_QUOTE: &str = "text after a closing quote";

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.quote == Syntax::Quoted {
            // The csv reader would take the rest of the file as that one field, silently
            // swallowing every row after the stray quote.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{UNTERMINATED}:{}", self.quote_line),
            ));
        }
        self.consume(buf.get(..n).unwrap_or_default())?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str, chunk: usize) -> io::Result<Vec<u8>> {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        LineLimit::new(Chunks(text.as_bytes(), chunk), 1 << 20).read_to_end(&mut out)?;
        Ok(out)
    }

    /// The state a reader is left in, or the error it gave.
    fn outcome(l: &LineLimit<()>, result: io::Result<()>) -> String {
        match result {
            Ok(()) => format!(
                "{} {} {:?} {} {} {:?}",
                l.line, l.current, l.quote, l.quote_line, l.offset, l.after_quote
            ),
            Err(e) => e.to_string(),
        }
    }

    proptest::proptest! {
        /// The run-skipping `consume` ends where feeding every byte to `consume_byte` does:
        /// the same error, or the same line, length, syntax and offsets. The bytes are the
        /// ones that matter (quotes, separators, line ends, a byte-order mark) and a letter,
        /// fed in chunks of random sizes with a random line limit.
        #[test]
        fn skipping_runs_agrees_with_reading_every_byte(
            bytes in proptest::collection::vec(proptest::sample::select(vec![b'a', b',', b'"', b'\n', b'\r', 0xEF, 0xBB, 0xBF]), 0..200),
            chunks in proptest::collection::vec(1usize..9, 1..50),
            limit in 1usize..40,
        ) {
            let mut fast = LineLimit::new((), limit);
            let mut rest = bytes.as_slice();
            let mut result = Ok(());
            for chunk in chunks.iter().cycle() {
                if rest.is_empty() || result.is_err() {
                    break;
                }
                let (now, later) = rest.split_at((*chunk).min(rest.len()));
                result = fast.consume(now);
                rest = later;
            }
            let mut slow = LineLimit::new((), limit);
            let slow_result = bytes.iter().try_for_each(|&b| slow.consume_byte(b));
            proptest::prop_assert_eq!(outcome(&fast, result), outcome(&slow, slow_result));
        }
    }

    #[test]
    fn an_input_ending_inside_a_quoted_field_is_refused_with_its_line() {
        for chunk in [1, 2, 3, 1000] {
            let err = read_all("id,name\nA,\"Ada\nB,Bob\n", chunk).unwrap_err();
            assert_eq!(err.to_string(), format!("{UNTERMINATED}:2"), "chunk {chunk}");
            // An even number of stray quotes: the second closes the field, text follows it.
            let err = read_all("id,name\nA,\"Ada\nB,Bob\nC,\"Cy\n", chunk).unwrap_err();
            assert_eq!(err.to_string(), format!("{AFTER_QUOTE}:4"), "chunk {chunk}");
            // A byte-order mark before a quoted first field.
            assert!(read_all("\u{feff}\"id\",name\nA,b\n", chunk).is_ok(), "chunk {chunk}");
            for fine in [
                "id,name\nA,\"Ada\"\n",
                "id,name\nA,\"a\"\"b\"\n",
                "id,name\nA,\"multi\nline\"\n",
                "id,name\r\nA,x\"y\r\n",
                "id,name\nA,\"\"",
                "\"",
            ] {
                if fine == "\"" {
                    assert!(read_all(fine, chunk).is_err());
                } else {
                    assert!(read_all(fine, chunk).is_ok(), "{fine:?} chunk {chunk}");
                }
            }
        }
    }
}
