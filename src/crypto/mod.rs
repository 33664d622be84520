//! Encryption of PII: keys, envelopes, the keystore and blind indexes.
//!
//! geocrm never stores a PII field (name, phone, email, address) in plaintext. The scheme
//! is envelope encryption:
//!
//! * a **master key** (32 bytes) comes from a [`KeyProvider`]: a raw key, a key file, or a
//!   passphrase stretched with Argon2id using [`KdfParams`] stored in the keystore header;
//! * every record has its own random **data key**; each PII field is [`seal`]ed under it with
//!   XChaCha20-Poly1305, bound to the database, collection, record, field and key id;
//! * data keys are stored only **wrapped** (encrypted under a key-encryption key derived from
//!   the master key) in the [`Keystore`] file, separate from the append-only log, so erasing
//!   a record destroys its key and makes every copy of its ciphertext unreadable;
//! * equality lookups on PII use a [`BlindIndexKey`]: an HMAC of the normalized value.
//!
//! Secrets are zeroized on drop and never appear in `Debug` output or errors.

mod aead;
mod blind;
mod derive;
mod envelope;
mod kdf;
mod key;
mod keystore;
pub(crate) mod normalize;
mod sealed;

pub use blind::BlindIndexKey;
pub(crate) use envelope::seal_into;
pub use envelope::{open, seal, sealed_key_id, DataKey, FieldContext, ENVELOPE_OVERHEAD, ENVELOPE_VERSION};
pub use kdf::KdfParams;
pub use key::{KeyFile, KeyProvider, MasterKey, Passphrase, RawKey};
pub(crate) use keystore::{
    cut_at_damage as cut_keystore_at_damage, peek_db_id as keystore_db_id,
    remove_damaged_frame as remove_damaged_keystore_frame, HEADER_LEN as KEYSTORE_HEADER_LEN,
    MAGIC as KEYSTORE_MAGIC,
};
pub use keystore::{Keystore, KEYSTORE_FILE};
pub use normalize::{is_invisible, normalize_email, normalize_phone};
pub use sealed::{Pii, Sealed};
