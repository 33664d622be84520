//! The duplicates report: records sharing a phone number or e-mail address (by blind value),
//! or with the same normalized name, each within [`DUPLICATE_NAME_RADIUS_M`] of another of its
//! group.

use std::collections::HashMap;

use serde::Serialize;
use zeroize::Zeroizing;

use super::blind::blind_label;
use super::read::CollectionReader;
use crate::audit::AuditAction;
use crate::crypto::{BlindIndexKey, DataKey};
use crate::error::{Error, Result};
use crate::geo::{haversine_m, metres_to_chord, LatLon};
use crate::model::PiiKind;

/// Records with the same normalized name count as duplicates within this distance of one
/// another (groups are chains of such pairs).
pub const DUPLICATE_NAME_RADIUS_M: f64 = 50.0;

/// Why records were grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateReason {
    /// The same phone number (in any phone field).
    SamePhone,
    /// The same e-mail address (in any e-mail field).
    SameEmail,
    /// The same normalized `name` (case, punctuation, spacing and Unicode form — a combining
    /// accent or a full-width letter — ignored), each record
    /// within [`DUPLICATE_NAME_RADIUS_M`] of another of the group.
    SameNameNearby,
}

/// Records that look like the same customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateGroup {
    /// Why.
    pub reason: DuplicateReason,
    /// At least two record ids, sorted.
    pub ids: Vec<String>,
}

/// A name for comparison: in Unicode normalization form KC (an accent typed as a combining
/// mark is the precomposed letter, a full-width letter the ASCII one), lowercase, its
/// letters, digits and combining marks only — the spaces and punctuation between them
/// dropped, so `Sean O'Neil`, `Sean ONeil` and `Sean O Neil` are one name, and so are
/// `Mary-Jane Smith`, `MaryJane Smith` and `Mary Jane Smith`, or `J.R. Ewing` and `JR Ewing`
/// (with punctuation taken as a space, the README's "punctuation ignored" did not hold:
/// from a hands-on review).
fn normalize_name(name: &str) -> String {
    let compatible = crate::crypto::normalize::nfkc(name);
    let lower = Zeroizing::new(compatible.as_ref().map_or(name, |c| c.as_str()).to_lowercase());
    let in_word = |c: char| c.is_alphanumeric() || unicode_normalization::char::is_combining_mark(c);
    lower.chars().filter(|&c| in_word(c)).collect()
}

impl CollectionReader<'_> {
    /// Groups of live records that look like duplicates: same blind phone value, same blind
    /// e-mail value, or same normalized name (the PII field called `name`) with each record
    /// within [`DUPLICATE_NAME_RADIUS_M`] of another of its group (a chain: the group can
    /// span more). Names are decrypted one at a time and replaced at once
    /// by a keyed hash; no plaintext is kept or returned. Scans every live record (O(n)
    /// log reads and one decryption per named record). Recorded in the audit log as a
    /// `duplicates` entry listing the reported ids — an entry on every call that completes,
    /// with no ids when nothing is reported (every name was still decrypted), not one id per name read.
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, DuplicateReason, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([8; 32])))?;
    /// db.create_collection("customers", Schema::crm())?;
    /// let mut b = db.begin_write();
    /// b.upsert("customers", Record::new("A", LatLon::new(48.0, 2.0)?).pii("email", "Ada@Example.org"))?;
    /// b.upsert("customers", Record::new("B", LatLon::new(10.0, 2.0)?).pii("email", "ada@example.org "))?;
    /// b.upsert("customers", Record::new("C", LatLon::new(48.0, 2.0)?).pii("name", "Alan Turing"))?;
    /// b.upsert("customers", Record::new("D", LatLon::new(48.0001, 2.0)?).pii("name", "alan  TURING."))?;
    /// b.commit()?;
    /// let groups = db.read().collection("customers")?.duplicates()?;
    /// assert_eq!(groups.len(), 2);
    /// assert_eq!((groups[0].reason, groups[0].ids.clone()), (DuplicateReason::SameEmail, vec!["A".into(), "B".into()]));
    /// assert_eq!((groups[1].reason, groups[1].ids.clone()), (DuplicateReason::SameNameNearby, vec!["C".into(), "D".into()]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::MissingKey`] without a key; [`Error::Decrypt`] for a name that fails
    /// authentication; log read and audit errors.
    pub fn duplicates(&self) -> Result<Vec<DuplicateGroup>> {
        let schema = self.schema();
        let has_name = schema.pii_kind("name") == Some(PiiKind::Text);
        self.duplicates_by(if has_name { &["name"] } else { &[] })
    }

    /// As [`Self::duplicates`], with the name taken from the text PII fields `name_fields`,
    /// compared field by field in that order (`["first_name", "last_name"]`: `Lee` as a first
    /// name is not `Lee` as a last one; a record with none of them has no name). With none,
    /// names are not compared.
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([8; 32])))?;
    /// db.create_collection("c", Schema::new().pii("first").pii("last"))?;
    /// let mut b = db.begin_write();
    /// b.upsert("c", Record::new("A", LatLon::new(48.0, 2.0)?).pii("first", "Ada").pii("last", "Lovelace"))?;
    /// b.upsert("c", Record::new("B", LatLon::new(48.0, 2.0)?).pii("first", "ADA ").pii("last", "lovelace"))?;
    /// b.commit()?;
    /// let c = db.read();
    /// let c = c.collection("c")?;
    /// assert!(c.duplicates()?.is_empty()); // no field called `name`
    /// assert_eq!(c.duplicates_by(&["first", "last"])?[0].ids, ["A", "B"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Self::duplicates`]; [`Error::InvalidArgument`] for a name field that is not a
    /// text PII field of the collection, or one named twice.
    pub fn duplicates_by(&self, name_fields: &[&str]) -> Result<Vec<DuplicateGroup>> {
        if self.inner.master.lock().is_none() {
            return Err(Error::MissingKey);
        }
        let schema = self.schema();
        let mut name_slots = Vec::with_capacity(name_fields.len());
        for field in name_fields {
            let slot = schema.pii_fields().iter().position(|f| f == field);
            match slot.filter(|_| schema.pii_kind(field) == Some(PiiKind::Text)) {
                Some(slot) if !name_slots.contains(&slot) => name_slots.push(slot),
                Some(_) => {
                    return Err(Error::invalid_argument("name_fields", format!("{field:?} is named twice")))
                }
                None => {
                    return Err(Error::invalid_argument(
                        "name_fields",
                        format!("{field:?} is not a text PII field of collection {:?}", self.name),
                    ))
                }
            }
        }
        // Names are compared by keyed hash under a key that lives only for this call.
        let name_key = BlindIndexKey::from_root(&DataKey::generate(), &self.inner.db_id);
        let mut by_blind: HashMap<(DuplicateReason, [u8; 32]), Vec<String>> = HashMap::new();
        let mut by_name: HashMap<[u8; 32], Vec<(String, LatLon)>> = HashMap::new();
        self.for_each_live(|r| {
            for (i, b) in r.blind.iter().enumerate() {
                let Some(b) = b else { continue };
                let reason = match schema.pii_kind_at(i) {
                    PiiKind::Phone => DuplicateReason::SamePhone,
                    PiiKind::Email => DuplicateReason::SameEmail,
                    PiiKind::Text => continue,
                };
                let ids = by_blind.entry((reason, *b)).or_default();
                if ids.last() != Some(&r.id) {
                    ids.push(r.id.clone());
                }
            }
            let Some(key_id) = r.key_id else { return Ok(()) };
            if !name_slots.iter().any(|&slot| r.pii.get(slot).is_some()) {
                return Ok(());
            }
            let Some(data_key) = self.data_key_for(&r.id, key_id)? else { return Ok(()) };
            let opened = super::read::open_sealed_where(
                self.inner.db_id,
                self.name,
                schema,
                r,
                (key_id, &data_key),
                |i| name_slots.contains(&i),
            )?;
            // Each field in its place, a missing one empty: `first: Lee` is not `last: Lee`.
            let (mut name, mut named) = (Zeroizing::new(String::new()), false);
            for (i, field) in name_fields.iter().enumerate() {
                if i > 0 {
                    name.push('\u{1f}');
                }
                if let Some(part) = opened.get(*field) {
                    let part = Zeroizing::new(normalize_name(part.expose()));
                    named |= !part.is_empty();
                    name.push_str(&part);
                }
            }
            let normalized = name;
            if named {
                let location = LatLon::new(r.lat, r.lon)?;
                by_name
                    .entry(name_key.blind_value("name", &normalized))
                    .or_default()
                    .push((r.id.clone(), location));
            }
            Ok(())
        })?;
        let mut groups: Vec<DuplicateGroup> = by_blind
            .into_iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|((reason, _), mut ids)| {
                ids.sort();
                ids.dedup();
                DuplicateGroup { reason, ids }
            })
            .filter(|g| g.ids.len() > 1)
            .collect();
        for members in by_name.into_values().filter(|m| m.len() > 1) {
            groups.extend(
                nearby_components(&members)
                    .into_iter()
                    .map(|ids| DuplicateGroup { reason: DuplicateReason::SameNameNearby, ids }),
            );
        }
        groups.sort_by(|a, b| (a.reason, &a.ids).cmp(&(b.reason, &b.ids)));
        let mut reported: Vec<&str> = groups.iter().flat_map(|g| g.ids.iter().map(String::as_str)).collect();
        reported.sort_unstable();
        reported.dedup();
        // Recorded even when nothing is reported: every name was decrypted to compare them.
        let mut fields: Vec<&str> = schema
            .pii_fields()
            .iter()
            .enumerate()
            .filter(|(i, _)| blind_label(schema.pii_kind_at(*i)).is_some() || name_slots.contains(i))
            .map(|(_, f)| f.as_str())
            .collect();
        fields.sort_unstable();
        self.inner.audit.record(AuditAction::Duplicates, self.name, &reported, &fields)?;
        Ok(groups)
    }
}

/// Connected components (of two or more) of the "within the radius" graph, ids sorted.
///
/// Records at one place are joined at once. Distinct places are put in cubes of the
/// unit-vector space whose diagonal is just under the radius's chord, so every place in a
/// cube is within the radius of every other: a cube is joined without a distance test.
/// Only pairs of nearby cubes not yet joined are tested, place by place, until one pair is
/// within the radius. Many records at one place or in one small area cost a pass, not a
/// test of every pair (4,000 same-named records at one place took 46 s that way).
fn nearby_components(members: &[(String, LatLon)]) -> Vec<Vec<String>> {
    let mut sets = DisjointSets::new(members.len());
    let mut first_at: HashMap<(u64, u64), usize> = HashMap::new();
    let mut places: Vec<(usize, LatLon)> = Vec::new();
    for (i, &(_, p)) in members.iter().enumerate() {
        match first_at.entry((p.lat().to_bits(), p.lon().to_bits())) {
            std::collections::hash_map::Entry::Occupied(e) => sets.union(*e.get(), i),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
                places.push((i, p));
            }
        }
    }
    // A side a little under chord/√3: a cube's diagonal is under the radius's chord, and a
    // chord of the radius spans less than two sides along each axis.
    let side = metres_to_chord(DUPLICATE_NAME_RADIUS_M) / 3f64.sqrt() * (1.0 - 1e-6);
    let mut cubes: HashMap<[i64; 3], Vec<Place>> = HashMap::new();
    // The box of each cube's places (its unit vectors), to skip pairs of cubes whose places
    // are all farther apart than the radius: two tight clusters 64 m apart were tested
    // place by place (20,000 × 20,000).
    let mut bounds: HashMap<[i64; 3], [[f64; 3]; 2]> = HashMap::new();
    for &(i, p) in &places {
        let u = p.to_unit_vector();
        let cube = u.map(|c| (c / side).floor() as i64);
        cubes.entry(cube).or_default().push((i, p, u));
        let b = bounds.entry(cube).or_insert([u, u]);
        for k in 0..3 {
            b[0][k] = b[0][k].min(u[k]);
            b[1][k] = b[1][k].max(u[k]);
        }
    }
    let reach = metres_to_chord(DUPLICATE_NAME_RADIUS_M) * (1.0 + 1e-6) + 1e-12;
    // The distance from a box to another box or a point (lo = hi), a lower bound on the
    // chord between any of their places.
    let gap = |[alo, ahi]: &[[f64; 3]; 2], [blo, bhi]: &[[f64; 3]; 2]| {
        (0..3).map(|k| (blo[k] - ahi[k]).max(alo[k] - bhi[k]).max(0.0).powi(2)).sum::<f64>().sqrt()
    };
    for inside in cubes.values() {
        for pair in inside.windows(2) {
            if let [(a, ..), (b, ..)] = *pair {
                sets.union(a, b);
            }
        }
    }
    // Each pair of cubes once: the offsets after (0, 0, 0) in lexicographic order.
    let offsets: Vec<[i64; 3]> = (-2..=2i64)
        .flat_map(|x| (-2..=2i64).flat_map(move |y| (-2..=2i64).map(move |z| [x, y, z])))
        .filter(|&o| o > [0, 0, 0])
        .collect();
    for (cube, inside) in &cubes {
        for o in &offsets {
            let neighbour = [cube[0] + o[0], cube[1] + o[1], cube[2] + o[2]];
            let Some(other) = cubes.get(&neighbour) else { continue };
            let (Some(&(a, ..)), Some(&(b, ..))) = (inside.first(), other.first()) else { continue };
            let (Some(a_box), Some(b_box)) = (bounds.get(cube), bounds.get(&neighbour)) else { continue };
            if sets.find(a) == sets.find(b) || gap(a_box, b_box) > reach {
                continue;
            }
            // Only the places within reach of the other cube's box can pair up (clusters at a
            // cube's far corners were tested pair by pair: from the diff review).
            let within = |places: &[Place], of: &[[f64; 3]; 2]| -> Vec<(usize, LatLon)> {
                places
                    .iter()
                    .filter(|(_, _, u)| gap(&[*u, *u], of) <= reach)
                    .map(|&(i, p, _)| (i, p))
                    .collect()
            };
            let (these, those) = (within(inside, b_box), within(other, a_box));
            let near = these.iter().find_map(|&(a, p)| {
                those
                    .iter()
                    .find(|&&(_, q)| haversine_m(p, q) <= DUPLICATE_NAME_RADIUS_M)
                    .map(|&(b, _)| (a, b))
            });
            if let Some((a, b)) = near {
                sets.union(a, b);
            }
        }
    }
    sets.groups(members)
}

/// A distinct place: its first member's index, the place and its unit vector.
type Place = (usize, LatLon, [f64; 3]);

/// Union–find over `0..n`: union by size, path halving.
struct DisjointSets {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl DisjointSets {
    /// The ids of each set of two or more members, sorted, the sets in order.
    fn groups(&mut self, members: &[(String, LatLon)]) -> Vec<Vec<String>> {
        let mut groups: HashMap<usize, Vec<String>> = HashMap::new();
        for (i, (id, _)) in members.iter().enumerate() {
            groups.entry(self.find(i)).or_default().push(id.clone());
        }
        let mut out: Vec<Vec<String>> = groups
            .into_values()
            .filter(|ids| ids.len() > 1)
            .map(|mut ids| {
                ids.sort();
                ids
            })
            .collect();
        out.sort();
        out
    }

    fn new(n: usize) -> Self {
        DisjointSets { parent: (0..n).collect(), size: vec![1; n] }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while let Some(&p) = self.parent.get(i) {
            if p == i {
                break;
            }
            let grand = self.parent.get(p).copied().unwrap_or(p);
            if let Some(slot) = self.parent.get_mut(i) {
                *slot = grand;
            }
            i = grand;
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        let size = |i: usize| self.size.get(i).copied().unwrap_or(1);
        let (small, large) = if size(a) < size(b) { (a, b) } else { (b, a) };
        let joined = size(a) + size(b);
        if let Some(p) = self.parent.get_mut(small) {
            *p = large;
        }
        if let Some(s) = self.size.get_mut(large) {
            *s = joined;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_and_nearby_components_chain() {
        assert_eq!(normalize_name("  Ada   LOVELACE. "), "adalovelace");
        assert_eq!(normalize_name("O'Brien, Émile"), "obrienémile");
        // The same names typed otherwise: a combining accent, full-width letters, a ligature.
        assert_eq!(normalize_name("O'Brien, E\u{301}mile"), "obrienémile");
        assert_eq!(normalize_name("ＡＤＡ　Ｌｏｖｅｌａｃｅ"), "adalovelace");
        assert_eq!(normalize_name("Griﬃn"), "griffin");
        // Spaces and punctuation inside a name are no difference.
        for [a, b] in
            [["Sean O'Neil", "Sean ONeil"], ["Mary-Jane Smith", "MaryJane Smith"], ["J.R. Ewing", "JR Ewing"]]
        {
            assert_eq!(normalize_name(a), normalize_name(b));
        }
        assert_eq!(normalize_name("Mary Jane Smith"), normalize_name("Mary-Jane Smith"));
        assert_ne!(normalize_name("Jane Smith"), normalize_name("Jean Smith"));
        // A mark with no precomposed letter stays with its letter.
        assert_eq!(normalize_name("Ng\u{303}ozi Obi"), "ng\u{303}oziobi");
        let p = |lat: f64| LatLon::new(lat, 0.0).unwrap();
        // 0.0003° of latitude ≈ 33 m: a–b and b–c are within 50 m, a–c is not; d is far.
        let members = vec![
            ("a".into(), p(0.0)),
            ("b".into(), p(0.0003)),
            ("c".into(), p(0.0006)),
            ("d".into(), p(1.0)),
        ];
        assert_eq!(nearby_components(&members), vec![vec!["a".to_owned(), "b".into(), "c".into()]]);
    }

    /// The components by testing every pair (the definition).
    fn components_by_every_pair(members: &[(String, LatLon)]) -> Vec<Vec<String>> {
        let mut sets = DisjointSets::new(members.len());
        for (i, (_, a)) in members.iter().enumerate() {
            for (j, (_, b)) in members.iter().enumerate().skip(i + 1) {
                if haversine_m(*a, *b) <= DUPLICATE_NAME_RADIUS_M {
                    sets.union(i, j);
                }
            }
        }
        sets.groups(members)
    }

    proptest::proptest! {
        /// The cubes give the components of testing every pair: places within a few hundred
        /// metres of a base anywhere (the poles and the antimeridian included), some repeated,
        /// some at just about the radius from another.
        #[test]
        fn nearby_components_match_testing_every_pair(
            base in (-90.0f64..=90.0, -180.0f64..=180.0),
            at_edge in proptest::option::of(proptest::bool::ANY),
            offsets in proptest::collection::vec((-300.0f64..300.0, -300.0f64..300.0, 0usize..4), 0..40),
        ) {
            // Near a pole, or astride the antimeridian.
            let (lat, lon) = match at_edge {
                Some(true) => (base.0.signum() * 89.998, base.1),
                Some(false) => (base.0.clamp(-80.0, 80.0), 179.9995),
                None => base,
            };
            let metre = 1.0 / 111_195.0;
            let wrap = |lon: f64| (lon + 180.0).rem_euclid(360.0) - 180.0;
            let mut members: Vec<(String, LatLon)> = Vec::new();
            for (i, &(dy, dx, repeat)) in offsets.iter().enumerate() {
                let at = (lat + dy * metre).clamp(-90.0, 90.0);
                let p = LatLon::new(at, wrap(lon + dx * metre / at.to_radians().cos().max(1e-3))).unwrap();
                for r in 0..=repeat {
                    members.push((format!("{i}-{r}"), p));
                }
                // A place about one radius from the last, either side of it.
                if i % 3 == 0 {
                    let q = LatLon::new((p.lat() + (DUPLICATE_NAME_RADIUS_M + dx / 1e4) * metre).min(90.0), p.lon());
                    members.push((format!("{i}-edge"), q.unwrap()));
                }
            }
            proptest::prop_assert_eq!(nearby_components(&members), components_by_every_pair(&members));
        }
    }

    #[test]
    fn many_records_at_one_place_or_in_two_clusters_are_grouped_quickly() {
        let started = std::time::Instant::now();
        let here = LatLon::new(48.0, 2.0).unwrap();
        let members: Vec<(String, LatLon)> = (0..200_000).map(|i| (format!("W{i:06}"), here)).collect();
        let groups = nearby_components(&members);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].len(), 200_000);
        // Two tight clusters 64 m apart: no pair within the radius, and no pair tested.
        let members: Vec<(String, LatLon)> = (0..40_000)
            .map(|i| {
                let lat = if i % 2 == 0 { 48.0 } else { 48.0 + 64.0 / 111_195.0 };
                let lon = 2.0 + f64::from(i / 2) * 1e-9;
                (format!("U{i:06}"), LatLon::new(lat, lon).unwrap())
            })
            .collect();
        let groups = nearby_components(&members);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [20_000, 20_000]);
        // A fraction of a second in a test build; testing the pairs took 10 s optimized.
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }
}
