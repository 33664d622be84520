//! [`KdfParams`]: how a passphrase is stretched into a master key (Argon2id), stored in the
//! keystore header so the same parameters are used on every open.

use rand::rngs::OsRng;
use rand::RngCore;

use crate::codec::read4;
use crate::error::{Error, Result};

/// Algorithm tag of Argon2id (version 0x13) in the keystore header.
pub(crate) const KDF_ARGON2ID_V13: u8 = 1;

/// Encoded size of [`KdfParams`] in the keystore header: tag, salt, m, t, p.
pub(crate) const KDF_ENCODED_LEN: usize = 1 + 16 + 4 + 4 + 4;

/// Largest accepted memory cost in KiB (4 GiB): bounds what a damaged or hostile keystore
/// header can make `open` allocate.
pub const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
/// Largest accepted number of passes.
pub const MAX_T_COST: u32 = 64;
/// Largest accepted parallelism.
pub const MAX_P_COST: u32 = 64;

/// Parameters of the passphrase key-derivation function: Argon2id (v0x13) with a 16-byte
/// random salt, memory cost in KiB, number of passes and parallelism.
///
/// Stored in the keystore header. Keys that are not passphrases ([`super::RawKey`],
/// [`super::KeyFile`]) ignore them.
///
/// ```
/// use geocrm::crypto::KdfParams;
/// let kdf = KdfParams::new_random();
/// assert_eq!(kdf.m_cost_kib(), 64 * 1024);
/// let small = KdfParams::argon2id([1; 16], 64, 1, 1)?;
/// assert_eq!(small.salt(), &[1; 16]);
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    salt: [u8; 16],
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
}

impl KdfParams {
    /// Parameters for a new database: a fresh random salt, 64 MiB of memory, 3 passes,
    /// parallelism 1 (RFC 9106's memory-constrained recommendation, single lane).
    #[must_use]
    pub fn new_random() -> Self {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        KdfParams { salt, m_cost_kib: 64 * 1024, t_cost: 3, p_cost: 1 }
    }

    /// Explicit Argon2id parameters (small ones are useful in tests).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a cost is out of range: `t_cost` in 1..=64,
    /// `p_cost` in 1..=64, `m_cost_kib` from `8 × p_cost` to 4 GiB.
    pub fn argon2id(salt: [u8; 16], m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self> {
        let params = KdfParams { salt, m_cost_kib, t_cost, p_cost };
        params.check().map_err(|reason| Error::invalid_argument("kdf", reason))?;
        Ok(params)
    }

    /// The 16-byte salt.
    #[must_use]
    pub fn salt(&self) -> &[u8; 16] {
        &self.salt
    }

    /// Memory cost in KiB.
    #[must_use]
    pub fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }

    /// Number of passes.
    #[must_use]
    pub fn t_cost(&self) -> u32 {
        self.t_cost
    }

    /// Degree of parallelism (lanes).
    #[must_use]
    pub fn p_cost(&self) -> u32 {
        self.p_cost
    }

    fn check(&self) -> std::result::Result<(), String> {
        if !(1..=MAX_T_COST).contains(&self.t_cost) {
            return Err(format!("t_cost {} is outside 1..={MAX_T_COST}", self.t_cost));
        }
        if !(1..=MAX_P_COST).contains(&self.p_cost) {
            return Err(format!("p_cost {} is outside 1..={MAX_P_COST}", self.p_cost));
        }
        let min_m = 8 * self.p_cost;
        if !(min_m..=MAX_M_COST_KIB).contains(&self.m_cost_kib) {
            return Err(format!("m_cost {} KiB is outside {min_m}..={MAX_M_COST_KIB}", self.m_cost_kib));
        }
        Ok(())
    }

    /// Appends the header encoding: `tag u8 | salt [16] | m u32 LE | t u32 LE | p u32 LE`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(KDF_ARGON2ID_V13);
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.m_cost_kib.to_le_bytes());
        out.extend_from_slice(&self.t_cost.to_le_bytes());
        out.extend_from_slice(&self.p_cost.to_le_bytes());
    }

    /// Decodes [`KdfParams::encode`]'s bytes; the error says what is wrong.
    pub(crate) fn decode(bytes: &[u8; KDF_ENCODED_LEN]) -> std::result::Result<Self, String> {
        let [tag, salt @ .., _, _, _, _, _, _, _, _, _, _, _, _] = *bytes;
        if tag != KDF_ARGON2ID_V13 {
            return Err(format!("unknown KDF algorithm tag {tag}"));
        }
        let word = |at: usize| read4(bytes, at).map_or(0, u32::from_le_bytes);
        let params = KdfParams { salt, m_cost_kib: word(17), t_cost: word(21), p_cost: word(25) };
        params.check()?;
        Ok(params)
    }

    /// The `argon2` crate's parameter object (32-byte output).
    pub(crate) fn argon2(&self) -> Result<argon2::Argon2<'static>> {
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| Error::InvalidKey { reason: format!("Argon2 parameters rejected: {e}") })?;
        Ok(argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let p = KdfParams::new_random();
        let mut buf = Vec::new();
        p.encode(&mut buf);
        let arr: [u8; KDF_ENCODED_LEN] = buf.as_slice().try_into().unwrap();
        assert_eq!(KdfParams::decode(&arr).unwrap(), p);
        assert_ne!(KdfParams::new_random().salt(), p.salt(), "salts are random");
    }

    #[test]
    fn out_of_range_costs_are_rejected() {
        assert!(KdfParams::argon2id([0; 16], 8, 1, 1).is_ok());
        assert!(KdfParams::argon2id([0; 16], 7, 1, 1).is_err());
        assert!(KdfParams::argon2id([0; 16], 64, 0, 1).is_err());
        assert!(KdfParams::argon2id([0; 16], 64, 1, 0).is_err());
        assert!(KdfParams::argon2id([0; 16], 64, 1, 65).is_err());
        assert!(KdfParams::argon2id([0; 16], MAX_M_COST_KIB + 1, 1, 1).is_err());
        let mut buf = Vec::new();
        KdfParams { salt: [0; 16], m_cost_kib: u32::MAX, t_cost: 1, p_cost: 1 }.encode(&mut buf);
        let arr: [u8; KDF_ENCODED_LEN] = buf.as_slice().try_into().unwrap();
        assert!(KdfParams::decode(&arr).is_err(), "a hostile header cannot demand 4 TiB");
        buf[0] = 2;
        let arr: [u8; KDF_ENCODED_LEN] = buf.as_slice().try_into().unwrap();
        assert!(KdfParams::decode(&arr).unwrap_err().contains("tag"));
    }
}
