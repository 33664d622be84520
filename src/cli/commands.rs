//! Running each subcommand.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal};
use std::path::Path;

use geocrm::crypto::{KdfParams, KeyFile, KeyProvider, RawKey};
use geocrm::geo::{parse_geojson, BoundingBox, PreparedRegion};
use geocrm::import::{import_csv, ImportOptions};
use geocrm::query::{GroupBy, Scope};
use geocrm::{CollectionReader, Database, Error, Filter, LatLon, Options, Result};
use serde_json::{json, Map, Value};

use super::args::{Command, DbArgs};

/// Opens the database; with `with_key`, the key from --key-file or GEOCRM_KEY (if any).
pub(crate) fn open(args: &DbArgs, with_key: bool) -> Result<Database> {
    open_or_create(args, with_key, false)
}

/// Opens the database read-only, without a key ([`Options::read_only`]): for the commands
/// that only read locations, attributes, statistics or the audit log. They take no lock, so
/// they work beside an application that holds the database, and change nothing (a torn
/// log tail is left for the next writable open to cut).
pub(crate) fn open_read(args: &DbArgs) -> Result<Database> {
    Database::open(&args.db, options(args, false, false)?.read_only(true))
}

fn open_or_create(args: &DbArgs, with_key: bool, create: bool) -> Result<Database> {
    Database::open(&args.db, options(args, with_key, create)?)
}

fn options(args: &DbArgs, with_key: bool, create: bool) -> Result<Options> {
    // A command runs once per process: checking the checkpoint files whole at open costs a
    // few milliseconds per million records, and a damaged one is then rebuilt from the log
    // rather than failing the command.
    let mut options = Options::new().create_if_missing(create).verify_checkpoints_at_open(true);
    // An empty or blank GEOCRM_ACTOR is unset (as an empty USER is for the default actor).
    let from_env = || std::env::var("GEOCRM_ACTOR").ok().filter(|a| !a.trim().is_empty());
    // (`Options::actor` drops the spaces around it.)
    if let Some(actor) = args.actor.clone().or_else(from_env) {
        options = options.actor(actor);
    }
    // A key a command does not need is read all the same, so that a mistyped or missing key
    // file, or a malformed GEOCRM_KEY, in a script does not pass unseen until a command needs
    // it (from a hands-on review). It is not checked against the database then: an open
    // with it could create a keystore.
    if let Some(path) = &args.key_file {
        warn_if_others_can_read(path, "--key-file");
        if with_key {
            options = options.key(KeyFile::new(path));
        } else {
            RawKey::from_key_file(path)?;
        }
    } else if let Some(hex) = std::env::var("GEOCRM_KEY").ok().filter(|k| !k.trim().is_empty()) {
        // An empty or blank GEOCRM_KEY is unset, like GEOCRM_ACTOR (it was a hex error).
        let key = RawKey::from_hex(hex.trim())?;
        if with_key {
            options = options.key(key);
        }
    }
    Ok(options)
}

/// A warning on standard error when a key file is a regular file other users may read or
/// write (it was taken silently; from a hands-on review). A pipe or a device is left alone.
fn warn_if_others_can_read(path: &Path, flag: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: {flag} {} can be read or written by users other than its owner (mode {:o}): \
                 `chmod 600` it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
}

/// The `--where` filter, checked against the collection's fields (an error points into the text).
fn filter(text: Option<&String>, coll: &CollectionReader<'_>) -> Result<Filter> {
    text.map_or(Ok(Filter::All), |t| Filter::parse_for(t, coll.schema()))
}

fn point(lat: f64, lon: f64) -> Result<LatLon> {
    LatLon::new(lat, lon)
}

/// The largest GeoJSON file a query reads (parsing takes about 14 bytes of memory per byte
/// of file: 64 MiB needs about 0.9 GiB). A country's detailed outline is a few MiB.
const MAX_GEOJSON_BYTES: u64 = 64 << 20;

fn region(path: &Path) -> Result<PreparedRegion> {
    let file = File::open(path).map_err(|e| Error::io("read GeoJSON", path, e))?;
    let mut bytes = Vec::new();
    // One byte over the limit tells a file at the limit from a larger one. Bytes first: a
    // character cut at the limit is not the file's fault.
    io::Read::read_to_end(&mut io::Read::take(file, MAX_GEOJSON_BYTES + 1), &mut bytes)
        .map_err(|e| Error::io("read GeoJSON", path, e))?;
    if bytes.len() as u64 > MAX_GEOJSON_BYTES {
        return Err(Error::InvalidGeoJson {
            reason: format!("{} is larger than {} MiB", path.display(), MAX_GEOJSON_BYTES >> 20),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let invalid = std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error());
        Error::io("read GeoJSON", path, invalid)
    })?;
    let region = parse_geojson(&text)?;
    if let Some((a, b)) = region.long_way_round_edge() {
        // Planar, as GeoJSON and PostGIS `geometry` read it: said, not changed (from a
        // hands-on review, where a polygon around Fiji matched the Atlantic).
        eprintln!(
            "warning: the edge from ({}, {}) to ({}, {}) [lon, lat] spans more than 180° of longitude: \
             edges are straight in longitude and latitude, so it goes the long way round the globe; \
             cut a polygon that crosses the antimeridian in two at ±180 (RFC 7946 §3.1.9)",
            a[0], a[1], b[0], b[1]
        );
    }
    Ok(PreparedRegion::new(&region))
}

pub(crate) fn print_json(v: &Value) {
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// An error's message, then each cause the message does not already end with, on a
/// `caused by:` line of its own.
pub fn error_message(e: &Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let cause = s.to_string();
        if !message.ends_with(&cause) {
            message.push_str(&format!("\n  caused by: {cause}"));
        }
        source = s.source();
    }
    message
}

/// An error as the `--json` output gives it: `{"kind", "message"}`.
pub fn error_json(e: &Error) -> Value {
    json!({ "kind": e.kind(), "message": error_message(e) })
}

/// Whether a command has printed its JSON document: an error it returns afterwards (`verify`
/// finding damage) is then in that document, and `main` must not print a second one.
pub static JSON_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by `verify` when it found damage: the tool then exits with [`DAMAGED_EXIT`], not 1
/// (a script can tell a damaged database from one it could not check — locked, say).
pub static FOUND_DAMAGE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The exit status of `verify` finding damage.
pub const DAMAGED_EXIT: u8 = 3;

/// Set by `repair` (a dry run too) when it dropped acknowledged data, or cannot rule out
/// that it did: the tool then exits with [`DATA_LOST_EXIT`], not 0 (a script could not
/// tell "nothing to repair" from "dropped every record"; from a hands-on review).
pub static DATA_LOST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The exit status of a `repair` that dropped acknowledged data.
pub const DATA_LOST_EXIT: u8 = 4;

/// Runs a command other than `demo`.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Demo { records, seed } => super::demo::run(records, seed),
        Command::Bench { args } => super::bench::run(&args),
        Command::Import {
            db,
            file,
            pii,
            phone,
            email,
            numbers,
            categories,
            skip_invalid,
            rename,
            delimiter,
            decimal_comma,
            thousands,
            currency,
            missing,
            ignore,
        } => import(
            &db,
            &file,
            ImportOptions::new()
                .pii(pii)
                .phones(phone)
                .emails(email)
                .numbers(numbers)
                .categories(categories)
                .skip_invalid(skip_invalid.is_some())
                .renames(
                    rename
                        .iter()
                        .map(|r| match r.rsplit_once('=') {
                            Some((from, to)) => Ok((from.to_owned(), to.to_owned())),
                            None => {
                                Err(Error::invalid_argument("rename", format!("{r:?} is not COLUMN=NAME")))
                            }
                        })
                        .collect::<Result<_>>()?,
                )
                .delimiter(delimiter)
                .decimal_comma(decimal_comma)
                .thousands(thousands)
                .currency(currency)
                .missing(missing)
                .ignore(ignore),
            skip_invalid.as_deref(),
        ),
        Command::Near { db, lat, lon, k, filter: f } => {
            let database = open_read(&db)?;
            let snap = database.read();
            let coll = snap.collection(db.collection())?;
            let hits = coll.nearest(point(lat, lon)?, k, &filter(f.as_ref(), &coll)?)?;
            print_neighbors(&db, false, hits);
            Ok(())
        }
        Command::Radius { db, lat, lon, meters, filter: f, count } => {
            let database = open_read(&db)?;
            let snap = database.read();
            let coll = snap.collection(db.collection())?;
            let hits = coll
                .within_radius(point(lat, lon)?, meters, &filter(f.as_ref(), &coll)?)
                .map_err(|e| as_flags(e, &[("metres", "meters")]))?;
            print_neighbors(&db, count, hits);
            Ok(())
        }
        Command::Bbox { db, south, west, north, east, filter: f, count } => {
            let database = open_read(&db)?;
            let snap = database.read();
            let bbox = BoundingBox::new(south, west, north, east)?;
            let coll = snap.collection(db.collection())?;
            let hits = coll.within_bbox(&bbox, &filter(f.as_ref(), &coll)?)?;
            print_hits(&db, count, hits);
            Ok(())
        }
        Command::Within { db, geojson, filter: f, count } => {
            let region = region(&geojson)?;
            let database = open_read(&db)?;
            let snap = database.read();
            let coll = snap.collection(db.collection())?;
            let hits = coll.within_region(&region, &filter(f.as_ref(), &coll)?)?;
            print_hits(&db, count, hits);
            Ok(())
        }
        Command::Agg { db, by, sum, avg, min, max, within, filter: f } => {
            agg(&db, &by, [sum, avg, min, max], within.as_deref(), f.as_ref())
        }
        Command::Get { db, id, reveal } => get(&db, &id, reveal),
        Command::Delete { db, id } => {
            // An id no record can have ("") is a mistake, not an absent record.
            geocrm::model::validate_id(&id)?;
            let database = open(&db, false)?;
            // From the indexes: a record whose log frame is damaged can still be deleted.
            let existed = database.read().collection(db.collection())?.contains(&id)?;
            // An absent id (a mistyped one: an e-mail address typed where the id goes) is not
            // written into the log as a tombstone: this process holds the write lock, so it
            // cannot appear in between (from the CLI review).
            let lsn = if existed {
                let mut batch = database.begin_write();
                batch.delete(db.collection(), &id)?;
                Some(batch.commit()?.first_lsn)
            } else {
                None
            };
            if db.json {
                print_json(&json!({"id": id, "deleted": existed, "lsn": lsn}));
            } else {
                println!(
                    "{}",
                    if existed {
                        format!("deleted {}", id_shown(&id))
                    } else {
                        format!("{} was not present", id_shown(&id))
                    }
                );
            }
            Ok(())
        }
        Command::Update { db, id, lat, lon, set, clear } => update(&db, &id, lat.zip(lon), &set, &clear),
        Command::Stats { db } => stats(&db),
        Command::Checkpoint { db } => db.refuse_collection("checkpoint").and_then(|()| maintain(&db, false)),
        Command::Compact { db } => db.refuse_collection("compact").and_then(|()| maintain(&db, true)),
        Command::Verify { db } => db.refuse_collection("verify").and_then(|()| verify(&db)),
        Command::Repair { db, dry_run } => db.refuse_collection("repair").and_then(|()| repair(&db, dry_run)),
        Command::RotateKey { db, new_key_file } => {
            db.refuse_collection("rotate-key")?;
            // The new key file is read once (it may be a pipe), first, before the open (which
            // creates a keystore under the current key when there is none): a missing or
            // unreadable one is a plain error naming the option, not a failed rotation (from
            // the CLI review).
            warn_if_others_can_read(&new_key_file, "--new-key-file");
            let new_key = RawKey::from_key_file(&new_key_file).map_err(|e| match e {
                Error::Io { source, .. } => Error::io("read --new-key-file", &new_key_file, source),
                other => other,
            })?;
            // A placeholder is refused here too, before the open could create a keystore for a
            // rotation that would then refuse it.
            new_key.master_key(&KdfParams::new_random())?.refuse_placeholder()?;
            let database = open(&db, true)?;
            // Without a keystore yet (nothing was stored under a key), the open created one
            // under the current key: that key was checked against nothing.
            let had_keystore = !database.created_keystore();
            if let Err(e) = database.rotate_master_key(&new_key) {
                if !had_keystore {
                    eprintln!(
                        "note: the database had no keystore (nothing was stored under a key yet): the open created one under the current key, which was checked against nothing"
                    );
                }
                if matches!(e, Error::Io { .. } | Error::Poisoned { .. }) {
                    // A failure at the keystore's rename or the directory's fsync comes after
                    // the new file may be in place: which key opens it now is asked, not
                    // guessed (from the privacy review).
                    drop(database);
                    let new_key = || Database::open(&db.db, Options::new().key(new_key.clone()));
                    let note = match open(&db, true).map(drop).map_err(|e| (e, new_key())) {
                        Ok(()) => "the old key still opens the database: the rotation did not take effect; \
                                   keep the old key"
                            .to_owned(),
                        Err((Error::WrongKey, Ok(_))) => "the new key opens the database: the rotation took \
                                                          effect despite this error; keep the new key"
                            .to_owned(),
                        Err((_, Err(other))) | Err((other, Ok(_))) => format!(
                            "whether the rotation took effect could not be checked ({other}): keep both keys \
                             until a command that reads PII (`geocrm get --reveal`) tells which opens it"
                        ),
                    };
                    eprintln!("note: {note}");
                }
                return Err(e);
            }
            if db.json {
                print_json(&json!({"rotated": true, "keystore_created": !had_keystore}));
            } else if had_keystore {
                println!(
                    "master key rotated: every data key is wrapped under the new key; the old key opens nothing in this database (destroy it, and any old copy of the keystore)"
                );
            } else {
                println!(
                    "master key rotated: the database had no keystore (nothing was stored under a key yet), so one was created under the current key, which was checked against nothing, and is now under the new key: the only key that opens this database's personal data"
                );
            }
            Ok(())
        }
        Command::Erase { db, id } => {
            let database = open(&db, true)?;
            let ids: Vec<&str> = id.iter().map(String::as_str).collect();
            let receipts = database.erase_many(db.collection(), &ids)?;
            if db.json {
                // One `--id`: the receipt itself; several (even the same one twice, which
                // gets one receipt): an array, so the output's shape follows the arguments.
                let value = match receipts.as_slice() {
                    [one] if ids.len() == 1 => serde_json::to_value(one),
                    all => serde_json::to_value(all),
                };
                print_json(&value.unwrap_or(Value::Null));
                return Ok(());
            }
            for r in &receipts {
                if r.existed {
                    println!("erased {} at LSN {}: removed {}", id_shown(&r.id), r.lsn, r.removed.join(", "));
                } else if r.lsn == 0 {
                    // A record deleted before keeps its earlier versions (location, attributes)
                    // in the log until a compaction (from the review).
                    let removed = if r.removed.is_empty() {
                        String::new()
                    } else {
                        format!("; removed {}", r.removed.join(", "))
                    };
                    println!(
                        "{} was not present and has no data key: no tombstone written{removed} (earlier versions \
                         the log holds, if it was deleted before, go at the next `geocrm compact`)",
                        id_shown(&r.id)
                    );
                } else {
                    // Deleted before, its data key kept: the erasure destroyed it (the text said
                    // only "not present": from the privacy review).
                    println!(
                        "{} was not present (deleted before); tombstone written at LSN {}: removed {}",
                        id_shown(&r.id),
                        r.lsn,
                        r.removed.join(", ")
                    );
                }
            }
            if receipts.iter().any(|r| r.existed || r.lsn != 0) {
                // "Removed" is about the live record and the index files: the receipt read as
                // if nothing was left (from a hands-on review).
                println!(
                    "note: until `geocrm compact`, the log still holds the erased records' earlier versions: \
                     location, attributes and phone/e-mail blind values in the clear, PII as ciphertext no \
                     key opens any more"
                );
            }
            Ok(())
        }
        Command::ExportSubject { db, id } => {
            let database = open(&db, true)?;
            print_json(&database.export_subject(db.collection(), &id)?.into_json());
            Ok(())
        }
        Command::Audit { db } => super::privacy::audit(&db),
        Command::Duplicates { db, name_fields } => super::privacy::duplicates(&db, &name_fields),
        Command::Find { db, phone, email } => super::privacy::find(&db, phone.as_deref(), email.as_deref()),
        Command::StressWriter { db, commits } => super::stress::run(&db, commits),
    }
}

/// Records a query found, as (id, location, distance from the query point for `near` and
/// `radius`, nearest first): id, latitude, longitude and the distance in metres when there is
/// one (`[{"id", "lat", "lon", "distance_m"}]` with `--json`), or how many with `count`.
fn print_found(db: &DbArgs, count: bool, found: Vec<(String, LatLon, Option<f64>)>) {
    match (count, db.json) {
        (true, true) => print_json(&json!({"count": found.len()})),
        (true, false) => println!("{}", found.len()),
        (false, true) => print_json(&Value::Array(
            found
                .iter()
                .map(|(id, at, distance)| {
                    let mut row = json!({"id": id, "lat": at.lat(), "lon": at.lon()});
                    if let (Some(d), Some(row)) = (distance, row.as_object_mut()) {
                        row.insert("distance_m".into(), json!(d));
                    }
                    row
                })
                .collect(),
        )),
        (false, false) => {
            for (id, at, distance) in found {
                let distance = distance.map_or_else(String::new, |d| format!(" {d:>12.1} m"));
                println!("{:<20} {:>10.5} {:>11.5}{distance}", id_shown(&id), at.lat(), at.lon());
            }
        }
    }
}

/// [`print_found`] for `near` and `radius`.
fn print_neighbors(db: &DbArgs, count: bool, hits: Vec<geocrm::query::Neighbor>) {
    print_found(db, count, hits.into_iter().map(|h| (h.id, h.location, Some(h.distance_m))).collect());
}

/// [`print_found`] for `bbox` and `within`.
fn print_hits(db: &DbArgs, count: bool, hits: Vec<geocrm::db::Hit>) {
    print_found(db, count, hits.into_iter().map(|h| (h.id, h.location, None)).collect());
}

/// `geocrm update`: the changes checked against the collection's schema (a `--set` value is
/// read as its field's kind), then one batch.
fn update(db: &DbArgs, id: &str, at: Option<(f64, f64)>, set: &[String], clear: &[String]) -> Result<()> {
    let database = open(db, false)?;
    let schema = database.read().collection(db.collection())?.schema().clone();
    let mut changes = geocrm::Update::new();
    if let Some((lat, lon)) = at {
        changes = changes.location(point(lat, lon)?);
    }
    for assignment in set {
        let bad = |why: String| Error::invalid_argument("set", why);
        // Values are not repeated in errors (one may be personal data typed in the wrong place).
        let (field, value) = assignment.split_once('=').ok_or_else(|| {
            bad(format!(
                "an argument of {} characters has no '=': give FIELD=VALUE",
                assignment.chars().count()
            ))
        })?;
        let (field, value) = (field.trim(), value.trim());
        if value.is_empty() {
            return Err(bad(format!("no value for {field}: to unset it, --clear {field}")));
        }
        changes = match schema.field(field) {
            Some((geocrm::model::FieldKind::Number, _)) => {
                // `+33612345678` reads as a number: refused, as the CSV import refuses it.
                if geocrm::import::holds_contact_data(value) {
                    return Err(bad(format!(
                        "the value for {field} holds a phone number or an e-mail address, which a \
                         number field would store in plaintext: personal data goes in PII fields"
                    )));
                }
                let v = value.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                    bad(format!(
                        "{field} is a number field; its value of {} characters is not a finite number",
                        value.chars().count()
                    ))
                })?;
                changes.number(field, v)
            }
            Some((geocrm::model::FieldKind::Category, _)) => {
                // As the CSV import refuses such a cell in a plaintext column.
                if geocrm::import::holds_contact_data(value) {
                    return Err(bad(format!(
                        "the value for {field} holds an e-mail address or a phone number, which a \
                         category would store in plaintext: personal data goes in PII fields"
                    )));
                }
                changes.category(field, value)
            }
            Some((geocrm::model::FieldKind::Pii, _)) => {
                return Err(bad(format!(
                    "{field} is a PII field, which `geocrm update` does not set (a value typed here \
                     stays in the shell's history) but can clear (--clear {field}); to change it, \
                     import the whole record again, or use the library's Update::pii"
                )))
            }
            None => {
                let fields: Vec<&str> = schema
                    .number_fields()
                    .iter()
                    .chain(schema.category_fields())
                    .map(String::as_str)
                    .collect();
                let fields = if fields.is_empty() { "none".to_owned() } else { fields.join(", ") };
                return Err(bad(format!(
                    "no field {field:?} in {:?}: its attributes are {fields}",
                    db.collection()
                )));
            }
        };
    }
    for field in clear {
        changes = changes.clear(field);
    }
    let mut batch = database.begin_write();
    batch.update(db.collection(), id, changes)?;
    let lsn = batch.commit()?.first_lsn;
    if db.json {
        print_json(&json!({"id": id, "updated": true, "lsn": lsn}));
    } else {
        println!("updated {}", id_shown(id));
    }
    Ok(())
}

/// An id as text output shows it: as it is, or quoted and escaped when it holds a character
/// a terminal would not show as itself — a Unicode direction control shows one id as
/// another (earlier versions stored such ids; from the diff review). JSON output gives ids
/// as they are.
pub(super) fn id_shown(id: &str) -> std::borrow::Cow<'_, str> {
    let quoted = format!("{id:?}");
    if quoted.len() == id.len() + 2 {
        id.into()
    } else {
        quoted.into()
    }
}

/// `value` as JSON text with every character a terminal would not show as itself (a
/// direction override, a zero-width space, a control) written as a `\uXXXX` escape: `get`
/// printed a category `\u{202e}evil` raw, reversing the line (from a hands-on review).
fn json_shown(value: &Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        // Controls, the invisible and direction-changing characters the library refuses in
        // actor names, and line and paragraph separators (not combining marks: a decomposed
        // `é` stays as it is).
        let hidden = c.is_control()
            || geocrm::crypto::is_invisible(c)
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FFF9}'..='\u{FFFB}');
        if hidden {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A cell of the rejects file that a spreadsheet will not run as a formula: one starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a `'` in front (OWASP's advice on
/// CSV injection; an id `=HYPERLINK(…)` in the input ran when the rejects file was opened).
fn inert_cell(text: &str) -> String {
    // (A lone `-`, the rejects file's "no column", is no formula.)
    if text.starts_with(['=', '@', '\t', '\r']) || (text.starts_with(['+', '-']) && text.len() > 1) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn import(db: &DbArgs, file: &Path, options: ImportOptions, rejects: Option<&Path>) -> Result<()> {
    // Open the input and check the options first: a missing file or a bad option must not
    // leave a new, empty database behind.
    let input = File::open(file).map_err(|e| Error::io("open CSV", file, e))?;
    // A directory opens; reading it fails with no line to name.
    if input.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Error::io("open CSV", file, std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    options.check(db.collection())?;
    if let Some(path) = rejects {
        // Not the input (the same file, or a hard link to it): it would be truncated.
        use std::os::unix::fs::MetadataExt;
        let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        if id(path).is_some() && id(path) == id(file) {
            return Err(Error::invalid_argument("skip-invalid", "the rejects file is the input file"));
        }
        // Found only at the end, after the commit, it would fail an import that landed.
        if path.is_dir() || path.file_name().is_none() || path.as_os_str().to_string_lossy().ends_with('/') {
            return Err(Error::invalid_argument(
                "skip-invalid",
                "the rejects file is a directory: name a file",
            ));
        }
    }
    // Its directory must exist: checked before a new database is created, which a failure
    // would leave behind empty.
    let rejects_dir = |path: &Path| match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent.to_owned(),
        None => std::path::PathBuf::from("."),
    };
    // A symbolic link is followed (the file it names is replaced, not the link: a file took
    // the place of the link `--skip-invalid /dev/stdout` names); a named pipe or a terminal
    // is written to as it is (from a hands-on review).
    let rejects = match rejects {
        Some(path) => Some((path, rejects_target(path)?)),
        None => None,
    };
    if let Some((path, target)) = &rejects {
        let path = target.path().unwrap_or(path);
        // Nor anywhere in the database: renamed into place after the commit, it replaced
        // whatever file of the database it named (the keystore, a log segment, MANIFEST).
        let inside_database = || {
            Err(Error::invalid_argument(
                "skip-invalid",
                "the rejects file is inside the database directory: name a file outside it",
            ))
        };
        let dir = rejects_dir(path);
        // (A new database's directory does not exist yet: compared as written.)
        if !db.db.exists() && (dir.starts_with(&db.db) || path.starts_with(&db.db)) {
            return inside_database();
        }
        let Ok(dir) = dir.canonicalize() else {
            let missing = io::Error::new(io::ErrorKind::NotFound, "no such directory");
            return Err(Error::io("create rejects file", path, missing));
        };
        if db.db.canonicalize().is_ok_and(|database| dir.starts_with(database)) {
            return inside_database();
        }
    }
    // The rejects file is opened before the database is created or locked, so failing to
    // create it loses nothing (after the commit, it lost the list of rejected lines), and
    // waiting for a named pipe's reader (as a shell's redirection does) holds nothing: an
    // interrupt leaves no new, empty database behind (from the read-through review). A file
    // to replace is written as a new temporary file beside it — removed on any failure (it
    // is dropped on return, before a new database is deleted) —, renamed into place once
    // the import is done.
    let rejects = match rejects {
        Some((path, RejectsTarget::Replace(file))) => {
            let tmp = tempfile::NamedTempFile::new_in(rejects_dir(&file))
                .map_err(|e| Error::io("create rejects file", path, e))?;
            Some((path, file, RejectsFile::Temp(tmp)))
        }
        Some((path, RejectsTarget::Stream(file))) => {
            let opened = open_stream(&file).map_err(|e| Error::io("open rejects file", path, e))?;
            Some((path, file, RejectsFile::Stream(opened)))
        }
        None => None,
    };
    let database = open_for_import(db)?;
    // Any failure from here (the import, the rejects file, its report) deletes the database
    // if this command created it and nothing was committed.
    match import_into(&database, db, input, &options, rejects) {
        Ok(()) => Ok(()),
        Err(e) => Err(discarding_new(database, e)),
    }
}

/// Opens the database an import writes to, creating it in a missing or empty directory
/// (or one holding only what a creating open killed before its MANIFEST leaves: an empty
/// `LOCK`, `MANIFEST.tmp`); anything else must be a database. Another import creating the
/// same database at the same time may discard it while this one waits (its rows were
/// refused): then this one starts again, and creates it.
fn open_for_import(db: &DbArgs) -> Result<Database> {
    let creatable = || match std::fs::read_dir(&db.db) {
        Err(e) => e.kind() == io::ErrorKind::NotFound,
        Ok(entries) => entries.filter_map(|e| e.ok()).all(|e| {
            let name = e.file_name();
            // Regular files only (opening a named pipe would wait for a writer).
            let file_len = e.metadata().ok().filter(std::fs::Metadata::is_file).map(|m| m.len());
            let empty_file = file_len == Some(0);
            // A user's file of that name is not taken over (the creation would replace it).
            let manifest_tmp = || {
                let mut magic = [0u8; 8];
                empty_file
                    || (file_len.is_some()
                        && File::open(e.path())
                            .and_then(|mut f| io::Read::read_exact(&mut f, &mut magic))
                            .is_ok()
                        && &magic == b"GEOCRMMF")
            };
            (name == "LOCK" && empty_file) || (name == "MANIFEST.tmp" && manifest_tmp())
        }),
    };
    let mut attempts = 3;
    loop {
        let create = creatable();
        match open_or_create(db, true, create) {
            Err(_) if !create && attempts > 0 && creatable() => attempts -= 1,
            // (Not when database files are there: a database that lost its MANIFEST, which
            // `geocrm repair` rebuilds; that error stays as it is.)
            Err(Error::NotADatabase { .. })
                if !create && !["log", "index", "keystore"].iter().any(|f| db.db.join(f).exists()) =>
            {
                return Err(Error::invalid_argument(
                    "db",
                    format!(
                        "{} holds files but no geocrm database (no MANIFEST): import creates a database only in a missing or empty directory",
                        db.db.display()
                    ),
                ))
            }
            other => return other,
        }
    }
}

/// Where `--skip-invalid` writes.
enum RejectsTarget {
    /// A regular file, or none yet: written as a temporary file beside it and renamed into
    /// place (over the file a symbolic link names, not over the link).
    Replace(std::path::PathBuf),
    /// This process's standard output or error, a named pipe or a terminal: written to as
    /// it is.
    Stream(std::path::PathBuf),
}

impl RejectsTarget {
    /// The file replaced, if it is one.
    fn path(&self) -> Option<&Path> {
        match self {
            RejectsTarget::Replace(p) => Some(p),
            RejectsTarget::Stream(_) => None,
        }
    }
}

/// What `--skip-invalid PATH` writes to: this process's standard output or error (by
/// identity: `/dev/stdout`, a link to it, or the file the shell redirected it to), a named
/// pipe or a terminal are written to as they are; a regular file is replaced (through a
/// symbolic link, the file it names); anything else — a directory, a socket, a disk, another
/// device — is refused.
fn rejects_target(path: &Path) -> Result<RejectsTarget> {
    use std::os::unix::fs::FileTypeExt;
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let follow = |e| Error::io("follow the rejects file's symbolic link", path, e);
    let refuse =
        |what: &str| Err(Error::invalid_argument("skip-invalid", format!("the rejects file is {what}")));
    match std::fs::metadata(path) {
        Err(e) if link => Err(follow(e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RejectsTarget::Replace(path.to_owned())),
        Err(e) => Err(Error::io("create rejects file", path, e)),
        // (Replaced, a file the shell redirected the output to went from under it.)
        Ok(m) if standard_stream(&m).is_some() => Ok(RejectsTarget::Stream(path.to_owned())),
        Ok(m) if m.is_file() && link => Ok(RejectsTarget::Replace(path.canonicalize().map_err(follow)?)),
        Ok(m) if m.is_file() => Ok(RejectsTarget::Replace(path.to_owned())),
        Ok(m) if m.is_dir() => refuse("a directory: name a file"),
        Ok(m) if m.file_type().is_fifo() => Ok(RejectsTarget::Stream(path.to_owned())),
        Ok(m) if m.file_type().is_char_device() => {
            // A terminal or `/dev/null`; not another device (`/dev/kmsg`).
            let null = std::fs::metadata("/dev/null").is_ok_and(|n| same_file(&n, &m));
            let terminal =
                || std::fs::OpenOptions::new().append(true).open(path).is_ok_and(|f| f.is_terminal());
            if null || terminal() {
                Ok(RejectsTarget::Stream(path.to_owned()))
            } else {
                refuse("a device that is not a terminal")
            }
        }
        Ok(_) => refuse("neither a regular file, a named pipe nor a terminal"),
    }
}

/// Whether two files' metadata are of the same file.
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino(), a.rdev()) == (b.dev(), b.ino(), b.rdev())
}

/// This process's standard output or error (a duplicate of it) when it is the file `meta`
/// describes.
fn standard_stream(meta: &std::fs::Metadata) -> Option<File> {
    use std::os::fd::AsFd;
    let standard = [io::stdout().as_fd().try_clone_to_owned(), io::stderr().as_fd().try_clone_to_owned()];
    standard.into_iter().flatten().map(File::from).find(|f| f.metadata().is_ok_and(|m| same_file(&m, meta)))
}

/// Opens a [`RejectsTarget::Stream`]: this process's standard output or error when it is
/// that file (written through it, so the two share one offset: opened again, a file the
/// shell redirected the output to was overwritten from its start), else for appending.
fn open_stream(file: &Path) -> io::Result<File> {
    let meta = std::fs::metadata(file)?;
    match standard_stream(&meta) {
        Some(f) => Ok(f),
        None => std::fs::OpenOptions::new().append(true).open(file),
    }
}

/// The open rejects file of an import.
enum RejectsFile {
    Temp(tempfile::NamedTempFile),
    Stream(File),
}

/// [`import`] into the opened `database`; `rejects` is the rejects path as given, the file
/// it is written to, and that file opened.
fn import_into(
    database: &Database,
    db: &DbArgs,
    input: File,
    options: &ImportOptions,
    mut rejects: Option<(&Path, std::path::PathBuf, RejectsFile)>,
) -> Result<()> {
    let bar = if io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message("reading rows");
        Some(bar)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let report = import_csv(database, db.collection(), BufReader::new(input), options, &mut |n| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some((path, target, mut out)) = rejects.take() {
        // The import is committed: a failure here must not read as if nothing was imported.
        const OP: &str = "write the rejects file (the import itself is committed)";
        let io_err = |e: csv::Error| Error::io(OP, path, io::Error::other(e));
        let mut w = csv::Writer::from_writer(match &mut out {
            RejectsFile::Temp(tmp) => tmp.as_file_mut(),
            RejectsFile::Stream(f) => f,
        });
        w.write_record(["line", "id", "column", "reason"]).map_err(io_err)?;
        for r in &report.rejected {
            w.write_record([
                r.line.to_string(),
                inert_cell(&r.id),
                inert_cell(&r.column),
                inert_cell(&r.reason),
            ])
            .map_err(io_err)?;
        }
        w.flush().map_err(|e| Error::io(OP, path, e))?;
        drop(w);
        if let RejectsFile::Temp(tmp) = out {
            tmp.persist(target).map_err(|e| Error::io(OP, path, e.error))?;
        }
    }
    // Replaced whole, records lose the fields the file does not fill — PII included — and
    // the count alone did not say which (from a hands-on review).
    if report.replaced > 0 && !report.fields_not_in_file.is_empty() {
        eprintln!(
            "note: the file has no column for {}: the {} replaced record{} no longer {} {} (the old values stay \
             in the log until `geocrm compact`)",
            report.fields_not_in_file.join(", "),
            report.replaced,
            plural(report.replaced),
            if report.replaced == 1 { "has" } else { "have" },
            if report.fields_not_in_file.len() == 1 { "it" } else { "them" }
        );
    }
    // Cells an export wrote `NA` or `#N/A` in are no value: say where, and how many.
    if !report.missing_values.is_empty() {
        let counts: Vec<String> =
            report.missing_values.iter().map(|(name, n)| format!("{name} {n}")).collect();
        eprintln!(
            "note: number, phone or e-mail cells holding a missing-value marker (NA, N/A, #N/A, NULL, NaN, None, …) \
             were taken as empty, so those records have no value for the field: {}",
            counts.join(", ")
        );
    }
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    if db.json {
        let missing: serde_json::Map<String, serde_json::Value> =
            report.missing_values.iter().map(|(name, n)| (name.clone(), json!(n))).collect();
        // What the plain report prints: a new collection's kinds, and the fields replaced
        // records lost.
        let created = report
            .created_collection
            .then(|| database.read().collection(db.collection()).ok().map(|c| schema_json(c.schema())))
            .flatten();
        print_json(&json!({
            "imported": report.imported,
            "replaced": report.replaced,
            "rejected": report.rejected.len(),
            "created_collection": report.created_collection,
            "schema": created,
            "fields_not_in_file": report.fields_not_in_file,
            "missing_values": missing,
            "empty_rows": report.empty_rows,
            "notes": report.notes,
        }));
    } else {
        println!(
            "imported {} record{} into {:?} in {:.2?}{}{}",
            report.imported,
            plural(report.imported),
            db.collection(),
            started.elapsed(),
            if report.replaced == 0 {
                String::new()
            } else {
                format!(
                    ", of which {} replaced records with the same id (whole records: their fields not in the file are no longer read)",
                    report.replaced
                )
            },
            if report.rejected.is_empty() {
                String::new()
            } else {
                format!(", rejected {}", report.rejected.len())
            }
        );
        if report.empty_rows > 0 {
            println!(
                "skipped {} row{} whose cells are all empty",
                report.empty_rows,
                plural(report.empty_rows)
            );
        }
        // What a new collection's columns became (kinds were inferred, silently; from a
        // hands-on review).
        if report.created_collection {
            if let Ok(coll) = database.read().collection(db.collection()) {
                println!("created collection {:?}: {}", db.collection(), schema_summary(coll.schema()));
            }
        }
        if report.imported == 0
            && !report.created_collection
            && database.read().collection(db.collection()).is_err()
        {
            println!(
                "no collection was created: no row was imported to infer its columns' kinds from (declare them \
                 with --numbers and --categories to create it empty)"
            );
        }
    }
    Ok(())
}

/// "s" unless `n` is one.
fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `n` and `word`, with an `s` unless `n` is 1 (`1 record`, `2 records`).
fn count_of(n: u64, word: &str) -> String {
    format!("{n} {word}{}", plural(n))
}

/// A schema's fields by kind, as the import options name them.
fn schema_json(schema: &geocrm::Schema) -> serde_json::Value {
    let pii = |kind: geocrm::model::PiiKind| -> Vec<&String> {
        schema.pii_fields().iter().filter(|f| schema.pii_kind(f) == Some(kind)).collect()
    };
    json!({
        "numbers": schema.number_fields(),
        "categories": schema.category_fields(),
        "pii": pii(geocrm::model::PiiKind::Text),
        "phones": pii(geocrm::model::PiiKind::Phone),
        "emails": pii(geocrm::model::PiiKind::Email),
    })
}

/// "numbers ltv; categories tier; PII name, phone (phone)": a schema's fields by kind.
fn schema_summary(schema: &geocrm::Schema) -> String {
    let pii: Vec<String> = schema
        .pii_fields()
        .iter()
        .map(|f| match schema.pii_kind(f) {
            Some(geocrm::model::PiiKind::Phone) => format!("{f} (phone)"),
            Some(geocrm::model::PiiKind::Email) => format!("{f} (e-mail)"),
            _ => f.clone(),
        })
        .collect();
    let parts = [
        ("numbers", schema.number_fields().to_vec()),
        ("categories", schema.category_fields().to_vec()),
        ("sealed PII", pii),
    ];
    let shown: Vec<String> = parts
        .iter()
        .filter(|(_, f)| !f.is_empty())
        .map(|(kind, f)| format!("{kind} {}", f.join(", ")))
        .collect();
    if shown.is_empty() {
        "no fields besides id and location".to_owned()
    } else {
        shown.join("; ")
    }
}

/// `err`, after deleting `database` if the command created it and nothing was committed: a
/// refused import leaves no new, empty database (with a keystore bound to its key) behind.
fn discarding_new(database: Database, err: Error) -> Error {
    if let Err(left) = database.discard_if_new_and_empty() {
        eprintln!("warning: the new, empty database could not be removed: {left}");
    }
    err
}

/// A sum or mean as JSON. Stored numbers are finite, so a non-finite one means the running
/// sum went past the f64 range (the true value may not have: its sign and size are not
/// known): the string `overflow` — JSON has no such number and `null` means "no values".
fn beyond_f64(v: Option<f64>) -> Value {
    match v {
        Some(v) if !v.is_finite() => json!("overflow"),
        v => json!(v),
    }
}

/// The library's argument names in an error, as the command's flags (`group_by` is `--by`).
pub(super) fn as_flags(e: Error, flags: &[(&str, &'static str)]) -> Error {
    match e {
        Error::InvalidArgument { name, reason } => {
            let name = flags.iter().find(|(arg, _)| *arg == name).map_or(name, |&(_, flag)| flag);
            Error::InvalidArgument { name, reason }
        }
        e => e,
    }
}

fn agg(
    db: &DbArgs,
    by: &str,
    lists: [Vec<String>; 4],
    within: Option<&Path>,
    f: Option<&String>,
) -> Result<()> {
    let group_by = match by.split_once(':') {
        Some(("h3", res)) => GroupBy::H3(res.parse().map_err(|_| {
            Error::invalid_argument("by", format!("h3 resolution {res:?} is not a number 0-15"))
        })?),
        Some(("attr", name)) => GroupBy::Category(name.to_owned()),
        None if by == "all" => GroupBy::Nothing,
        _ => return Err(Error::invalid_argument("by", format!("{by:?}: use h3:RES, attr:NAME or all"))),
    };
    let region = within.map(region).transpose()?;
    let scope = region.as_ref().map_or(Scope::All, Scope::Region);
    let [sum, avg, min, max] = lists;
    let mut fields: Vec<&str> = Vec::new();
    for name in sum.iter().chain(&avg).chain(&min).chain(&max) {
        if !fields.contains(&name.as_str()) {
            fields.push(name);
        }
    }
    let database = open_read(db)?;
    let snap = database.read();
    let coll = snap.collection(db.collection())?;
    let groups = coll.aggregate(scope, &group_by, &fields, &filter(f, &coll)?).map_err(|e| {
        as_flags(e, &[("group_by", "by"), ("resolution", "by"), ("field", "sum/avg/min/max")])
    })?;
    let mut rows = Vec::with_capacity(groups.len());
    for g in &groups {
        let mut row = Map::new();
        row.insert("key".into(), serde_json::to_value(&g.key).unwrap_or(Value::Null));
        row.insert("count".into(), json!(g.count));
        // How many of the group's records have each field: what its avg divides by.
        for (name, s) in fields.iter().zip(g.fields) {
            row.insert(format!("count_{name}"), json!(s.count));
        }
        for (kind, names) in [("sum", &sum), ("avg", &avg), ("min", &min), ("max", &max)] {
            for name in names {
                let Some(i) = fields.iter().position(|f| f == name) else { continue };
                let Some(s) = g.fields.get(i) else { continue };
                let v = match kind {
                    // (No values: `null`, as for the others, not a sum of 0.)
                    "sum" => beyond_f64((s.count > 0).then_some(s.sum)),
                    "avg" => beyond_f64(s.avg()),
                    "min" => json!(s.min()),
                    _ => json!(s.max()),
                };
                row.insert(format!("{kind}_{name}"), v);
            }
        }
        rows.push(Value::Object(row));
    }
    if db.json {
        print_json(&Value::Array(rows));
    } else {
        for row in rows {
            // Escaped like audit values: a category value with a line break would print as
            // two rows, one with spaces and `=` as more fields. Quoted when it reads as the
            // no-value row's "(none)" too.
            let key = match row.get("key") {
                Some(Value::String(s)) if s == "(none)" => format!("{s:?}"),
                Some(Value::String(s)) => super::privacy::shown(s),
                _ => "(none)".into(),
            };
            let rest: Vec<String> = row
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k != "key")
                .map(|(k, v)| match v {
                    Value::String(text) => format!("{k}={text}"),
                    // Sums and averages are computed: shown to 15 significant digits, so a
                    // sum of 0.1 and 0.2 reads 0.3, not 0.30000000000000004 (`--json` keeps
                    // every digit; minima and maxima are stored values, shown as they are).
                    Value::Number(n) if k.starts_with("sum_") || k.starts_with("avg_") => {
                        format!("{k}={}", n.as_f64().map_or_else(|| n.to_string(), fifteen_digits))
                    }
                    v => format!("{k}={v}"),
                })
                .collect();
            println!("{key:<20} {}", rest.join("  "));
        }
    }
    Ok(())
}

/// `x` rounded to 15 significant digits (what an `f64` holds for certain), in the shortest
/// form that reads back as that: the last bits a sum's rounding leaves are not shown.
/// (Written as JSON writes numbers, `1e+20` not twenty-one digits; a value so near the largest
/// `f64` that rounding would overflow is shown whole.)
fn fifteen_digits(x: f64) -> String {
    let rounded: f64 = format!("{x:.14e}").parse().unwrap_or(x);
    Value::from(if rounded.is_finite() { rounded } else { x }).to_string()
}

fn get(db: &DbArgs, id: &str, reveal: bool) -> Result<()> {
    // Without a keystore no record holds PII, so there is nothing to reveal: the database is
    // read without the key, as an open with it would create a keystore bound to it (a
    // mistyped key would then lock the right one out). A record that shows sealed PII all the
    // same has its keystore created since (by the holder's first import of PII: revealed
    // with the key as usual), or lost (refused here: a keyed open of an older database could
    // still create an empty one in its place).
    let keystore = db.db.join(geocrm::crypto::KEYSTORE_FILE);
    let not_found = || Error::NotFound { collection: db.collection().to_owned(), id: id.to_owned() };
    if reveal && !keystore.exists() {
        let database = open_read(db)?;
        let snap = database.read();
        let view = snap.collection(db.collection())?.get(id)?.ok_or_else(not_found)?;
        if view.pii.is_empty() {
            print_record(db, &view, Map::new());
            return Ok(());
        }
        if !keystore.exists() {
            return Err(Error::corrupt(
                keystore,
                0,
                "the keystore is missing, though the record holds sealed PII: restore it from a backup \
                 (without it no sealed PII can be decrypted)",
            ));
        }
    }
    let database = if reveal { open(db, true)? } else { open_read(db)? };
    let snap = database.read();
    let c = snap.collection(db.collection())?;
    let view = c.get(id)?.ok_or_else(not_found)?;
    let pii: Map<String, Value> = if reveal {
        c.reveal(id)?.into_iter().map(|(k, v)| (k, Value::String(v.expose().to_owned()))).collect()
    } else {
        view.pii.keys().map(|k| (k.clone(), Value::String("<sealed>".into()))).collect()
    };
    print_record(db, &view, pii);
    Ok(())
}

/// `get`'s output: the record's public fields, with `pii` as given (values or `<sealed>`).
fn print_record(db: &DbArgs, view: &geocrm::db::StoredView, pii: Map<String, Value>) {
    let out = json!({
        "id": view.id,
        "lat": view.location.lat(),
        "lon": view.location.lon(),
        "numbers": view.numbers,
        "categories": view.categories,
        "pii": pii,
        "lsn": view.lsn,
    });
    if db.json {
        print_json(&out);
    } else {
        // `println!`: a failed write ends the command like any other output's (exit 141 on
        // a closed pipe, an error on a full disk), not exit 0 with nothing shown.
        for (k, v) in out.as_object().into_iter().flatten() {
            println!("{k:<12} {}", json_shown(v));
        }
    }
}

fn stats(db: &DbArgs) -> Result<()> {
    let database = open_read(db)?;
    let snap = database.read();
    let stats = database.stats();
    // `--collection`: that collection's figures only (an unknown one is the usual error).
    let only = db.collection.as_deref();
    if let Some(name) = only {
        snap.collection(name)?;
    }
    let mut collections = Map::new();
    for name in snap.collection_names().into_iter().filter(|n| only.is_none_or(|o| o == n)) {
        let c = snap.collection(&name)?;
        let s = c.schema();
        let st = stats.collections.get(&name);
        collections.insert(
            name.clone(),
            json!({
                "records": c.len(),
                "pii_fields": s.pii_fields(),
                "number_fields": s.number_fields(),
                "category_fields": s.category_fields(),
                "checkpoint_rows": st.map_or(0, |s| s.checkpoint_rows),
                "hidden_rows": st.map_or(0, |s| s.hidden_rows),
                "memory_rows": st.map_or(0, |s| s.memory_rows),
                "checkpoint_bytes": st.map_or(0, |s| s.checkpoint_bytes),
            }),
        );
    }
    drop(snap);
    let out = json!({
        "collections": collections,
        "next_lsn": stats.next_lsn,
        "ops_since_checkpoint": stats.ops_since_checkpoint,
        "log_bytes_since_checkpoint": stats.log_bytes_since_checkpoint,
        "checkpoint": stats.checkpoint,
        "log": {
            "segments": stats.log_segments,
            "bytes": stats.log_bytes,
            "floor": stats.log_floor,
            "truncated_tail_bytes": stats.truncated_tail_bytes,
        },
        "erasures_restored": stats.erasures_restored,
        "checkpoint_rejected": stats.checkpoint_rejected,
        "auto_checkpoint_error": stats.auto_checkpoint_error,
        "audit_log_damaged": stats.audit_log_damaged,
    });
    if db.json {
        print_json(&out);
    } else {
        println!("database {}", db.db.display());
        for (name, c) in stats.collections.iter().filter(|(n, _)| only.is_none_or(|o| o == n.as_str())) {
            println!(
                "  {name:<20} {} ({} in the checkpoint, {} hidden, {} in memory; checkpoint file {})",
                count_of(c.records, "record"),
                c.checkpoint_rows,
                c.hidden_rows,
                c.memory_rows,
                count_of(c.checkpoint_bytes, "byte")
            );
        }
        // (A rejected checkpoint is named in the warning below: not "checkpoint at LSN" as if
        // it were in use.)
        let since = match (&stats.checkpoint, &stats.checkpoint_rejected) {
            (Some(c), None) => {
                println!(
                    "  checkpoint at LSN {} ({:.1} s old), replay starts at segment {}",
                    c.lsn,
                    c.age_ms as f64 / 1e3,
                    c.segment
                );
                "since the checkpoint"
            }
            (Some(_), Some(_)) => {
                println!("  checkpoint not in use (see the warning below): the whole log was replayed");
                "in the log"
            }
            (None, _) => {
                println!("  no checkpoint yet");
                "in the log"
            }
        };
        println!(
            "  next LSN {}; {} ({}) {since}; log {}, {}",
            stats.next_lsn,
            count_of(stats.ops_since_checkpoint, "operation"),
            count_of(stats.log_bytes_since_checkpoint, "log byte"),
            count_of(stats.log_segments, "segment"),
            count_of(stats.log_bytes, "byte")
        );
        if stats.truncated_tail_bytes > 0 {
            println!(
                "  the log ends in {} bytes that are not a whole commit (one being written, or a torn or damaged last one), left out",
                stats.truncated_tail_bytes
            );
        }
        if stats.erasures_restored > 0 {
            println!(
                "  {} erased records came back with that tail (their tombstones were in it) and were removed again: the MANIFEST lists the keys their erasure destroyed",
                stats.erasures_restored
            );
        }
        if let Some(reason) = &stats.checkpoint_rejected {
            println!("  WARNING: the checkpoint was not usable and the log was replayed: {reason}");
        }
        if let Some(damage) = &stats.audit_log_damaged {
            println!(
                "  WARNING: the audit log is damaged: {damage}; until `geocrm repair` cuts it, reads of PII are refused (and, for a damaged header, writable opens)"
            );
        }
    }
    Ok(())
}

fn maintain(db: &DbArgs, compact: bool) -> Result<()> {
    let database = open(db, false)?;
    let report = if compact { database.compact()? } else { database.checkpoint()? };
    if db.json {
        print_json(&serde_json::to_value(&report).unwrap_or_default());
    } else if report.unchanged {
        println!("nothing changed since the checkpoint at LSN {}", report.lsn);
    } else {
        println!(
            "{} {} rows at LSN {} into {} bytes in {:.0} ms{}",
            if compact { "compacted;" } else { "checkpointed" },
            report.rows,
            report.lsn,
            report.bytes,
            report.elapsed_ms,
            if compact {
                let left = report.segments_not_removed.as_deref().map_or_else(String::new, |why| {
                    format!(" (removing the old segments failed: {why}; the next writable open or compaction removes what is left)")
                });
                format!("; {} log segments removed{left}", report.segments_removed)
            } else if report.kept.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} of {} collections' files kept (unchanged)",
                    report.kept.len(),
                    report.files.len()
                )
            }
        );
    }
    Ok(())
}

fn repair(db: &DbArgs, dry_run: bool) -> Result<()> {
    let options = options(db, true, false)?;
    let report =
        if dry_run { Database::repair_dry_run(&db.db, options)? } else { Database::repair(&db.db, options)? };
    if report.acknowledged_data_lost {
        DATA_LOST.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if db.json {
        print_json(&serde_json::to_value(&report).unwrap_or_default());
        return Ok(());
    }
    let verb = if dry_run { "would" } else { "did" };
    if report.is_clean() {
        println!("nothing to repair: the database opens as it is");
    }
    for action in &report.actions {
        println!("{verb}: {action}");
    }
    let records: Vec<String> = report.records.iter().map(|(c, n)| format!("{c} {n}")).collect();
    println!("log continues at LSN {}; live records: {}", report.next_lsn, records.join(", "));
    if report.actions.iter().any(geocrm::db::RepairAction::text_leaves_ids_out) {
        println!("note: each list above shows its first 20 ids; `--json` gives every id");
    }
    if report.acknowledged_data_lost {
        let (what, how) = if dry_run {
            ("this repair would drop", "it would exit")
        } else {
            ("this repair dropped", "it exits")
        };
        println!(
            "ACKNOWLEDGED DATA LOST: {what} acknowledged writes or data (the steps above say which; the \
             records of a damaged frame cannot be named); {how} with status {DATA_LOST_EXIT}. Restore the \
             database from a backup if you have one"
        );
    }
    Ok(())
}

fn verify(db: &DbArgs) -> Result<()> {
    // Read-only, so checking changes nothing (a torn tail is reported, not cut), but holding
    // the lock, so no writer changes the files while they are checked.
    let database =
        match Database::open(&db.db, options(db, false, false)?.read_only(true).lock_read_only(true)) {
            Ok(database) => database,
            // A directory holding nothing of a database is not a damaged one.
            Err(e) if matches!(e, Error::Corrupt { .. }) && holds_a_database(&db.db) => {
                return verify_unopenable(db, e)
            }
            Err(e) => return Err(e),
        };
    let report = database.verify()?;
    let damaged: Vec<_> =
        report.files.iter().filter_map(|f| Some((&f.path, f.problem.as_deref()?))).collect();
    // The first damaged file and where, when its problem says (it named the directory, at a
    // made-up offset 0; from a hands-on review).
    // (With --json, the report is the document's `files`, not text above.)
    let see = if db.json { "(see the files' problems)" } else { "(see the report above)" };
    let error = match damaged.first() {
        Some(&(path, problem)) => {
            // Problems read "at offset N: …" or are a whole error, "corrupt file F at byte offset N: …".
            let own = format!("corrupt file {} ", path.display());
            let body = problem.strip_prefix(own.as_str()).unwrap_or(problem);
            let (offset, what) = body
                .strip_prefix("at byte offset ")
                .or_else(|| body.strip_prefix("at offset "))
                .and_then(|rest| rest.split_once(": "))
                .and_then(|(n, what)| Some((n.parse().ok()?, what)))
                .unwrap_or((0, problem));
            let more = match damaged.len() {
                1 => String::new(),
                n => format!("; {} more damaged file(s)", n - 1),
            };
            Error::corrupt(path, offset, format!("{what}{more} {see}"))
        }
        None => Error::corrupt(&db.db, 0, format!("damaged {see}")),
    };
    if db.json {
        let mut json = serde_json::to_value(&report).unwrap_or_default();
        if let (Some(fields), false) = (json.as_object_mut(), report.is_ok()) {
            // One document: the report, and the error the command ends with.
            fields.insert("error".into(), error_json(&error));
        }
        print_json(&json);
    } else {
        for f in &report.files {
            match &f.problem {
                None => println!("ok       {:<12} {:>12} bytes  {}", f.kind, f.bytes, f.path.display()),
                Some(p) => {
                    println!("DAMAGED  {:<12} {:>12} bytes  {}: {p}", f.kind, f.bytes, f.path.display())
                }
            }
        }
        print!("{} checkpoint rows checked against the log", report.rows_checked);
        match report.rows_in_damaged_log {
            0 => println!(),
            n => println!("; {n} point into the damaged log and could not be (see the note)"),
        }
        for note in &report.notes {
            println!("note: {note}");
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        FOUND_DAMAGE.store(true, std::sync::atomic::Ordering::Relaxed);
        Err(error)
    }
}

/// Whether `dir` holds a MANIFEST, a log or a keystore.
fn holds_a_database(dir: &std::path::Path) -> bool {
    ["MANIFEST", "log", geocrm::crypto::KEYSTORE_FILE].iter().any(|n| dir.join(n).exists())
}

/// `verify` of a database that does not open because acknowledged data is damaged: the
/// damage open found is the report (exit status 3, as for any damage).
fn verify_unopenable(db: &DbArgs, e: Error) -> Result<()> {
    let (path, problem) = match &e {
        Error::Corrupt { file, offset, reason } => (file.clone(), format!("at offset {offset}: {reason}")),
        other => (db.db.clone(), other.to_string()),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let kind = match name {
        n if n.ends_with(".seg") => "log segment",
        n if n.ends_with(".ckpt") => "checkpoint",
        geocrm::crypto::KEYSTORE_FILE => "keystore",
        "MANIFEST" => "manifest",
        geocrm::audit::AUDIT_FILE => "audit log",
        _ => "database",
    };
    let note = "the database does not open, so nothing after this damage was checked; `geocrm repair \
                --dry-run` lists what a repair would cut or drop";
    if db.json {
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        print_json(&json!({
            "files": [{ "path": path, "kind": kind, "bytes": bytes, "problem": problem }],
            "rows_checked": 0,
            "rows_in_damaged_log": 0,
            "notes": [note],
            "error": error_json(&e),
        }));
    } else {
        println!("DAMAGED  {kind:<12} {}: {problem}", path.display());
        println!("note: {note}");
    }
    FOUND_DAMAGE.store(true, std::sync::atomic::Ordering::Relaxed);
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::fifteen_digits;

    #[test]
    fn sums_are_shown_without_their_last_rounding_bits() {
        for (x, shown) in [
            (0.1 + 0.2, "0.3"),
            (-(0.1 + 0.2) / 2.0, "-0.15"),
            (19.99, "19.99"),
            (0.0, "0.0"),
            (1e20, "1e+20"),
            (123_456_789.123_456_78, "123456789.123457"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072e-308"),
        ] {
            assert_eq!(fifteen_digits(x), shown, "{x:e}");
        }
    }
}
