//! Normalization and validation of e-mail addresses and phone numbers before blind
//! indexing. Errors name the field, never the value.

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidRecord { id: String::new(), field: field.to_owned(), reason: reason.to_owned() }
}

/// `text` in Unicode normalization form C (composed: `e` + U+0301 is `é`), or `None` when
/// it is ASCII, which every form leaves as it is.
fn nfc(text: &str) -> Option<Zeroizing<String>> {
    (!text.is_ascii()).then(|| Zeroizing::new(text.nfc().collect()))
}

/// `text` in Unicode normalization form KC (composed, and compatibility characters replaced:
/// full-width `Ａ` is `A`, `ﬁ` is `fi`), or `None` when it is ASCII.
pub(crate) fn nfkc(text: &str) -> Option<Zeroizing<String>> {
    (!text.is_ascii()).then(|| Zeroizing::new(text.nfkc().collect()))
}

/// Trims and lowercases an e-mail address in Unicode normalization form C (so an address
/// typed with a combining accent matches the same address typed precomposed, as mail
/// systems that take non-ASCII addresses compare them) and checks its basic shape: exactly one `@`; a
/// local part of 1–64 bytes (dots anywhere: some carriers' addresses have two in a row); a
/// domain with a dot, whose labels are letters, digits and inner `-` (ASCII labels at most
/// 63 bytes); no whitespace, control or invisible characters (a zero-width space made a
/// look-alike address that `find` missed); at most 254 bytes.
///
/// ```
/// use geocrm::crypto::normalize_email;
/// assert_eq!(normalize_email("  Ada.Lovelace@Example.ORG\n")?, "ada.lovelace@example.org");
/// assert!(normalize_email("ada@localhost").is_err());
/// # Ok::<(), geocrm::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidRecord`] with field `"email"` and an empty id for the caller to fill in.
pub fn normalize_email(raw: &str) -> Result<String> {
    let raw = raw.trim();
    let email = match nfc(raw) {
        None => raw.to_ascii_lowercase(),
        // Lowercase text may compose further (`J` + caron is `ǰ`): composed again after.
        Some(composed) => {
            let lower = Zeroizing::new(composed.to_lowercase());
            nfc(&lower).map_or_else(|| lower.to_string(), |mut c| std::mem::take(&mut *c))
        }
    };
    let err = |reason| Err(invalid("email", reason));
    if email.is_empty() {
        return err("e-mail address is empty");
    }
    if email.len() > 254 {
        return err("e-mail address is longer than 254 bytes");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control() || is_invisible(c)) {
        return err("e-mail address contains whitespace, control or invisible characters");
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return err("e-mail address must contain exactly one '@'");
    };
    if local.is_empty() {
        return err("e-mail address has an empty local part");
    }
    if local.len() > 64 {
        return err("e-mail local part is longer than 64 bytes");
    }
    // RFC 5322's specials, which an address may hold only inside a quoted local part (not
    // taken here): `a(comment)@b.com`, `mailto:a@b.com`, `a<b@c.com` and `a\b@c.com` were
    // stored as valid and then never matched by `find` (from a hands-on review). Dots as
    // some carriers allow them (`taro..yamada.@docomo.ne.jp`) stay.
    if local.chars().any(|c| matches!(c, '(' | ')' | '<' | '>' | '[' | ']' | ':' | ';' | ',' | '\\' | '"')) {
        return err(
            "e-mail local part holds a character an address takes only in quotes: ( ) < > [ ] : ; , \\ \"",
        );
    }
    if !domain.contains('.') {
        return err("e-mail domain must contain a dot");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return err("e-mail domain has an empty label");
        }
        // (A non-ASCII label's limit is on its ASCII form, `xn--…`, not checked here.)
        if label.is_ascii() && label.len() > 63 {
            return err("e-mail domain has a label longer than 63 bytes");
        }
        if label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
        {
            return err("e-mail domain labels may hold only letters, digits and inner '-'");
        }
    }
    // A top-level domain is never all digits (`a@b.123`; an IP address literal is written in
    // brackets, not taken here).
    if domain.rsplit('.').next().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return err("e-mail domain ends in a label of digits only, which no top-level domain is");
    }
    Ok(email)
}

/// Characters that render as nothing, or change the look of the one before without being
/// seen: the soft hyphen, the combining grapheme joiner, Hangul fillers, Mongolian and
/// other variation selectors, zero-width spaces and joiners, direction marks, embeddings and
/// isolates, word joiners and invisible operators, the byte-order mark, tag characters.
/// Actor names and normalized e-mail addresses refuse them; the CLI escapes them in text
/// output.
///
/// ```
/// use geocrm::crypto::is_invisible;
/// assert!(is_invisible('\u{202e}') && is_invisible('\u{200b}'));
/// assert!(!is_invisible('é') && !is_invisible('\u{301}'));
/// ```
#[must_use]
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// `text` with its full-width forms (U+FF01–U+FF5E: digits, `＋`, brackets, as Japanese and
/// Chinese input methods type them) and the ideographic space replaced by their ASCII
/// counterparts, or `None` when there are none. Only these: full NFKC would also turn a
/// footnote `¹` or a circled `⑧` copied with a number into digits of it.
pub(crate) fn ascii_from_full_width(text: &str) -> Option<String> {
    let full_width = |c: char| matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}');
    text.chars().any(full_width).then(|| {
        text.chars()
            .map(|c| match c {
                '\u{3000}' => ' ',
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
                c => c,
            })
            .collect()
    })
}

/// Normalizes a phone number to E.164, with full-width digits, `＋` and brackets (as
/// Japanese and Chinese input methods type them) read as the ASCII ones: drops a national trunk prefix written `(0)` after
/// the country code (`+44 (0) 20 …`; not for +39, +378 and +379, where the 0 is dialled
/// from abroad too), removes whitespace, `-` (and the other dashes, U+2010–U+2015 and U+2212), `.`, `(` and `)`; the rest
/// must be `+` followed by 8 to 15 digits, the first non-zero. A number ending in a `.` and
/// zeros (`+33142685300.0`, as a spreadsheet holding it as a decimal writes it) is refused.
///
/// ```
/// use geocrm::crypto::normalize_phone;
/// assert_eq!(normalize_phone("+44 (20) 7946-0958")?, "+442079460958");
/// assert_eq!(normalize_phone("+44 (0) 20 7946 0958")?, "+442079460958");
/// assert!(normalize_phone("020 7946 0958").is_err()); // no country code
/// # Ok::<(), geocrm::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidRecord`] with field `"phone"` and an empty id for the caller to fill in.
pub fn normalize_phone(raw: &str) -> Result<String> {
    let ascii = ascii_from_full_width(raw).map(Zeroizing::new);
    let raw = ascii.as_ref().map_or(raw, |c| c.as_str());
    // `+33142685300.0`: a number a spreadsheet held as a decimal. The `.` as a separator
    // made it another number, with one digit more (from a hands-on review).
    if let Some((number, zeros)) = raw.trim().rsplit_once('.') {
        let digits = number.strip_prefix('+').unwrap_or(number);
        if !zeros.is_empty()
            && zeros.bytes().all(|b| b == b'0')
            && digits.len() >= 8
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid(
                "phone",
                "phone number ends in a '.' and zeros, as a number a spreadsheet held as a decimal: format the column as a string in the spreadsheet",
            ));
        }
    }
    // Dashes as text copied from a web page or a word processor has them: hyphens, en and
    // em dashes, the minus sign.
    let kept = |c: &char| !(c.is_whitespace() || is_dash(*c) || matches!(c, '.' | '(' | ')'));
    // `(0)`, spaces inside allowed: the trunk prefix dialled only from inside the country.
    let mut phone = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(open) = rest.find('(') {
        let (head, tail) = rest.split_at(open);
        phone.extend(head.chars().filter(kept));
        let inside =
            tail.get(1..).and_then(|t| t.find(')').map(|close| (t.get(..close), t.get(close + 1..))));
        match inside {
            // Only right after the country code — the one group of 1 to 3 digits written so
            // far —; elsewhere `(0)` is a digit of the number (dropping it lost a digit, and
            // matched another number).
            Some((Some(group), Some(after)))
                if group.trim() == "0"
                    && (2..=4).contains(&phone.len())
                    && digit_groups(raw.get(..raw.len() - tail.len()).unwrap_or(raw)) == 1 =>
            {
                // Italy, San Marino and the Vatican dial the 0 from abroad too.
                if matches!(phone.as_str(), "+39" | "+378" | "+379") {
                    phone.push('0');
                }
                rest = after;
            }
            _ => rest = tail.get(1..).unwrap_or(""),
        }
    }
    phone.extend(rest.chars().filter(kept));
    let err = |reason| Err(invalid("phone", reason));
    let Some(digits) = phone.strip_prefix('+') else {
        if phone.starts_with("00") {
            return err("phone number must start with '+' and a country code (E.164): write its 00 as '+'");
        }
        return err("phone number must start with '+' and a country code (E.164)");
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return err("phone number may contain only digits after '+'");
    }
    if !(8..=15).contains(&digits.len()) {
        return err("phone number must have 8 to 15 digits after '+'");
    }
    if digits.starts_with('0') {
        return err("country code cannot start with 0");
    }
    Ok(phone)
}

/// A dash as a phone number may be written with: hyphens, en and em dashes, the minus sign.
pub(crate) fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

/// How many runs of ASCII digits `text` holds.
fn digit_groups(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit()).filter(|g| !g.is_empty()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for (raw, want) in [
            ("a@b.co", "a@b.co"),
            (" Ada@Example.COM\t", "ada@example.com"),
            ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
            ("ÉMILE@exämple.fr", "émile@exämple.fr"),
            ("o'neil_x-y+z@mail-1.example.co", "o'neil_x-y+z@mail-1.example.co"),
            // Dots as some carriers allow them, and a long non-ASCII label.
            ("taro..yamada.@docomo.ne.jp", "taro..yamada.@docomo.ne.jp"),
            (&format!("a@{}.jp", "日".repeat(22)), &format!("a@{}.jp", "日".repeat(22))),
            (&format!("{}@b.co", "a".repeat(64)), &format!("{}@b.co", "a".repeat(64))),
            // Composed (NFC): a combining accent is the precomposed letter, in the local
            // part and in the domain; lowercasing `İ` decomposes it, composed again after.
            ("E\u{301}MILE@exa\u{308}mple.fr", "émile@exämple.fr"),
            ("\u{130}@b.co", "i\u{307}@b.co"),
            // `J` + caron has no precomposed capital, its lowercase has: `ǰ`.
            ("J\u{30c}@b.co", "\u{1f0}@b.co"),
        ] {
            assert_eq!(normalize_email(raw).unwrap(), want, "{raw}");
        }
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "ada@",
            "ada@example",
            "a@@b.co",
            "a@b@c.co",
            "a b@c.co",
            "a@b .co",
            "a@.co",
            "a@b.",
            "a@b..co",
            "a\u{0}@b.co",
            // Look-alikes and shapes no mail server takes.
            "secret@x.com\u{200b}",
            "se\u{200d}cret@x.com",
            "\u{feff}a@b.co",
            "secret\u{fe0f}@x.com",
            "secret\u{e0020}@x.com",
            "se\u{3164}cret@x.com",
            &format!("{}@b.co", "a".repeat(65)),
            "a@-dom.com",
            "a@dom-.com",
            "a@x_y.com",
            &format!("a@{}.com", "d".repeat(64)),
            // RFC 5322 specials outside quotes, and an all-digit top-level domain.
            "a(comment)@b.com",
            "mailto:a@b.com",
            "a<b@c.com",
            "a;b@c.com",
            "a\\b@c.com",
            "a,b@c.com",
            "\"a\"@b.com",
            "a@b.123",
            "a@10.0.0.1",
        ] {
            let e = normalize_email(bad).unwrap_err();
            match &e {
                Error::InvalidRecord { id, field, reason } => {
                    assert!(id.is_empty() && field == "email");
                    assert!(bad.trim().is_empty() || !reason.contains(bad.trim()), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn phones() {
        for (raw, want) in [
            ("+14155552671", "+14155552671"),
            ("+1 (415) 555-2671", "+14155552671"),
            (" +44 20.7946.0958 ", "+442079460958"),
            ("+12345678", "+12345678"),
            // The trunk prefix `(0)` goes (it was kept: a different number).
            ("+44 (0) 20 7946 0958", "+442079460958"),
            ("+44(0)2079460958", "+442079460958"),
            ("+49 ( 0 ) 30 123456", "+4930123456"),
            ("+39 (0)6 1234 5678", "+390612345678"),
            // Other groups in parentheses keep their digits.
            ("+44 (020) 7946 0958", "+4402079460958"),
            ("+1 (0) (415) 555-2671", "+14155552671"),
            // Full-width digits, plus and brackets and an ideographic space.
            ("＋８１　９０－１２３４－５６７８", "+819012345678"),
            // Dashes other than `-`: en dash, minus sign, non-breaking hyphen.
            ("+1 415–555−2671", "+14155552671"),
            ("+1 415\u{2011}555\u{2011}2671", "+14155552671"),
            ("＋４４（０）２０７９４６０９５８", "+442079460958"),
            // Elsewhere it is a digit of the number (from the privacy review).
            ("+1 415 555 (0) 267", "+14155550267"),
            ("+44 20 (0) 7946 095", "+442007946095"),
            // A code of 1 or 2 digits, then a short group, then `(0)`: a digit too.
            ("+1 23 (0) 456 7890", "+12304567890"),
            ("+44 2 (0) 0794 6095", "+442007946095"),
            ("+7 12 (0) 345 6789", "+71203456789"),
            ("(+44) (0) 20 7946 0958", "+442079460958"),
            ("+123456789012345", "+123456789012345"),
        ] {
            assert_eq!(normalize_phone(raw).unwrap(), want, "{raw}");
        }
        for bad in [
            // Not digits of the number: a footnote mark, a circled digit, mathematical digits
            // (only full-width forms are read as ASCII, not all of NFKC).
            "+1 415 555 2671\u{b9}",
            "+44 20 7946 095\u{2467}",
            "+\u{1d7d2}\u{1d7d2} 20 7946 0958",
            "",
            "14155552671",
            "+1234567",
            "+1234567890123456",
            "+0441234567",
            "+1415555267a",
            "++14155552671",
            "+1 415 555 2671 ext 3",
            "+",
            "+١٢٣٤٥٦٧٨٩",
            "0044 20 7946 0958",
            // A number a spreadsheet held as a decimal: not one digit more.
            "+33142685300.0",
            "+14155552671.00",
        ] {
            let e = normalize_phone(bad).unwrap_err();
            let Error::InvalidRecord { id, field, reason } = &e else { panic!("{e:?}") };
            assert!(id.is_empty() && field == "phone");
            for needle in ["4155", "2345", "7946", "ext"] {
                assert!(!reason.contains(needle), "{reason}");
            }
        }
        let reason = |raw| normalize_phone(raw).unwrap_err().to_string();
        assert!(reason("+33142685300.0").contains("as a number a spreadsheet held as a decimal"));
        assert!(reason("0044 20 7946 0958").ends_with("write its 00 as '+'"));
        // Dots as separators stay separators.
        assert_eq!(normalize_phone("+1.415.555.2671").unwrap(), "+14155552671");
        assert_eq!(normalize_phone("+33 1 42 68 53 00").unwrap(), "+33142685300");
    }
}
