//! Byte-level encodings shared by every file: checksummed frames and bounded bincode.

mod frame;

pub use frame::{encode_frame, read4, read8, read_frame, FrameRead, FRAME_HEADER_LEN, MAX_FRAME_PAYLOAD};

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

/// Decodes a value from bytes whose checksum has already matched; the whole slice must be
/// consumed.
///
/// # Errors
/// A message saying what did not decode; callers wrap it into [`crate::Error::Corrupt`].
pub fn decode<T: bincode::Decode<()>>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) = bincode::decode_from_slice(bytes, bincode_config()).map_err(|e| e.to_string())?;
    if used == bytes.len() {
        Ok(value)
    } else {
        Err(format!("{} trailing bytes after the encoded value", bytes.len() - used))
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
