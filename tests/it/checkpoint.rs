//! Checkpoints and compaction: crash and fault injection at every I/O step of their
//! publication, damaged checkpoint files (an error or a rebuild from the log, never a
//! panic), reopening without replay, and cleanup of replaced files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use geocrm::geo::{MultiPolygon, Polygon, PreparedRegion, Relation};
use geocrm::index::checkpoint::{Checkpoint, Verify};
use geocrm::index::packed::{Coverage, LonLatBox};
use geocrm::io::{CrashMode, FaultPlan, FileSystem, MappedBytes, MemFs, OpKind};
use geocrm::{Database, Error, Filter, LatLon, Options, Record, Schema};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::brute;
use super::crash::{options, random_commit, read_state, setup, State, DIR};
use super::hooked_fs::{Hook, HookedFs};

/// A second collection, "quiet", of 20 records, checkpointed: no later write touches it, so
/// later checkpoints keep its file (compactions rewrite it).
fn add_quiet(db: &Database) {
    db.create_collection("quiet", Schema::new().number("n")).unwrap();
    let mut b = db.begin_write();
    for i in 0..20 {
        let at = LatLon::new(f64::from(i) - 10.0, f64::from(i) * 9.0 - 90.0).unwrap();
        b.upsert("quiet", Record::new(format!("q{i}"), at).number("n", f64::from(i))).unwrap();
    }
    b.commit().unwrap();
    db.checkpoint().unwrap();
}

/// Whether "quiet" holds exactly what [`add_quiet`] wrote.
fn assert_quiet(db: &Database, what: &str) {
    let snap = db.read();
    let c = snap.collection("quiet").unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(c.len(), 20, "{what}");
    for i in 0..20 {
        let r = c.get(&format!("q{i}")).unwrap().unwrap_or_else(|| panic!("{what}: q{i} lost"));
        assert_eq!(r.numbers["n"], f64::from(i), "{what}");
    }
    let near = c.nearest(LatLon::new(-10.0, -90.0).unwrap(), 1, &Filter::All).unwrap();
    assert_eq!(near[0].id, "q0", "{what}");
}

/// Commits, a checkpoint after commit 3 (keeping the file of the untouched collection
/// "quiet"), a compaction after commit 7, with a fault (`fail_once` or, with `stop`, every
/// operation from the `n`-th on — a crash there). Also returns how many operations of `kind`
/// the workload attempted: the fault fired when that is above `n` (some failures are
/// tolerated, a compaction's removal of old segments say, so an error is no sign of it).
fn workload(n: u64, kind: OpKind, stop: bool) -> (MemFs, State, Option<State>, u64) {
    let fs = MemFs::new();
    let db = setup(&fs);
    add_quiet(&db);
    let plan = if stop { FaultPlan::new().fail_from(kind, n) } else { FaultPlan::new().fail_once(kind, n) };
    fs.set_faults(plan);
    let before = fs.op_count(kind);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut acked, mut in_doubt) = (State::new(), None);
    let mut poisoned = false;
    for step in 0..10 {
        let (result, after) = random_commit(&db, &mut rng, &acked);
        match result {
            Ok(()) => {
                assert!(!poisoned, "a commit succeeded after a failed one");
                acked = after;
            }
            Err(e) => {
                if !poisoned {
                    in_doubt = Some(after);
                } else {
                    assert!(matches!(e, Error::Poisoned { .. }), "after a failure, writes are refused: {e}");
                }
                poisoned = true;
            }
        }
        // (A failure here is the fault's, or a refusal after it; either way the state must
        // be as acknowledged.)
        let _maintenance = match step {
            3 => Some(db.checkpoint().map(|_| ())),
            7 => Some(db.compact().map(|_| ())),
            _ => None,
        };
        // A failed checkpoint leaves the database answering as before.
        if !poisoned {
            assert_eq!(read_state(&db), acked, "fault {kind:?} at {n}: state changed by a failed checkpoint");
        }
    }
    drop(db);
    let attempted = fs.op_count(kind) - before;
    (fs, acked, in_doubt, attempted)
}

#[test]
fn a_fault_or_crash_at_every_step_of_checkpoint_and_compaction_loses_nothing() {
    let mut cases = 0;
    for (kind, stop) in
        [(OpKind::Any, false), (OpKind::Any, true), (OpKind::Sync, false), (OpKind::Rename, false)]
    {
        // Every operation of the kind the workload attempts, to the last (the sweep once
        // stopped at the first fault that returned no error, before the compaction's
        // later steps: from a test review).
        let (_, _, _, clean) = workload(u64::MAX, kind, false);
        assert!(clean > 0, "{kind:?}: the workload attempts none");
        let mut n = 0;
        loop {
            let (fs, acked, in_doubt, attempted) = workload(n, kind, stop);
            if attempted <= n {
                assert_eq!(
                    n, clean,
                    "{kind:?} {stop}: the sweep ended before the clean run's last operation"
                );
                break;
            }
            for (m, mode) in CrashMode::ALL.into_iter().enumerate() {
                let image = fs.crash_image(n * 5 + m as u64, mode);
                let db = Database::open(Path::new(DIR), options(&image).verify_checkpoints_at_open(true))
                    .unwrap_or_else(|e| panic!("{kind:?} {stop} at {n}, {mode:?}: reopen failed: {e}"));
                assert_eq!(db.checkpoint_rejected(), None, "{kind:?} {stop} at {n}, {mode:?}");
                assert_quiet(&db, &format!("{kind:?} {stop} at {n}, {mode:?}"));
                let got = read_state(&db);
                assert!(
                    got == acked || Some(&got) == in_doubt.as_ref(),
                    "{kind:?} {stop} at {n}, {mode:?}: recovered state is neither the acknowledged one nor it plus the failed commit"
                );
                // And it stays usable: one more commit, checkpoint, reopen.
                let (result, after) = random_commit(&db, &mut ChaCha8Rng::seed_from_u64(n), &got);
                result.unwrap();
                db.checkpoint().unwrap();
                drop(db);
                let db = Database::open(Path::new(DIR), options(&image)).unwrap();
                assert_eq!(read_state(&db), after);
                assert_quiet(&db, &format!("{kind:?} {stop} at {n}, {mode:?}, reopened"));
                cases += 1;
            }
            n += 1;
        }
    }
    assert!(cases > 300, "only {cases} cases ran");
}

/// While armed, takes a power-loss image of the file system in every mode before each
/// create, rename and directory sync: a crash in the middle of a checkpoint or compaction,
/// with a temporary file half written or a rename not yet durable.
#[derive(Debug)]
struct MidImages {
    fs: MemFs,
    armed: std::sync::atomic::AtomicBool,
    images: parking_lot::Mutex<Vec<(String, MemFs)>>,
}

impl MidImages {
    fn take(&self, what: &str, path: &Path) {
        if !self.armed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut images = self.images.lock();
        for mode in CrashMode::ALL {
            let seed = images.len() as u64;
            images.push((
                format!("{mode:?} before {what} {}", path.display()),
                self.fs.crash_image(seed, mode),
            ));
        }
    }
}

impl Hook for MidImages {
    fn create_new(&self, path: &Path) {
        self.take("create", path);
    }
    fn rename(&self, from: &Path) {
        self.take("rename of", from);
    }
    fn sync_dir(&self, path: &Path) {
        self.take("directory sync", path);
    }
}

#[test]
fn power_loss_images_during_checkpoints_and_compactions() {
    let (mut images, mut middle) = (0, 0);
    // The checkpoint each image holds, over all: both the old and the new one must show up
    // among the images taken in the middle (else no image fell between them).
    let mut lsns_seen = std::collections::BTreeSet::new();
    let mut tmp_files_seen = 0;
    for seed in 0..6u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
        let fs = MemFs::new();
        let hook = Arc::new(MidImages {
            fs: fs.clone(),
            armed: std::sync::atomic::AtomicBool::new(false),
            images: parking_lot::Mutex::new(Vec::new()),
        });
        let hooked = HookedFs { inner: fs.clone(), hook: Arc::clone(&hook) };
        let db = Database::open(Path::new(DIR), options(&fs).file_system(Arc::new(hooked))).unwrap();
        db.create_collection("c", Schema::new().pii("name")).unwrap();
        add_quiet(&db);
        let mut acked = State::new();
        for step in 0..24u64 {
            let (result, after) = random_commit(&db, &mut rng, &acked);
            result.unwrap();
            acked = after;
            hook.armed.store(true, std::sync::atomic::Ordering::Relaxed);
            let before = db.stats().checkpoint.map(|c| c.lsn);
            match rng.gen_range(0..6) {
                0 => drop(db.checkpoint().unwrap()),
                1 => drop(db.compact().unwrap()),
                _ => {}
            }
            hook.armed.store(false, std::sync::atomic::Ordering::Relaxed);
            let after_lsn = db.stats().checkpoint.map(|c| c.lsn);
            // Images taken in the middle of it, then after it (every mode).
            let mut to_check: Vec<(String, MemFs)> = std::mem::take(&mut *hook.images.lock());
            middle += to_check.len();
            for (m, mode) in CrashMode::ALL.into_iter().enumerate() {
                to_check.push((
                    format!("{mode:?} after"),
                    fs.crash_image(seed * 1000 + step * 10 + m as u64, mode),
                ));
            }
            for (what, image) in to_check {
                let what = format!("seed {seed} step {step} {what}");
                let index = image.list_dir(&Path::new(DIR).join("index")).unwrap_or_default();
                tmp_files_seen += index.iter().filter(|name| name.ends_with(".tmp")).count();
                let db = Database::open(Path::new(DIR), options(&image).verify_checkpoints_at_open(true))
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(db.checkpoint_rejected(), None, "{what}");
                assert_eq!(read_state(&db), acked, "{what}");
                assert_quiet(&db, &what);
                let lsn = db.stats().checkpoint.map(|c| c.lsn);
                assert!(
                    lsn == before || lsn == after_lsn,
                    "{what}: checkpoint at {lsn:?}, neither {before:?} nor {after_lsn:?}"
                );
                if before != after_lsn {
                    lsns_seen.insert((seed, step, lsn == after_lsn));
                }
                images += 1;
            }
        }
    }
    // Some images fell in the middle, showing the old checkpoint and the new one, and some
    // held a half-written temporary file: the crash points are not all quiet ones.
    assert!(middle > 300, "{middle} images in the middle");
    let (old, new) = (
        lsns_seen.iter().filter(|(_, _, new)| !new).count(),
        lsns_seen.iter().filter(|(_, _, new)| *new).count(),
    );
    assert!(old > 5 && new > 5, "old checkpoint seen in {old} operations, new in {new}");
    assert!(tmp_files_seen > 0, "no image held a temporary file");
    assert_eq!(images, 6 * 24 * 3 + middle);
}

fn small_db(fs: &MemFs) -> (Database, State) {
    let db = setup(fs);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut acked = State::new();
    for _ in 0..6 {
        let (result, after) = random_commit(&db, &mut rng, &acked);
        result.unwrap();
        acked = after;
    }
    (db, acked)
}

/// [`small_db`], checkpointed and closed: the acknowledged state, the checkpoint file and
/// its bytes.
fn checkpointed_small_db(fs: &MemFs) -> (State, std::path::PathBuf, Vec<u8>) {
    let (db, acked) = small_db(fs);
    db.checkpoint().unwrap();
    drop(db);
    let path = checkpoint_file(fs);
    let bytes = fs.read_all(&path).unwrap();
    (acked, path, bytes)
}

fn checkpoint_file(fs: &MemFs) -> std::path::PathBuf {
    fs.list_files()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .expect("a checkpoint file")
}

#[test]
fn every_truncation_and_byte_flip_of_a_checkpoint_is_an_error_or_a_rebuild() {
    let fs = MemFs::new();
    let (acked, path, good) = checkpointed_small_db(&fs);
    let open = |bytes: Vec<u8>| {
        let bytes: MappedBytes = Arc::new(bytes);
        Checkpoint::open(bytes, &path, Verify::Checksums)
    };
    assert!(open(good.clone()).is_ok());
    for cut in 0..good.len() {
        let err = open(good[..cut].to_vec()).expect_err("a truncated checkpoint must not open");
        assert!(matches!(err, Error::Corrupt { .. }), "cut {cut}: {err}");
    }
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        let err = open(bad.clone()).expect_err("every byte is checked: checksums, or zero padding");
        // A flipped version is damage too: the header's checksum covers it (it read as a
        // newer format: from the file-validation review).
        assert!(matches!(err, Error::Corrupt { .. }), "flip at {at}: {err}");
        // Structure-only validation must not panic either; queries stay in bounds.
        if let Ok(c) = Checkpoint::open(Arc::new(bad.clone()), &path, Verify::StructureOnly) {
            let _ = c.tree().nearest(LatLon::new(1.0, 2.0).unwrap(), 3, &mut |_| true);
            for row in 0..c.len() as u32 {
                let _ = (c.id(row), c.location(row), c.pointer(row), c.find(c.id(row)));
            }
        }
    }
    // Through the database checking files at open: a damaged file is rejected and the state
    // rebuilt from the log.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    fs.write_raw(&path, &bad);
    let db = Database::open(Path::new(DIR), options(&fs).verify_checkpoints_at_open(true)).unwrap();
    assert!(
        db.checkpoint_rejected().is_some_and(|r| r.contains("checksum") || r.contains("padding")),
        "{:?}",
        db.checkpoint_rejected()
    );
    assert_eq!(read_state(&db), acked);
    // The next checkpoint replaces the damaged file.
    db.checkpoint().unwrap();
    drop(db);
    let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
    assert_eq!(db.checkpoint_rejected(), None);
    assert_eq!(read_state(&db), acked);
}

/// One record of [`rich_db`].
#[derive(Debug, Clone)]
struct Rich {
    id: String,
    lat: f64,
    lon: f64,
    /// Number fields `n`, `m`.
    numbers: [Option<f64>; 2],
    /// Category fields `tier`, `region`.
    categories: [Option<&'static str>; 2],
    name: Option<String>,
}

/// Rows of [`rich_db`]: more than 256, so the packed R-tree (16 rows a leaf, 16 children a
/// node) has three levels.
const RICH_ROWS: usize = 320;

/// Records for a checkpoint with every section filled: ids of 1 to 256 bytes (some not
/// ASCII), five at one location, points at both poles and on the antimeridian (±180), a
/// cluster in and around the holed polygon of [`rich_regions`] and one across the antimeridian,
/// two number and two category fields with values unset and repeated, and a PII name on half.
fn rich_records() -> Vec<Rich> {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let tiers = ["gold", "silver", "bronze"];
    let regions = ["north", "south", "east", "west", "Île-de-France"];
    (0..RICH_ROWS)
        .map(|i| {
            let id = match i % 6 {
                _ if i == 11 => "m".repeat(geocrm::model::MAX_ID_LEN),
                0 => format!("{i}"),
                1 => format!("customer-{i:05}"),
                2 => format!("é{i}-{}", "x".repeat(i % 50)),
                3 => format!("r{i}"),
                4 => format!("{i}-{}", "long".repeat(10 + i % 30)),
                _ => format!("Ωμέγα/{i}"),
            };
            let (lat, lon) = match i {
                0 => (90.0, 0.0),
                1 => (-90.0, 123.0),
                2 => (0.0, 180.0),
                3 => (-12.5, -180.0),
                4..=8 => (48.85, 2.35),
                _ if i % 3 == 0 => (rng.gen_range(47.0..51.0), rng.gen_range(0.0..5.0)),
                _ if i % 3 == 1 => {
                    let lat = rng.gen_range(-11.0..11.0);
                    (
                        lat,
                        if rng.gen_bool(0.5) {
                            rng.gen_range(168.0..=180.0)
                        } else {
                            rng.gen_range(-180.0..-168.0)
                        },
                    )
                }
                _ => (rng.gen_range(-89.0..89.0), rng.gen_range(-180.0..180.0)),
            };
            let n = (i % 7 != 0).then(|| f64::from(i as u32) - 100.0);
            // Quarters: sums are exact in any order (the rebuilt state sums in another).
            let m = (i % 3 == 0).then(|| f64::from(rng.gen_range(-4_000_000..4_000_000)) / 4.0);
            Rich {
                id,
                lat,
                lon,
                numbers: [n, m],
                categories: [(i % 11 != 0).then(|| tiers[i % 3]), (i % 4 != 0).then(|| regions[i % 5])],
                name: (i % 2 == 0).then(|| format!("secret-name-{i}")),
            }
        })
        .collect()
}

/// Options of the databases of [`rich_db`]: checkpointed only when asked.
fn rich_options(fs: &MemFs) -> Options {
    options(fs).checkpoint_after_ops(None)
}

/// A database in `fs` with collection "c" of [`rich_records`] (a PII `name`, numbers `n` and
/// `m`, categories `tier` and `region`), written in three commits, checkpointed and closed:
/// the records, the acknowledged state (as [`read_state`] reads it) and the checkpoint file.
fn rich_db(fs: &MemFs) -> (Vec<Rich>, State, std::path::PathBuf) {
    let db = Database::open(DIR, rich_options(fs)).unwrap();
    let schema = Schema::new().pii("name").number("n").number("m").category("tier").category("region");
    db.create_collection("c", schema).unwrap();
    let records = rich_records();
    let mut acked = State::new();
    for chunk in records.chunks(110) {
        let mut batch = db.begin_write();
        for r in chunk {
            let mut rec = Record::new(r.id.clone(), LatLon::new(r.lat, r.lon).unwrap());
            for (field, v) in ["n", "m"].into_iter().zip(r.numbers) {
                if let Some(v) = v {
                    rec = rec.number(field, v);
                }
            }
            for (field, v) in ["tier", "region"].into_iter().zip(r.categories) {
                if let Some(v) = v {
                    rec = rec.category(field, v);
                }
            }
            if let Some(name) = &r.name {
                rec = rec.pii("name", name.clone());
            }
            batch.upsert("c", rec).unwrap();
            acked.insert(r.id.clone(), (r.lat, r.lon, r.name.clone()));
        }
        batch.commit().unwrap();
    }
    db.checkpoint().unwrap();
    drop(db);
    (records, acked, checkpoint_file(fs))
}

/// The regions the rich tests query, as plain rings (`[lon, lat]`, for `brute`) and
/// prepared: a polygon with a hole around the cluster near Paris (the five duplicates in the
/// hole), and a multipolygon of a box across the antimeridian cut at ±180 (a polygon never
/// wraps) with a cap over the north pole.
fn rich_regions() -> Vec<(Vec<brute::Rings>, PreparedRegion)> {
    let holed = vec![vec![
        vec![[0.0, 47.0], [5.0, 47.0], [5.0, 51.0], [0.0, 51.0], [0.0, 47.0]],
        vec![[2.0, 48.5], [3.0, 48.5], [3.0, 49.2], [2.0, 49.2], [2.0, 48.5]],
    ]];
    let cut = vec![
        vec![vec![[170.0, -10.0], [180.0, -10.0], [180.0, 10.0], [170.0, 10.0], [170.0, -10.0]]],
        vec![vec![[-180.0, -10.0], [-170.0, -10.0], [-170.0, 10.0], [-180.0, 10.0], [-180.0, -10.0]]],
        vec![vec![[-180.0, 85.0], [180.0, 85.0], [180.0, 90.0], [-180.0, 90.0], [-180.0, 85.0]]],
    ];
    [holed, cut]
        .into_iter()
        .map(|polys| {
            let parts = polys.iter().map(|r| Polygon::new(r[0].clone(), r[1..].to_vec()).unwrap()).collect();
            let region = PreparedRegion::new(&MultiPolygon::new(parts).unwrap());
            (polys, region)
        })
        .collect()
}

/// Query points: both poles, the antimeridian from both sides, the duplicates, elsewhere.
const RICH_POINTS: [(f64, f64); 7] =
    [(0.0, 0.0), (90.0, 0.0), (-90.0, 0.0), (0.0, 180.0), (0.0, -179.9), (48.85, 2.35), (-45.0, 60.0)];

/// What the accessor groups below are given: points, ids to look up, rectangles and regions.
struct Probes {
    points: Vec<LatLon>,
    /// Every record's id, then ids no record has.
    ids: Vec<String>,
    /// `[west, south, east, north]`, never wrapping (as `visit_lonlat`'s boxes).
    rects: Vec<[f64; 4]>,
    regions: Vec<(Vec<brute::Rings>, PreparedRegion)>,
}

impl Probes {
    fn new(records: &[Rich]) -> Probes {
        let mut ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        // The empty id too, which no record can have: with the id order damaged, found on
        // first use, `find("")` gave row u32::MAX, whose id reads as empty (fixed in `find`).
        ids.extend(["", " ", "0-", "customer-", "zzzz", "\u{10FFFF}"].map(String::from));
        ids.push("m".repeat(geocrm::model::MAX_ID_LEN + 1));
        Probes {
            points: RICH_POINTS.iter().map(|&(lat, lon)| LatLon::new(lat, lon).unwrap()).collect(),
            ids,
            rects: vec![[0.0, 47.0, 5.0, 51.0], [170.0, -20.0, 180.0, 20.0], [-180.0, -90.0, 180.0, 90.0]],
            regions: rich_regions(),
        }
    }
}

/// What one group of a checkpoint's accessors answered — rows, f64 bits, codes, cells,
/// pointers as words, ids and category values as text — to compare with what the undamaged
/// file answers.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    words: Vec<u64>,
    text: Vec<u8>,
}

impl Answer {
    fn push(&mut self, w: impl Into<u64>) {
        self.words.push(w.into());
    }

    fn text(&mut self, s: &str) {
        self.text.extend_from_slice(s.as_bytes());
        self.text.push(0xff); // never in UTF-8
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.text.is_empty()
    }
}

/// Checkpoint sections by number (see `index::checkpoint::format`).
mod sect {
    pub const META: usize = 0;
    pub const TREE: usize = 1;
    pub const CELLS: usize = 2;
    pub const ID_OFFSETS: usize = 3;
    pub const ID_BYTES: usize = 4;
    pub const ID_ORDER: usize = 5;
    pub const POINTERS: usize = 6;
    pub const NUMBERS: usize = 7;
    pub const CATEGORIES: usize = 8;
    pub const CELL_ORDER: usize = 9;
}

/// A group of accessor calls: its answers go to the `Answer`; it asserts as it goes that
/// every row, range, code and length an accessor gives is in bounds (whatever the bytes).
type Group = fn(&Checkpoint, &Probes, &mut Answer);

/// `g`'s answer; a panic in it (an accessor out of bounds) names `what` was damaged.
fn run_group(g: Group, c: &Checkpoint, probes: &Probes, what: &str) -> Answer {
    let mut a = Answer::default();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g(c, probes, &mut a)))
        .unwrap_or_else(|_| panic!("{what}: a panic (above)"));
    a
}

/// Every group, with the sections it reads (and so, on first use, checks).
fn rich_groups() -> [(&'static str, Group, &'static [usize]); 10] {
    use sect::*;
    [
        ("nearest", q_nearest, &[TREE, NUMBERS, CATEGORIES]),
        ("within_radius", q_radius, &[TREE]),
        ("visit_lonlat", q_lonlat, &[TREE]),
        ("numbers", q_numbers, &[NUMBERS]),
        ("categories", q_categories, &[CATEGORIES]),
        ("cells and cell order", q_cells, &[CELLS, CELL_ORDER]),
        ("ids", q_ids, &[ID_OFFSETS, ID_BYTES]),
        ("find", q_find, &[ID_OFFSETS, ID_BYTES, ID_ORDER]),
        ("pointers", q_pointers, &[POINTERS]),
        ("locations", q_locations, &[TREE]),
    ]
}

fn q_nearest(c: &Checkpoint, p: &Probes, a: &mut Answer) {
    let n = c.len();
    let tree = c.tree();
    // (More than k rows when several tie at the k-th distance: the five duplicates.)
    let take = |near: Vec<(f64, u32)>, k: usize, a: &mut Answer| {
        assert!(near.len() <= n, "nearest {k}: {} rows", near.len());
        for (d, row) in near {
            assert!((row as usize) < n, "nearest gave row {row} of {n}");
            a.push(row);
            a.push(d.to_bits());
        }
    };
    for &at in &p.points {
        for k in [1, 9, 40] {
            take(tree.nearest(at, k, &mut |_| true), k, a);
        }
        // With a filter reading the attribute columns, as a filtered query does.
        let near = tree.nearest(at, 6, &mut |row| {
            assert!((row as usize) < n, "nearest offered row {row} of {n}");
            c.number(0, row) >= 0.0 && c.category(0, row) == 0
        });
        take(near, 6, a);
    }
}

fn q_radius(c: &Checkpoint, p: &Probes, a: &mut Answer) {
    let n = c.len();
    for &at in &p.points {
        for metres in [0.0, 60_000.0, 2_500_000.0] {
            c.tree().within_radius(at, metres, &mut |row, d| {
                assert!((row as usize) < n, "within_radius gave row {row} of {n}");
                a.push(row);
                a.push(d.to_bits());
            });
        }
    }
}

/// The lon/lat traversal under a classifier, each row of a `Partial` leaf tested with
/// `covers` on its location; the rows taken.
fn traverse(
    c: &Checkpoint,
    classify: &mut dyn FnMut(LonLatBox) -> Coverage,
    covers: &dyn Fn(LatLon) -> bool,
    a: &mut Answer,
) {
    let n = c.len() as u32;
    let mut end = 0;
    c.tree().visit_lonlat(classify, &mut |rows, inside| {
        assert!(
            rows.start >= end && rows.start < rows.end && rows.end <= n,
            "visit_lonlat gave rows {rows:?} after {end} (of {n})"
        );
        end = rows.end;
        for row in rows {
            if inside || c.location(row).is_some_and(covers) {
                a.push(row);
            }
        }
    });
}

fn q_lonlat(c: &Checkpoint, p: &Probes, a: &mut Answer) {
    for &[w, s, e, n] in &p.rects {
        let mut classify = |b: LonLatBox| {
            if b.east < w || b.west > e || b.north < s || b.south > n {
                Coverage::Outside
            } else if b.west >= w && b.east <= e && b.south >= s && b.north <= n {
                Coverage::Inside
            } else {
                Coverage::Partial
            }
        };
        let covers = |q: LatLon| q.lon() >= w && q.lon() <= e && q.lat() >= s && q.lat() <= n;
        traverse(c, &mut classify, &covers, a);
    }
    for (_, region) in &p.regions {
        let mut classify = |b: LonLatBox| match region.classify_lonlat(b.west, b.south, b.east, b.north) {
            Relation::Outside => Coverage::Outside,
            Relation::Inside => Coverage::Inside,
            Relation::Partial => Coverage::Partial,
        };
        traverse(c, &mut classify, &|q| region.contains(q), a);
    }
}

fn q_numbers(c: &Checkpoint, _: &Probes, a: &mut Answer) {
    let (n, fields) = (c.len(), c.meta().schema.number_fields().len());
    for f in 0..fields {
        let column = c.number_column(f);
        assert!(column.is_empty() || column.len() == 8 * n, "number column {f}: {} bytes", column.len());
        for row in 0..n as u32 {
            a.push(c.number(f, row).to_bits());
        }
        a.words.extend(column.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap())));
    }
    assert!(c.number(fields, 0).is_nan() && c.number(0, n as u32).is_nan(), "a number out of range");
    assert!(c.number_column(fields).is_empty());
}

fn q_categories(c: &Checkpoint, _: &Probes, a: &mut Answer) {
    let n = c.len() as u32;
    let dictionary = &c.meta().dictionary;
    for (f, values) in dictionary.iter().enumerate() {
        for row in 0..n {
            let code = c.category(f, row);
            assert!(
                code == u32::MAX || (code as usize) < values.len(),
                "category {f} of row {row}: code {code} of {} values",
                values.len()
            );
            a.push(code);
            a.text(values.get(code as usize).map_or("", String::as_str));
        }
    }
    assert_eq!((c.category(dictionary.len(), 0), c.category(0, n)), (u32::MAX, u32::MAX));
}

/// The cells, and the walk an H3 group-by makes: the cell order, each row's cell read from
/// the cell column, and its ancestors at two resolutions (the group keys).
fn q_cells(c: &Checkpoint, _: &Probes, a: &mut Answer) {
    use geocrm::h3o::{CellIndex, Resolution};
    let n = c.len();
    for row in 0..n as u32 {
        a.push(c.cell(row));
    }
    let (column, order) = (c.cell_column(), c.cell_order());
    assert!(column.is_empty() || column.len() == 8 * n, "cell column: {} bytes", column.len());
    assert!(order.is_empty() || order.len() == 4 * n, "cell order: {} bytes", order.len());
    for w in order.chunks_exact(4) {
        let row = u32::from_le_bytes(w.try_into().unwrap()) as usize;
        assert!(row < n, "the cell order names row {row} of {n}");
        let cell =
            column.get(row * 8..row * 8 + 8).map_or(u64::MAX, |b| u64::from_le_bytes(b.try_into().unwrap()));
        let parent =
            |res| CellIndex::try_from(cell).ok().and_then(|c| c.parent(res)).map_or(u64::MAX, u64::from);
        a.push(row as u64);
        a.push(parent(Resolution::Three));
        a.push(parent(Resolution::Nine));
    }
}

fn q_ids(c: &Checkpoint, _: &Probes, a: &mut Answer) {
    let n = c.len() as u32;
    for row in 0..n {
        a.text(c.id(row));
    }
    assert!(c.id(n).is_empty() && c.id(u32::MAX).is_empty(), "an id past the end");
}

fn q_find(c: &Checkpoint, p: &Probes, a: &mut Answer) {
    let n = c.len();
    for id in &p.ids {
        let row = c.find(id);
        assert!(row.is_none_or(|r| (r as usize) < n && c.id(r) == id), "find({id:?}) gave row {row:?}");
        a.push(row.map_or(u64::MAX, u64::from));
    }
}

fn q_pointers(c: &Checkpoint, _: &Probes, a: &mut Answer) {
    for row in 0..c.len() as u32 {
        let p = c.pointer(row);
        a.push(p.segment);
        a.push(p.offset);
        a.push(p.index);
    }
}

fn q_locations(c: &Checkpoint, _: &Probes, a: &mut Answer) {
    let n = c.len() as u32;
    let tree = c.tree();
    for row in 0..n {
        match c.location(row) {
            Some(p) => {
                a.push(p.lat().to_bits());
                a.push(p.lon().to_bits());
            }
            None => a.push(u64::MAX),
        }
        for x in tree.unit(row).unwrap_or([f32::NAN; 3]) {
            a.push(x.to_bits());
        }
    }
    assert!(c.location(n).is_none() && tree.unit(n).is_none(), "a location past the end");
    let stored: Vec<(f64, f64)> = tree.lat_lons(0..n + 16).collect();
    assert!(stored.len() <= n as usize);
    for (lat, lon) in stored {
        a.push(lat.to_bits());
        a.push(lon.to_bits());
    }
}

/// Where a byte of a checkpoint file is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Header,
    /// Zero padding starting at this offset.
    Padding(usize),
    Section(usize),
}

fn place(sections: &[std::ops::Range<usize>], at: usize) -> Place {
    if at < 256 {
        return Place::Header;
    }
    match sections.iter().position(|r| r.contains(&at)) {
        Some(i) => Place::Section(i),
        None => Place::Padding(sections.iter().map(|r| r.end).filter(|&end| end <= at).max().unwrap()),
    }
}

/// A prefix of shared bytes, as a mapping of a truncated file (no copy per cut).
struct Prefix(Arc<Vec<u8>>, usize);

impl AsRef<[u8]> for Prefix {
    fn as_ref(&self) -> &[u8] {
        &self.0[..self.1]
    }
}

/// The error's file is `path`; it is `Corrupt`.
fn corrupt_at(err: &Error, path: &Path, what: &str) -> (u64, String) {
    match err {
        Error::Corrupt { file, offset, reason } => {
            assert_eq!(file, path, "{what}: {err}");
            assert!(!reason.is_empty(), "{what}");
            (*offset, reason.clone())
        }
        other => panic!("{what}: not Corrupt: {other}"),
    }
}

/// The audit's gap in the sweep above: its file has empty attribute sections and a one-leaf
/// tree. Here a checkpoint with every section filled (numbers and categories with values
/// unset, a PII field, 320 rows: a three-level tree), every truncation and every byte flip:
/// - checked whole (`Verify::Checksums`), every one is `Corrupt`, naming the file and the
///   damaged section's start (or the padding's, or a place in the header);
/// - truncated, it opens in no mode;
/// - structure only, no accessor reading the damaged section panics or leaves bounds (rows,
///   ranges, codes, lengths);
/// - checked on first use (the database's default), each group of accessors, on a fresh open,
///   reports damage exactly when it reads the damaged section, and otherwise answers exactly
///   as the undamaged file: never a wrong answer without an error (and each group reads only
///   the sections it lists). What `open` checks (the header, padding, meta section, tree
///   header) fails there, and nowhere else.
#[test]
fn every_truncation_and_byte_flip_of_a_checkpoint_with_every_section_filled_is_caught() {
    use sect::*;
    let started = std::time::Instant::now();
    let fs = MemFs::new();
    let (records, _, path) = rich_db(&fs);
    let good = fs.read_all(&path).unwrap();
    let sections: Vec<std::ops::Range<usize>> = (0..10).map(|i| section(&good, i)).collect();
    let probes = Probes::new(&records);
    let groups = rich_groups();
    let open = |bytes: MappedBytes, verify| Checkpoint::open(bytes, &path, verify);
    let shared = Arc::new(good.clone());

    // The file is the one the audit asked for, and the undamaged answers are right.
    let c = open(shared.clone(), Verify::Checksums).unwrap();
    assert_eq!(c.len(), RICH_ROWS);
    let tree = &good[sections[TREE].clone()];
    let levels = u32::from_le_bytes(tree[12..16].try_into().unwrap());
    assert!(levels >= 3, "the tree has {levels} levels");
    for (i, r) in sections.iter().enumerate() {
        assert!(!r.is_empty(), "section {i} is empty");
    }
    let dictionary = &c.meta().dictionary;
    assert_eq!(dictionary.iter().map(Vec::len).collect::<Vec<_>>(), [3, 5]);
    let by_id: BTreeMap<&str, &Rich> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    for row in 0..RICH_ROWS as u32 {
        let r = by_id[c.id(row)];
        assert_eq!(c.find(&r.id), Some(row));
        assert_eq!(c.location(row), Some(LatLon::new(r.lat, r.lon).unwrap()), "{}", r.id);
        for (f, number) in r.numbers.iter().enumerate() {
            assert_eq!(c.number(f, row).to_bits(), number.unwrap_or(f64::NAN).to_bits(), "{}", r.id);
        }
        for ((f, values), category) in dictionary.iter().enumerate().zip(r.categories) {
            let value = values.get(c.category(f, row) as usize).map(String::as_str);
            assert_eq!(value, category, "{}", r.id);
        }
    }
    let want: Vec<Answer> = groups
        .iter()
        .map(|(name, g, _)| {
            let mut a = Answer::default();
            g(&c, &probes, &mut a);
            assert!(!a.is_empty(), "{name} answers nothing");
            a
        })
        .collect();
    // The regions' rows, against the independent even-odd test: non-empty, the hole used.
    let mut in_regions = Answer::default();
    q_lonlat(&c, &Probes { rects: vec![], ..Probes::new(&records) }, &mut in_regions);
    let mut brute_rows = Vec::new();
    for (polys, _) in &probes.regions {
        let rows: Vec<u64> = (0..RICH_ROWS as u32)
            .filter(|&row| {
                let r = by_id[c.id(row)];
                brute::multi_covers(polys, [r.lon, r.lat])
            })
            .map(u64::from)
            .collect();
        assert!(rows.len() >= 10, "{} rows in a region", rows.len());
        brute_rows.extend(rows);
    }
    assert_eq!(in_regions.words, brute_rows);
    drop(c);

    let modes = [Verify::Checksums, Verify::StructureOnly, Verify::OnFirstUse];
    for cut in 0..good.len() {
        for verify in modes {
            let err = open(Arc::new(Prefix(shared.clone(), cut)), verify)
                .expect_err("a truncated checkpoint opens in no mode");
            corrupt_at(&err, &path, &format!("cut at {cut}, {verify:?}"));
        }
    }

    let (mut structure_opened, mut first_use_opened) = (0, 0);
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        let bad = Arc::new(bad);
        let place = place(&sections, at);
        let what = format!("flip at {at} ({place:?})");

        let err = open(bad.clone(), Verify::Checksums).expect_err("every byte is checked");
        let (offset, reason) = corrupt_at(&err, &path, &what);
        match place {
            Place::Header => assert!(offset < 256, "{what}: {err}"),
            Place::Padding(from) => {
                assert!(offset == from as u64 && reason.contains("padding"), "{what}: {err}")
            }
            Place::Section(i) => {
                assert!(offset == sections[i].start as u64 && reason.contains("checksum"), "{what}: {err}")
            }
        }

        let damaged = |reads: &[usize]| matches!(place, Place::Section(i) if reads.contains(&i));
        // Structure only: the groups reading the damaged section stay in bounds (wrong answers
        // allowed). The other groups read only sound bytes, as the undamaged file's: that each
        // group reads only the sections listed is what the first-use checks below show.
        if let Ok(c) = open(bad.clone(), Verify::StructureOnly) {
            structure_opened += 1;
            for (name, g, _) in groups.iter().filter(|(_, _, reads)| damaged(reads)) {
                run_group(*g, &c, &probes, &format!("{what}, structure only, {name}"));
            }
        }

        // What `open` checks under first-use verification fails there; the rest on first use.
        let checked_at_open = match place {
            Place::Header | Place::Padding(_) => true,
            Place::Section(i) => i == META || (i == TREE && at < sections[TREE].start + 240),
        };
        match open(bad.clone(), Verify::OnFirstUse) {
            Err(e) => {
                corrupt_at(&e, &path, &what);
                assert!(checked_at_open, "{what}: first-use open failed: {e}");
            }
            Ok(first) => {
                assert!(!checked_at_open, "{what}: first-use open missed it");
                first_use_opened += 1;
                let mut first = Some(first);
                for ((name, g, reads), w) in groups.iter().zip(&want) {
                    let c = first.take().unwrap_or_else(|| open(bad.clone(), Verify::OnFirstUse).unwrap());
                    let got = run_group(*g, &c, &probes, &format!("{what}, first use, {name}"));
                    match c.damage() {
                        Ok(()) => {
                            assert!(
                                !damaged(reads),
                                "{what}: {name} read the damaged section, no damage reported"
                            );
                            assert!(got == *w, "{what}: {name} answered wrongly and reported no damage");
                        }
                        Err(e) => {
                            corrupt_at(&e, &path, &what);
                            assert!(
                                damaged(reads),
                                "{what}: {name} reported damage in a section it does not read: {e}"
                            );
                        }
                    }
                }
                let c = open(bad.clone(), Verify::OnFirstUse).unwrap();
                let ids = c.check_id_sections();
                assert_eq!(ids.is_err(), damaged(&[ID_OFFSETS, ID_BYTES, ID_ORDER]), "{what}: {ids:?}");
                assert!(c.check_all().is_err(), "{what}: check_all");
            }
        }
    }
    // Most flips are in sections first-use verification reads lazily (and structure-only
    // opens take): the per-group checks above ran on them.
    let data = sections.iter().skip(2).map(ExactSizeIterator::len).sum::<usize>();
    assert!(first_use_opened >= data, "{first_use_opened} first-use opens, {data} bytes of data sections");
    assert!(structure_opened * 2 >= good.len(), "{structure_opened} of {} opened structure-only", good.len());
    eprintln!(
        "{} bytes, {} cuts and flips in {:?} ({structure_opened} opened structure-only, {first_use_opened} on first use)",
        good.len(),
        good.len(),
        started.elapsed()
    );
}

/// Every answer [`rich_db`]'s database gives of collection "c", as text, or `None` where a
/// query failed with `Corrupt` (any other error fails the test, unless `any_error`): nearest,
/// radius, box and region queries (filtered on numbers and categories too), counts,
/// group-bys by H3 cell and category with number fields, and every record by id.
fn rich_answers(db: &Database, probes: &Probes, any_error: bool) -> Vec<Option<String>> {
    use geocrm::geo::BoundingBox;
    use geocrm::query::{GroupBy, Scope};
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    fn text<T: std::fmt::Debug>(r: geocrm::Result<T>, any_error: bool) -> Option<String> {
        match r {
            Ok(v) => Some(format!("{v:?}")),
            Err(Error::Corrupt { .. }) => None,
            Err(_) if any_error => None,
            Err(e) => panic!("not a Corrupt error: {e}"),
        }
    }
    let filter = Filter::parse("n >= 100 and tier = 'gold'").unwrap();
    let mut out = Vec::new();
    for &p in &probes.points {
        out.push(text(c.nearest(p, 7, &Filter::All), any_error));
        out.push(text(c.nearest(p, 3, &filter), any_error));
        out.push(text(c.within_radius(p, 1_500_000.0, &Filter::All), any_error));
        let bbox = BoundingBox::around(p, 1_000_000.0).unwrap();
        out.push(text(c.within_bbox(&bbox, &Filter::All), any_error));
        out.push(text(c.count(Scope::BBox(&bbox), &filter), any_error));
    }
    let north = Filter::parse("region = 'north'").unwrap();
    for (_, region) in &probes.regions {
        out.push(text(c.within_region(region, &Filter::All), any_error));
        out.push(text(c.count(Scope::Region(region), &north), any_error));
    }
    out.push(text(c.count(Scope::All, &Filter::parse("m >= 0").unwrap()), any_error));
    out.push(text(c.aggregate(Scope::All, &GroupBy::H3(3), &["n", "m"], &Filter::All), any_error));
    out.push(text(
        c.aggregate(Scope::All, &GroupBy::Category("region".into()), &["m"], &Filter::All),
        any_error,
    ));
    out.push(text(c.aggregate(Scope::All, &GroupBy::Category("tier".into()), &["n"], &north), any_error));
    for id in &probes.ids[..RICH_ROWS] {
        out.push(text(c.get(id), any_error));
    }
    out
}

/// The sweep above through the database, for flips spread over the header, every padding and
/// five places in every section (attributes included): checked whole at open,
/// the file is set aside and the state rebuilt from the log; checked on first use (the
/// default), every answer is the undamaged one or `Corrupt`, some query finds the damage, and
/// the next open sets the file aside; checked for structure only, nothing panics (wrong
/// answers and errors are allowed: it reads no checksum), `verify` finds the damage, and the
/// next open sets the file aside. Each time every acknowledged
/// record reads back ([`read_state`]) and the rebuilt state answers as the undamaged file.
#[test]
fn flips_in_every_section_of_a_full_checkpoint_are_rebuilt_or_corrupt_through_the_database() {
    let started = std::time::Instant::now();
    let fs = MemFs::new();
    let (records, acked, path) = rich_db(&fs);
    let good = fs.read_all(&path).unwrap();
    let sections: Vec<std::ops::Range<usize>> = (0..10).map(|i| section(&good, i)).collect();
    let probes = Probes::new(&records);

    let db = Database::open(DIR, rich_options(&fs).verify_checkpoints_at_open(true)).unwrap();
    assert!(db.checkpoint_rejected().is_none());
    assert_eq!(db.recovery_report().transactions, 0, "everything is in the checkpoint");
    assert_eq!(read_state(&db), acked);
    let want = rich_answers(&db, &probes, false);
    assert!(want.iter().all(Option::is_some));
    // The region queries (after 7 points × 5 queries), against the independent test.
    for (n, (polys, _)) in probes.regions.iter().enumerate() {
        let snap = db.read();
        let hits = snap.collection("c").unwrap().within_region(&probes.regions[n].1, &Filter::All).unwrap();
        let got: std::collections::BTreeSet<String> = hits.into_iter().map(|h| h.id).collect();
        let brute: std::collections::BTreeSet<String> = records
            .iter()
            .filter(|r| brute::multi_covers(polys, [r.lon, r.lat]))
            .map(|r| r.id.clone())
            .collect();
        assert!(brute.len() >= 10 && got == brute, "region {n}");
    }
    drop(db);

    let mut flips = vec![3, 20, 100, 210, 250, 253];
    for (i, r) in sections.iter().enumerate() {
        flips.extend([r.start, r.start + r.len() / 4, r.start + r.len() / 2, r.end - r.len() / 4, r.end - 1]);
        if i > 0 && sections[i - 1].end < r.start {
            flips.push(sections[i - 1].end);
        }
    }
    let image = |bad: &[u8]| {
        let img = fs.crash_image(0, CrashMode::SyncedOnly);
        img.write_raw(&path, bad);
        img
    };
    let rebuilt = |img: &MemFs, what: &str| {
        let db = Database::open(DIR, rich_options(img)).unwrap();
        assert!(db.checkpoint_rejected().is_some(), "{what}: the damaged file is not set aside");
        assert_eq!(read_state(&db), acked, "{what}");
        assert!(rich_answers(&db, &probes, false) == want, "{what}: the rebuilt state answers differently");
    };
    for &at in &flips {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        let place = place(&sections, at);

        let what = format!("flip at {at} ({place:?}), checked at open");
        let img = image(&bad);
        let db = Database::open(DIR, rich_options(&img).verify_checkpoints_at_open(true)).unwrap();
        assert!(db.checkpoint_rejected().is_some(), "{what}");
        assert_eq!(read_state(&db), acked, "{what}");
        assert!(rich_answers(&db, &probes, false) == want, "{what}");
        drop(db);

        let what = format!("flip at {at} ({place:?}), checked on first use");
        let img = image(&bad);
        let db = Database::open(DIR, rich_options(&img)).unwrap();
        let at_open = db.checkpoint_rejected().is_some();
        let got = rich_answers(&db, &probes, false);
        for (n, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(g.is_none() || g == w, "{what}: answer {n} is wrong: {g:?}");
        }
        let failed = got.iter().filter(|g| g.is_none()).count();
        assert!(at_open || failed > 0, "{what}: no query found the damage");
        assert!(!(at_open && failed > 0), "{what}: the rebuilt state failed {failed} queries");
        assert!(db.stats().checkpoint_rejected.is_some(), "{what}");
        drop(db);
        rebuilt(&img, &what);

        let what = format!("flip at {at} ({place:?}), structure only");
        let img = image(&bad);
        let db = Database::open(DIR, rich_options(&img).checkpoint_checksums(false)).unwrap();
        if db.checkpoint_rejected().is_some() {
            // Its structure check found the damage at open: the state was rebuilt from the log.
            assert!(
                rich_answers(&db, &probes, false) == want,
                "{what}: the rebuilt state answers differently"
            );
        } else {
            // Wrong answers and any error allowed (a flipped pointer can name a segment that
            // does not exist), but no panic.
            let _ = rich_answers(&db, &probes, true);
        }
        // `verify` finds it (and marks the file) whether or not the open's structure check did.
        assert!(!db.verify().unwrap().is_ok(), "{what}: verify missed it");
        drop(db);
        rebuilt(&img, &what);
    }
    eprintln!("{} flips through the database in {:?}", flips.len(), started.elapsed());
}

#[test]
fn a_damaged_checkpoint_after_compaction_is_rebuilt_from_the_compacted_log() {
    let fs = MemFs::new();
    let (db, acked) = small_db(&fs);
    db.compact().unwrap();
    let (result, acked) = random_commit(&db, &mut ChaCha8Rng::seed_from_u64(9), &acked);
    result.unwrap();
    drop(db);
    let path = checkpoint_file(&fs);
    fs.write_raw(&path, b"garbage");
    let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
    assert!(db.checkpoint_rejected().is_some());
    assert_eq!(read_state(&db), acked);
}

#[test]
fn reopening_after_a_checkpoint_replays_nothing_and_old_files_go() {
    let dir = tempfile::tempdir().unwrap();
    let open = || open_manual(dir.path());
    let db = open();
    db.create_collection("c", Schema::new().number("v")).unwrap();
    for round in 0..3 {
        let mut b = db.begin_write();
        for i in 0..500 {
            let p = LatLon::new(f64::from(i % 90), f64::from(i % 180)).unwrap();
            b.upsert("c", Record::new(format!("r{i}"), p).number("v", f64::from(round))).unwrap();
        }
        b.commit().unwrap();
        let report = db.checkpoint().unwrap();
        assert_eq!((report.rows, report.unchanged), (500, false));
        assert!(db.checkpoint().unwrap().unchanged, "nothing changed since");
    }
    drop(db);
    let files = std::fs::read_dir(dir.path().join("index")).unwrap().count();
    assert_eq!(files, 1, "replaced checkpoint files are deleted");
    let db = open();
    assert_eq!(db.recovery_report().transactions, 0, "nothing to replay after a checkpoint");
    let c = db.read();
    let c = c.collection("c").unwrap();
    assert_eq!(c.len(), 500);
    assert_eq!(c.get("r7").unwrap().unwrap().numbers["v"], 2.0);
}

/// An open removes orphaned checkpoint files (named as checkpoints name them, with their
/// temporary files and damage markers), and leaves everything else in `index/` — a user's
/// `my-backup.ckpt` was removed too (from the checkpoint review).
#[test]
fn an_open_removes_orphaned_checkpoint_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let open = || open_manual(dir.path());
    let db = open();
    db.create_collection("c", Schema::new()).unwrap();
    write(&db, |b| b.upsert("c", Record::new("a", LatLon::new(1.0, 2.0).unwrap())).map(drop));
    db.checkpoint().unwrap();
    drop(db);
    let live = index_files(dir.path());
    let orphans = [
        "0000000000000001-0000.ckpt",
        "0000000000000001-0001.ckpt.tmp",
        "0000000000000001-0000.ckpt.damaged",
    ];
    let mine = ["my-backup.ckpt", "x.ckpt.damaged", "notes.txt", "old.ckpt.tmp"];
    for name in orphans.iter().chain(&mine) {
        std::fs::write(dir.path().join("index").join(name), "not a checkpoint").unwrap();
    }
    drop(open());
    let mut expected: Vec<String> = live.iter().cloned().chain(mine.iter().map(|s| s.to_string())).collect();
    expected.sort();
    assert_eq!(index_files(dir.path()), expected);
}

/// A compaction whose removal of the old segments failed leaves them below the log floor;
/// while removals keep failing, the database still opens, with everything (it refused to:
/// from the checkpoint review), and a later open removes them. The compaction itself
/// succeeds, and has dropped the data keys of deleted records: the removal's failure
/// poisoned the database, and came before the keys were dropped, which nothing did later
/// (from the twenty-fourth part's checkpoint review).
#[test]
fn a_failing_removal_of_old_segments_does_not_keep_the_database_from_opening() {
    let fs = MemFs::new();
    let (db, mut state) = small_db(&fs);
    let segments = |fs: &MemFs| {
        fs.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "seg")).count()
    };
    let gone = "Gone-Customer-4242";
    write(&db, |b| {
        b.upsert("c", Record::new(gone, LatLon::new(1.0, 2.0).unwrap()).pii("name", "G")).map(drop)
    });
    write(&db, |b| b.delete("c", gone).map(drop));
    let keystore = |fs: &MemFs| fs.read_all(&Path::new(DIR).join("keystore")).unwrap();
    assert!(memchr::memmem::find(&keystore(&fs), gone.as_bytes()).is_some());
    fs.set_faults(FaultPlan::new().fail_from(OpKind::Remove, 0));
    let report = db.compact().expect("published: the removal of old segments is best effort");
    assert!(report.segments_not_removed.is_some_and(|why| why.contains("remove")), "the report says so");
    assert!(
        memchr::memmem::find(&keystore(&fs), gone.as_bytes()).is_none(),
        "the deleted record's key stayed"
    );
    let (result, after) = random_commit(&db, &mut ChaCha8Rng::seed_from_u64(5), &state);
    result.expect("not poisoned");
    state = after;
    drop(db);
    let before = segments(&fs);
    let db = Database::open(DIR, options(&fs)).expect("opens while removals fail");
    assert_eq!(read_state(&db), state);
    // `verify` names the leftover (from the diff review: it listed it as sound).
    let report = db.verify().unwrap();
    let left: Vec<_> = report.notes.iter().filter(|n| n.contains("below the log floor")).collect();
    assert_eq!(left.len(), 1, "{:?}", report.notes);
    assert!(report.is_ok(), "a leftover is no damage: {:?}", report.files);
    // A damaged leftover is no reason to leave the live segments unchecked (the scan of the
    // log started at the oldest file and stopped at the leftover's damage: from the log
    // review). Two commits make a frame in the live log that a later one says is durable.
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    for _ in 0..2 {
        let (result, after) = random_commit(&db, &mut rng, &state);
        result.unwrap();
        state = after;
    }
    let report = db.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.files);
    let mut files: Vec<_> =
        fs.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "seg")).collect();
    files.sort();
    let (leftover, live) = (files.first().unwrap().clone(), files.last().unwrap().clone());
    let flip = |path: &Path, at: usize| {
        let mut bytes = fs.read_all(path).unwrap();
        bytes[at] ^= 0x40;
        fs.write_raw(path, &bytes);
    };
    flip(&leftover, 70);
    let report = db.verify().unwrap();
    assert!(report.is_ok(), "damage below the floor is noted, not reported: {:?}", report.files);
    flip(&live, 70);
    let report = db.verify().unwrap();
    let damaged: Vec<_> =
        report.files.iter().filter(|f| f.problem.is_some()).map(|f| f.path.clone()).collect();
    assert_eq!(damaged, vec![live.clone()], "{:?}", report.files);
    flip(&live, 70);
    drop(db);
    fs.clear_faults();
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert_eq!(read_state(&db), state);
    assert!(segments(&fs) < before, "the old segments go once removals work");
}

/// Whatever step of a compaction fails, followed by a crash: once the reopened log no longer
/// holds a deleted record (its id is in the clear in every operation), neither does the
/// keystore hold its key. The keys were dropped after the manifest was published, so a
/// crash in between kept them for good (from the twenty-fourth part's checkpoint review).
#[test]
fn a_crash_at_any_step_of_a_compaction_leaves_no_key_of_a_record_gone_from_the_log() {
    let gone = "Gone-Customer-4242";
    let holds = |fs: &MemFs, path: &Path| {
        fs.read_all(path).is_some_and(|b| memchr::memmem::find(&b, gone.as_bytes()).is_some())
    };
    let mut published = 0;
    for n in 0.. {
        let fs = MemFs::new();
        let (db, _) = small_db(&fs);
        write(&db, |b| {
            b.upsert("c", Record::new(gone, LatLon::new(1.0, 2.0).unwrap()).pii("name", "G")).map(drop)
        });
        write(&db, |b| b.delete("c", gone).map(drop));
        fs.set_faults(FaultPlan::new().fail_from(OpKind::Any, n));
        let done = db.compact().is_ok();
        drop(db);
        for (m, mode) in CrashMode::ALL.into_iter().enumerate() {
            let image = fs.crash_image(n * 5 + m as u64, mode);
            drop(
                Database::open(Path::new(DIR), options(&image))
                    .unwrap_or_else(|e| panic!("at {n}, {mode:?}: {e}")),
            );
            let in_log = image
                .list_files()
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "seg") && holds(&image, p));
            let in_keystore = holds(&image, &Path::new(DIR).join("keystore"));
            assert!(in_log || !in_keystore, "fault at {n}, {mode:?}: the key outlived the record's log");
            published += usize::from(!in_log);
        }
        if done {
            break;
        }
    }
    assert!(published > 0, "some images hold the published compaction");
}

/// A checkpoint whose packed R-tree has a wrong box under intact checksums (a box of leaf 0
/// moved elsewhere, every CRC recomputed) answered spatial queries wrongly and passed
/// `verify`; verify now checks the tree's invariants (from the file-validation review).
#[test]
fn verify_finds_a_tree_box_that_lies_under_intact_checksums() {
    let fs = MemFs::new();
    let (_state, file, mut bytes) = checkpointed_small_db(&fs);
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    // Section 1 (the tree): offset and length in the table at 40.
    let (tree_at, tree_len) = (u64_at(&bytes, 40 + 16), u64_at(&bytes, 40 + 16 + 8));
    let tree = &mut bytes[tree_at..tree_at + tree_len];
    let lonlat_at = u64_at(tree, 80);
    for (i, v) in [100.0f32, 10.0, 100.5, 10.5].iter().enumerate() {
        tree[lonlat_at + 4 * i..lonlat_at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    let body = crc32fast::hash(&tree[240..]);
    tree[232..236].copy_from_slice(&body.to_le_bytes());
    let head = crc32fast::hash(&tree[..236]);
    tree[236..240].copy_from_slice(&head.to_le_bytes());
    let crc = crc32fast::hash(&bytes[tree_at..tree_at + tree_len]);
    bytes[204..208].copy_from_slice(&crc.to_le_bytes());
    let head = crc32fast::hash(&bytes[..248]);
    bytes[248..252].copy_from_slice(&head.to_le_bytes());
    fs.write_raw(&file, &bytes);
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert!(db.checkpoint_rejected().is_none(), "the checksums hold");
    let report = db.verify().unwrap();
    let problems: Vec<_> = report.files.iter().filter_map(|f| f.problem.as_deref()).collect();
    assert!(
        problems.iter().any(|p| p.contains("packed R-tree is inconsistent") && p.contains("lon/lat box")),
        "{problems:?}"
    );
}

/// A category code past its field's dictionary under intact checksums read as no value to a
/// group-by (a second "no value" group) and as a value to a filter, and passed `verify`
/// (from the query review). The structure check refuses it.
#[test]
fn a_category_code_past_the_dictionary_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_manual(dir.path());
    db.create_collection("c", Schema::new().category("tier")).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", Record::new("a", LatLon::new(1.0, 2.0).unwrap()).category("tier", "gold")).unwrap();
    b.upsert("c", Record::new("b", LatLon::new(1.0, 2.1).unwrap()).category("tier", "silver")).unwrap();
    b.upsert("c", Record::new("n", LatLon::new(1.0, 2.2).unwrap())).unwrap();
    b.commit().unwrap();
    db.checkpoint().unwrap();
    drop(db);
    let file = checkpoint_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    // Section 8 (category codes): the row without a tier holds u32::MAX; make it 2, one past
    // the two values.
    let codes_at = section(&bytes, 8);
    let codes = &mut bytes[codes_at];
    let missing = codes.chunks(4).position(|c| c == [0xff; 4]).expect("the row without a tier");
    codes[4 * missing..4 * missing + 4].copy_from_slice(&2u32.to_le_bytes());
    reseal(&mut bytes, 8);
    let err = Checkpoint::open(Arc::new(bytes.clone()), &file, Verify::Checksums)
        .expect_err("a code past the values");
    assert!(err.to_string().contains("category field 0: a code past its 2 values"), "{err}");
    std::fs::write(&file, &bytes).unwrap();
    let db = open_manual(dir.path());
    // A query reading the codes finds the damage (on first use), not a wrong answer; before
    // `verify`, which marks the file damaged whatever the first-use check does.
    let filter = Filter::parse("tier != 'gold'").unwrap();
    let found = db.read().collection("c").and_then(|c| c.count(geocrm::query::Scope::All, &filter));
    assert!(found.as_ref().is_err_and(|e| matches!(e, Error::Corrupt { .. })), "{found:?}");
    let report = db.verify().unwrap();
    let problems: Vec<_> = report.files.iter().filter_map(|f| f.problem.as_deref()).collect();
    assert!(problems.iter().any(|p| p.contains("category field 0")), "{problems:?}");
}

/// A missing segment at the log floor: the log check reported it on a file no line of the
/// report showed, and `verify` passed (from the diff review).
#[test]
fn verify_reports_a_missing_segment_at_the_log_floor() {
    let dir = tempfile::tempdir().unwrap();
    let open = || open_manual(dir.path());
    let db = open();
    db.create_collection("c", Schema::new().number("v")).unwrap();
    let rewrite = |db: &Database, v: f64| {
        write(db, |b| {
            for i in 0..50 {
                b.upsert("c", Record::new(format!("r{i}"), LatLon::new(1.0, 2.0).unwrap()).number("v", v))?;
            }
            Ok(())
        })
    };
    rewrite(&db, 1.0);
    db.checkpoint().unwrap();
    db.compact().unwrap();
    rewrite(&db, 2.0);
    db.checkpoint().unwrap();
    drop(db);
    let mut segments: Vec<_> =
        std::fs::read_dir(dir.path().join("log")).unwrap().map(|e| e.unwrap().path()).collect();
    segments.sort();
    assert!(segments.len() >= 2, "{segments:?}");
    std::fs::remove_file(&segments[0]).unwrap();
    let db = open();
    let report = db.verify().unwrap();
    assert!(!report.is_ok(), "{:?}", report.files);
    let missing = report.files.iter().find(|f| f.path == segments[0]);
    assert!(missing.is_some_and(|f| f.problem.is_some()), "{:?}", report.files);
    // Never compacted (floor 1), segment 1 missing: the scan started at the first segment
    // there, and verify passed (from the third diff review).
    let dir = tempfile::tempdir().unwrap();
    let db = open_manual(dir.path());
    db.create_collection("c", Schema::new().number("v")).unwrap();
    rewrite(&db, 1.0);
    db.checkpoint().unwrap();
    rewrite(&db, 2.0);
    db.checkpoint().unwrap();
    drop(db);
    let first = dir.path().join("log").join("000000000001.seg");
    std::fs::remove_file(&first).unwrap();
    let db = open_manual(dir.path());
    let report = db.verify().unwrap();
    assert!(!report.is_ok(), "{:?}", report.files);
    let missing = report.files.iter().find(|f| f.path == first);
    assert!(missing.is_some_and(|f| f.problem.is_some()), "{:?}", report.files);
}

/// A checkpoint row whose log pointer leads to the same id in another collection (a file
/// written wrong under intact checksums) was read as this collection's record (from the
/// query review).
#[test]
fn a_pointer_into_another_collection_is_damage_not_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let open = || open_manual(dir.path());
    let db = open();
    db.create_collection("a", Schema::new().number("v")).unwrap();
    db.create_collection("b", Schema::new().number("v")).unwrap();
    let mut b = db.begin_write();
    b.upsert("a", Record::new("x", LatLon::new(1.0, 2.0).unwrap()).number("v", 1.0)).unwrap();
    b.upsert("b", Record::new("x", LatLon::new(1.0, 2.0).unwrap()).number("v", 2.0)).unwrap();
    b.commit().unwrap();
    db.checkpoint().unwrap();
    drop(db);
    swap_pointer_sections(dir.path());
    let db = open();
    let snap = db.read();
    for name in ["a", "b"] {
        let got = snap.collection(name).unwrap().get("x");
        assert!(matches!(got, Err(Error::Corrupt { .. })), "{name}: {got:?}");
    }
    drop(snap);
    // Compaction would copy each collection's row as the other's record, and drop the real
    // operations with the old segments (from the diff review): it refuses.
    let compacted = db.compact();
    assert!(matches!(compacted, Err(Error::Corrupt { .. })), "{compacted:?}");
}

/// The same swap under the blind-index scans: a lookup by e-mail read the other collection's
/// record as this one's and answered with its id (from the diff review).
#[test]
fn a_lookup_by_email_does_not_take_another_collections_record_for_this_one() {
    let dir = tempfile::tempdir().unwrap();
    let key = || geocrm::crypto::RawKey::new([9; 32]);
    let open = || Database::open(dir.path(), Options::new().key(key()).checkpoint_after_ops(None)).unwrap();
    let db = open();
    for c in ["a", "b"] {
        db.create_collection(c, Schema::new().pii_of_kind("email", geocrm::model::PiiKind::Email)).unwrap();
    }
    let mut b = db.begin_write();
    b.upsert("a", Record::new("x", LatLon::new(1.0, 2.0).unwrap()).pii("email", "ada@example.org")).unwrap();
    b.upsert("b", Record::new("x", LatLon::new(1.0, 2.0).unwrap()).pii("email", "bob@example.org")).unwrap();
    b.commit().unwrap();
    db.checkpoint().unwrap();
    drop(db);
    swap_pointer_sections(dir.path());
    let db = open();
    let snap = db.read();
    let found = snap.collection("a").unwrap().find_by_email("bob@example.org");
    assert!(matches!(found, Err(Error::Corrupt { .. })), "{found:?}");
}

/// Swaps the pointer sections (section 6: one row each) of the two checkpoint files in
/// `dir/index/`, checksums recomputed: each row then points at the other collection's record.
fn swap_pointer_sections(dir: &Path) {
    let files = checkpoint_files(dir);
    let [one, two] = &files[..] else { panic!("{files:?}") };
    let (mut a, mut b) = (std::fs::read(one).unwrap(), std::fs::read(two).unwrap());
    let (ra, rb) = (section(&a, 6), section(&b, 6));
    let pointer = a[ra.clone()].to_vec();
    a[ra].copy_from_slice(&b[rb.clone()]);
    b[rb].copy_from_slice(&pointer);
    reseal(&mut a, 6);
    reseal(&mut b, 6);
    std::fs::write(one, &a).unwrap();
    std::fs::write(two, &b).unwrap();
}

/// The database in `dir` (created if missing), checkpointed only when a test asks.
fn open_manual(dir: &Path) -> Database {
    Database::open(dir, Options::new().checkpoint_after_ops(None)).unwrap()
}

/// The `.ckpt` files in `dir/index/`, sorted.
fn checkpoint_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    files.sort();
    files
}

/// The byte range of section `i` of checkpoint file `bytes` (the section table at 40).
fn section(bytes: &[u8], i: usize) -> std::ops::Range<usize> {
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let (at, len) = (u64_at(40 + 16 * i), u64_at(40 + 16 * i + 8));
    at..at + len
}

/// Recomputes section `i`'s CRC-32 and the header's, after the section was changed.
fn reseal(bytes: &mut [u8], i: usize) {
    let crc = crc32fast::hash(&bytes[section(bytes, i)]);
    bytes[200 + 4 * i..204 + 4 * i].copy_from_slice(&crc.to_le_bytes());
    let head = crc32fast::hash(&bytes[..248]);
    bytes[248..252].copy_from_slice(&head.to_le_bytes());
}

/// The names of the files in `DIR/index/`, sorted.
fn index_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// One write, committed.
fn write(db: &Database, f: impl FnOnce(&mut geocrm::WriteBatch<'_>) -> geocrm::Result<()>) {
    let mut b = db.begin_write();
    f(&mut b).unwrap();
    b.commit().unwrap();
}

#[test]
fn a_checkpoint_keeps_the_files_of_collections_nothing_changed() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let open = || open_manual(dir.path());
    let db = open();
    db.create_collection("big", Schema::new().number("v").category("tier")).unwrap();
    db.create_collection("small", Schema::new()).unwrap();
    let at = |i: u32| LatLon::new(f64::from(i % 170) - 85.0, f64::from(i % 359) - 179.0).unwrap();
    let mut b = db.begin_write();
    for i in 0..2000 {
        b.upsert(
            "big",
            Record::new(format!("b{i}"), at(i)).number("v", f64::from(i)).category("tier", "gold"),
        )
        .unwrap();
    }
    for i in 0..5 {
        b.upsert("small", Record::new(format!("s{i}"), at(i * 7))).unwrap();
    }
    b.commit().unwrap();
    let first = db.checkpoint().unwrap();
    assert!(first.kept.is_empty());
    let big_file = first.files[0].clone();
    let inode = |name: &str| std::fs::metadata(dir.path().join("index").join(name)).unwrap().ino();
    let big_inode = inode(&big_file);

    // A write to the small collection only: the big one's file is named again, untouched.
    write(&db, |b| b.upsert("small", Record::new("s5", at(99))).map(drop));
    let second = db.checkpoint().unwrap();
    assert_eq!(second.kept, vec![big_file.clone()]);
    assert_eq!((second.rows, second.files.len()), (6, 2), "only the small collection is written");
    assert_eq!(second.files[0], big_file);
    assert_ne!(second.files[1], first.files[1]);
    assert_eq!(inode(&big_file), big_inode, "the kept file is the same file");
    assert_eq!(index_files(dir.path()), second.files, "the small collection's old file is gone");

    // A record added to the big collection (with a new category) and deleted again changes
    // nothing there; an update in the small one is written.
    let mut b = db.begin_write();
    b.upsert("big", Record::new("x", at(5)).category("tier", "new")).unwrap();
    b.commit().unwrap();
    write(&db, |b| b.delete("big", "x").map(drop));
    write(&db, |b| b.upsert("small", Record::new("s0", at(500))).map(drop));
    let third = db.checkpoint().unwrap();
    assert_eq!(third.kept, vec![big_file.clone()]);
    assert_eq!(third.rows, 6);
    assert!(db.verify().unwrap().is_ok());

    // Reopened: everything answers from the kept and the new files, nothing is replayed.
    drop(db);
    let db = open();
    assert_eq!(db.recovery_report().transactions, 0);
    assert!(db.verify().unwrap().is_ok());
    {
        let snap = db.read();
        let big = snap.collection("big").unwrap();
        assert_eq!(big.len(), 2000);
        assert!(big.get("x").unwrap().is_none());
        assert_eq!(big.get("b1234").unwrap().unwrap().numbers["v"], 1234.0);
        let near = big.nearest(at(1234), 1, &Filter::parse("tier = 'gold'").unwrap()).unwrap();
        assert_eq!(near[0].location, at(1234));
        assert_eq!(big.count(geocrm::query::Scope::All, &Filter::parse("tier = 'new'").unwrap()).unwrap(), 0);
        let small = snap.collection("small").unwrap();
        assert_eq!(small.len(), 6);
        assert_eq!(small.get("s0").unwrap().unwrap().location, at(500));
    }

    // A record deleted from the big collection: its file is written again.
    write(&db, |b| b.delete("big", "b7").map(drop));
    let fourth = db.checkpoint().unwrap();
    assert_eq!(fourth.kept, vec![fourth.files[1].clone()], "the small one is kept now");
    assert_ne!(fourth.files[0], big_file);
    assert_eq!(fourth.rows, 1999);
    // Compaction rewrites every file: the log under them is rewritten.
    write(&db, |b| b.upsert("small", Record::new("s6", at(3))).map(drop));
    let compacted = db.compact().unwrap();
    assert!(compacted.kept.is_empty());
    assert_eq!(compacted.rows, 1999 + 7);
    assert_eq!(index_files(dir.path()), compacted.files);
    drop(db);
    let db = open();
    assert!(db.verify().unwrap().is_ok());
    let snap = db.read();
    assert_eq!(snap.collection("big").unwrap().len(), 1999);
    assert!(snap.collection("big").unwrap().get("b7").unwrap().is_none());
    assert_eq!(snap.collection("small").unwrap().len(), 7);
}

#[test]
fn compaction_drops_superseded_deleted_and_erased_records_from_the_log() {
    use geocrm::crypto::RawKey;
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::new().key(RawKey::new([1; 32])).checkpoint_after_ops(None).segment_bytes(4096);
    let db = Database::open(dir.path(), options()).unwrap();
    db.create_collection("c", Schema::new().pii("name")).unwrap();
    for version in 0..5 {
        let mut b = db.begin_write();
        for i in 0..200 {
            let p = LatLon::new(10.0, f64::from(i) / 10.0).unwrap();
            b.upsert("c", Record::new(format!("r{i}"), p).pii("name", format!("Name {i} v{version}")))
                .unwrap();
        }
        b.commit().unwrap();
    }
    let mut b = db.begin_write();
    for i in 0..50 {
        b.delete("c", &format!("r{i}")).unwrap();
    }
    b.commit().unwrap();
    db.erase("c", "r60").unwrap();
    let log_bytes = |d: &Path| -> u64 {
        std::fs::read_dir(d.join("log")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
    };
    let before = log_bytes(dir.path());
    let report = db.compact().unwrap();
    assert!(report.segments_removed > 0);
    assert_eq!(db.next_lsn(), report.lsn, "the LSN after compaction's copies");
    assert!(db.checkpoint().unwrap().unchanged, "nothing was written since the compaction");
    let after = log_bytes(dir.path());
    assert!(after * 3 < before, "log went from {before} to {after} bytes");
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.len(), 149);
    assert_eq!(c.reveal("r61").unwrap()["name"].expose(), "Name 61 v4");
    assert!(c.get("r60").unwrap().is_none() && c.get("r10").unwrap().is_none());
    drop(snap);
    drop(db);
    let db = Database::open(dir.path(), options()).unwrap();
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.len(), 149);
    assert_eq!(c.reveal("r199").unwrap()["name"].expose(), "Name 199 v4");
    // Compaction re-wrote the record: its version now comes from the compacted log.
    assert!(c.get("r199").unwrap().unwrap().lsn > 1000);
    assert!(c.within_radius(LatLon::new(10.0, 6.0).unwrap(), 1.0, &Filter::All).unwrap().is_empty());
}

#[test]
fn automatic_checkpoints_follow_the_operation_count() {
    let dir = tempfile::tempdir().unwrap();
    // On the committing thread, so the counts below are deterministic (the background
    // default is tested with a held checkpoint above).
    let options = Options::new().checkpoint_after_ops(Some(50)).background_checkpoints(false);
    let db = Database::open(dir.path(), options).unwrap();
    db.create_collection("c", Schema::new()).unwrap();
    let commit = |from: u32| {
        let mut b = db.begin_write();
        for i in from..from + 30 {
            b.upsert("c", Record::new(format!("r{i}"), LatLon::new(1.0, f64::from(i) / 100.0).unwrap()))
                .unwrap();
        }
        b.commit().unwrap();
    };
    commit(0);
    assert!(db.stats().checkpoint.is_none(), "31 operations: no checkpoint yet");
    commit(30);
    let stats = db.stats();
    assert!(stats.checkpoint.is_some(), "61 operations: the committing thread checkpointed");
    assert_eq!((stats.collections["c"].checkpoint_rows, stats.collections["c"].memory_rows), (60, 0));
    assert_eq!(stats.auto_checkpoint_error, None);
    commit(60);
    let stats = db.stats();
    assert_eq!((stats.collections["c"].checkpoint_rows, stats.collections["c"].memory_rows), (60, 30));
    drop(db);
    let db = Database::open(dir.path(), Options::new()).unwrap();
    assert_eq!(db.recovery_report().transactions, 1, "only the commit after the checkpoint replays");
    assert_eq!(db.read().collection("c").unwrap().len(), 90);
}

/// A checkpoint over 4 MiB has its checksums computed on two threads: a flipped byte in any
/// of several places (first section, middle, last section) is still found at open (with
/// `verify_checkpoints_at_open`), and the state rebuilt from the log.
#[test]
fn damage_anywhere_in_a_large_checkpoint_is_found() {
    let fs = MemFs::new();
    let db = Database::open(DIR, options(&fs).checkpoint_after_ops(None)).unwrap();
    db.create_collection("c", Schema::new().number("n")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut batch = db.begin_write();
    for i in 0..60_000 {
        let at = LatLon::new(rng.gen_range(-80.0..80.0), rng.gen_range(-180.0..180.0)).unwrap();
        batch.upsert("c", Record::new(format!("r{i}"), at).number("n", f64::from(i))).unwrap();
    }
    batch.commit().unwrap();
    db.checkpoint().unwrap();
    drop(db);
    let file = checkpoint_file(&fs);
    let good = fs.read_all(&file).unwrap();
    assert!(good.len() > 4 << 20, "the file is large enough for two threads: {} bytes", good.len());
    for at in [300, good.len() / 3, good.len() / 2, good.len() / 2 + 1, good.len() - 5] {
        let img = fs.crash_image(0, CrashMode::SyncedOnly);
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        img.write_raw(&file, &bad);
        let db = Database::open(DIR, options(&img).verify_checkpoints_at_open(true)).unwrap();
        let why = db.checkpoint_rejected().unwrap_or_else(|| panic!("byte {at}: damage not found"));
        assert!(why.contains("checksum") || why.contains("zero"), "byte {at}: {why}");
        assert_eq!(db.read().collection("c").unwrap().len(), 60_000, "byte {at}");
    }
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert!(db.checkpoint_rejected().is_none());
}

/// Holds the first write of a checkpoint file (`*.ckpt.tmp`) until released, so a test can
/// act while a checkpoint is being built (through a [`HookedFs`]).
#[derive(Debug, Default)]
struct Gate {
    /// (a checkpoint reached the gate, the gate is open)
    state: std::sync::Mutex<(bool, bool)>,
    cv: std::sync::Condvar,
    /// Whether whole reads of log segments (a subject export's scan) are held too.
    segment_reads: std::sync::atomic::AtomicBool,
}

impl Gate {
    fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 = true;
        self.cv.notify_all();
        while !s.1 {
            s = self.cv.wait(s).unwrap();
        }
    }
    fn wait_until_reached(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.0 {
            s = self.cv.wait(s).unwrap();
        }
    }
    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

impl Hook for Gate {
    fn create_new(&self, path: &Path) {
        if path.to_string_lossy().ends_with(".ckpt.tmp") {
            self.pass();
        }
    }
    fn read(&self, path: &Path) {
        if path.to_string_lossy().ends_with(".seg")
            && self.segment_reads.load(std::sync::atomic::Ordering::SeqCst)
        {
            self.pass();
        }
    }
}

fn gated_options(fs: &MemFs, gate: &Arc<Gate>) -> Options {
    options(fs).file_system(Arc::new(HookedFs { inner: fs.clone(), hook: gate.clone() }))
}

/// Runs `f` on another thread and fails the test if it has not finished within a minute
/// (a commit or a read that waits for the held checkpoint would never finish).
fn within_a_minute<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} waited for the checkpoint being built"))
}

#[test]
fn commits_and_reads_go_on_while_a_checkpoint_is_built_and_it_hides_what_they_replaced() {
    for seed in 0..12u64 {
        let (fs, gate) = (MemFs::new(), Arc::new(Gate::default()));
        // "quiet" has a checkpoint file and no write until the build: the build keeps it.
        add_quiet(&Database::open(Path::new(DIR), options(&fs)).unwrap());
        let db =
            Database::open(Path::new(DIR), gated_options(&fs, &gate).checkpoint_after_ops(None)).unwrap();
        db.create_collection("c", Schema::new().pii("name")).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut acked = State::new();
        for _ in 0..8 {
            let (result, after) = random_commit(&db, &mut rng, &acked);
            result.unwrap();
            acked = after;
        }
        let snapshot_rows = acked.len() as u64;
        let building = {
            let db = db.clone();
            std::thread::spawn(move || db.checkpoint())
        };
        gate.wait_until_reached();
        // The checkpoint holds its snapshot; upserts, deletes and reads of the same ids go on.
        let (db2, after) = within_a_minute("a commit", {
            let (db, acked) = (db.clone(), acked.clone());
            move || {
                let mut rng = ChaCha8Rng::seed_from_u64(seed + 1000);
                let mut acked = acked;
                for _ in 0..8 {
                    let (result, after) = random_commit(&db, &mut rng, &acked);
                    result.unwrap();
                    acked = after;
                }
                (db, acked)
            }
        });
        acked = after;
        // A collection created while the checkpoint is built has no file yet: it lives in
        // memory and in the log tail.
        let mut b = db2.begin_write();
        b.create_collection("d", Schema::new().number("n")).unwrap();
        b.upsert("d", Record::new("d1", LatLon::new(5.0, 5.0).unwrap()).number("n", 1.0)).unwrap();
        // And the kept collection changes meanwhile: a new record, an update, a deletion.
        b.upsert("quiet", Record::new("q20", LatLon::new(7.0, 7.0).unwrap()).number("n", 20.0)).unwrap();
        b.upsert("quiet", Record::new("q3", LatLon::new(8.0, 8.0).unwrap()).number("n", 33.0)).unwrap();
        b.delete("quiet", "q5").unwrap();
        b.commit().unwrap();
        let seen = within_a_minute("a read", move || read_state(&db2));
        assert_eq!(seen, acked, "seed {seed}: reads during the build");
        gate.open();
        let report = building.join().unwrap().unwrap();
        assert_eq!(report.rows, snapshot_rows, "seed {seed}: the checkpoint holds its snapshot");
        assert_eq!(report.kept.len(), 1, "seed {seed}: the quiet collection's file is kept");
        assert_eq!(read_state(&db), acked, "seed {seed}: after the swap");
        let quiet_changed = |db: &Database, what: &str| {
            let snap = db.read();
            let q = snap.collection("quiet").unwrap();
            assert_eq!(q.len(), 20, "seed {seed}: {what}");
            assert!(q.get("q5").unwrap().is_none(), "seed {seed}: {what}");
            assert_eq!(q.get("q3").unwrap().unwrap().numbers["n"], 33.0, "seed {seed}: {what}");
            assert_eq!(q.get("q20").unwrap().unwrap().numbers["n"], 20.0, "seed {seed}: {what}");
            assert_eq!(q.get("q4").unwrap().unwrap().numbers["n"], 4.0, "seed {seed}: {what}");
        };
        quiet_changed(&db, "after the swap");
        drop(db);
        let db = Database::open(
            Path::new(DIR),
            options(&fs).checkpoint_after_ops(None).verify_checkpoints_at_open(true),
        )
        .unwrap();
        assert_eq!(db.checkpoint_rejected(), None);
        assert_eq!(read_state(&db), acked, "seed {seed}: reopened (checkpoint + replayed tail)");
        quiet_changed(&db, "reopened");
        db.checkpoint().unwrap();
        assert_eq!(read_state(&db), acked, "seed {seed}: next checkpoint");
        quiet_changed(&db, "next checkpoint");
        let d = db.read().collection("d").unwrap().get("d1").unwrap().unwrap();
        assert_eq!(d.numbers.get("n"), Some(&1.0));
    }
}

/// A run of upserts longer than the bulk apply's threshold (16,384), committed while a
/// checkpoint is being built, goes into the table at once, its ids journaled first: the
/// checkpoint's new file still hides the snapshot rows the run replaced. Reads are the
/// model's during the build, after the swap, after a reopen and after the next checkpoint.
#[test]
fn a_long_run_committed_while_a_checkpoint_is_built_replaces_the_snapshot_rows() {
    use geocrm::query::{GroupBy, Scope};
    use std::collections::BTreeMap;
    let (fs, gate) = (MemFs::new(), Arc::new(Gate::default()));
    let db = Database::open(Path::new(DIR), gated_options(&fs, &gate).checkpoint_after_ops(None)).unwrap();
    db.create_collection("c", Schema::new().number("n")).unwrap();
    // id → (lat, lon, n); every n an integer, so sums are exact in any order.
    let mut model: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    let commit = |db: &Database, ids: std::ops::Range<u32>, shift: f64, add: f64, deletes: &[&str]| {
        let mut b = db.begin_write();
        let mut written = Vec::new();
        for i in ids {
            let (lat, lon) = (f64::from(i % 160) - 80.0 + shift, f64::from(i / 160) * 0.9 - 170.0);
            let n = f64::from(i) + add;
            b.upsert("c", Record::new(format!("r{i}"), LatLon::new(lat, lon).unwrap()).number("n", n))
                .unwrap();
            written.push((format!("r{i}"), (lat, lon, n)));
        }
        for id in deletes {
            b.delete("c", id).unwrap();
        }
        b.commit().unwrap();
        written
    };
    model.extend(commit(&db, 0..20_000, 0.0, 0.0, &[]));
    let building = {
        let db = db.clone();
        std::thread::spawn(move || db.checkpoint())
    };
    gate.wait_until_reached();
    // Half the run replaces rows of the checkpoint's snapshot, half is new; then two deletes,
    // one of a replaced row.
    let (db, written) = within_a_minute("a long commit", move || {
        let written = commit(&db, 10_000..30_000, 0.25, 100_000.0, &["r3", "r15000"]);
        (db, written)
    });
    model.extend(written);
    model.remove("r3");
    model.remove("r15000");
    let check = |db: &Database, what: &str| {
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        let seen: BTreeMap<String, (f64, f64)> = c
            .within_radius(LatLon::new(0.0, 0.0).unwrap(), 3e7, &Filter::All)
            .unwrap()
            .into_iter()
            .map(|n| (n.id, (n.location.lat(), n.location.lon())))
            .collect();
        let want: BTreeMap<String, (f64, f64)> =
            model.iter().map(|(id, &(lat, lon, _))| (id.clone(), (lat, lon))).collect();
        assert!(seen == want, "{what}: {} records seen, {} in the model", seen.len(), want.len());
        let all = c.aggregate(Scope::All, &GroupBy::Nothing, &["n"], &Filter::All).unwrap();
        let stats = all.get(0).expect("one group").fields[0];
        assert_eq!(
            (stats.count, stats.sum),
            (model.len() as u64, model.values().map(|v| v.2).sum()),
            "{what}"
        );
        for id in ["r0", "r9999", "r10000", "r19999", "r20000", "r29999"] {
            let got = c.get(id).unwrap().unwrap_or_else(|| panic!("{what}: {id} lost"));
            assert_eq!(got.numbers["n"], model[id].2, "{what}: {id}");
        }
        assert!(c.get("r3").unwrap().is_none() && c.get("r15000").unwrap().is_none(), "{what}");
    };
    check(&db, "during the build");
    gate.open();
    let report = building.join().unwrap().unwrap();
    assert_eq!(report.rows, 20_000, "the checkpoint holds its snapshot");
    check(&db, "after the swap");
    drop(db);
    let db = Database::open(
        Path::new(DIR),
        options(&fs).checkpoint_after_ops(None).verify_checkpoints_at_open(true),
    )
    .unwrap();
    // Answered from the checkpoint, not from a rebuild after rejecting it.
    assert_eq!(db.checkpoint_rejected(), None);
    check(&db, "reopened");
    db.checkpoint().unwrap();
    check(&db, "next checkpoint");
}

#[test]
fn an_automatic_checkpoint_runs_in_the_background_and_closing_waits_for_it() {
    let (fs, gate) = (MemFs::new(), Arc::new(Gate::default()));
    let db =
        Database::open(Path::new(DIR), gated_options(&fs, &gate).checkpoint_after_ops(Some(20))).unwrap();
    db.create_collection("c", Schema::new().pii("name")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut acked = State::new();
    // Every commit returns although the checkpoint the first ones started cannot finish.
    let (db, acked_now) = within_a_minute("a commit that starts a checkpoint", move || {
        for _ in 0..40 {
            let (result, after) = random_commit(&db, &mut rng, &acked);
            result.unwrap();
            acked = after;
        }
        (db, acked)
    });
    gate.wait_until_reached();
    assert_eq!(read_state(&db), acked_now);
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            gate.open();
        })
    };
    let clone = db.clone();
    drop(db); // not the last handle: returns at once
    drop(clone); // the last one: waits for the checkpoint, then unlocks the directory
    opener.join().unwrap();
    // No waiting for the lock: it must be free already.
    let db = Database::open(Path::new(DIR), options(&fs).lock_wait(std::time::Duration::ZERO)).unwrap();
    assert!(
        fs.list_files().iter().any(|p| p.extension().is_some_and(|e| e == "ckpt")),
        "a checkpoint was published"
    );
    assert_eq!(read_state(&db), acked_now);
}

#[test]
fn automatic_checkpoints_also_follow_the_log_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let options = |ops: Option<u64>| {
        Options::new()
            .checkpoint_after_ops(ops)
            .checkpoint_after_log_bytes(Some(64 << 10))
            .background_checkpoints(false)
    };
    let db = Database::open(dir.path(), options(Some(1_000_000))).unwrap();
    db.create_collection("c", Schema::new().category("note")).unwrap();
    // About 1 KiB per record: the byte trigger fires long before the operation count.
    let commit = |db: &Database, from: u32, n: u32| {
        let mut b = db.begin_write();
        for i in from..from + n {
            let r = Record::new(format!("r{i}"), LatLon::new(1.0, f64::from(i) / 1000.0).unwrap())
                .category("note", "x".repeat(1000));
            b.upsert("c", r).unwrap();
        }
        b.commit().unwrap();
    };
    commit(&db, 0, 20);
    let stats = db.stats();
    assert!(stats.checkpoint.is_none(), "about 20 KiB: no checkpoint yet");
    assert!(
        (20_000..64 << 10).contains(&stats.log_bytes_since_checkpoint),
        "{}",
        stats.log_bytes_since_checkpoint
    );
    commit(&db, 20, 50);
    let stats = db.stats();
    assert!(stats.checkpoint.is_some(), "about 70 KiB: checkpointed");
    assert_eq!((stats.log_bytes_since_checkpoint, stats.collections["c"].checkpoint_rows), (0, 70));
    commit(&db, 70, 30);
    drop(db);
    // Opening counts the tail it replayed; automatic checkpoints off means off.
    let db = Database::open(dir.path(), options(None)).unwrap();
    let tail = db.stats().log_bytes_since_checkpoint;
    assert!((30_000..40_000).contains(&tail), "{tail}");
    commit(&db, 100, 60);
    let stats = db.stats();
    assert!(stats.log_bytes_since_checkpoint > 64 << 10);
    assert_eq!(stats.collections["c"].checkpoint_rows, 70, "no automatic checkpoint with ops = None");
    assert_eq!(db.read().collection("c").unwrap().len(), 160);
}

/// Every file under the database directory that contains `needle`.
fn files_holding(fs: &MemFs, needle: &[u8]) -> Vec<std::path::PathBuf> {
    fs.list_files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt" || e == "tmp"))
        .filter(|p| fs.read_all(p).is_some_and(|b| b.windows(needle.len()).any(|w| w == needle)))
        .collect()
}

/// An erasure while a checkpoint whose snapshot holds the record is being built: `erase`
/// returns only once no index file holds the record.
#[test]
fn an_erasure_during_a_checkpoint_build_leaves_no_index_file_holding_the_record() {
    let (fs, gate) = (MemFs::new(), Arc::new(Gate::default()));
    let db = Database::open(Path::new(DIR), gated_options(&fs, &gate).checkpoint_after_ops(None)).unwrap();
    db.create_collection("c", Schema::new().pii("name")).unwrap();
    let mut b = db.begin_write();
    for i in 0..20 {
        let r = Record::new(format!("keep{i}"), LatLon::new(1.0, f64::from(i)).unwrap());
        b.upsert("c", r).unwrap();
    }
    // Only in memory: no checkpoint file holds it yet.
    b.upsert("c", Record::new("erase-me-please", LatLon::new(2.0, 2.0).unwrap()).pii("name", "Eve")).unwrap();
    b.commit().unwrap();
    let building = {
        let db = db.clone();
        std::thread::spawn(move || db.checkpoint())
    };
    gate.wait_until_reached(); // its snapshot holds the record
    let erasing = {
        let db = db.clone();
        std::thread::spawn(move || db.erase("c", "erase-me-please"))
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    gate.open();
    building.join().unwrap().unwrap();
    let receipt = erasing.join().unwrap().unwrap();
    assert!(receipt.existed);
    assert!(receipt.checkpoint_lsn.is_some(), "the built checkpoint held it, so erase wrote another");
    assert_eq!(files_holding(&fs, b"erase-me-please"), Vec::<std::path::PathBuf>::new());
    assert!(!files_holding(&fs, b"keep7").is_empty(), "the scan looks at the right files");
    drop(db);
    let db = Database::open(Path::new(DIR), options(&fs).checkpoint_after_ops(None)).unwrap();
    assert!(db.read().collection("c").unwrap().get("erase-me-please").unwrap().is_none());
    assert_eq!(db.read().collection("c").unwrap().len(), 20);
}

/// A checkpoint row's log pointer holds no frame length (the frame's header gives it): a
/// damaged length field under a point read is `Corrupt` at that frame — a length past the
/// segment's end, or past the format's limit — never an I/O error or a huge read.
#[test]
fn point_reads_through_a_damaged_frame_length_are_corruption_at_the_frame() {
    for (damage, why) in
        [(1_000_000u32, "runs past the end of the segment"), (u32::MAX, "beyond the format's limit")]
    {
        let fs = MemFs::new();
        let db = setup(&fs);
        let mut batch = db.begin_write();
        batch.upsert("c", Record::new("r1", LatLon::new(1.0, 2.0).unwrap())).unwrap();
        batch.commit().unwrap();
        db.checkpoint().unwrap();
        drop(db);
        // The last frame of the first segment holds the upsert; the checkpoint names it.
        let seg = geocrm::log::segment_path(&Path::new(DIR).join(geocrm::log::LOG_DIR), 1);
        let mut bytes = fs.read_all(&seg).unwrap();
        let (mut at, mut last) = (geocrm::log::SEGMENT_HEADER_LEN, 0);
        while at + 8 <= bytes.len() {
            last = at;
            at += 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        }
        bytes[last..last + 4].copy_from_slice(&damage.to_le_bytes());
        fs.write_raw(&seg, &bytes);
        let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
        assert_eq!(db.checkpoint_rejected(), None);
        let read = db.read();
        match read.collection("c").unwrap().get("r1") {
            Err(Error::Corrupt { file, offset, reason }) => {
                assert_eq!((file, offset), (seg.clone(), last as u64));
                assert!(reason.contains(why), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Every answer a test asks of collection "c", as text, or `None` where a query failed
/// with `Corrupt` (any other error fails the test).
fn lazy_answers(db: &Database) -> Vec<Option<String>> {
    use geocrm::geo::BoundingBox;
    use geocrm::query::{GroupBy, Scope};
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    fn text<T: std::fmt::Debug>(r: geocrm::Result<T>) -> Option<String> {
        match r {
            Ok(v) => Some(format!("{v:?}")),
            Err(Error::Corrupt { .. }) => None,
            Err(e) => panic!("not a Corrupt error: {e}"),
        }
    }
    let cheap = Filter::parse("n >= 100 and tier = 'gold'").unwrap();
    let mut out = Vec::new();
    for (lat, lon) in [(0.0, 0.0), (89.9, 10.0), (-30.0, 179.9), (45.0, -179.9), (10.0, 100.0)] {
        let p = LatLon::new(lat, lon).unwrap();
        out.push(text(c.nearest(p, 7, &Filter::All)));
        out.push(text(c.nearest(p, 3, &cheap)));
        out.push(text(c.within_radius(p, 2_000_000.0, &Filter::All)));
        let bbox = BoundingBox::around(p, 1_500_000.0).unwrap();
        out.push(text(c.within_bbox(&bbox, &Filter::All)));
        out.push(text(c.count(Scope::BBox(&bbox), &cheap)));
    }
    out.push(text(c.count(Scope::All, &cheap)));
    out.push(text(c.aggregate(Scope::All, &GroupBy::H3(2), &["n"], &Filter::All)));
    out.push(text(c.aggregate(Scope::All, &GroupBy::Category("tier".into()), &["n"], &Filter::All)));
    for i in (0..330).step_by(7) {
        out.push(text(c.get(&format!("r{i}"))));
    }
    out
}

/// Opened the default way, a checkpoint's sections are checked on first use: with a byte of
/// any section flipped, every answer is the undamaged one or a `Corrupt` error — never a
/// wrong answer —, the damage is found by some query, the open's replay or the next
/// checkpoint (which refuses to copy the damaged rows), and `repair` rebuilds the file.
#[test]
fn a_section_damaged_where_not_yet_read_never_gives_a_wrong_answer() {
    let fs = MemFs::new();
    let opts = |fs: &MemFs| options(fs).checkpoint_after_ops(None);
    let db = Database::open(DIR, opts(&fs)).unwrap();
    db.create_collection("c", Schema::new().number("n").category("tier").pii("name")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut batch = db.begin_write();
    for i in 0..300 {
        let at = LatLon::new(rng.gen_range(-90.0..=90.0), rng.gen_range(-180.0..180.0)).unwrap();
        let tier = ["gold", "silver", "bronze"][i % 3];
        let r = Record::new(format!("r{i}"), at).number("n", f64::from(i as u32)).category("tier", tier);
        batch.upsert("c", r.pii("name", format!("secret-{i}"))).unwrap();
    }
    batch.commit().unwrap();
    db.checkpoint().unwrap();
    // Rows replaced and removed since the checkpoint, and new ones: replay looks them up.
    let mut batch = db.begin_write();
    for i in (0..300).step_by(13) {
        batch
            .upsert("c", Record::new(format!("r{i}"), LatLon::new(1.0, f64::from(i as u32) / 2.0).unwrap()))
            .unwrap();
    }
    for i in (5..300).step_by(29) {
        batch.delete("c", &format!("r{i}")).unwrap();
    }
    for i in 300..330 {
        batch
            .upsert("c", Record::new(format!("r{i}"), LatLon::new(-1.0, f64::from(i) / 3.0).unwrap()))
            .unwrap();
    }
    batch.commit().unwrap();
    let want = lazy_answers(&db);
    assert!(want.iter().all(Option::is_some));
    drop(db);
    let file = checkpoint_file(&fs);
    let good = fs.read_all(&file).unwrap();
    let section = |i: usize| {
        let at = 40 + 16 * i;
        let offset = u64::from_le_bytes(good[at..at + 8].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(good[at + 8..at + 16].try_into().unwrap()) as usize;
        offset..offset + len
    };
    for i in 0..10 {
        let range = section(i);
        assert!(!range.is_empty(), "section {i} is empty");
        for at in [range.start, range.start + range.len() / 2, range.end - 1] {
            let img = fs.crash_image(0, CrashMode::SyncedOnly);
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            img.write_raw(&file, &bad);
            let db = Database::open(DIR, opts(&img)).unwrap();
            // `get` first: its location can be the first read of the tree section.
            // ("r7": a checkpoint row never replaced, so its location is read from the tree.)
            let first = db.read().collection("c").unwrap().get("r7");
            let first = match first {
                Ok(v) => Some(format!("{v:?}")),
                Err(e) => {
                    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
                    None
                }
            };
            // lazy_answers: 5 points × 5 queries, a count, two aggregations, `get("r0")`, `get("r7")`.
            assert!(first.is_none() || first == want[29], "section {i}, byte {at}: get first: {first:?}");
            let got = lazy_answers(&db);
            for (n, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(g.is_none() || g == w, "section {i}, byte {at}: answer {n} is wrong: {g:?}");
            }
            let rejected = db.checkpoint_rejected().is_some();
            // Replay looked up the replaced rows' ids (id offsets, id bytes, id order): the
            // damage was found then, and the open rebuilt the state from the log.
            assert!(rejected || ![3, 4, 5].contains(&i), "section {i}, byte {at}: replay used it");
            let failed = got.iter().any(Option::is_none) || first.is_none();
            assert!(!(rejected && failed), "section {i}, byte {at}: a rebuilt state must answer");
            assert_eq!(
                db.stats().checkpoint_rejected.is_some(),
                rejected || failed,
                "section {i}, byte {at}"
            );
            let mut batch = db.begin_write();
            batch.upsert("c", Record::new("late", LatLon::new(2.0, 2.0).unwrap())).unwrap();
            batch.commit().unwrap();
            match db.checkpoint() {
                Ok(_) => assert!(rejected, "section {i}, byte {at}: the damaged rows were copied"),
                Err(e) => {
                    assert!(matches!(e, Error::Corrupt { .. }) && !rejected, "section {i}, byte {at}: {e}")
                }
            }
            drop(db);
            if !rejected {
                // The damage found left a marker: the next open checks the file whole, sets
                // it aside and rebuilds the state from the log.
                let db = Database::open(DIR, opts(&img)).unwrap();
                assert!(db.checkpoint_rejected().is_some(), "section {i}, byte {at}: not set aside");
                let got = lazy_answers(&db);
                let same = got.iter().zip(&want).filter(|(g, w)| g == w).count();
                assert!(same + 12 >= want.len(), "section {i}, byte {at}: {same} of {} agree", want.len());
                assert!(got.iter().all(Option::is_some), "section {i}, byte {at}");
                drop(db);
            }
            Database::repair(DIR, opts(&img)).unwrap();
            let db = Database::open(DIR, opts(&img).verify_checkpoints_at_open(true)).unwrap();
            assert!(db.checkpoint_rejected().is_none(), "section {i}, byte {at}");
            let mut got = lazy_answers(&db);
            assert_eq!(
                db.read().collection("c").unwrap().get("late").unwrap().map(|v| v.id),
                Some("late".into())
            );
            drop(db);
            // The "late" record is near none of the queries' answers but the counts.
            got.truncate(want.len());
            let same = got.iter().zip(&want).filter(|(g, w)| g == w).count();
            assert!(
                same + 12 >= want.len(),
                "section {i}, byte {at}: {same} of {} answers agree",
                want.len()
            );
        }
    }
}

/// A filtered query checks, on first use, only the attribute sections it reads: with the
/// number column damaged, a filter on a category still answers (rightly), and one on a
/// number is `Corrupt` (fails if a filter looks up every attribute section at once).
#[test]
fn a_filter_checks_only_the_attribute_sections_it_reads() {
    let fs = MemFs::new();
    let opts = |fs: &MemFs| options(fs).checkpoint_after_ops(None);
    let db = Database::open(DIR, opts(&fs)).unwrap();
    db.create_collection("c", Schema::new().number("n").category("tier")).unwrap();
    let mut batch = db.begin_write();
    for i in 0..90u32 {
        let r = Record::new(format!("r{i}"), LatLon::new(f64::from(i) / 2.0, 1.0).unwrap())
            .number("n", f64::from(i))
            .category("tier", ["gold", "silver", "bronze"][i as usize % 3]);
        batch.upsert("c", r).unwrap();
    }
    batch.commit().unwrap();
    db.checkpoint().unwrap();
    drop(db);
    let file = checkpoint_file(&fs);
    let mut bytes = fs.read_all(&file).unwrap();
    // Section 7 (the number column): its offset and length from the section table.
    let at = 40 + 16 * 7;
    let offset = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    bytes[offset + 3] ^= 0x10;
    let img = fs.crash_image(0, CrashMode::SyncedOnly);
    img.write_raw(&file, &bytes);
    let db = Database::open(DIR, opts(&img)).unwrap();
    let read = db.read();
    let c = read.collection("c").unwrap();
    let gold = Filter::parse("tier = 'gold'").unwrap();
    let near = c.nearest(LatLon::new(0.0, 1.0).unwrap(), 5, &gold).unwrap();
    assert_eq!(near.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["r0", "r3", "r6", "r9", "r12"]);
    assert_eq!(c.count(geocrm::query::Scope::All, &gold).unwrap(), 30);
    let by_number = c.count(geocrm::query::Scope::All, &Filter::parse("n >= 0").unwrap());
    assert!(matches!(by_number, Err(Error::Corrupt { .. })), "{by_number:?}");
}

/// Damage to one collection's id sections that the open's replay does not meet (the log tail
/// touches only the other collection): a batch writing to it is refused before it is logged
/// (applying it would leave the replaced row visible), its queries and any erasure or
/// checkpoint are `Corrupt`, the other collection keeps answering, and the next open sets the
/// file aside (its marker) and takes the write.
#[test]
fn damaged_id_sections_found_by_a_write_refuse_it_and_the_next_open_sets_the_file_aside() {
    let fs = MemFs::new();
    let opts = |fs: &MemFs| options(fs).checkpoint_after_ops(None);
    let db = Database::open(DIR, opts(&fs)).unwrap();
    for name in ["a", "b"] {
        db.create_collection(name, Schema::new()).unwrap();
        let mut batch = db.begin_write();
        for i in 0..200 {
            let at = LatLon::new(f64::from(i) / 10.0, 3.0).unwrap();
            batch.upsert(name, Record::new(format!("{name}{i}"), at)).unwrap();
        }
        batch.commit().unwrap();
    }
    db.checkpoint().unwrap();
    let mut batch = db.begin_write();
    batch.upsert("a", Record::new("a1", LatLon::new(-5.0, -5.0).unwrap())).unwrap();
    batch.commit().unwrap();
    drop(db);
    // b's file (collections in name order: a is -0000, b is -0001), its id order section.
    let file = fs
        .list_files()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("-0001.ckpt"))
        .expect("b's checkpoint file");
    let mut bytes = fs.read_all(&file).unwrap();
    let at = 40 + 16 * 5;
    let id_order = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    bytes[id_order + 9] ^= 0x01;
    fs.write_raw(&file, &bytes);

    let db = Database::open(DIR, opts(&fs)).unwrap();
    assert!(db.checkpoint_rejected().is_none(), "the replay did not read b's ids");
    let next = db.stats().next_lsn;
    let mut batch = db.begin_write();
    batch.upsert("b", Record::new("b7", LatLon::new(-9.0, -9.0).unwrap())).unwrap();
    let err = batch.commit().unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert_eq!(db.stats().next_lsn, next, "nothing was logged");
    assert!(db.stats().checkpoint_rejected.is_some());
    let snap = db.read();
    assert!(matches!(snap.collection("b").unwrap().get("b7"), Err(Error::Corrupt { .. })));
    assert_eq!(
        snap.collection("a").unwrap().get("a1").unwrap().unwrap().location,
        LatLon::new(-5.0, -5.0).unwrap()
    );
    drop(snap);
    assert!(matches!(db.erase("a", "a3"), Err(Error::Corrupt { .. })), "an erasure checks every file first");
    assert_eq!(db.stats().next_lsn, next, "nothing was logged");
    assert!(matches!(db.checkpoint(), Err(Error::Corrupt { .. })));
    drop(db);

    let db = Database::open(DIR, opts(&fs)).unwrap();
    assert!(db.checkpoint_rejected().is_some(), "the marker makes this open check b's file whole");
    let mut batch = db.begin_write();
    batch.upsert("b", Record::new("b7", LatLon::new(-9.0, -9.0).unwrap())).unwrap();
    batch.commit().unwrap();
    let snap = db.read();
    let b = snap.collection("b").unwrap();
    assert_eq!(b.len(), 200);
    assert_eq!(b.get("b7").unwrap().unwrap().location, LatLon::new(-9.0, -9.0).unwrap());
    let near = b.nearest(LatLon::new(-9.0, -9.0).unwrap(), 2, &Filter::All).unwrap();
    assert_eq!(near.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["b7", "b0"], "no stale copy of b7");
    drop(snap);
    db.erase("a", "a3").unwrap();
    db.checkpoint().unwrap();
    drop(db);
    assert!(
        !fs.list_files().iter().any(|p| p.to_string_lossy().ends_with(".damaged")),
        "the marker went with the replaced file"
    );
    let db = Database::open(DIR, opts(&fs)).unwrap();
    assert!(db.checkpoint_rejected().is_none());
    assert_eq!(db.read().collection("b").unwrap().len(), 200);
}

/// The `.damaged` marker's life: `verify` finding a damaged file leaves one (so the next
/// open, with or without checksums, sets the file aside at once) and makes the running
/// process refuse checkpoints from it, and a marker beside a sound file is removed by the open
/// that checks the file whole.
#[test]
fn damage_markers_come_from_verify_make_every_open_check_the_file_and_go_when_it_is_sound() {
    let fs = MemFs::new();
    let (acked, file, good) = checkpointed_small_db(&fs);
    let marker = std::path::PathBuf::from(format!("{}.damaged", file.display()));

    // A marker beside a sound file: checked whole, used, and the marker removed.
    fs.write_raw(&marker, b"");
    let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
    assert_eq!(db.checkpoint_rejected(), None);
    assert_eq!(read_state(&db), acked);
    drop(db);
    assert!(!fs.list_files().contains(&marker), "a sound file's marker is removed");

    // Damage in the cell order (read by no query of this test's state): `verify` finds it
    // and marks the file; every later open (with checksums or not) checks it whole, sets it
    // aside and rebuilds from the log.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x08;
    fs.write_raw(&file, &bad);
    let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
    assert_eq!(db.checkpoint_rejected(), None, "not read yet");
    assert!(!db.verify().unwrap().is_ok());
    // This process's mapping now refuses checkpoints too (its rows would be copied).
    assert!(matches!(db.checkpoint(), Err(Error::Corrupt { .. })));
    assert!(db.stats().checkpoint_rejected.is_some_and(|r| r.contains("verify")));
    let mut batch = db.begin_write();
    batch.upsert("c", Record::new("after-verify", LatLon::new(3.0, 3.0).unwrap())).unwrap();
    assert!(matches!(batch.commit(), Err(Error::Corrupt { .. })), "writes refused too");
    drop(db);
    assert!(fs.list_files().contains(&marker), "verify marked the file");
    // Even an open without checksums checks a marked file whole (it would otherwise copy its
    // rows into the next checkpoint) and sets it aside.
    let db = Database::open(Path::new(DIR), options(&fs).checkpoint_checksums(false)).unwrap();
    assert!(db.checkpoint_rejected().is_some(), "the marked file is checked whole and set aside");
    drop(db);
    assert!(fs.list_files().contains(&marker), "a rejected file keeps its marker");
    let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
    assert!(db.checkpoint_rejected().is_some(), "the marked file is checked whole and set aside");
    assert_eq!(read_state(&db), acked);
    db.checkpoint().unwrap();
    drop(db);
    assert!(!fs.list_files().contains(&marker), "the marker goes with the replaced file");
}

#[test]
fn commits_and_reads_go_on_while_a_subject_export_reads_the_log() {
    // The export held its snapshot while it scanned the log: every commit round waited for
    // it, and so did new snapshots behind the waiting writer (found by a reviewing helper).
    // Here the scan is held at its first segment read: a commit and a read must finish.
    let (fs, gate) = (MemFs::new(), Arc::new(Gate::default()));
    let db = Arc::new(
        Database::open(DIR, gated_options(&fs, &gate).key(geocrm::crypto::RawKey::new([2; 32]))).unwrap(),
    );
    db.create_collection("c", Schema::crm()).unwrap();
    for name in ["First Name", "Second Name"] {
        let mut b = db.begin_write();
        b.upsert("c", Record::new("S", LatLon::new(1.0, 2.0).unwrap()).pii("name", name)).unwrap();
        b.commit().unwrap();
    }
    gate.segment_reads.store(true, std::sync::atomic::Ordering::SeqCst);
    let exporting = {
        let db = db.clone();
        std::thread::spawn(move || db.export_subject("c", "S"))
    };
    gate.wait_until_reached();
    let writer = db.clone();
    within_a_minute("a commit during the export", move || {
        let mut b = writer.begin_write();
        b.upsert("c", Record::new("T", LatLon::new(3.0, 4.0).unwrap()).pii("name", "Other")).unwrap();
        b.commit().unwrap();
    });
    let reader = db.clone();
    let n = within_a_minute("a read during the export", move || reader.read().collection("c").unwrap().len());
    assert_eq!(n, 2);
    gate.open();
    let v = exporting.join().unwrap().unwrap();
    assert_eq!(v["pii"]["name"], "Second Name");
    assert_eq!(v["earlier_versions"][0]["pii"]["name"], "First Name");
    assert_eq!(v["earlier_versions"].as_array().map(Vec::len), Some(1), "{}", *v);
}

/// A category value no live record uses any more — its record deleted, erased, or updated
/// to another value — is left out of the next checkpoint's dictionary, a compaction's
/// included: written whole, the dictionary kept an erased customer's values in every later
/// index file (from the privacy review). The codes are renumbered: filters, group-bys and
/// reads give the same values, for records of the checkpoint and written after it, and after
/// reopening.
#[test]
fn a_category_value_no_record_uses_leaves_the_index_files() {
    use geocrm::query::{GroupBy, GroupKey, Scope};
    let dir = tempfile::tempdir().unwrap();
    let db = open_manual(dir.path());
    db.create_collection("c", Schema::new().category("t").category("u")).unwrap();
    let at = LatLon::new(1.0, 2.0).unwrap();
    let rec = |id: &str, t: &str, u: &str| Record::new(id, at).category("t", t).category("u", u);
    write(&db, |b| {
        b.upsert("c", rec("a", "Gone-Deleted", "x"))?;
        b.upsert("c", rec("b", "kept", "Gone-Updated"))?;
        b.upsert("c", rec("c", "kept", "y"))?;
        b.upsert("c", rec("d", "Gone-Erased", "z"))?;
        Ok(())
    });
    db.checkpoint().unwrap();
    write(&db, |b| {
        b.delete("c", "a")?;
        b.upsert("c", rec("b", "kept", "y"))?;
        Ok(())
    });
    db.erase("c", "d").unwrap();
    let in_files = |files: &[std::path::PathBuf], needle: &str| {
        files.iter().any(|f| std::fs::read(f).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes()))
    };
    let index: Vec<_> = index_files(dir.path()).iter().map(|n| dir.path().join("index").join(n)).collect();
    for gone in ["Gone-Deleted", "Gone-Updated", "Gone-Erased"] {
        assert!(!in_files(&index, gone), "{gone} is in an index file");
    }
    // Written again after the checkpoint, a value left out gets a code again.
    write(&db, |b| b.upsert("c", rec("e", "Gone-Deleted", "y")).map(drop));
    let check = |db: &Database, what: &str| {
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        let t_in = |v: &str| Filter::In { field: "t".into(), values: vec![v.into()] };
        assert_eq!(c.count(Scope::All, &t_in("kept")).unwrap(), 2, "{what}");
        assert_eq!(c.count(Scope::All, &t_in("Gone-Deleted")).unwrap(), 1, "{what}");
        assert_eq!(c.count(Scope::All, &t_in("Gone-Erased")).unwrap(), 0, "{what}");
        let u_y = Filter::In { field: "u".into(), values: vec!["y".into()] };
        assert_eq!(c.count(Scope::All, &u_y).unwrap(), 3, "{what}");
        let groups = c.aggregate(Scope::All, &GroupBy::Category("t".into()), &[], &Filter::All).unwrap();
        let mut got: Vec<(String, u64)> = groups
            .iter()
            .map(|g| match g.key {
                GroupKey::Category(v) => (v, g.count),
                other => panic!("{what}: {other:?}"),
            })
            .collect();
        got.sort();
        assert_eq!(got, [("Gone-Deleted".to_owned(), 1), ("kept".to_owned(), 2)], "{what}");
        let e = c.get("e").unwrap().unwrap();
        assert_eq!(e.categories["t"], "Gone-Deleted", "{what}");
        assert_eq!(c.get("b").unwrap().unwrap().categories["u"], "y", "{what}");
    };
    check(&db, "after the checkpoint and a write");
    db.checkpoint().unwrap();
    check(&db, "after a second checkpoint");
    write(&db, |b| b.delete("c", "e").map(drop));
    db.compact().unwrap();
    let all = super::cli::all_files(dir.path());
    for gone in ["Gone-Deleted", "Gone-Updated", "Gone-Erased"] {
        assert!(!in_files(&all, gone), "{gone} is in a file after compaction");
    }
    write(&db, |b| b.upsert("c", rec("e", "Gone-Deleted", "y")).map(drop));
    check(&db, "after compaction");
    drop(db);
    let db = Database::open(dir.path(), Options::new()).unwrap();
    check(&db, "after reopening");
}

/// Records written while a checkpoint is built keep their category values: the checkpoint's
/// file leaves out values no row of its snapshot uses and renumbers the rest, and the rows
/// written meanwhile are renumbered into the file's dictionary when it is installed (kept
/// with their old codes, one read as another value).
#[test]
fn category_values_written_during_a_checkpoint_build_survive_its_renumbering() {
    let (fs, gate) = (MemFs::new(), Arc::new(Gate::default()));
    let db = Database::open(Path::new(DIR), gated_options(&fs, &gate).checkpoint_after_ops(None)).unwrap();
    db.create_collection("c", Schema::new().category("t")).unwrap();
    let at = LatLon::new(3.0, 4.0).unwrap();
    write(&db, |b| {
        b.upsert("c", Record::new("r1", at).category("t", "unused"))?;
        b.upsert("c", Record::new("r2", at).category("t", "a"))?;
        Ok(())
    });
    write(&db, |b| b.delete("c", "r1").map(drop));
    let building = {
        let db = db.clone();
        std::thread::spawn(move || db.checkpoint())
    };
    gate.wait_until_reached();
    let db2 = within_a_minute("a commit", {
        let db = db.clone();
        move || {
            write(&db, |b| {
                b.upsert("c", Record::new("r3", at).category("t", "b"))?;
                b.upsert("c", Record::new("r4", at).category("t", "unused"))?;
                Ok(())
            });
            db
        }
    });
    gate.open();
    building.join().unwrap().unwrap();
    let check = |db: &Database, what: &str| {
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        for (id, t) in [("r2", "a"), ("r3", "b"), ("r4", "unused")] {
            assert_eq!(c.get(id).unwrap().unwrap().categories["t"], t, "{what}: {id}");
            let only = Filter::In { field: "t".into(), values: vec![t.into()] };
            assert_eq!(c.count(geocrm::query::Scope::All, &only).unwrap(), 1, "{what}: {t}");
        }
    };
    check(&db2, "after the swap");
    drop(db2);
    drop(db);
    check(&Database::open(Path::new(DIR), options(&fs)).unwrap(), "after reopening");
}
