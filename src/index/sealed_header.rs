//! The header the standalone index files share — the packed R-tree (FORMAT.md §12) and the
//! H3 cell index (§14): an 8-byte magic, a u16 version at 8, little-endian fields that follow
//! from the row count, the CRC-32 of the body (which runs from the header's end to the
//! file's end) and, in the header's last 4 bytes, the CRC-32 of the header before them.
#![deny(clippy::indexing_slicing)]

use crate::error::{Error, Result};

/// One file kind's header: where its checksums are and what it is called in errors.
pub(crate) struct SealedHeader {
    /// The file named in errors.
    pub label: &'static str,
    /// What the magic says the file is ("a packed R-tree"), for the bad-magic error.
    pub what: &'static str,
    pub magic: [u8; 8],
    pub version: u16,
    /// Header length; its CRC is the last 4 bytes.
    pub len: usize,
    /// Where the body's CRC is.
    pub body_crc_at: usize,
}

/// The `width`-byte (≤ 8) little-endian unsigned integer at `at`; 0 past the end.
pub(crate) fn read_uint(bytes: &[u8], at: usize, width: usize) -> u64 {
    let mut buf = [0u8; 8];
    if let (Some(dst), Some(src)) = (buf.get_mut(..width), bytes.get(at..at.saturating_add(width))) {
        dst.copy_from_slice(src);
    }
    u64::from_le_bytes(buf)
}

impl SealedHeader {
    fn header_crc_at(&self) -> usize {
        self.len - 4
    }

    pub fn corrupt(&self, offset: usize, reason: impl Into<String>) -> Error {
        Error::corrupt(self.label, offset as u64, reason)
    }

    /// The header's length, magic, checksum and version, in that order: the checksum first,
    /// as it covers the version, so a flipped bit there is damage, not a newer format (from
    /// the file-validation review).
    pub fn check_start(&self, bytes: &[u8]) -> Result<()> {
        if bytes.len() < self.len {
            return Err(
                self.corrupt(bytes.len(), format!("{} bytes is shorter than the header", bytes.len()))
            );
        }
        if bytes.get(..8) != Some(&self.magic[..]) {
            return Err(self.corrupt(0, format!("bad magic: not {}", self.what)));
        }
        let crc_at = self.header_crc_at();
        let stored = read_uint(bytes, crc_at, 4) as u32;
        if crc32fast::hash(bytes.get(..crc_at).unwrap_or_default()) != stored {
            return Err(self.corrupt(crc_at, "header checksum mismatch"));
        }
        let version = read_uint(bytes, 8, 2) as u16;
        if version != self.version {
            return Err(Error::UnsupportedVersion {
                file: self.label.into(),
                found: version,
                supported: self.version,
            });
        }
        Ok(())
    }

    /// Each `(offset, expected value, width)` field against the header's bytes.
    pub fn check_fields(&self, bytes: &[u8], fields: &[(usize, u64, usize)], rows: u64) -> Result<()> {
        for &(at, expected, width) in fields {
            let found = read_uint(bytes, at, width);
            if found != expected {
                return Err(
                    self.corrupt(at, format!("header field is {found}, expected {expected} for {rows} rows"))
                );
            }
        }
        Ok(())
    }

    /// The file's exact length and, when `check_body_crc`, the body's checksum.
    pub fn check_end(&self, bytes: &[u8], file_len: usize, check_body_crc: bool) -> Result<()> {
        if bytes.len() != file_len {
            return Err(self.corrupt(
                bytes.len().min(file_len),
                format!("file is {} bytes, header says {file_len}", bytes.len()),
            ));
        }
        if check_body_crc {
            let stored = read_uint(bytes, self.body_crc_at, 4) as u32;
            if crc32fast::hash(bytes.get(self.len..).unwrap_or_default()) != stored {
                return Err(self.corrupt(self.len, "body checksum mismatch"));
            }
        }
        Ok(())
    }

    /// Writes the magic, `fields` and both checksums into `out[..len]`, the body being in
    /// place up to `file_len`. `None` only if `out` is shorter than that.
    pub fn seal(&self, out: &mut [u8], fields: &[(usize, u64, usize)], file_len: usize) -> Option<()> {
        let body_crc = crc32fast::hash(out.get(self.len..file_len)?);
        let header = out.get_mut(..self.len)?;
        header.get_mut(..8)?.copy_from_slice(&self.magic);
        for &(at, value, width) in fields {
            header.get_mut(at..at + width)?.copy_from_slice(value.to_le_bytes().get(..width)?);
        }
        header.get_mut(self.body_crc_at..self.body_crc_at + 4)?.copy_from_slice(&body_crc.to_le_bytes());
        let crc_at = self.header_crc_at();
        let header_crc = crc32fast::hash(header.get(..crc_at)?);
        header.get_mut(crc_at..self.len)?.copy_from_slice(&header_crc.to_le_bytes());
        Some(())
    }
}
