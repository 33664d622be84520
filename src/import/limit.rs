//! A reader that refuses overly long lines, so one giant CSV line cannot exhaust memory.

use std::io::{self, Read};

/// Longest line accepted by the importer (1 MiB).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Wraps a reader and fails with `InvalidData` once a line exceeds the limit.
#[derive(Debug)]
pub(crate) struct LineLimit<R> {
    inner: R,
    limit: usize,
    current: usize,
    line: u64,
}

impl<R: Read> LineLimit<R> {
    pub(crate) fn new(inner: R, limit: usize) -> Self {
        LineLimit { inner, limit, current: 0, line: 1 }
    }
}

/// Marker text of the error, recognised by the importer.
pub(crate) const TOO_LONG: &str = "line longer than the limit";

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in buf.get(..n).unwrap_or_default() {
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
