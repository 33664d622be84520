//! The `sep=;` line some spreadsheet exports put before the header (Excel reads it as the
//! field separator to use): read off the start of the input, so the header that follows is
//! the header.

use std::io::{self, Cursor, Read};

/// Bytes read to find the line: a byte-order mark, `sep=`, the separator repeated (a
/// spreadsheet that took the line for a row of cells writes `sep=;;;;`) and the line end.
const HEAD_BYTES: u64 = 512;

/// The separator a `sep=` first line names, if the input starts with one, and the input
/// after that line; otherwise `None` and the input unchanged. The line is `sep=` in any
/// case, one ASCII byte that is no quote or line end, that byte again any number of times,
/// and a line end (or the end of the input); a UTF-8 byte-order mark before it goes with it.
///
/// # Errors
/// The error of reading the first bytes.
pub(crate) fn take_sep_line<R: Read>(mut input: R) -> io::Result<(Option<u8>, impl Read)> {
    let mut head = Vec::new();
    (&mut input).take(HEAD_BYTES).read_to_end(&mut head)?;
    let found = sep_line(&head);
    let rest = found.map_or(0, |(_, len)| len);
    let kept = head.get(rest..).unwrap_or_default().to_vec();
    Ok((found.map(|(sep, _)| sep), Cursor::new(kept).chain(input)))
}

/// The separator and the length in bytes of a `sep=` line at the start of `head`.
fn sep_line(head: &[u8]) -> Option<(u8, usize)> {
    let bom = if head.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let line = head.get(bom..)?;
    let (key, after) = (line.get(..4)?, line.get(4..)?);
    let (&sep, after) = after.split_first()?;
    if !key.eq_ignore_ascii_case(b"sep=") || !sep.is_ascii() || matches!(sep, b'"' | b'\r' | b'\n') {
        return None;
    }
    let repeats = after.iter().take_while(|&&b| b == sep).count();
    let end = match after.get(repeats..)? {
        [b'\r', b'\n', ..] => 2,
        [b'\r' | b'\n', ..] => 1,
        // The whole input: nothing after the line (a longer line is no `sep=` line).
        [] if (head.len() as u64) < HEAD_BYTES => 0,
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
        // Longer than the bytes read: not a `sep=` line (and nothing is lost).
        let long = [&b"sep="[..], &[b';'; 600]].concat();
        assert_eq!(read(&long), (None, long.clone()));
    }
}
