//! The master key and the ways to obtain it ([`KeyProvider`]).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

use super::kdf::KdfParams;
use crate::error::{Error, Result};

/// The 32-byte master key of a database. Kept on the heap (moves do not copy it),
/// zeroized on drop, never printed: `Debug` shows `MasterKey(<redacted>)`.
///
/// ```
/// use geocrm::crypto::MasterKey;
/// let key = MasterKey::from_bytes([42; 32]);
/// assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
/// ```
pub struct MasterKey(Box<[u8; 32]>);

impl MasterKey {
    /// Wraps 32 key bytes. The caller should zeroize its own copy.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut key = Box::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        MasterKey(key)
    }

    /// Refuses a key of 32 zero bytes: a placeholder (`GEOCRM_KEY` of 64 zeros), not a
    /// secret. Checked where a key is first bound to a database — a new keystore, a key
    /// rotation — so a database created with one before still opens with it.
    ///
    /// ```
    /// use geocrm::crypto::MasterKey;
    /// assert!(MasterKey::from_bytes([0; 32]).refuse_placeholder().is_err());
    /// assert!(MasterKey::from_bytes([7; 32]).refuse_placeholder().is_ok());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for 32 zero bytes.
    pub fn refuse_placeholder(&self) -> Result<()> {
        if self.0.iter().all(|&b| b == 0) {
            return Err(Error::InvalidKey {
                reason: "the key is 32 zero bytes, a placeholder rather than a secret; generate one \
                         (for example `openssl rand -hex 32`)"
                    .into(),
            });
        }
        Ok(())
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A source of the master key.
///
/// `kdf` holds the parameters stored in the keystore header; only [`Passphrase`] uses them.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// Produces the master key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when the key material is malformed, [`Error::Io`] when a key
    /// file cannot be read. Neither ever contains key material.
    fn master_key(&self, kdf: &KdfParams) -> Result<MasterKey>;
}

/// A master key given directly: 32 bytes, or 64 hexadecimal characters (`GEOCRM_KEY`).
///
/// ```
/// use geocrm::crypto::{KdfParams, KeyProvider, RawKey};
/// let key = RawKey::from_hex(&"ab".repeat(32))?;
/// let master = key.master_key(&KdfParams::new_random())?;
/// assert!(RawKey::from_hex("not a key").is_err());
/// # Ok::<(), geocrm::Error>(())
/// ```
pub struct RawKey(MasterKey);

impl RawKey {
    /// A provider of exactly these bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        RawKey(MasterKey::from_bytes(bytes))
    }

    /// Parses 64 hexadecimal characters (either case; surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] saying what is wrong (length, position of a non-hex character);
    /// the key itself is never echoed.
    pub fn from_hex(hex: &str) -> Result<Self> {
        let bytes = decode_hex(hex.trim().as_bytes()).map_err(|reason| Error::InvalidKey { reason })?;
        Ok(RawKey(MasterKey(bytes)))
    }

    /// Reads a key file once, by [`KeyFile`]'s rules: for a key that must be read before it
    /// is used, or used more than once, from a file that may be a pipe.
    ///
    /// ```
    /// use geocrm::crypto::RawKey;
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("master.key");
    /// std::fs::write(&path, format!("{}\n", "ab".repeat(32)))?;
    /// let key = RawKey::from_key_file(&path)?;
    /// std::fs::remove_file(&path)?; // read already
    /// assert_eq!(format!("{key:?}"), "RawKey(<redacted>)");
    /// assert!(RawKey::from_key_file(&path).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`KeyFile`]'s [`KeyProvider::master_key`]: [`Error::Io`] naming the file,
    /// [`Error::InvalidKey`] for contents that are not a key.
    pub fn from_key_file(path: impl Into<PathBuf>) -> Result<Self> {
        // A key file's key does not depend on the KDF parameters (only a passphrase's does).
        KeyFile::new(path).master_key(&KdfParams::new_random()).map(RawKey)
    }
}

impl Clone for RawKey {
    fn clone(&self) -> Self {
        // Straight into the new box: no copy left on the stack unwiped.
        let mut key = Box::new([0u8; 32]);
        key.copy_from_slice(self.0.bytes());
        RawKey(MasterKey(key))
    }
}

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawKey(<redacted>)")
    }
}

impl KeyProvider for RawKey {
    fn master_key(&self, _kdf: &KdfParams) -> Result<MasterKey> {
        let mut key = Box::new([0u8; 32]);
        key.copy_from_slice(self.0.bytes());
        Ok(MasterKey(key))
    }
}

/// Decodes exactly 64 hex characters into a boxed key; the error never contains input.
fn decode_hex(hex: &[u8]) -> std::result::Result<Box<[u8; 32]>, String> {
    if hex.len() != 64 {
        return Err(format!("expected 64 hexadecimal characters, found {}", hex.len()));
    }
    let mut out = Box::new([0u8; 32]);
    for (i, (byte, pair)) in out.iter_mut().zip(hex.chunks_exact(2)).enumerate() {
        let nibble = |at: usize| -> std::result::Result<u8, String> {
            let c = pair.get(at % 2).copied().unwrap_or(0);
            (c as char)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
                .ok_or_else(|| format!("character {} is not hexadecimal", at + 1))
        };
        match (nibble(2 * i), nibble(2 * i + 1)) {
            (Ok(hi), Ok(lo)) => *byte = hi << 4 | lo,
            (Err(e), _) | (_, Err(e)) => {
                out.zeroize();
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// A master key read from a file holding either exactly 32 raw bytes or 64 hexadecimal
/// characters, with spaces and line ends around them allowed.
///
/// ```no_run
/// use geocrm::crypto::{KdfParams, KeyFile, KeyProvider};
/// let master = KeyFile::new("/etc/geocrm/master.key").master_key(&KdfParams::new_random())?;
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
}

/// The longest key file: 64 hexadecimal digits with spaces and line ends around them.
const MAX_KEY_FILE_LEN: usize = 1024;

impl KeyFile {
    /// A provider reading `path` each time a key is needed.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        KeyFile { path: path.into() }
    }

    /// The key file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeyProvider for KeyFile {
    fn master_key(&self, _kdf: &KdfParams) -> Result<MasterKey> {
        // At most one byte more than the longest key file: a path to a huge file or a
        // device (`/dev/zero`) read whole ran the process out of memory.
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN + 1));
        std::fs::File::open(&self.path)
            .and_then(|f| f.take(MAX_KEY_FILE_LEN as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| Error::io("read key file", &self.path, e))?;
        if bytes.len() > MAX_KEY_FILE_LEN {
            return Err(Error::InvalidKey {
                reason: format!(
                    "key file {} must hold 32 raw bytes or 64 hexadecimal characters (spaces and line \
                     ends around them allowed; it is longer than {MAX_KEY_FILE_LEN} bytes)",
                    self.path.display()
                ),
            });
        }
        if bytes.len() == 32 {
            let mut key = Box::new([0u8; 32]);
            key.copy_from_slice(&bytes);
            return Ok(MasterKey(key));
        }
        // Spaces and line ends around the digits, as an editor or `echo` leaves them (a
        // trailing space was refused as "longer than 66 bytes"; from a hands-on review).
        let key = decode_hex(bytes.trim_ascii()).map_err(|reason| Error::InvalidKey {
            reason: format!(
                "key file {} must hold 32 raw bytes or 64 hexadecimal characters (spaces and line \
                 ends around them allowed; {} bytes found: {reason})",
                self.path.display(),
                bytes.len()
            ),
        })?;
        Ok(MasterKey(key))
    }
}

/// A master key stretched from a passphrase with Argon2id, using the salt and costs of the
/// [`KdfParams`] stored in the keystore header.
///
/// ```
/// use geocrm::crypto::{KdfParams, KeyProvider, Passphrase};
/// let kdf = KdfParams::argon2id([9; 16], 64, 1, 1)?; // tiny costs for the example only
/// let a = Passphrase::new("correct horse battery staple").master_key(&kdf)?;
/// assert_eq!(format!("{:?}", Passphrase::new("secret")), "Passphrase(<redacted>)");
/// # Ok::<(), geocrm::Error>(())
/// ```
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// A provider of this passphrase.
    #[must_use]
    pub fn new(passphrase: impl Into<String>) -> Self {
        Passphrase(Zeroizing::new(passphrase.into()))
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl KeyProvider for Passphrase {
    fn master_key(&self, kdf: &KdfParams) -> Result<MasterKey> {
        if self.0.is_empty() {
            return Err(Error::InvalidKey { reason: "the passphrase is empty".into() });
        }
        let argon = kdf.argon2()?;
        // Own the working memory so it can be wiped afterwards (the argon2 crate only
        // zeroizes it with its optional `zeroize` feature).
        // Up to 4 GiB, as the keystore header says: refused as an error, not an abort, when
        // the machine cannot give it.
        let blocks = usize::try_from(kdf.m_cost_kib()).unwrap_or(usize::MAX);
        let mut memory = Vec::new();
        memory.try_reserve_exact(blocks).map_err(|_| Error::InvalidKey {
            reason: format!("Argon2id needs {} MiB of memory, which could not be allocated", blocks / 1024),
        })?;
        memory.resize(blocks, argon2::Block::default());
        let mut key = Box::new([0u8; 32]);
        let outcome = argon.hash_password_into_with_memory(
            self.0.as_bytes(),
            kdf.salt(),
            key.as_mut_slice(),
            &mut memory,
        );
        for block in &mut memory {
            block.as_mut().zeroize();
        }
        match outcome {
            Ok(()) => Ok(MasterKey(key)),
            Err(e) => Err(Error::InvalidKey { reason: format!("Argon2id failed: {e}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_kdf(salt: u8) -> KdfParams {
        KdfParams::argon2id([salt; 16], 64, 1, 1).unwrap()
    }

    #[test]
    fn a_key_file_is_read_only_as_far_as_a_key_can_go() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        for (name, bytes, good) in [
            ("raw", vec![7u8; 32], true),
            ("hex", format!("{hex}\r\n").into_bytes(), true),
            // Spaces and line ends around the digits (a trailing space was refused).
            ("spaced", format!(" \t{hex}  \r\n\n").into_bytes(), true),
            ("long", format!("{hex}{}", " ".repeat(1024)).into_bytes(), false),
            ("huge", vec![b'0'; 1 << 20], false),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            match KeyFile::new(&path).master_key(&small_kdf(0)) {
                Ok(_) => assert!(good, "{name}"),
                Err(e) => {
                    assert!(!good, "{name}: {e}");
                    assert!(e.to_string().contains("longer than 1024 bytes"), "{name}: {e}");
                }
            }
        }
        // A device that never ends is refused, not read until memory runs out.
        if std::path::Path::new("/dev/zero").exists() {
            assert!(KeyFile::new("/dev/zero").master_key(&small_kdf(0)).is_err());
        }
    }

    #[test]
    fn hex_keys_parse_and_errors_never_echo_input() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let k = RawKey::from_hex(&format!("  {hex}\n")).unwrap().master_key(&small_kdf(0)).unwrap();
        assert_eq!(k.bytes()[..4], [0x00, 0x11, 0x22, 0x33]);
        assert_eq!(k.bytes()[31], 0xff);
        let short = RawKey::from_hex("deadbeef").unwrap_err().to_string();
        assert!(short.contains("64") && short.contains('8') && !short.contains("deadbeef"), "{short}");
        let bad = format!("{}zz{}", &hex[..10], &hex[12..]);
        let msg = RawKey::from_hex(&bad).unwrap_err().to_string();
        assert!(msg.contains("character 11") && !msg.contains(&hex[..10]), "{msg}");
        assert!(RawKey::from_hex(&"é".repeat(32)).is_err());
    }

    #[test]
    fn key_files_raw_and_hex() {
        let dir = tempfile::tempdir().unwrap();
        let kdf = small_kdf(0);
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [5u8; 32]).unwrap();
        assert_eq!(KeyFile::new(&raw).master_key(&kdf).unwrap().bytes(), &[5; 32]);
        for suffix in ["", "\n", "\r\n", " ", "\n\n"] {
            let hex = dir.path().join("hex");
            std::fs::write(&hex, format!("{}{suffix}", "05".repeat(32))).unwrap();
            assert_eq!(KeyFile::new(&hex).master_key(&kdf).unwrap().bytes(), &[5; 32]);
        }
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "05".repeat(31)).unwrap();
        let msg = KeyFile::new(&bad).master_key(&kdf).unwrap_err().to_string();
        assert!(msg.contains("62 bytes") && !msg.contains("0505"), "{msg}");
        let missing = KeyFile::new(dir.path().join("missing")).master_key(&kdf).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }));
    }

    #[test]
    fn passphrase_depends_on_passphrase_and_salt() {
        let a = Passphrase::new("pw one").master_key(&small_kdf(1)).unwrap();
        let a2 = Passphrase::new("pw one").master_key(&small_kdf(1)).unwrap();
        let b = Passphrase::new("pw two").master_key(&small_kdf(1)).unwrap();
        let c = Passphrase::new("pw one").master_key(&small_kdf(2)).unwrap();
        assert_eq!(a.bytes(), a2.bytes());
        assert_ne!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
        assert!(matches!(Passphrase::new("").master_key(&small_kdf(1)), Err(Error::InvalidKey { .. })));
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::from_bytes([0xab; 32]);
        for s in [
            format!("{key:?}"),
            format!("{:?}", RawKey::new([0xab; 32])),
            format!("{:?}", Passphrase::new("hunter2")),
        ] {
            assert!(
                s.contains("<redacted>") && !s.contains("171") && !s.contains("ab") && !s.contains("hunter2"),
                "{s}"
            );
        }
    }
}
