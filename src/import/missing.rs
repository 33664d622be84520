//! Cells that say a value is missing.
//!
//! Exports write a missing number as a marker rather than an empty cell: R writes `NA`,
//! spreadsheets `#N/A`, databases `NULL`, Python `None` or `NaN`. A number column holding
//! one used to abort the import (or, as its first value, silently made the column text).
//! The markers are the strings pandas' `read_csv` takes as missing by default, compared
//! exactly, after the cell's surrounding spaces are trimmed.

/// The markers, as pandas lists them (`pandas._libs.parsers.STR_NA_VALUES`), less the
/// empty string, which the importer already takes as missing.
const MARKERS: &[&str] = &[
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
    "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// Whether a (trimmed) cell is a missing-value marker.
///
/// ```
/// # use geocrm::import::is_missing_marker;
/// assert!(is_missing_marker("NA") && is_missing_marker("#N/A") && is_missing_marker("null"));
/// assert!(!is_missing_marker("na ") && !is_missing_marker("Nil") && !is_missing_marker("0"));
/// ```
#[must_use]
pub fn is_missing_marker(cell: &str) -> bool {
    // Every marker is 2 to 8 bytes long: most cells are turned away by their length.
    (2..=8).contains(&cell.len()) && MARKERS.contains(&cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marker_is_seen_and_nothing_near_one() {
        for m in MARKERS {
            assert!(is_missing_marker(m), "{m}");
        }
        for m in ["", "N", "na", "Na", "NONE", "nil", "-", "n.a.", " NA", "NA ", "NAN", "0", "1.5", "None1"] {
            assert!(!is_missing_marker(m), "{m:?}");
        }
    }
}
