//! `geocrm bench`: geocrm beside its peers on the same seeded data and queries, one table of
//! ratios.
//!
//! For each dataset (uniform, clustered) the records are bulk-loaded into a temporary
//! database and into every engine; every query is answered by geocrm first, each peer's
//! answers on a sample of queries are checked against geocrm's (counts and groups must be
//! equal, nearest distances equal to a millimetre), and then each engine is timed on many
//! varied query points, each call on its own with `Instant`. A peer that disagrees is marked
//! `WRONG`: a faster wrong answer is not a result.

mod durable;
mod engines;
mod fixtures;
mod measure;
#[cfg(feature = "peers")]
mod peers;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use geocrm::dataset::{customers, Customer, Distribution};
use geocrm::geo::{haversine_m, BoundingBox};
use geocrm::index::h3::H3IndexRef;
use geocrm::{Database, Durability, Error, Filter, LatLon, Options, Result};

use engines::{Backend, Brute, Geocrm, Packed, PackedData, Rstar};
use fixtures::Region;
use measure::{time_each, Budget, Stats};
use report::{Engine, Outcome, Row};

/// Half the side of the bounding-box queries (a 50 km box).
pub const BBOX_HALF_M: f64 = 25_000.0;
/// Radius of the radius queries.
pub const RADIUS_M: f64 = 2_000.0;
/// The most query points `--query-points` takes (each is generated as a whole customer, a
/// few hundred bytes, then kept as its location and its box).
const MAX_QUERY_POINTS: usize = 1 << 20;
/// The most timed calls of a cell.
const MAX_REPS: usize = 50_000;
/// Untimed calls of each engine before it is timed on a point query, at query points of
/// their own, for at most [`WARMUP_TIME`]: the index's pages are mapped and what every query
/// reads (the upper levels of a tree) is cached, as in a process that has been answering
/// queries for a while.
const WARMUP_QUERIES: usize = 2_000;
const WARMUP_TIME: Duration = Duration::from_millis(100);
/// Query number of the first timed call: the checked queries come first, then the warm-up.
const TIMED_FROM: usize = CHECK_SAMPLE + WARMUP_QUERIES;
/// Default `--query-points`: every checked, warm-up and timed query of a cell at a point of
/// its own.
const DEFAULT_QUERY_POINTS: usize = 65_536;
const _: () = assert!(DEFAULT_QUERY_POINTS > TIMED_FROM + MAX_REPS);
/// Queries whose answers are checked against geocrm's, per engine (brute force: fewer).
const CHECK_SAMPLE: usize = 20;
const BRUTE_CHECK_SAMPLE: usize = 3;

/// Which datasets to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataChoice {
    /// Uniform on the sphere between latitudes -60 and 72.
    Uniform,
    /// Around city centres, weighted by population.
    Clustered,
    /// Both, one table each.
    Both,
}

/// Options of `geocrm bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Customers to generate per dataset.
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Which datasets.
    #[arg(long, value_enum, default_value_t = DataChoice::Both)]
    pub data: DataChoice,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
    /// Few repetitions (a smoke run, not a measurement).
    #[arg(long)]
    pub quick: bool,
    /// Query points, drawn from the dataset's distribution (query `i` uses point `i mod N`;
    /// the bbox and radius queries are centred on them). With the default, each query of a
    /// cell (20 checked, up to 2,000 to warm up, up to 50,000 timed) is at a point of its
    /// own, as a CRM's queries may come from anywhere on its map. A small set is cycled over,
    /// and what its queries read may still be cached when they come round again
    /// (BENCHMARKS.md, "Query points").
    #[arg(long, default_value_t = DEFAULT_QUERY_POINTS)]
    pub query_points: usize,
    /// Random seed of the datasets and query points.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also write the datasets, query points and polygons into this directory (for
    /// `scripts/postgis_bench.sh`).
    #[arg(long, value_name = "DIR")]
    pub export_csv: Option<PathBuf>,
}

/// The generated records with the columns the peers need.
pub struct Data {
    /// The customers.
    pub people: Vec<Customer>,
    /// Their locations.
    pub locs: Vec<LatLon>,
    /// Their tiers.
    pub tiers: Vec<&'static str>,
    /// Whether `tier = 'gold'`.
    pub gold: Vec<bool>,
    /// `lifetime_value`.
    pub values: Vec<f64>,
}

impl Data {
    fn new(people: Vec<Customer>) -> Data {
        Data {
            locs: people.iter().map(|c| c.location).collect(),
            tiers: people.iter().map(|c| c.tier).collect(),
            gold: people.iter().map(|c| c.tier == "gold").collect(),
            values: people.iter().map(|c| c.lifetime_value).collect(),
            people,
        }
    }
}

/// Query points, cycled through by query number.
#[derive(Clone, Copy)]
pub struct Points<'a>(&'a [LatLon]);

impl Points<'_> {
    /// Point number `i` (cyclic).
    pub fn at(&self, i: usize) -> LatLon {
        self.0.get(i % self.0.len().max(1)).copied().unwrap_or(LatLon::ORIGIN)
    }
}

/// Query boxes, cycled through by query number.
#[derive(Clone, Copy)]
pub struct Boxes<'a>(&'a [BoundingBox]);

impl Boxes<'_> {
    /// Box number `i` (cyclic).
    pub fn at(&self, i: usize) -> &BoundingBox {
        &self.0[i % self.0.len()]
    }
}

/// One kind of query.
pub enum Query<'a> {
    /// The k nearest by great-circle distance, optionally only `tier = 'gold'`.
    Nearest {
        /// How many.
        k: usize,
        /// Only gold customers.
        gold: bool,
        /// Query points.
        points: Points<'a>,
    },
    /// Count within a radius.
    Radius {
        /// Radius.
        metres: f64,
        /// Centres.
        points: Points<'a>,
    },
    /// Count inside a box.
    BBox {
        /// The boxes.
        boxes: Boxes<'a>,
    },
    /// Count inside a (multi)polygon.
    Region(&'a Region),
    /// Count and sum of `lifetime_value` by H3 cell over every record.
    H3(u8),
}

/// An engine's answer, compared with geocrm's.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A count.
    Count(u64),
    /// Distances in metres, nearest first.
    Dists(Vec<f64>),
    /// Record numbers (their distances are computed for the comparison).
    Ids(Vec<u32>),
    /// (H3 cell, count, sum), sorted by cell.
    Groups(Vec<(u64, u64, f64)>),
    /// The database's own aggregation result (what its API returns, so the timing holds no
    /// conversion); compared as `Groups` of its first field's sums.
    Aggregation(geocrm::query::Groups),
    /// The engine failed.
    Failed(String),
}

/// Whether `got` is the same answer as `want` for query number `i`.
fn check(
    q: &Query<'_>,
    i: usize,
    data: &Data,
    want: &Answer,
    got: &Answer,
) -> std::result::Result<(), String> {
    let dists = |a: &Answer| -> Option<Vec<f64>> {
        match (a, q) {
            (Answer::Dists(d), _) => Some(d.clone()),
            (Answer::Ids(ids), Query::Nearest { points, .. }) => {
                let at = points.at(i);
                let mut d: Vec<f64> = ids
                    .iter()
                    .filter_map(|&id| data.locs.get(id as usize))
                    .map(|&p| haversine_m(at, p))
                    .collect();
                d.sort_by(f64::total_cmp);
                Some(d)
            }
            _ => None,
        }
    };
    let groups = |a: &Answer| -> Option<Vec<(u64, u64, f64)>> {
        match a {
            Answer::Groups(g) => Some(g.clone()),
            Answer::Aggregation(g) => Some(
                g.iter()
                    .map(|g| {
                        let cell = match g.key {
                            geocrm::query::GroupKey::Cell(c) => u64::from(c),
                            _ => 0,
                        };
                        (cell, g.count, g.fields.first().map_or(0.0, |s| s.sum))
                    })
                    .collect(),
            ),
            _ => None,
        }
    };
    match (want, got) {
        (_, Answer::Failed(e)) => Err(format!("query {i} failed: {e}")),
        (Answer::Count(a), Answer::Count(b)) if a == b => Ok(()),
        (Answer::Count(a), Answer::Count(b)) => Err(format!("query {i}: count {b}, geocrm {a}")),
        (a, b) if groups(a).is_some() && groups(b).is_some() => {
            let (a, b) = (groups(a).unwrap_or_default(), groups(b).unwrap_or_default());
            if a.len() != b.len() {
                return Err(format!("{} groups, geocrm {}", b.len(), a.len()));
            }
            for (x, y) in a.iter().zip(&b) {
                if x.0 != y.0 || x.1 != y.1 || (x.2 - y.2).abs() > 1e-6 * x.2.abs().max(1.0) {
                    return Err(format!(
                        "group {:x}: ({}, {}), geocrm {:x}: ({}, {})",
                        y.0, y.1, y.2, x.0, x.1, x.2
                    ));
                }
            }
            Ok(())
        }
        _ => match (dists(want), dists(got)) {
            (Some(a), Some(b)) if a.len() == b.len() => {
                match a.iter().zip(&b).position(|(x, y)| (x - y).abs() > 1e-3 + 1e-9 * x) {
                    None => Ok(()),
                    Some(j) => Err(format!("query {i}: neighbour {j} at {} m, geocrm {} m", b[j], a[j])),
                }
            }
            (Some(a), Some(b)) => Err(format!("query {i}: {} neighbours, geocrm {}", b.len(), a.len())),
            _ => Err(format!("query {i}: answers of different kinds")),
        },
    }
}

fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))
}

fn budget(quick: bool) -> Budget {
    if quick {
        Budget { time: Duration::from_millis(15), min_reps: 3, max_reps: 100 }
    } else {
        Budget { time: Duration::from_millis(400), min_reps: 30, max_reps: MAX_REPS }
    }
}

fn brute_budget(quick: bool) -> Budget {
    Budget { time: Duration::from_millis(300), min_reps: 1, max_reps: if quick { 1 } else { 5 } }
}

/// Calls `answer` for the warm-up queries ([`WARMUP_QUERIES`] at most, for [`WARMUP_TIME`]
/// at most; a quick run a fiftieth of that).
fn warm_up(quick: bool, answer: &mut dyn FnMut(usize) -> Option<Answer>) {
    let time = if quick { WARMUP_TIME / 50 } else { WARMUP_TIME };
    let started = Instant::now();
    for i in CHECK_SAMPLE..TIMED_FROM {
        std::hint::black_box(answer(i));
        if started.elapsed() >= time {
            break;
        }
    }
}

/// Times `answer(i)` on a cell's query numbers: after the warm-up when `warm` (a point
/// query), from [`TIMED_FROM`] on, past the checked and warm-up numbers.
fn time_engine(quick: bool, warm: bool, b: Budget, answer: &mut dyn FnMut(usize) -> Option<Answer>) -> Stats {
    if warm {
        warm_up(quick, answer);
    }
    time_each(b, &mut |i| answer(TIMED_FROM + i))
}

/// Progress goes to stderr, so `--json` output on stdout stays clean.
fn progress(what: &str) {
    eprintln!("bench: {what}");
}

/// Runs the bench and prints the table (or JSON).
pub fn run(args: &BenchArgs) -> Result<()> {
    if args.records == 0 || args.records > super::MAX_SYNTHETIC_RECORDS {
        let why =
            format!("the bench takes 1 to {} records, not {}", super::MAX_SYNTHETIC_RECORDS, args.records);
        return Err(Error::invalid_argument("records", why));
    }
    if args.query_points == 0 || args.query_points > MAX_QUERY_POINTS {
        let why = format!("the bench takes 1 to {MAX_QUERY_POINTS} query points, not {}", args.query_points);
        return Err(Error::invalid_argument("query-points", why));
    }
    let machine = measure::machine();
    let commit = measure::commit();
    let regions = fixtures::regions()?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if args.query_points <= TIMED_FROM + budget(args.quick).max_reps {
        notes.push(format!(
            "query points cycled: {} points for up to {} queries per engine and cell (checked, \
             warm-up, timed), so later queries repeat earlier points, and what those read may \
             still be cached",
            args.query_points,
            TIMED_FROM + budget(args.quick).max_reps + 1,
        ));
    }
    let datasets: &[(Distribution, &'static str)] = match args.data {
        DataChoice::Uniform => &[(Distribution::Uniform, "uniform")],
        DataChoice::Clustered => &[(Distribution::Clustered, "clustered")],
        DataChoice::Both => &[(Distribution::Uniform, "uniform"), (Distribution::Clustered, "clustered")],
    };
    let mut first_data = None;
    for &(dist, name) in datasets {
        progress(&format!("{name}: generating {} records", args.records));
        let data = Data::new(customers(args.records, args.seed, dist));
        rows.extend(run_dataset(args, name, dist, &data, &regions, &mut notes)?);
        first_data.get_or_insert(data);
    }
    if let Some(data) = &first_data {
        rows.extend(run_durable(args, data, &mut notes)?);
    }
    let size = report::Size { records: args.records, query_points: args.query_points };
    if args.json {
        let v = report::json(&machine, &commit, size, &rows, &notes);
        super::commands::print_json(&v);
    } else {
        print!("{}", report::markdown(&machine, &commit, size, &rows, &notes));
    }
    Ok(())
}

/// Loads the dataset into a fresh database (bulk load, then one sync); returns its directory,
/// the database and the time taken.
fn load(data: &Data) -> Result<(tempfile::TempDir, Database, Duration)> {
    let dir = temp_dir("geocrm-bench-")?;
    let started = Instant::now();
    // A bulk load: automatic checkpoints off while loading, one checkpoint at the end (so
    // the queries below read the memory-mapped checkpoint, as after a reopen).
    let options = Options::new().durability(Durability::NoSyncBulkLoad).checkpoint_after_ops(None);
    let db = Database::open(dir.path(), options)?;
    db.create_collection("customers", Customer::schema())?;
    for chunk in data.people.chunks(100_000) {
        let mut batch = db.begin_write();
        for c in chunk {
            batch.upsert("customers", c.to_record(false))?;
        }
        batch.commit()?;
    }
    db.checkpoint()?;
    Ok((dir, db, started.elapsed()))
}

fn run_dataset(
    args: &BenchArgs,
    name: &'static str,
    dist: Distribution,
    data: &Data,
    regions: &[Region],
    notes: &mut Vec<String>,
) -> Result<Vec<Row>> {
    let n = data.locs.len();
    let points: Vec<LatLon> = customers(args.query_points, args.seed.wrapping_add(1_000_003), dist)
        .iter()
        .map(|c| c.location)
        .collect();
    let boxes = points.iter().map(|&p| BoundingBox::around(p, BBOX_HALF_M)).collect::<Result<Vec<_>>>()?;
    if let Some(dir) = &args.export_csv {
        fixtures::export(dir, name, data, &points)?;
    }
    let mut rows = Vec::new();
    let mut build = Row::new(format!("index build ({n} records)"), name);
    progress(&format!("{name}: loading geocrm"));
    let (dir, db, took) = load(data)?;
    build.set(Engine::Geocrm, Outcome::Timed(Stats::once(took)));
    let t = Instant::now();
    let packed = PackedData::build(data)?;
    build.set(Engine::Packed, Outcome::Timed(Stats::once(t.elapsed())));
    let t = Instant::now();
    let rstar = Rstar::build(data);
    build.set(Engine::Rstar, Outcome::Timed(Stats::once(t.elapsed())));
    #[cfg(feature = "peers")]
    let peer_set = {
        progress(&format!("{name}: building peers"));
        let set = peers::PeerSet::build(data)?;
        for (e, s) in set.build_times() {
            build.set(e, Outcome::Timed(s));
        }
        set
    };
    let mut backends: Vec<(Engine, Box<dyn Backend + '_>)> = Vec::new();
    let cells = H3IndexRef::try_new(packed.cells.as_bytes())?;
    backends.push((Engine::Packed, Box::new(Packed { data: &packed, cells })));
    backends.push((Engine::Rstar, Box::new(rstar)));
    #[cfg(feature = "peers")]
    backends.extend(peer_set.backends(data)?);
    backends.push((Engine::Brute, Box::new(Brute { data })));
    rows.push(build);

    let snap = db.read();
    let mut geocrm = Geocrm { coll: snap.collection("customers")?, gold: Filter::eq("tier", "gold") };
    let (pts, bxs) = (Points(&points), Boxes(&boxes));
    let mut queries: Vec<(String, Query<'_>)> = Vec::new();
    for k in [1, 10, 100] {
        queries.push((format!("nearest-{k}"), Query::Nearest { k, gold: false, points: pts }));
    }
    queries.push(("nearest-10, tier = gold".into(), Query::Nearest { k: 10, gold: true, points: pts }));
    queries.push(("radius 2 km count".into(), Query::Radius { metres: RADIUS_M, points: pts }));
    queries.push(("bbox 50 km count".into(), Query::BBox { boxes: bxs }));
    for r in regions {
        queries.push((r.name.to_owned(), Query::Region(r)));
    }
    for res in [5, 8] {
        queries.push((format!("H3 res {res}: count + sum, all records"), Query::H3(res)));
    }
    if let Some(dir) = &args.export_csv {
        fixtures::export_expected(dir, name, &expected_answers(&mut geocrm, &queries, points.len()))?;
    }
    for (op, q) in &queries {
        progress(&format!("{name}: {op}"));
        let mut row = Row::new(op.clone(), name);
        let varied = matches!(q, Query::Nearest { .. } | Query::Radius { .. } | Query::BBox { .. });
        let sample = if varied { CHECK_SAMPLE } else { 1 };
        let want: Vec<Answer> =
            (0..sample).map(|i| geocrm.answer(q, i).unwrap_or(Answer::Count(0))).collect();
        if let Some(Answer::Failed(e)) = want.iter().find(|a| matches!(a, Answer::Failed(_))) {
            return Err(Error::invalid_argument("bench", format!("geocrm failed on {op}: {e}")));
        }
        let geocrm_stats = time_engine(args.quick, varied, budget(args.quick), &mut |i| geocrm.answer(q, i));
        row.set(Engine::Geocrm, Outcome::Timed(geocrm_stats));
        for (engine, backend) in &mut backends {
            let (check_n, b) = if *engine == Engine::Brute {
                (sample.min(BRUTE_CHECK_SAMPLE), brute_budget(args.quick))
            } else {
                (sample, budget(args.quick))
            };
            let mut wrong = None;
            for (i, w) in want.iter().enumerate().take(check_n) {
                let Some(got) = backend.answer(q, i) else { break };
                if let Err(why) = check(q, i, data, w, &got) {
                    wrong = Some(why);
                    break;
                }
            }
            if backend.answer(q, 0).is_none() {
                continue;
            }
            // Not the brute force: its calls take tens of milliseconds and read everything.
            let warm = varied && *engine != Engine::Brute;
            let stats = time_engine(args.quick, warm, b, &mut |i| backend.answer(q, i));
            let outcome = match wrong {
                None => Outcome::Timed(stats),
                // The brute force is the referee of the search: geocrm is the one that is
                // wrong. (Not of the exact predicates — the haversine, box and polygon tests,
                // which every engine here shares: the query tests check those against
                // independent ones, `tests/it/brute.rs`.)
                Some(why) if *engine == Engine::Brute => {
                    let msg = format!("{name} / {op}: geocrm disagrees with the brute force: {why}");
                    eprintln!("WARNING: {msg}");
                    notes.push(msg);
                    row.set(Engine::Geocrm, Outcome::Wrong(geocrm_stats, format!("brute force: {why}")));
                    Outcome::Timed(stats)
                }
                Some(why) => {
                    let msg = format!("{name} / {op}: {} disagrees with geocrm: {why}", engine.name());
                    eprintln!("WARNING: {msg}");
                    notes.push(msg.clone());
                    Outcome::Wrong(stats, why)
                }
            };
            row.set(*engine, outcome);
        }
        rows.push(row);
    }
    drop(backends);
    drop(geocrm);
    drop(snap);

    let mut row = Row::new("checkpoint build (all rows, after one write)", name);
    let touch = data.people.first().map(|c| c.to_record(false));
    let touch = touch.ok_or_else(|| Error::invalid_argument("records", "no records to checkpoint"))?;
    let reps = if args.quick { 1 } else { 3 };
    row.set(Engine::Geocrm, Outcome::Timed(durable::checkpoint_build(&db, &touch, reps)?));
    rows.push(row);
    let want =
        db.read().collection("customers")?.count(geocrm::query::Scope::BBox(&boxes[0]), &Filter::All)?;
    drop(db);
    progress(&format!("{name}: reopen"));
    let mut row = Row::new("reopen + first query (bbox count)", name);
    let (stats, got) = durable::reopen_first_query(dir.path(), &boxes[0], if args.quick { 1 } else { 3 })?;
    if got != want {
        return Err(Error::invalid_argument(
            "bench",
            format!("after reopen the count is {got}, before {want}"),
        ));
    }
    row.set(Engine::Geocrm, Outcome::Timed(stats));
    #[cfg(feature = "peers")]
    if let Some((s, got)) = peer_set.reopen_first_query(&boxes[0], data)? {
        row.set(
            Engine::Sqlite,
            if got == want {
                Outcome::Timed(s)
            } else {
                Outcome::Wrong(s, format!("count {got}, geocrm {want}"))
            },
        );
    }
    rows.push(row);
    Ok(rows)
}

/// geocrm's answers for other tools to check theirs against: (operation, query number,
/// count or distance in metres of the k-th neighbour).
fn expected_answers(
    geocrm: &mut Geocrm<'_>,
    queries: &[(String, Query<'_>)],
    query_points: usize,
) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for (op, q) in queries {
        let n = match q {
            // Query numbers past the exported points would name points the file lacks.
            Query::Nearest { .. } | Query::Radius { .. } | Query::BBox { .. } => {
                CHECK_SAMPLE.min(query_points)
            }
            Query::Region(_) => 1,
            Query::H3(_) => 0,
        };
        for i in 0..n {
            let value = match geocrm.answer(q, i) {
                Some(Answer::Count(c)) => c.to_string(),
                Some(Answer::Dists(d)) => d.last().map_or_else(String::new, |x| format!("{x:.3}")),
                _ => continue,
            };
            out.push((op.clone(), i, value));
        }
    }
    out
}

fn run_durable(args: &BenchArgs, data: &Data, notes: &mut Vec<String>) -> Result<Vec<Row>> {
    let b = durable::ingest_budget(args.quick);
    let mut rows = Vec::new();
    progress("durable ingest");
    let mut row =
        Row::new(format!("durable ingest, fsync per commit of {}: µs/record", durable::BATCH), "any");
    row.set(Engine::Geocrm, Outcome::Timed(durable::ingest(data, Durability::FsyncEachCommit, 1, b)?));
    #[cfg(feature = "peers")]
    row.set(Engine::Sqlite, Outcome::Timed(peers::sqlite_ingest(data, b)?));
    rows.push(row);
    let threads = 8;
    let mut row = Row::new(
        format!("durable ingest, group commit, {threads} threads × commits of {}: µs/record", durable::BATCH),
        "any",
    );
    let group = Durability::GroupCommit { max_wait: Duration::from_micros(500) };
    row.set(Engine::Geocrm, Outcome::Timed(durable::ingest(data, group, threads, b)?));
    rows.push(row);
    progress("PII");
    let (seal, open) = durable::pii(data, budget(args.quick))?;
    let mut row = Row::new("PII seal, one field (XChaCha20-Poly1305)", "any");
    row.set(Engine::Geocrm, Outcome::Timed(seal));
    rows.push(row);
    let mut row = Row::new("PII open, one field", "any");
    row.set(Engine::Geocrm, Outcome::Timed(open));
    rows.push(row);
    notes.push(format!(
        "ingest rows: records without PII into an empty database on this machine's disk; µs/record = elapsed / records (records/s = 10⁶ / value); {} commits in the fsync-per-commit run",
        rows.first().and_then(|r| r.cells.first()).map_or(0, |(_, o)| match o {
            Outcome::Timed(s) => s.reps,
            _ => 0,
        })
    ));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_points_cycle() {
        let pts = [LatLon::new(1.0, 2.0).unwrap(), LatLon::new(3.0, 4.0).unwrap()];
        let points = Points(&pts);
        assert_eq!(
            [points.at(0), points.at(1), points.at(2), points.at(5)],
            [pts[0], pts[1], pts[0], pts[1]]
        );
    }

    #[test]
    fn default_query_points_give_every_query_of_a_cell_its_own_point() {
        use clap::Parser;
        let cli = crate::cli::args::Cli::try_parse_from(["geocrm", "bench"]).unwrap();
        let crate::cli::args::Command::Bench { args } = cli.command else { panic!("not bench") };
        assert_eq!(args.query_points, DEFAULT_QUERY_POINTS);
    }

    #[test]
    fn checked_warm_up_and_timed_queries_have_numbers_of_their_own() {
        let mut seen = Vec::new();
        let most = Budget { time: Duration::from_secs(3600), min_reps: MAX_REPS, max_reps: MAX_REPS };
        time_engine(false, true, most, &mut |i| {
            seen.push(i);
            None
        });
        let timed_at = seen.iter().position(|&i| i >= TIMED_FROM).unwrap();
        let (warm, timed) = seen.split_at(timed_at);
        assert!(!warm.is_empty() && warm.iter().all(|i| (CHECK_SAMPLE..TIMED_FROM).contains(i)), "{warm:?}");
        // One untimed call (`time_each`'s), then MAX_REPS timed ones.
        assert_eq!(timed.len(), MAX_REPS + 1);
        let mut all = seen.clone();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), seen.len(), "a query number used twice");
        assert!(seen.iter().all(|&i| i < DEFAULT_QUERY_POINTS), "past the default points: cycled");
        // Without the warm-up, the timed calls still start past the checked ones.
        seen.clear();
        time_engine(true, false, most, &mut |i| {
            seen.push(i);
            None
        });
        assert_eq!(seen.first(), Some(&TIMED_FROM));
    }
}
