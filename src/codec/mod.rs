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
