//! The `geocrm` binary, run as a child process in temporary directories: every command of
//! the README's contract checked against a brute force (`queries`), and bad input of every
//! kind rejected with a clear message and nothing written (`errors`).

mod errors;
mod maintenance;
mod privacy;
mod queries;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// A master key as GEOCRM_KEY takes it (64 hex characters).
pub const KEY: &str = "8f3a1c0e9b7d6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877";
pub const TIERS: [&str; 3] = ["bronze", "silver", "gold"];
pub const HEADER: &str = "id,lat,lon,name,phone,email,address,ltv,visits,tier";
pub const PII_ARG: &str = "name,phone,email,address";

/// One CSV row of the fixture.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub lat: f64,
    pub lon: f64,
    pub pii: [String; 4],
    pub ltv: Option<f64>,
    pub visits: f64,
    pub tier: Option<&'static str>,
}

/// 60 customers: mostly around Paris, some anywhere, some by the antimeridian. Rows with
/// i % 7 == 0 have no ltv, rows with i % 5 == 0 no tier. PII values are distinctive so a
/// byte scan cannot miss them.
pub fn fixture() -> Vec<Row> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_240_611);
    (0..60)
        .map(|i| {
            let (lat, lon) = match i % 6 {
                0 => (rng.gen_range(-70.0..70.0), rng.gen_range(-180.0..180.0)),
                1 => (rng.gen_range(-20.0..-10.0), rng.gen_range(175.0..180.0)),
                2 => (rng.gen_range(-20.0..-10.0), rng.gen_range(-180.0..-175.0)),
                _ => (rng.gen_range(48.6..49.1), rng.gen_range(2.0..2.7)),
            };
            Row {
                id: format!("C-{i:04}"),
                lat,
                lon,
                pii: [
                    format!("Ada \"Countess\" Lovelace{i:03}"),
                    format!("+33 1 42 {i:03} 9876"),
                    format!("ada.lovelace{i:03}@example.org"),
                    format!("{i} Rue de Rivoli, 7500{} Paris\nFrance", i % 10),
                ],
                ltv: (i % 7 != 0).then(|| (rng.gen_range(0.0..2000.0f64) * 100.0).round() / 100.0),
                visits: f64::from(rng.gen_range(0u32..30)),
                tier: (i % 5 != 0).then(|| TIERS[rng.gen_range(0..3)]),
            }
        })
        .collect()
}

/// The fixture as CSV (quoted where needed by the csv crate).
pub fn csv_of(rows: &[Row]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER.split(',')).unwrap();
    for r in rows {
        let mut rec = vec![r.id.clone(), r.lat.to_string(), r.lon.to_string()];
        rec.extend(r.pii.iter().cloned());
        rec.push(r.ltv.map(|v| v.to_string()).unwrap_or_default());
        rec.push(r.visits.to_string());
        rec.push(r.tier.unwrap_or_default().to_owned());
        w.write_record(&rec).unwrap();
    }
    w.into_inner().unwrap()
}

/// A temporary directory with a database path (not yet created) inside it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("crm.db");
        Env { dir, db }
    }

    pub fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Runs `geocrm <cmd> --db DB <args>`, with GEOCRM_KEY set only when `key`.
    pub fn run(&self, key: bool, cmd: &str, args: &[&str]) -> Output {
        run_at(&self.db, key, cmd, args)
    }

    /// Runs without a key and returns stdout, failing the test on a non-zero exit.
    pub fn ok(&self, cmd: &str, args: &[&str]) -> String {
        ok(&self.run(false, cmd, args))
    }

    /// As `ok`, parsing stdout as JSON (`--json` is added).
    pub fn json(&self, cmd: &str, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(cmd, &a)).unwrap()
    }

    /// Runs without a key and returns stderr, failing the test on a zero exit.
    pub fn fail(&self, cmd: &str, args: &[&str]) -> String {
        fail(&self.run(false, cmd, args))
    }

    /// Imports the fixture with the key; returns the rows.
    pub fn import_fixture(&self) -> Vec<Row> {
        let rows = fixture();
        let csv = self.file("customers.csv", csv_of(&rows));
        let out = ok(&self.run(true, "import", &[csv.to_str().unwrap(), "--pii", PII_ARG, "--json"]));
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            report,
            serde_json::json!({"imported": 60, "replaced": 0, "rejected": 0, "created_collection": true, "missing_values": {}, "empty_rows": 0, "notes": [], "schema": {"numbers": ["ltv", "visits"], "categories": ["tier"], "pii": ["name", "phone", "email", "address"], "phones": [], "emails": []}, "fields_not_in_file": []})
        );
        rows
    }

    /// Records in the `customers` collection, or None when it does not exist.
    pub fn records(&self) -> Option<u64> {
        let stats = self.json("stats", &[]);
        stats["collections"].get("customers").map(|c| c["records"].as_u64().unwrap())
    }
}

pub fn run_at(db: &Path, key: bool, cmd: &str, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_geocrm"));
    c.arg(cmd).arg("--db").arg(db).args(args);
    if key {
        c.env("GEOCRM_KEY", KEY);
    } else {
        c.env_remove("GEOCRM_KEY");
    }
    c.output().unwrap()
}

pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "expected success, got {:?}; stderr:\n{stderr}", out.status);
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn fail(out: &Output) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(!out.status.success(), "expected failure; stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.trim().is_empty(), "a failure must explain itself on stderr");
    stderr
}

/// The newest log segment of the database in `db`.
pub fn newest_segment(db: &Path) -> PathBuf {
    all_files(&db.join("log"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max()
        .unwrap()
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    memchr::memmem::find(haystack, needle.as_bytes()).is_some()
}
