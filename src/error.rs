//! The one error type of geocrm.
//!
//! Every variant carries the context a user needs to act: the file and byte offset of
//! corruption, the CSV line and column of a bad row, the field of a bad record. PII never
//! appears in an error: record ids and field names do, field values do not.

use std::path::PathBuf;

/// Shorthand for `Result<T, geocrm::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in geocrm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A latitude/longitude pair outside WGS84 ranges or not finite.
    #[error("invalid coordinate (lat {lat}, lon {lon}): {reason}")]
    InvalidCoordinate {
        /// The latitude given.
        lat: f64,
        /// The longitude given.
        lon: f64,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A polygon or multipolygon that cannot be used for queries.
    #[error("invalid polygon: {reason}")]
    InvalidPolygon {
        /// What is wrong and where (polygon, ring and vertex numbers).
        reason: String,
    },
    /// GeoJSON input that is not a Polygon, MultiPolygon, Feature or FeatureCollection of them.
    #[error("invalid GeoJSON: {reason}")]
    InvalidGeoJson {
        /// What is wrong.
        reason: String,
    },
    /// A bad row in a CSV import.
    #[error("line {line}, column {column}: {reason}")]
    Csv {
        /// 1-based line number in the file (the header's own line: 1, unless a spreadsheet's
        /// `sep=;` line or blank lines come first).
        line: u64,
        /// Column name (or number when the header itself is bad).
        column: String,
        /// Why the row was rejected.
        reason: String,
    },
    /// An operating-system I/O error, with the path and the operation that failed.
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operation (open, write, fsync, rename, …).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file whose bytes fail validation: bad magic, checksum, length or structure.
    #[error("corrupt file {} at byte offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first damaged structure.
        offset: u64,
        /// What failed.
        reason: String,
    },
    /// A file written by a format version this build does not read.
    #[error("{} has format version {found}; this build reads version {supported}", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Version found in the file.
        found: u16,
        /// Version this build understands.
        supported: u16,
    },
    /// Another process (or another `Database` in this process) holds the write lock.
    #[error("database {} is locked by another writer; close it first", path.display())]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// A write — a commit, checkpoint, erasure, key rotation, sync or any file change — to a
    /// database opened with [`Options::read_only`](crate::Options::read_only).
    #[error("database opened read-only: {op} on {} refused", path.display())]
    ReadOnly {
        /// The database directory, or the file the refused change was for.
        path: PathBuf,
        /// What was refused (commit, create, rename, …).
        op: &'static str,
    },
    /// A previous write or fsync failed; the database refuses writes until it is reopened.
    #[error(
        "database refuses writes after an earlier failure ({reason}); reopen it to recover from the log"
    )]
    Poisoned {
        /// The failure that poisoned the database.
        reason: String,
    },
    /// No collection of that name.
    #[error("no collection named {name:?}")]
    UnknownCollection {
        /// The name asked for.
        name: String,
    },
    /// `create_collection` with a name that exists.
    #[error("collection {name:?} already exists")]
    CollectionExists {
        /// The name.
        name: String,
    },
    /// A record or schema that does not fit its collection.
    #[error("record {id:?}, field {field:?}: {reason}")]
    InvalidRecord {
        /// Record id (empty when the id itself is the problem).
        id: String,
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
    /// A schema that cannot be created.
    #[error("invalid schema: {reason}")]
    InvalidSchema {
        /// Why.
        reason: String,
    },
    /// A `--where` filter that does not parse or names unknown fields.
    #[error("invalid filter {} at character {position}: {reason}", filter_excerpt(.expr, *.position))]
    InvalidFilter {
        /// The filter text (a parse error, with PII-like values masked), or — for an error
        /// found against the schema — the field it is about (masked when unknown: it may be
        /// a value typed where a field belongs). The message shows it whole up to 200
        /// characters, else the 160 around `position`.
        expr: String,
        /// 0-based character position of the problem in `expr` (0 for schema errors).
        position: usize,
        /// Why.
        reason: String,
    },
    /// An argument out of its range (k = 0, H3 resolution 16, negative radius…).
    #[error("invalid argument {name}: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// PII was to be read or written (or looked up by phone or e-mail) but no key was
    /// supplied.
    #[error("PII needs a key, to read it or to write it: open the database with one (Options::key; in the CLI, --key-file or GEOCRM_KEY)")]
    MissingKey,
    /// The supplied key is not the database's master key.
    #[error("the supplied key is not this database's master key")]
    WrongKey,
    /// A key file or key string that cannot be used.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// Why.
        reason: String,
    },
    /// A sealed PII value failed authentication (moved, tampered with, or wrong key).
    #[error("cannot decrypt field {field:?} of record {id:?} in {collection:?}: authentication failed")]
    Decrypt {
        /// Collection.
        collection: String,
        /// Record id.
        id: String,
        /// Field name.
        field: String,
    },
    /// The calling thread holds a [`Snapshot`](crate::Snapshot) of the database and asked
    /// for an operation that waits for snapshots to be released — a commit, checkpoint,
    /// compaction or erasure — or for the writer lock, which a commit waiting for them holds
    /// — a key rotation, sync or verify: it could wait for itself forever. Drop the snapshot
    /// (and its readers) first. Nothing was done (a refused batch is consumed: build it
    /// again). Only the calling thread's snapshots are known: a snapshot holder that waits
    /// for another thread doing these still waits forever.
    #[error("{operation} would wait for the snapshot this thread holds: drop the Snapshot first")]
    SnapshotHeld {
        /// What was asked for, e.g. "commit".
        operation: &'static str,
    },
    /// The record has been erased; its PII is unrecoverable.
    #[error("record {id:?} in {collection:?} was erased")]
    Erased {
        /// Collection.
        collection: String,
        /// Record id.
        id: String,
    },
    /// No record has this id (`reveal`, `export_subject`; `get` answers `None`): told
    /// apart from bad input (`InvalidRecord`), so a script can tell "no such customer".
    #[error("no such record {id:?} in {collection:?}")]
    NotFound {
        /// Collection.
        collection: String,
        /// Record id.
        id: String,
    },
    /// The directory holds no geocrm database (no `MANIFEST`, and nothing of one) and the
    /// open was not to create one: told apart from damage (`Corrupt`), so a mistyped `--db`
    /// raises no corruption alarm (from the CLI review).
    #[error("{} is not a geocrm database (it has no MANIFEST)", dir.display())]
    NotADatabase {
        /// The directory.
        dir: PathBuf,
    },
}

impl Error {
    /// The variant's name in snake case (`"corrupt"`, `"invalid_filter"`, …): a stable,
    /// machine-readable kind for logs and JSON output (`geocrm … --json` prints it).
    ///
    /// ```
    /// let e = geocrm::Error::invalid_argument("radius", "must be positive");
    /// assert_eq!(e.kind(), "invalid_argument");
    /// assert_eq!(geocrm::Error::MissingKey.kind(), "missing_key");
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidCoordinate { .. } => "invalid_coordinate",
            Error::InvalidPolygon { .. } => "invalid_polygon",
            Error::InvalidGeoJson { .. } => "invalid_geo_json",
            Error::Csv { .. } => "csv",
            Error::Io { .. } => "io",
            Error::Corrupt { .. } => "corrupt",
            Error::UnsupportedVersion { .. } => "unsupported_version",
            Error::Locked { .. } => "locked",
            Error::ReadOnly { .. } => "read_only",
            Error::Poisoned { .. } => "poisoned",
            Error::UnknownCollection { .. } => "unknown_collection",
            Error::CollectionExists { .. } => "collection_exists",
            Error::InvalidRecord { .. } => "invalid_record",
            Error::InvalidSchema { .. } => "invalid_schema",
            Error::InvalidFilter { .. } => "invalid_filter",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::MissingKey => "missing_key",
            Error::WrongKey => "wrong_key",
            Error::InvalidKey { .. } => "invalid_key",
            Error::Decrypt { .. } => "decrypt",
            Error::SnapshotHeld { .. } => "snapshot_held",
            Error::Erased { .. } => "erased",
            Error::NotFound { .. } => "not_found",
            Error::NotADatabase { .. } => "not_a_database",
        }
    }

    /// Builds an [`Error::Io`] from an `io::Error`, the path and the operation.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), op, source }
    }

    /// Builds an [`Error::Corrupt`].
    pub fn corrupt(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt { file: file.into(), offset, reason: reason.into() }
    }

    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid_argument(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { name, reason: reason.into() }
    }
}

/// Characters of a bad value (a CSV cell, a filter's value) quoted in an error: enough to
/// find it, not a whole value that shifted columns may have put there (a name in a number
/// column, a filter value meant for another field).
pub(crate) const CELL_SHOWN: usize = 24;

/// `text` quoted, cut to [`CELL_SHOWN`] characters (`…` marks a cut) — when it is surely
/// no one's data: what parses as a float (`inf`, `1e999`) or a short mistyped number (at
/// most 6 characters with a digit, at most two letters, at most one `.` or `,`, no space
/// and no `-`, `/`, `(`, `)` past a leading sign: `12x`, `1,5` — not `1.2.90`, a date).
/// Anything else may be personal data in a number or coordinate column (a name, a phone
/// number, a date of birth): only its length is told — and so for a number of 8 digits or
/// more after a `+` or `00`, which may be a phone number with a stray `.` or `,`.
/// A filter as an error shows it: quoted whole up to 200 characters, else the 160 around
/// `position`, with `…` for what is left out (a 110 KB filter was printed whole).
fn filter_excerpt(expr: &str, position: usize) -> String {
    const WHOLE: usize = 200;
    const SIDE: usize = 80;
    let len = expr.chars().count();
    if len <= WHOLE {
        return format!("{expr:?}");
    }
    let start = position.saturating_sub(SIDE).min(len.saturating_sub(2 * SIDE));
    let window: String = expr.chars().skip(start).take(2 * SIDE).collect();
    let (before, after) = (if start > 0 { "…" } else { "" }, if start + 2 * SIDE < len { "…" } else { "" });
    format!("{before}{window:?}{after} (of {len} characters)")
}

pub(crate) fn quoted_value(text: &str) -> String {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let typo = text.chars().count() <= 6
        && body.chars().any(|c| c.is_ascii_digit())
        && body.chars().filter(|c| c.is_alphabetic()).count() <= 2
        && !body.chars().any(|c| c.is_whitespace() || "-/()".contains(c))
        && body.chars().filter(|&c| c == '.' || c == ',').count() <= 1;
    // (A number with a decimal comma is a number too: `48,8566` was hidden as if personal.)
    let number = |t: &str| t.parse::<f64>().is_ok();
    // A phone number with a stray `.` or `,` parses as a number (`+33.142685300`,
    // `0033,142685300`: shown in errors and rejects files; from a hands-on review).
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let phone_like = digits >= 8 && (text.starts_with('+') || text.starts_with("00"));
    // A dash or question mark for no value is no one's data (`-` was hidden as "a text
    // value of 1 character"; from a hands-on review).
    // (ASCII marks only: a symbol — ♀, a flag, ✝ — may be someone's special-category data.)
    let marks =
        text.chars().count() <= 3 && text.chars().all(|c| c.is_ascii_punctuation() || "–—".contains(c));
    if phone_like
        || !(typo
            || marks
            || number(text)
            || (text.matches(',').count() == 1 && number(&text.replacen(',', ".", 1))))
    {
        let n = text.chars().count();
        return format!(
            "a text value of {n} character{} (not shown: it may be personal data)",
            if n == 1 { "" } else { "s" }
        );
    }
    let mut shown: String = text.chars().take(CELL_SHOWN).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}
