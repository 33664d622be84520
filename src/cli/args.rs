//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// geocrm: an embedded spatial database for customer records.
#[derive(Debug, Parser)]
#[command(name = "geocrm", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// Whether the command was asked for JSON output (`--json`): its errors are then printed
    /// as JSON too.
    #[must_use]
    pub fn wants_json(&self) -> bool {
        match self {
            Command::Bench { args } => args.json,
            Command::Import { db, .. }
            | Command::Near { db, .. }
            | Command::Radius { db, .. }
            | Command::Bbox { db, .. }
            | Command::Within { db, .. }
            | Command::Agg { db, .. }
            | Command::Get { db, .. }
            | Command::Delete { db, .. }
            | Command::Update { db, .. }
            | Command::Checkpoint { db, .. }
            | Command::Compact { db, .. }
            | Command::Verify { db, .. }
            | Command::Repair { db, .. }
            | Command::Stats { db, .. }
            | Command::Erase { db, .. }
            | Command::RotateKey { db, .. }
            | Command::ExportSubject { db, .. }
            | Command::Audit { db, .. }
            | Command::Duplicates { db, .. }
            | Command::Find { db, .. } => db.json,
            Command::Demo { .. } | Command::StressWriter { .. } => false,
        }
    }
}

/// Options every database command takes.
#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// Database directory.
    #[arg(long)]
    pub db: PathBuf,
    /// Collection name (default: customers). `stats` and `audit` show only this
    /// collection's figures or entries when it is given; `checkpoint`, `compact`, `verify`,
    /// `repair` and `rotate-key` work on every collection and refuse it.
    #[arg(long, value_name = "NAME")]
    pub collection: Option<String>,
    /// File holding the 32-byte master key (raw or 64 hex characters); otherwise the
    /// GEOCRM_KEY environment variable (64 hex characters) is used when set. Either is read,
    /// and must be a key, even for a command that needs none.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Who is reading PII, for the audit log: 1-256 bytes once the spaces around it are
    /// dropped, no control or invisible characters (default: GEOCRM_ACTOR when set and not
    /// empty, else the OS user).
    #[arg(long)]
    pub actor: Option<String>,
}

impl DbArgs {
    /// The collection a command works on: `--collection`, else `customers`.
    pub fn collection(&self) -> &str {
        self.collection.as_deref().unwrap_or("customers")
    }

    /// Refuses `--collection` for `command`, which works on the whole database (it was
    /// silently ignored).
    pub fn refuse_collection(&self, command: &str) -> geocrm::Result<()> {
        match &self.collection {
            Some(_) => Err(geocrm::Error::invalid_argument(
                "--collection",
                format!("`geocrm {command}` works on every collection of the database: drop --collection"),
            )),
            None => Ok(()),
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a synthetic CRM dataset, import it into a temporary database and run every
    /// query type with timings.
    Demo {
        /// Customers to generate.
        #[arg(long, default_value_t = 200_000)]
        records: usize,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Benchmark geocrm beside its peers (rstar, brute force; kiddo, geo-index and SQLite
    /// R*Tree with the `peers` feature) on seeded data: one Markdown table of ratios.
    Bench {
        #[command(flatten)]
        args: super::bench::BenchArgs,
    },
    /// Import customers from a CSV file with a header row (id, lat, lon required).
    Import {
        #[command(flatten)]
        db: DbArgs,
        /// The CSV file.
        file: PathBuf,
        /// Comma-separated PII columns (sealed, never stored in plaintext).
        #[arg(long, value_delimiter = ',')]
        pii: Vec<String>,
        /// Comma-separated PII columns holding phone numbers: validated, normalized to
        /// E.164 and blind-indexed (implies --pii for them).
        #[arg(long, value_delimiter = ',')]
        phone: Vec<String>,
        /// Comma-separated PII columns holding e-mail addresses: validated, normalized and
        /// blind-indexed (implies --pii for them).
        #[arg(long, value_delimiter = ',')]
        email: Vec<String>,
        /// Comma-separated columns to force to number attributes.
        #[arg(long, value_delimiter = ',')]
        numbers: Vec<String>,
        /// Comma-separated columns to force to category attributes.
        #[arg(long, value_delimiter = ',')]
        categories: Vec<String>,
        /// Take a header column under another name: `--rename "First Name=first_name"`,
        /// `--rename Latitude=lat` (repeat the flag). The other flags name columns by their
        /// new names.
        #[arg(long, value_name = "COLUMN=NAME")]
        rename: Vec<String>,
        /// The field separator: one ASCII character (`;` for a spreadsheet's export where
        /// the comma is the decimal mark, `|`), or `tab`. Default: the one a spreadsheet's
        /// `sep=;` first line names (that line is read off), else a comma.
        #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
        delimiter: Option<u8>,
        /// Numbers and coordinates are written with a decimal comma (`48,8566`); a number
        /// with a `.` is then refused (`1.500` may be fifteen hundred), unless --thousands
        /// reads the `.` as a thousands separator.
        #[arg(long)]
        decimal_comma: bool,
        /// Number columns may group their digits in thousands: `1,500`, `1,234.50`, `12 000`
        /// (with --decimal-comma, `1.234,50`). A cell that reads as a number without it keeps
        /// that reading. Not the coordinates.
        #[arg(long)]
        thousands: bool,
        /// Number columns may hold amounts with a currency: `$1234.50`, `12 €`, `EUR 12`,
        /// `-$5`, an accountant's `($5.00)`, `$ -` for zero. The currency is not stored: in a
        /// file, a column's amounts must all be in its first amount's (another is a bad row),
        /// and a later file's in another currency must not go into the same column. With
        /// --thousands for `$1,234.50`. Not the coordinates.
        #[arg(long)]
        currency: bool,
        /// Comma-separated cells that mean no value in number, phone and e-mail columns,
        /// besides NA, N/A, #N/A, NULL, NaN, None…: `--missing "-,unknown"`, `--missing -999`.
        #[arg(long, value_delimiter = ',', value_name = "VALUES", allow_hyphen_values = true)]
        missing: Vec<String>,
        /// Comma-separated columns to leave out (by their names after --rename); `--ignore ""`
        /// leaves out columns without a name that hold values (empty ones always are).
        #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
        ignore: Vec<String>,
        /// Import the good rows and write the rejected ones (line, id, column, reason) to
        /// this CSV file instead of aborting.
        #[arg(long, value_name = "REJECTS.csv")]
        skip_invalid: Option<PathBuf>,
    },
    /// The k nearest customers by great-circle distance.
    Near {
        #[command(flatten)]
        db: DbArgs,
        /// Latitude.
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        /// Longitude.
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        /// How many (1 to 1,000,000).
        #[arg(
            short = 'k',
            long,
            default_value_t = 10,
            allow_hyphen_values = true,
            value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=geocrm::db::MAX_K as u64)
        )]
        k: usize,
        /// Attribute filter, e.g. "tier in ('gold','platinum') and lifetime_value >= 1000":
        /// =, != (<>), <, <=, >, >=, [not] in (…), [not] between X and Y, is [not] missing
        /// (is [not] null), combined with and, or, not and parentheses; an empty filter
        /// matches every record. As in SQL, a comparison on an attribute a record lacks is
        /// unknown, `not` of it too, and only what is true matches: "not tier = 'gold'"
        /// leaves out records without a tier. Unquoted words are text ("tier = gold");
        /// personal data (PII) fields cannot be filtered (`find` looks up a phone or e-mail).
        #[arg(long = "where")]
        filter: Option<String>,
    },
    /// Customers within a radius, nearest first: id, latitude, longitude, distance.
    Radius {
        #[command(flatten)]
        db: DbArgs,
        /// Latitude of the centre.
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        /// Longitude of the centre.
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        /// Radius in metres (`--metres` works too).
        #[arg(long, visible_alias = "metres", allow_hyphen_values = true)]
        meters: f64,
        /// Attribute filter (see `near --help`).
        #[arg(long = "where")]
        filter: Option<String>,
        /// Print only the count.
        #[arg(long)]
        count: bool,
    },
    /// Customers inside a bounding box (west > east crosses the antimeridian): id, latitude,
    /// longitude.
    Bbox {
        #[command(flatten)]
        db: DbArgs,
        /// Southern latitude.
        #[arg(long, allow_hyphen_values = true)]
        south: f64,
        /// Western longitude.
        #[arg(long, allow_hyphen_values = true)]
        west: f64,
        /// Northern latitude.
        #[arg(long, allow_hyphen_values = true)]
        north: f64,
        /// Eastern longitude.
        #[arg(long, allow_hyphen_values = true)]
        east: f64,
        /// Attribute filter (see `near --help`).
        #[arg(long = "where")]
        filter: Option<String>,
        /// Print only the count.
        #[arg(long)]
        count: bool,
    },
    /// Customers inside a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection: id,
    /// latitude, longitude.
    Within {
        #[command(flatten)]
        db: DbArgs,
        /// The GeoJSON file.
        #[arg(long)]
        geojson: PathBuf,
        /// Attribute filter (see `near --help`).
        #[arg(long = "where")]
        filter: Option<String>,
        /// Print only the count.
        #[arg(long)]
        count: bool,
    },
    /// Count, sum, avg, min and max grouped by H3 cell or category.
    Agg {
        #[command(flatten)]
        db: DbArgs,
        /// `h3:RES` (0-15), `attr:NAME` (a category) or `all`. An H3 group is the resolution-RES
        /// ancestor of each record's resolution-15 cell (the H3 hierarchy: counts nest exactly
        /// across resolutions), which near cell edges can differ from the cell computed directly
        /// from the point at RES.
        #[arg(long)]
        by: String,
        /// Number fields to sum (repeat the flag, or separate with commas).
        #[arg(long, value_delimiter = ',')]
        sum: Vec<String>,
        /// Number fields to average (repeat the flag, or separate with commas).
        #[arg(long, value_delimiter = ',')]
        avg: Vec<String>,
        /// Number fields to take the minimum of (repeat the flag, or separate with commas).
        #[arg(long, value_delimiter = ',')]
        min: Vec<String>,
        /// Number fields to take the maximum of (repeat the flag, or separate with commas).
        #[arg(long, value_delimiter = ',')]
        max: Vec<String>,
        /// Only customers inside this GeoJSON (multi)polygon.
        #[arg(long)]
        within: Option<PathBuf>,
        /// Attribute filter (see `near --help`).
        #[arg(long = "where")]
        filter: Option<String>,
    },
    /// One customer: public fields, and PII when a key is given with --reveal.
    Get {
        #[command(flatten)]
        db: DbArgs,
        /// Record id.
        #[arg(long)]
        id: String,
        /// Decrypt and print PII (needs the key).
        #[arg(long)]
        reveal: bool,
    },
    /// Delete one customer.
    Delete {
        #[command(flatten)]
        db: DbArgs,
        /// Record id.
        #[arg(long)]
        id: String,
    },
    /// Change some fields of one customer and keep the others, its PII included (copied
    /// sealed, as stored: no key is needed).
    Update {
        #[command(flatten)]
        db: DbArgs,
        /// Record id.
        #[arg(long)]
        id: String,
        /// New latitude (with --lon).
        #[arg(long, requires = "lon", allow_hyphen_values = true)]
        lat: Option<f64>,
        /// New longitude (with --lat).
        #[arg(long, requires = "lat", allow_hyphen_values = true)]
        lon: Option<f64>,
        /// A number or category attribute to set, as FIELD=VALUE (repeatable).
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// A field to unset: a number, a category or a PII field (repeatable).
        #[arg(long = "clear", value_name = "FIELD")]
        clear: Vec<String>,
    },
    /// Write every live record into memory-mapped checkpoint files now, so the next open
    /// replays nothing.
    Checkpoint {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Rewrite the log keeping only live records (superseded, deleted and erased ones go,
    /// ciphertext included), then checkpoint.
    Compact {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Check every file of the database (log, checkpoints, manifest, keystore); exits with
    /// status 3 if anything is damaged, 1 if it could not check (a locked database, say).
    Verify {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Salvage a database that refuses to open because acknowledged data is damaged: cut
    /// damaged files to their valid prefix, rebuild a lost manifest or segment header, and
    /// report every byte range and record dropped. Copy the directory first to keep the
    /// damaged bytes.
    ///
    /// Exit status: 0 when no acknowledged data was lost (nothing to repair, or only files
    /// rebuilt, a torn tail of a write never acknowledged cut, records rebuilt whole from the
    /// checkpoint, audit entries cut); 4 when the repair dropped acknowledged data — commits,
    /// the operations of a damaged frame, synced log bytes or segments, the PII of records —
    /// or cannot rule out that it did (a log segment found missing that nothing records);
    /// `--json` then has `"acknowledged_data_lost": true`; 1 when it could not repair (a
    /// locked database, damage it does not salvage, an I/O error). `--dry-run` exits as the
    /// repair would.
    Repair {
        #[command(flatten)]
        db: DbArgs,
        /// Only report what would be done (works on an in-memory copy; nothing changes).
        #[arg(long)]
        dry_run: bool,
    },
    /// Collections, record counts, log size and recovery information.
    Stats {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Right to erasure: remove customers and destroy their data keys (one commit, at most
    /// one new checkpoint); prints a receipt per id.
    Erase {
        #[command(flatten)]
        db: DbArgs,
        /// Record id (repeat `--id` to erase several).
        #[arg(long, required = true)]
        id: Vec<String>,
    },
    /// Key rotation: re-wrap every data key under a new master key (one atomic keystore
    /// rewrite, no log rewrite); the current key comes from --key-file or GEOCRM_KEY.
    /// Afterwards the old key opens nothing in this database (an old copy of the keystore
    /// still opens with it: destroy both).
    RotateKey {
        #[command(flatten)]
        db: DbArgs,
        /// The new master key: a file of 32 raw bytes or 64 hex characters.
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// Subject access: everything stored about a customer — the live record and the earlier
    /// versions, deletions and erasures the log still holds until `compact`, and who read its
    /// PII — PII decrypted (needs the key; reads the whole log).
    ExportSubject {
        #[command(flatten)]
        db: DbArgs,
        /// Record id.
        #[arg(long)]
        id: String,
    },
    /// The audit log of PII reads: who revealed or exported which records' fields, when.
    Audit {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Records that look like the same customer: same phone, same e-mail, or same name with
    /// each record within 50 m of another of its group (needs the key; recorded in the audit
    /// log).
    Duplicates {
        #[command(flatten)]
        db: DbArgs,
        /// Comma-separated text PII fields whose values, compared field by field, are the
        /// name (`first_name,last_name`; default `name` when the collection has it).
        #[arg(long, value_delimiter = ',', value_name = "FIELDS")]
        name_fields: Vec<String>,
    },
    /// Ids of customers with a phone number or e-mail address (exact match after
    /// normalization, through the blind index; needs the key; recorded in the audit log).
    #[command(group(clap::ArgGroup::new("lookup").required(true).args(["phone", "email"])))]
    Find {
        #[command(flatten)]
        db: DbArgs,
        /// Phone number (E.164, spaces and punctuation allowed); `-` reads it from the first
        /// line of standard input (out of the shell history and the process list).
        #[arg(long)]
        phone: Option<String>,
        /// E-mail address; `-` reads it from standard input.
        #[arg(long)]
        email: Option<String>,
    },
    /// Test support for the kill -9 suite: commits numbered records forever, printing
    /// `ack N` after commit N returns (durable). Not for production use.
    #[command(hide = true)]
    StressWriter {
        /// Database directory.
        #[arg(long)]
        db: std::path::PathBuf,
        /// Stop after this many commits (default: run until killed).
        #[arg(long)]
        commits: Option<u64>,
    },
}

/// `--delimiter`: one ASCII character, or `tab` (the import says which characters cannot
/// separate fields).
fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text.as_bytes() {
        b"tab" | b"\\t" | b"\t" => Ok(b'\t'),
        &[b] if b.is_ascii() => Ok(b),
        _ => Err("expected one ASCII character, or `tab`".to_owned()),
    }
}
