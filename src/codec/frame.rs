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

fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
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
#[must_use]
pub fn is_torn_tail(rest: &[u8]) -> bool {
    (1..rest.len()).all(|p| !matches!(rest.get(p..).map(read_frame), Some(FrameRead::Valid { .. })))
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

    #[test]
    fn huge_declared_length_is_rejected_without_allocation() {
        let mut buf = u32::MAX.to_le_bytes().to_vec();
        buf.extend_from_slice(&[0; 4]);
        assert_eq!(read_frame(&buf), FrameRead::BadLength(u32::MAX));
    }
}
