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
mod tests {
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
