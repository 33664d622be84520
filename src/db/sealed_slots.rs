//! A record's sealed PII slots: its envelopes back to back in one buffer.

use bincode::de::Decoder;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{Decode, Encode};

/// End offset of a slot that holds no envelope.
const UNSET: u32 = u32::MAX;

/// A record's sealed PII slots in schema order, each unset or one envelope. The envelopes sit
/// back to back in one buffer (two allocations per record, not one per field); the encoding
/// is exactly that of `Vec<Option<Vec<u8>>>` (FORMAT.md §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SealedSlots {
    bytes: Vec<u8>,
    /// Where each slot's envelope ends in `bytes`, or [`UNSET`].
    ends: Vec<u32>,
}

impl SealedSlots {
    /// `n` unset slots.
    pub(crate) fn unset(n: usize) -> Self {
        SealedSlots { bytes: Vec::new(), ends: vec![UNSET; n] }
    }

    /// No slots yet, with room for `slots` slots and `bytes` envelope bytes.
    pub(crate) fn with_capacity(slots: usize, bytes: usize) -> Self {
        SealedSlots { bytes: Vec::with_capacity(bytes), ends: Vec::with_capacity(slots) }
    }

    /// Appends an unset slot.
    pub(crate) fn push_unset(&mut self) {
        self.ends.push(UNSET);
    }

    /// Appends a slot whose envelope `write` appends to the buffer it is given.
    ///
    /// # Panics
    /// When the record's envelopes pass 4 GiB (a record is limited to a 64 MiB frame).
    pub(crate) fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.bytes);
        let end = u32::try_from(self.bytes.len()).ok().filter(|&e| e != UNSET);
        self.ends.push(end.expect("a record's envelopes fit a frame"));
    }

    /// The number of slots.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether any slot holds an envelope.
    pub(crate) fn any_set(&self) -> bool {
        self.ends.iter().any(|&e| e != UNSET)
    }

    /// Slot `i`'s envelope: `None` when the slot is unset or past the end.
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i).filter(|&&e| e != UNSET)?;
        // The slot starts where the last set slot before it ends.
        let start = self.ends.get(..i)?.iter().rev().find(|&&e| e != UNSET).map_or(0, |&e| e as usize);
        self.bytes.get(start..end as usize)
    }

    /// Each slot's envelope, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            if end == UNSET {
                return None;
            }
            let envelope = self.bytes.get(start..end as usize);
            start = end as usize;
            envelope
        })
    }
}

impl From<Vec<Option<Vec<u8>>>> for SealedSlots {
    fn from(slots: Vec<Option<Vec<u8>>>) -> Self {
        let bytes = slots.iter().flatten().map(Vec::len).sum();
        let mut out = SealedSlots::with_capacity(slots.len(), bytes);
        for slot in slots {
            match slot {
                Some(envelope) => out.push_with(|b| b.extend_from_slice(&envelope)),
                None => out.push_unset(),
            }
        }
        out
    }
}

impl Encode for SealedSlots {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        (self.ends.len() as u64).encode(encoder)?;
        for slot in self.iter() {
            slot.encode(encoder)?;
        }
        Ok(())
    }
}

impl<C> Decode<C> for SealedSlots {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        // Decoded the bounded way bincode decodes the vector type it is encoded as.
        let slots: Vec<Option<Vec<u8>>> = Decode::decode(decoder)?;
        if slots.iter().flatten().map(Vec::len).sum::<usize>() >= UNSET as usize {
            return Err(DecodeError::Other("sealed PII slots over 4 GiB"));
        }
        Ok(SealedSlots::from(slots))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn encodes_exactly_as_a_vector_of_optional_byte_vectors() {
        let cases: Vec<Vec<Option<Vec<u8>>>> = vec![
            vec![],
            vec![None],
            vec![Some(vec![])],
            vec![Some(vec![1, 2, 3]), None, Some(vec![9; 300]), None],
            vec![None, None, Some(vec![7; 70_000])],
        ];
        for slots in cases {
            let compact = SealedSlots::from(slots.clone());
            assert_eq!(compact.len(), slots.len());
            assert_eq!(compact.any_set(), slots.iter().any(Option::is_some));
            let as_vecs: Vec<Option<Vec<u8>>> = compact.iter().map(|s| s.map(<[u8]>::to_vec)).collect();
            assert_eq!(as_vecs, slots);
            for (i, slot) in slots.iter().enumerate() {
                assert_eq!(compact.get(i), slot.as_deref());
            }
            assert_eq!(compact.get(slots.len()), None);
            let bytes = codec::encode(&compact).unwrap();
            assert_eq!(bytes, codec::encode(&slots).unwrap());
            assert_eq!(codec::decode::<SealedSlots>(&bytes).unwrap(), compact);
        }
        assert_eq!(SealedSlots::unset(3), SealedSlots::from(vec![None, None, None]));
    }
}
