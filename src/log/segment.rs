//! Byte layouts of the log: segment file names, the segment header and the frame prefix.

use std::path::Path;

use crate::codec::{read4, read8, FRAME_HEADER_LEN, MAX_FRAME_PAYLOAD};
use crate::error::{Error, Result};

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"GEOCRMLG";

/// The segment format version this build writes (it reads 1 too: version 2 added the
/// optional trailing `Schema.pii_kinds`, `StoredRecord.blind` and the `EnsureCollection`
/// operation, none of which a version-1 segment contains).
pub const SEGMENT_VERSION: u16 = 2;

/// Length of the segment header in bytes; the first frame starts here.
pub const SEGMENT_HEADER_LEN: usize = 48;

/// Length of the prefix at the start of every frame payload.
pub const FRAME_PREFIX_LEN: usize = 21;

/// The largest body one frame can carry.
pub const MAX_BODY_LEN: usize = MAX_FRAME_PAYLOAD as usize - FRAME_PREFIX_LEN;

/// The smallest possible frame: frame header plus prefix, empty body.
pub(crate) const MIN_FRAME_LEN: usize = FRAME_HEADER_LEN + FRAME_PREFIX_LEN;

/// Frame flag bit 0: more frames of the same transaction follow.
const FLAG_MORE: u8 = 1;

/// The file name of segment `number`: twelve decimal digits, zero-padded, then `.seg`.
#[must_use]
pub(crate) fn segment_name(number: u64) -> String {
    format!("{number:012}.seg")
}

/// The segment number of a file name written by [`segment_name`], or `None`.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = digits.parse().ok()?;
    (segment_name(number) == name).then_some(number)
}

/// The decoded header of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) number: u64,
    pub(crate) first_lsn: u64,
    pub(crate) db_id: [u8; 16],
}

impl SegmentHeader {
    /// The header's bytes (see the module documentation of [`crate::log`]).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEGMENT_HEADER_LEN);
        out.extend_from_slice(&SEGMENT_MAGIC);
        out.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.number.to_le_bytes());
        out.extend_from_slice(&self.first_lsn.to_le_bytes());
        out.extend_from_slice(&self.db_id);
        out.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
        out
    }

    /// The database id of a header whose magic and checksum are intact, whatever its
    /// number and version: `repair` uses it to rebuild a lost manifest.
    pub(crate) fn peek_db_id(bytes: &[u8]) -> Option<[u8; 16]> {
        let header = bytes.get(..SEGMENT_HEADER_LEN)?;
        let stored_crc = read4(header, 44).map(u32::from_le_bytes)?;
        (header.get(..8) == Some(&SEGMENT_MAGIC[..]) && crc32fast::hash(header.get(..44)?) == stored_crc)
            .then(|| header.get(28..44).and_then(|b| b.try_into().ok()))
            .flatten()
    }

    /// Validates the header at the start of `bytes`, which were read from segment file
    /// `file` named for segment `number` of database `db_id`.
    pub(crate) fn parse(bytes: &[u8], file: &Path, number: u64, db_id: &[u8; 16]) -> Result<Self> {
        let bad = |reason: String| Error::corrupt(file, 0, reason);
        let header = bytes
            .get(..SEGMENT_HEADER_LEN)
            .ok_or_else(|| bad(format!("{} bytes are too short for a segment header", bytes.len())))?;
        if header.get(..8) != Some(&SEGMENT_MAGIC[..]) {
            return Err(bad("not a geocrm log segment (bad magic)".into()));
        }
        let u16_at =
            |at: usize| header.get(at..at + 2).and_then(|b| b.try_into().ok()).map_or(0, u16::from_le_bytes);
        let u64_at = |at: usize| read8(header, at).map_or(0, u64::from_le_bytes);
        // The checksum covers the version: one flipped bit there is damage, not a newer
        // format (it was read as one, which `verify` could not report and `repair` refused).
        let stored_crc = read4(header, 44).map_or(0, u32::from_le_bytes);
        if crc32fast::hash(header.get(..44).unwrap_or_default()) != stored_crc {
            return Err(bad("segment header checksum mismatch".into()));
        }
        let version = u16_at(8);
        if version > SEGMENT_VERSION {
            return Err(Error::UnsupportedVersion {
                file: file.to_owned(),
                found: version,
                supported: SEGMENT_VERSION,
            });
        }
        if version == 0 {
            return Err(bad("segment format version 0 does not exist".into()));
        }
        let flags = u16_at(10);
        if flags != 0 {
            return Err(bad(format!("unknown segment header flags {flags:#06x}")));
        }
        let parsed = SegmentHeader {
            number: u64_at(12),
            first_lsn: u64_at(20),
            db_id: header.get(28..44).and_then(|b| b.try_into().ok()).unwrap_or_default(),
        };
        if parsed.number != number {
            return Err(bad(format!(
                "header says segment {} but the file is named for {number}",
                parsed.number
            )));
        }
        if &parsed.db_id != db_id {
            return Err(bad("segment belongs to another database".into()));
        }
        Ok(parsed)
    }
}

/// The fixed prefix of a frame payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FramePrefix {
    pub(crate) first_lsn: u64,
    pub(crate) op_count: u32,
    pub(crate) durable_offset: u64,
    pub(crate) more: bool,
}

impl FramePrefix {
    /// Appends the prefix and then `body` to `out`: one frame payload.
    #[cfg(test)]
    pub(crate) fn encode_payload(&self, body: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
        out.extend_from_slice(body);
    }

    /// The prefix's bytes: first LSN, operation count, durable offset, flags.
    pub(crate) fn to_bytes(self) -> [u8; FRAME_PREFIX_LEN] {
        let mut out = [0u8; FRAME_PREFIX_LEN];
        let fields = [
            &self.first_lsn.to_le_bytes()[..],
            &self.op_count.to_le_bytes(),
            &self.durable_offset.to_le_bytes(),
            &[if self.more { FLAG_MORE } else { 0 }],
        ];
        let mut at = 0;
        for field in fields {
            if let Some(dst) = out.get_mut(at..at + field.len()) {
                dst.copy_from_slice(field);
            }
            at += field.len();
        }
        out
    }

    /// Splits a checksummed payload into prefix and body.
    pub(crate) fn decode_payload(payload: &[u8]) -> Result<(FramePrefix, &[u8]), PrefixError> {
        let (Some(lsn), Some(ops), Some(durable), Some(&flags), Some(body)) = (
            read8(payload, 0),
            read4(payload, 8),
            read8(payload, 12),
            payload.get(20),
            payload.get(FRAME_PREFIX_LEN..),
        ) else {
            return Err(PrefixError::Short(payload.len()));
        };
        if flags & !FLAG_MORE != 0 {
            return Err(PrefixError::UnknownFlags(flags));
        }
        let prefix = FramePrefix {
            first_lsn: u64::from_le_bytes(lsn),
            op_count: u32::from_le_bytes(ops),
            durable_offset: u64::from_le_bytes(durable),
            more: flags & FLAG_MORE != 0,
        };
        Ok((prefix, body))
    }
}

/// Why a checksummed payload is not a frame of this format. Cheap to build: the forward
/// scan for acknowledged frames rejects most candidates with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixError {
    /// The payload is shorter than the prefix.
    Short(usize),
    /// Flag bits other than MORE are set.
    UnknownFlags(u8),
}

impl std::fmt::Display for PrefixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrefixError::Short(len) => write!(f, "frame payload of {len} bytes is shorter than its prefix"),
            PrefixError::UnknownFlags(flags) => write!(f, "unknown frame flags {flags:#04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_lookalikes() {
        assert_eq!(segment_name(1), "000000000001.seg");
        assert_eq!(parse_segment_name("000000000001.seg"), Some(1));
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        for bad in
            ["1.seg", "0000000000001.seg", "00000000000a.seg", "000000000001.seg.tmp", "+00000000001.seg"]
        {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_round_trips_and_every_bit_flip_is_rejected() {
        let h = SegmentHeader { number: 7, first_lsn: 1234, db_id: [9; 16] };
        let bytes = h.encode();
        assert_eq!(bytes.len(), SEGMENT_HEADER_LEN);
        let file = Path::new("f");
        assert_eq!(SegmentHeader::parse(&bytes, file, 7, &[9; 16]).unwrap(), h);
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let err = SegmentHeader::parse(&bad, file, 7, &[9; 16]).unwrap_err();
            let is_version_byte = (8..10).contains(&(bit / 8));
            assert!(
                matches!(err, Error::Corrupt { offset: 0, .. })
                    || (is_version_byte && matches!(err, Error::UnsupportedVersion { .. })),
                "bit {bit}: {err:?}"
            );
        }
        assert!(SegmentHeader::parse(&bytes[..47], file, 7, &[9; 16]).is_err());
        assert!(SegmentHeader::parse(&bytes, file, 8, &[9; 16]).is_err());
        assert!(SegmentHeader::parse(&bytes, file, 7, &[8; 16]).is_err());
    }

    #[test]
    fn prefix_round_trips_and_rejects_unknown_flags() {
        let p = FramePrefix { first_lsn: 5, op_count: 3, durable_offset: 48, more: true };
        let mut out = Vec::new();
        p.encode_payload(b"body", &mut out);
        assert_eq!(out.len(), FRAME_PREFIX_LEN + 4);
        assert_eq!(FramePrefix::decode_payload(&out).unwrap(), (p, &b"body"[..]));
        out[20] |= 2;
        assert!(FramePrefix::decode_payload(&out).is_err());
        assert!(FramePrefix::decode_payload(&out[..20]).is_err());
    }
}
