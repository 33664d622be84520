//! Results: one row per operation and dataset, one cell per engine; printed as Markdown
//! tables (one per dataset) or as JSON.

use serde_json::{json, Value};

use super::measure::{fmt_ratio, fmt_us, Stats};

/// The engines compared, in table column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The geocrm database through its public API.
    Geocrm,
    /// geocrm's standalone packed R-tree and H3 cell column (what checkpoints will serve).
    Packed,
    /// An `rstar` R*-tree of 3D unit vectors, in memory.
    Rstar,
    /// A `kiddo` k-d tree of 3D unit vectors (feature `peers`).
    Kiddo,
    /// A `geo-index` static packed R-tree on lon/lat (feature `peers`).
    GeoIndex,
    /// SQLite's R*Tree module through `rusqlite` (feature `peers`).
    Sqlite,
    /// A brute-force haversine scan (a sample of queries only).
    Brute,
}

impl Engine {
    /// Every engine, in column order.
    pub const ALL: [Engine; 7] = [
        Engine::Geocrm,
        Engine::Packed,
        Engine::Rstar,
        Engine::Kiddo,
        Engine::GeoIndex,
        Engine::Sqlite,
        Engine::Brute,
    ];

    /// Column name.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Geocrm => "geocrm",
            Engine::Packed => "geocrm packed tree",
            Engine::Rstar => "rstar",
            Engine::Kiddo => "kiddo",
            Engine::GeoIndex => "geo-index",
            Engine::Sqlite => "SQLite R*Tree",
            Engine::Brute => "brute force",
        }
    }

    /// Whether this build can run the engine.
    pub fn built(self) -> bool {
        !matches!(self, Engine::Kiddo | Engine::GeoIndex | Engine::Sqlite) || cfg!(feature = "peers")
    }
}

/// What one engine gave for one operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answers matched geocrm's on the checked sample; timings.
    Timed(Stats),
    /// Answers differed from geocrm's: the timing is shown for information but is no result.
    Wrong(Stats, String),
    /// The engine cannot answer this operation (or is not in this build).
    NotApplicable,
}

/// One table row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Operation name, e.g. `nearest-10`.
    pub operation: String,
    /// `uniform` or `clustered`.
    pub dataset: &'static str,
    /// Per engine, in [`Engine::ALL`] order.
    pub cells: Vec<(Engine, Outcome)>,
}

impl Row {
    /// A row with every engine not applicable.
    pub fn new(operation: impl Into<String>, dataset: &'static str) -> Row {
        Row {
            operation: operation.into(),
            dataset,
            cells: Engine::ALL.iter().map(|&e| (e, Outcome::NotApplicable)).collect(),
        }
    }

    /// Sets an engine's outcome.
    pub fn set(&mut self, engine: Engine, outcome: Outcome) {
        if let Some(cell) = self.cells.iter_mut().find(|(e, _)| *e == engine) {
            cell.1 = outcome;
        }
    }

    fn geocrm_median(&self) -> Option<f64> {
        self.cells.iter().find_map(|(e, o)| match (e, o) {
            (Engine::Geocrm, Outcome::Timed(s)) => Some(s.median_us),
            _ => None,
        })
    }

    /// The engine's median divided by geocrm's (above 1: geocrm is faster).
    pub fn ratio(&self, stats: &Stats) -> Option<f64> {
        self.geocrm_median().filter(|g| *g > 0.0).map(|g| stats.median_us / g)
    }
}

fn cell_text(row: &Row, outcome: &Outcome) -> String {
    match outcome {
        Outcome::NotApplicable => "n/a".into(),
        Outcome::Wrong(s, _) => format!("WRONG ({})", fmt_us(s.median_us)),
        Outcome::Timed(s) => match row.ratio(s) {
            Some(r) => format!("{} ({})", fmt_us(s.median_us), fmt_ratio(r)),
            None => fmt_us(s.median_us),
        },
    }
}

/// How much a run measured.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Records per dataset.
    pub records: usize,
    /// Query points per dataset.
    pub query_points: usize,
}

/// The Markdown report: size, machine, commit, then one table per dataset, then the notes.
pub fn markdown(machine: &Value, commit: &str, size: Size, rows: &[Row], notes: &[String]) -> String {
    let Size { records, query_points } = size;
    let mut out = String::new();
    out.push_str(&format!(
        "geocrm bench: {records} records, {query_points} query points, commit {commit}\n\nmachine: {}, {} cores, {} GiB, {} {} ({} build{})\n",
        machine["cpu"].as_str().unwrap_or("unknown"),
        machine["cores"],
        machine["memory_gib"],
        machine["os"].as_str().unwrap_or(""),
        machine["arch"].as_str().unwrap_or(""),
        machine["build"].as_str().unwrap_or(""),
        if cfg!(feature = "peers") { ", peers" } else { "" },
    ));
    let engines: Vec<Engine> = Engine::ALL.iter().copied().filter(|e| e.built()).collect();
    let mut datasets: Vec<&'static str> = Vec::new();
    for r in rows {
        if !datasets.contains(&r.dataset) {
            datasets.push(r.dataset);
        }
    }
    for d in datasets {
        out.push_str(&format!("\n### {d} dataset\n\nmedian per operation (ratio to geocrm; above 1× geocrm is faster)\n\n| operation |"));
        for e in &engines {
            out.push_str(&format!(" {} |", e.name()));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(engines.len()));
        out.push('\n');
        for r in rows.iter().filter(|r| r.dataset == d) {
            out.push_str(&format!("| {} |", r.operation));
            for e in &engines {
                let text =
                    r.cells.iter().find(|(c, _)| c == e).map_or("n/a".into(), |(_, o)| cell_text(r, o));
                out.push_str(&format!(" {text} |"));
            }
            out.push('\n');
        }
    }
    if !notes.is_empty() {
        out.push_str("\nnotes:\n");
        for n in notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out
}

/// The JSON report: `{"machine", "commit", "records", "query_points", "notes", "rows":
/// [{"operation", "dataset", "engine", "median_us", "p90_us", "reps", "ratio_to_geocrm",
/// "status", "wrong_because"}]}`; one entry per engine that ran (not-applicable cells are
/// left out).
pub fn json(machine: &Value, commit: &str, size: Size, rows: &[Row], notes: &[String]) -> Value {
    let mut out = Vec::new();
    for r in rows {
        for (e, o) in &r.cells {
            let (s, status, why) = match o {
                Outcome::NotApplicable => continue,
                Outcome::Timed(s) => (s, "ok", None),
                Outcome::Wrong(s, why) => (s, "wrong", Some(why.clone())),
            };
            out.push(json!({
                "operation": r.operation,
                "dataset": r.dataset,
                "engine": e.name(),
                "median_us": s.median_us,
                "p90_us": s.p90_us,
                "reps": s.reps,
                "ratio_to_geocrm": r.ratio(s),
                "status": status,
                "wrong_because": why,
            }));
        }
    }
    json!({
        "machine": machine,
        "commit": commit,
        "records": size.records,
        "query_points": size.query_points,
        "rows": out,
        "notes": notes,
    })
}
