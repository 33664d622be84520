//! The rows of a CSV file held in one buffer: every cell's text back to back, and where each
//! row starts and each cell ends.
//!
//! An import reads the whole file before it writes anything (it is atomic). Kept as one
//! `csv::StringRecord` per row, a million rows were two million allocations, each a copy of
//! the reader's buffer at its largest (the csv crate's record iterator clones its buffer
//! whole), and the memory of a 150 MB file twice over.

use zeroize::Zeroize;

/// Rows of `width` cells each.
pub(super) struct Rows {
    text: String,
    /// Where each row's text starts in `text`.
    starts: Vec<usize>,
    /// Where each cell ends, from its row's start (`width` per row; a row holds at most
    /// [`super::limit::MAX_LINE_BYTES`] bytes per line, and the reader's record limit).
    ends: Vec<u32>,
    /// The line each row starts on.
    lines: Vec<u64>,
    width: usize,
}

/// One row's cells.
#[derive(Clone, Copy)]
pub(super) struct Row<'a> {
    text: &'a str,
    ends: &'a [u32],
}

impl Rows {
    /// Rows of `width` cells (the header's).
    pub(super) fn new(width: usize) -> Rows {
        Rows { text: String::new(), starts: Vec::new(), ends: Vec::new(), lines: Vec::new(), width }
    }

    /// Appends a record read on `line`. A record whose cell count is not the width (the
    /// reader refuses those) or whose text does not fit the offsets is refused, with why.
    pub(super) fn push(&mut self, line: u64, record: &csv::StringRecord) -> Result<(), String> {
        if record.len() != self.width {
            return Err(format!("{} fields where the header has {}", record.len(), self.width));
        }
        let start = self.text.len();
        let cells = self.ends.len();
        for cell in record {
            self.push_text(cell);
            match u32::try_from(self.text.len() - start) {
                Ok(end) => self.ends.push(end),
                Err(_) => {
                    self.text.truncate(start);
                    self.ends.truncate(cells);
                    return Err("a record of over 4 GiB".into());
                }
            }
        }
        self.starts.push(start);
        self.lines.push(line);
        Ok(())
    }

    /// Appends to `text`, growing it by hand: `String`'s own growth would free the old
    /// buffer, with the cells read so far, unwiped.
    fn push_text(&mut self, cell: &str) {
        if self.text.capacity() - self.text.len() < cell.len() {
            let wanted = (self.text.len() + cell.len()).max(self.text.capacity() * 2).max(1 << 16);
            let mut grown = String::with_capacity(wanted);
            grown.push_str(&self.text);
            std::mem::replace(&mut self.text, grown).zeroize();
        }
        self.text.push_str(cell);
    }

    pub(super) fn len(&self) -> usize {
        self.starts.len()
    }

    /// The line each row starts on, in order.
    pub(super) fn lines(&self) -> &[u64] {
        &self.lines
    }

    /// The line each row starts on; the text is wiped and freed.
    pub(super) fn into_lines(mut self) -> Vec<u64> {
        std::mem::take(&mut self.lines)
    }

    /// Row `i` (an empty row past the end).
    pub(super) fn row(&self, i: usize) -> Row<'_> {
        let start = self.starts.get(i).copied().unwrap_or(self.text.len());
        let end = self.starts.get(i + 1).copied().unwrap_or(self.text.len());
        let ends = self.ends.get(i * self.width..(i + 1) * self.width).unwrap_or_default();
        Row { text: self.text.get(start..end).unwrap_or_default(), ends }
    }

    /// Every row, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = Row<'_>> + Clone + '_ {
        (0..self.len()).map(|i| self.row(i))
    }
}

/// The text holds PII cells in plaintext: wiped before it is freed.
impl Drop for Rows {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

impl<'a> Row<'a> {
    /// Cell `i`, or `None` past the row's width.
    pub(super) fn get(&self, i: usize) -> Option<&'a str> {
        let end = *self.ends.get(i)? as usize;
        let start = match i.checked_sub(1) {
            Some(before) => *self.ends.get(before)? as usize,
            None => 0,
        };
        self.text.get(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cells: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(cells.to_vec())
    }

    #[test]
    fn cells_come_back_as_pushed() {
        let mut rows = Rows::new(3);
        rows.push(2, &record(&["a", "", "ccc"])).unwrap();
        rows.push(5, &record(&["", "é✓", ""])).unwrap();
        rows.push(6, &record(&["x", "y", "z"])).unwrap();
        let got: Vec<Vec<Option<&str>>> = rows.iter().map(|r| (0..4).map(|i| r.get(i)).collect()).collect();
        assert_eq!(
            got,
            [
                [Some("a"), Some(""), Some("ccc"), None],
                [Some(""), Some("é✓"), Some(""), None],
                [Some("x"), Some("y"), Some("z"), None]
            ]
        );
        assert_eq!(rows.lines(), [2, 5, 6]);
        assert_eq!(rows.row(3).get(0), None);
    }

    #[test]
    fn growing_keeps_every_cell() {
        let mut rows = Rows::new(2);
        let long = "x".repeat(70_000);
        for i in 0..200 {
            let cell = if i % 50 == 7 { long.clone() } else { format!("cell {i}") };
            rows.push(i, &record(&[&format!("{i}"), &cell])).unwrap();
        }
        for i in 0..200 {
            let want = if i % 50 == 7 { long.clone() } else { format!("cell {i}") };
            assert_eq!(rows.row(i).get(1), Some(want.as_str()));
            assert_eq!(rows.row(i).get(0), Some(i.to_string().as_str()));
        }
    }

    #[test]
    fn a_record_of_another_width_is_refused_and_leaves_nothing() {
        let mut rows = Rows::new(2);
        rows.push(2, &record(&["a", "b"])).unwrap();
        let err = rows.push(3, &record(&["a", "b", "c"])).unwrap_err();
        assert_eq!(err, "3 fields where the header has 2");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows.row(0).get(1), Some("b"));
    }
}
