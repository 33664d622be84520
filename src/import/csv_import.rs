//! CSV import: a header row with `id`, `lat`, `lon`; PII columns named by the caller;
//! numeric columns become number attributes, the rest categories — except that a new
//! collection refuses to infer a column named like personal data (`name`, `email`, `phone`,
//! `address`, …), or holding a value that reads as an e-mail address or an international
//! phone number, as a plaintext attribute: the caller declares it PII, or a category or
//! number on purpose.
//!
//! Phone and e-mail columns (`phones`, `emails`, or PII fields of those kinds in an existing
//! collection) are validated per row: a bad value is reported with its line and column and a
//! reason, never the value.
//!
//! Atomic by default: every row is parsed and validated before anything is written, and the
//! first bad row aborts the import with `line N, column C: why`. With `skip_invalid`, good
//! rows are imported and bad ones are reported (line, id, column, reason — the reason may
//! quote the bad cell of a coordinate or number column, never a PII cell nor the rest of
//! the row).

use std::collections::{HashMap, HashSet};
use std::io::Read;

use super::limit::{LineLimit, AFTER_QUOTE, MAX_LINE_BYTES, RECORD_TOO_LONG, TOO_LONG, UNTERMINATED};
use super::missing::is_missing_marker;
use super::rows::{Row, Rows};
use super::sep_line::take_sep_line;
use crate::crypto::normalize::is_dash;
use crate::crypto::{is_invisible, Pii};
use crate::db::{Database, PendingOp, Slots};
use crate::error::{Error, Result};
use crate::geo::LatLon;
use crate::model::{FieldKind, PiiKind, Schema};

/// How to import: [`ImportOptions::new`] (every option off: no PII columns, kinds inferred
/// from the values, a comma between fields unless a `sep=` line names another, one
/// transaction), then a method per option. Fields can
/// be read and set, but the struct cannot be written as a literal outside this crate: an
/// option added later is not a breaking change.
///
/// ```
/// use geocrm::import::ImportOptions;
/// let opts = ImportOptions::new()
///     .pii(vec!["name".into()])
///     .phones(vec!["mobile".into()])
///     .delimiter(Some(b';'))
///     .decimal_comma(true)
///     .skip_invalid(true);
/// assert_eq!(opts.delimiter, Some(b';'));
/// ```
///
/// A literal, even one that takes the rest from the default, does not compile:
///
/// ```compile_fail,E0639
/// use geocrm::import::ImportOptions;
/// let opts = ImportOptions { skip_invalid: true, ..ImportOptions::default() };
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Columns holding PII (sealed, never stored in plaintext).
    pub pii: Vec<String>,
    /// PII columns holding phone numbers: validated, normalized to E.164 and blind-indexed
    /// (need not be repeated in `pii`).
    pub phones: Vec<String>,
    /// PII columns holding e-mail addresses: validated, normalized and blind-indexed (need
    /// not be repeated in `pii`).
    pub emails: Vec<String>,
    /// Columns to import as numbers, whatever their values (an inferred column is a number
    /// when its first value other than a missing-value marker ([`super::is_missing_marker`])
    /// is one, no value is a code — a leading zero, more than 15
    /// digits —, and its name is not a postcode's: `zip`, `billing_zip`, `postcode`, `postal_code`, `plz`…).
    pub numbers: Vec<String>,
    /// Columns to import as categories even if their values are numeric.
    pub categories: Vec<String>,
    /// Import good rows and report bad ones instead of aborting.
    pub skip_invalid: bool,
    /// Records per commit; the import is one transaction per commit (default: all rows in
    /// one transaction, so a crash leaves all or nothing).
    pub batch_size: Option<usize>,
    /// Header columns to take under another name, `(as in the file, new name)`, before
    /// the columns are resolved: a spreadsheet's `First Name` or `Latitude` becomes
    /// `first_name` or `lat`. The other options name columns by their new names.
    pub renames: Vec<(String, String)>,
    /// The field separator: `Some(b';')` for the semicolon-separated files spreadsheets
    /// write where the comma is the decimal mark, `Some(b'\t')` for tab-separated ones.
    /// When `None`, the one a spreadsheet's `sep=;` first line names (that line is read off,
    /// and lines are counted from it), else a comma; one given wins over the `sep=` line's.
    /// Fields are quoted with `"` whatever it is.
    pub delimiter: Option<u8>,
    /// Numbers and coordinates are written with a decimal comma (`48,8566`), as in a
    /// spreadsheet's export where `;` separates the fields: one comma is the decimal mark,
    /// and a number with a `.` is refused (`1.500` may be fifteen hundred) unless
    /// [`Self::thousands`] reads it as a thousands separator.
    pub decimal_comma: bool,
    /// Number columns may group their digits in thousands (`1,500`, `1,234.50`, `12 000`,
    /// `1'000`; with [`Self::decimal_comma`], `1.500` and `1.234,50`): one separator, which
    /// is not the decimal mark, between groups of three digits after a first group of one to
    /// three. A cell that reads as a number without it keeps that reading (with decimal
    /// commas, `1,500` is one and a half). Not in the coordinates.
    pub thousands: bool,
    /// Number columns may hold amounts written with a currency: `$1234.50`, `12 €`,
    /// `US$ 12`, `5 US$`, `EUR 12`, `-$5`, `$-5`, and an accountant's negatives in
    /// parentheses, `($5.00)`, `$ (5.00)`, `(5 €)`; a spreadsheet's accounting zero, `$ -` or
    /// `- €`, is 0. Parentheses without a currency are not read (`(212)` may be an area code).
    /// The currency is not stored: in one file, a column's amounts must all be in one
    /// currency (that of the first imported row's amount), so an import never adds dollars to
    /// euros — an amount in another is a bad row. The collection does not remember it, so a
    /// later file's amounts in another currency must not go into the same column. A cell that
    /// reads as a number without it keeps that reading. The number is read as any other
    /// ([`Self::decimal_comma`], [`Self::thousands`]: `$1,234.50` needs both `currency` and
    /// `thousands`; an exponent, `$1e5`, as in a plain number), and is not written as a code
    /// (`$0012`). Not in the coordinates. A currency is a sign (`$`, `€`, `£`, `¥`, `₹`, …),
    /// `$` after one or two capitals (`US$`, `R$`), or the ISO code of a widely traded
    /// currency (`USD`, `EUR`, `CHF`, …); a sign that stands for one currency only is that
    /// currency's code (`€` and `EUR` are one, `US$` and `USD` too), while `$` and `¥` are
    /// compared as written (`$` and `USD` are two).
    pub currency: bool,
    /// More cells that mean no value in number, phone and e-mail columns, besides the
    /// markers [`super::is_missing_marker`] knows: `-`, `unknown`, a sentinel such as `-999`
    /// (compared as text with the trimmed cell, before it is read as a number; not in the
    /// coordinates, where `0` is a place).
    pub missing: Vec<String>,
    /// Columns left out, by name (after `renames`): a wide export's columns the collection
    /// does not want. A column with an empty name (a spreadsheet's trailing separators) is
    /// left out when all its cells are empty, or when `ignore` holds `""`.
    pub ignore: Vec<String>,
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line in the file.
    pub line: u64,
    /// The row's id when it had one.
    pub id: String,
    /// The column at fault.
    pub column: String,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportReport {
    /// Records written.
    pub imported: u64,
    /// Of those, how many replaced a record already there with the same id. An import
    /// upserts whole records: a replaced record keeps none of its old fields (a column the
    /// file lacks, PII included, is no longer read; its old values stay in the log until a
    /// compaction).
    pub replaced: u64,
    /// Rows skipped (only with `skip_invalid`).
    pub rejected: Vec<Rejected>,
    /// Whether the collection was created by this import.
    pub created_collection: bool,
    /// Fields of the existing collection that no column of the file fills (left out or
    /// absent), in schema order: the records this import replaced no longer have them.
    pub fields_not_in_file: Vec<String>,
    /// Number, phone and e-mail columns whose cells held a missing-value marker
    /// ([`super::is_missing_marker`]: `NA`, `#N/A`, `NULL`, `NaN`, …, or one of
    /// [`ImportOptions::missing`]) in the rows imported,
    /// with how many, in column order: those cells were taken as empty, so those records
    /// have no value for the field.
    pub missing_values: Vec<(String, u64)>,
    /// Rows whose cells are all empty (the formatted empty rows a spreadsheet exports,
    /// `,,,`), skipped as blank lines are.
    pub empty_rows: u64,
    /// What the import decided that may not be what was meant, a sentence each (never a
    /// cell's value): a new column that became a category though nearly all its values
    /// are numbers.
    pub notes: Vec<String>,
}

/// Imports of at least this many rows convert them on every core.
const PARALLEL_ROWS_MIN: usize = 4096;

/// An option that names columns: its name in Rust, its flag, the columns.
pub(super) type ColumnOption<'a> = (&'static str, &'static str, &'a [String]);

impl ImportOptions {
    /// Every option off: the same as `ImportOptions::default()`.
    pub fn new() -> ImportOptions {
        ImportOptions::default()
    }

    /// The columns holding PII, sealed and never stored in plaintext ([`ImportOptions#structfield.pii`]).
    #[must_use]
    pub fn pii(mut self, pii: Vec<String>) -> ImportOptions {
        self.pii = pii;
        self
    }

    /// The PII columns holding phone numbers ([`ImportOptions#structfield.phones`]).
    #[must_use]
    pub fn phones(mut self, phones: Vec<String>) -> ImportOptions {
        self.phones = phones;
        self
    }

    /// The PII columns holding e-mail addresses ([`ImportOptions#structfield.emails`]).
    #[must_use]
    pub fn emails(mut self, emails: Vec<String>) -> ImportOptions {
        self.emails = emails;
        self
    }

    /// The columns imported as numbers whatever their values ([`ImportOptions#structfield.numbers`]).
    #[must_use]
    pub fn numbers(mut self, numbers: Vec<String>) -> ImportOptions {
        self.numbers = numbers;
        self
    }

    /// The columns imported as categories even if their values are numeric ([`ImportOptions#structfield.categories`]).
    #[must_use]
    pub fn categories(mut self, categories: Vec<String>) -> ImportOptions {
        self.categories = categories;
        self
    }

    /// Whether good rows are imported and bad ones reported instead of aborting ([`ImportOptions#structfield.skip_invalid`]).
    #[must_use]
    pub fn skip_invalid(mut self, skip_invalid: bool) -> ImportOptions {
        self.skip_invalid = skip_invalid;
        self
    }

    /// Records per commit; `None`, the default, is one transaction ([`ImportOptions#structfield.batch_size`]).
    #[must_use]
    pub fn batch_size(mut self, batch_size: Option<usize>) -> ImportOptions {
        self.batch_size = batch_size;
        self
    }

    /// Header columns taken under another name, `(as in the file, new name)` ([`ImportOptions#structfield.renames`]).
    #[must_use]
    pub fn renames(mut self, renames: Vec<(String, String)>) -> ImportOptions {
        self.renames = renames;
        self
    }

    /// The field separator; `None` reads a `sep=` line, else a comma ([`ImportOptions#structfield.delimiter`]).
    #[must_use]
    pub fn delimiter(mut self, delimiter: Option<u8>) -> ImportOptions {
        self.delimiter = delimiter;
        self
    }

    /// Whether numbers and coordinates are written with a decimal comma ([`ImportOptions#structfield.decimal_comma`]).
    #[must_use]
    pub fn decimal_comma(mut self, decimal_comma: bool) -> ImportOptions {
        self.decimal_comma = decimal_comma;
        self
    }

    /// Whether number columns may group their digits in thousands ([`ImportOptions#structfield.thousands`]).
    #[must_use]
    pub fn thousands(mut self, thousands: bool) -> ImportOptions {
        self.thousands = thousands;
        self
    }

    /// Whether number columns may hold amounts written with a currency ([`ImportOptions#structfield.currency`]).
    #[must_use]
    pub fn currency(mut self, currency: bool) -> ImportOptions {
        self.currency = currency;
        self
    }

    /// More cells that mean no value in number, phone and e-mail columns ([`ImportOptions#structfield.missing`]).
    #[must_use]
    pub fn missing(mut self, missing: Vec<String>) -> ImportOptions {
        self.missing = missing;
        self
    }

    /// The columns left out, by name after the renames ([`ImportOptions#structfield.ignore`]).
    #[must_use]
    pub fn ignore(mut self, ignore: Vec<String>) -> ImportOptions {
        self.ignore = ignore;
        self
    }
}

impl ImportOptions {
    /// The options that name columns: the five that give a kind (`pii`, `phones`, `emails`,
    /// `numbers`, `categories`), then `ignore`.
    pub(super) fn column_options(&self) -> [ColumnOption<'_>; 6] {
        [
            ("pii", "--pii", &self.pii),
            ("phones", "--phone", &self.phones),
            ("emails", "--email", &self.emails),
            ("numbers", "--numbers", &self.numbers),
            ("categories", "--categories", &self.categories),
            ("ignore", "--ignore", &self.ignore),
        ]
    }

    /// These options with the column names they give trimmed (renames are matched trimmed).
    fn with_trimmed_names(&self) -> ImportOptions {
        let trim = |names: &[String]| names.iter().map(|n| n.trim().to_owned()).collect();
        ImportOptions {
            pii: trim(&self.pii),
            phones: trim(&self.phones),
            emails: trim(&self.emails),
            numbers: trim(&self.numbers),
            categories: trim(&self.categories),
            ignore: trim(&self.ignore),
            missing: trim(&self.missing),
            ..self.clone()
        }
    }

    /// Checks what needs no file: the collection name, that no option names `id`,
    /// `lat` or `lon` (always the record's id and location), that no column is given two
    /// kinds (`phones` or `emails` with `pii` is one kind: PII), the delimiter, and
    /// `decimal_comma` with a comma as the delimiter. (`decimal_comma` with no delimiter is
    /// checked once the file is read: its `sep=;` line may name one.)
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the collection or the option.
    pub fn check(&self, collection: &str) -> Result<()> {
        crate::model::validate_name(collection).map_err(|e| {
            let reason = match e {
                Error::InvalidSchema { reason } => reason,
                other => other.to_string(),
            };
            Error::invalid_argument("collection", reason)
        })?;
        // Two options clash unless they are the same, or `pii` with `phones` or `emails`.
        let clash = |a: &str, b: &str| {
            let pii_with = |x: &str, y: &str| x == "pii" && matches!(y, "phones" | "emails");
            !(a == b || pii_with(a, b) || pii_with(b, a))
        };
        let mut named_in: HashMap<&str, Vec<&str>> = HashMap::new();
        for (option, _, names) in self.column_options() {
            for named in names {
                if crate::model::RECORD_NAMES.contains(&named.as_str()) {
                    return Err(Error::invalid_argument(
                        option,
                        format!(
                            "{named:?} is the record's id or location, always stored as such: it cannot be named here"
                        ),
                    ));
                }
                let earlier = named_in.entry(named).or_default();
                if let Some(other) = earlier.iter().find(|&&other| clash(other, option)) {
                    return Err(Error::invalid_argument(
                        option,
                        format!("column {named:?} is named in both {other} and {option}: give it one kind"),
                    ));
                }
                earlier.push(option);
            }
        }
        if let Some(problem) = self.delimiter.and_then(delimiter_problem) {
            return Err(Error::invalid_argument("delimiter", problem));
        }
        // (Without a delimiter, a file's `sep=;` line may name one: checked once it is read.)
        if self.delimiter == Some(b',') {
            decimal_comma_check(self.decimal_comma, b',')?;
        }
        let (mut froms, mut tos) = (std::collections::HashSet::new(), HashMap::new());
        for (from, to) in &self.renames {
            if !crate::model::RECORD_NAMES.contains(&to.as_str()) {
                crate::model::validate_name(to)
                    .map_err(|e| Error::invalid_argument("rename", format!("{from:?} to {to:?}: {e}")))?;
            }
            if !froms.insert(from.trim()) {
                return Err(Error::invalid_argument("rename", format!("column {from:?} is renamed twice")));
            }
            if let Some(other) = tos.insert(to.as_str(), from) {
                return Err(Error::invalid_argument(
                    "rename",
                    format!("columns {other:?} and {from:?} are both renamed {to:?}"),
                ));
            }
        }
        Ok(())
    }
}

/// The header with the columns `renames` names taken under their new names, all at once (a
/// swap, `a=b` with `b=a`, swaps). A column is the header cell equal to the name with the
/// spaces around it ignored (the cells are trimmed); a name two cells have is refused.
fn rename_columns(mut header: Vec<String>, renames: &[(String, String)]) -> Result<Vec<String>> {
    let mut at = Vec::with_capacity(renames.len());
    for (from, to) in renames {
        // (The header's cells are trimmed.)
        let matching: Vec<usize> =
            header.iter().enumerate().filter(|(_, h)| h.as_str() == from.trim()).map(|(i, _)| i).collect();
        let column = match matching.as_slice() {
            &[i] => i,
            [] => {
                return Err(Error::invalid_argument("rename", format!("the header has no column {from:?}")))
            }
            _ => {
                let reason = format!(
                    "{from:?} matches {} header columns (their spaces around ignored): a column can be renamed \
                     only when its name is the header's once",
                    matching.len()
                );
                return Err(Error::invalid_argument("rename", reason));
            }
        };
        at.push((column, to));
    }
    for (column, to) in at {
        if let Some(cell) = header.get_mut(column) {
            to.clone_into(cell);
        }
    }
    Ok(header)
}

struct Columns {
    id: usize,
    lat: usize,
    lon: usize,
    /// (column index, field name, kind, PII kind) for every other column.
    fields: Vec<(usize, String, FieldKind, PiiKind)>,
    /// [`ImportOptions::decimal_comma`].
    decimal_comma: bool,
    /// [`ImportOptions::thousands`].
    thousands: bool,
    /// [`ImportOptions::currency`].
    currency: bool,
    /// Whether the file could be read with decimal commas (separated by other than commas,
    /// which the advice says): they are read so already, or no coordinate has a decimal point.
    comma_decimals_possible: bool,
    /// [`ImportReport::notes`] on the kinds inferred.
    notes: Vec<String>,
    /// Whether the collection exists (its kinds are not the options' to change).
    existing: bool,
    /// [`ImportOptions::missing`].
    missing: Vec<String>,
}

/// With commas between the fields, a decimal comma reads only in a quoted cell.
fn decimal_comma_check(decimal_comma: bool, delimiter: u8) -> Result<()> {
    if decimal_comma && delimiter == b',' {
        return Err(Error::invalid_argument(
            "decimal-comma",
            "decimal commas need another field separator than the comma (--delimiter ';'; in Rust, \
             ImportOptions::delimiter)",
        ));
    }
    Ok(())
}

/// Why `d` cannot separate fields, if it cannot: a quote or line end cannot, and a letter,
/// digit or a number's own characters would split values (coordinates among them).
fn delimiter_problem(d: u8) -> Option<String> {
    if (d == b'\t' || d.is_ascii_punctuation() || d == b' ') && !b"\".-+".contains(&d) {
        return None;
    }
    let shown = if d.is_ascii_graphic() { format!("'{}'", char::from(d)) } else { format!("byte {d}") };
    Some(format!(
        "{shown} cannot separate fields: use a tab, a space or an ASCII punctuation character other than \" . - +"
    ))
}

/// A number cell's value (trimmed), with a decimal comma when `decimal_comma` (see
/// [`ImportOptions::decimal_comma`]); `None` when it is no number (finite or not).
fn parse_number(text: &str, decimal_comma: bool) -> Option<f64> {
    if !decimal_comma {
        return text.parse().ok();
    }
    if text.contains('.') || text.matches(',').count() > 1 {
        return None;
    }
    text.replacen(',', ".", 1).parse().ok()
}

/// A number cell's value as [`parse_number`] reads it, else, when `thousands`, with its
/// digits grouped in thousands (see [`ImportOptions::thousands`]).
fn parse_amount(text: &str, decimal_comma: bool, thousands: bool) -> Option<f64> {
    parse_number(text, decimal_comma).or_else(|| {
        if thousands {
            parse_grouped(text, decimal_comma)
        } else {
            None
        }
    })
}

/// A number cell's value as [`parse_amount`] reads it, else, when `currency`, as an amount
/// with a currency (see [`ImportOptions::currency`]).
fn parse_money(text: &str, decimal_comma: bool, thousands: bool, currency: bool) -> Option<f64> {
    if let Some(v) = parse_amount(text, decimal_comma, thousands) {
        return Some(v);
    }
    if !currency {
        return None;
    }
    let money = super::money::split_money(text)?;
    let v = parse_amount(money.number, decimal_comma, thousands)?;
    // (`($0.00)` is 0, not -0.)
    Some(if money.negative && v != 0.0 { -v } else { v })
}

/// Whether [`parse_money`] reads `text` as a finite number.
fn reads_as_number(text: &str, decimal_comma: bool, thousands: bool, currency: bool) -> bool {
    parse_money(text, decimal_comma, thousands, currency).is_some_and(f64::is_finite)
}

/// The advice for amounts in several currencies, which one number column cannot hold.
const A_COLUMN_PER_CURRENCY: &str = "put each currency's amounts in a column of its own";

/// Whether some options read `v` as a number: `currency` and `thousands`, with or without
/// `decimal_comma` (a note's test of a value, before it knows which options to name).
fn reads_with_some_options(v: &str) -> bool {
    [false, true].iter().any(|&decimal_comma| reads_as_number(v, decimal_comma, true, true))
}

/// The options to add to `import`'s so that `reads_all(decimal_comma, thousands)` holds: the
/// first of the options as given, with `thousands`, with `decimal_comma` (only where
/// `comma_possible`, as [`Columns::comma_decimals_possible`]), with both. As the flags to
/// add (` --thousands`, ` --decimal-comma (…)`) and their Rust names; `None` when none reads
/// them all.
fn options_that_read(
    import: &ImportOptions,
    comma_possible: bool,
    reads_all: impl Fn(bool, bool) -> bool,
) -> Option<(String, Vec<&'static str>)> {
    let (decimal_comma, thousands) = (import.decimal_comma, import.thousands);
    // (The options given first: with no separated number, they read them all.)
    let (d, t) = [(decimal_comma, thousands), (decimal_comma, true), (true, thousands), (true, true)]
        .into_iter()
        .filter(|&(d, _)| !d || comma_possible)
        .find(|&(d, t)| reads_all(d, t))?;
    let (mut flags, mut fields) = (String::new(), Vec::new());
    if t && !thousands {
        flags.push_str(" --thousands");
        fields.push("thousands");
    }
    if d && !decimal_comma {
        flags.push_str(" --decimal-comma (with a delimiter other than the comma)");
        fields.push("decimal_comma");
    }
    Some((flags, fields))
}

/// The currencies of the amounts among `values` that `readable` reads, each once (a sign and
/// its code as one, [`super::money::currency_key`]), as first written.
fn currencies_of<'v>(values: impl Iterator<Item = &'v str>, readable: impl Fn(&str) -> bool) -> Vec<&'v str> {
    let mut currencies: Vec<&str> = Vec::new();
    for v in values.filter(|v| readable(v)) {
        let Some(money) = super::money::split_money(v) else { continue };
        let key = super::money::currency_key(money.currency);
        if !currencies.iter().any(|&c| super::money::currency_key(c) == key) {
            currencies.push(money.currency);
        }
    }
    currencies
}

/// The note for a new column of amounts in several `currencies` that became a category,
/// ending with `then`: what to do once they are split.
fn several_currencies_text(name: &str, currencies: &[&str], then: &str) -> String {
    let shown: Vec<&str> = currencies.iter().take(5).copied().collect();
    let more = if currencies.len() > 5 { ", …" } else { "" };
    format!(
        "column {name:?} became a category, as its values are amounts in {} currencies ({}{more}): a number \
         column holds amounts in one currency, which is not stored (a sum would add them up as one); \
         {A_COLUMN_PER_CURRENCY}{then}",
        currencies.len(),
        shown.join(", "),
    )
}

/// The number of a cell: the cell, or, when `currency`, an amount's number (`1.500` of
/// `1.500 €`).
fn number_of(cell: &str, currency: bool) -> &str {
    match super::money::split_money(cell).filter(|_| currency) {
        Some(money) => money.number,
        None => cell,
    }
}

/// A number written with its digits grouped in thousands: after an optional sign, one to
/// three digits (not starting with `0`), then groups of three each after the same
/// [`is_group_separator`] (not the decimal mark, as `decimal_comma` says), then, optionally,
/// the decimal mark and digits: `1,234.5`, `12 000`, `1'000`, `1’000`; with decimal commas
/// `1.234,5`. At most 15 digits before the decimal mark. `None` for other text.
fn parse_grouped(text: &str, decimal_comma: bool) -> Option<f64> {
    let mark = if decimal_comma { ',' } else { '.' };
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let sign = text.get(..text.len() - unsigned.len()).unwrap_or_default();
    let (whole, fraction) = match unsigned.split_once(mark) {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let separator = whole.chars().find(|c| !c.is_ascii_digit())?;
    // (A first group of `0` groups nothing: `0,750` is a decimal comma's three quarters.)
    if !is_group_separator(separator)
        || !fraction.is_none_or(all_digits)
        || whole.starts_with('0')
        || !in_groups_of_three(whole, separator)
    {
        return None;
    }
    let digits: String = whole.chars().filter(|&c| c != separator).collect();
    // An integer part of more than 15 digits is a code, as it is when written plainly (a
    // number would lose its last digits).
    if digits.len() > 15 {
        return None;
    }
    let number = match fraction {
        Some(fraction) => format!("{sign}{digits}.{fraction}"),
        None => format!("{sign}{digits}"),
    };
    number.parse().ok()
}

/// Imports CSV from `input` into `collection`, creating it from the header when missing.
/// `progress` is called with the number of rows read so far. Each record id may appear
/// once per file (a repeat is a bad row naming the first one's line); a record already in
/// the collection is replaced whole, as by an upsert. For a new collection, a column is a
/// number attribute when its first value is a finite number and no value is an integer
/// written with a leading zero (`02134`) or with more than 15 digits; else a category. In a
/// number column, a cell holding a missing-value marker (`NA`, `#N/A`, `NULL`, `NaN`…; see
/// [`super::is_missing_marker`]) is no value, as an empty cell is, and is passed over when
/// the kind is inferred; [`ImportReport::missing_values`] counts them.
///
/// # Errors
/// [`Error::Csv`] naming line and column for a bad header or (without `skip_invalid`) the
/// first bad row; nothing is written then. [`Error::InvalidArgument`] as
/// [`ImportOptions::check`], before the file is read, and for a rename of a column the
/// header lacks (or matches twice, its spaces ignored), once the header is. [`Error::MissingKey`] when rows have
/// PII and the database no key (nothing is written). Write errors as
/// for [`crate::WriteBatch::commit`].
///
/// ```
/// use geocrm::{Database, Options, crypto::RawKey, import::{import_csv, ImportOptions}};
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path(), Options::new().key(RawKey::new([3; 32])))?;
/// let csv = "id,lat,lon,name,tier,ltv\nC-1,48.85,2.35,Ada,gold,120.5\nC-2,45.76,4.83,Bob,silver,80\n";
/// let opts = ImportOptions::new().pii(vec!["name".into()]);
/// let report = import_csv(&db, "customers", csv.as_bytes(), &opts, &mut |_| {})?;
/// assert_eq!(report.imported, 2);
/// let bad = "id,lat,lon,name,tier,ltv\nC-3,95,2.35,Cy,gold,1\n";
/// let err = import_csv(&db, "customers", bad.as_bytes(), &opts, &mut |_| {}).unwrap_err();
/// assert_eq!(err.to_string(), "line 2, column lat: latitude must be within [-90, 90]");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn import_csv(
    db: &Database,
    collection: &str,
    input: impl Read,
    options: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport> {
    // Column names trimmed, as the header's are (`--pii "name, email"` named " email").
    let trimmed = options.with_trimmed_names();
    let options = &trimmed;
    // Before the file: a bad name or option is the caller's argument, not the CSV's fault.
    options.check(collection)?;
    // A spreadsheet's `sep=;` line names the separator unless the options do (a wrong sep
    // line can be overridden), and lines are counted from it.
    let (sep, input) =
        take_sep_line(input).map_err(|e| header_error(&format!("the file could not be read: {e}")))?;
    if let (Some(sep), None) = (sep, options.delimiter) {
        if let Some(problem) = delimiter_problem(sep) {
            return Err(header_error(&format!(
                "the first line names the field separator (a spreadsheet's \"sep=\" line): {problem}; \
                 give the separator with --delimiter"
            )));
        }
    }
    let delimiter = options.delimiter.or(sep).unwrap_or(b',');
    decimal_comma_check(options.decimal_comma, delimiter)?;
    let effective;
    let options = if options.delimiter == Some(delimiter) {
        options
    } else {
        effective = ImportOptions { delimiter: Some(delimiter), ..options.clone() };
        &effective
    };
    let mut header_line = if sep.is_some() { 2 } else { 1 };
    let first_line = header_line;
    import_lines(db, collection, input, first_line, options, &mut header_line, progress).map_err(
        |e| match e {
            // The header's errors name line 1: where it is, unless a `sep=` line or blank lines
            // come first.
            Error::Csv { line: 1, column, reason } => Error::Csv { line: header_line, column, reason },
            e => e,
        },
    )
}

/// [`import_csv`] of the input after any `sep=` line, which starts on line `first_line`,
/// with the options' delimiter: sets `header_line` to the header's line once it is read.
fn import_lines(
    db: &Database,
    collection: &str,
    input: impl Read,
    first_line: u64,
    options: &ImportOptions,
    header_line: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport> {
    let delimiter = options.delimiter.unwrap_or(b',');
    let limited =
        LineLimit::new(input, MAX_LINE_BYTES).with_delimiter(delimiter).starting_at_line(first_line);
    // The line each record starts on, in order (the csv reader's own numbers are off for
    // CRLF and CR line ends and after blank lines): one is taken per record it hands over.
    let record_lines = limited.record_lines();
    let next_line = || record_lines.borrow_mut().pop_front();
    let mut reader =
        csv::ReaderBuilder::new().has_headers(true).flexible(false).delimiter(delimiter).from_reader(limited);
    // Trimmed like the cells (`id, lat, lon` from a hand-written file was refused).
    let header = reader.headers().map(|h| h.iter().map(|c| c.trim().to_owned()).collect::<Vec<String>>());
    let header = header.map_err(|e| csv_error(&e, "header", next_line()))?;
    if let Some(line) = next_line() {
        *header_line = line;
    }
    if header.is_empty() {
        return Err(header_error("the file is empty (expected a header with id, lat, lon)"));
    }
    // A file without a header line has its first row read as one, and the header's errors
    // quote column names: not an e-mail address or phone number (from the hands-on review).
    if let Some(column) = header.iter().position(|h| looks_like_contact(h, Dialled::Counted)) {
        return Err(header_error(&format!(
            "the first line holds what looks like an e-mail address or a phone number (column {}), as a row of \
             data does, not a header: the file needs a header line naming its columns, id, lat, lon and the others",
            column + 1
        )));
    }
    let header = rename_columns(header, &options.renames)?;
    let mut report = ImportReport::default();
    // The header's own faults (a column missing, named twice, looking like PII) before the
    // rows are read: the columns' kinds are inferred from the rows later (here, with no rows,
    // an undeclared column is a category, which takes any value).
    let existing = db.read().collection(collection).ok().map(|c| c.schema().clone());
    if existing.is_none() {
        // A column named like personal data stays a decision under its new name (a rename
        // to `who` got `Name` stored in plaintext without one: from the review).
        // (Left out by `ignore` is a decision too.)
        let lists = options.column_options();
        let own = |name: &str| crate::model::RECORD_NAMES.contains(&name);
        let declared = |name: &String| lists.iter().any(|(_, _, l)| l.contains(name));
        // (Not the id or the location: no option can name them, and `Address Latitude`
        // is a coordinate. An id's values are checked for contact data as ever.)
        let renamed: Vec<&(String, String)> = options
            .renames
            .iter()
            .filter(|(from, to)| !own(to) && looks_like_pii(from.trim()) && !declared(to))
            .collect();
        // With the columns not renamed that look like personal data, all in one error (one
        // at a time, a CRM export took a run per column). A file whose header lacks the
        // record's own columns may have a row of data for a header: none of it is quoted.
        let has_own = crate::model::RECORD_NAMES.iter().all(|n| header.iter().any(|h| h == n));
        let plain: Vec<&String> = header
            .iter()
            .filter(|h| has_own && !own(h) && !h.trim().is_empty() && !declared(h))
            .filter(|h| !renamed.iter().any(|(_, to)| to == *h) && looks_like_pii(h))
            .collect();
        match (renamed.as_slice(), plain.len()) {
            ([], _) => {}
            ([(from, to)], 0) => {
                return Err(header_error(&format!(
                    "column {from:?} (renamed {to:?}) looks like personal data: declare {to:?} as PII \
                     (--pii, --phone or --email) to seal it, or as a category or number to store it in \
                     plaintext on purpose"
                )));
            }
            (renamed, _) => {
                let mut names: Vec<String> =
                    renamed.iter().map(|(from, to)| format!("{from:?} (renamed {to:?})")).collect();
                names.extend(plain.iter().map(|h| format!("{h:?}")));
                return Err(header_error(&format!(
                    "columns {} look like personal data: declare each as PII (pii, phones or emails; --pii, \
                     --phone or --email) to seal it, or as a category or number to store it in plaintext on \
                     purpose",
                    and_list(&names)
                )));
            }
        }
    }
    let declared = resolve_columns(&header, &Rows::new(header.len()), options, existing.as_ref())?;
    if existing.is_none() {
        // The new schema's faults the rows cannot change, before they are read (a bad column
        // name was found once the whole file was read and converted: from the CLI review).
        let pii = declared.fields.iter().filter(|(_, _, kind, _)| *kind == FieldKind::Pii).count();
        // Every column that is no field name at once, with a rename for each (a spreadsheet's
        // `First Name`, `Région`: one run per column before).
        let (good, bad): (Vec<_>, Vec<_>) =
            declared.fields.iter().partition(|(_, name, _, _)| crate::model::validate_name(name).is_ok());
        if !bad.is_empty() {
            // Not one of the file's names (ignored ones included: a column renamed to one
            // would be ignored too), nor of the fields kept.
            let taken: Vec<&str> = header
                .iter()
                .map(String::as_str)
                .chain(good.iter().map(|(_, name, _, _)| name.as_str()))
                .collect();
            let columns: Vec<(usize, &str)> = bad.iter().map(|(i, name, _, _)| (*i, name.as_str())).collect();
            return Err(header_error(&super::field_names::no_field_names(&columns, &taken, options)));
        }
        if pii > crate::model::MAX_FIELDS_PER_KIND {
            let reason = format!("{pii} PII columns; at most {}", crate::model::MAX_FIELDS_PER_KIND);
            return Err(header_error(&reason));
        }
    }
    let mut rows = Rows::new(header.len());
    // A row error names the column when it concerns one (a cell that is not UTF-8, or a
    // space before a cell's opening quote that split it: from a hands-on review).
    let row_error = |e: &csv::Error, record: &csv::StringRecord, line: Option<u64>| {
        let column = match e.kind() {
            csv::ErrorKind::Utf8 { err, .. } => header.get(err.field()).map_or("-", String::as_str),
            csv::ErrorKind::UnequalLengths { .. } => {
                let mut refused = csv_error(e, "-", line);
                let opened = space_before_quote(record).and_then(|i| header.get(i));
                if let (Error::Csv { column, reason, .. }, Some(name)) = (&mut refused, opened) {
                    column.clone_from(name);
                    reason.push_str(
                        ": this cell has a space before its opening quote, so the quotes do not keep the \
                         delimiter inside it in one cell; remove the space",
                    );
                }
                return refused;
            }
            _ => "-",
        };
        csv_error(e, column, line)
    };
    // One record buffer, reused: each row's cells are copied into `rows`.
    let mut record = csv::StringRecord::new();
    for n in 0usize.. {
        let read = reader.read_record(&mut record);
        if matches!(read, Ok(false)) {
            break;
        }
        let line = next_line();
        match read {
            Ok(_) => {}
            // The reader has consumed the whole bad row, so it can go on with the next.
            Err(e) if options.skip_invalid && row_error_is_recoverable(&e) => {
                if let Error::Csv { line, column, reason } = row_error(&e, &record, line) {
                    // No id: in a row of the wrong length, the cell where the header puts
                    // the id may be another column's (a name split at an unquoted comma).
                    report.rejected.push(Rejected { line, id: String::new(), column, reason });
                }
                continue;
            }
            Err(e) => {
                let refused = row_error(&e, &record, line);
                if !options.skip_invalid {
                    // Rows are converted once all are read: a bad one before this is the
                    // first error. Not one whose badness depends on the rows after (an
                    // inferred column's kind): those columns are categories in `declared`.
                    let schema = existing.clone().unwrap_or_else(|| new_schema(&declared));
                    to_upserts(rows, &declared, (collection, &schema), options, &mut report)?;
                }
                return Err(refused);
            }
        }
        // A row of empty cells only (the formatted empty rows a spreadsheet exports, `,,,`)
        // is skipped like a blank line: it was a missing id, aborting the import.
        if record.iter().all(|cell| cell.trim().is_empty()) {
            report.empty_rows += 1;
            continue;
        }
        let line = line
            .or_else(|| record.position().map(|p| p.line() + first_line - 1))
            .unwrap_or(n as u64 + first_line + 1);
        rows.push(line, &record).map_err(|reason| Error::Csv { line, column: "-".into(), reason })?;
        if n % 65_536 == 0 {
            progress(n as u64);
        }
    }
    progress(rows.len() as u64);

    let mut columns = resolve_columns(&header, &rows, options, existing.as_ref())?;
    // (The kinds' notes, at `kind_notes`: about a collection this import creates.)
    let kind_notes = report.notes.len()..report.notes.len() + columns.notes.len();
    report.notes.append(&mut columns.notes);
    // (Only where the file could be read with decimal commas, which the note advises.)
    if !options.decimal_comma && columns.comma_decimals_possible && options.delimiter != Some(b',') {
        for (i, name, kind, _) in &columns.fields {
            // An amount's number (`1.500 €`) as any other.
            let values = rows.iter().filter_map(|r| r.get(*i)).map(|v| number_of(v.trim(), options.currency));
            if *kind == FieldKind::Number {
                report.notes.extend(points_that_may_group(name, values));
            }
        }
    }
    if let Some(schema) = &existing {
        let filled = |f: &String| columns.fields.iter().any(|(_, name, _, _)| name == f);
        let all = schema.pii_fields().iter().chain(schema.number_fields()).chain(schema.category_fields());
        report.fields_not_in_file = all.filter(|f| !filled(f)).cloned().collect();
    }
    let schema = existing.clone().unwrap_or_else(|| new_schema(&columns));
    let upserts = to_upserts(rows, &columns, (collection, &schema), options, &mut report)?;
    report.rejected.sort_by_key(|r| r.line);
    if existing.is_none() && upserts.is_empty() {
        // No row to infer a column's kind from: a collection made now would fix every
        // undeclared column as a category for good (a header-only file did, and numbers
        // imported later were text; from a hands-on review).
        let undeclared: Vec<String> = columns
            .fields
            .iter()
            .filter(|(_, name, kind, _)| {
                *kind != FieldKind::Pii
                    && !options.numbers.contains(name)
                    && !options.categories.contains(name)
            })
            .map(|(_, name, _, _)| format!("{name:?}"))
            .collect();
        if !undeclared.is_empty() {
            if report.rejected.is_empty() {
                let reason = format!(
                    "the file has no rows to infer the kind of column {} from: declare {} with --numbers \
                     or --categories (in Rust, `ImportOptions::numbers` or `categories`) to create the \
                     collection empty",
                    undeclared.join(", "),
                    if undeclared.len() == 1 { "it" } else { "them" }
                );
                return Err(header_error(&reason));
            }
            // Every row rejected: nothing imported, and no collection made of no data (nor
            // notes on the kinds of its columns).
            report.notes.drain(kind_notes);
            return Ok(report);
        }
    }
    // Checked before the first commit: with `batch_size`, finding it at the first PII row
    // would leave the batches before it committed.
    let has_pii =
        |op: &PendingOp| matches!(op, PendingOp::Upsert { pii, .. } if pii.iter().any(Option::is_some));
    if !db.has_key() && upserts.iter().any(has_pii) {
        return Err(Error::MissingKey);
    }

    let batch_size = options.batch_size.unwrap_or(usize::MAX).max(1);
    let mut batch = db.begin_write();
    if existing.is_none() {
        batch.create_collection(collection, schema).map_err(|e| header_error(&e.to_string()))?;
        report.created_collection = true;
        // (The notes' advice is for importing the file again: not into this collection.)
        if !kind_notes.is_empty() {
            report.notes.push(
                "a field's kind is fixed when its collection is created: to follow the advice above, import the \
                 file into a new collection (--collection NAME) or a new database"
                    .to_owned(),
            );
        }
    }
    // Every record was checked against the schema when its row was converted: none is
    // refused here.
    let mut upserts = upserts.into_iter().peekable();
    while upserts.peek().is_some() {
        let room = batch_size.saturating_sub(batch.len());
        if room == 0 {
            report.replaced += std::mem::replace(&mut batch, db.begin_write()).commit()?.replaced;
            continue;
        }
        let before = batch.len();
        batch.push_checked(upserts.by_ref().take(room));
        report.imported += (batch.len() - before) as u64;
    }
    report.replaced += batch.commit()?.replaced;
    Ok(report)
}

/// The collection the CSV header makes, its columns in order.
fn new_schema(columns: &Columns) -> Schema {
    let mut schema = Schema::new();
    for (_, name, kind, pii_kind) in &columns.fields {
        schema = match kind {
            FieldKind::Pii => schema.pii_of_kind(name, *pii_kind),
            FieldKind::Number => schema.number(name),
            FieldKind::Category => schema.category(name),
        };
    }
    schema
}

/// The rows as upserts into `target` (a collection and its schema), checked as
/// [`crate::WriteBatch::upsert`] checks a record: a bad row (or a repeated id) is rejected
/// into `report` with `skip_invalid`, otherwise the first one is the error.
fn to_upserts(
    rows: Rows,
    columns: &Columns,
    target: (&str, &Schema),
    options: &ImportOptions,
    report: &mut ImportReport,
) -> Result<Vec<PendingOp>> {
    let mut upserts = Vec::with_capacity(rows.len());
    let mut converted = crate::parallel::map_indices(rows.len(), PARALLEL_ROWS_MIN, |i| {
        to_upsert(columns, target, rows.lines().get(i).copied().unwrap_or(0), rows.row(i))
    });
    let repeat_of = if columns.currency {
        let (repeat_of, mut notes) = one_currency_per_column(&mut converted, columns, &rows);
        report.notes.append(&mut notes);
        repeat_of
    } else {
        repeated_ids(&converted, rows.lines())
    };
    // Which columns the markers were in, for the rows imported.
    let mut tally = [0u64; 128];
    for (result, repeat) in converted.iter().zip(&repeat_of) {
        if let (Ok((_, mut bits)), None) = (result, repeat) {
            while bits != 0 {
                if let Some(count) = tally.get_mut(bits.trailing_zeros() as usize) {
                    *count += 1;
                }
                bits &= bits - 1;
            }
        }
    }
    let markable = columns.fields.iter().filter(|(_, _, kind, pii)| takes_markers(*kind, *pii));
    for ((_, name, ..), &count) in markable.zip(&tally).filter(|(_, &count)| count > 0) {
        match report.missing_values.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += count,
            None => report.missing_values.push((name.clone(), count)),
        }
    }
    let position = |name: &str| columns.fields.iter().position(|(_, n, ..)| n == name);
    report.missing_values.sort_by_key(|(name, _)| position(name));
    // The file's text goes now (wiped: it holds the PII cells in plaintext).
    let row_lines = rows.into_lines();
    for ((result, line), first) in converted.into_iter().zip(row_lines).zip(repeat_of) {
        match (result, first) {
            // A record id the file repeats would replace the earlier row (PII included)
            // without a word.
            (Ok((r, _)), Some(first)) => {
                let reason = format!("the id repeats the one on line {first} (each record once per file)");
                if !options.skip_invalid {
                    let reason = format!("record {:?}: {reason}", upsert_id(&r).unwrap_or_default());
                    return Err(Error::Csv { line, column: "id".into(), reason });
                }
                report.rejected.push(Rejected {
                    line,
                    id: upsert_id(&r).unwrap_or_default().to_owned(),
                    column: "id".into(),
                    reason,
                });
            }
            (Ok((r, _)), None) => upserts.push(r),
            (Err(rej), _) if options.skip_invalid => report.rejected.push(rej),
            (Err(rej), _) => {
                return Err(Error::Csv { line: rej.line, column: rej.column, reason: rej.reason });
            }
        }
    }
    Ok(upserts)
}

/// Whether a (trimmed) cell is a missing-value marker, or one of `extra` ([`ImportOptions::missing`]).
fn no_value(cell: &str, extra: &[String]) -> bool {
    is_missing_marker(cell) || extra.iter().any(|m| m == cell)
}

/// Whether a missing-value marker in a column of this kind is no value: in a number
/// column, which cannot hold it, and in a phone or e-mail column, which cannot either.
fn takes_markers(kind: FieldKind, pii: PiiKind) -> bool {
    kind == FieldKind::Number || (kind == FieldKind::Pii && matches!(pii, PiiKind::Phone | PiiKind::Email))
}

/// The record id of an upsert (`None` for another operation, which has no row).
fn upsert_id(op: &PendingOp) -> Option<&str> {
    match op {
        PendingOp::Upsert { record, .. } => Some(&record.id),
        _ => None,
    }
}

/// For each converted row, the line of the first row with the same record id when it is a
/// repeat (rows that failed to convert neither repeat nor are repeated).
fn repeated_ids(converted: &[Result<(PendingOp, u128), Rejected>], lines: &[u64]) -> Vec<Option<u64>> {
    let mut first_line: HashMap<&str, u64, ahash::RandomState> =
        HashMap::with_capacity_and_hasher(converted.len(), ahash::RandomState::new());
    converted
        .iter()
        .zip(lines)
        .map(|(result, &line)| {
            let id = upsert_id(&result.as_ref().ok()?.0)?;
            match first_line.get(id) {
                Some(&first) => Some(first),
                None => {
                    first_line.insert(id, line);
                    None
                }
            }
        })
        .collect()
}

fn header_error(reason: &str) -> Error {
    Error::Csv { line: 1, column: "header".into(), reason: reason.to_owned() }
}

/// The first cell of a row of the wrong length that opens with spaces and then a quote
/// (`a, "b, c"`): the csv reader takes such a cell's quotes as text, so the delimiter inside
/// it splits the cell — the row's columns are right up to that cell.
fn space_before_quote(record: &csv::StringRecord) -> Option<usize> {
    record.iter().position(|cell| {
        let opened = cell.trim_start_matches([' ', '\t']);
        opened.len() < cell.len() && opened.starts_with('"')
    })
}

/// A row with the wrong number of fields or bad UTF-8: the reader can skip it.
fn row_error_is_recoverable(e: &csv::Error) -> bool {
    matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. })
}

/// The error of a bad row (or header) starting on `line` (when known: the csv reader's own
/// line numbers are a fallback).
fn csv_error(e: &csv::Error, column: &str, line: Option<u64>) -> Error {
    let line = line.or_else(|| e.position().map(csv::Position::line)).unwrap_or(0);
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("wrong number of columns: expected {expected_len}, found {len}")
        }
        // (An export as UTF-16 "Unicode text" or in Latin-1 stopped here with no word why.)
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8 (the file must be UTF-8: save a UTF-16 or Latin-1 export as UTF-8)",
            err.field() + 1
        ),
        csv::ErrorKind::Io(io) => {
            // The input reader's own refusals carry a marker and the line they concern.
            let text = io.to_string();
            let known = [
                (TOO_LONG, format!("line is longer than {MAX_LINE_BYTES} bytes")),
                (
                    RECORD_TOO_LONG,
                    format!(
                        "the record whose quoted field opens on this line is longer than {MAX_LINE_BYTES} bytes \
                         (its lines together; a quote never closed?)"
                    ),
                ),
                (
                    UNTERMINATED,
                    "a quoted field opened on this line is never closed (the file ends inside it)".into(),
                ),
                (
                    AFTER_QUOTE,
                    "text after the closing quote of a quoted field (a stray quote opened it?)".into(),
                ),
            ];
            match known.into_iter().find(|(marker, _)| text.starts_with(marker)) {
                Some((_, reason)) => {
                    let line = text.rsplit(':').next().and_then(|l| l.parse().ok()).unwrap_or(line);
                    return Error::Csv { line, column: "-".into(), reason };
                }
                None => e.to_string(),
            }
        }
        _ => e.to_string(),
    };
    let column = if matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) { "-" } else { column };
    Error::Csv { line, column: column.to_owned(), reason }
}

/// A hint for a number refused for its decimal mark: a decimal comma (`48,85`) without
/// [`ImportOptions::decimal_comma`] (`1,500` may as well be fifteen hundred), or a point
/// with it; `grouped` as [`ImportOptions::thousands`] (never for coordinates).
///
/// `numbers` for a number column (`--thousands` reads none of the coordinates), and
/// `comma_possible` as [`Columns::comma_decimals_possible`]: no advice to read decimal commas
/// where the coordinates have decimal points.
fn decimal_mark_hint(
    text: &str,
    decimal_comma: bool,
    grouped: bool,
    numbers: bool,
    comma_possible: bool,
) -> &'static str {
    let thousands = |c: char| c != ',' && is_group_separator(c);
    if decimal_comma {
        if text.parse::<f64>().is_ok_and(f64::is_finite) {
            if grouped {
                // (`1.5`, `0.750`: no grouping, a decimal point.)
                " (the numbers are read with a decimal comma, and a '.' only groups thousands, after one to three \
                 digits not starting with 0 and before three: 1.500 is fifteen hundred, 0,75 three quarters)"
            } else {
                " (the numbers are read with a decimal comma, and a '.' is refused: 1.500 may be fifteen hundred)"
            }
        } else if text.contains(thousands)
            && parse_number(&text.replace(thousands, ""), true).is_some_and(f64::is_finite)
        {
            // (`1.234,5`, `1 234,5`: refused as "not a finite number" with no word why.)
            if grouped {
                " (the numbers are read with a decimal comma, their digits grouped in threes after one to three: \
                 1.234,5 or 1234,5)"
            } else {
                " (the numbers are read with a decimal comma and no thousands separators: 1234,5, not 1.234,5 or 1 234,5)"
            }
        } else {
            ""
        }
    } else if parse_number(text, true).is_some_and(f64::is_finite) {
        if comma_possible {
            " (numbers take a decimal point; --decimal-comma reads a file written with decimal commas)"
        } else {
            " (numbers take a decimal point, as this file's coordinates do)"
        }
    } else if numbers && comma_possible && parse_grouped(text, true).is_some_and(f64::is_finite) {
        " (its digits are grouped in thousands before a decimal comma: --decimal-comma --thousands reads it, with \
         a delimiter other than the comma)"
    } else {
        ""
    }
}

/// Whether `c` may group a number's digits in thousands: `,`, `.`, `'`, `’` (Swiss), a
/// space, a no-break space (narrow or not) or a thin space.
fn is_group_separator(c: char) -> bool {
    matches!(c, ',' | '.' | '\'' | '’' | ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}')
}

/// A hint for a number with its digits grouped in thousands ([`parse_grouped`]) read
/// without [`ImportOptions::thousands`]; `1,500` may also be a decimal comma.
fn thousands_hint(text: &str, decimal_comma: bool) -> &'static str {
    if decimal_comma && text.parse::<f64>().is_ok() {
        " (the numbers are read with a decimal comma, and a '.' is refused: --thousands reads 1.500 as fifteen \
         hundred)"
    } else if !decimal_comma && parse_number(text, true).is_some() {
        " (--thousands reads 1,500 as fifteen hundred; --decimal-comma, with a delimiter other than the comma, \
         as one and a half)"
    } else {
        " (its digits are grouped in thousands, which --thousands reads)"
    }
}

/// When the header is one column holding another common separator, a hint that the file
/// is separated by it (a spreadsheet's `;`-separated export read as one column). The cell
/// itself is not shown: without a header line it is a first row's data.
fn separator_hint(header: &[String], delimiter: u8) -> String {
    // UTF-16 without a byte-order mark: a NUL byte beside every ASCII character.
    if header.iter().any(|h| h.contains('\0')) {
        return " (the header holds NUL bytes: the file looks like UTF-16; save it as UTF-8)".to_owned();
    }
    // A line naming the separator that is not read as one (`"sep=;"` quoted, `sep=;x`).
    if header
        .first()
        .is_some_and(|h| h.trim_start_matches('"').get(..4).is_some_and(|k| k.eq_ignore_ascii_case("sep=")))
    {
        return " (the first line looks like a spreadsheet's \"sep=\" line, read as one only when it is \
                `sep=` and the separator, unquoted: correct it or remove it)"
            .to_owned();
    }
    let [only] = header else { return String::new() };
    let found = [
        (b';', "';'", "a semicolon"),
        (b'\t', "tab", "a tab"),
        (b'|', "'|'", "a '|'"),
        (b',', "','", "a comma"),
    ]
    .into_iter()
    .find(|&(d, _, _)| d != delimiter && only.as_bytes().contains(&d));
    match found {
        Some((_, flag, what)) => format!(
            " (the header is one column holding {what}: if the file is separated by it, import it with --delimiter {flag})"
        ),
        None => String::new(),
    }
}

/// A note when a new column became a category though nearly all its values (`values`:
/// trimmed, neither empty nor a missing-value marker) are numbers: its first is `-` or
/// `unknown`, or they are written with thousands separators or a decimal comma that the
/// import does not read (`1,500`, `1.234,50`) — from hands-on reviews: aggregations then
/// refused the column. No value is shown.
fn numbers_made_text<'v>(
    name: &str,
    values: impl Iterator<Item = &'v str> + Clone,
    is_number: impl Fn(&str) -> bool,
    import: &ImportOptions,
    comma_decimals_possible: bool,
) -> Option<String> {
    // Amounts with a currency count as numbers, with --currency named when it is not given.
    let amount =
        |v: &str| !import.currency && super::money::split_money(v).is_some() && reads_with_some_options(v);
    let number_or_amount = |v: &str| is_number(v) || amount(v);
    // (plain numbers, numbers with separators) among `values`.
    let count = |values: &mut dyn Iterator<Item = &'v str>| {
        values.fold((0u64, 0u64, 0u64), |(n, plain, separated), v| {
            let p = number_or_amount(v);
            (n + 1, plain + u64::from(p), separated + u64::from(!p && with_separators(v)))
        })
    };
    let nearly_all = |(n, plain, separated): (u64, u64, u64)| n > 0 && (plain + separated) * 10 >= n * 9;
    // A look at the first hundred first, so a column of words is not parsed whole.
    if !nearly_all(count(&mut values.clone().take(100))) {
        return None;
    }
    let (total, plain, separated) = count(&mut values.clone());
    if !nearly_all((total, plain, separated)) {
        return None;
    }
    let amounts = values.clone().any(amount);
    // Amounts in several currencies (with --currency, or without it) are one column no more.
    let currencies = currencies_of(values.clone(), |v| amount(v) || (import.currency && is_number(v)));
    if currencies.len() > 1 {
        return Some(several_currencies_text(name, &currencies, ", then import each as a number column (--numbers, --currency, and --missing for a value that means none)"));
    }
    let how = |fields: &str| {
        let currency = if amounts { ", with currency" } else { "" };
        format!(
            "(in Rust, ImportOptions::{fields}{currency}; a value that is not a number is then a bad row, while an \
             empty cell or NA is no value)"
        )
    };
    // The options that read every number of the column, separated or not, when some do:
    // --thousands the groups, --decimal-comma a decimal comma (and then no decimal point).
    let numbers = values.clone().filter(|v| number_or_amount(v) || with_separators(v));
    let reads =
        |d: bool, t: bool| numbers.clone().all(|v| reads_as_number(v, d, t, import.currency || amounts));
    let options = options_that_read(import, comma_decimals_possible, reads)
        .map(|(flags, _)| format!("{}{flags}", if amounts { " --currency" } else { "" }));
    let (flags, unread) = match &options {
        Some(flags) => (flags.as_str(), ""),
        None => ("", " (neither --thousands nor --decimal-comma reads them all as numbers)"),
    };
    let kinds = if comma_decimals_possible {
        "(1234.5, 1,234.5 with --thousands, 1234,5 with --decimal-comma)"
    } else {
        "(1234.5, or 1,234.5 with --thousands)"
    };
    // Why by the first value: it decided the kind.
    let first = values.clone().next().unwrap_or_default();
    Some(if !with_separators(first) {
        let written = if separated == 0 {
            String::new()
        } else {
            format!(", {separated} of them written with thousands separators or a decimal comma{unread}")
        };
        // The first value named when it is a mark (`-`, `?`), which is no one's data; one
        // with a digit (`(300)`, an accountant's negative) is not to be dropped as no value.
        let first_has_digit = first.chars().any(|c| c.is_ascii_digit());
        // (In single quotes for a shell, and not a `,`, which would split the option's list.)
        let missing = if first_has_digit {
            let others = if options.is_none() {
                format!(" and the others as one kind {kinds}")
            } else {
                String::new()
            };
            format!(
                " once its first value is written as a number{others} (its row is refused until then; \
                 --skip-invalid sets such rows aside)"
            )
        } else if first.len() <= 3 && first.chars().all(|c| c.is_ascii_punctuation() && !",'".contains(c)) {
            format!(" --missing '{first}'")
        } else {
            " --missing VALUE (VALUE: the first value, meaning no value)".to_owned()
        };
        let fields = if missing.starts_with(" --missing") { "numbers and missing" } else { "numbers" };
        let once = if options.is_none() && !first_has_digit {
            format!(" once its numbers are written as one kind {kinds}")
        } else {
            String::new()
        };
        format!(
            "column {name:?} became a category, as its first value is not a number, though {} of its {total} \
             values are{written}: to make it a number column, import it with --numbers {name}{flags}{missing}{once} {}",
            plain + separated,
            how(fields)
        )
    } else {
        format!(
            "column {name:?} became a category, as its numbers are written with thousands separators or a decimal \
             comma (as 1,500 or 1.234,5; {separated} of its {total} values), which this import did not read{unread}: \
             to make it a number column, import it with --numbers {name}{flags}{} {}",
            if options.is_none() { format!(" once they are written as one kind {kinds}") } else { String::new() },
            how("numbers, thousands and decimal_comma")
        )
    })
}

/// A note when a new column became a category as its values are amounts written with a
/// currency (`$1,234.50`, `12,50 €`), which [`ImportOptions::currency`] reads: its first
/// value is one, and nearly all (90%) of `values` (trimmed, neither empty nor a missing-value
/// marker) read as numbers with it, with or without `thousands` and `decimal_comma`. The
/// note names the options that read them all (`decimal_comma` only where `comma_possible`,
/// as [`Columns::comma_decimals_possible`]), and the currencies, never a value; for amounts
/// in several currencies, it says to split the column (the currency is not stored).
fn money_made_text<'v>(
    name: &str,
    values: impl Iterator<Item = &'v str> + Clone,
    options: &ImportOptions,
    comma_possible: bool,
) -> Option<String> {
    // (Detected by any reading; advised only by those the file allows.)
    let readable = reads_with_some_options;
    let first = values.clone().next()?;
    if super::money::split_money(first).is_none() || !readable(first) {
        return None;
    }
    // A look at the first hundred first, so a column of words is not read whole.
    let nearly_all = |values: &mut dyn Iterator<Item = &'v str>| {
        let (n, amounts) = values.fold((0u64, 0u64), |(n, a), v| (n + 1, a + u64::from(readable(v))));
        n > 0 && amounts * 10 >= n * 9
    };
    if !nearly_all(&mut values.clone().take(100)) || !nearly_all(&mut values.clone()) {
        return None;
    }
    let amounts = values.clone().filter(|v| readable(v));
    let reading = options_that_read(options, comma_possible, |d, t| {
        amounts.clone().all(|v| reads_as_number(v, d, t, true))
    });
    let currencies = currencies_of(values, readable);
    let (mut flags, mut fields) = (String::from(" --currency"), vec!["currency"]);
    if let Some((more, names)) = &reading {
        flags.push_str(more);
        fields.extend(names);
    }
    let unread = if reading.is_none() {
        " once they are written as one kind (neither --thousands nor --decimal-comma reads them all)"
    } else {
        ""
    };
    let how = |them: &str| {
        format!(
            "import {them} with{flags}{unread} (in Rust, ImportOptions::{}; a value that is neither an amount nor \
             a number is then a bad row, while an empty cell or NA is no value)",
            fields.join(" and ")
        )
    };
    Some(match currencies.as_slice() {
        [one] => format!(
            "column {name:?} became a category, as its values are amounts written with a currency ({one}): to make \
             it a number column of the amounts, the currency not stored, {}",
            how("it")
        ),
        many => several_currencies_text(name, many, &format!(", then {}", how("them"))),
    })
}

/// [`repeated_ids`] with [`ImportOptions::currency`], which also holds each number column
/// to one currency: that of the first amount with one among the rows imported, in file
/// order. A row with an amount in another becomes a bad row instead, and neither its
/// currencies nor its id count (the currency is not stored: a sum would add them up; a later
/// row with its id is then no repeat). Returns a note for each column whose amounts have a
/// currency too.
fn one_currency_per_column(
    converted: &mut [Result<(PendingOp, u128), Rejected>],
    columns: &Columns,
    rows: &Rows,
) -> (Vec<Option<u64>>, Vec<String>) {
    let numbers: Vec<(usize, &str)> = columns
        .fields
        .iter()
        .filter(|(_, _, kind, _)| *kind == FieldKind::Number)
        .map(|(i, name, _, _)| (*i, name.as_str()))
        .collect();
    let mut first: Vec<Option<&str>> = vec![None; numbers.len()];
    let mut first_line: HashMap<&str, u64, ahash::RandomState> =
        HashMap::with_capacity_and_hasher(converted.len(), ahash::RandomState::new());
    let mut repeat_of = vec![None; converted.len()];
    for (r, (result, repeat)) in converted.iter_mut().zip(&mut repeat_of).enumerate() {
        let row = rows.row(r);
        let (Ok(_), Some(id)) = (&result, row.get(columns.id).map(str::trim)) else { continue };
        let line = rows.lines().get(r).copied().unwrap_or(0);
        if let Some(&earlier) = first_line.get(id) {
            *repeat = Some(earlier);
            continue;
        }
        let currency_in = |column: usize| {
            let cell = row.get(column)?.trim();
            if no_value(cell, &columns.missing) {
                return None;
            }
            Some(super::money::split_money(cell)?.currency)
        };
        let found: Vec<Option<&str>> = numbers.iter().map(|&(column, _)| currency_in(column)).collect();
        // The row's amounts are all checked before any sets its column's currency.
        let other = found.iter().zip(&first).zip(&numbers).find_map(|((found, first), (_, name))| {
            let (found, first) = ((*found)?, (*first)?);
            (super::money::currency_key(found) != super::money::currency_key(first))
                .then_some((name, found, first))
        });
        if let Some((name, found, first)) = other {
            *result = Err(Rejected {
                line,
                id: id.to_owned(),
                column: (*name).to_owned(),
                reason: format!(
                    "an amount in {found}, not in {first} as the column's first amount: the currency is not stored, \
                     so a sum would add them up as one ({A_COLUMN_PER_CURRENCY})"
                ),
            });
            continue;
        }
        first_line.insert(id, line);
        for (first, found) in first.iter_mut().zip(found) {
            if first.is_none() {
                *first = found;
            }
        }
    }
    let notes = numbers
        .iter()
        .zip(first)
        .filter_map(|((_, name), currency)| {
            Some(format!(
                "column {name:?}: amounts in {} read as numbers, the currency not stored: an amount in another \
                 currency in this file is a bad row, and the collection does not remember the currency, so a later \
                 file's amounts in another one must not be imported into this column",
                currency?
            ))
        })
        .collect();
    (repeat_of, notes)
}

/// A note when the numbers of number column `name` that have a decimal point all have three
/// digits after it, at least three of them, and one to three before it, not starting with
/// `0` (`1.500`, `12.000`): read as decimals, they may be thousands grouped with a point, as
/// a German or Italian export writes them (from the hands-on review: `--thousands` alone
/// read a German file's 1.500 as one and a half, silently). No value is shown.
fn points_that_may_group<'v>(name: &str, values: impl Iterator<Item = &'v str>) -> Option<String> {
    let grouped_like = |v: &str| {
        let unsigned = v.strip_prefix(['-', '+']).unwrap_or(v);
        unsigned.split_once('.').is_some_and(|(whole, fraction)| {
            (1..=3).contains(&whole.len())
                && all_digits(whole)
                && !whole.starts_with('0')
                && fraction.len() == 3
                && all_digits(fraction)
        })
    };
    let mut dotted = 0u64;
    for v in values.filter(|v| v.contains('.')) {
        if !grouped_like(v) {
            return None;
        }
        dotted += 1;
    }
    (dotted >= 3).then(|| {
        format!(
            "column {name:?}: its {dotted} numbers with a decimal point all have three digits after it (as 1.500), \
             read as decimals: if the point groups thousands in this file, as in 1.500 for fifteen hundred, import \
             it with --decimal-comma --thousands (with a delimiter other than the comma; in Rust, \
             ImportOptions::decimal_comma and thousands)"
        )
    })
}

/// A number written with thousands separators, or a decimal comma, that the import does not
/// read as one: `1,500`, `1.234,50`, `12 000`, `1'000.5`, `2,5` — one kind of group
/// separator between groups of three digits, after an optional sign; not an IP address, a
/// version or a phone number written in groups (`10.0.0.1`, `2.10.1`, `555 123 4567`).
fn with_separators(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (whole, fraction) = match digits.rfind([',', '.']) {
        // A last `,` or `.` followed by other than three digits is a decimal mark.
        Some(at) if digits.len() - at - 1 != 3 => (&digits[..at], Some(&digits[at + 1..])),
        _ => (digits, None),
    };
    if !fraction.is_none_or(all_digits) {
        return false;
    }
    let separator = whole.chars().find(|c| !c.is_ascii_digit());
    let Some(separator) = separator else { return fraction.is_some() };
    if !is_group_separator(separator) {
        return false;
    }
    // The decimal mark, if any, is not the group separator.
    if fraction.is_some() && digits[whole.len()..].starts_with(separator) {
        return false;
    }
    in_groups_of_three(whole, separator)
}

/// Whether `t` is one or more ASCII digits.
fn all_digits(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `whole` is digits grouped in thousands by `separator`: one to three, then groups
/// of three after each separator (`1,234,567`).
fn in_groups_of_three(whole: &str, separator: char) -> bool {
    let mut groups = whole.split(separator);
    let first = groups.next().unwrap_or_default();
    all_digits(first) && first.len() <= 3 && groups.all(|g| g.len() == 3 && all_digits(g))
}

/// Column names for a message: `"a", "b" and "c"`.
fn quoted_list(names: &[&String]) -> String {
    and_list(&names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>())
}

/// `a, b and c`.
pub(super) fn and_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.concat(),
    }
}

/// " (there is \"ID\": column names must match exactly, …)" when a header column is `name`
/// in other letters or with spaces around it: a column name, which may be quoted (another
/// header cell may be a first row's data).
fn other_letters_hint(header: &[String], name: &str) -> Option<String> {
    let other = header.iter().find(|h| h.trim().eq_ignore_ascii_case(name))?;
    Some(format!(
        " (there is {other:?}: column names must match exactly, case included; or take it under that name with --rename \"{other}={name}\")"
    ))
}

fn resolve_columns(
    header: &[String],
    rows: &Rows,
    options: &ImportOptions,
    existing: Option<&Schema>,
) -> Result<Columns> {
    // Why `name` is missing, in parentheses, or nothing: quoting a column only when it is the
    // name in other letters (`ID`) or a usual name for it (`Latitude`): another header cell
    // may be a first row's data.
    let why_missing = |name: &str| {
        let usual: &[&str] = match name {
            "id" => &[
                "customer_id",
                "customer id",
                "customerid",
                "client_id",
                "client id",
                "record_id",
                "record id",
            ],
            "lat" => &["latitude", "lat_deg"],
            "lon" => &["longitude", "lng", "long", "lon_deg"],
            _ => &[],
        };
        let usual_name = header.iter().find(|h| usual.iter().any(|u| h.trim().eq_ignore_ascii_case(u)));
        match (other_letters_hint(header, name), usual_name) {
            (Some(hint), _) => hint,
            (None, Some(other)) => {
                format!(" (there is {other:?}: take it under that name with --rename \"{other}={name}\")")
            }
            (None, None) => String::new(),
        }
    };
    let find = |name: &str| header.iter().position(|h| h == name);
    let missing: Vec<&str> = crate::model::RECORD_NAMES.into_iter().filter(|n| find(n).is_none()).collect();
    if !missing.is_empty() {
        // All of them at once, with the usual names there are for each.
        let whys: Vec<String> = missing.iter().map(|n| why_missing(n)).filter(|w| !w.is_empty()).collect();
        let mut message = match missing.as_slice() {
            [name] => format!("required column {name:?} is missing{}", whys.concat()),
            _ => {
                let inner: Vec<&str> =
                    whys.iter().map(|w| w.trim_start_matches(" (").trim_end_matches(')')).collect();
                let quoted: Vec<String> = missing.iter().map(|n| format!("{n:?}")).collect();
                let why = if inner.is_empty() { String::new() } else { format!(" ({})", inner.join("; ")) };
                format!("required columns {} are missing{why}", and_list(&quoted))
            }
        };
        if whys.is_empty() {
            message.push_str(&separator_hint(header, options.delimiter.unwrap_or(b',')));
        }
        // A first line of data (a file without a header line): numbers where names go.
        // (Two numbers, one with decimals, as coordinates have: a header's years have none.)
        let number = |h: &String| h.parse::<f64>().is_ok() || parse_number(h, true).is_some();
        let numbers = header.iter().filter(|h| number(h)).count();
        let decimals = header.iter().any(|h| number(h) && h.contains(['.', ',']));
        if whys.is_empty() && missing.len() == 3 && numbers >= 2 && decimals {
            message.push_str(
                " (the first line holds numbers, as a row of data does: the file needs a header line naming its \
                 columns, id, lat, lon and the others)",
            );
        }
        return Err(header_error(&message));
    }
    let position = |name: &str| find(name).unwrap_or_default();
    // First, so a file without a header line (its first row taken as the header) is refused
    // without quoting any of that row's cells.
    let (id, lat, lon) = (position("id"), position("lat"), position("lon"));
    // (Advice to read the numbers with decimal commas that the file refuses is no advice.)
    let comma_decimals_possible = options.decimal_comma
        || !rows.iter().any(|r| [lat, lon].iter().any(|&i| r.get(i).is_some_and(|v| v.contains('.'))));
    // Ids are stored in plaintext, in the log, the indexes and the keystore: an e-mail
    // address or phone number as the id would be (from the CLI review).
    // (Not numbers dialled with 00: a zero-padded customer number, `0012-345678`, may look
    // like one, and ids cannot be declared anything else.)
    if let Some((n, line)) = contact_values(rows, id, Dialled::NotCounted) {
        return Err(header_error(&format!(
            "column \"id\" holds {n} value(s) that are or contain e-mail addresses or international \
             phone numbers (the first on line {line}), and ids are stored in plaintext: key the \
             records by a customer number and import the address or number as PII (--email or \
             --phone)"
        )));
    }
    // Left out: the columns `ignore` names, and those without a name (a spreadsheet's
    // trailing separators made two, "appearing twice", that no option could fix; from a
    // hands-on review) — unless a cell of one holds a value `ignore` does not let go.
    let unnamed = |name: &str| name.trim().is_empty();
    let left_out = |name: &str| options.ignore.iter().any(|n| n == name) || unnamed(name);
    for (i, _) in header.iter().enumerate().filter(|(_, name)| unnamed(name)) {
        let valued =
            rows.iter().zip(rows.lines()).find(|(r, _)| r.get(i).is_some_and(|v| !v.trim().is_empty()));
        if let Some((_, line)) = valued.filter(|_| !options.ignore.iter().any(|n| unnamed(n))) {
            return Err(header_error(&format!(
                "column {} has no name, yet line {line} holds a value in it: name it in the header, or \
                 leave the unnamed columns out (--ignore \"\"; in Rust, ImportOptions::ignore)",
                i + 1
            )));
        }
    }
    let mut seen = HashSet::new();
    for h in header.iter().filter(|h| !left_out(h)) {
        if !seen.insert(h.as_str()) {
            return Err(header_error(&format!(
                "column {h:?} appears twice (the spaces around header names are ignored)"
            )));
        }
    }
    let [kinds @ .., (_, _, ignore)] = options.column_options();
    let named: Vec<&String> = kinds.iter().flat_map(|(_, _, names)| names.iter()).collect();
    let ignored = ignore.iter().filter(|n| !unnamed(n));
    // All at once: a run per misspelt name was a run too many.
    let mut absent: Vec<&String> =
        named.iter().copied().chain(ignored).filter(|n| !header.contains(n)).collect();
    // (Once each: `--pii phone --phone phone` names one column.)
    let mut once = HashSet::new();
    absent.retain(|n| once.insert(*n));
    match absent.as_slice() {
        [] => {}
        [one] => {
            // (A name in other letters is a column name, quoted as such: `--pii phone` for `Phone`.)
            let hint = other_letters_hint(header, one).unwrap_or_default();
            return Err(header_error(&format!(
                "column {one:?} named in the options is not in the header{hint}"
            )));
        }
        many => {
            let hints: String = many.iter().filter_map(|n| other_letters_hint(header, n)).collect();
            return Err(header_error(&format!(
                "columns {} named in the options are not in the header{hints}",
                quoted_list(many)
            )));
        }
    }
    // A new collection's columns named like personal data, all at once: a CRM export has
    // several (`name`, `email`, `phone`, `address`), and each took a run to learn of.
    if existing.is_none() {
        let unsure: Vec<&String> = header
            .iter()
            .enumerate()
            .filter(|&(i, name)| {
                ![id, lat, lon].contains(&i)
                    && !left_out(name)
                    && !named.contains(&name)
                    && looks_like_pii(name)
            })
            .map(|(_, name)| name)
            .collect();
        if unsure.len() > 1 {
            return Err(header_error(&format!(
                "columns {} look like personal data: declare each as PII (pii, phones or emails; --pii, \
                 --phone or --email) to seal it, or as a category or number to store it in plaintext on \
                 purpose",
                quoted_list(&unsure)
            )));
        }
    }
    let mut fields = Vec::new();
    let mut notes = Vec::new();
    let mut valueless: Vec<&String> = Vec::new();
    // Every column's problem, to name them all in one error (a run each was a run too many).
    let mut problems: Vec<String> = Vec::new();
    for (i, name) in header.iter().enumerate() {
        if [id, lat, lon].contains(&i) || left_out(name) {
            continue;
        }
        let asked_pii = if options.phones.contains(name) {
            Some(PiiKind::Phone)
        } else if options.emails.contains(name) {
            Some(PiiKind::Email)
        } else if options.pii.contains(name) {
            Some(PiiKind::Text)
        } else {
            None
        };
        let asked = if asked_pii.is_some() {
            Some(FieldKind::Pii)
        } else if options.numbers.contains(name) {
            Some(FieldKind::Number)
        } else if options.categories.contains(name) {
            Some(FieldKind::Category)
        } else {
            None
        };
        let kind = if let Some(schema) = existing {
            match (schema.field(name), asked) {
                // Never silently store a column named as PII as a plaintext attribute.
                (Some((kind, _)), Some(asked)) if kind != asked => {
                    problems.push(format!(
                        "column {name:?} is a {} field of the existing collection, not {} (a field's kind is \
                         fixed when its collection is created: to make it a {} field, import the file into a new \
                         collection, --collection NAME, or a new database)",
                        kind_name(kind),
                        kind_name(asked),
                        kind_name(asked)
                    ));
                    continue;
                }
                // A plaintext column of the collection is checked as a new one is when the
                // options do not name it: e-mail addresses or phone numbers in it would be
                // stored in plaintext (from the CLI review).
                (Some((kind @ (FieldKind::Category | FieldKind::Number), _)), None) => {
                    if let Some(why) = contact_problem(name, Some(kind), rows, i) {
                        problems.push(why);
                        continue;
                    }
                    kind
                }
                (Some((kind, _)), _) => kind,
                (None, _) => {
                    // A spreadsheet's name for one of its fields (`Umsatz (€)` for `umsatz`).
                    // (Only a field no other column of the file is or would be taken as.)
                    let suggested = |h: &String| super::field_names::suggested_name(h);
                    let field = suggested(name).filter(|f| {
                        let alike =
                            |h: &&String| schema.field(h).is_none() && suggested(h).as_ref() == Some(f);
                        schema.field(f).is_some()
                            && !header.contains(f)
                            && header.iter().filter(alike).count() == 1
                    });
                    let rename = field.map_or_else(String::new, |f| {
                        format!(
                            " ({} takes it as its field {f})",
                            super::field_names::rename_option(name, &f)
                        )
                    });
                    problems
                        .push(format!("column {name:?} is not a field of the existing collection{rename}"));
                    continue;
                }
            }
        } else if let Some(asked) = asked {
            asked
        } else if looks_like_pii(name) {
            // A new collection would store it in plaintext: make that a decision.
            problems.push(format!(
                "column {name:?} looks like personal data: declare it as PII (pii, phones or emails; \
                 --pii, --phone or --email) to seal it, or as a category or number to store it in \
                 plaintext on purpose"
            ));
            continue;
        } else {
            let values = rows.iter().filter_map(|r| r.get(i)).map(str::trim).filter(|v| !v.is_empty());
            // Whatever its name (`contact_number`, `secondary`): a column of e-mail addresses
            // or international phone numbers would be stored in plaintext (from the privacy
            // review).
            if let Some(why) = contact_problem(name, None, rows, i) {
                problems.push(why);
                continue;
            }
            // A marker first (`NA`) made a number column text, silently.
            let first = values.clone().find(|v| !no_value(v, &options.missing));
            // A code written with digits (a zip code `02134`, an account number beyond 2^53)
            // would lose its leading zeros or its last digits as a number.
            let code = |v: &str| {
                let digits = v.trim_start_matches(['+', '-']);
                (digits.len() > 1
                    && digits.starts_with('0')
                    && digits.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
                    || (all_digits(digits) && digits.len() > 15)
            };
            // A postcode column is a category whatever its first values: a UK or Dutch code
            // (`SW1A 1AA`, `1012 AB`) after French ones aborted the import (from the CLI
            // review). It goes by the column's name: judged by values, one stray `EUR 12`
            // turned a number column into a category (from the diff review).
            // (With decimal commas, a first value with a decimal point is a number too, so its
            // row is refused with a hint instead of the column turning to text.)
            let number = |v: &str| {
                parse_money(v, options.decimal_comma, options.thousands, options.currency)
                    .or_else(|| v.parse().ok().filter(|_| options.decimal_comma))
            };
            let is_number = |v: &str| number(v).is_some_and(f64::is_finite);
            let Some(first) = first else {
                // Empty or `NA` throughout: a category made of nothing would stay one for
                // good, refusing the numbers of every later import (from the reviews).
                // (With no rows at all, the header's own check, any kind will do.)
                // All such columns are named at once, after the loop.
                if rows.len() > 0 {
                    valueless.push(name);
                }
                fields.push((i, name.clone(), FieldKind::Category, PiiKind::default()));
                continue;
            };
            let codes = values.clone().any(code);
            if is_number(first) && !codes && !is_postcode_column(name) {
                FieldKind::Number
            } else {
                if !is_number(first) && !codes && !is_postcode_column(name) {
                    // (Read strictly: with decimal commas, `1.5` is a bad row, not a number.)
                    let strict = |v: &str| {
                        reads_as_number(v, options.decimal_comma, options.thousands, options.currency)
                    };
                    let values = values.filter(|v| !no_value(v, &options.missing));
                    let amounts = money_made_text(name, values.clone(), options, comma_decimals_possible);
                    notes.extend(amounts.or_else(|| {
                        numbers_made_text(name, values, strict, options, comma_decimals_possible)
                    }));
                }
                FieldKind::Category
            }
        };
        let pii_kind = match existing {
            Some(schema) => {
                let have = schema.pii_kind(name).unwrap_or_default();
                // A column named as a phone or e-mail must be one in the existing collection.
                if asked_pii.is_some_and(|k| k != PiiKind::Text && k != have) {
                    problems.push(format!(
                        "column {name:?} is a {} PII field of the existing collection",
                        pii_kind_name(have)
                    ));
                    continue;
                }
                have
            }
            None => asked_pii.unwrap_or_default(),
        };
        fields.push((i, name.clone(), kind, pii_kind));
    }
    if !valueless.is_empty() {
        let (columns, them) = match valueless.as_slice() {
            [one] => (format!("column {one:?} has"), "it"),
            many => (format!("columns {} have", quoted_list(many)), "them"),
        };
        problems.push(format!(
            "{columns} no value to infer a kind from (the cells are empty or missing-value markers such as NA or \
             given with --missing): \
             declare {them} with --numbers or --categories (in Rust, ImportOptions::numbers or categories), or \
             leave {them} out with --ignore"
        ));
    }
    match problems.as_slice() {
        [] => {}
        [one] => return Err(header_error(one)),
        many => {
            let listed: Vec<String> =
                many.iter().enumerate().map(|(n, p)| format!("({}) {p}", n + 1)).collect();
            return Err(header_error(&format!(
                "{} problems with the columns: {}",
                many.len(),
                listed.join("; ")
            )));
        }
    }
    Ok(Columns {
        id,
        lat,
        lon,
        fields,
        decimal_comma: options.decimal_comma,
        thousands: options.thousands,
        currency: options.currency,
        comma_decimals_possible,
        notes,
        existing: existing.is_some(),
        missing: options.missing.clone(),
    })
}

/// Column names that usually hold personal data (compared lower-cased, with `-`, `.` and
/// spaces as `_`): a new collection does not infer such a column as a plaintext attribute.
const PII_LIKE_COLUMNS: &[&str] = &[
    // Alone (`dni` is "days" in Polish, `nino` a child in Spanish, `last_login` a time).
    "login",
    "dni",
    "nino",
    "name",
    "first_name",
    "last_name",
    "full_name",
    "firstname",
    "lastname",
    "fullname",
    "surname",
    "email",
    "e_mail",
    "email_address",
    "mail",
    "phone",
    "phone_number",
    "mobile",
    "telephone",
    "tel",
    "address",
    "street",
    "street_address",
    "postal_address",
    "birth_date",
    // Alone, a contact column holds a phone or an e-mail (`last_contact_date` is not one).
    "contact",
    "contact_info",
    "contact_details",
    "contactinfo",
    // Alone (`nom_produit`, `nombre_commandes` — "number of" — are not a person's).
    "nom",
    "nombre",
    "nome",
    "nom_complet",
    "nombre_completo",
    "nome_completo",
    // Alone, a CRM's person columns (`customer_type`, `client_id`, `owner_team` are not).
    "customer",
    "client",
    "kunde",
    "owner",
    "account_owner",
    "contact_person",
    "ip",
    "ip_address",
    "ipaddress",
    // Alone, a name's parts (`first_purchase` and `last_order` are not), and Canada's
    // social insurance number (`precio_sin_iva` and `sin_lat` are not).
    "first",
    "last",
    "sin",
];

/// Words that, anywhere in a column name (`customer_email`, `mobilePhone`, `E-mail 1 -
/// Value`, `name_first`), mark it as personal data too — unless an [`ABOUT_WORDS`] word
/// follows (`email_opt_in`, `phone_verified`: about the data, not the data).
const PII_LIKE_WORDS: &[&str] = &[
    "name",
    "firstname",
    "lastname",
    "fullname",
    "surname",
    "email",
    "mail",
    "phone",
    "mobile",
    "telephone",
    "tel",
    "address",
    "street",
    "birthdate",
    // Other personal identifiers.
    "birth",
    "birthday",
    "dob",
    "ssn",
    "iban",
    "passport",
    "cellphone",
    "nickname",
    "username",
    "givenname",
    // Run together (`phonenumber`, `dateofbirth`), and two words that are one (`tax_id`,
    // `e_mail`: a word and the next are looked up joined too).
    "phonenumber",
    "emailaddress",
    "mailaddress",
    "mobilenumber",
    "mobilephone",
    "cellnumber",
    "telno",
    "telnumber",
    "telephonenumber",
    "dateofbirth",
    "homeaddress",
    "streetaddress",
    "postaladdress",
    "mailingaddress",
    "addr",
    "fax",
    "faxnumber",
    "taxid",
    "nationalid",
    "socialsecurity",
    "socialsecuritynumber",
    "driverslicense",
    "driverlicense",
    "msisdn",
    "whatsapp",
    "linkedin",
    "creditcard",
    "cardnumber",
    "contactnumber",
    "contactno",
    "idcard",
    "taxnumber",
    "nationalinsurance",
    "securitesociale",
    "sozialversicherungsnummer",
    "steuerid",
    "steuernummer",
    "personnummer",
    "nif",
    "cpf",
    "pesel",
    // The same in other languages CRM exports come in.
    "prenom",
    "prénom",
    "sobrenome",
    "celular",
    "apellido",
    "apellidos",
    "vorname",
    "nachname",
    "cognome",
    "telefono",
    "teléfono",
    "telefon",
    "telefone",
    "adresse",
    "direccion",
    "dirección",
    "indirizzo",
    "endereco",
    "endereço",
    "correo",
    "courriel",
    "mobil",
    "handy",
    "strasse",
    "straße",
    "geburtsdatum",
    "geburtstag",
    "morada",
    "rue",
    "naissance",
    "datedenaissance",
    "contactperson",
    "telefonnummer",
    "handynummer",
    "mobilnummer",
    "rufnummer",
    "anschrift",
    "fname",
    "lname",
    // More of them (stored in plaintext before: from the privacy review).
    "familienname",
    "mobiltelefon",
    "emailadresse",
    "mailadresse",
    "postanschrift",
    "wohnadresse",
    "hausanschrift",
    // Missed by a hands-on review's Dutch, German and Nordic exports.
    "telefoon",
    "telefoonnummer",
    "kontakt",
    "tlf",
    "ansprechpartner",
    "kontaktperson",
    "cellulare",
    "movil",
    "móvil",
    "portable",
    "cellno",
    "mobno",
    "landline",
    "emergencycontact",
    "primarycontact",
    "codicefiscale",
    "nacimiento",
    "nascita",
    "nascimento",
    "famille",
    // Credentials, payment cards, bank accounts, special categories of personal data (GDPR
    // Art. 9: religion, ethnicity, health, sexuality, politics, biometrics, genetics, trade
    // unions), health and national identity numbers, online identifiers (stored in plaintext
    // before: from a hands-on review); the words only consent makes about the data are in
    // `STRICT_WORDS`. Only compounds where the bare word names common
    // ordinary columns too (`loyalty_card`, Salesforce's `AccountNumber`, `customer_health`,
    // `nhs_region`, `political_district`, `medical_center`, `cellular_coverage`).
    "token",
    "apikey",
    "ccn",
    "ccnumber",
    "cardno",
    "cardholder",
    "debitcard",
    "bankaccount",
    "sortcode",
    "routingnumber",
    "kontonummer",
    "race",
    "healthnumber",
    "healthinsurance",
    "nhsnumber",
    "nhsno",
    "medicare",
    "medicaid",
    "aadhaar",
    "aadhar",
    "pannumber",
    "sinnumber",
    "sinno",
    "tfn",
    "bsn",
    "curp",
    "cnp",
    "ipaddr",
    // (`ipv4`, `ipv6`: the digits split the word.)
    "ipv",
    "clientip",
    "remoteip",
    "deviceid",
    "idfa",
    "mob",
    "spouse",
    "licenseplate",
    "licenceplate",
    "numberplate",
    "kennzeichen",
];

/// [`PII_LIKE_WORDS`] words of a birth: a [`DATE_WORDS`] word after one is the data, not
/// about it.
const BIRTH_WORDS: &[&str] = &[
    "birth",
    "birthday",
    "birthdate",
    "dob",
    "geburtstag",
    "naissance",
    "nacimiento",
    "nascita",
    "nascimento",
];

/// [`ABOUT_WORDS`] words that say a date.
const DATE_WORDS: &[&str] = &["date", "datum"];

/// Words of special categories of data, cards and credentials: personal data as
/// [`PII_LIKE_WORDS`] are (not repeated there), which only [`CONSENT_WORDS`] make about the
/// data.
const STRICT_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passcode",
    "secret",
    "cvv",
    "cvc",
    "ccv",
    "religion",
    "religious",
    "ethnicity",
    "ethnicgroup",
    "ethnicorigin",
    "diagnosis",
    "disability",
    "healthid",
    "medicalrecord",
    "medicalhistory",
    "medicalcondition",
    "sexuality",
    "sexualorientation",
    "politicalparty",
    "politicalaffiliation",
    "politicalopinion",
    "politicalviews",
    "biometric",
    "fingerprint",
    "genetic",
    "tradeunion",
    "unionmember",
];

/// [`ABOUT_WORDS`] words of consent.
const CONSENT_WORDS: &[&str] = &["opt", "optin", "optout", "consent"];

/// Words after a [`PII_LIKE_WORDS`] word that make the column about the data.
const ABOUT_WORDS: &[&str] = &[
    "opt",
    "optin",
    "optout",
    "verified",
    "valid",
    "validated",
    "type",
    "status",
    "count",
    "sent",
    "consent",
    "bounced",
    "bounce",
    "flag",
    "domain",
    "kind",
    "opened",
    "clicked",
    "delivered",
    "received",
    "replied",
    "unsubscribed",
    "rate",
    "score",
    "date",
    "datum",
];

/// Words before a [`PLURAL_WORDS`] word that make the column a count of them
/// (`total_emails`, `num_phones`). Before a singular one they do not: `num_tel`, `no_tel`
/// and `number_phone` are a phone number.
const COUNT_WORDS: &[&str] = &["num", "number", "total", "n", "nb", "count", "no"];

/// Plurals of [`PII_LIKE_WORDS`] words (`emails`, `phones`): a list of them is personal
/// data too, and a [`COUNT_WORDS`] word before one makes the column a count of them.
const PLURAL_WORDS: &[&str] = &[
    "names",
    "emails",
    "mails",
    "phones",
    "mobiles",
    "telephones",
    "addresses",
    "streets",
    "phonenumbers",
    "emailaddresses",
];

/// Words before `name` that make it a thing's, not a person's (`company_name`, `city_name`).
const THING_WORDS: &[&str] = &[
    "company",
    "city",
    "store",
    "shop",
    "product",
    "hotel",
    "country",
    "region",
    "state",
    "brand",
    "file",
    "host",
    "business",
    "org",
    "organization",
    "organisation",
    "place",
    "site",
    "branch",
    "team",
    "department",
    "campaign",
    "segment",
    "territory",
    // Places a geographic CRM names (`medical_center_name`, `service_name`; not `point`:
    // a `contact_point_name` is a person's).
    "center",
    "centre",
    "clinic",
    "hospital",
    "school",
    "venue",
    "location",
    "service",
];

/// A column name's words, lower-cased: split at every character that is not a letter (or,
/// unless `digits_split`, a digit, which is dropped: `zip5` is `zip`) and where lower case
/// turns upper (`customerEmail`).
fn name_words(column: &str, digits_split: bool) -> Vec<String> {
    let mut words: Vec<String> = vec![String::new()];
    let mut prev_lower = false;
    for c in column.trim().chars() {
        if !c.is_alphabetic() {
            if digits_split || !c.is_ascii_digit() {
                words.push(String::new());
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            words.push(String::new());
        }
        prev_lower = c.is_lowercase();
        if let Some(w) = words.last_mut() {
            w.extend(c.to_lowercase());
        }
    }
    words.retain(|w| !w.is_empty());
    words
}

/// Whether a column's name says it holds postcodes: one of its words (split at `_`, `-`,
/// `.`, spaces and lower-to-upper case changes) is `zip`, `zipcode`, `postcode`,
/// `postalcode`, `plz`, `postleitzahl`, `cep` or `eircode` (a digit may follow: `zip5`), or
/// two words run `postal code`, `post code` or `code postal` (`billing_zip`,
/// `shipping_postcode`, `Postal_Code`, `codigo_postal`).
fn is_postcode_column(column: &str) -> bool {
    let words = name_words(column, false);
    let one = |w: &str| {
        let w = w.strip_suffix('s').unwrap_or(w);
        ["zip", "zipcode", "postcode", "postalcode", "plz", "postleitzahl", "cep", "eircode"].contains(&w)
    };
    let two = |a: &str, b: &str| {
        matches!((a, b), ("postal" | "post", "code" | "codes") | ("code" | "codigo" | "código", "postal"))
    };
    words.iter().any(|w| one(w)) || words.windows(2).any(|w| matches!(w, [a, b] if two(a, b)))
}

/// Whether a column name is one of [`PII_LIKE_COLUMNS`], or holds a [`PII_LIKE_WORDS`],
/// [`STRICT_WORDS`] or [`PLURAL_WORDS`]
/// word (split at non-letters and lower-to-upper case changes; a word and the next are
/// also looked up joined, `tax_id` as `taxid`) not followed by an
/// [`ABOUT_WORDS`] word (only a [`CONSENT_WORDS`] one after a [`STRICT_WORDS`] word; after
/// a [`BIRTH_WORDS`] word and a [`DATE_WORDS`] one, the word after the date) nor, if one of
/// the [`PLURAL_WORDS`], preceded by a [`COUNT_WORDS`] word — and, for `name`, not
/// preceded by a [`THING_WORDS`] word. (`birth_year` is refused: a quasi-identifier.)
pub(super) fn looks_like_pii(column: &str) -> bool {
    let key: String = column
        .trim()
        .chars()
        .map(|c| if matches!(c, '-' | '.' | ' ') { '_' } else { c.to_ascii_lowercase() })
        .collect();
    if PII_LIKE_COLUMNS.contains(&key.as_str()) {
        return true;
    }
    let words: Vec<String> = name_words(column, true).into_iter().flat_map(split_run_together).collect();
    let at = |i: usize| words.get(i).map_or("", String::as_str);
    (0..words.len()).any(|i| {
        let (before, word, next) = (i.checked_sub(1).map_or("", at), at(i), at(i + 1));
        // The word after `word` that may say the column is about the data, not the data: of
        // a birth, the date is the data (`dob_date`, `birthday_date` were stored in plaintext:
        // from a hands-on review), so the word after the date decides (`birth_date_verified`).
        let about = |at_next: usize| {
            let next = at(at_next);
            if BIRTH_WORDS.contains(&word) && DATE_WORDS.contains(&next) {
                at(at_next + 1)
            } else {
                next
            }
        };
        // Whether the word after `matched` (`word`, or `word` and the next joined) says the
        // column is about the data.
        let not_personal = |matched: &str, after: &str| {
            // Of special categories, cards and credentials, only consent says the column is
            // about the data (`disability_type`, `sexual_orientation_status` are the data).
            let about_words = if STRICT_WORDS.contains(&matched) { CONSENT_WORDS } else { ABOUT_WORDS };
            about_words.contains(&after)
                || (COUNT_WORDS.contains(&before) && PLURAL_WORDS.contains(&word))
                || (matches!(word, "name" | "names") && THING_WORDS.contains(&before))
        };
        let joined = format!("{word}{next}");
        (pii_word(word) && !not_personal(word, about(i + 1)))
            || (!next.is_empty() && pii_word(&joined) && !not_personal(&joined, at(i + 2)))
    })
}

/// How many cells of `column` [`looks_like_contact`], and the line of the first, if any.
/// (Every cell of the column is checked, on every core: half an import's time before its
/// rows are converted went here.)
fn contact_values(rows: &Rows, column: usize, dialled: Dialled) -> Option<(usize, u64)> {
    let per_range = crate::parallel::ranges(rows.len(), PARALLEL_ROWS_MIN, |range| {
        let mut found =
            range.filter(|&i| rows.row(i).get(column).is_some_and(|v| looks_like_contact(v.trim(), dialled)));
        let first = found.next()?;
        Some((1 + found.count(), first))
    });
    let mut found = per_range.into_iter().flatten();
    let (mut count, first) = found.next()?;
    count += found.map(|(n, _)| n).sum::<usize>();
    Some((count, rows.lines().get(first).copied().unwrap_or_default()))
}

/// How many cells of `column` hold a payment card number, and the line of the first, when
/// the column counts as holding them ([`super::card_numbers`]: nearly all of its cells that
/// hold digits written as a card's, in groups or as one run, hold a card number written so).
fn card_values(rows: &Rows, column: usize) -> Option<(usize, u64)> {
    use super::card_numbers::{card_runs, SHARE};
    /// One range's counts of cells: with a grouped card, with other grouped digits only,
    /// with a bare card, with other bare runs only, with cards of both kinds; and the first
    /// row with a grouped card and with a bare one.
    #[derive(Default)]
    struct Tally {
        grouped: (usize, usize),
        bare: (usize, usize),
        both: usize,
        first: [Option<usize>; 2],
    }
    let per_range = crate::parallel::ranges(rows.len(), PARALLEL_ROWS_MIN, |range| {
        let mut t = Tally::default();
        for i in range {
            let Some(cell) = rows.row(i).get(column) else { continue };
            let runs = card_runs(cell);
            let kinds = [
                (&mut t.grouped, runs.grouped_card, runs.grouped_other),
                (&mut t.bare, runs.bare_card, runs.bare_other),
            ];
            for (((cards, others), card, other), first) in kinds.into_iter().zip(&mut t.first) {
                if card {
                    *cards += 1;
                    first.get_or_insert(i);
                } else if other {
                    *others += 1;
                }
            }
            t.both += usize::from(runs.grouped_card && runs.bare_card);
        }
        t
    });
    let sum = |f: fn(&Tally) -> (usize, usize)| {
        per_range.iter().map(f).fold((0, 0), |(c, o), (tc, to)| (c + tc, o + to))
    };
    let counts =
        |(cards, others): (usize, usize)| cards > 0 && cards as f64 >= SHARE * (cards + others) as f64;
    let (grouped, bare) = (sum(|t| t.grouped), sum(|t| t.bare));
    let first = |kind: usize| per_range.iter().find_map(|t| t.first.get(kind).copied().flatten());
    let (cards, first) = match (counts(grouped), counts(bare)) {
        (false, false) => return None,
        (true, false) => (grouped.0, first(0)?),
        (false, true) => (bare.0, first(1)?),
        // (A cell with cards of both kinds is one cell.)
        (true, true) => {
            (grouped.0 + bare.0 - per_range.iter().map(|t| t.both).sum::<usize>(), first(0)?.min(first(1)?))
        }
    };
    Some((cards, rows.lines().get(first).copied().unwrap_or_default()))
}

/// Why column `name` (number `column`) is refused when any of its values
/// [`looks_like_contact`], or it holds payment card numbers ([`card_values`]): they would
/// be stored in plaintext. The reason counts them, names the first one's line and quotes
/// none.
fn contact_problem(name: &str, existing: Option<FieldKind>, rows: &Rows, column: usize) -> Option<String> {
    let contacts = contact_values(rows, column, Dialled::Counted);
    let cards = if contacts.is_none() { card_values(rows, column) } else { None };
    let (what, (personal, line)) = match (contacts, cards) {
        (Some(found), _) => ("are or contain e-mail addresses or international phone numbers", found),
        (None, Some(found)) => ("are or contain payment card numbers", found),
        (None, None) => return None,
    };
    // (A phone number in a number column of the collection was stored, as a number, in
    // plaintext: from the hands-on review.)
    let remedy = if existing == Some(FieldKind::Number) {
        "it is a plaintext number of the existing collection: name it as a number \
         (numbers; --numbers) to store them in plaintext on purpose"
    } else if existing.is_some() {
        "it is a plaintext category of the existing collection: name it as a category \
         (categories; --categories) to store them in plaintext on purpose"
    } else if contacts.is_none() {
        // (Not a phone or e-mail field: it validated none of them.)
        "declare it as PII (pii; --pii) to seal it, leave it out (ignore; --ignore), or declare it \
         a category to store it in plaintext on purpose"
    } else {
        "declare it as PII (pii, phones or emails; --pii, --phone or --email) to seal it, or as a \
         category or number to store it in plaintext on purpose"
    };
    Some(format!(
        "column {name:?} holds {personal} value(s) that {what} (the first on line {line}): {remedy}"
    ))
}

/// Whether phone numbers dialled with `00` instead of `+` count as contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialled {
    /// A cell that is one in groups (`0044 20 7946 0958`), or one after a phone label in text
    /// (`Tel: 0033 1 42 68 53 00`).
    Counted,
    /// Not (ids).
    NotCounted,
}

/// Words that name a phone number before it, in text (`Tel: 0033 …`, `Tel+33…`, `fax +49 …`).
const PHONE_LABELS: &[&str] = &[
    "tel",
    "tél",
    "tele",
    "telefon",
    "telefono",
    "teléfono",
    "telephone",
    "téléphone",
    "phone",
    "ph",
    "mob",
    "mobile",
    "mobil",
    "cell",
    "fax",
    "call",
    "tlf",
    "whatsapp",
    "gsm",
    "handy",
    "telefonnummer",
    "telefoon",
    "handynummer",
    "telefone",
    "celular",
];

/// Whether `text` is or holds an e-mail address or an international phone number (`+…`, or
/// `00…` written in groups or after a phone label), read as a terminal shows it: what the CSV
/// import refuses to store in a plaintext column unless told to, and `geocrm update` in a
/// category value.
///
/// ```
/// use geocrm::import::holds_contact_data;
/// assert!(holds_contact_data("Ada <ada@example.org>"));
/// assert!(holds_contact_data("call +49 151 12345678 after 5pm"));
/// assert!(!holds_contact_data("gold") && !holds_contact_data("+48.8566"));
/// ```
#[must_use]
pub fn holds_contact_data(text: &str) -> bool {
    looks_like_contact(text, Dialled::Counted)
}

/// Whether a cell is or holds an e-mail address (its domain ending in a word: `2@1.99` is a
/// price) or an international phone number (`+`; or, as [`Dialled`] says, `00`) that is not
/// a signed decimal
/// (`+48.8566140` is one; `+1.415.555.2671` and `+33612345678` are taken for phone numbers):
/// the whole cell, or one inside free text (`Mr. X <x@example.org>`, `call +49 151 12345678
/// after 5pm`: a remarks column stored them in plaintext; from a hands-on review). The cell
/// is read as it shows: see [`as_shown`].
fn looks_like_contact(value: &str, dialled: Dialled) -> bool {
    // Most cells hold none of what a contact needs (one pass over the bytes: an import
    // checks every cell of its text columns).
    let bytes = value.as_bytes();
    let maybe = bytes.iter().any(|&b| matches!(b, b'@' | b'+' | b'%' | b'&') || !b.is_ascii())
        || (dialled == Dialled::Counted && bytes.windows(2).any(|w| w == b"00"));
    if !maybe {
        return false;
    }
    let shown = as_shown(value);
    let value = shown.as_ref().map_or(value, |text| text.trim());
    is_contact(value, dialled) || holds_contact(value, dialled)
}

/// `value` as it reads on screen, when that differs: full-width forms (`＋`, `＠`, digits, as
/// input methods type them) and the small `﹢` and `﹫` as the ASCII ones, invisible
/// characters dropped, a URL's or HTML's `@` and `+` (`%40`, `&#64;`, `&#x40;`, `%2B`,
/// `&#43;`, `&#x2B;`) decoded, and a cell that is nothing but an address with spaces around
/// its `@` closed up (`＋33 6…`, `ada＠example.org`, `+33\u{200b}6…` and `ada @ example.org`
/// were stored in plaintext: from hands-on reviews; not in text, where `bought 2 @ amazon.de`
/// is no address). Not full NFKC, which would turn a footnote `¹` or a circled `⑧` into digits.
fn as_shown(value: &str) -> Option<zeroize::Zeroizing<String>> {
    const ENCODED: [(&str, char); 6] =
        [("%40", '@'), ("&#64;", '@'), ("&#x40;", '@'), ("%2b", '+'), ("&#43;", '+'), ("&#x2b;", '+')];
    let encoded = value.contains(['%', '&']);
    let spaced = value.contains(" @") || value.contains("@ ");
    if value.is_ascii() && !encoded && !spaced {
        return None;
    }
    let full_width = crate::crypto::normalize::ascii_from_full_width(value).map(zeroize::Zeroizing::new);
    let text = full_width.as_ref().map_or(value, |t| t.as_str());
    let mut shown = zeroize::Zeroizing::new(String::with_capacity(text.len()));
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let code =
            ENCODED.iter().find(|(e, _)| rest.get(..e.len()).is_some_and(|r| r.eq_ignore_ascii_case(e)));
        if let Some(&(e, decoded)) = code {
            shown.push(decoded);
            rest = rest.get(e.len()..).unwrap_or_default();
            continue;
        }
        match c {
            '\u{FE62}' => shown.push('+'),
            '\u{FE6B}' => shown.push('@'),
            c if is_invisible(c) => {}
            c => shown.push(c),
        }
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
    }
    // `ada @ example.org`, the whole cell: one word each side (one pass, however many spaces).
    if let Some((local, domain)) = shown.trim().split_once('@') {
        let (local, domain) = (local.trim_end(), domain.trim_start());
        let word = |w: &str| !w.is_empty() && !w.contains(char::is_whitespace);
        if word(local) && word(domain) {
            return Some(zeroize::Zeroizing::new(format!("{local}@{domain}")));
        }
    }
    Some(shown)
}

/// Whether text holds an e-mail address (a word with `@`, words split at spaces, brackets,
/// quotes and `,;:`) or an international phone number that [`is_contact`]: a `+` not right
/// after a letter or digit (unless they are one of [`PHONE_LABELS`]: `Tel+33…`), or as
/// [`Dialled`] says a `00` after a phone label, and the digits, spaces, `-`, `.`, `(` and `)`
/// after it.
fn holds_contact(text: &str, dialled: Dialled) -> bool {
    let word_end = |c: char| c.is_whitespace() || "<>()[]{},;:\"'".contains(c);
    // The domain ends where a URL's path or query would start (`ada@example.org?subject=`),
    // the local part after a query's `?`, `&`, `=` or a path's `/`.
    let address = |w: &str| match w.rsplit_once('@') {
        Some((local, domain)) => {
            let end =
                domain.find(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-')).unwrap_or(domain.len());
            let local = local.rsplit(['?', '&', '=', '/']).next().unwrap_or(local);
            format!("{local}@{}", domain.get(..end).unwrap_or(domain).trim_end_matches('.'))
        }
        None => w.to_owned(),
    };
    let email = || {
        text.contains('@')
            && text
                .split(word_end)
                .filter(|w| w.contains('@'))
                .any(|w| is_contact(&address(w), Dialled::NotCounted))
    };
    // Whether one of the (up to three) words right before `at` is a phone label, whatever
    // punctuation sits between (`Tel: `, `Tel.-Nr.: `, `Phone (mobile): `, `Tel: (`).
    let label_before = |at: usize| {
        let before = text.get(..at).unwrap_or_default();
        let near = before.get(before.len().saturating_sub(32)..).unwrap_or(before);
        near.split(|c: char| !c.is_alphabetic())
            .filter(|w| !w.is_empty())
            .rev()
            .take(3)
            .any(|w| PHONE_LABELS.contains(&w.to_lowercase().as_str()))
    };
    // Where a list item starts: the text's start, or after `,`, `;` or `/` (`0044 20 7946
    // 0958 (office)`, `…; 0044 7700 900123`).
    let item_start = |at: usize| {
        text.get(..at)
            .unwrap_or_default()
            .trim_end()
            .chars()
            .next_back()
            .is_none_or(|c| matches!(c, ',' | ';' | '/'))
    };
    // The number starting after the prefix `prefix` at `at` (`+` or `00`), as a `+` number.
    let number_at = |at: usize, prefix: usize| {
        let rest = text.get(at + prefix..).unwrap_or_default();
        let run_len = rest.find(|c: char| !in_phone_run(c)).unwrap_or(rest.len());
        let run = rest.get(..run_len).unwrap_or_default().trim_end_matches(|c: char| !c.is_ascii_digit());
        // Numbers with a decimal part are amounts or coordinates, not a phone number
        // (`+40.7128 -74.0060`, `+10.00-25.00 EUR`).
        let decimals = run
            .split(|c: char| c.is_whitespace() || is_dash(c))
            .any(|t| t.matches('.').count() == 1 && t.parse::<f64>().is_ok());
        !decimals && is_contact(&format!("+{}", run.trim_start().replace('/', " ")), Dialled::NotCounted)
    };
    let plus = || {
        text.match_indices('+').any(|(at, _)| {
            // Not glued to a word or another `+` (`A+12345678`, `C++ 98 03 11 14`), unless
            // the word is a phone label.
            let glued = text
                .get(..at)
                .and_then(|t| t.chars().next_back())
                .is_some_and(|c| c.is_alphanumeric() || c == '+');
            (!glued || label_before(at)) && number_at(at, 1)
        })
    };
    let zeros = || {
        dialled == Dialled::Counted
            && text.match_indices("00").any(|(at, _)| {
                let glued =
                    text.get(..at).and_then(|t| t.chars().next_back()).is_some_and(|c| c.is_alphanumeric());
                // After a label, as any number; at an item's start, written as one.
                !glued
                    && ((label_before(at) && number_at(at, 2))
                        || (item_start(at) && dialled_number(text.get(at..).unwrap_or_default())))
            })
    };
    email() || plus() || zeros()
}

/// [`looks_like_contact`] for a whole cell.
fn is_contact(value: &str, dialled: Dialled) -> bool {
    // Looser than what an e-mail field takes: any local part (`mailto:ada@…`, `"ada"@…`,
    // which the field refuses, are still addresses in plaintext), a valid domain whose last
    // label is letters (or an IDN's `xn--…`: `2@1.99` is a price, `box@2.5kg` a weight,
    // `単価＠1.5万円` a unit price) and no image type (`logo@2x.png` is an image at a pixel
    // density).
    let email = || {
        let Some((local, domain)) = value.rsplit_once('@') else { return false };
        let tld = domain.rsplit('.').next().unwrap_or_default();
        let image =
            ["png", "jpg", "jpeg", "gif", "webp", "svg", "avif"].iter().any(|e| tld.eq_ignore_ascii_case(e));
        !local.is_empty()
            && !tld.is_empty()
            && (tld.chars().all(char::is_alphabetic)
                || tld.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--")))
            && !image
            && crate::crypto::normalize_email(&format!("x@{domain}")).is_ok()
    };
    // Spaces as thousands separators too (`+12 345 678.90`). `+1.4155552671`, a phone number
    // as WHOIS writes them, reads as a decimal: such a column is not refused.
    let decimal = || value.contains('.') && value.replace(' ', "").parse::<f64>().is_ok();
    let phone = || {
        ((value.starts_with('+') && crate::crypto::normalize_phone(value).is_ok())
            || (dialled == Dialled::Counted && dialled_number(value)))
            && !decimal()
    };
    (value.contains('@') && email()) || phone()
}

/// A character of a phone number written out: digits, spaces (no-break ones too), dashes,
/// `.`, brackets and `/` (after a German area code: `+49 151/12345678`).
fn in_phone_run(c: char) -> bool {
    c.is_ascii_digit() || c.is_whitespace() || is_dash(c) || matches!(c, '.' | '(' | ')' | '/')
}

/// Whether `text` starts with an international number dialled with `00` instead of `+`,
/// written in groups the way numbers are (the rest of the text after it ignored): `00`, the
/// country code (1 to 3 digits, spaces around it allowed), then a space or `(`
/// (`0044 20 7946 0958`, `00 33 6 12 34 56 78`, `0049 (30) 1234567`), or `.` or `-` between
/// three or more groups of at most 4 digits (`0033.1.42.68.53.00`, `0049-30-1234-567`). A
/// run of digits, or fewer, longer groups (`0012-345678`, `001-2345678-90`,
/// `00123-4567-89`) may be an account number or a code.
fn dialled_number(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("00").map(str::trim_start) else { return false };
    let code = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let Some(after) = rest.get(code..) else { return false };
    if !(1..=3).contains(&code) || rest.starts_with('0') {
        return false;
    }
    let number_len = after.find(|c: char| !in_phone_run(c)).unwrap_or(after.len());
    let number = after.get(..number_len).unwrap_or_default().trim_end_matches(|c: char| !c.is_ascii_digit());
    let spaced = after.starts_with(|c: char| c.is_whitespace() || c == '(');
    let groups: Vec<&str> = number.split(['.', '-']).skip(1).collect();
    let dotted = after.starts_with(['.', '-'])
        && groups.len() >= 3
        && groups.iter().all(|g| (1..=4).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()));
    let digits = rest.get(..code + number.len()).unwrap_or_default();
    (spaced || dotted) && crate::crypto::normalize_phone(&format!("+{}", digits.replace('/', " "))).is_ok()
}

/// Whether `word` is one of [`PII_LIKE_WORDS`], [`STRICT_WORDS`] or [`PLURAL_WORDS`].
fn pii_word(word: &str) -> bool {
    PII_LIKE_WORDS.contains(&word) || STRICT_WORDS.contains(&word) || PLURAL_WORDS.contains(&word)
}

/// A lower-case word run together from two (`customeremail`, `homephone`, `emailaddr`)
/// split in two: a [`pii_word`] after one of [`OWNER_WORDS`], or before one of
/// [`PII_TAIL_WORDS`]. Other words come back whole (`mailing`, `namespace`, `automobile`:
/// any PII word at either end was too many).
fn split_run_together(word: String) -> Vec<String> {
    if pii_word(&word) {
        return vec![word];
    }
    let split = word.char_indices().map(|(at, _)| at).skip(1).find(|&at| {
        let (head, tail) = word.split_at(at);
        (OWNER_WORDS.contains(&head) && pii_word(tail)) || (pii_word(head) && PII_TAIL_WORDS.contains(&tail))
    });
    match split {
        Some(at) => {
            let (head, tail) = word.split_at(at);
            vec![head.to_owned(), tail.to_owned()]
        }
        None => vec![word],
    }
}

/// Words that, run together before a [`pii_word`], name whose it is (`customeremail`,
/// `contactname`, `homephone`, `billingaddress`).
const OWNER_WORDS: &[&str] = &[
    "customer",
    "client",
    "contact",
    "home",
    "work",
    "office",
    "billing",
    "shipping",
    "delivery",
    "mailing",
    "postal",
    "personal",
    "private",
    "primary",
    "secondary",
    "main",
    "alt",
    "other",
    "user",
    "member",
    "guest",
    "patient",
    "owner",
    "buyer",
    "parent",
    "partner",
    "emergency",
    "business",
    "account",
    "cust",
    "my",
    "your",
    "first",
    "last",
    "full",
    "given",
    "family",
];

/// Words that, run together after a [`pii_word`], make it one too (`emailaddr`, `phoneno`).
const PII_TAIL_WORDS: &[&str] = &["addr", "address", "number", "num", "no", "nr", "line", "one", "two"];

fn pii_kind_name(kind: PiiKind) -> &'static str {
    match kind {
        PiiKind::Text => "text",
        PiiKind::Phone => "phone",
        PiiKind::Email => "email",
    }
}

fn kind_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Pii => "pii",
        FieldKind::Number => "number",
        FieldKind::Category => "category",
    }
}

/// A row as an upsert into `target` (a collection and its schema).
/// With the upsert, which of the row's [`takes_markers`] cells (by their order among those
/// columns) held a missing-value marker, as bits.
fn to_upsert(
    c: &Columns,
    target: (&str, &Schema),
    line: u64,
    row: Row<'_>,
) -> Result<(PendingOp, u128), Rejected> {
    let (collection, schema) = target;
    let get = |i: usize| row.get(i).unwrap_or("");
    let id = get(c.id).trim().to_owned();
    let reject =
        |column: &str, reason: String| Rejected { line, id: id.clone(), column: column.to_owned(), reason };
    if id.is_empty() {
        return Err(reject("id", "the id is missing".into()));
    }
    if let Err(e) = crate::model::record::validate_new_id(&id) {
        // An id that is not valid may be anything (a shifted PII cell — an address with a
        // line break —, a megabyte): the report keeps none of it, only its length.
        let reason = format!("{} (an id of {} bytes, not shown)", strip_context(&e), id.len());
        return Err(Rejected { line, id: String::new(), column: "id".into(), reason });
    }
    let coord = |i: usize, name: &str| -> Result<f64, Rejected> {
        let text = get(i).trim();
        if text.is_empty() {
            return Err(reject(name, format!("{name} is missing")));
        }
        // (The markers only: `--missing 0`, meant for a number column, is a place on the map.)
        if is_missing_marker(text) {
            return Err(reject(name, format!("{name} is missing ({text})")));
        }
        match parse_number(text, c.decimal_comma) {
            Some(v) if v.is_finite() => Ok(v),
            // Checked here, not by LatLon::new, so the error names the right column.
            Some(_) => Err(reject(name, "coordinates must be finite numbers".into())),
            None => Err(reject(
                name,
                format!(
                    "{} is not a number{}",
                    crate::error::quoted_value(text),
                    decimal_mark_hint(text, c.decimal_comma, false, false, c.comma_decimals_possible)
                ),
            )),
        }
    };
    let (lat, lon) = (coord(c.lat, "lat")?, coord(c.lon, "lon")?);
    let location = LatLon::new(lat, lon).map_err(|e| {
        let column = if matches!(&e, Error::InvalidCoordinate { reason, .. } if reason.starts_with("longitude")) {
            "lon"
        } else {
            "lat"
        };
        let reason = match e {
            Error::InvalidCoordinate { reason, .. } => reason.to_owned(),
            other => other.to_string(),
        };
        reject(column, reason)
    })?;
    let mut slots = Slots::new(id.clone(), location, schema);
    // The write path's checks, made here so that the error has a line and column (its
    // reason never contains a PII value), and so that a batched import refuses the row
    // before anything is committed.
    let refused = |e: Error| match e {
        Error::InvalidRecord { ref field, .. } => reject(field, strip_context(&e)),
        e => reject("-", e.to_string()),
    };
    let mut missing = 0u128;
    let mut ordinal = 0;
    for (i, name, kind, pii_kind) in &c.fields {
        let raw = get(*i);
        let takes = takes_markers(*kind, *pii_kind);
        ordinal += usize::from(takes);
        if raw.trim().is_empty() {
            continue;
        }
        if takes && no_value(raw.trim(), &c.missing) {
            // (Bit `ordinal - 1` of at most 128: 64 number and 64 PII fields.)
            missing |= 1u128.checked_shl(ordinal as u32 - 1).unwrap_or(0);
            continue;
        }
        match kind {
            // PII as written (a phone number or e-mail address is normalized).
            FieldKind::Pii => slots.pii(schema, name, Pii::new(raw.to_owned())),
            // Trimmed like every other cell: " gold" would be a second "gold" that a filter
            // misses and a group-by shows twice.
            FieldKind::Category => slots.category(schema, name, raw.trim().to_owned()),
            FieldKind::Number => {
                let text = raw.trim();
                match parse_money(text, c.decimal_comma, c.thousands, c.currency) {
                    // A number too small for an f64 reads as 0 (`1e-400` was stored as 0,
                    // silently: from a hands-on review).
                    Some(v) if v == 0.0 && number_of(text, true).split(['e', 'E']).next().is_some_and(|m| m.contains(|d: char| ('1'..='9').contains(&d))) => {
                        return Err(reject(
                            name,
                            format!(
                                "{} is too close to 0 for a number: it would be stored as 0 (the smallest is about 2.2e-308)",
                                crate::error::quoted_value(text)
                            ),
                        ));
                    }
                    // (One currency per column is checked once all rows are converted.)
                    Some(v) if v.is_finite() => slots.number(schema, name, v),
                    _ => {
                        // An amount's number (`$1,234.50`, `12,50 €`) gets the hints any
                        // number gets when it does not read, after one naming --currency when
                        // that is not given.
                        let money = super::money::split_money(text).is_some();
                        let number = number_of(text, true);
                        let number_hint =
                            if money && reads_as_number(number, c.decimal_comma, c.thousands, false) {
                                ""
                            } else if !c.thousands && parse_grouped(number, c.decimal_comma).is_some() {
                                thousands_hint(number, c.decimal_comma)
                            } else {
                                decimal_mark_hint(
                                    number,
                                    c.decimal_comma,
                                    c.thousands,
                                    true,
                                    c.comma_decimals_possible,
                                )
                            };
                        let currency_hint = if money && !c.currency {
                            " (an amount with a currency, which --currency reads)"
                        } else {
                            ""
                        };
                        let hint = format!("{currency_hint}{number_hint}");
                        return Err(reject(
                            name,
                            format!(
                                "{} is not a finite number{hint} ({}an empty cell or NA is no value)",
                                crate::error::quoted_value(text),
                                if c.existing {
                                    "the collection's field is a number; "
                                } else {
                                    "declare the column a category to import it as text; "
                                }
                            ),
                        ));
                    }
                }
            }
        }
        .map_err(refused)?;
    }
    slots.into_upsert(collection).map(|op| (op, missing)).map_err(refused)
}

fn strip_context(e: &Error) -> String {
    match e {
        Error::InvalidRecord { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}
