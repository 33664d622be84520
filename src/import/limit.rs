//! A reader that refuses overly long lines, so one giant CSV line cannot exhaust memory, and
//! hands the csv reader LF line ends.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;

/// Longest line accepted by the importer (1 MiB).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Wraps a reader and fails with `InvalidData` once a line, or a record's lines together,
/// exceed the limit, or when the
/// input ends inside a quoted field. Line ends between records — CRLF, or a CR alone
/// (classic Mac OS files) — reach the csv reader as one LF (a CR-only file was one line over
/// the limit); bytes inside quoted fields pass unchanged, so no value changes.
///
/// Lines end at LF, CRLF or CR, inside quoted fields too, and the line each record starts on
/// is queued for the importer ([`LineLimit::record_lines`]): the csv reader's own line numbers
/// count only LFs, and start a record before the blank lines it skips (a CRLF file's rows were
/// one line short, a CR-only file's all line 1, a row after blank lines too early).
#[derive(Debug)]
pub(crate) struct LineLimit<R> {
    inner: R,
    limit: usize,
    /// The field separator (`,` unless the import was given another).
    delimiter: u8,
    current: usize,
    /// Bytes of the current record, all its lines (a quoted field may span many short ones).
    record: usize,
    line: u64,
    quote: Syntax,
    /// The line where the open quoted field started.
    quote_line: u64,
    /// Bytes read so far (to skip a byte-order mark at the start, as the csv reader does).
    offset: u64,
    /// Whether the input starts with a UTF-8 byte-order mark, once the first read decided it
    /// as the csv reader does: from the first bytes handed to it (at least 4 when there are).
    bom: Option<bool>,
    /// The line of text found after a closing quote, once seen.
    after_quote: Option<u64>,
    /// The last byte was a CR: an LF right after it ends no other line (and between records,
    /// where the CR was handed on as LF, it is dropped).
    last_cr: bool,
    /// No byte of a record since the last line end between records (or the start).
    between_lines: bool,
    /// The first line of each record seen, in order, until the importer takes it.
    record_lines: Rc<RefCell<VecDeque<u64>>>,
    /// The refusal found in bytes read, once the bytes before it are handed on.
    refused: Option<io::Error>,
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
            delimiter: b',',
            current: 0,
            record: 0,
            line: 1,
            quote: Syntax::FieldStart,
            quote_line: 1,
            offset: 0,
            bom: None,
            after_quote: None,
            last_cr: false,
            between_lines: true,
            record_lines: Rc::default(),
            refused: None,
        }
    }

    /// Fields are separated by `delimiter` instead of a comma.
    pub(crate) fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The first line read is line `line` of the file (the lines before it were read off).
    pub(crate) fn starting_at_line(mut self, line: u64) -> Self {
        self.line = line;
        self.quote_line = line;
        self
    }

    /// The queue of the lines records start on, in file order (the header's first), shared
    /// with this reader: the importer takes one per record the csv reader hands it. Blank
    /// lines start no record, as the csv reader skips them.
    pub(crate) fn record_lines(&self) -> Rc<RefCell<VecDeque<u64>>> {
        Rc::clone(&self.record_lines)
    }

    fn step(&mut self, b: u8) {
        self.offset += 1;
        let ends_field = b == self.delimiter || b == b'\n' || b == b'\r';
        if self.quote == Syntax::QuoteInQuoted && b != b'"' && !ends_field {
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
            _ if ends_field => Syntax::FieldStart,
            _ => Syntax::Unquoted,
        };
    }
}

impl<R> LineLimit<R> {
    /// [`LineLimit::consume_counting`] returning the count (tests feed chunks to it).
    #[cfg(test)]
    fn consume(&mut self, bytes: &mut [u8]) -> io::Result<usize> {
        let mut kept = 0;
        self.consume_counting(bytes, &mut kept).map(|()| kept)
    }

    /// Follows the syntax and the line lengths through `bytes`, rewriting them in place to
    /// what the csv reader is handed (line ends between records as LF); counts in `kept` how many
    /// bytes that is, at the start of `bytes` — when it fails too: those come before the
    /// refused byte. Runs of bytes that change nothing but the line
    /// length (no quote, no CR or LF) are skipped with `memchr` and kept as they are: a run
    /// leaves a field's start after the delimiter and its middle otherwise, and a quoted field quoted.
    /// Every other byte goes through [`LineLimit::consume_byte`], which defines the outcome (a
    /// test checks the two agree on random input).
    fn consume_counting(&mut self, bytes: &mut [u8], kept: &mut usize) -> io::Result<()> {
        let mut read = 0;
        while let Some(&first) = bytes.get(read) {
            if self.offset >= 3 && self.quote != Syntax::QuoteInQuoted {
                let rest = bytes.get(read..).unwrap_or_default();
                let run = memchr::memchr3(b'"', b'\n', b'\r', rest).unwrap_or(rest.len());
                if let Some(&last) = run.checked_sub(1).and_then(|i| rest.get(i)) {
                    self.offset += run as u64;
                    self.current += run;
                    self.record += run;
                    self.check_lengths()?;
                    if self.quote != Syntax::Quoted {
                        self.quote =
                            if last == self.delimiter { Syntax::FieldStart } else { Syntax::Unquoted };
                    }
                    self.last_cr = false;
                    self.start_record();
                    bytes.copy_within(read..read + run, *kept);
                    (read, *kept) = (read + run, *kept + run);
                    continue;
                }
            }
            if let Some(out) = self.consume_byte(first)? {
                if let Some(slot) = bytes.get_mut(*kept) {
                    *slot = out;
                }
                *kept += 1;
            }
            read += 1;
        }
        Ok(())
    }

    /// Refuses the current line, or the current record's lines together, once longer than
    /// the limit. A record holding more than its current line overflows before the line
    /// does (it counts the same bytes, and more): its refusal comes first, wherever a run
    /// of bytes ends; a record of one line is the line's to refuse.
    fn check_lengths(&self) -> io::Result<()> {
        if self.record > self.limit && self.record > self.current {
            return Err(refusal(RECORD_TOO_LONG, self.quote_line));
        }
        if self.current > self.limit {
            return Err(refusal(TOO_LONG, self.line));
        }
        Ok(())
    }

    /// Queues the current line as a record's first if no byte of a record came since the last
    /// line end between records: called for every byte that is not a line end.
    fn start_record(&mut self) {
        if self.between_lines {
            self.record_lines.borrow_mut().push_back(self.line);
            self.between_lines = false;
        }
    }

    /// Follows the syntax, the lines and the line length through one byte; returns the byte
    /// the csv reader is handed for it, if any. A line ends at LF, CRLF or CR; between records
    /// a CR or CRLF is handed on as one LF, inside a quoted field it is kept.
    fn consume_byte(&mut self, b: u8) -> io::Result<Option<u8>> {
        if self.offset < 3 && self.bom == Some(true) {
            // A byte of the byte-order mark, which the csv reader strips: no record starts.
            self.offset += 1;
            return Ok(Some(b));
        }
        let between_records = self.quote != Syntax::Quoted;
        let lf_after_cr = b == b'\n' && self.last_cr;
        // A CR between records leaves them between records, one inside a quoted field leaves
        // it quoted: an LF after a CR is the rest of a CRLF between records exactly when it
        // is between records itself.
        let rest_of_crlf = lf_after_cr && between_records;
        if between_records && matches!(b, b'\r' | b'\n') {
            self.record = 0;
        } else {
            self.record += 1;
        }
        self.last_cr = false;
        if !matches!(b, b'\r' | b'\n') {
            self.start_record();
        }
        self.step(b);
        if let Some(line) = self.after_quote {
            return Err(refusal(AFTER_QUOTE, line));
        }
        match b {
            b'\n' if rest_of_crlf => Ok(None),
            b'\n' => {
                self.current = 0;
                if !lf_after_cr {
                    self.line += 1;
                }
                self.between_lines |= between_records;
                self.check_lengths()?;
                Ok(Some(b'\n'))
            }
            b'\r' => {
                self.current = 0;
                self.line += 1;
                self.last_cr = true;
                self.check_lengths()?;
                if between_records {
                    self.between_lines = true;
                    Ok(Some(b'\n'))
                } else {
                    Ok(Some(b'\r'))
                }
            }
            _ => {
                self.current += 1;
                self.check_lengths()?;
                Ok(Some(b))
            }
        }
    }
}

/// The reader's refusal: `marker:line`, which the importer recognises and turns into a row
/// error naming the line.
fn refusal(marker: &str, line: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{marker}:{line}"))
}

/// Marker text of the error, recognised by the importer.
pub(crate) const TOO_LONG: &str = "line longer than the limit";
/// Marker text of the error for a record (a quoted field spanning lines) over the limit.
pub(crate) const RECORD_TOO_LONG: &str = "record longer than the limit";
/// Marker text of the error for a quoted field the input ends in.
pub(crate) const UNTERMINATED: &str = "unterminated quoted field";
/// Marker text of the error for text after a quoted field's closing quote.
pub(crate) const AFTER_QUOTE: &str = "text after a closing quote";

impl<R: Read> LineLimit<R> {
    /// The first read, which decides whether the input starts with a byte-order mark. The
    /// csv reader strips a mark only from the first bytes it is handed, and only when they
    /// are at least 3: this hands it at least 4 if there are, so that it and this reader
    /// decide alike however the input is cut (with just the 3 of the mark, nothing would be
    /// left of its first input after stripping them, which it takes for the end of the input).
    fn read_first(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < 4.min(buf.len()) {
            match self.inner.read(buf.get_mut(n..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(got) => n += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Bytes read are handed on; the error comes again at the next read.
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        self.bom = Some(buf.get(..n).is_some_and(|b| b.starts_with(b"\xEF\xBB\xBF")));
        Ok(n)
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(refused) = &self.refused {
            return Err(io::Error::new(refused.kind(), refused.to_string()));
        }
        loop {
            let n = if self.bom.is_none() { self.read_first(buf)? } else { self.inner.read(buf)? };
            if n == 0 && self.quote == Syntax::Quoted {
                // The csv reader would take the rest of the file as that one field, silently
                // swallowing every row after the stray quote.
                return Err(refusal(UNTERMINATED, self.quote_line));
            }
            if n == 0 {
                return Ok(0);
            }
            let mut kept = 0;
            if let Err(e) = self.consume_counting(buf.get_mut(..n).unwrap_or_default(), &mut kept) {
                // The bytes before the refused one go first, so the csv reader reports a bad
                // row before it (a wrong number of fields) as the first error; the refusal
                // comes at the next read, and every read after.
                if kept == 0 {
                    return Err(e);
                }
                self.refused = Some(e);
            }
            if kept > 0 {
                return Ok(kept);
            }
            // Only the LF of a CRLF was read and dropped: 0 would tell the csv reader the
            // input ended.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader handing out at most `.1` bytes of `.0` per read.
    struct Chunks<'a>(&'a [u8], usize);

    impl Read for Chunks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_all(text: &str, chunk: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        LineLimit::new(Chunks(text.as_bytes(), chunk), 1 << 20).read_to_end(&mut out)?;
        Ok(out)
    }

    /// The state a reader is left in and the bytes it handed on, or the error it gave.
    fn outcome(l: &LineLimit<()>, result: io::Result<Vec<u8>>) -> String {
        match result {
            Ok(out) => format!(
                "{} {} {:?} {} {} {:?} {} {} {:?} {out:?}",
                l.line,
                l.current,
                l.quote,
                l.quote_line,
                l.offset,
                l.after_quote,
                l.last_cr,
                l.between_lines,
                l.record_lines.borrow()
            ),
            Err(e) => e.to_string(),
        }
    }

    /// A generated record: its fields (quoted or not, value), its line end (0 LF, 1 CRLF, 2
    /// CR) and whether a blank line follows it.
    type GeneratedRecord = (Vec<(bool, String)>, u8, bool);

    /// A CSV file of `rows` records, each field quoted or not, quoted ones holding commas,
    /// quotes, CRs and LFs, records ended by LF, CRLF or CR, some followed by a blank line;
    /// with each record's true first line (lines end at LF, CRLF or CR).
    fn csv_file(rows: &[GeneratedRecord]) -> (Vec<u8>, Vec<u64>) {
        let breaks =
            |v: &str| (v.matches('\r').count() + v.matches('\n').count() - v.matches("\r\n").count()) as u64;
        let (mut out, mut lines, mut line) = (Vec::new(), Vec::new(), 1);
        for (fields, end, blank) in rows {
            lines.push(line);
            let cells: Vec<String> = fields
                .iter()
                .map(
                    |(quoted, v)| if *quoted { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.clone() },
                )
                .collect();
            out.extend_from_slice(cells.join(",").as_bytes());
            let end = [&b"\n"[..], b"\r\n", b"\r"][usize::from(*end % 3)];
            out.extend_from_slice(end);
            line += 1 + fields.iter().map(|(_, v)| breaks(v)).sum::<u64>();
            if *blank {
                out.extend_from_slice(end);
                line += 1;
            }
        }
        (out, lines)
    }

    /// Records read straight from `bytes` by the csv reader, and through a `LineLimit` fed
    /// `chunk` bytes at a time, with the lines the `LineLimit` queued for the latter.
    fn records_both_ways(bytes: &[u8], chunk: usize) -> (Vec<Vec<String>>, Vec<Vec<String>>, Vec<u64>) {
        let fields = |r: csv::StringRecord| r.iter().map(str::to_owned).collect::<Vec<_>>();
        let mut plain = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
        let direct = plain.records().map(|r| fields(r.unwrap())).collect();
        let through = LineLimit::new(Chunks(bytes, chunk), 1 << 20);
        let queued = through.record_lines();
        let mut limited = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(through);
        let (mut read, mut lines) = (Vec::new(), Vec::new());
        for r in limited.records() {
            read.push(fields(r.unwrap()));
            lines.push(queued.borrow_mut().pop_front().unwrap_or(0));
        }
        (direct, read, lines)
    }

    proptest::proptest! {
        /// The run-skipping `consume` ends where feeding every byte to `consume_byte` does:
        /// the same error, or the same line, length, syntax, offsets and bytes handed on. The
        /// bytes are the ones that matter (quotes, separators, line ends, a byte-order mark)
        /// and a letter, fed in chunks of random sizes with a random line limit.
        #[test]
        fn skipping_runs_agrees_with_reading_every_byte(
            bytes in proptest::collection::vec(proptest::sample::select(vec![b'a', b',', b';', b'"', b'\n', b'\r', 0xEF, 0xBB, 0xBF]), 0..200),
            chunks in proptest::collection::vec(1usize..9, 1..50),
            limit in 1usize..40,
            delimiter in proptest::sample::select(vec![b',', b';']),
        ) {
            let bom = Some(bytes.starts_with(b"\xEF\xBB\xBF"));
            let mut fast = LineLimit::new((), limit).with_delimiter(delimiter);
            fast.bom = bom;
            let mut rest = bytes.as_slice();
            let mut result = Ok(Vec::new());
            for chunk in chunks.iter().cycle() {
                let Ok(out) = &mut result else { break };
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at((*chunk).min(rest.len()));
                let mut now = now.to_vec();
                match fast.consume(&mut now) {
                    Ok(kept) => out.extend_from_slice(&now[..kept]),
                    Err(e) => result = Err(e),
                }
                rest = later;
            }
            let mut slow = LineLimit::new((), limit).with_delimiter(delimiter);
            slow.bom = bom;
            let slow_result = bytes.iter().try_fold(Vec::new(), |mut out, &b| {
                out.extend(slow.consume_byte(b)?);
                Ok(out)
            });
            proptest::prop_assert_eq!(outcome(&fast, result), outcome(&slow, slow_result));
        }

        /// Through a `LineLimit` the csv reader reads the same records, every value the same
        /// (quoted ones with commas, quotes, CRs and LFs), and the `LineLimit` queues each
        /// record's true first line whether records end with LF, CRLF or CR, after blank
        /// lines and multi-line values too (the csv reader's own numbers were one short per
        /// CRLF record, all 1 in a CR-only file, and early after blank lines).
        #[test]
        fn records_and_their_lines_survive_every_line_end(
            rows in proptest::collection::vec(
                (proptest::collection::vec((proptest::bool::ANY, "[a-z,\"\r\n]{0,6}"), 2..4), 0u8..3, proptest::bool::weighted(0.2)),
                1..25,
            ),
            chunk in 1usize..20,
            bom in proptest::bool::weighted(0.3),
            leading_blank in proptest::bool::weighted(0.2),
        ) {
            // An unquoted value holds no comma, quote, CR or LF, and a record is never blank.
            let rows: Vec<GeneratedRecord> = rows
                .into_iter()
                .map(|(fields, end, blank)| {
                    let fields = fields
                        .into_iter()
                        .map(|(quoted, v)| (quoted || v.contains(['"', ',', '\r', '\n']), v))
                        .collect();
                    (fields, end, blank)
                })
                .collect();
            let (mut bytes, mut want_lines) = csv_file(&rows);
            if leading_blank {
                bytes.insert(0, b'\n');
                want_lines.iter_mut().for_each(|l| *l += 1);
            }
            if bom {
                // Stripped by the csv reader however the input is cut (it strips one only from
                // the first bytes it is handed, and only from 3 or more).
                bytes.splice(0..0, *b"\xEF\xBB\xBF");
            }
            let (direct, read, lines) = records_both_ways(&bytes, chunk);
            proptest::prop_assert_eq!(&read, &direct);
            proptest::prop_assert_eq!(lines, want_lines);
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
