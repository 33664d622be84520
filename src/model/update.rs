//! Changes to some fields of a stored record.

use crate::crypto::Pii;
use crate::geo::LatLon;

/// Changes to some fields of a stored record, for [`crate::WriteBatch::update`]: a new
/// location, attributes set or cleared, PII fields set or cleared. Every field not named
/// keeps its value — PII included, which stays sealed as it was stored: moving a customer,
/// or changing its sales figures, needs no key and reads no PII. Setting a PII field needs
/// the key (the new value is sealed under the record's data key); no other field is opened.
///
/// ```
/// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema, Update};
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32])))?;
/// db.create_collection("customers", Schema::crm().number("sales").category("tier"))?;
/// let mut batch = db.begin_write();
/// let lyon = LatLon::new(45.76, 4.83)?;
/// batch.upsert("customers", Record::new("C-1", lyon).pii("name", "Ada").number("sales", 10.0).category("tier", "gold"))?;
/// batch.commit()?;
///
/// // Opened without the key: the update still keeps the sealed name.
/// drop(db);
/// let db = Database::open(dir.path(), Options::new())?;
/// let mut batch = db.begin_write();
/// let paris = LatLon::new(48.85, 2.35)?;
/// batch.update("customers", "C-1", Update::new().location(paris).number("sales", 12.5).clear("tier"))?;
/// batch.commit()?;
/// let snapshot = db.read();
/// let stored = snapshot.collection("customers")?.get("C-1")?.expect("kept");
/// assert_eq!((stored.location, stored.numbers["sales"]), (paris, 12.5));
/// assert!(stored.categories.is_empty() && stored.pii.contains_key("name"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct Update {
    pub(crate) location: Option<LatLon>,
    pub(crate) numbers: Vec<(String, f64)>,
    pub(crate) categories: Vec<(String, String)>,
    pub(crate) pii: Vec<(String, Pii)>,
    pub(crate) cleared: Vec<String>,
}

impl Update {
    /// No change yet.
    pub fn new() -> Self {
        Update::default()
    }

    /// Moves the record.
    pub fn location(mut self, at: LatLon) -> Self {
        self.location = Some(at);
        self
    }

    /// Sets a number attribute (must be finite; checked by `update`).
    pub fn number(mut self, field: impl Into<String>, value: f64) -> Self {
        self.numbers.push((field.into(), value));
        self
    }

    /// Sets a category attribute.
    pub fn category(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.categories.push((field.into(), value.into()));
        self
    }

    /// Sets a PII field (a phone number or e-mail address is validated and normalized, as by
    /// an upsert). Needs the database's key: the value is sealed under the record's data
    /// key, beside its other PII fields, which are not opened. `Debug` shows no value.
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema, Update};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32])))?;
    /// db.create_collection("customers", Schema::crm())?;
    /// let mut batch = db.begin_write();
    /// let lyon = LatLon::new(45.76, 4.83)?;
    /// batch.upsert("customers", Record::new("C-1", lyon).pii("name", "Ada").pii("phone", "+33 1 42 00 00 00"))?;
    /// batch.commit()?;
    /// let mut batch = db.begin_write();
    /// batch.update("customers", "C-1", Update::new().pii("phone", "+44 20 7946 0958"))?;
    /// batch.commit()?;
    /// let snapshot = db.read();
    /// let customers = snapshot.collection("customers")?;
    /// let pii = customers.reveal("C-1")?;
    /// assert_eq!((pii["name"].expose(), pii["phone"].expose()), ("Ada", "+442079460958"));
    /// assert_eq!(customers.find_by_phone("+442079460958")?, ["C-1"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pii(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.pii.push((field.into(), Pii::new(value)));
        self
    }

    /// Unsets a field of any kind: a number, a category, or a PII field (its sealed value
    /// and blind value go; the log keeps earlier versions until `compact`).
    pub fn clear(mut self, field: impl Into<String>) -> Self {
        self.cleared.push(field.into());
        self
    }

    /// Whether it changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.location.is_none()
            && self.numbers.is_empty()
            && self.categories.is_empty()
            && self.pii.is_empty()
            && self.cleared.is_empty()
    }
}
