//! The read side: snapshots, per-collection query handles, point reads from the log, and
//! log replay into the state.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use h3o::Resolution;
use parking_lot::{Mutex, RwLockReadGuard};
use serde::Serialize;

use super::ops::{decode_body, decode_one, LogOp, StoredRecord};
use super::state::{CollectionState, State};
use super::Inner;
use crate::crypto::{self, FieldContext, Pii, Sealed};
use crate::error::{Error, Result};
use crate::geo::{BoundingBox, LatLon, PreparedRegion};
use crate::index::{OpPointer, RowRef, TableView};
use crate::io::{FileSystem, ReadableFile};
use crate::log::ReplayedTxn;
use crate::model::{FieldKind, Schema};
use crate::query::{self, Collector, CompiledFilter, Filter, GroupBy, Groups, Neighbor, NeighborRef, Scope};

/// Largest `k` a nearest query accepts.
pub const MAX_K: usize = 1_000_000;

/// A consistent read view of the whole database.
pub struct Snapshot<'db> {
    inner: &'db Inner,
    state: RwLockReadGuard<'db, State>,
    /// Not `Send` (a std guard is not), whatever features parking_lot is built with: the
    /// thread that took the snapshot counts it until it drops it (see `db::held`).
    _same_thread: PhantomData<std::sync::MutexGuard<'static, ()>>,
}

impl<'db> Snapshot<'db> {
    pub(crate) fn new(inner: &'db Inner) -> Self {
        let state = inner.read_state();
        super::held::enter(inner);
        Snapshot { inner, state, _same_thread: PhantomData }
    }

    /// The LSN after the last operation this snapshot sees.
    pub(crate) fn next_lsn(&self) -> u64 {
        self.state.next_lsn
    }

    /// Names of all collections.
    #[must_use]
    pub fn collection_names(&self) -> Vec<String> {
        self.state.collections.keys().cloned().collect()
    }

    /// A query handle on one collection.
    ///
    /// # Errors
    /// [`Error::UnknownCollection`].
    pub fn collection(&self, name: &str) -> Result<CollectionReader<'_>> {
        let (name, c) = self
            .state
            .collections
            .get_key_value(name)
            .ok_or_else(|| Error::UnknownCollection { name: name.to_owned() })?;
        Ok(CollectionReader { inner: self.inner, name, c })
    }
}

/// The directory, the collections' names and the LSN: never the records.
impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("dir", &self.inner.dir)
            .field("collections", &self.state.collections.keys().collect::<Vec<_>>())
            .field("next_lsn", &self.state.next_lsn)
            .finish()
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        super::held::leave(self.inner);
    }
}

/// A record found by an area query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Record id.
    pub id: String,
    /// Its location.
    pub location: LatLon,
}

/// A record as stored: public attributes in the clear, PII sealed.
#[derive(Debug, Clone)]
pub struct StoredView {
    /// Record id.
    pub id: String,
    /// Location.
    pub location: LatLon,
    /// Number attributes that are set.
    pub numbers: BTreeMap<String, f64>,
    /// Category attributes that are set.
    pub categories: BTreeMap<String, String>,
    /// Sealed PII fields that are set (decrypt with [`CollectionReader::reveal`]).
    pub pii: BTreeMap<String, Sealed>,
    /// LSN of the write that produced this version.
    pub lsn: u64,
}

/// Queries on one collection within a [`Snapshot`].
pub struct CollectionReader<'s> {
    pub(super) inner: &'s Inner,
    pub(super) name: &'s str,
    pub(super) c: &'s CollectionState,
}

/// The collection's name, schema and size: never its records.
impl std::fmt::Debug for CollectionReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionReader")
            .field("collection", &self.name)
            .field("schema", &self.c.schema)
            .field("len", &self.len())
            .finish()
    }
}

impl<'s> CollectionReader<'s> {
    /// Number of live records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.view().len()
    }

    /// Whether the collection is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.view().is_empty()
    }

    fn view(&self) -> TableView<'s> {
        self.c.view()
    }

    /// The collection's schema.
    #[must_use]
    pub fn schema(&self) -> &Schema {
        &self.c.schema
    }

    fn compile(&self, filter: &Filter) -> Result<CompiledFilter> {
        filter.compile(&self.c.schema, &self.c.dict)
    }

    /// `answer`, unless a section of the checkpoint failed the check of its first use
    /// ([`Verify::OnFirstUse`](crate::index::checkpoint::Verify)) — then the section read as
    /// empty and the answer may be wrong: [`Error::Corrupt`] naming the file, which is then
    /// marked so that the next open sets it aside and rebuilds the state from the log.
    pub(crate) fn intact<T>(&self, answer: T) -> Result<T> {
        match self.view().base {
            Some(base) => self.inner.checkpoint_damage(&base.checkpoint).map(|()| answer),
            None => Ok(answer),
        }
    }

    /// The `k` records nearest to `at` by great-circle distance that match `filter`,
    /// nearest first (ties by id).
    ///
    /// ```
    /// use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("customers", Schema::new().category("tier"))?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("customers", Record::new("fiji", LatLon::new(-17.7, 178.0)?).category("tier", "gold"))?;
    /// batch.upsert("customers", Record::new("samoa", LatLon::new(-13.8, -171.8)?))?;
    /// batch.upsert("customers", Record::new("sydney", LatLon::new(-33.9, 151.2)?).category("tier", "gold"))?;
    /// batch.commit()?;
    /// let snap = db.read();
    /// let customers = snap.collection("customers")?;
    /// // Across the antimeridian: Samoa, at -171.8°, is nearer to Tonga than Sydney is.
    /// let tonga = LatLon::new(-21.1, -175.2)?;
    /// let near = customers.nearest(tonga, 2, &Filter::All)?;
    /// let ids: Vec<&str> = near.iter().map(|n| n.id.as_str()).collect();
    /// assert_eq!(ids, ["fiji", "samoa"]);
    /// assert!(near[0].distance_m < near[1].distance_m);
    /// // Only the gold ones.
    /// let gold = customers.nearest(tonga, 2, &Filter::eq("tier", "gold"))?;
    /// assert_eq!(gold.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["fiji", "sydney"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for k = 0 or k > [`MAX_K`]; [`Error::InvalidFilter`];
    /// [`Error::Corrupt`] when a checkpoint section it read failed its first-use check (the
    /// next open rebuilds it from the log).
    pub fn nearest(&self, at: LatLon, k: usize, filter: &Filter) -> Result<Vec<Neighbor>> {
        Ok(self.nearest_refs(at, k, filter)?.into_iter().map(Neighbor::from).collect())
    }

    /// [`Self::nearest`] with the ids borrowed from the snapshot instead of copied: the
    /// same answer, for a caller that reads the ids and lets them go (a server writing
    /// them out, a loop of queries).
    ///
    /// ```
    /// use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("customers", Schema::new())?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("customers", Record::new("c1", LatLon::new(48.85, 2.35)?))?;
    /// batch.upsert("customers", Record::new("c2", LatLon::new(51.50, -0.12)?))?;
    /// batch.commit()?;
    /// let snapshot = db.read();
    /// let customers = snapshot.collection("customers")?;
    /// let near = customers.nearest_refs(LatLon::new(50.0, 1.0)?, 1, &Filter::All)?;
    /// assert_eq!(near[0].id, "c1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Self::nearest`].
    pub fn nearest_refs(&self, at: LatLon, k: usize, filter: &Filter) -> Result<Vec<NeighborRef<'s>>> {
        if k == 0 || k > MAX_K {
            return Err(Error::invalid_argument("k", format!("must be 1..={MAX_K}, got {k}")));
        }
        let f = self.compile(filter)?;
        let view = self.view();
        let found: Vec<NeighborRef<'s>> = match view.base {
            // No recent writes to merge: the checkpoint's answer is the answer, its ids and
            // locations read through their sections, looked up once.
            Some(base) if view.tail.is_empty() => {
                let rows = query::nearest_in_checkpoint(base, at, k, &f);
                let (ids, tree) = (base.checkpoint.ids(), base.checkpoint.tree());
                rows.into_iter()
                    .map(|(distance_m, row)| NeighborRef {
                        id: ids.id(row),
                        location: tree.location(row).unwrap_or(LatLon::ORIGIN),
                        distance_m,
                    })
                    .collect()
            }
            _ => query::nearest(view, at, k, &f)
                .into_iter()
                .map(|(distance_m, r)| NeighborRef { id: r.id(), location: r.location(), distance_m })
                .collect(),
        };
        self.intact(found)
    }

    /// Every matching record within `metres` of `center`, nearest first (ties by id).
    ///
    /// ```
    /// use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("shops", Schema::new())?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("shops", Record::new("louvre", LatLon::new(48.8606, 2.3376)?))?;
    /// batch.upsert("shops", Record::new("orsay", LatLon::new(48.8600, 2.3266)?))?;
    /// batch.upsert("shops", Record::new("lyon", LatLon::new(45.7640, 4.8357)?))?;
    /// batch.commit()?;
    /// let snap = db.read();
    /// let notre_dame = LatLon::new(48.8530, 2.3499)?;
    /// let within = snap.collection("shops")?.within_radius(notre_dame, 2_000.0, &Filter::All)?;
    /// assert_eq!(within.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["louvre", "orsay"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative or non-finite radius; [`Error::InvalidFilter`];
    /// [`Error::Corrupt`] when a checkpoint section it read failed its first-use check.
    pub fn within_radius(&self, center: LatLon, metres: f64, filter: &Filter) -> Result<Vec<Neighbor>> {
        check_radius(metres)?;
        let f = self.compile(filter)?;
        let mut out = Vec::new();
        query::scan(self.view(), Scope::Radius { center, metres }, &f, |r| {
            let location = r.location();
            out.push(Neighbor {
                id: r.id().to_owned(),
                location,
                distance_m: crate::geo::haversine_m(center, location),
            });
        });
        out.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then_with(|| a.id.cmp(&b.id)));
        self.intact(out)
    }

    /// Every matching record inside a bounding box, by id.
    ///
    /// ```
    /// use geocrm::{geo::BoundingBox, Database, Filter, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("shops", Schema::new())?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("shops", Record::new("suva", LatLon::new(-18.1, 178.4)?))?;
    /// batch.upsert("shops", Record::new("apia", LatLon::new(-13.8, -171.8)?))?;
    /// batch.upsert("shops", Record::new("perth", LatLon::new(-31.9, 115.9)?))?;
    /// batch.commit()?;
    /// // south, west, north, east: west > east crosses the antimeridian.
    /// let pacific = BoundingBox::new(-25.0, 170.0, -10.0, -165.0)?;
    /// let hits = db.read().collection("shops")?.within_bbox(&pacific, &Filter::All)?;
    /// assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["apia", "suva"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidFilter`]; [`Error::Corrupt`] when a checkpoint section it read failed its
    /// first-use check.
    pub fn within_bbox(&self, bbox: &BoundingBox, filter: &Filter) -> Result<Vec<Hit>> {
        self.hits(Scope::BBox(bbox), filter)
    }

    /// Every matching record covered by a prepared (multi)polygon, by id.
    ///
    /// ```
    /// use geocrm::geo::{MultiPolygon, Polygon, PreparedRegion};
    /// use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("shops", Schema::new())?;
    /// let mut batch = db.begin_write();
    /// for (id, lat, lon) in [("in", 1.0, 1.0), ("in-hole", 5.0, 5.0), ("island", 20.5, 20.5), ("out", 15.0, 15.0)] {
    ///     batch.upsert("shops", Record::new(id, LatLon::new(lat, lon)?))?;
    /// }
    /// batch.commit()?;
    /// // Positions are [lon, lat]: a square with a hole, and an island.
    /// let square = Polygon::new(
    ///     vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]],
    ///     vec![vec![[4.0, 4.0], [6.0, 4.0], [6.0, 6.0], [4.0, 6.0], [4.0, 4.0]]],
    /// )?;
    /// let island = Polygon::new(vec![[20.0, 20.0], [21.0, 20.0], [21.0, 21.0], [20.0, 20.0]], vec![])?;
    /// let territory = PreparedRegion::new(&MultiPolygon::new(vec![square, island])?);
    /// let hits = db.read().collection("shops")?.within_region(&territory, &Filter::All)?;
    /// assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["in", "island"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidFilter`]; [`Error::Corrupt`] when a checkpoint section it read failed its
    /// first-use check.
    pub fn within_region(&self, region: &PreparedRegion, filter: &Filter) -> Result<Vec<Hit>> {
        self.hits(Scope::Region(region), filter)
    }

    /// Counts matching records in a scope.
    ///
    /// ```
    /// use geocrm::query::Scope;
    /// use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("customers", Schema::new().number("ltv"))?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("customers", Record::new("a", LatLon::new(48.85, 2.35)?).number("ltv", 900.0))?;
    /// batch.upsert("customers", Record::new("b", LatLon::new(48.86, 2.34)?).number("ltv", 120.0))?;
    /// batch.upsert("customers", Record::new("c", LatLon::new(40.71, -74.0)?).number("ltv", 5000.0))?;
    /// batch.commit()?;
    /// let snap = db.read();
    /// let customers = snap.collection("customers")?;
    /// let paris = Scope::Radius { center: LatLon::new(48.8566, 2.3522)?, metres: 5_000.0 };
    /// assert_eq!(customers.count(paris, &Filter::All)?, 2);
    /// assert_eq!(customers.count(paris, &Filter::parse("ltv >= 500")?)?, 1);
    /// assert_eq!(customers.count(Scope::All, &Filter::All)?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidFilter`]; [`Error::InvalidArgument`] for a bad radius; [`Error::Corrupt`]
    /// when a checkpoint section it read failed its first-use check.
    pub fn count(&self, scope: Scope<'_>, filter: &Filter) -> Result<u64> {
        check_scope(&scope)?;
        let f = self.compile(filter)?;
        let n = query::count(self.view(), scope, &f);
        self.intact(n)
    }

    fn hits(&self, scope: Scope<'_>, filter: &Filter) -> Result<Vec<Hit>> {
        let f = self.compile(filter)?;
        let mut out = Vec::new();
        query::scan(self.view(), scope, &f, |r| {
            out.push(Hit { id: r.id().to_owned(), location: r.location() })
        });
        out.sort_by(|a, b| a.id.cmp(&b.id));
        self.intact(out)
    }

    /// Count, and sum/avg/min/max of the number `fields`, over matching records in `scope`,
    /// grouped as asked; groups sorted by key.
    ///
    /// ```
    /// use geocrm::query::{GroupBy, GroupKey, Scope};
    /// use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("customers", Schema::new().number("ltv").category("region"))?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("customers", Record::new("a", LatLon::new(48.85, 2.35)?).number("ltv", 900.0).category("region", "eu"))?;
    /// batch.upsert("customers", Record::new("b", LatLon::new(48.86, 2.34)?).number("ltv", 100.0).category("region", "eu"))?;
    /// batch.upsert("customers", Record::new("c", LatLon::new(40.71, -74.0)?).number("ltv", 5000.0).category("region", "us"))?;
    /// batch.commit()?;
    /// let snap = db.read();
    /// let customers = snap.collection("customers")?;
    /// // Sales by region.
    /// let by_region = customers.aggregate(Scope::All, &GroupBy::Category("region".into()), &["ltv"], &Filter::All)?;
    /// let eu = by_region.get(0).unwrap();
    /// assert_eq!((eu.key, eu.count), (GroupKey::Category("eu".into()), 2));
    /// assert_eq!((eu.fields[0].sum, eu.fields[0].avg(), eu.fields[0].max()), (1000.0, Some(500.0), Some(900.0)));
    /// // A heatmap: H3 cells at resolution 4 (Paris's two customers share one).
    /// let cells = customers.aggregate(Scope::All, &GroupBy::H3(4), &[], &Filter::All)?;
    /// let mut counts: Vec<u64> = cells.iter().map(|g| g.count).collect();
    /// counts.sort();
    /// assert_eq!(counts, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an H3 resolution above 15, a field that is not a
    /// number attribute or a grouping field that is not a category, or a bad radius;
    /// [`Error::InvalidFilter`]; [`Error::Corrupt`] when a checkpoint section it read failed its
    /// first-use check.
    pub fn aggregate(
        &self,
        scope: Scope<'_>,
        group_by: &GroupBy,
        fields: &[&str],
        filter: &Filter,
    ) -> Result<Groups> {
        check_scope(&scope)?;
        let f = self.compile(filter)?;
        let positions = fields
            .iter()
            .map(|name| match self.c.schema.field(name) {
                Some((FieldKind::Number, i)) => Ok(i),
                kind => Err(Error::invalid_argument(
                    "field",
                    not_of_kind(name, kind, "number attribute", self.c.schema.number_fields()),
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let (h3, category) = match group_by {
            GroupBy::Nothing => (None, None),
            GroupBy::H3(res) => (
                Some(Resolution::try_from(*res).map_err(|_| {
                    Error::invalid_argument("resolution", format!("H3 resolution {res} is not 0-15"))
                })?),
                None,
            ),
            GroupBy::Category(name) => match self.c.schema.field(name) {
                Some((FieldKind::Category, i)) => (None, Some(i)),
                kind => {
                    return Err(Error::invalid_argument(
                        "group_by",
                        not_of_kind(name, kind, "category attribute", self.c.schema.category_fields()),
                    ))
                }
            },
        };
        if let (Some(res), Scope::All) = (h3, scope) {
            let groups = query::all_by_cell(self.view(), res, &f, &positions);
            return self.intact(groups);
        }
        let mut collector = Collector::new(h3, category, positions);
        query::scan(self.view(), scope, &f, |r| collector.add(r));
        let field = category.unwrap_or(0);
        let groups = collector.finish(|code| self.c.dict.value(field, code).map(str::to_owned));
        self.intact(groups)
    }

    /// Whether a live record has this id, from the indexes alone (the log is not read, so a
    /// record whose log frame is damaged is still found).
    ///
    /// ```
    /// use geocrm::{Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("customers", Schema::new())?;
    /// let mut b = db.begin_write();
    /// b.upsert("customers", Record::new("C-1", LatLon::new(1.0, 2.0)?))?;
    /// b.commit()?;
    /// let snap = db.read();
    /// let customers = snap.collection("customers")?;
    /// assert!(customers.contains("C-1")? && !customers.contains("C-2")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] when a checkpoint section it read failed its first-use check.
    pub fn contains(&self, id: &str) -> Result<bool> {
        let found = self.view().get(id).is_some();
        self.intact(found)
    }

    /// The ids of every live record, sorted — to list or page through a collection (a
    /// CRM's customer list), from the indexes alone: no log read, no PII.
    ///
    /// ```
    /// use geocrm::{Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("customers", Schema::new())?;
    /// let mut batch = db.begin_write();
    /// for id in ["C-3", "C-1", "C-2"] {
    ///     batch.upsert("customers", Record::new(id, LatLon::new(1.0, 2.0)?))?;
    /// }
    /// batch.delete("customers", "C-2")?;
    /// batch.commit()?;
    /// db.checkpoint()?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("customers", Record::new("C-0", LatLon::new(3.0, 4.0)?))?;
    /// batch.commit()?;
    /// let snap = db.read();
    /// assert_eq!(snap.collection("customers")?.ids()?, ["C-0", "C-1", "C-3"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] when a checkpoint section it read failed its first-use check.
    pub fn ids(&self) -> Result<Vec<&'s str>> {
        let mut ids: Vec<&'s str> = self.view().rows().map(|row| row.id()).collect();
        ids.sort_unstable();
        self.intact(ids)
    }

    /// The stored record (PII sealed), read back from the log.
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32])))?;
    /// db.create_collection("customers", Schema::new().number("ltv").pii("name"))?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("customers", Record::new("C-1", LatLon::new(48.85, 2.35)?).number("ltv", 900.0).pii("name", "Ada"))?;
    /// batch.commit()?;
    /// let snap = db.read();
    /// let stored = snap.collection("customers")?.get("C-1")?.expect("stored");
    /// assert_eq!(stored.numbers["ltv"], 900.0);
    /// assert!(stored.pii.contains_key("name")); // sealed: reveal to read it
    /// assert!(snap.collection("customers")?.get("C-2")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Corrupt`] when the log cannot be read back.
    pub fn get(&self, id: &str) -> Result<Option<StoredView>> {
        let Some(row) = self.view().get(id) else { return self.intact(None) };
        let (stored, lsn) = self.stored(row)?;
        let s = &self.c.schema;
        let numbers = set_fields(s.number_fields(), stored.numbers, |v| v);
        let categories = set_fields(s.category_fields(), stored.categories, |v| v);
        let pii = s
            .pii_fields()
            .iter()
            .zip(stored.pii.iter())
            .filter_map(|(name, slot)| Some((name.clone(), Sealed::from_bytes(slot?.to_vec()))))
            .collect();
        let view = StoredView { id: id.to_owned(), location: row.location(), numbers, categories, pii, lsn };
        // The location is the first read of the tree section on some paths.
        self.intact(Some(view))
    }

    /// Decrypts every PII field of a record. Recorded in the audit log (ids and field
    /// names, never values) before the values are returned, unless auditing is off.
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32])).actor("support-desk"))?;
    /// db.create_collection("customers", Schema::crm())?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("customers", Record::new("C-1", LatLon::new(48.85, 2.35)?).pii("name", "Ada").pii("phone", "+33 1 42 00 00 00"))?;
    /// batch.commit()?;
    /// let pii = db.read().collection("customers")?.reveal("C-1")?;
    /// assert_eq!(pii["name"].expose(), "Ada");
    /// assert_eq!(pii["phone"].expose(), "+33142000000"); // phones are stored in E.164
    /// assert_eq!(format!("{:?}", pii["name"]), "Pii(<redacted>)");
    /// let audit = db.audit_entries()?;
    /// assert_eq!((audit[0].actor.as_str(), audit[0].ids.as_slice()), ("support-desk", ["C-1".to_string()].as_slice()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::MissingKey`] without a key; [`Error::Decrypt`] when a field fails
    /// authentication; [`Error::NotFound`] when the id is unknown; [`Error::Erased`]
    /// when an erasure destroyed its key since this snapshot was taken; [`Error::Corrupt`]
    /// when the keystore lost its key (or the log its record); [`Error::Io`] or
    /// [`Error::Poisoned`] when the audit entry cannot be written (nothing is returned, and
    /// later reads fail until the database is reopened).
    pub fn reveal(&self, id: &str) -> Result<BTreeMap<String, Pii>> {
        let out = self.reveal_unaudited(id)?;
        self.inner.audit_reveal(self.name, id, &out)?;
        Ok(out)
    }

    /// Decrypts the PII `fields` (every PII field when empty) of each of `ids`, in order —
    /// a page of customers at once: one audit entry (one fsync; one per 10,000 ids) for the
    /// whole read, instead of one per record naming every field as [`Self::reveal`] records.
    /// The entry names each id with a field returned once, and the fields returned to any
    /// of them (so it may name a field for a record that has none). Each map holds the
    /// asked fields the record has set; the others are not decrypted.
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32])))?;
    /// db.create_collection("customers", Schema::crm())?;
    /// let mut batch = db.begin_write();
    /// for (id, name) in [("C-1", "Ada"), ("C-2", "Grace"), ("C-3", "Edsger")] {
    ///     batch.upsert("customers", Record::new(id, LatLon::new(48.85, 2.35)?).pii("name", name).pii("phone", "+33142000000"))?;
    /// }
    /// batch.commit()?;
    /// let snap = db.read();
    /// let names = snap.collection("customers")?.reveal_many(&["C-3", "C-1"], &["name"])?;
    /// assert_eq!(names.iter().map(|m| m["name"].expose()).collect::<Vec<_>>(), ["Edsger", "Ada"]);
    /// assert!(!names[0].contains_key("phone"));
    /// drop(snap);
    /// let audit = db.audit_entries()?;
    /// assert_eq!(audit.len(), 1);
    /// assert_eq!((audit[0].ids.len(), audit[0].fields.as_slice()), (2, ["name".to_string()].as_slice()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a field that is not one of the collection's PII
    /// fields; otherwise as [`Self::reveal`], for the first id that fails — then nothing is
    /// returned and nothing recorded.
    pub fn reveal_many(&self, ids: &[&str], fields: &[&str]) -> Result<Vec<BTreeMap<String, Pii>>> {
        let schema = &self.c.schema;
        let mut positions = Vec::with_capacity(fields.len());
        for name in fields {
            match schema.field(name) {
                Some((FieldKind::Pii, i)) => positions.push(i),
                kind => {
                    let reason = not_of_kind(name, kind, "PII field", schema.pii_fields());
                    return Err(Error::invalid_argument("fields", reason));
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.reveal_unaudited_where(id, |i| fields.is_empty() || positions.contains(&i))?);
        }
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        let read: Vec<&str> = ids
            .iter()
            .zip(&out)
            .filter(|(id, found)| !found.is_empty() && seen.insert(**id))
            .map(|(id, _)| *id)
            .collect();
        if !read.is_empty() {
            let mut names: Vec<&str> =
                out.iter().flat_map(|found| found.keys().map(String::as_str)).collect();
            names.sort_unstable();
            names.dedup();
            self.inner.audit.record(crate::audit::AuditAction::Reveal, self.name, &read, &names)?;
        }
        Ok(out)
    }

    /// [`CollectionReader::reveal`] without the audit entry (the caller records one).
    pub(crate) fn reveal_unaudited(&self, id: &str) -> Result<BTreeMap<String, Pii>> {
        self.reveal_unaudited_where(id, |_| true)
    }

    /// [`Self::reveal_unaudited`] of the PII fields whose schema position `keep` accepts:
    /// the others are not decrypted.
    fn reveal_unaudited_where(
        &self,
        id: &str,
        keep: impl Fn(usize) -> bool,
    ) -> Result<BTreeMap<String, Pii>> {
        if self.inner.master.lock().is_none() {
            return Err(Error::MissingKey);
        }
        let row = self.view().get(id);
        self.intact(())?;
        let row =
            row.ok_or_else(|| Error::NotFound { collection: self.name.to_owned(), id: id.to_owned() })?;
        let (stored, _) = self.stored(row)?;
        let Some(key_id) = stored.key_id else { return Ok(BTreeMap::new()) };
        let Some(data_key) = self.data_key_for(id, key_id)? else {
            // Erased (its key destroyed after this snapshot was taken, or its tombstone lost)
            // only if an erasure recorded the key id; otherwise the keystore lost the key.
            if self.inner.manifest.lock().erased_key(key_id) == Some(false) {
                return Err(Error::corrupt(
                    self.inner.dir.join(crate::crypto::KEYSTORE_FILE),
                    0,
                    format!(
                        "record {id:?} in {:?} uses data key {key_id}, which the keystore does not hold \
                         and no erasure destroyed: its PII cannot be decrypted (`geocrm repair` keeps \
                         the record without it)",
                        self.name
                    ),
                ));
            }
            return Err(Error::Erased { collection: self.name.to_owned(), id: id.to_owned() });
        };
        open_sealed_where(self.inner.db_id, self.name, &self.c.schema, &stored, (key_id, &data_key), keep)
    }

    /// The data key the keystore holds for record `id`, if it is key `key_id` (`None`: the
    /// key was destroyed by an erasure, or lost).
    ///
    /// # Errors
    /// [`Error::MissingKey`] without the master key or keystore; keystore errors.
    pub(crate) fn data_key_for(&self, id: &str, key_id: u64) -> Result<Option<crypto::DataKey>> {
        self.inner.ensure_keystore()?;
        let keystore = self.inner.keystore.read();
        let held = keystore.as_ref().ok_or(Error::MissingKey)?.data_key(self.name, id)?;
        Ok(held.filter(|(k, _)| *k == key_id).map(|(_, key)| key))
    }

    /// The record's operation read back from the log, with its LSN.
    pub(super) fn stored(&self, row: RowRef<'_>) -> Result<(StoredRecord, u64)> {
        let pointer = row.pointer();
        // A pointer section that failed its first-use check reads as zeros.
        self.intact(())?;
        let (body, first_lsn) = self.inner.segments.read_body(pointer)?;
        let path = || self.inner.segments.path(pointer.segment);
        match decode_one(&body, pointer.index) {
            // The collection too: a pointer into another collection's version of the id
            // (a file written wrong under intact checksums) must not pass as this record.
            Ok(LogOp::Upsert(r)) if r.id == row.id() && r.collection == self.name => {
                Ok((r, first_lsn + u64::from(pointer.index)))
            }
            Ok(_) => Err(Error::corrupt(
                path(),
                pointer.offset,
                "the log operation an index points to is not this record",
            )),
            Err(e) => Err(Error::corrupt(path(), pointer.offset, e)),
        }
    }
}

/// Decrypts the sealed PII fields of `stored` (a version of a record of `collection`, whose
/// schema is `schema`) sealed under data key `key`.
pub(crate) fn open_sealed(
    db_id: [u8; 16],
    collection: &str,
    schema: &Schema,
    stored: &StoredRecord,
    key: (u64, &crypto::DataKey),
) -> Result<BTreeMap<String, Pii>> {
    open_sealed_where(db_id, collection, schema, stored, key, |_| true)
}

/// [`open_sealed`] of the PII fields whose position in the schema `keep` accepts.
pub(crate) fn open_sealed_where(
    db_id: [u8; 16],
    collection: &str,
    schema: &Schema,
    stored: &StoredRecord,
    (key_id, data_key): (u64, &crypto::DataKey),
    keep: impl Fn(usize) -> bool,
) -> Result<BTreeMap<String, Pii>> {
    let id = stored.id.as_str();
    let mut out = BTreeMap::new();
    for (i, (field, sealed)) in schema.pii_fields().iter().zip(stored.pii.iter()).enumerate() {
        let Some(bytes) = sealed.filter(|_| keep(i)) else { continue };
        let ctx = FieldContext { db_id, collection, record_id: id, field, key_id };
        let value = crypto::open(data_key, &ctx, &Sealed::from_bytes(bytes.to_vec())).map_err(|_| {
            Error::Decrypt { collection: collection.to_owned(), id: id.to_owned(), field: field.clone() }
        })?;
        out.insert(field.clone(), value);
    }
    Ok(out)
}

/// The fields that are set, by name, in schema order of `names`.
pub(crate) fn set_fields<T, U>(
    names: &[String],
    values: Vec<Option<T>>,
    f: impl Fn(T) -> U,
) -> BTreeMap<String, U> {
    names.iter().zip(values).filter_map(|(n, v)| Some((n.clone(), f(v?)))).collect()
}

/// Why field `name` (of `kind` in the schema, if any) cannot serve as a `wanted` (`"number
/// attribute"`): what it is, or that the collection has no such field, with the fields that
/// can (`agg --by attr:nope` said only that it was no category attribute: from a hands-on
/// review).
fn not_of_kind(name: &str, kind: Option<(FieldKind, usize)>, wanted: &str, fields: &[String]) -> String {
    let what = match kind {
        Some((FieldKind::Pii, _)) => "a PII field (encrypted: it cannot be aggregated)",
        Some((FieldKind::Number, _)) => "a number attribute",
        Some((FieldKind::Category, _)) => "a category attribute",
        None => "",
    };
    let which = if fields.is_empty() {
        format!("the collection has no {wanted}")
    } else {
        let quoted: Vec<String> = fields.iter().map(|f| format!("{f:?}")).collect();
        format!("its {wanted}s: {}", quoted.join(", "))
    };
    if what.is_empty() {
        format!("{name:?} is not a field of the collection ({which})")
    } else {
        format!("{name:?} is {what}, not a {wanted} ({which})")
    }
}

fn check_radius(metres: f64) -> Result<()> {
    if metres.is_finite() && metres >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid_argument("metres", format!("radius must be a finite number ≥ 0, got {metres}")))
    }
}

fn check_scope(scope: &Scope<'_>) -> Result<()> {
    match scope {
        Scope::Radius { metres, .. } => check_radius(*metres),
        _ => Ok(()),
    }
}

/// How many log segments the read-only handles of a process keep open together from their
/// opens on ([`SegmentReaders::hold`]): a budget shared by every handle, so that opening many
/// of them never takes the descriptors the process needs for anything else (the soft limit
/// is 256 on macOS, often 1,024 on Linux). A handle that finds it spent holds fewer segments
/// (or none), and opens the rest on first use.
pub(crate) const HELD_SEGMENTS: usize = 128;

/// Segments held by this process's read-only handles (at most [`HELD_SEGMENTS`]).
static HELD_IN_PROCESS: AtomicUsize = AtomicUsize::new(0);

/// Whether `e` is a file found missing.
fn is_gone(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Open segment files for point reads, shared by all readers.
#[derive(Debug)]
pub(crate) struct SegmentReaders {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    open: Mutex<HashMap<u64, Arc<dyn ReadableFile>>>,
    /// A read-only handle's that does not hold the lock: a segment gone is then most likely
    /// one the holder's compaction deleted since the open.
    read_only: bool,
    /// How many of `open` [`SegmentReaders::hold`] took from `budget`, given back to it on
    /// drop.
    held: AtomicUsize,
    /// The segments held by every handle sharing the budget, and their most
    /// ([`HELD_IN_PROCESS`] and [`HELD_SEGMENTS`]; tests use their own).
    budget: &'static AtomicUsize,
    limit: usize,
    /// A segment [`SegmentReaders::hold`] was to hold was gone.
    found_gone: AtomicBool,
}

impl Drop for SegmentReaders {
    fn drop(&mut self) {
        self.budget.fetch_sub(*self.held.get_mut(), Ordering::AcqRel);
    }
}

impl SegmentReaders {
    pub(crate) fn new(fs: Arc<dyn FileSystem>, dir: PathBuf, read_only: bool) -> Self {
        SegmentReaders {
            fs,
            dir,
            open: Mutex::new(HashMap::new()),
            read_only,
            held: AtomicUsize::new(0),
            budget: &HELD_IN_PROCESS,
            limit: HELD_SEGMENTS,
            found_gone: AtomicBool::new(false),
        }
    }

    /// Decodes the operation each of `items` points to, in log order, reading each frame
    /// once, and hands `f` the pointer, the caller's tag and the decoded operation (or why it
    /// did not decode). For scans over many records: compaction, verify, blind-index lookups.
    ///
    /// # Errors
    /// What reading a frame returns ([`Error::Io`], [`Error::Corrupt`]), or what `f` returns.
    pub(crate) fn for_each_op<T>(
        &self,
        mut items: Vec<(OpPointer, T)>,
        mut f: impl FnMut(OpPointer, T, std::result::Result<LogOp, String>) -> Result<()>,
    ) -> Result<()> {
        items.sort_unstable_by_key(|(p, _)| (p.segment, p.offset, p.index));
        let mut frame: Option<(u64, u64, Vec<u8>)> = None;
        for (p, tag) in items {
            if frame.as_ref().is_none_or(|(s, o, _)| (*s, *o) != (p.segment, p.offset)) {
                frame = Some((p.segment, p.offset, self.read_body(p)?.0));
            }
            let body = frame.as_ref().map_or(&[][..], |(_, _, b)| b.as_slice());
            f(p, tag, decode_one(body, p.index))?;
        }
        Ok(())
    }

    /// As [`SegmentReaders::for_each_op`], but a frame that cannot be read is handed to `f`
    /// (as `Err` with why, for each item pointing into it) and the walk goes on: `verify`
    /// counts the checkpoint rows that point into a damaged log rather than stop at the first.
    ///
    /// # Errors
    /// What `f` returns.
    pub(crate) fn for_each_op_or_read_error<T>(
        &self,
        mut items: Vec<(OpPointer, T)>,
        mut f: impl FnMut(
            OpPointer,
            T,
            std::result::Result<std::result::Result<LogOp, String>, &Error>,
        ) -> Result<()>,
    ) -> Result<()> {
        items.sort_unstable_by_key(|(p, _)| (p.segment, p.offset, p.index));
        let mut frame: Option<(u64, u64, Result<Vec<u8>>)> = None;
        for (p, tag) in items {
            if frame.as_ref().is_none_or(|(s, o, _)| (*s, *o) != (p.segment, p.offset)) {
                frame = Some((p.segment, p.offset, self.read_body(p).map(|(body, _)| body)));
            }
            let Some((_, _, read)) = frame.as_ref() else { continue };
            f(p, tag, read.as_ref().map(|body| decode_one(body, p.index)))?;
        }
        Ok(())
    }

    /// Opens the segments `listed` (numbers, oldest first, from `from` on) now and keeps
    /// them open while the process's budget lasts ([`HELD_SEGMENTS`] among all read-only
    /// handles); the rest are opened on first use, and so is every one from the first that
    /// fails to open for any reason but being gone (too many open files, say). A read-only
    /// handle not holding the lock does this at open: the holder's compaction deletes the
    /// segments its records are in, and a file still open stays readable after its name is
    /// removed (POSIX unlink semantics, as for the mapped checkpoint files), so its point
    /// reads keep working.
    ///
    /// A compaction since the log was replayed is noted ([`SegmentReaders::found_gone`]), so
    /// that the read-only open starts over (when the MANIFEST changed; otherwise the log is
    /// damaged, and `verify` reports it): `from` not listed first, a listed segment gone, or,
    /// with the budget spent, the oldest segment not held gone (a compaction removes the
    /// oldest first).
    pub(crate) fn hold(&self, from: u64, listed: &[u64]) {
        if listed.first() != Some(&from) {
            self.found_gone.store(true, Ordering::Relaxed);
        }
        let mut open = self.open.lock();
        for &segment in listed {
            let std::collections::hash_map::Entry::Vacant(slot) = open.entry(segment) else { continue };
            if self
                .budget
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| (h < self.limit).then_some(h + 1))
                .is_err()
            {
                // Not held: gone already, it was removed since the replay.
                if !self.fs.exists(&self.path(segment)).unwrap_or(true) {
                    self.found_gone.store(true, Ordering::Relaxed);
                }
                break;
            }
            match self.fs.open_read(&self.path(segment)) {
                Ok(file) => {
                    slot.insert(Arc::from(file));
                    self.held.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.budget.fetch_sub(1, Ordering::AcqRel);
                    if !is_gone(&e) {
                        break;
                    }
                    self.found_gone.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// Holds against `budget` and `limit` instead of the process's.
    #[cfg(test)]
    fn with_budget(mut self, budget: &'static AtomicUsize, limit: usize) -> Self {
        (self.budget, self.limit) = (budget, limit);
        self
    }

    /// Whether [`SegmentReaders::hold`] found a segment gone.
    pub(crate) fn found_gone(&self) -> bool {
        self.found_gone.load(Ordering::Relaxed)
    }

    /// Drops cached handles of segments below `segment` (deleted by compaction).
    pub(crate) fn forget_below(&self, segment: u64) {
        self.open.lock().retain(|&n, _| n >= segment);
    }

    pub(crate) fn path(&self, segment: u64) -> PathBuf {
        crate::log::segment_path(&self.dir, segment)
    }

    /// A handle on `segment` that was at least `end` bytes long when opened (the cached one,
    /// or a fresh one when the segment has grown since).
    fn file_reaching(&self, segment: u64, end: u64) -> Result<Arc<dyn ReadableFile>> {
        let mut open = self.open.lock();
        match open.get(&segment) {
            Some(f) if f.len() >= end => Ok(f.clone()),
            _ => {
                let f: Arc<dyn ReadableFile> =
                    Arc::from(self.fs.open_read(&self.path(segment)).map_err(|e| self.gone_hint(e))?);
                open.insert(segment, f.clone());
                Ok(f)
            }
        }
    }

    /// `e`, with what to do when a read-only handle (not holding the lock) finds a segment
    /// gone: most likely the holder's compaction deleted it since the open.
    fn gone_hint(&self, e: Error) -> Error {
        match e {
            Error::Io { path, source, .. }
                if self.read_only && source.kind() == std::io::ErrorKind::NotFound =>
            {
                Error::io(
                    "open a log segment (gone: deleted by a compaction since the database was opened \
                     read-only? open it again)",
                    path,
                    source,
                )
            }
            e => e,
        }
    }

    /// Reads and validates the frame at `p` and returns its body and the LSN of its first
    /// operation. The frame's header gives its length: the first read takes up to 4 KiB
    /// (small frames in one read), a second one the rest.
    pub(crate) fn read_body(&self, p: OpPointer) -> Result<(Vec<u8>, u64)> {
        const FIRST_READ: u64 = 4096;
        let header = crate::codec::FRAME_HEADER_LEN as u64;
        let corrupt = |reason: String| Error::corrupt(self.path(p.segment), p.offset, reason);
        let file = self.file_reaching(p.segment, p.offset.saturating_add(header))?;
        let available = file.len().saturating_sub(p.offset);
        if available < header {
            return Err(corrupt(format!("no frame: the segment ends {available} bytes after this offset")));
        }
        let mut frame = vec![0u8; available.min(FIRST_READ) as usize];
        file.read_exact_at(&mut frame, p.offset)?;
        let payload = crate::codec::read4(&frame, 0).map_or(0, u32::from_le_bytes);
        if payload > crate::codec::MAX_FRAME_PAYLOAD {
            return Err(corrupt(format!("frame length {payload} is beyond the format's limit")));
        }
        let len = header + u64::from(payload);
        if len <= frame.len() as u64 {
            frame.truncate(len as usize);
        } else {
            let first = frame.len();
            let file = self.file_reaching(p.segment, p.offset + len)?;
            if file.len() < p.offset + len {
                // A damaged length field: the frame's checksum cannot be checked either.
                return Err(corrupt(format!("frame length {len} runs past the end of the segment")));
            }
            frame.resize(len as usize, 0);
            file.read_exact_at(frame.get_mut(first..).unwrap_or_default(), p.offset + first as u64)?;
        }
        crate::log::frame_body_with_lsn(&frame).map_err(corrupt)
    }
}

/// Applies one replayed transaction; malformed contents are corruption at the frame.
pub(crate) fn replay_txn(state: &mut State, log_dir: &Path, txn: ReplayedTxn) -> Result<()> {
    let next_lsn = for_each_txn_op(log_dir, txn, |op, pointer, lsn| {
        state.check(&op).map_err(|reason| frame_corrupt(log_dir, pointer, reason))?;
        state.apply(&op, pointer, lsn);
        Ok(())
    })?;
    state.next_lsn = next_lsn;
    Ok(())
}

/// Decodes the operations of a replayed transaction and hands each to `f` with its pointer
/// and LSN, in log order; a body that does not decode is corruption at its frame. Returns
/// the LSN after the transaction. (Replay at open, and the subject export's log scan.)
pub(crate) fn for_each_txn_op(
    log_dir: &Path,
    txn: ReplayedTxn,
    mut f: impl FnMut(LogOp, OpPointer, u64) -> Result<()>,
) -> Result<u64> {
    let mut lsn = txn.first_lsn;
    for frame in txn.frames {
        let at = OpPointer { segment: frame.pos.segment, offset: frame.pos.offset, index: 0 };
        let ops =
            decode_body(&frame.body, frame.op_count).map_err(|reason| frame_corrupt(log_dir, at, reason))?;
        for (op, index) in ops.into_iter().zip(0u32..) {
            f(op, OpPointer { index, ..at }, lsn)?;
            lsn += 1;
        }
    }
    Ok(lsn)
}

/// [`Error::Corrupt`] at the frame `pointer` is in.
fn frame_corrupt(log_dir: &Path, pointer: OpPointer, reason: String) -> Error {
    Error::corrupt(crate::log::segment_path(log_dir, pointer.segment), pointer.offset, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemFs;

    /// `hold` keeps segments open while its budget lasts, oldest first; one it holds reads
    /// after its name is removed, one past the budget is opened on first use (gone, it says
    /// to open again), and a handle's drop gives its share back.
    #[test]
    fn hold_keeps_segments_open_within_the_budget() {
        static BUDGET: AtomicUsize = AtomicUsize::new(0);
        let mem = MemFs::new();
        let dir = PathBuf::from("/db/log");
        for n in 1..=10 {
            mem.write_raw(&crate::log::segment_path(&dir, n), b"segment");
        }
        let fs: Arc<dyn FileSystem> = Arc::new(mem.clone());
        let first = SegmentReaders::new(fs.clone(), dir.clone(), true).with_budget(&BUDGET, 8);
        first.hold(1, &[1, 2, 3, 4, 5, 6]);
        let second = SegmentReaders::new(fs.clone(), dir.clone(), true).with_budget(&BUDGET, 8);
        second.hold(1, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let held = |r: &SegmentReaders| {
            let mut held: Vec<u64> = r.open.lock().keys().copied().collect();
            held.sort_unstable();
            held
        };
        assert_eq!((held(&first), held(&second)), (vec![1, 2, 3, 4, 5, 6], vec![1, 2]));
        assert!(!first.found_gone() && !second.found_gone());
        assert_eq!(BUDGET.load(Ordering::Acquire), 8);
        for n in [1, 3] {
            fs.remove_file(&crate::log::segment_path(&dir, n)).unwrap();
        }
        assert!(first.file_reaching(1, 7).is_ok() && second.file_reaching(1, 7).is_ok(), "held");
        let err = second.file_reaching(3, 7).expect_err("not held, and gone").to_string();
        assert!(err.contains("open it again"), "{err}");
        drop(first);
        assert_eq!(BUDGET.load(Ordering::Acquire), 2, "the first handle's share is given back");
        // A segment gone before the hold is passed over and noted (a compaction since the
        // replay, or damage): the others are held.
        let third = SegmentReaders::new(fs.clone(), dir.clone(), true).with_budget(&BUDGET, 8);
        third.hold(1, &[1, 2, 3, 4, 5]);
        assert_eq!(held(&third), [2, 4, 5]);
        assert!(third.found_gone() && !second.found_gone());
        // The budget spent (8 held): nothing more is held, but the oldest segment not held
        // found gone is noted all the same (a compaction removes the oldest first).
        assert_eq!(BUDGET.load(Ordering::Acquire), 2 + 3);
        let spend = SegmentReaders::new(fs.clone(), dir.clone(), true).with_budget(&BUDGET, 8);
        spend.hold(5, &[5, 6, 7]);
        assert_eq!(BUDGET.load(Ordering::Acquire), 8);
        let late = SegmentReaders::new(fs.clone(), dir.clone(), true).with_budget(&BUDGET, 8);
        late.hold(4, &[4, 5]);
        assert!(held(&late).is_empty() && !late.found_gone(), "segment 4 is there");
        fs.remove_file(&crate::log::segment_path(&dir, 4)).unwrap();
        let late = SegmentReaders::new(fs.clone(), dir.clone(), true).with_budget(&BUDGET, 8);
        late.hold(4, &[4, 5]);
        assert!(held(&late).is_empty() && late.found_gone(), "segment 4 is gone");
        // The first segment to hold not listed at all: removed since the replay.
        let missing_first = SegmentReaders::new(fs, dir, true).with_budget(&BUDGET, 8);
        missing_first.hold(4, &[5, 6]);
        assert!(missing_first.found_gone());
        drop((second, third, spend, late, missing_first));
        assert_eq!(BUDGET.load(Ordering::Acquire), 0);
    }

    /// A segment that fails to open for another reason (too many open files, here one that
    /// is not a file) ends the holding: the rest are opened on use.
    #[test]
    fn hold_stops_at_a_segment_that_cannot_be_opened() {
        static BUDGET: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::tempdir().unwrap();
        for n in 1..=6 {
            std::fs::write(crate::log::segment_path(dir.path(), n), b"segment").unwrap();
        }
        let third = crate::log::segment_path(dir.path(), 3);
        std::fs::remove_file(&third).unwrap();
        std::fs::create_dir(&third).unwrap();
        let readers = SegmentReaders::new(Arc::new(crate::io::RealFs), dir.path().to_owned(), true)
            .with_budget(&BUDGET, 100);
        readers.hold(1, &[1, 2, 3, 4, 5, 6]);
        let mut held: Vec<u64> = readers.open.lock().keys().copied().collect();
        held.sort_unstable();
        assert_eq!(held, [1, 2]);
        assert!(!readers.found_gone());
        assert_eq!(BUDGET.load(Ordering::Acquire), 2);
    }

    /// A crafted log whose checkpoint names segment 2³² − 1 while segment 1 is there too: an
    /// open made one path per number in between (and the read-only hold would have probed
    /// each) — an allocation failure that aborted the process (from the review of the hold).
    #[test]
    fn an_open_lists_the_segments_there_are_not_every_number_between() {
        use crate::{Database, LatLon, Options, Record, Schema};
        let mem = MemFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(mem.clone());
        let dir = Path::new("/db");
        {
            let db = Database::open(dir, Options::new().file_system(fs.clone()).checkpoint_after_ops(None))
                .unwrap();
            db.create_collection("c", Schema::new()).unwrap();
            let mut b = db.begin_write();
            b.upsert("c", Record::new("C-1", LatLon::new(45.0, 5.0).unwrap())).unwrap();
            b.commit().unwrap();
            db.checkpoint().unwrap();
        }
        let mut m = crate::db::manifest::Manifest::load(fs.as_ref(), dir).unwrap().unwrap();
        let checkpoint = m.checkpoint.as_mut().unwrap();
        let last = u64::from(u32::MAX);
        let log = dir.join("log");
        fs.remove_file(&crate::log::segment_path(&log, checkpoint.segment)).unwrap();
        let header = crate::log::SegmentHeader { number: last, first_lsn: checkpoint.lsn, db_id: m.db_id };
        mem.write_raw(&crate::log::segment_path(&log, last), &header.encode());
        checkpoint.segment = last;
        m.store(fs.as_ref(), dir).unwrap();
        for options in [Options::new().read_only(true), Options::new()] {
            let db = Database::open(dir, options.file_system(fs.clone())).unwrap();
            assert!(db.read().collection("c").unwrap().get("C-1").unwrap().is_some());
        }
    }
}
