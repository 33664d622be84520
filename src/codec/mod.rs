//! Byte-level encodings shared by every file: checksummed frames and bounded bincode.

mod frame;
pub(crate) use frame::{frames_reach, read_framed, valid_frame_at, RangeCrc};

pub use frame::{
    encode_frame, encode_frame_with, is_torn_tail, read4, read8, read_frame, FrameRead, FRAME_HEADER_LEN,
    MAX_FRAME_PAYLOAD, MAX_LONG_CANDIDATES,
};

/// The bincode configuration of every structured payload: little-endian, variable-length
/// integers (bincode 2 `standard()`), and a decode limit equal to the frame limit so a
/// length prefix inside a payload can never make the decoder allocate more than a frame.
#[must_use]
pub fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_FRAME_PAYLOAD as usize }>()
}

/// Encodes a value with [`bincode_config`].
///
/// # Errors
/// Never for geocrm's own types in practice; an encoding error is reported as a message.
pub fn encode<T: bincode::Encode>(value: &T) -> Result<Vec<u8>, String> {
    bincode::encode_to_vec(value, bincode_config()).map_err(|e| e.to_string())
}

/// The number of bytes [`encode`] would produce for a value, computed without a buffer.
///
/// # Errors
/// As [`encode`].
pub fn encoded_len<T: bincode::Encode>(value: &T) -> Result<usize, String> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::encode_into_writer(value, &mut size, bincode_config()).map_err(|e| e.to_string())?;
    Ok(size.bytes_written)
}

/// Appends the encoding of a value with [`bincode_config`] to `out` (no intermediate
/// buffer); returns the number of bytes appended.
///
/// # Errors
/// As [`encode`]; on error `out` may hold a partial encoding after its old length.
pub(crate) fn encode_into<T: bincode::Encode>(value: &T, out: &mut Vec<u8>) -> Result<usize, String> {
    struct Append<'a>(&'a mut Vec<u8>);
    impl bincode::enc::write::Writer for Append<'_> {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            self.0.extend_from_slice(bytes);
            Ok(())
        }
    }
    let before = out.len();
    bincode::encode_into_writer(value, Append(out), bincode_config()).map_err(|e| e.to_string())?;
    Ok(out.len() - before)
}

/// How many bytes of memory bincode may reserve per input byte (see [`decode`]). A container
/// element takes at least one encoded byte and at most 24 bytes of memory in geocrm's types
/// (`String`, `Vec<u8>`, `Option<String>`), so valid input never needs more than 25×.
const CLAIM_PER_INPUT_BYTE: usize = 64;

/// Decodes a value from bytes whose checksum has already matched; the whole slice must be
/// consumed.
///
/// bincode reserves a container's declared length before reading its elements (a byte
/// vector is allocated, zeroed, at once), so the decode limit, which bounds that, is chosen
/// from the input's length: a few bytes claiming a 60 MiB string fail without allocating it.
///
/// # Errors
/// A message saying what did not decode; callers wrap it into [`crate::Error::Corrupt`].
pub fn decode<T: bincode::Decode<()>>(bytes: &[u8]) -> Result<T, String> {
    const SMALL: usize = 64 << 10;
    const MEDIUM: usize = 4 << 20;
    let decoded = match bytes.len().saturating_mul(CLAIM_PER_INPUT_BYTE) {
        n if n <= SMALL => decode_limited::<T, SMALL>(bytes),
        n if n <= MEDIUM => decode_limited::<T, MEDIUM>(bytes),
        _ => bincode::decode_from_slice(bytes, bincode_config()),
    };
    let (value, used) = decoded.map_err(|e| e.to_string())?;
    if used == bytes.len() {
        Ok(value)
    } else {
        Err(format!("{} trailing bytes after the encoded value", bytes.len() - used))
    }
}

fn decode_limited<T: bincode::Decode<()>, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    bincode::decode_from_slice(bytes, bincode::config::standard().with_limit::<LIMIT>())
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn a_short_input_cannot_claim_a_huge_container() {
        // A 60 MiB string length prefix (varint: 0xfc then u32) followed by nothing.
        let mut bytes = vec![0xfc];
        bytes.extend_from_slice(&(60u32 << 20).to_le_bytes());
        let err = decode::<String>(&bytes).unwrap_err();
        assert!(err.contains("LimitExceeded"), "{err}");
    }

    #[test]
    fn containers_of_the_smallest_elements_decode_at_every_size() {
        // Empty strings and `None`s take one byte each but 24 bytes of memory: the most
        // memory per input byte any geocrm type reserves.
        for n in [0usize, 1, 100, 1_000, 2_700, 50_000, 200_000] {
            let strings = vec![String::new(); n];
            assert_eq!(decode::<Vec<String>>(&encode(&strings).unwrap()).unwrap(), strings);
            let options: Vec<Option<Vec<u8>>> = vec![None; n];
            assert_eq!(decode::<Vec<Option<Vec<u8>>>>(&encode(&options).unwrap()).unwrap(), options);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Pins the bincode 2 `standard()` rules that `FORMAT.md` documents.
    #![allow(clippy::unwrap_used)]

    use super::{decode, encode, MAX_FRAME_PAYLOAD};

    #[derive(Debug, PartialEq, bincode::Encode, bincode::Decode)]
    struct Sample {
        id: [u8; 16],
        n: u32,
        x: f64,
        s: String,
        v: Vec<u8>,
        o: Option<u64>,
    }

    #[test]
    fn varints_use_one_byte_below_251_then_a_marker() {
        for (v, bytes) in [
            (0u64, &[0x00][..]),
            (250, &[0xfa]),
            (251, &[0xfb, 0xfb, 0x00]),
            (65_535, &[0xfb, 0xff, 0xff]),
            (65_536, &[0xfc, 0x00, 0x00, 0x01, 0x00]),
            (u64::from(u32::MAX), &[0xfc, 0xff, 0xff, 0xff, 0xff]),
            (u64::from(u32::MAX) + 1, &[0xfd, 0, 0, 0, 0, 1, 0, 0, 0]),
        ] {
            assert_eq!(encode(&v).unwrap(), bytes, "{v}");
            assert_eq!(decode::<u64>(bytes).unwrap(), v);
        }
        assert_eq!(encode(&300u32).unwrap(), [0xfb, 0x2c, 0x01]);
        assert_eq!(encode(&200u8).unwrap(), [200], "u8 is a raw byte, not a varint");
        // The decoder accepts non-minimal forms (the format is not canonical)...
        assert_eq!(decode::<u64>(&[0xfb, 0x05, 0x00]).unwrap(), 5);
        // ...but not a marker wider than the type, nor the reserved bytes 254 and 255.
        assert!(decode::<u32>(&[0xfd, 5, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode::<u64>(&[0xfe; 17]).is_err());
        assert!(decode::<u64>(&[0xff]).is_err());
    }

    #[test]
    fn struct_fields_in_order_with_raw_arrays_and_length_prefixes() {
        let s = Sample { id: [7; 16], n: 1, x: 1.5, s: "hé".into(), v: vec![9, 9], o: Some(2) };
        let mut want = vec![7u8; 16];
        want.push(1);
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[3, b'h', 0xc3, 0xa9]);
        want.extend_from_slice(&[2, 9, 9]);
        want.extend_from_slice(&[1, 2]);
        assert_eq!(encode(&s).unwrap(), want);
        assert_eq!(decode::<Sample>(&want).unwrap(), s);
        assert_eq!(encode(&None::<u64>).unwrap(), [0]);
        assert!(decode::<Option<u8>>(&[2, 0]).is_err(), "Option tags are 0 or 1");
        assert!(decode::<String>(&[1, 0xff]).is_err(), "strings must be UTF-8");
    }

    #[test]
    fn trailing_bytes_and_oversized_lengths_are_rejected() {
        assert!(decode::<u8>(&[1, 2]).unwrap_err().contains("trailing"));
        let mut huge = vec![0xfc];
        huge.extend_from_slice(&(MAX_FRAME_PAYLOAD + 1).to_le_bytes());
        assert!(decode::<Vec<u8>>(&huge).is_err(), "a length over the limit allocates nothing");
    }
}
