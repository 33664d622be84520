//! Payment card numbers in cells: a column of them, or one written in a note, would be stored
//! in plaintext (from a hands-on review: `4111111111111111` in a `notes` column was).
//!
//! A card number is 15 digits starting `34` or `37` (American Express) or 16 starting `4`
//! (Visa), `51`–`55` or `2221`–`2720` (Mastercard), `6011`, `644`–`649` or `65` (Discover),
//! whose Luhn check digit is right. One in ten 16-digit codes of other kinds starting so
//! passes the check by chance, so what counts differs by how it is written:
//! - written in groups (`4111 1111 1111 1111`, `4111-1111-1111-1111`, Amex's
//!   `3782 822463 10005`), as cards print them and as no order or tracking number is: each
//!   one counts;
//! - as one run of digits: a column counts when nearly all ([`BARE_SHARE`]) of its cells
//!   that hold such a run hold a card number — a column of real ones passes the check
//!   every time, one of other 15- and 16-digit codes about one time in ten.

/// A run of digits found in a cell, its groups' separators dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    /// A card number written in groups.
    GroupedCard,
    /// A card number as one run of digits.
    BareCard,
    /// 15 or 16 digits in one run that are no card number.
    BareOther,
}

/// The share of a column's cells holding a run of 15 or 16 digits that must be card numbers
/// for the column to count as one of card numbers.
pub(super) const BARE_SHARE: f64 = 0.9;

/// What the cell holds that matters here: a grouped card number if any, else whether its
/// runs of 15 or 16 digits are card numbers (a card number if any is), else `None`.
pub(super) fn card_run(cell: &str) -> Option<Run> {
    let bytes = cell.as_bytes();
    // Most cells have too few digits to hold one (one pass over the bytes).
    if bytes.iter().filter(|b| b.is_ascii_digit()).count() < 15 {
        return None;
    }
    let mut found = None;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        // A run: digit groups joined by one space or dash each.
        let mut digits: Vec<u8> = Vec::with_capacity(19);
        let mut groups: Vec<usize> = vec![0];
        let mut j = i;
        while let Some(&b) = bytes.get(j) {
            if b.is_ascii_digit() {
                digits.push(b - b'0');
                if let Some(g) = groups.last_mut() {
                    *g += 1;
                }
                j += 1;
            } else if matches!(b, b' ' | b'-') && bytes.get(j + 1).is_some_and(u8::is_ascii_digit) {
                groups.push(0);
                j += 1;
            } else {
                break;
            }
        }
        // (A run glued to letters or punctuation, `A4111…` or `4111…,5`, is read all the same.)
        let card = is_card_number(&digits);
        let grouped = matches!(groups.as_slice(), [4, 4, 4, 4] | [4, 6, 5]);
        let run = match (card, grouped) {
            (true, true) => return Some(Run::GroupedCard),
            (true, false) if groups.len() == 1 => Some(Run::BareCard),
            (false, false) if groups.len() == 1 && matches!(digits.len(), 15 | 16) => Some(Run::BareOther),
            _ => None,
        };
        found = match (found, run) {
            (Some(Run::BareCard), _) | (_, None) => found,
            (_, run) => run,
        };
        i = j;
    }
    found
}

/// Whether `digits` (0–9 each) are a card number: its length and first digits are a card
/// network's, and its Luhn check digit is right.
fn is_card_number(digits: &[u8]) -> bool {
    let prefix = |n: usize| digits.iter().take(n).fold(0u32, |acc, &d| acc * 10 + u32::from(d));
    let network = match digits.len() {
        15 => matches!(prefix(2), 34 | 37),
        16 => {
            prefix(1) == 4
                || (51..=55).contains(&prefix(2))
                || (2221..=2720).contains(&prefix(4))
                || prefix(4) == 6011
                || (644..=649).contains(&prefix(3))
                || prefix(2) == 65
        }
        _ => false,
    };
    network && luhn(digits)
}

/// The Luhn check: from the right, every second digit doubled (less 9 above 9), the sum a
/// multiple of 10.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 {
                    twice - 9
                } else {
                    twice
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_found_as_written() {
        // The networks' test numbers.
        for grouped in
            ["4111 1111 1111 1111", "5555-5555-5555-4444", "3782 822463 10005", "6011 1111 1111 1117"]
        {
            assert_eq!(card_run(grouped), Some(Run::GroupedCard), "{grouped}");
            assert_eq!(
                card_run(&format!("paid with {grouped}, thanks")),
                Some(Run::GroupedCard),
                "{grouped}"
            );
            let bare = grouped.replace([' ', '-'], "");
            assert_eq!(card_run(&bare), Some(Run::BareCard), "{bare}");
            assert_eq!(card_run(&format!("card:{bare}.")), Some(Run::BareCard), "{bare}");
        }
        for bare in ["2223003122003222", "6500000000000002", "4012888888881881", "371449635398431"] {
            assert_eq!(card_run(bare), Some(Run::BareCard), "{bare}");
        }
        // A grouped one wins over a bare code in the same cell.
        assert_eq!(card_run("order 1234567890123456, card 4111 1111 1111 1111"), Some(Run::GroupedCard));
    }

    #[test]
    fn other_digits_are_no_card_numbers() {
        // A wrong check digit, another network's length or prefix, too few or too many digits.
        assert_eq!(card_run("4111 1111 1111 1112"), None);
        assert_eq!(card_run("4111111111111112"), Some(Run::BareOther));
        assert_eq!(card_run("9111111111111111"), Some(Run::BareOther));
        assert_eq!(card_run("411111111111111"), Some(Run::BareOther), "15 digits starting with 4");
        assert_eq!(card_run("41111111111111111"), None, "17 digits");
        assert_eq!(card_run("4111 1111 1111"), None);
        // Groups other than a card's, and phone numbers, EANs, dates, amounts.
        assert_eq!(card_run("41 11 11 11 11 11 11 11"), None);
        assert_eq!(card_run("+44 20 7946 0958"), None);
        assert_eq!(card_run("4006381333931"), None, "an EAN-13");
        assert_eq!(card_run("2026-12-07 10:15:00 1,234,567.89"), None);
        assert_eq!(card_run(""), None);
        // The digits of a longer run are not read as a card number inside it.
        assert_eq!(card_run("94111111111111111"), None);
    }

    #[test]
    fn luhn_matches_the_definition() {
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
        assert!(luhn(&[0]));
    }
}
