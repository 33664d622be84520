//! [`Pii`] (a plaintext PII value in memory) and [`Sealed`] (its ciphertext).

use std::fmt;

use zeroize::Zeroizing;

/// A plaintext PII value (name, phone, email, address) held in memory.
///
/// The string is zeroized on drop and never printed: `Debug` shows `Pii(<redacted>)` and
/// there is no `Display`. Read it with [`Pii::expose`], deliberately.
///
/// ```
/// use geocrm::crypto::Pii;
/// let name = Pii::new("Ada Lovelace");
/// assert_eq!(name.expose(), "Ada Lovelace");
/// assert_eq!(format!("{name:?}"), "Pii(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Pii(Zeroizing<String>);

impl Pii {
    /// Takes ownership of a plaintext value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Pii(Zeroizing::new(value.into()))
    }

    /// The plaintext. Every call site is a place where PII leaves its wrapper.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pii {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pii(<redacted>)")
    }
}

/// The sealed (encrypted and authenticated) bytes of one PII field: an envelope as produced
/// by [`super::seal`]. `Debug` shows only the length: `Sealed(<N bytes>)`.
///
/// ```
/// use geocrm::crypto::Sealed;
/// let s = Sealed::from_bytes(vec![1, 2, 3]);
/// assert_eq!(s.as_bytes(), &[1, 2, 3]);
/// assert_eq!(format!("{s:?}"), "Sealed(<3 bytes>)");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sealed(Vec<u8>);

impl Sealed {
    /// Wraps stored envelope bytes (validated only when opened).
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Sealed(bytes)
    }

    /// The envelope bytes, for storage.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The envelope bytes, by value.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Length of the envelope in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the envelope is empty (never true for a valid one).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed(<{} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_contents() {
        let pii = Pii::new("jane.doe@example.com");
        let s = format!("{pii:?} {:#?}", pii);
        assert!(!s.contains("jane") && !s.contains("example"), "{s}");
        let sealed = Sealed::from_bytes(b"secret-ish bytes".to_vec());
        let s = format!("{sealed:?} {:#?}", sealed);
        assert!(!s.contains("secret") && !s.contains("115"), "{s}");
        assert_eq!(s, "Sealed(<16 bytes>) Sealed(<16 bytes>)");
    }
}
