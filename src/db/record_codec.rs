//! The bincode encoding of [`StoredRecord`] (FORMAT.md §5.3): fields 1–9 as before, then
//! field 10, `blind`, written only when non-empty. A record is always the last value of its
//! log operation, whose entry has an explicit length, so a record that ends after field 9
//! (written before blind indexes existed, or with no blind values) decodes with none.

use bincode::de::read::Reader;
use bincode::de::Decoder;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{Decode, Encode};

use super::ops::StoredRecord;

impl Encode for StoredRecord {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.collection.encode(encoder)?;
        self.id.encode(encoder)?;
        self.lat.encode(encoder)?;
        self.lon.encode(encoder)?;
        self.cell.encode(encoder)?;
        self.numbers.encode(encoder)?;
        self.categories.encode(encoder)?;
        self.key_id.encode(encoder)?;
        self.pii.encode(encoder)?;
        if self.blind.is_empty() {
            Ok(())
        } else {
            self.blind.encode(encoder)
        }
    }
}

impl<C> Decode<C> for StoredRecord {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let mut r = StoredRecord {
            collection: Decode::decode(decoder)?,
            id: Decode::decode(decoder)?,
            lat: Decode::decode(decoder)?,
            lon: Decode::decode(decoder)?,
            cell: Decode::decode(decoder)?,
            numbers: Decode::decode(decoder)?,
            categories: Decode::decode(decoder)?,
            key_id: Decode::decode(decoder)?,
            pii: Decode::decode(decoder)?,
            blind: Vec::new(),
        };
        if decoder.reader().peek_read(1).is_some() {
            let blind: Vec<Option<[u8; 32]>> = Decode::decode(decoder)?;
            if blind.len() != r.pii.len() {
                return Err(DecodeError::OtherString(format!(
                    "record has {} PII slots but {} blind-index slots",
                    r.pii.len(),
                    blind.len()
                )));
            }
            if blind.iter().zip(r.pii.iter()).any(|(b, p)| b.is_some() && p.is_none()) {
                return Err(DecodeError::Other("a blind-index value for an unset PII slot"));
            }
            r.blind = blind;
        }
        Ok(r)
    }
}
bincode::impl_borrow_decode!(StoredRecord);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn record(blind: Vec<Option<[u8; 32]>>) -> StoredRecord {
        StoredRecord {
            collection: "c".into(),
            id: "C-1".into(),
            lat: 1.0,
            lon: 2.0,
            cell: 0x08f1_fb46_6255_50c3,
            numbers: vec![],
            categories: vec![],
            key_id: Some(3),
            pii: vec![Some(vec![1, 2, 3]), None].into(),
            blind,
        }
    }

    #[test]
    fn records_without_blind_values_keep_the_old_encoding() {
        let old = record(vec![]);
        let bytes = codec::encode(&old).unwrap();
        assert_eq!(codec::decode::<StoredRecord>(&bytes).unwrap(), old);
        let new = record(vec![Some([9; 32]), None]);
        let new_bytes = codec::encode(&new).unwrap();
        // Field 10 is appended: count 2, Some + 32 raw bytes, None.
        assert_eq!(&new_bytes[..bytes.len()], &bytes[..]);
        let mut tail = vec![2, 1];
        tail.extend([9; 32]);
        tail.push(0);
        assert_eq!(&new_bytes[bytes.len()..], &tail[..]);
        assert_eq!(codec::decode::<StoredRecord>(&new_bytes).unwrap(), new);
    }

    #[test]
    fn inconsistent_blind_slots_are_rejected() {
        for bad in [vec![Some([1; 32])], vec![None, Some([1; 32])]] {
            let bytes = codec::encode(&record(bad)).unwrap();
            assert!(codec::decode::<StoredRecord>(&bytes).is_err());
        }
    }
}
