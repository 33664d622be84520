//! Input layouts shared by the fuzz targets and by `examples/make_corpus.rs`, which writes
//! the binary seeds in exactly these layouts so they stay valid as the formats evolve.

use std::path::Path;

/// Database id of every log segment and keystore the targets build (the `log_replay` and
/// `keystore_open` seeds are made with it).
pub const DB_ID: [u8; 16] = [7; 16];

/// Master key the keystore and database seeds are made with.
pub const MASTER: [u8; 32] = [9; 32];

/// Directory of the database inside the in-memory file system.
pub fn db_dir() -> &'static Path {
    Path::new("/db")
}

/// A valid segment header (see `geocrm::log`) for segment `number` starting at `first_lsn`.
#[must_use]
pub fn segment_header(number: u64, first_lsn: u64, db_id: [u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(geocrm::log::SEGMENT_HEADER_LEN);
    out.extend_from_slice(&geocrm::log::SEGMENT_MAGIC);
    out.extend_from_slice(&geocrm::log::SEGMENT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&number.to_le_bytes());
    out.extend_from_slice(&first_lsn.to_le_bytes());
    out.extend_from_slice(&db_id);
    out.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
    out
}

/// Rewrites the CRC of every codec frame (`len u32 | crc u32 | payload`) laid back to back
/// from offset `at`, as far as the declared lengths fit, so mutated payloads get past the
/// checksum and reach the decoders behind it.
pub fn fix_frame_crcs(bytes: &mut [u8], mut at: usize) {
    while let Some(len) = bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes) {
        let end = at + 8 + len as usize;
        if len > geocrm::codec::MAX_FRAME_PAYLOAD || end > bytes.len() {
            return;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[at..at + 4]);
        h.update(&bytes[at + 8..end]);
        bytes[at + 4..at + 8].copy_from_slice(&h.finalize().to_le_bytes());
        at = end;
    }
}

/// Rewrites the CRC-32 at `crc_at` to cover `bytes[..crc_at]`, when the file is long enough.
pub fn fix_header_crc(bytes: &mut [u8], crc_at: usize) {
    if bytes.len() >= crc_at + 4 {
        let crc = crc32fast::hash(&bytes[..crc_at]);
        bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Makes every checksum of a log segment match: the header's and the frames'.
pub fn fix_segment_crcs(seg: &mut [u8]) {
    fix_header_crc(seg, 44);
    fix_frame_crcs(seg, geocrm::log::SEGMENT_HEADER_LEN);
}

/// Makes every checksum of a keystore file match: the 99-byte header's and the frames'.
pub fn fix_keystore_crcs(ks: &mut [u8]) {
    fix_header_crc(ks, 95);
    fix_frame_crcs(ks, 99);
}

/// Makes the checksum of a MANIFEST's frame match.
pub fn fix_manifest_crc(manifest: &mut [u8]) {
    fix_frame_crcs(manifest, 10);
}

/// `log_replay` input:
///
/// `mode u8 | split u16 LE | lsn u8 | data…`
///
/// * mode bit 0: prepend a valid header (first LSN `lsn`, or 1 when `lsn` is 0) to the
///   newest segment;
/// * mode bit 1: two segments: `data[..split]` is segment 1 and `data[split..]` segment 2
///   (`split` is clamped to the data); otherwise `data` is segment 1 alone;
/// * mode bit 2: (two segments only) prepend a valid header with first LSN 1 to segment 1;
/// * mode bit 3: fix every checksum ([`fix_segment_crcs`]) after the above.
///
/// Returns the segment files' contents, oldest first.
#[must_use]
pub fn log_replay_segments(input: &[u8]) -> Vec<Vec<u8>> {
    let Some((&mode, rest)) = input.split_first() else { return vec![Vec::new()] };
    let (split, rest) = match rest {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, &[][..]),
    };
    let (lsn, data) = match rest.split_first() {
        Some((&l, data)) => (u64::from(l.max(1)), data),
        None => (1, &[][..]),
    };
    let mut segments = if mode & 2 != 0 {
        let at = split.min(data.len());
        let mut older = Vec::new();
        if mode & 4 != 0 {
            older.extend(segment_header(1, 1, DB_ID));
        }
        older.extend_from_slice(&data[..at]);
        vec![older, data[at..].to_vec()]
    } else {
        vec![data.to_vec()]
    };
    if mode & 1 != 0 {
        let number = segments.len() as u64;
        if let Some(newest) = segments.last_mut() {
            let mut with_header = segment_header(number, lsn, DB_ID);
            with_header.append(newest);
            *newest = with_header;
        }
    }
    if mode & 8 != 0 {
        for seg in &mut segments {
            fix_segment_crcs(seg);
        }
    }
    segments
}

/// Builds a `log_replay` input holding whole segment files as they are (no header added).
#[must_use]
pub fn log_replay_input(segments: &[&[u8]]) -> Vec<u8> {
    match segments {
        [one] => {
            let mut out = vec![0, 0, 0, 1];
            out.extend_from_slice(one);
            out
        }
        [older, newer] => {
            let split = u16::try_from(older.len()).expect("seed segment under 64 KiB");
            let mut out = vec![2];
            out.extend_from_slice(&split.to_le_bytes());
            out.push(1);
            out.extend_from_slice(older);
            out.extend_from_slice(newer);
            out
        }
        _ => panic!("one or two segments"),
    }
}

/// `database_open` input:
///
/// `flags u8 | manifest_len u16 LE | manifest | keystore_len u16 LE | keystore | segment…`
///
/// * flags bit 0: open with the master key [`MASTER`];
/// * flags bit 1: write the keystore part as `DIR/keystore` (else no keystore file);
/// * flags bit 2: write the rest as `DIR/log/000000000001.seg` (else no log directory);
/// * flags bit 3: fix every checksum in the three files first.
///
/// Missing bytes read as empty parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFiles<'a> {
    /// The flags byte.
    pub flags: u8,
    /// MANIFEST contents.
    pub manifest: &'a [u8],
    /// Keystore contents.
    pub keystore: &'a [u8],
    /// Segment 1 contents.
    pub segment: &'a [u8],
}

fn take_part(input: &[u8]) -> (&[u8], &[u8]) {
    match input {
        [a, b, rest @ ..] => {
            let n = usize::from(u16::from_le_bytes([*a, *b])).min(rest.len());
            rest.split_at(n)
        }
        _ => (&[], &[]),
    }
}

impl<'a> DbFiles<'a> {
    /// Splits a `database_open` input.
    #[must_use]
    pub fn parse(input: &'a [u8]) -> DbFiles<'a> {
        let Some((&flags, rest)) = input.split_first() else {
            return DbFiles { flags: 0, manifest: &[], keystore: &[], segment: &[] };
        };
        let (manifest, rest) = take_part(rest);
        let (keystore, segment) = take_part(rest);
        DbFiles { flags, manifest, keystore, segment }
    }

    /// Builds a `database_open` input.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags];
        for part in [self.manifest, self.keystore] {
            out.extend_from_slice(&u16::try_from(part.len()).expect("part under 64 KiB").to_le_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(self.segment);
        out
    }
}

/// A small deterministic stream of numbers drawn from the input, for points and boxes.
#[derive(Debug, Clone)]
pub struct Draw {
    state: u64,
}

impl Draw {
    /// Seeds the stream from the input bytes (FNV-1a).
    #[must_use]
    pub fn new(input: &[u8]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in input {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Draw { state: h }
    }

    /// The next 64 random-looking bits (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number between `lo` and `hi` (in either order; both finite).
    pub fn in_range(&mut self, lo: f64, hi: f64) -> f64 {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (lo + unit * (hi - lo)).clamp(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip() {
        let seg1 = b"first segment".to_vec();
        let seg2 = b"second".to_vec();
        assert_eq!(log_replay_segments(&log_replay_input(&[&seg1])), vec![seg1.clone()]);
        assert_eq!(log_replay_segments(&log_replay_input(&[&seg1, &seg2])), vec![seg1, seg2]);
        let files = DbFiles { flags: 5, manifest: b"m", keystore: b"ks", segment: b"seg" };
        assert_eq!(DbFiles::parse(&files.encode()), files);
    }
}
