//! Bytes of the audit log (FORMAT.md §9.1): a 30-byte header, then one checksummed frame
//! per entry whose payload is `bincode(EntryRecord)`.

use std::path::Path;

use bincode::{Decode, Encode};
use serde::Serialize;

use crate::codec::{self, read4};
use crate::error::{Error, Result};

/// Magic bytes at offset 0.
pub(crate) const MAGIC: &[u8; 8] = b"GEOCRMAU";
/// Format version at offset 8, of the files this build creates: 2 since the twenty-ninth
/// part, whose entries may have action 4 (find), which an older build's reader took for
/// damage — and its `repair` cut out, with the entries around it.
pub(crate) const VERSION: u16 = 2;
/// The oldest version read: version 1 files hold actions 1–3 only, and are sealed before an
/// entry of a newer action is appended.
pub(crate) const OLDEST_VERSION: u16 = 1;
/// Header length: magic 8, version 2, db_id 16, CRC-32 4.
pub(crate) const HEADER_LEN: usize = 30;

/// What released PII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// [`crate::CollectionReader::reveal`]: PII fields of one record decrypted.
    Reveal,
    /// [`crate::Database::export_subject`]: everything about one record, PII decrypted.
    Export,
    /// [`crate::CollectionReader::duplicates`]: names decrypted and compared; the entry lists
    /// the ids it reported.
    Duplicates,
    /// [`crate::CollectionReader::find_by_phone`] or
    /// [`crate::CollectionReader::find_by_email`]: records looked up by a phone number or
    /// e-mail address (the entry lists the ids found, none when nobody has it, and the
    /// fields searched; never the number or address). Since the twenty-ninth part.
    Find,
}

impl AuditAction {
    /// The first format version of `audit.log` that may hold this action.
    pub(crate) fn since_version(self) -> u16 {
        match self {
            AuditAction::Reveal | AuditAction::Export | AuditAction::Duplicates => 1,
            AuditAction::Find => 2,
        }
    }

    fn tag(self) -> u8 {
        match self {
            AuditAction::Reveal => 1,
            AuditAction::Export => 2,
            AuditAction::Duplicates => 3,
            AuditAction::Find => 4,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        [AuditAction::Reveal, AuditAction::Export, AuditAction::Duplicates, AuditAction::Find]
            .into_iter()
            .find(|a| a.tag() == tag)
    }
}

/// One read of PII: who, when, what kind of read, which records and fields — never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// Who: the name given with [`crate::Options::actor`].
    pub actor: String,
    /// What kind of read.
    pub action: AuditAction,
    /// Collection.
    pub collection: String,
    /// Record ids whose PII was read.
    pub ids: Vec<String>,
    /// PII field names read.
    pub fields: Vec<String>,
}

/// The encoded form of an entry.
#[derive(Encode, Decode)]
struct EntryRecord {
    unix_ms: u64,
    actor: String,
    action: u8,
    collection: String,
    ids: Vec<String>,
    fields: Vec<String>,
}

pub(crate) fn encode_entry(e: &AuditEntry) -> Result<Vec<u8>> {
    let record = EntryRecord {
        unix_ms: e.unix_ms,
        actor: e.actor.clone(),
        action: e.action.tag(),
        collection: e.collection.clone(),
        ids: e.ids.clone(),
        fields: e.fields.clone(),
    };
    codec::encode(&record).map_err(|reason| Error::invalid_argument("audit entry", reason))
}

pub(crate) fn decode_entry(payload: &[u8]) -> Result<AuditEntry, String> {
    let r: EntryRecord = codec::decode(payload)?;
    let action =
        AuditAction::from_tag(r.action).ok_or_else(|| format!("unknown audit action {}", r.action))?;
    Ok(AuditEntry {
        unix_ms: r.unix_ms,
        actor: r.actor,
        action,
        collection: r.collection,
        ids: r.ids,
        fields: r.fields,
    })
}

pub(crate) fn encode_header(db_id: &[u8; 16]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(db_id);
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Checks the header: magic, version, CRC, database id; returns the version.
pub(crate) fn check_header(bytes: &[u8], path: &Path, db_id: &[u8; 16]) -> Result<u16> {
    if bytes.get(..8) != Some(MAGIC.as_slice()) {
        return Err(Error::corrupt(path, 0, "not a geocrm audit log (bad magic)"));
    }
    let version = bytes.get(8..10).and_then(|v| v.try_into().ok()).map(u16::from_le_bytes);
    match version {
        Some(OLDEST_VERSION..=VERSION) => {}
        // No version 0 was ever written: a damaged version field.
        Some(0) => return Err(Error::corrupt(path, 8, "audit log format version 0 does not exist")),
        Some(_) | None => {}
    }
    let (Some(head), Some(crc)) = (bytes.get(..HEADER_LEN - 4), read4(bytes, HEADER_LEN - 4)) else {
        return Err(Error::corrupt(
            path,
            if version.is_none() { 8 } else { 0 },
            "audit log header is cut short",
        ));
    };
    // The checksum covers the version: a version of another value is newer only if it holds
    // (a flipped bit there is damage, which `repair` handles, not a newer format).
    if crc32fast::hash(head) != u32::from_le_bytes(crc) {
        return Err(Error::corrupt(path, 0, "audit log header checksum mismatch"));
    }
    let version = version.unwrap_or(0);
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion { file: path.to_owned(), found: version, supported: VERSION });
    }
    if bytes.get(10..26) != Some(db_id.as_slice()) {
        return Err(Error::corrupt(path, 10, "audit log belongs to another database (db_id mismatch)"));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_header_checks() {
        let e = AuditEntry {
            unix_ms: 1_700_000_000_000,
            actor: "alice".into(),
            action: AuditAction::Export,
            collection: "customers".into(),
            ids: vec!["C-1".into()],
            fields: vec!["name".into(), "phone".into()],
        };
        assert_eq!(decode_entry(&encode_entry(&e).unwrap()).unwrap(), e);
        let h = encode_header(&[3; 16]);
        assert_eq!(h.len(), HEADER_LEN);
        let p = Path::new("audit.log");
        check_header(&h, p, &[3; 16]).unwrap();
        assert!(matches!(check_header(&h, p, &[4; 16]), Err(Error::Corrupt { offset: 10, .. })));
        for i in 0..HEADER_LEN {
            let mut bad = h.clone();
            bad[i] ^= 0x20;
            assert!(check_header(&bad, p, &[3; 16]).is_err(), "flip at {i}");
        }
        for cut in 0..HEADER_LEN {
            assert!(check_header(&h[..cut], p, &[3; 16]).is_err(), "cut at {cut}");
        }
        // Pinned (FORMAT.md §9.1): version 2's header, and a find entry's payload.
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&h), "47454f43524d4155020003030303030303030303030303030303c25906dd");
        let find = AuditEntry {
            unix_ms: 1_700_000_000_000,
            actor: "ops".into(),
            action: AuditAction::Find,
            collection: "c".into(),
            ids: vec!["A".into()],
            fields: vec!["phone".into()],
        };
        assert_eq!(
            hex(&encode_entry(&find).unwrap()),
            "fd0068e5cf8b010000036f7073040163010141010570686f6e65"
        );
        // A newer version is one whose checksum holds; a flipped version bit is damage. The
        // version read is returned (1, the oldest, is read too).
        assert_eq!(check_header(&h, p, &[3; 16]).unwrap(), 2);
        let with_version = |v: u8| {
            let mut b = h.clone();
            b[8] = v;
            let crc = crc32fast::hash(&b[..HEADER_LEN - 4]);
            b[HEADER_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
            b
        };
        assert_eq!(check_header(&with_version(1), p, &[3; 16]).unwrap(), 1);
        let mut v3 = h.clone();
        v3[8] = 3;
        assert!(matches!(check_header(&v3, p, &[3; 16]), Err(Error::Corrupt { offset: 0, .. })));
        assert!(matches!(
            check_header(&with_version(3), p, &[3; 16]),
            Err(Error::UnsupportedVersion { found: 3, .. })
        ));
    }
}
