//! Payment card numbers in cells: a column of them, or one written in a note, would be stored
//! in plaintext (from a hands-on review: `4111111111111111` in a `notes` column was).
//!
//! A card number here is 15 digits starting `34` or `37` (American Express) or 16 starting
//! `4` (Visa), `51`–`55` or `2221`–`2720` (Mastercard), `2200`–`2204` (Mir), `3528`–`3589`
//! (JCB), `62` (UnionPay), `6011`, `644`–`649` or `65` (Discover), whose Luhn check digit is
//! right; 14-digit Diners and 17- to 19-digit numbers are not looked for. A cell is read as it
//! shows: full-width digits as ASCII ones, invisible characters dropped, any space as a space.
//!
//! Written as cards print them — in groups of 4-4-4-4 or Amex's 4-6-5, one separator (a
//! space or a dash) throughout, beside at most one more card or 4-digit number (a longer
//! list of 4-digit groups is a list of codes, such as postcodes) — or as one run of 15 or 16
//! digits, inside any text (`paid 4111 1111 1111 1111 12/25`, `card 4111111111111111 cvv
//! 123`). One in ten such codes of
//! other kinds (vouchers, order numbers) passes the check by chance, so a column counts as
//! one of card numbers when nearly all ([`SHARE`]) of its cells holding such a group or run
//! hold a card number: one card in a column of notes does, a card-like code among hundreds
//! of others does not.

/// What a cell holds that matters here, as flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CardRuns {
    /// A card number written in groups.
    pub grouped_card: bool,
    /// Digits in a card's groups that are no card number.
    pub grouped_other: bool,
    /// A card number as one run of digits.
    pub bare_card: bool,
    /// A run of 15 or 16 digits that is no card number.
    pub bare_other: bool,
}

/// The share of a column's cells holding digits written as a card's (grouped, or as one run)
/// that must hold a card number written so for the column to count as one of card numbers.
pub(super) const SHARE: f64 = 0.9;

/// The card-like groups and runs of digits in `cell`.
pub(super) fn card_runs(cell: &str) -> CardRuns {
    let mut found = CardRuns::default();
    // Most cells have too few digits to hold one (counted up to 15).
    let digits =
        |s: &str| s.chars().filter(|c| c.is_ascii_digit() || ('０'..='９').contains(c)).take(15).count();
    if digits(cell) < 15 {
        return found;
    }
    let shown;
    // (A tab or a line break between groups reads as a space.)
    let plain = cell.is_ascii() && !cell.bytes().any(|b| b.is_ascii_whitespace() && b != b' ');
    let text = if plain {
        cell
    } else {
        shown = as_shown(cell);
        shown.as_str()
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        // A run: groups of digits, each after one space or dash; `(start, len, separator)`.
        let mut groups: Vec<(usize, usize, u8)> = Vec::new();
        let mut j = i;
        let mut separator = 0u8;
        loop {
            let start = j;
            while bytes.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            groups.push((start, j - start, separator));
            match (bytes.get(j), bytes.get(j + 1)) {
                (Some(&s @ (b' ' | b'-')), Some(d)) if d.is_ascii_digit() => {
                    separator = s;
                    j += 1;
                }
                _ => break,
            }
        }
        let digits_of = |from: usize, to: usize| -> Option<Vec<u8>> {
            let (first, last) = (groups.get(from)?, groups.get(to)?);
            let span = bytes.get(first.0..last.0 + last.1)?;
            Some(span.iter().filter(|b| b.is_ascii_digit()).map(|b| b - b'0').collect())
        };
        let card = |from: usize, to: usize| digits_of(from, to).is_some_and(|d| is_card_number(&d));
        let grouped = |found: &mut CardRuns, card: bool| {
            if card {
                found.grouped_card = true;
            } else {
                found.grouped_other = true;
            }
        };
        let mut k = 0;
        while let Some(&(_, len, _)) = groups.get(k) {
            // Amex's 4-6-5, one separator throughout.
            if let Some([a, b, c]) = groups.get(k..k + 3) {
                if (a.1, b.1, c.1) == (4, 6, 5) && b.2 == c.2 {
                    grouped(&mut found, card(k, k + 2));
                }
            }
            // A stretch of 4-digit groups, one separator throughout: one card (4 groups), a
            // card beside a 4-digit number or two cards (5 to 8: the first and the last 4),
            // or, longer, a list of codes (postcodes: every window of a list of 4xxx ones
            // would pass a card's check one time in ten; from the diff review).
            let stretch = groups
                .iter()
                .skip(k)
                .enumerate()
                .take_while(|&(n, g)| g.1 == 4 && (n < 2 || groups.get(k + 1).is_some_and(|s| s.2 == g.2)))
                .count();
            if len == 4 && stretch >= 4 {
                if stretch <= 8 {
                    grouped(&mut found, card(k, k + 3));
                    grouped(&mut found, card(k + stretch - 4, k + stretch - 1));
                } else {
                    found.grouped_other = true;
                }
                k += stretch;
                continue;
            }
            // One group of 15 or 16 digits.
            if matches!(len, 15 | 16) {
                if card(k, k) {
                    found.bare_card = true;
                } else {
                    found.bare_other = true;
                }
            }
            k += 1;
        }
        i = j.max(i + 1);
    }
    found
}

/// `cell` as it reads on screen: full-width digits, dashes and spaces as ASCII ones, any
/// other space as a space, invisible characters dropped.
fn as_shown(cell: &str) -> String {
    cell.chars()
        .filter(|&c| !crate::crypto::is_invisible(c))
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (u32::from(c) - u32::from('０')) as u8),
            '－' => '-',
            c if c.is_whitespace() => ' ',
            c if crate::crypto::normalize::is_dash(c) => '-',
            c => c,
        })
        .collect()
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
                || (2200..=2204).contains(&prefix(4))
                || (3528..=3589).contains(&prefix(4))
                || prefix(2) == 62
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

    const GROUPED: CardRuns =
        CardRuns { grouped_card: true, grouped_other: false, bare_card: false, bare_other: false };
    const BARE: CardRuns =
        CardRuns { grouped_card: false, grouped_other: false, bare_card: true, bare_other: false };
    const NONE: CardRuns =
        CardRuns { grouped_card: false, grouped_other: false, bare_card: false, bare_other: false };

    #[test]
    fn card_numbers_are_found_as_written() {
        // The networks' test numbers.
        for grouped in
            ["4111 1111 1111 1111", "5555-5555-5555-4444", "3782 822463 10005", "6011 1111 1111 1117"]
        {
            assert_eq!(card_runs(grouped), GROUPED, "{grouped}");
            assert_eq!(card_runs(&format!("paid with {grouped}, thanks")), GROUPED, "{grouped}");
            let bare = grouped.replace([' ', '-'], "");
            assert_eq!(card_runs(&bare), BARE, "{bare}");
            assert_eq!(card_runs(&format!("card:{bare}.")), BARE, "{bare}");
        }
        for bare in [
            "2223003122003222",
            "6500000000000002",
            "4012888888881881",
            "371449635398431",
            "3530111333300000",
        ] {
            assert_eq!(card_runs(bare), BARE, "{bare}");
        }
        // Beside other digits, joined by a space or a dash: with its expiry or CVV, after a
        // date or a quantity, two cards (they were missed: from the diff review).
        for text in [
            "4111 1111 1111 1111 12/25",
            "qty 1 4111 1111 1111 1111",
            "2024-01-05 4111-1111-1111-1111 05",
            "4111 1111 1111 1111 5555 5555 5555 4444",
        ] {
            assert!(card_runs(text).grouped_card, "{text}");
        }
        for text in
            ["4111111111111111 123", "2024-01-05 4111111111111111", "4111111111111111 5555555555554444"]
        {
            assert!(card_runs(text).bare_card, "{text}");
        }
        // After many short numbers (missed after 29 of them: from the diff review).
        let numbers: Vec<String> = (1..=40).map(|n| n.to_string()).collect();
        assert!(card_runs(&format!("{} 4111 1111 1111 1111", numbers.join(" "))).grouped_card);
        // As shown: full-width digits and dashes, no-break spaces, tabs, an invisible character.
        assert_eq!(card_runs("４１１１ １１１１ １１１１ １１１１"), GROUPED);
        assert_eq!(card_runs("４１１１－１１１１－１１１１－１１１１"), GROUPED);
        assert_eq!(card_runs("4111\t1111\t1111\t1111"), GROUPED);
        assert_eq!(card_runs("4111\u{a0}1111\u{a0}1111\u{a0}1111"), GROUPED);
        assert_eq!(card_runs("4111\u{200b}111111111111"), BARE);
        // A grouped one and a bare code in the same cell.
        let both = card_runs("order 1234567890123456, card 4111 1111 1111 1111");
        assert!(both.grouped_card && both.bare_other && !both.bare_card, "{both:?}");
    }

    #[test]
    fn other_digits_are_no_card_numbers() {
        // A wrong check digit, another network's length or prefix: digits written as a card's
        // that are no card number.
        assert_eq!(card_runs("4111 1111 1111 1112"), CardRuns { grouped_other: true, ..NONE });
        assert_eq!(card_runs("4111111111111112"), CardRuns { bare_other: true, ..NONE });
        assert_eq!(card_runs("9111111111111111"), CardRuns { bare_other: true, ..NONE });
        assert_eq!(
            card_runs("411111111111111"),
            CardRuns { bare_other: true, ..NONE },
            "15 digits starting with 4"
        );
        // With 15 digits or more, nothing written as a card's: 17 digits, other groups, mixed
        // separators (postcode ranges), dates and amounts, an IBAN, a UUID's digits.
        for text in [
            "41111111111111111",
            "94111111111111111",
            "41 11 11 11 11 11 11 11",
            "4111 1111 1111-1111",
            "2600-2618 2900-2920",
            "4000-4099 4100 4199",
            "2026-12-07 10:15:00 1,234,567.89",
            "+44 20 7946 0958 and +44 20 7946 0959",
            "GB82 WEST 1234 5698 7654 32",
            "12345678-1234-5678-1234-567812345678",
            "4006381333931 4006381333931",
        ] {
            assert_eq!(card_runs(text), NONE, "{text}");
        }
        assert_eq!(card_runs(""), NONE);
        // A list of 4-digit codes is no card, whatever window of it passes a card's check
        // (postcodes 4000-4199 made nine cells in ten "cards": from the diff review).
        let postcodes: Vec<String> = (4000..4030).map(|n| n.to_string()).collect();
        assert_eq!(card_runs(&postcodes.join(" ")), CardRuns { grouped_other: true, ..NONE });
        assert_eq!(card_runs(&postcodes.join("-")), CardRuns { grouped_other: true, ..NONE });
    }

    #[test]
    fn luhn_matches_the_definition() {
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
        assert!(luhn(&[0]));
    }
}
