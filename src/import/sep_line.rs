//! The `sep=;` line some spreadsheet exports put before the header (Excel reads it as the
//! field separator to use): read off the start of the input, so the header that follows is
//! the header.

use std::io::{self, Cursor, Read};

use super::limit::MAX_LINE_BYTES;

/// Bytes read first, to find whether the input starts with `sep=` (after a byte-order mark).
const HEAD_BYTES: usize = 512;

/// The separator a `sep=` first line names, if the input starts with one, and the input
/// after that line; otherwise `None` and the input unchanged. The line is `sep=` in any
/// case, one ASCII byte that is no quote or line end, that byte again any number of times
/// (a spreadsheet that took the line for a row of cells writes `sep=;;;;`, one per column),
/// and a line end (or the end of the input); a UTF-8 byte-order mark before it goes with it.
/// A line starting `sep=` is read to its end, up to [`MAX_LINE_BYTES`].
///
/// # Errors
/// The error of reading the first bytes.
pub(crate) fn take_sep_line<R: Read>(mut input: R) -> io::Result<(Option<u8>, impl Read)> {
    let mut head = Vec::new();
    (&mut input).take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    let mut ended = head.len() < HEAD_BYTES;
    if starts_with_sep(&head) {
        // To the line's end, and the byte after a CR (an LF there is part of the line end).
        let line_end = |head: &[u8]| {
            head.iter().position(|&b| b == b'\n' || b == b'\r').filter(|&at| head.len() > at + 1)
        };
        while !ended && line_end(&head).is_none() && head.len() <= MAX_LINE_BYTES {
            let before = head.len();
            (&mut input).take(HEAD_BYTES as u64 * 8).read_to_end(&mut head)?;
            ended = head.len() - before < HEAD_BYTES * 8;
        }
    }
    let found = sep_line(&head, ended);
    let rest = found.map_or(0, |(_, len)| len);
    let kept = head.get(rest..).unwrap_or_default().to_vec();
    Ok((found.map(|(sep, _)| sep), Cursor::new(kept).chain(input)))
}

/// Whether `head` starts with `sep=` in any case, after a byte-order mark.
fn starts_with_sep(head: &[u8]) -> bool {
    let line = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    line.get(..4).is_some_and(|key| key.eq_ignore_ascii_case(b"sep="))
}

/// The separator and the length in bytes of a `sep=` line at the start of `head`; `ended`
/// when `head` is the whole input.
fn sep_line(head: &[u8], ended: bool) -> Option<(u8, usize)> {
    if !starts_with_sep(head) {
        return None;
    }
    let bom = if head.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let (&sep, after) = head.get(bom + 4..)?.split_first()?;
    if !sep.is_ascii() || matches!(sep, b'"' | b'\r' | b'\n') {
        return None;
    }
    let repeats = after.iter().take_while(|&&b| b == sep).count();
    let end = match after.get(repeats..)? {
        [b'\r', b'\n', ..] => 2,
        [b'\r' | b'\n', ..] => 1,
        [] if ended => 0,
        _ => return None,
    };
    Some((sep, bom + 4 + 1 + repeats + end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> (Option<u8>, Vec<u8>) {
        let (sep, mut rest) = take_sep_line(input).unwrap();
        let mut out = Vec::new();
        rest.read_to_end(&mut out).unwrap();
        (sep, out)
    }

    #[test]
    fn a_sep_line_is_read_off() {
        assert_eq!(read(b"sep=;\nid;lat\n"), (Some(b';'), b"id;lat\n".to_vec()));
        assert_eq!(read(b"SEP=|\r\nid|lat\r\n"), (Some(b'|'), b"id|lat\r\n".to_vec()));
        assert_eq!(read(b"\xEF\xBB\xBFsep=\t\rid\tlat"), (Some(b'\t'), b"id\tlat".to_vec()));
        assert_eq!(read(b"sep=;;;;\nid;lat;lon;x\n"), (Some(b';'), b"id;lat;lon;x\n".to_vec()));
        assert_eq!(read(b"sep=,"), (Some(b','), Vec::new()));
    }

    #[test]
    fn anything_else_is_left_whole() {
        for input in [
            &b"id,lat,lon\nsep=;\n"[..],
            b"sep=;x\nid\n",
            b"sep=ab\n",
            b"sep=\"\n",
            b"sep=\n",
            b"sep",
            b"",
            b"\xEF\xBB\xBFid,lat\n",
            b"separator=;\n",
        ] {
            assert_eq!(read(input), (None, input.to_vec()), "{:?}", String::from_utf8_lossy(input));
        }
        // Nothing is lost of a line that starts `sep=` but is no sep line, however long.
        let long = [&b"sep="[..], &[b';'; 3000], b"x\nid\n"].concat();
        assert_eq!(read(&long), (None, long.clone()));
    }

    #[test]
    fn a_long_sep_line_and_a_line_end_across_reads() {
        // A sep line of a wide export, longer than the first bytes read.
        let wide = [&b"sep="[..], &[b';'; 3000], b"\r\nid;lat\n"].concat();
        assert_eq!(read(&wide), (Some(b';'), b"id;lat\n".to_vec()));
        // Its CR the last of the first bytes read, its LF the first after.
        let split = [&b"sep="[..], &[b';'; HEAD_BYTES - 5], b"\r\nid;lat\n"].concat();
        assert_eq!(split.get(HEAD_BYTES - 1), Some(&b'\r'));
        assert_eq!(read(&split), (Some(b';'), b"id;lat\n".to_vec()));
        // From a reader that hands over one byte at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        // (Longer than the first bytes read, so the line is read on to its end.)
        let input = [&b"sep=|"[..], &[b'|'; 600], b"\nid|lat\n"].concat();
        let (sep, mut rest) = take_sep_line(Trickle(&input)).unwrap();
        let mut out = Vec::new();
        rest.read_to_end(&mut out).unwrap();
        assert_eq!((sep, out), (Some(b'|'), b"id|lat\n".to_vec()));
    }
}
