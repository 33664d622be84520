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

impl<R: Read> LineLimit<R> {
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
        for &b in buf.get(..n).unwrap_or_default() {
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
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{TOO_LONG}:{}", self.line),
                    ));
                }
            }
        }
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
