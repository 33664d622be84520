//! Field names for a file's columns: a spreadsheet's `First Name`, `Région` or
//! `Umsatz (€)` is no field name, and the import says which `--rename` would take each
//! (`first_name`, `region`, `umsatz`), all at once.

use std::collections::HashSet;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::csv_import::{and_list, looks_like_pii};
use super::ImportOptions;
use crate::model::MAX_NAME_BYTES;

/// A field name made from a column's name: its letters and digits without their accents,
/// in lower case (`ß` as `ss`, `æ` as `ae`, `ø` as `o`…), every run of other characters
/// one `_` between them, `col_` before a digit first (a filter reads `2024` as a number),
/// at most 64 bytes. `None` when none is left (`(€)`, `Имя`).
///
/// ```text
/// "First Name" → first_name    "Région" → region    "Umsatz (€)" → umsatz    "2024" → col_2024
/// ```
pub(super) fn suggested_name(column: &str) -> Option<String> {
    let mut name = String::new();
    let mut gap = false;
    for c in column.nfkd().filter(|&c| !is_combining_mark(c)) {
        let latin = match c {
            'ß' => "ss",
            'æ' | 'Æ' => "ae",
            'œ' | 'Œ' => "oe",
            'ø' | 'Ø' => "o",
            'ł' | 'Ł' => "l",
            'đ' | 'Đ' | 'ð' | 'Ð' => "d",
            'þ' | 'Þ' => "th",
            'ı' => "i",
            _ if c.is_ascii_alphanumeric() => "",
            _ => {
                gap = true;
                continue;
            }
        };
        let separator = std::mem::take(&mut gap) && !name.is_empty();
        if name.len() + usize::from(separator) + latin.len().max(1) > MAX_NAME_BYTES {
            break;
        }
        if separator {
            name.push('_');
        }
        if latin.is_empty() {
            name.push(c.to_ascii_lowercase());
        } else {
            name.push_str(latin);
        }
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "col_");
        name.truncate(MAX_NAME_BYTES);
        // (Cut at a `_`, it would end with one: harmless, as a field name.)
    }
    (!name.is_empty()).then_some(name)
}

/// A field name of its own for each of `columns` (the column's number in the file, its
/// name there): [`suggested_name`], else `column_N` for the N-th column of the file, with
/// `_2`, `_3`… when it is one of `taken` (every name of the file, ignored ones too), `id`,
/// `lat`, `lon` or an earlier one's, shortened to stay within 64 bytes.
pub(super) fn field_names_for(columns: &[(usize, &str)], taken: &[&str]) -> Vec<String> {
    let mut used: HashSet<String> = taken.iter().map(|t| (*t).to_owned()).collect();
    columns
        .iter()
        .map(|&(index, column)| {
            let base = suggested_name(column).unwrap_or_else(|| format!("column_{}", index + 1));
            let mut name = base.clone();
            for n in 2.. {
                if !used.contains(&name) && !crate::model::RECORD_NAMES.contains(&name.as_str()) {
                    break;
                }
                let suffix = format!("_{n}");
                let keep = base.len().min(MAX_NAME_BYTES - suffix.len());
                name = format!("{}{suffix}", base.get(..keep).unwrap_or(&base));
            }
            used.insert(name.clone());
            name
        })
        .collect()
}

/// `--rename` taking `column` (as in the file) as `name`, to paste into a shell: in single
/// quotes (a `'` written `'\''`), and with `=` when the column starts with `-` (else it
/// reads as an option).
pub(super) fn rename_option(column: &str, name: &str) -> String {
    let quoted = format!("'{}'", format!("{column}={name}").replace('\'', "'\\''"));
    if column.starts_with('-') {
        format!("--rename={quoted}")
    } else {
        format!("--rename {quoted}")
    }
}

/// Why `columns` (their numbers in the file and names there) are refused, for a new
/// collection: they are no field names. Each gets the `--rename` that takes it under a name
/// of its own ([`field_names_for`], none of `taken`); an option naming a column by its old
/// name is said to need the new one, and a new name that looks like personal data the
/// decision on it.
pub(super) fn no_field_names(columns: &[(usize, &str)], taken: &[&str], options: &ImportOptions) -> String {
    let names = field_names_for(columns, taken);
    let renames: Vec<String> =
        columns.iter().zip(&names).map(|(&(_, column), name)| rename_option(column, name)).collect();
    // The other options name a column by its new name: say which change with it.
    let [lists @ .., _ignore] = options.column_options();
    let follow: Vec<String> = columns
        .iter()
        .zip(&names)
        .flat_map(|(&(_, column), name)| {
            lists
                .iter()
                .filter(move |(_, _, list)| list.iter().any(|c| c == column))
                .map(move |(_, flag, _)| format!("{flag} {name} for {column:?}"))
        })
        .collect();
    let follow = if follow.is_empty() {
        String::new()
    } else {
        format!(", and in the other options the new names: {}", and_list(&follow))
    };
    // A new name that looks like personal data needs the decision too (`Téléphone`).
    let decided = |column: &str| lists.iter().any(|(_, _, list)| list.iter().any(|c| c == column));
    let personal: Vec<String> = columns
        .iter()
        .zip(&names)
        .filter(|(&(_, column), name)| looks_like_pii(name) && !decided(column) && !decided(name))
        .map(|(_, name)| format!("{name:?}"))
        .collect();
    let follow = match personal.as_slice() {
        [] => follow,
        [one] => format!(
            "{follow}; {one} looks like personal data: declare it as PII (--pii, --phone or --email) to seal it, or \
             as a category or number to store it in plaintext on purpose"
        ),
        _ => format!(
            "{follow}; {} look like personal data: declare each as PII (--pii, --phone or --email) to seal it, or \
             as a category or number to store it in plaintext on purpose",
            and_list(&personal)
        ),
    };
    let (renames, how) = (renames.join(" "), "(in Rust, ImportOptions::renames)");
    match columns {
        [(_, only)] => format!(
            "column {only:?} is no field name (1-64 characters of ASCII letters, digits and '_'): take it under \
             another, as {renames}{follow} {how}"
        ),
        _ => format!(
            "columns {} are no field names (1-64 characters of ASCII letters, digits and '_'): take them under \
             others, as {renames}{follow} {how}",
            and_list(&columns.iter().map(|(_, name)| format!("{name:?}")).collect::<Vec<_>>())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_of_the_columns_letters() {
        for (column, name) in [
            ("First Name", Some("first_name")),
            ("Région", Some("region")),
            ("Umsatz (€)", Some("umsatz")),
            ("Straße", Some("strasse")),
            ("  Annual  Revenue 2024 ", Some("annual_revenue_2024")),
            ("Ærø-Købing", Some("aero_kobing")),
            ("Łódź", Some("lodz")),
            ("ＭＲＲ", Some("mrr")),
            ("e-mail", Some("e_mail")),
            ("(€)", None),
            ("Доход 2023", Some("col_2023")),
            ("2024 (€)", Some("col_2024")),
            ("Имя", None),
            ("", None),
        ] {
            assert_eq!(suggested_name(column).as_deref(), name, "{column:?}");
        }
        let long = "Ä".repeat(100);
        let made = suggested_name(&long).unwrap();
        assert_eq!(made.len(), 64);
        assert!(crate::model::validate_name(&made).is_ok());
    }

    #[test]
    fn names_are_distinct_and_within_the_limit() {
        let columns = [(3, "Région"), (4, "région"), (5, "(€)"), (6, "2024 (€)"), (7, "Id"), (8, "region")];
        let got = field_names_for(&columns, &["region_2", "region"]);
        assert_eq!(got, ["region_3", "region_4", "column_6", "col_2024", "id_2", "region_5"]);
        // Two long names alike: the second's suffix fits within 64 bytes.
        let (a, b) = ("Ä".repeat(70), format!("{} x", "Ä".repeat(70)));
        let got = field_names_for(&[(3, &a), (4, &b)], &[]);
        assert_eq!(got[0].len(), 64);
        assert!(got[1].len() <= 64 && got[1].ends_with("_2") && got[0] != got[1], "{got:?}");
        for name in &got {
            assert!(crate::model::validate_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn renames_paste_into_a_shell() {
        assert_eq!(rename_option("Région", "region"), "--rename 'Région=region'");
        assert_eq!(rename_option("Customer's $Value", "v"), r"--rename 'Customer'\''s $Value=v'");
        assert_eq!(rename_option("-Rabatt", "rabatt"), "--rename='-Rabatt=rabatt'");
    }
}
