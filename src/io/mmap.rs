//! The one home of `unsafe` in geocrm: read-only memory maps of immutable files, a cache
//! prefetch hint for reading them, and ASCII bytes read from them as a `str`.
//!
//! Only files that are published atomically and never modified afterwards (checkpoint
//! index files) are mapped. Every consumer treats the mapped bytes as untrusted input and
//! validates magic, version, lengths, offsets and checksums through checked slice access
//! before using them. The one typed view is `str_of`'s: bytes that it has just found to be
//! ASCII, as a `str`.
#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

/// A read-only mapping of a whole file. Empty files are represented without a mapping
/// (mapping zero bytes is an error on some platforms).
#[derive(Debug)]
pub(crate) struct ReadOnlyMap {
    map: Option<memmap2::Mmap>,
}

impl ReadOnlyMap {
    pub(crate) fn new(file: &File, path: &Path) -> Result<Self> {
        let len = file.metadata().map_err(|e| Error::io("stat", path, e))?.len();
        if len == 0 {
            return Ok(ReadOnlyMap { map: None });
        }
        // SAFETY: memmap2 requires that the file is not modified or truncated while mapped,
        // or reads through the map may observe changes or fault (SIGBUS). geocrm maps only
        // index files that it published atomically (temp file + fsync + rename) and never
        // writes, truncates or reuses afterwards. A replaced file is deleted once the state
        // no longer names it, possibly while a snapshot still maps it: on Unix (the only
        // platform this crate builds for) unlinking keeps the inode and its bytes until the
        // last map goes, so the mapping stays valid. The map is read-only and its contents
        // are validated as untrusted bytes before use. What geocrm cannot rule out is
        // another process writing or truncating the file in place, which breaks memmap2's
        // requirement (SIGBUS, or bytes changing under a `&[u8]`); UNSAFE.md says so.
        let map = unsafe { memmap2::MmapOptions::new().map(file) }.map_err(|e| Error::io("mmap", path, e))?;
        Ok(ReadOnlyMap { map: Some(map) })
    }
}

impl AsRef<[u8]> for ReadOnlyMap {
    fn as_ref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Asks the CPU to start loading the cache lines that hold `bytes` (the first four of them)
/// into its caches, without waiting for them: a hint, which changes no value and never faults.
#[inline]
pub(crate) fn prefetch(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        const LINE: usize = 64;
        // The first line starts at or before the first byte.
        let lead = bytes.as_ptr() as usize % LINE;
        let line_start = bytes.as_ptr().wrapping_sub(lead);
        for offset in (0..lead + bytes.len()).step_by(LINE).take(4) {
            // SAFETY: `_mm_prefetch` is declared `unsafe` as a function of the SSE target
            // feature, which every x86_64 target has, taking a raw pointer; it reads no memory
            // architecturally — a prefetch of any address never faults and changes nothing —
            // so the pointer need not even be in bounds (computed with `wrapping_add`, it is
            // never dereferenced).
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line_start.wrapping_add(offset).cast(),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// `bytes` as a `str` when they are UTF-8, as `std::str::from_utf8` tells. ASCII (what
/// ids nearly always are) is told by `is_ascii`, which tests a word at a time and is
/// inlined: for the ids of a nearest-10's answers it took 0.13 µs less than `from_utf8`,
/// which checks short strings a byte at a time behind a call.
#[inline]
pub(crate) fn str_of(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: `from_utf8_unchecked` requires valid UTF-8, and every sequence of ASCII
        // bytes (each below 0x80) is valid UTF-8: `is_ascii` has just checked each byte of
        // this slice. (Bytes of a mapped file changing between the test and the use is the
        // mapping's own caveat: see `ReadOnlyMap::new` and UNSAFE.md.)
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::str_of;

    #[test]
    fn str_of_is_from_utf8() {
        let cases: [&[u8]; 10] = [
            b"",
            b"c0001234",
            b"a longer id of ASCII, past two words",
            "caf\u{e9}-\u{1F600}".as_bytes(),
            b"\xff",
            b"abc\xe2\x82",
            b"\xc3\x28 then ASCII",
            b"nul \0 and del \x7f",
            // A high byte past the first words, where `is_ascii` tests a word at a time.
            b"twenty-four ASCII bytes.\x80",
            "twenty-four ASCII bytes.\u{e9}".as_bytes(),
        ];
        for bytes in cases {
            assert_eq!(str_of(bytes), std::str::from_utf8(bytes).ok(), "{bytes:?}");
            // And from every offset, aligned or not.
            for at in 0..bytes.len() {
                let tail = bytes.get(at..).unwrap_or_default();
                assert_eq!(str_of(tail), std::str::from_utf8(tail).ok(), "{tail:?}");
            }
        }
    }

    proptest::proptest! {
        /// On any bytes, mostly ASCII with a byte from anywhere at any place (the cases where
        /// the ASCII test could go wrong), from any offset.
        #[test]
        fn str_of_is_from_utf8_on_any_bytes(
            mut bytes in proptest::collection::vec(0u8..0x80, 0..80),
            odd in proptest::collection::vec((0usize..80, proptest::num::u8::ANY), 0..3),
            at in 0usize..80,
        ) {
            for (i, b) in odd {
                if let Some(slot) = bytes.get_mut(i) {
                    *slot = b;
                }
            }
            let tail = bytes.get(at.min(bytes.len())..).unwrap_or_default();
            proptest::prop_assert_eq!(str_of(tail), std::str::from_utf8(tail).ok());
        }
    }
}
