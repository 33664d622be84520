//! Checksummed frames: `len: u32 LE | crc: u32 LE | payload[len]`.
//!
//! `crc` is CRC-32 (IEEE, as computed by `crc32fast`) of the four length bytes followed by
//! the payload, so a flipped length bit is caught like a flipped payload bit. A declared
//! length above [`MAX_FRAME_PAYLOAD`] is rejected before anything is allocated.

/// Bytes before the payload.
pub const FRAME_HEADER_LEN: usize = 8;

/// Largest payload a frame may declare (64 MiB).
pub const MAX_FRAME_PAYLOAD: u32 = 64 << 20;

/// The outcome of reading one frame from a byte slice.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameRead<'a> {
    /// A whole frame whose checksum matched.
    Valid {
        /// The payload bytes.
        payload: &'a [u8],
        /// Total frame length including the header.
        frame_len: usize,
    },
    /// Fewer bytes than the header or than the declared length: a cut-off frame.
    Truncated,
    /// The declared length is larger than [`MAX_FRAME_PAYLOAD`].
    BadLength(u32),
    /// The checksum does not match the bytes.
    BadChecksum,
}

impl FrameRead<'_> {
    /// What is wrong with a frame that is not valid, in words (errors said `(BadChecksum)`).
    ///
    /// ```
    /// use geocrm::codec::FrameRead;
    /// assert_eq!(FrameRead::BadChecksum.problem(), "its checksum does not match its bytes");
    /// ```
    #[must_use]
    pub fn problem(&self) -> String {
        match self {
            FrameRead::Valid { .. } => "none: the frame is valid".to_owned(),
            FrameRead::Truncated => "it is cut off: the file ends inside it".to_owned(),
            FrameRead::BadLength(len) => {
                format!("its length field says {len} bytes, more than a frame can hold ({MAX_FRAME_PAYLOAD})")
            }
            FrameRead::BadChecksum => "its checksum does not match its bytes".to_owned(),
        }
    }
}

fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// Whether valid frames run from `first` in `bytes` to a frame that starts exactly at `at`
/// (`first == at` included): where a repair may splice a damaged frame out.
pub(crate) fn frames_reach(bytes: &[u8], first: usize, at: usize) -> bool {
    let mut p = first;
    while p < at {
        match bytes.get(p..).map(read_frame) {
            Some(FrameRead::Valid { frame_len, .. }) => p += frame_len,
            _ => return false,
        }
    }
    p == at
}

/// Appends one frame holding `payload` to `out`.
///
/// # Panics
/// Never for payloads up to [`MAX_FRAME_PAYLOAD`]; callers split larger data (a debug
/// assertion guards it).
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(FRAME_HEADER_LEN + payload.len());
    encode_frame_with(out, |out| out.extend_from_slice(payload));
}

/// Appends one frame to `out` whose payload `fill` appends in place, then writes the
/// header (the same bytes as [`encode_frame`] of that payload, with no intermediate buffer);
/// returns what `fill` returns.
///
/// # Panics
/// As [`encode_frame`].
///
/// ```
/// use geocrm::codec::{encode_frame, encode_frame_with};
/// let (mut a, mut b) = (Vec::new(), Vec::new());
/// encode_frame(b"payload", &mut a);
/// encode_frame_with(&mut b, |out| out.extend_from_slice(b"payload"));
/// assert_eq!(a, b);
/// ```
pub fn encode_frame_with<R>(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    let result = fill(out);
    let (_, frame) = out.split_at_mut(start);
    let (header, payload) = frame.split_at_mut(FRAME_HEADER_LEN);
    debug_assert!(payload.len() <= MAX_FRAME_PAYLOAD as usize);
    let len_bytes = u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes();
    let crc = checksum(len_bytes, payload);
    let (len_out, crc_out) = header.split_at_mut(4);
    len_out.copy_from_slice(&len_bytes);
    crc_out.copy_from_slice(&crc.to_le_bytes());
    result
}

/// Reads the frame at the start of `bytes`, checking length bounds and checksum.
#[must_use]
pub fn read_frame(bytes: &[u8]) -> FrameRead<'_> {
    let (Some(len_bytes), Some(crc_bytes)) = (read4(bytes, 0), read4(bytes, 4)) else {
        return FrameRead::Truncated;
    };
    let len = u32::from_le_bytes(len_bytes);
    if len > MAX_FRAME_PAYLOAD {
        return FrameRead::BadLength(len);
    }
    let end = FRAME_HEADER_LEN + len as usize;
    let Some(payload) = bytes.get(FRAME_HEADER_LEN..end) else {
        return FrameRead::Truncated;
    };
    if checksum(len_bytes, payload) == u32::from_le_bytes(crc_bytes) {
        FrameRead::Valid { payload, frame_len: end }
    } else {
        FrameRead::BadChecksum
    }
}

/// Whether `rest` — bytes from an invalid frame to the end of a file — is a torn append:
/// no valid frame starts at any later offset. Appends are synced one frame at a time, so
/// only the final frame can be torn; an invalid frame followed by a valid one is damage.
///
/// Every offset whose length field fits is a candidate, and a torn frame of random bytes
/// (ciphertext) has thousands of them, each declaring megabytes. Checksumming each
/// candidate's payload afresh made opening after a crash during a large append take
/// seconds; here one pass records the CRC of every 4 KiB-aligned prefix and a
/// candidate's checksum is assembled from those (CRC-32 is linear), so each costs at most
/// two blocks of hashing: `O(len)` in all, plus `O(BLOCK)` per candidate. Bytes longer
/// than the largest frame are damage without a look, and so are bytes with more than
/// [`MAX_LONG_CANDIDATES`] candidates spanning blocks (a torn frame of random bytes has a
/// few thousand; a crafted run of `01` bytes tens of millions, minutes of checking): the
/// answer is then "damage", which refuses the file rather than cut it.
#[must_use]
pub fn is_torn_tail(rest: &[u8]) -> bool {
    // A torn append is one frame: anything longer holds more than the torn frame.
    if rest.len() > FRAME_HEADER_LEN + MAX_FRAME_PAYLOAD as usize {
        return false;
    }
    let crcs = RangeCrc::new(rest);
    let mut long = 0usize;
    (1..rest.len()).all(|p| {
        let len = read4(rest, p).map_or(u32::MAX, u32::from_le_bytes);
        let fits = len <= MAX_FRAME_PAYLOAD && p + FRAME_HEADER_LEN + len as usize <= rest.len();
        long += usize::from(fits && len as usize >= 2 * RangeCrc::BLOCK);
        long <= MAX_LONG_CANDIDATES && !valid_frame_at(rest, p, &crcs)
    })
}

/// Most candidate frames spanning blocks [`is_torn_tail`] checks (about a second's work).
pub const MAX_LONG_CANDIDATES: usize = 500_000;

/// Whether a whole frame with a matching checksum starts at `at` (as [`read_frame`] would
/// say `Valid`), with its checksum computed through `crcs`.
pub(crate) fn valid_frame_at(bytes: &[u8], at: usize, crcs: &RangeCrc) -> bool {
    let (Some(len_bytes), Some(crc_bytes)) = (read4(bytes, at), read4(bytes, at + 4)) else {
        return false;
    };
    let len = u32::from_le_bytes(len_bytes);
    if len > MAX_FRAME_PAYLOAD {
        return false;
    }
    let start = at + FRAME_HEADER_LEN;
    let end = start + len as usize;
    if end > bytes.len() {
        return false;
    }
    let mut h = crc32fast::Hasher::new_with_initial_len(crc32fast::hash(&len_bytes), 4);
    h.combine(&crcs.range(start, end));
    h.finalize() == u32::from_le_bytes(crc_bytes)
}

/// CRC-32 of any range of one byte slice, from the CRCs of its block-aligned prefixes.
pub(crate) struct RangeCrc<'a> {
    bytes: &'a [u8],
    /// `prefix[i]` = CRC-32 of `bytes[..i * BLOCK]`.
    prefix: Vec<u32>,
}

impl<'a> RangeCrc<'a> {
    /// Prefix granularity: a range's unaligned ends (each under a block) are hashed directly.
    const BLOCK: usize = 4096;

    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let mut prefix = Vec::with_capacity(bytes.len() / Self::BLOCK + 1);
        let mut h = crc32fast::Hasher::new();
        prefix.push(h.clone().finalize());
        for block in bytes.chunks_exact(Self::BLOCK) {
            h.update(block);
            prefix.push(h.clone().finalize());
        }
        Self { bytes, prefix }
    }

    /// A hasher holding the CRC-32 of `bytes[start..end]` (and its length, for `combine`).
    /// `start <= end <= bytes.len()`.
    fn range(&self, start: usize, end: usize) -> crc32fast::Hasher {
        let direct = |a: usize, b: usize| {
            let mut h = crc32fast::Hasher::new();
            h.update(self.bytes.get(a..b).unwrap_or_default());
            h
        };
        let (first, last) = (start.div_ceil(Self::BLOCK), end / Self::BLOCK);
        if first >= last {
            return direct(start, end);
        }
        let (Some(&before), Some(&through)) = (self.prefix.get(first), self.prefix.get(last)) else {
            return direct(start, end);
        };
        // crc(A ‖ B) = crc(A) · x^(8|B|) ⊕ crc(B), so crc(B) = crc(A ‖ B) ⊕ (crc(A) shifted |B|).
        let middle_len = ((last - first) * Self::BLOCK) as u64;
        let mut shifted = crc32fast::Hasher::new_with_initial(before);
        shifted.combine(&crc32fast::Hasher::new_with_initial_len(0, middle_len));
        let middle = crc32fast::Hasher::new_with_initial_len(through ^ shifted.finalize(), middle_len);
        let mut h = direct(start, first * Self::BLOCK);
        h.combine(&middle);
        h.combine(&direct(last * Self::BLOCK, end));
        h
    }
}

/// Reads four bytes at `at`, or `None` past the end.
#[must_use]
pub fn read4(bytes: &[u8], at: usize) -> Option<[u8; 4]> {
    bytes.get(at..at.checked_add(4)?)?.try_into().ok()
}

/// Reads eight bytes at `at`, or `None` past the end.
#[must_use]
pub fn read8(bytes: &[u8], at: usize) -> Option<[u8; 8]> {
    bytes.get(at..at.checked_add(8)?)?.try_into().ok()
}

/// The bytes of a file made of a `header_len`-byte header and frames, read frame by frame:
/// the header, every valid frame from the start, then what follows the last valid frame —
/// whole if it is no longer than one frame can be, else only that much. A parser of the
/// result finds the same frames, and the same damage at the same offset, as one of the
/// whole file (past one frame's length the rest is never a torn tail), but memory grows
/// with what is read, not with the length a damaged or sparse file claims (a sparse
/// keystore of 200 GB got the process killed for memory: from the file-validation review).
///
/// # Errors
/// [`crate::Error::Io`].
pub(crate) fn read_framed(file: &dyn crate::io::ReadableFile, header_len: usize) -> crate::Result<Vec<u8>> {
    let len = file.len();
    let take = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    // A file no longer than a frame can be is read at once (two reads per frame made a
    // keystore of 500,000 one-key frames slow: from the diff review).
    if len <= FRAME_HEADER_LEN as u64 + u64::from(MAX_FRAME_PAYLOAD) {
        let mut out = vec![0u8; take(len)];
        return match file.read_exact_at(&mut out, 0) {
            Err(e) if cut_meanwhile(&e) => read_framed_prefix(file, header_len),
            other => other.map(|()| out),
        };
    }
    read_framed_prefix(file, header_len)
}

/// Whether a read failed because the file was cut shorter meanwhile (a writable open cuts a
/// torn audit tail while a read-only reader reads it): the reader then sees what is left.
fn cut_meanwhile(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof)
}

/// [`read_framed`] frame by frame. A read past the end (the file was cut meanwhile) ends it
/// with what was read whole.
fn read_framed_prefix(file: &dyn crate::io::ReadableFile, header_len: usize) -> crate::Result<Vec<u8>> {
    let len = file.len();
    let take = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let read = |buf: &mut [u8], at: u64| match file.read_exact_at(buf, at) {
        Err(e) if cut_meanwhile(&e) => Ok(false),
        other => other.map(|()| true),
    };
    let mut out = vec![0u8; take(len.min(header_len as u64))];
    if !read(&mut out, 0)? {
        out.clear();
        return Ok(out);
    }
    let mut at = out.len() as u64;
    let mut head = [0u8; FRAME_HEADER_LEN];
    while at + FRAME_HEADER_LEN as u64 <= len {
        if !read(&mut head, at)? {
            return Ok(out);
        }
        let (Some(len_bytes), Some(crc_bytes)) = (read4(&head, 0), read4(&head, 4)) else { break };
        let payload_len = u32::from_le_bytes(len_bytes);
        let end = at + FRAME_HEADER_LEN as u64 + u64::from(payload_len);
        if payload_len > MAX_FRAME_PAYLOAD || end > len {
            break;
        }
        let start = out.len();
        out.extend_from_slice(&head);
        out.resize(start + FRAME_HEADER_LEN + payload_len as usize, 0);
        let payload = out.get_mut(start + FRAME_HEADER_LEN..).unwrap_or_default();
        if !read(payload, at + FRAME_HEADER_LEN as u64)? {
            out.truncate(start);
            return Ok(out);
        }
        let payload = out.get(start + FRAME_HEADER_LEN..).unwrap_or_default();
        if checksum(len_bytes, payload) != u32::from_le_bytes(crc_bytes) {
            out.truncate(start);
            break;
        }
        at = end;
    }
    let rest = (len - at).min(FRAME_HEADER_LEN as u64 + u64::from(MAX_FRAME_PAYLOAD) + 1);
    let start = out.len();
    out.resize(start + take(rest), 0);
    if !read(out.get_mut(start..).unwrap_or_default(), at)? {
        out.truncate(start);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_cut_is_truncated() {
        let mut buf = Vec::new();
        encode_frame(b"hello frame", &mut buf);
        assert_eq!(read_frame(&buf), FrameRead::Valid { payload: b"hello frame", frame_len: buf.len() });
        for cut in 0..buf.len() {
            assert_eq!(read_frame(&buf[..cut]), FrameRead::Truncated, "cut at {cut}");
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_frame(b"payload bytes", &mut buf);
        for i in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(!matches!(read_frame(&bad), FrameRead::Valid { .. }), "flip of bit {i} undetected");
        }
    }

    /// The plain definition `is_torn_tail` must agree with: a `read_frame` at every offset.
    fn torn_by_definition(rest: &[u8]) -> bool {
        (1..rest.len()).all(|p| !matches!(read_frame(&rest[p..]), FrameRead::Valid { .. }))
    }

    #[test]
    fn a_tail_of_millions_of_long_candidates_is_damage_decided_quickly() {
        // 64 MiB of `01` bytes: every offset declares a 16 MiB frame that fits — ~50 million
        // candidates, minutes of checksumming (found by a reviewing helper). Capped: damage.
        let rest = vec![1u8; 64 << 20];
        let started = std::time::Instant::now();
        assert!(!is_torn_tail(&rest));
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
        // A torn frame of random bytes (a few thousand long candidates) is still torn.
        let mut random = vec![0u8; 6 << 20];
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for b in &mut random {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        assert!(is_torn_tail(&random));
    }

    #[test]
    fn range_crcs_equal_direct_hashes() {
        let bytes: Vec<u8> = (0..3 * RangeCrc::BLOCK + 77).map(|i| (i * 131 % 251) as u8).collect();
        let crcs = RangeCrc::new(&bytes);
        let b = RangeCrc::BLOCK;
        let edges = [0, 1, b - 1, b, b + 1, 2 * b - 3, 2 * b, 2 * b + 5, 3 * b, 3 * b + 76, 3 * b + 77];
        for &start in &edges {
            for &end in edges.iter().filter(|&&e| e >= start) {
                assert_eq!(
                    crcs.range(start, end).finalize(),
                    crc32fast::hash(&bytes[start..end]),
                    "{start}..{end}"
                );
            }
        }
    }

    #[test]
    fn torn_tail_agrees_with_the_definition() {
        // Random bytes (as in a torn frame of ciphertext), lengths small enough to fit, and
        // whole frames of every size class planted at offsets on and off block boundaries.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..60 {
            let len = 1 + (next() % 20_000) as usize;
            let mut rest: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if case % 3 == 0 {
                // Lengths that fit, so many offsets are checksummed.
                for i in (0..len.saturating_sub(4)).step_by(5) {
                    let fit = (next() % len as u64) as u32;
                    rest[i..i + 4].copy_from_slice(&fit.to_le_bytes());
                }
            }
            if case % 2 == 1 {
                let payload_len = [0, 1, 100, 4095, 4096, 9000][case / 2 % 6];
                let mut frame = Vec::new();
                encode_frame(&vec![7u8; payload_len], &mut frame);
                if frame.len() < len {
                    let at = 1 + (next() as usize % (len - frame.len()));
                    rest[at..at + frame.len()].copy_from_slice(&frame);
                }
            }
            assert_eq!(is_torn_tail(&rest), torn_by_definition(&rest), "case {case}");
        }
    }

    #[test]
    fn a_torn_multi_megabyte_frame_of_random_bytes_is_a_torn_tail() {
        // Thousands of its offsets declare lengths that fit. Checksummed afresh each, this
        // took minutes in a test build; now about one pass (not timed here: a regression
        // shows as a test that hangs).
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let rest: Vec<u8> = (0..8 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        assert!(is_torn_tail(&rest));
    }

    #[test]
    fn bytes_longer_than_any_frame_are_never_a_torn_tail() {
        // One torn append is at most one frame; a tail this long is damage whatever it holds
        // (zeros hold no valid frame, so only the length bound can say so without a scan).
        let frame_max = FRAME_HEADER_LEN + MAX_FRAME_PAYLOAD as usize;
        assert!(!is_torn_tail(&vec![0; frame_max + 1]));
        assert!(is_torn_tail(&[0; 100]));
    }

    #[test]
    fn huge_declared_length_is_rejected_without_allocation() {
        let mut buf = u32::MAX.to_le_bytes().to_vec();
        buf.extend_from_slice(&[0; 4]);
        assert_eq!(read_frame(&buf), FrameRead::BadLength(u32::MAX));
    }
}
