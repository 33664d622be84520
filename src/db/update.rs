//! Partial updates ([`WriteBatch::update`]): an [`Update`] checked against its collection's
//! schema when it joins a batch, and turned into the upsert of the record's latest version
//! with the changes applied when the batch is written, under the writer lock. The record's
//! sealed PII and blind values are copied as they are (never opened), so no key is needed;
//! a PII field it sets is sealed with the batch under the record's key and merged in.
//!
//! The latest version is the batch's own last write of the id if it has one, else the
//! record as applied (a commit round ends before a batch updating an id an earlier batch of
//! the round wrote, so what is applied is what the log holds before this batch).

use std::collections::HashMap;

use super::ops::StoredRecord;
use super::read::CollectionReader;
use super::sealed_slots::SealedSlots;
use super::write::{cell_of, over_size_limit, record_error, PendingOp};
use super::Inner;
use crate::crypto::Pii;
use crate::error::{Error, Result};
use crate::model::{FieldKind, Schema, Update};

/// An [`Update`] checked against a schema: each change by its field's place in schema order.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckedUpdate {
    /// New latitude, longitude and resolution-15 H3 cell.
    location: Option<(f64, f64, u64)>,
    numbers: Vec<(usize, Option<f64>)>,
    categories: Vec<(usize, Option<String>)>,
    /// PII fields cleared.
    pii: Vec<usize>,
    /// PII fields set, normalized (sealed with the batch).
    pii_set: Vec<(usize, Pii)>,
}

impl CheckedUpdate {
    /// Checks `update` of record `id` against `schema`: every field named exists and is of
    /// the kind its change needs, at most once; numbers are finite, categories within the
    /// size limit.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] naming the record and the field.
    pub(crate) fn new(schema: &Schema, id: &str, update: Update) -> Result<CheckedUpdate> {
        let Update { location, numbers, categories, pii, cleared } = update;
        let mut out = CheckedUpdate::default();
        if let Some(at) = location {
            out.location = Some((at.lat(), at.lon(), cell_of(id, at)?));
        }
        let mut named: Vec<String> = Vec::new();
        let mut field = |name: &str, want: Option<FieldKind>| -> Result<(FieldKind, usize)> {
            let (kind, i) = schema
                .field(name)
                .ok_or_else(|| record_error(id, name, "no such field in the collection's schema"))?;
            if let Some(want) = want.filter(|&want| want != kind) {
                let what = |k: FieldKind| match k {
                    FieldKind::Number => "a number (Update::number)",
                    FieldKind::Category => "a category (Update::category)",
                    FieldKind::Pii => "PII (Update::pii)",
                };
                return Err(record_error(
                    id,
                    name,
                    format!("{} was given, but the field holds {}", what(want), what(kind)),
                ));
            }
            if named.iter().any(|n| n == name) {
                return Err(record_error(id, name, "named twice in one update"));
            }
            named.push(name.to_owned());
            Ok((kind, i))
        };
        for (name, v) in numbers {
            let (_, i) = field(&name, Some(FieldKind::Number))?;
            if !v.is_finite() {
                return Err(record_error(id, &name, "numbers must be finite"));
            }
            out.numbers.push((i, Some(v)));
        }
        for (name, v) in categories {
            let (_, i) = field(&name, Some(FieldKind::Category))?;
            if let Some(reason) = over_size_limit(FieldKind::Category, v.len()) {
                return Err(record_error(id, &name, reason));
            }
            out.categories.push((i, Some(v)));
        }
        for (name, v) in pii {
            let (_, i) = field(&name, Some(FieldKind::Pii))?;
            if let Some(reason) = over_size_limit(FieldKind::Pii, v.expose().len()) {
                return Err(record_error(id, &name, reason));
            }
            out.pii_set.push((i, super::blind::normalize_pii(schema, id, &name, v)?));
        }
        for name in cleared {
            match field(&name, None)? {
                (FieldKind::Number, i) => out.numbers.push((i, None)),
                (FieldKind::Category, i) => out.categories.push((i, None)),
                (FieldKind::Pii, i) => out.pii.push(i),
            }
        }
        Ok(out)
    }

    /// Applies the changes to a version of the record: `record` with `pii` to seal (a
    /// pending upsert of this batch), or with its PII sealed already (`pii` all `None`).
    fn apply(&self, record: &mut StoredRecord, pii: &mut [Option<Pii>]) {
        if let Some((lat, lon, cell)) = self.location {
            (record.lat, record.lon, record.cell) = (lat, lon, cell);
        }
        for (i, v) in &self.numbers {
            if let Some(slot) = record.numbers.get_mut(*i) {
                *slot = *v;
            }
        }
        for (i, v) in &self.categories {
            if let Some(slot) = record.categories.get_mut(*i) {
                slot.clone_from(v);
            }
        }
        if self.pii.is_empty() && self.pii_set.is_empty() {
            return;
        }
        // A field set is sealed again with the batch: its old envelope and blind value go
        // here, as a cleared field's do.
        let replaced: Vec<usize> =
            self.pii.iter().copied().chain(self.pii_set.iter().map(|(i, _)| *i)).collect();
        for &i in &self.pii {
            if let Some(slot) = pii.get_mut(i) {
                *slot = None;
            }
        }
        for (i, v) in &self.pii_set {
            if let Some(slot) = pii.get_mut(*i) {
                *slot = Some(v.clone());
            }
        }
        for &i in &replaced {
            if let Some(slot) = record.blind.get_mut(i) {
                *slot = None;
            }
        }
        if record.blind.iter().all(Option::is_none) {
            // No blind value left: stored as none at all (FORMAT.md §5.3).
            record.blind = Vec::new();
        }
        let kept = record
            .pii
            .iter()
            .enumerate()
            .map(|(i, slot)| slot.filter(|_| !replaced.contains(&i)).map(<[u8]>::to_vec))
            .collect::<Vec<_>>();
        record.pii = SealedSlots::from(kept);
        if !record.pii.any_set() {
            // A key id only with sealed PII (FORMAT.md §5.3); the key stays in the keystore
            // for the id, and a later write of PII (this one's too) is given it again.
            record.key_id = None;
        }
    }
}

impl Inner {
    /// The batch with each update turned into the upsert of the record's latest version with
    /// the changes applied (other operations as they are).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an update of a record that does not exist (or was deleted or
    /// erased earlier in the batch): nothing of the batch is written. [`Error::Io`] and
    /// [`Error::Corrupt`] when the record cannot be read back from the log.
    pub(super) fn resolve_updates(&self, pending: Vec<PendingOp>) -> Result<Vec<PendingOp>> {
        if !pending.iter().any(|op| matches!(op, PendingOp::Update { .. })) {
            return Ok(pending);
        }
        // Each id the batch wrote so far: the place of its last upsert, or `None` once deleted.
        let mut written: HashMap<(String, String), Option<usize>> = HashMap::new();
        let mut out: Vec<PendingOp> = Vec::with_capacity(pending.len());
        for op in pending {
            let op = match op {
                PendingOp::Update { collection, id, changes } => {
                    let (mut record, mut pii) = match written.get(&(collection.clone(), id.clone())) {
                        Some(Some(at)) => match out.get(*at) {
                            Some(PendingOp::Upsert { record, pii }) => (record.clone(), pii.clone()),
                            _ => {
                                return Err(Error::invalid_argument(
                                    "batch",
                                    "an update's record is not an upsert",
                                ))
                            }
                        },
                        Some(None) => return Err(Error::NotFound { collection, id }),
                        None => {
                            let record = self.stored_latest(&collection, &id)?;
                            let slots = record.pii.len();
                            (record, vec![None; slots])
                        }
                    };
                    changes.apply(&mut record, &mut pii);
                    PendingOp::Upsert { record, pii }
                }
                other => other,
            };
            match &op {
                PendingOp::Upsert { record, .. } => {
                    written.insert((record.collection.clone(), record.id.clone()), Some(out.len()));
                }
                PendingOp::Delete { collection, id } | PendingOp::Erase { collection, id } => {
                    written.insert((collection.clone(), id.clone()), None);
                }
                PendingOp::Create { .. } | PendingOp::Update { .. } => {}
            }
            out.push(op);
        }
        Ok(out)
    }

    /// The applied version of record `id` of `collection`, read back from the log.
    fn stored_latest(&self, collection: &str, id: &str) -> Result<StoredRecord> {
        let state = self.read_state();
        let not_found = || Error::NotFound { collection: collection.to_owned(), id: id.to_owned() };
        let c = state.collections.get(collection).ok_or_else(not_found)?;
        // A checkpoint whose id sections are damaged would not find the row: checked whole
        // first, as a batch's checkpoints are before it is written.
        if let Some(base) = &c.base {
            self.check_checkpoint_ids(&base.checkpoint)?;
        }
        let reader = CollectionReader { inner: self, name: collection, c };
        reader.intact(())?;
        let row = c.view().get(id).ok_or_else(not_found)?;
        Ok(reader.stored(row)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{CheckedUpdate, Pii, SealedSlots, StoredRecord};
    use crate::model::{Schema, Update};
    use crate::Error;

    /// Each bad change is refused naming the record, the field and why.
    #[test]
    fn bad_changes_are_refused_naming_the_field() {
        let schema = Schema::new().pii("name").pii_phone("phone").number("ltv").category("tier");
        let long = "x".repeat(super::super::write::MAX_CATEGORY_BYTES + 1);
        for (update, field, why) in [
            (Update::new().number("nope", 1.0), "nope", "no such field"),
            (Update::new().clear("nope"), "nope", "no such field"),
            (Update::new().number("tier", 1.0), "tier", "the field holds a category"),
            (Update::new().category("ltv", "gold"), "ltv", "the field holds a number"),
            (Update::new().number("name", 1.0), "name", "the field holds PII (Update::pii)"),
            (Update::new().category("name", "Ada"), "name", "the field holds PII"),
            (
                Update::new().pii("ltv", "Ada"),
                "ltv",
                "PII (Update::pii) was given, but the field holds a number",
            ),
            (
                Update::new().pii("name", "x".repeat(super::super::write::MAX_PII_BYTES + 1)),
                "name",
                "limited to",
            ),
            (Update::new().pii("phone", "not a phone"), "phone", "phone"),
            (Update::new().pii("name", "Ada").clear("name"), "name", "named twice"),
            (Update::new().number("ltv", f64::NAN), "ltv", "finite"),
            (Update::new().number("ltv", f64::INFINITY), "ltv", "finite"),
            (Update::new().category("tier", long), "tier", "limited to"),
            (Update::new().number("ltv", 1.0).clear("ltv"), "ltv", "named twice"),
            (Update::new().category("tier", "a").category("tier", "b"), "tier", "named twice"),
            (Update::new().clear("name").clear("name"), "name", "named twice"),
        ] {
            match CheckedUpdate::new(&schema, "C-1", update) {
                Err(Error::InvalidRecord { id, field: f, reason }) => {
                    assert_eq!((id.as_str(), f.as_str()), ("C-1", field));
                    assert!(reason.contains(why), "{field}: {reason}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        let fine = Update::new().number("ltv", 2.0).category("tier", "gold").clear("name");
        let checked = CheckedUpdate::new(&schema, "C-1", fine).unwrap();
        assert_eq!(
            (checked.numbers, checked.categories, checked.pii),
            (vec![(0, Some(2.0))], vec![(0, Some("gold".into()))], vec![0])
        );
    }

    fn sealed(record: &StoredRecord) -> Vec<Option<Vec<u8>>> {
        record.pii.iter().map(|slot| slot.map(<[u8]>::to_vec)).collect()
    }

    /// Applying an update to a record whose PII is sealed keeps the envelopes it does not
    /// clear byte for byte, clears the blind value of each PII field it clears (none left:
    /// stored as none), and leaves a key id only while some PII is left (FORMAT.md §5.3).
    #[test]
    fn apply_keeps_envelopes_and_drops_cleared_blind_values_and_the_key_id() {
        let schema =
            Schema::new().pii("name").pii_phone("phone").pii_email("email").number("ltv").category("tier");
        let at = crate::LatLon::new(48.85, 2.35).unwrap();
        let record = StoredRecord {
            collection: "c".into(),
            id: "C-1".into(),
            lat: 1.0,
            lon: 2.0,
            cell: 0,
            numbers: vec![Some(5.0)],
            categories: vec![Some("gold".into())],
            key_id: Some(7),
            pii: SealedSlots::from(vec![Some(vec![1, 2, 3]), Some(vec![4, 5]), Some(vec![6])]),
            blind: vec![None, Some([1; 32]), Some([2; 32])],
        };
        let apply = |update: Update| {
            let mut r = record.clone();
            let mut pii = vec![None; 3];
            CheckedUpdate::new(&schema, "C-1", update).unwrap().apply(&mut r, &mut pii);
            r
        };
        let moved = apply(Update::new().location(at).clear("ltv"));
        assert_eq!((moved.lat, moved.lon, moved.numbers.clone()), (48.85, 2.35, vec![None]));
        assert_eq!(moved.cell, super::cell_of("C-1", at).unwrap());
        assert_eq!(
            (sealed(&moved), moved.blind.clone(), moved.key_id),
            (sealed(&record), record.blind.clone(), Some(7))
        );
        let phone = apply(Update::new().clear("phone"));
        assert_eq!(sealed(&phone), [Some(vec![1, 2, 3]), None, Some(vec![6])]);
        assert_eq!((phone.blind, phone.key_id), (vec![None, None, Some([2; 32])], Some(7)));
        let contacts = apply(Update::new().clear("phone").clear("email"));
        assert_eq!(
            (sealed(&contacts), contacts.blind, contacts.key_id),
            (vec![Some(vec![1, 2, 3]), None, None], vec![], Some(7))
        );
        let all = apply(Update::new().clear("email").clear("name").clear("phone").category("tier", "lead"));
        assert_eq!((sealed(&all), all.blind, all.key_id), (vec![None, None, None], vec![], None));
        assert_eq!(all.categories, [Some("lead".to_owned())]);
        // A pending upsert's PII (sealed later) is cleared in its plaintext slots.
        let mut pending = vec![Some(Pii::new("Ada")), Some(Pii::new("+33142000000")), None];
        let mut r =
            StoredRecord { pii: SealedSlots::default(), key_id: None, blind: vec![], ..record.clone() };
        CheckedUpdate::new(&schema, "C-1", Update::new().clear("name")).unwrap().apply(&mut r, &mut pending);
        assert!(pending[0].is_none() && pending[1].is_some() && r.key_id.is_none());
    }
}
