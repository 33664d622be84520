//! Every query checked against the brute force of `brute.rs` on random and adversarial data.

use geocrm::geo::{haversine_m, BoundingBox, MultiPolygon, Polygon, PreparedRegion};
use geocrm::query::{GroupBy, GroupKey, Scope};
use geocrm::{crypto::RawKey, Database, Filter, LatLon, Options, Record, Schema};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::brute::{self, Model, M};

fn schema() -> Schema {
    Schema::new().pii("name").number("ltv").category("tier")
}

const TIERS: [&str; 3] = ["bronze", "silver", "gold"];

/// Random points with adversarial ones mixed in: antimeridian, poles, exact duplicates.
fn random_model(rng: &mut ChaCha8Rng, n: usize) -> Model {
    let mut m = Model::new();
    for i in 0..n {
        let (lat, lon) = match i % 10 {
            0 => (rng.gen_range(-89.9..89.9), if rng.gen() { 180.0 } else { -180.0 }),
            1 => (rng.gen_range(-10.0..10.0), rng.gen_range(179.0..=180.0)),
            2 => (rng.gen_range(-10.0..10.0), rng.gen_range(-180.0..=-179.0)),
            3 => (if rng.gen() { 90.0 } else { rng.gen_range(88.0..=90.0) }, rng.gen_range(-180.0..=180.0)),
            4 => (if rng.gen() { -90.0 } else { rng.gen_range(-90.0..-88.0) }, rng.gen_range(-180.0..=180.0)),
            5 => (48.85, 2.35), // many exact duplicates
            6 => (rng.gen_range(48.0..49.5), rng.gen_range(1.5..3.5)),
            _ => (rng.gen_range(-90.0..=90.0), rng.gen_range(-180.0..=180.0)),
        };
        let ltv = (i % 7 != 0).then(|| (rng.gen_range(0.0..1000.0f64) * 100.0).round() / 100.0);
        let tier = (i % 5 != 0).then(|| TIERS[rng.gen_range(0..3)].to_owned());
        m.insert(format!("r{i:05}"), M { lat, lon, ltv, tier });
    }
    m
}

/// Another version of `r`: moved to the other hemisphere and the other side of the globe,
/// with other attribute values (present where `r` has none, and none where it has one).
fn stale(r: &M) -> M {
    M {
        lat: -r.lat / 2.0,
        lon: if r.lon > 0.0 { r.lon - 120.0 } else { r.lon + 120.0 },
        ltv: if r.ltv.is_some() { None } else { Some(250.0) },
        tier: match r.tier.as_deref() {
            Some("gold") => Some("bronze".to_owned()),
            Some(_) => None,
            None => Some("gold".to_owned()),
        },
    }
}

fn record(id: &str, r: &M) -> Record {
    let mut rec = Record::new(id, LatLon::new(r.lat, r.lon).unwrap());
    if let Some(v) = r.ltv {
        rec = rec.number("ltv", v);
    }
    if let Some(t) = &r.tier {
        rec = rec.category("tier", t.clone());
    }
    rec
}

pub fn load(model: &Model) -> (tempfile::TempDir, Database) {
    load_as(model, Layout::Tail)
}

/// Where the rows of a loaded database live; every query test runs on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only in the in-memory table (no checkpoint).
    Tail,
    /// All in a checkpoint, reopened (so read from the mapped file).
    Checkpointed,
    /// 60% in a checkpoint; the rest, updates of some checkpoint rows (stale versions in the
    /// checkpoint), deletes + re-inserts of others, and deletes of ghost rows (in the
    /// checkpoint and in memory) in the in-memory table: checkpoint rows are hidden.
    Mixed,
    /// As `Mixed`, then compacted and reopened.
    Compacted,
}

impl Layout {
    pub const ALL: [Layout; 4] = [Layout::Tail, Layout::Checkpointed, Layout::Mixed, Layout::Compacted];
}

fn commit_all<'a>(db: &Database, rows: impl Iterator<Item = (&'a String, &'a M)>) {
    let mut batch = db.begin_write();
    for (id, r) in rows {
        batch.upsert("c", record(id, r)).unwrap();
    }
    if !batch.is_empty() {
        batch.commit().unwrap();
    }
}

pub fn load_as(model: &Model, layout: Layout) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::new().key(RawKey::new([9; 32])).checkpoint_after_ops(None);
    let db = Database::open(dir.path(), options()).unwrap();
    db.create_collection("c", schema()).unwrap();
    match layout {
        Layout::Tail => commit_all(&db, model.iter()),
        Layout::Checkpointed => {
            commit_all(&db, model.iter());
            db.checkpoint().unwrap();
        }
        Layout::Mixed | Layout::Compacted => {
            let cut = model.len() * 6 / 10;
            let (updated, reinserted) = (|i: usize| i.is_multiple_of(10), |i: usize| i % 10 == 1);
            // The checkpoint holds stale versions of the rows updated or deleted and
            // re-inserted after it, and ghosts deleted after it: an answer that reads a
            // hidden checkpoint row differs from the brute force over `model`.
            let first: Vec<(String, M)> = model
                .iter()
                .take(cut)
                .enumerate()
                .map(|(i, (id, r))| {
                    (id.clone(), if updated(i) || reinserted(i) { stale(r) } else { r.clone() })
                })
                .chain(model.iter().step_by(7).map(|(id, r)| (format!("ghost-{id}"), r.clone())))
                .collect();
            commit_all(&db, first.iter().map(|(id, r)| (id, r)));
            db.checkpoint().unwrap();
            commit_all(&db, model.iter().skip(cut));
            commit_all(&db, model.iter().take(cut).enumerate().filter(|(i, _)| updated(*i)).map(|(_, r)| r));
            // Ghosts in the in-memory table too, deleted with the checkpoint's.
            let tail_ghosts: Vec<(String, M)> =
                model.iter().skip(3).step_by(11).map(|(id, r)| (format!("ghost2-{id}"), r.clone())).collect();
            commit_all(&db, tail_ghosts.iter().map(|(id, r)| (id, r)));
            let mut batch = db.begin_write();
            let doomed =
                model.iter().take(cut).enumerate().filter(|(i, _)| reinserted(*i)).map(|(_, (id, _))| id);
            for id in doomed
                .chain(first.iter().skip(cut).map(|(id, _)| id))
                .chain(tail_ghosts.iter().map(|(id, _)| id))
            {
                batch.delete("c", id).unwrap();
            }
            if !batch.is_empty() {
                batch.commit().unwrap();
            }
            commit_all(
                &db,
                model.iter().take(cut).enumerate().filter(|(i, _)| reinserted(*i)).map(|(_, r)| r),
            );
            if layout == Layout::Compacted {
                db.compact().unwrap();
            }
        }
    }
    if layout != Layout::Tail && layout != Layout::Mixed {
        drop(db);
        let db = Database::open(dir.path(), options()).unwrap();
        assert!(db.checkpoint_rejected().is_none());
        return (dir, db);
    }
    (dir, db)
}

/// How many filters [`filter`] and [`filter_matches`] know.
const FILTERS: usize = 8;

fn filter_matches(f: usize, r: &M) -> bool {
    match f {
        0 => true,
        1 => r.tier.as_deref() == Some("gold"),
        2 => r.ltv.is_some_and(|v| (100.0..=500.0).contains(&v)),
        // As in SQL, a comparison on a missing value is unknown, and so is `not` of it: only
        // records with the values can match `not`.
        3 => r.tier.as_deref().is_some_and(|t| t != "bronze") && r.ltv.is_some_and(|v| v >= 300.0),
        4 => {
            r.tier.as_deref().is_some_and(|t| t != "gold")
                || r.ltv.is_some_and(|v| v != 0.0) && r.ltv.is_some_and(|v| v < 100.0)
        }
        5 => r.tier.as_deref().is_some_and(|t| t != "silver") && r.ltv.is_some_and(|v| v <= 600.0),
        // `not (a or b)` holds when both are known to be false.
        6 => {
            r.tier.is_none()
                || r.ltv.is_some_and(|v| v <= 200.0) && r.tier.as_deref().is_some_and(|t| t != "gold")
        }
        // `not (a and b)` holds when either is known to be false.
        _ => r.ltv.is_some_and(|v| v >= 100.0) || r.tier.as_deref().is_some_and(|t| t != "gold"),
    }
}

fn filter(f: usize) -> Filter {
    Filter::parse(
        [
            "",
            "tier = 'gold'",
            "ltv between 100 and 500",
            "tier in (silver, gold) and not ltv < 300",
            "tier != 'gold' or ltv != 0 and ltv < 100",
            "not tier = silver and ltv <= 600",
            "tier is missing or not (ltv > 200 or tier = 'gold')",
            "not (ltv < 100 and tier = 'gold')",
        ][f],
    )
    .unwrap()
}

/// Brute-force nearest-k: (distance, id) ascending. It ranks by the library's `haversine_m`
/// so that the search's answer (which rows, in which order, ties by id) is compared exactly;
/// [`assert_independent_distances`] checks the distances themselves against the independent
/// formula.
pub fn brute_nearest(model: &Model, at: (f64, f64), k: usize, f: usize) -> Vec<(String, f64)> {
    let p = LatLon::new(at.0, at.1).unwrap();
    let mut all: Vec<(String, f64)> = model
        .iter()
        .filter(|(_, r)| filter_matches(f, r))
        .map(|(id, r)| (id.clone(), haversine_m(p, LatLon::new(r.lat, r.lon).unwrap())))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// How far the library's distance may be from the independent one, anywhere on the globe
/// (near the antipode too, where a haversine in f64 was 0.2 m off).
const DISTANCE_TOLERANCE_M: f64 = 1e-6;

/// Every reported distance is the independent formula's distance to that record (the
/// answers' ranking is [`brute_nearest`]'s, which uses the library's formula).
pub fn assert_independent_distances(got: &[(String, f64)], model: &Model, at: (f64, f64), context: &str) {
    for (id, d) in got {
        let m = &model[id];
        let want = brute::distance(at, (m.lat, m.lon));
        assert!((d - want).abs() <= DISTANCE_TOLERANCE_M, "{context}: {id} at {d} m, independently {want} m");
    }
}

fn random_query_point(rng: &mut ChaCha8Rng) -> (f64, f64) {
    match rng.gen_range(0..5) {
        0 => (rng.gen_range(-5.0..5.0), if rng.gen() { 179.99 } else { -179.99 }),
        1 => (rng.gen_range(89.0..=90.0), rng.gen_range(-180.0..=180.0)),
        2 => (48.85, 2.35),
        _ => (rng.gen_range(-90.0..=90.0), rng.gen_range(-180.0..=180.0)),
    }
}

#[test]
fn library_haversine_agrees_with_an_independent_formula() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..100_000 {
        let a = (rng.gen_range(-90.0..=90.0), rng.gen_range(-180.0..=180.0));
        let b = (rng.gen_range(-90.0..=90.0), rng.gen_range(-180.0..=180.0));
        let lib = haversine_m(LatLon::new(a.0, a.1).unwrap(), LatLon::new(b.0, b.1).unwrap());
        assert!((lib - brute::distance(a, b)).abs() < 1e-6, "{a:?} {b:?}");
    }
    // Where random pairs never land: near the antipode, at the poles, across the
    // antimeridian, and a point with itself.
    let mut worst: f64 = 0.0;
    for _ in 0..100_000 {
        let a: (f64, f64) = (rng.gen_range(-90.0..=90.0), rng.gen_range(-180.0..=180.0));
        let jitter = 10f64.powi(-rng.gen_range(0..12));
        let b = match rng.gen_range(0..4) {
            0 => (-a.0 + rng.gen_range(-jitter..=jitter), a.1 + 180.0 + rng.gen_range(-jitter..=jitter)),
            1 => (if rng.gen() { 90.0 } else { -90.0 }, rng.gen_range(-180.0..=180.0)),
            2 => (a.0 + rng.gen_range(-jitter..=jitter), -a.1 + rng.gen_range(-jitter..=jitter)),
            _ => a,
        };
        let b = (b.0.clamp(-90.0, 90.0), if b.1 > 180.0 { b.1 - 360.0 } else { b.1 }.clamp(-180.0, 180.0));
        let lib = haversine_m(LatLon::new(a.0, a.1).unwrap(), LatLon::new(b.0, b.1).unwrap());
        let want = brute::distance(a, b);
        assert!((lib - want).abs() <= DISTANCE_TOLERANCE_M, "{a:?} {b:?}: {lib} against {want}");
        worst = worst.max((lib - want).abs());
    }
    assert!(worst > 0.0, "the adversarial pairs exercised nothing");
}

#[test]
fn nearest_matches_brute_force_with_and_without_filters() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let model = random_model(&mut rng, 3000);
    for layout in Layout::ALL {
        let (_dir, db) = load_as(&model, layout);
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        for q in 0..400 {
            let at = random_query_point(&mut rng);
            let k = [1, 2, 10, 57, 5000][q % 5];
            let f = q % FILTERS;
            let p = LatLon::new(at.0, at.1).unwrap();
            // Every other query through the borrowed answer.
            let got: Vec<(String, f64)> = if q % 2 == 0 {
                c.nearest(p, k, &filter(f)).unwrap().into_iter().map(|h| (h.id, h.distance_m)).collect()
            } else {
                let refs = c.nearest_refs(p, k, &filter(f)).unwrap();
                refs.iter().map(|h| (h.id.to_owned(), h.distance_m)).collect()
            };
            assert_eq!(got, brute_nearest(&model, at, k, f), "query {q} at {at:?} k={k} filter {f}");
            assert_independent_distances(&got, &model, at, &format!("query {q} at {at:?}"));
        }
    }
}

#[test]
fn radius_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let model = random_model(&mut rng, 3000);
    for layout in Layout::ALL {
        let (_dir, db) = load_as(&model, layout);
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        for q in 0..300 {
            let at = random_query_point(&mut rng);
            let metres = [0.0, 10.0, 5_000.0, 300_000.0, 3_000_000.0, 20_015_087.0, 3e7][q % 7];
            let f = q % FILTERS;
            let got: Vec<String> = c
                .within_radius(LatLon::new(at.0, at.1).unwrap(), metres, &filter(f))
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect();
            let want: Vec<String> = brute_nearest(&model, at, usize::MAX, f)
                .into_iter()
                .filter(|(_, d)| *d <= metres)
                .map(|(id, _)| id)
                .collect();
            assert_eq!(got, want, "query {q} at {at:?} r={metres} filter {f}");
        }
    }
}

#[test]
fn nearest_and_radius_near_the_antipode_match_brute_force() {
    // Near a query's antipode a chord and a haversine distance disagree by up to ~0.3 m: the
    // pruning bounds must allow for it in every layout (the in-memory table once used a
    // 2 cm allowance and dropped or misordered such rows).
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut model = random_model(&mut rng, 200);
    let mut queries = Vec::new();
    for q in 0..40 {
        let at: (f64, f64) = (rng.gen_range(-85.0..85.0), rng.gen_range(-180.0..180.0));
        let anti = (-at.0, if at.1 > 0.0 { at.1 - 180.0 } else { at.1 + 180.0 });
        for j in 0..8 {
            let jitter = [0.0, 1e-9, 1e-8, 1e-7, 1e-6, 1e-6, 1e-5, 1e-3][j];
            let lat = (anti.0 + rng.gen_range(-jitter..=jitter)).clamp(-90.0, 90.0);
            let lon = (anti.1 + rng.gen_range(-jitter..=jitter)).clamp(-180.0, 180.0);
            model.insert(format!("a{q:02}-{j}"), M { lat, lon, ltv: Some(j as f64), tier: None });
        }
        queries.push(at);
    }
    for layout in Layout::ALL {
        let (_dir, db) = load_as(&model, layout);
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        for (q, &at) in queries.iter().enumerate() {
            let p = LatLon::new(at.0, at.1).unwrap();
            for k in [1, 3, 8, 10] {
                let got: Vec<(String, f64)> = c
                    .nearest(p, k, &Filter::All)
                    .unwrap()
                    .into_iter()
                    .map(|h| (h.id, h.distance_m))
                    .collect();
                assert_eq!(got, brute_nearest(&model, at, k, 0), "{layout:?} query {q} at {at:?} k={k}");
                assert_independent_distances(&got, &model, at, &format!("{layout:?} query {q} at {at:?}"));
            }
            let all = brute_nearest(&model, at, usize::MAX, 0);
            // Radii exactly at the farthest rows' distances (inclusive), and past the antipode.
            let radii = [all[all.len() - 1].1, all[all.len() - 3].1, all[all.len() - 8].1, 2.0e7, 3e7];
            for metres in radii {
                let got: Vec<String> =
                    c.within_radius(p, metres, &Filter::All).unwrap().into_iter().map(|h| h.id).collect();
                let want: Vec<String> =
                    all.iter().filter(|(_, d)| *d <= metres).map(|(id, _)| id.clone()).collect();
                assert_eq!(got.len(), want.len(), "{layout:?} query {q} at {at:?} r={metres}");
                assert_eq!(got, want, "{layout:?} query {q} at {at:?} r={metres}");
                let count = c.count(Scope::Radius { center: p, metres }, &Filter::All).unwrap();
                assert_eq!(count, want.len() as u64, "{layout:?} query {q} r={metres}");
            }
        }
    }
}

#[test]
fn bbox_matches_brute_force_including_antimeridian_boxes() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let model = random_model(&mut rng, 3000);
    for layout in Layout::ALL {
        let (_dir, db) = load_as(&model, layout);
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        let stored: Vec<&M> = model.values().collect();
        for q in 0..400 {
            let s = rng.gen_range(-90.0..90.0);
            let n = rng.gen_range(s..=90.0);
            let (w, e) = match q % 3 {
                0 => (rng.gen_range(100.0..180.0), rng.gen_range(-180.0..-100.0)), // crosses
                _ => {
                    let w = rng.gen_range(-180.0..180.0);
                    (w, rng.gen_range(w..=180.0))
                }
            };
            // Edges exactly on stored coordinates, at the poles and on the antimeridian;
            // boxes one meridian wide, or only the antimeridian.
            let (s, w, n, e) = match q % 8 {
                3 => {
                    let (a, b) =
                        (stored[rng.gen_range(0..stored.len())], stored[rng.gen_range(0..stored.len())]);
                    (a.lat.min(b.lat), a.lon.min(b.lon), a.lat.max(b.lat), a.lon.max(b.lon))
                }
                4 => (s, w, 90.0, e),
                5 => (-90.0, w, n, e),
                6 => {
                    let r = stored[rng.gen_range(0..stored.len())];
                    (s.min(r.lat), r.lon, n.max(r.lat), r.lon)
                }
                7 => match q % 3 {
                    0 => (s, 180.0, n, -180.0),
                    1 => (s, -180.0, n, -180.0),
                    _ => (s, 180.0, n, 180.0),
                },
                _ => (s, w, n, e),
            };
            let bbox = BoundingBox::new(s, w, n, e).unwrap();
            let f = q % FILTERS;
            let got: Vec<String> =
                c.within_bbox(&bbox, &filter(f)).unwrap().into_iter().map(|h| h.id).collect();
            let inside_lon = |lon: f64| if w <= e { lon >= w && lon <= e } else { lon >= w || lon <= e };
            // A pole is one point; -180 and 180 one meridian.
            let inside_lon = |lat: f64, lon: f64| {
                lat.abs() == 90.0
                    || inside_lon(lon)
                    || inside_lon(if lon.abs() == 180.0 { -lon } else { lon })
            };
            let want: Vec<String> = model
                .iter()
                .filter(|(_, r)| r.lat >= s && r.lat <= n && inside_lon(r.lat, r.lon) && filter_matches(f, r))
                .map(|(id, _)| id.clone())
                .collect();
            assert_eq!(got, want, "box {s},{w},{n},{e} filter {f}");
            let count = c.count(Scope::BBox(&bbox), &filter(f)).unwrap();
            assert_eq!(count, want.len() as u64, "count of box {s},{w},{n},{e} filter {f}");
        }
    }
}

fn star(rng: &mut ChaCha8Rng, c: (f64, f64), r: f64, n: usize) -> Vec<[f64; 2]> {
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64;
            let rr = r * rng.gen_range(0.4..1.0);
            [(c.1 + rr * a.cos()).clamp(-180.0, 180.0), (c.0 + rr * a.sin()).clamp(-90.0, 90.0)]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

#[test]
fn polygons_with_holes_and_multipolygons_match_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut model = random_model(&mut rng, 2000);
    // Points exactly on a vertex and an edge of the square polygon below.
    for (i, (lat, lon)) in [(48.0, 1.0), (48.5, 1.0), (49.0, 2.0), (48.0, 4.0)].into_iter().enumerate() {
        model.insert(format!("edge{i}"), M { lat, lon, ltv: None, tier: None });
    }
    // Points where the rings of the touching-holes case below meet, and around them.
    let touching = [(10.0, 10.0), (10.0, 15.0), (15.0, 13.0), (15.0, 20.0)];
    for (i, (lat, lon)) in touching.into_iter().enumerate() {
        model.insert(format!("touch{i}"), M { lat, lon, ltv: None, tier: None });
    }
    for i in 0..600 {
        let (lat, lon) = (rng.gen_range(9.5..20.5), rng.gen_range(9.5..20.5));
        model.insert(format!("near{i}"), M { lat, lon, ltv: None, tier: Some("gold".into()) });
    }
    for layout in Layout::ALL {
        let (_dir, db) = load_as(&model, layout);
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        let square: brute::Rings = vec![
            vec![[1.0, 48.0], [4.0, 48.0], [4.0, 49.0], [1.0, 49.0], [1.0, 48.0]],
            vec![[2.0, 48.4], [3.0, 48.4], [3.0, 48.8], [2.0, 48.8], [2.0, 48.4]],
        ];
        // Holes touching the exterior at its corner and inside an edge, and two holes sharing
        // a vertex (their edges end to end), as OGC allows.
        let tri = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| vec![a, b, c, a];
        let touching_holes: brute::Rings = vec![
            vec![[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0], [10.0, 10.0]],
            tri([10.0, 10.0], [12.0, 11.0], [11.0, 12.0]),
            tri([15.0, 10.0], [16.0, 11.0], [14.0, 11.0]),
            tri([11.0, 15.0], [13.0, 15.0], [12.0, 17.0]),
            tri([13.0, 15.0], [15.0, 15.0], [14.0, 17.0]),
            tri([20.0, 15.0], [18.0, 14.0], [18.0, 16.0]),
        ];
        let mut cases: Vec<Vec<brute::Rings>> = vec![vec![square], vec![touching_holes]];
        for _ in 0..40 {
            let n = rng.gen_range(1..4);
            let polys = (0..n)
                .map(|_| {
                    let centre = (rng.gen_range(-55.0..55.0), rng.gen_range(-145.0..145.0));
                    let r = rng.gen_range(0.5..30.0);
                    let n = rng.gen_range(3..60);
                    vec![star(&mut rng, centre, r, n)]
                })
                .collect();
            cases.push(polys);
        }
        // A multipolygon cut at the antimeridian (as RFC 7946 asks), its parts touching it
        // from both sides: its bounds span the globe.
        cases.push(vec![
            vec![vec![[177.0, -8.0], [180.0, -8.0], [180.0, 8.0], [177.0, 8.0], [177.0, -8.0]]],
            vec![vec![[-180.0, -8.0], [-178.5, -8.0], [-178.5, 8.0], [-180.0, 8.0], [-180.0, -8.0]]],
        ]);
        // A polygon touching the antimeridian and one reaching a pole.
        cases.push(vec![vec![vec![
            [170.0, -10.0],
            [180.0, -10.0],
            [180.0, 10.0],
            [170.0, 10.0],
            [170.0, -10.0],
        ]]]);
        cases.push(vec![vec![vec![
            [-180.0, 80.0],
            [180.0, 80.0],
            [180.0, 90.0],
            [-180.0, 90.0],
            [-180.0, 80.0],
        ]]]);
        for (ci, polys) in cases.iter().enumerate() {
            let mp = MultiPolygon::new(
                polys
                    .iter()
                    .map(|rings| Polygon::new(rings[0].clone(), rings[1..].to_vec()).unwrap())
                    .collect(),
            )
            .unwrap();
            let region = PreparedRegion::new(&mp);
            for f in 0..FILTERS {
                let got: Vec<String> =
                    c.within_region(&region, &filter(f)).unwrap().into_iter().map(|h| h.id).collect();
                let want: Vec<String> = model
                    .iter()
                    .filter(|(_, r)| brute::multi_covers(polys, [r.lon, r.lat]) && filter_matches(f, r))
                    .map(|(id, _)| id.clone())
                    .collect();
                assert_eq!(got, want, "case {ci} filter {f}");
                assert_eq!(c.count(Scope::Region(&region), &filter(f)).unwrap(), want.len() as u64);
            }
        }
    }
}

#[test]
fn aggregations_match_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let model = random_model(&mut rng, 3000);
    for layout in Layout::ALL {
        let (_dir, db) = load_as(&model, layout);
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        let paris = LatLon::new(48.85, 2.35).unwrap();
        // A box across the antimeridian, and a polygon with a hole around Paris.
        let bbox = BoundingBox::new(-30.0, 150.0, 89.0, -150.0).unwrap();
        let rings: brute::Rings = vec![
            vec![[1.0, 48.0], [4.0, 48.0], [4.0, 49.5], [1.0, 49.5], [1.0, 48.0]],
            vec![[2.0, 48.4], [3.0, 48.4], [3.0, 48.8], [2.0, 48.8], [2.0, 48.4]],
        ];
        let mp =
            MultiPolygon::new(vec![Polygon::new(rings[0].clone(), rings[1..].to_vec()).unwrap()]).unwrap();
        let region = PreparedRegion::new(&mp);
        let polys = vec![rings];
        let in_scope = |si: usize, r: &M| match si {
            0 => true,
            1 => brute::distance((48.85, 2.35), (r.lat, r.lon)) <= 100_000.0 + 1e-6,
            2 => r.lat >= -30.0 && r.lat <= 89.0 && (r.lon >= 150.0 || r.lon <= -150.0),
            _ => brute::multi_covers(&polys, [r.lon, r.lat]),
        };
        let scopes = [
            Scope::All,
            Scope::Radius { center: paris, metres: 100_000.0 },
            Scope::BBox(&bbox),
            Scope::Region(&region),
        ];
        for (si, scope) in scopes.into_iter().enumerate() {
            for res in [0u8, 3, 5, 8, 15] {
                for f in 0..FILTERS {
                    let groups = c.aggregate(scope, &GroupBy::H3(res), &["ltv"], &filter(f)).unwrap();
                    let mut want: std::collections::BTreeMap<String, (u64, u64, f64, f64, f64)> =
                        Default::default();
                    for r in model.values() {
                        if !in_scope(si, r) || !filter_matches(f, r) {
                            continue;
                        }
                        let e = want.entry(brute::h3_parent(r.lat, r.lon, res)).or_insert((
                            0,
                            0,
                            0.0,
                            f64::MAX,
                            f64::MIN,
                        ));
                        e.0 += 1;
                        if let Some(v) = r.ltv {
                            e.1 += 1;
                            e.2 += v;
                            e.3 = e.3.min(v);
                            e.4 = e.4.max(v);
                        }
                    }
                    assert_eq!(groups.len(), want.len(), "res {res} filter {f} scope {si}");
                    // Each group once (a repeated key could hide a missing one), and every
                    // wanted group found.
                    let mut seen = std::collections::BTreeSet::new();
                    for g in &groups {
                        let GroupKey::Cell(cell) = g.key else { panic!("H3 group keyed {:?}", g.key) };
                        assert!(seen.insert(cell.to_string()), "res {res}: group {cell} twice");
                        let w = want[&cell.to_string()];
                        let s = g.fields[0];
                        assert_eq!((g.count, s.count), (w.0, w.1));
                        assert!((s.sum - w.2).abs() <= 1e-9 * w.2.abs().max(1.0));
                        if w.1 > 0 {
                            assert_eq!((s.min(), s.max()), (Some(w.3), Some(w.4)));
                        } else {
                            assert_eq!(
                                (s.min(), s.max(), s.avg()),
                                (None, None, None),
                                "no ltv in the group"
                            );
                        }
                    }
                    assert!(want.keys().all(|k| seen.contains(k)), "res {res} filter {f} scope {si}");
                }
            }
        }
        // Group by category, including records without one, in every scope and filter.
        for (si, scope) in scopes.into_iter().enumerate() {
            for f in 0..FILTERS {
                let groups =
                    c.aggregate(scope, &GroupBy::Category("tier".into()), &["ltv"], &filter(f)).unwrap();
                let matching = || model.values().filter(|r| in_scope(si, r) && filter_matches(f, r));
                let stats = |t: Option<&str>| {
                    let rows: Vec<&M> = matching().filter(|r| r.tier.as_deref() == t).collect();
                    let sum: f64 = rows.iter().filter_map(|r| r.ltv).sum();
                    (rows.len() as u64, rows.iter().filter(|r| r.ltv.is_some()).count() as u64, sum)
                };
                for g in &groups {
                    let want = match &g.key {
                        GroupKey::Category(t) => stats(Some(t)),
                        GroupKey::Missing => stats(None),
                        other => panic!("unexpected key {other:?}"),
                    };
                    assert_eq!(
                        (g.count, g.fields[0].count),
                        (want.0, want.1),
                        "{:?} scope {si} filter {f}",
                        g.key
                    );
                    assert!((g.fields[0].sum - want.2).abs() <= 1e-9 * want.2.abs().max(1.0));
                    assert!(g.count > 0, "an empty group");
                }
                let total = groups.iter().map(|g| g.count).sum::<u64>();
                assert_eq!(total, matching().count() as u64, "scope {si} filter {f}");
                assert!(f > 0 || total > 10, "scope {si} holds too few rows to test");
            }
        }
    }
}

#[test]
fn one_place_written_two_ways_is_zero_metres_from_itself() {
    // Longitudes 180 and -180 are one meridian, and every longitude at a pole is the pole:
    // such records are 0 m apart (the haversine gave 1.6 and 0.4 nm, so a radius of 0 found
    // one of them, and nearest broke the tie by the error instead of by id).
    let mut model = Model::new();
    let place = |lat: f64, lon: f64| M { lat, lon, ltv: Some(1.0), tier: None };
    for (id, lat, lon) in [
        ("am-a", 0.0, -180.0),
        ("am-b", 0.0, 180.0),
        ("am-c", 37.5, 180.0),
        ("am-d", 37.5, -180.0),
        ("np-a", 90.0, 180.0),
        ("np-b", 90.0, 0.0),
        ("np-c", 90.0, -77.0),
        ("sp-a", -90.0, 45.0),
        ("sp-b", -90.0, -45.0),
        ("near", 0.0, 179.999),
    ] {
        model.insert(id.to_owned(), place(lat, lon));
    }
    for layout in Layout::ALL {
        let (_dir, db) = load_as(&model, layout);
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        for ((lat, lon), same) in [
            ((0.0, 180.0), &["am-a", "am-b"][..]),
            ((0.0, -180.0), &["am-a", "am-b"]),
            ((37.5, -180.0), &["am-c", "am-d"]),
            ((90.0, 33.0), &["np-a", "np-b", "np-c"]),
            ((-90.0, 180.0), &["sp-a", "sp-b"]),
        ] {
            let at = LatLon::new(lat, lon).unwrap();
            let ids = |hits: Vec<geocrm::query::Neighbor>| {
                hits.into_iter().map(|h| (h.id, h.distance_m)).collect::<Vec<_>>()
            };
            let want: Vec<(String, f64)> = same.iter().map(|id| ((*id).to_owned(), 0.0)).collect();
            assert_eq!(
                ids(c.within_radius(at, 0.0, &Filter::All).unwrap()),
                want,
                "{layout:?} radius 0 at {at:?}"
            );
            assert_eq!(
                ids(c.nearest(at, same.len(), &Filter::All).unwrap()),
                want,
                "{layout:?} nearest at {at:?}"
            );
            let radius = Scope::Radius { center: at, metres: 0.0 };
            assert_eq!(
                c.count(radius, &Filter::All).unwrap(),
                same.len() as u64,
                "{layout:?} count at {at:?}"
            );
            // The independent formula agrees (to its own rounding).
            for id in same {
                let r = &model[*id];
                assert!(brute::distance((lat, lon), (r.lat, r.lon)) < 1e-6, "{id}");
            }
        }
    }
}

#[test]
fn empty_database_and_k_larger_than_collection() {
    let (_dir, db) = load(&Model::new());
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    let p = LatLon::new(0.0, 0.0).unwrap();
    assert!(c.nearest(p, 10, &Filter::All).unwrap().is_empty());
    assert!(c.within_radius(p, 1e7, &Filter::All).unwrap().is_empty());
    assert!(c.aggregate(Scope::All, &GroupBy::H3(5), &["ltv"], &Filter::All).unwrap().is_empty());
    assert!(c
        .aggregate(Scope::All, &GroupBy::Category("tier".into()), &[], &Filter::All)
        .unwrap()
        .is_empty());
    // Without grouping there is always one group, as in SQL: count 0, no average.
    let all = c.aggregate(Scope::All, &GroupBy::Nothing, &["ltv"], &Filter::All).unwrap();
    assert_eq!(all.len(), 1);
    let g = all.iter().next().unwrap();
    assert_eq!(
        (g.key.clone(), g.count, g.fields[0].avg(), g.fields[0].min()),
        (GroupKey::All, 0, None, None)
    );
    drop(snap);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let model = random_model(&mut rng, 5);
    for layout in Layout::ALL {
        let (_dir, db) = load_as(&model, layout);
        let snap = db.read();
        let hits = snap.collection("c").unwrap().nearest(p, 1000, &Filter::All).unwrap();
        assert_eq!(hits.len(), 5);
    }
}

#[test]
fn bad_query_arguments_are_clear_errors() {
    let (_dir, db) = load(&Model::new());
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    let p = LatLon::new(0.0, 0.0).unwrap();
    assert!(matches!(c.nearest(p, 0, &Filter::All), Err(geocrm::Error::InvalidArgument { name: "k", .. })));
    assert!(matches!(c.within_radius(p, -1.0, &Filter::All), Err(geocrm::Error::InvalidArgument { .. })));
    assert!(matches!(c.within_radius(p, f64::NAN, &Filter::All), Err(geocrm::Error::InvalidArgument { .. })));
    assert!(matches!(c.nearest(p, 1, &Filter::eq("nope", "x")), Err(geocrm::Error::InvalidFilter { .. })));
    assert!(matches!(c.nearest(p, 1, &Filter::eq("name", "x")), Err(geocrm::Error::InvalidFilter { .. })));
    assert!(matches!(
        c.nearest(p, 1, &Filter::at_least("tier", 1.0)),
        Err(geocrm::Error::InvalidFilter { .. })
    ));
    assert!(matches!(
        c.aggregate(Scope::All, &GroupBy::H3(16), &[], &Filter::All),
        Err(geocrm::Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        c.aggregate(Scope::All, &GroupBy::Nothing, &["tier"], &Filter::All),
        Err(geocrm::Error::InvalidArgument { .. })
    ));
    assert!(matches!(snap.collection("missing"), Err(geocrm::Error::UnknownCollection { .. })));
}

/// A long filter's error shows the 160 characters around the problem, not the whole text (a
/// 110 KB filter was printed whole; from a hands-on review); a short one is shown whole.
#[test]
fn a_long_filter_error_shows_an_excerpt() {
    let long = format!("{} oops", vec!["ltv > 1"; 5000].join(" or "));
    let err = Filter::parse(&long).unwrap_err();
    let geocrm::Error::InvalidFilter { ref expr, position, .. } = err else { panic!("{err:?}") };
    assert_eq!((expr.chars().count(), position), (long.chars().count(), long.len() - 4));
    let text = err.to_string();
    assert!(text.len() < 400, "{} bytes", text.len());
    assert!(
        text.starts_with("invalid filter …\"")
            && text.contains("****\" (of 55001 characters) at character 54997"),
        "{text}"
    );
    let short = Filter::parse("ltv > 1 oops").unwrap_err().to_string();
    assert!(short.starts_with("invalid filter \"ltv > * ****\" at character 8"), "{short}");
}
