//! Amounts written with a currency, as spreadsheets and accounting tools export them:
//! `$1,234.50`, `1.234,50 €`, `USD 12`, `-$5`, `$-5`, `($5.00)` and `$ (5.00)` (an
//! accountant's negatives), `$ -` (an accounting format's zero).
//! [`split_money`] separates the sign and the currency from the number's text, which the
//! import then reads as it reads any number (its decimal mark and thousands separators).

/// An amount taken apart: the number as written, without sign or currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Money<'t> {
    /// The number's text: it starts with a digit, `.` or `,` and ends with a digit or `.`.
    pub(super) number: &'t str,
    /// A `-` (or `−`) sign, or parentheses around the amount or around its number.
    pub(super) negative: bool,
    /// The currency as written (`$`, `US$`, `€`, `EUR`).
    pub(super) currency: &'t str,
}

/// ISO 4217 codes taken as currencies before or after an amount (`USD 12`, `12 EUR`):
/// those of the most traded currencies, so that a code of another kind (`SKU 12`) is not
/// read as one.
const CODES: [&str; 42] = [
    "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK", "EGP", "EUR", "GBP",
    "HKD", "HUF", "IDR", "ILS", "INR", "JPY", "KES", "KRW", "MXN", "MYR", "NGN", "NOK", "NZD", "PEN", "PHP",
    "PLN", "RON", "RUB", "SAR", "SEK", "SGD", "THB", "TRY", "UAH", "USD", "VND", "ZAR",
];

/// Whether `c` is a currency sign: `$`, `¢`, `£`, `¤`, `¥`, the signs of the Unicode block of
/// currency symbols (`€`, `₹`, `₩`, `₽`, `₺`, `₪`, `₫`, `₱`, `₦`, `₴`…), `฿`, `֏`, `؋`, `﷼`,
/// and the full-width and small `$`, `¢`, `£`, `¥`, `₩`.
pub(super) fn is_currency_sign(c: char) -> bool {
    matches!(
        c,
        '$' | '¢' | '£' | '¤' | '¥' | '\u{58f}' | '\u{60b}' | '\u{e3f}' | '\u{20a0}'
            ..='\u{20c0}'
                | '\u{fdfc}'
                | '\u{fe69}'
                | '\u{ff04}'
                | '\u{ffe0}'
                | '\u{ffe1}'
                | '\u{ffe5}'
                | '\u{ffe6}'
    )
}

/// The currency a sign or prefix stands for, as its ISO code, when it stands for one only
/// (`€` is `EUR`, `US$` is `USD`, `£` is `GBP`); else the currency as written (`$`, `¥`, `kr`
/// may be several). Two amounts are in one currency when their keys are equal.
pub(super) fn currency_key(currency: &str) -> &str {
    match currency {
        "€" => "EUR",
        "£" | "\u{ffe1}" => "GBP",
        "₹" => "INR",
        "₩" | "\u{ffe6}" => "KRW",
        "₽" => "RUB",
        "₺" => "TRY",
        "₪" => "ILS",
        "₫" => "VND",
        "₴" => "UAH",
        "₦" => "NGN",
        "฿" => "THB",
        "₱" => "PHP",
        "US$" => "USD",
        "R$" => "BRL",
        "A$" => "AUD",
        "HK$" => "HKD",
        "NZ$" => "NZD",
        "S$" => "SGD",
        other => other,
    }
}

/// The spaces between an amount and its currency: a space, a no-break space (narrow or not).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}')
}

/// A leading sign — `-` or the minus sign `−` (`Some(true)`), or `+` (`Some(false)`) — and
/// the rest of `text`.
fn strip_sign(text: &str) -> (Option<bool>, &str) {
    if let Some(rest) = text.strip_prefix(['-', '\u{2212}']) {
        (Some(true), rest)
    } else if let Some(rest) = text.strip_prefix('+') {
        (Some(false), rest)
    } else {
        (None, text)
    }
}

/// The currency `text` starts with and the rest, spaces after it skipped: a sign
/// ([`is_currency_sign`]), a `$` after one or two capital letters (`US$`, `R$`, `HK$`), or a
/// code of [`CODES`].
fn currency_prefix(text: &str) -> Option<(&str, &str)> {
    let letters = text.bytes().take_while(u8::is_ascii_uppercase).count();
    let len = if letters == 3 && text.get(..3).is_some_and(|code| CODES.contains(&code)) {
        3
    } else if letters <= 2 && text.get(letters..).is_some_and(|rest| rest.starts_with('$')) {
        letters + 1
    } else if letters == 0 {
        text.chars().next().filter(|&c| is_currency_sign(c))?.len_utf8()
    } else {
        return None;
    };
    let (currency, rest) = text.split_at_checked(len)?;
    Some((currency, rest.trim_start_matches(is_space)))
}

/// The currency `text` ends with and what comes before it, spaces before it skipped: a sign
/// (after one or two capital letters for `$`), or a code of [`CODES`] (`12 €`, `12€`,
/// `5 US$`, `12 EUR`).
fn currency_suffix(text: &str) -> Option<(&str, &str)> {
    let len = match text.chars().next_back() {
        Some('$') => {
            let letters =
                text.get(..text.len() - 1)?.bytes().rev().take_while(u8::is_ascii_uppercase).count();
            if letters > 2 {
                return None;
            }
            1 + letters
        }
        Some(c) if is_currency_sign(c) => c.len_utf8(),
        _ => {
            let code = text.get(text.len().checked_sub(3)?..)?;
            if !CODES.contains(&code) {
                return None;
            }
            3
        }
    };
    let (rest, currency) = text.split_at_checked(text.len() - len)?;
    Some((currency, rest.trim_end_matches(is_space)))
}

/// `text` without the parentheses around it (and the spaces inside them), if it has them.
fn parenthesized(text: &str) -> (bool, &str) {
    match text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        Some(inner) => (true, inner.trim()),
        None => (false, text),
    }
}

/// The currency `text` starts or ends with ([`currency_prefix`], [`currency_suffix`]) and
/// the rest.
fn currency_of(text: &str) -> Option<(&str, &str)> {
    currency_prefix(text).or_else(|| currency_suffix(text))
}

/// `text` (trimmed) taken apart as an amount with a currency before or after it. One sign
/// at most: `-` or `−` before the amount or after a currency that comes first (`-$5`, `$-5`,
/// `-5 €`), or parentheses around the amount or around its number (`($5)`, `(5 €)`, `$(5)`,
/// `$ (1,234.50)`), all meaning negative. A currency with a lone `-` before or after it is
/// zero (`$ -`, `- €`), as a spreadsheet's accounting format writes it. The number is not
/// read here: it is the text left, which starts with a digit, `.` or `,` and ends with a
/// digit or `.` (`-US$ 1,234.50` is `1,234.50`, negative, in `US$`), and is not written as
/// a code (a leading `0` before another digit, or more than 15 digits before anything else:
/// `$0012`, an account number).
///
/// `None` for text without a currency (`12`, `(12)`: parentheses alone may be a phone's
/// area code or a rating), and for what is no amount (`$`, `$$5`, `SKU 12`, `-$-5`, `($-5)`).
pub(super) fn split_money(text: &str) -> Option<Money<'_>> {
    let (outer, inner) = parenthesized(text.trim());
    // Zero in an accounting format.
    if let Some((currency, "-" | "\u{2212}")) = currency_of(inner).filter(|_| !outer) {
        return Some(Money { number: "0", negative: false, currency });
    }
    let (sign, unsigned) = strip_sign(inner);
    let (currency, rest) = currency_of(unsigned)?;
    // After a currency: `$(5)`, or `$-5` (the sign of `-5 €` was taken above).
    let (around_number, rest) = parenthesized(rest);
    let (late_sign, number) = if around_number { (None, rest) } else { strip_sign(rest) };
    let signs = [outer, around_number, sign.is_some(), late_sign.is_some()];
    if signs.iter().filter(|&&s| s).count() > 1 {
        return None;
    }
    let lead = number.bytes().take_while(u8::is_ascii_digit).count();
    let code = (lead > 1 && number.starts_with('0')) || lead > 15;
    let starts = number.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == ',');
    let ends = number.ends_with(|c: char| c.is_ascii_digit() || c == '.');
    if !starts || !ends || code {
        return None;
    }
    let negative = outer || around_number || sign == Some(true) || late_sign == Some(true);
    Some(Money { number, negative, currency })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Option<(&str, bool, &str)> {
        split_money(text).map(|a| (a.number, a.negative, a.currency))
    }

    #[test]
    fn currencies_before_and_after() {
        assert_eq!(parts("$1,234.50"), Some(("1,234.50", false, "$")));
        assert_eq!(parts("US$ 12"), Some(("12", false, "US$")));
        assert_eq!(parts("R$12,50"), Some(("12,50", false, "R$")));
        assert_eq!(parts("1.234,50 €"), Some(("1.234,50", false, "€")));
        assert_eq!(parts("12\u{a0}€"), Some(("12", false, "€")));
        assert_eq!(parts("EUR 12"), Some(("12", false, "EUR")));
        assert_eq!(parts("12 CHF"), Some(("12", false, "CHF")));
        assert_eq!(parts("USD12"), Some(("12", false, "USD")));
        assert_eq!(parts("£.50"), Some((".50", false, "£")));
        assert_eq!(parts(" ¥1000 "), Some(("1000", false, "¥")));
        assert_eq!(parts("₹1,00,000"), Some(("1,00,000", false, "₹")));
    }

    #[test]
    fn signs_and_parentheses() {
        assert_eq!(parts("-$5"), Some(("5", true, "$")));
        assert_eq!(parts("$-5"), Some(("5", true, "$")));
        assert_eq!(parts("\u{2212}$5"), Some(("5", true, "$")));
        assert_eq!(parts("+$5"), Some(("5", false, "$")));
        assert_eq!(parts("-5 €"), Some(("5", true, "€")));
        assert_eq!(parts("($5.00)"), Some(("5.00", true, "$")));
        assert_eq!(parts("(5 €)"), Some(("5", true, "€")));
        assert_eq!(parts("5 US$"), Some(("5", false, "US$")));
        assert_eq!(parts("€,50"), Some((",50", false, "€")));
        assert_eq!(parts("$(1,234.50)"), Some(("1,234.50", true, "$")));
        assert_eq!(parts("$ (1,234.50)"), Some(("1,234.50", true, "$")));
        assert_eq!(parts("(5) €"), Some(("5", true, "€")));
    }

    #[test]
    fn a_sign_and_its_code_are_one_currency() {
        for (a, b) in [("€", "EUR"), ("US$", "USD"), ("£", "GBP"), ("₹", "INR"), ("R$", "BRL")] {
            assert_eq!(currency_key(a), currency_key(b), "{a} {b}");
        }
        for (a, b) in [("$", "USD"), ("$", "US$"), ("¥", "JPY"), ("¥", "CNY"), ("€", "$"), ("EUR", "GBP")]
        {
            assert_ne!(currency_key(a), currency_key(b), "{a} {b}");
        }
    }

    #[test]
    fn an_accounting_zero() {
        for text in ["$ -", "$-", " $ - ", "- €", "EUR -", "€-", "$ \u{2212}", "\u{2212}₹"] {
            assert_eq!(parts(text).map(|(n, neg, _)| (n, neg)), Some(("0", false)), "{text:?}");
        }
        assert_eq!(parts("- €").map(|p| p.2), Some("€"));
        assert_eq!(parts("($ -)"), None);
    }

    #[test]
    fn what_is_no_amount() {
        for text in [
            "12",
            "-12",
            "$",
            "$$5",
            "$ $5",
            "-$-5",
            "(-$5)",
            "($-5)",
            "(-5)",
            "SKU 12",
            "ABC 12",
            "12 SKU",
            "USDX 12",
            "$5x",
            "x$5",
            "5 $ 5",
            "$abc",
            "()",
            "($)",
            "12 €€",
            "ABCD$5",
            "-5 -€",
            "$1e5x",
            "$inf",
            "$0012345",
            "$12345678901234567890",
            "$(-5)",
            "-$(5)",
            "(($5))",
            "-$ -",
            "$ --",
            "(5)(€)",
            "(1,234.00)",
            "(5)",
            "5 ABC$",
        ] {
            assert_eq!(parts(text), None, "{text:?}");
        }
    }
}
