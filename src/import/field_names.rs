//! Field names for a file's columns: a spreadsheet's `First Name`, `Région` or
//! `Umsatz (€)` is no field name, and the import says which `--rename` would take each
//! (`first_name`, `region`, `umsatz`), all at once.

use std::collections::HashSet;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The longest field name, in bytes (see `model::validate_name`).
const MAX_NAME_BYTES: usize = 64;

/// A field name made from a column's name: its letters and digits without their accents,
/// in lower case (`ß` as `ss`, `æ` as `ae`, `ø` as `o`…), every run of other characters
/// one `_` between them, at most 64 bytes. `None` when none is left (`(€)`, `Имя`).
///
/// ```text
/// "First Name" → first_name    "Région" → region    "Umsatz (€)" → umsatz
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
    (!name.is_empty()).then_some(name)
}

/// `--rename` options taking each of `columns` (as in the file) under a field name of its
/// own ([`suggested_name`], else `column_N` for the N-th column of the file) that is none
/// of `taken` and none of the others: `--rename 'Région=region'`, single-quoted for a shell
/// (double-quoted when the name holds a `'`).
pub(super) fn rename_options(columns: &[(usize, &str)], taken: &[&str]) -> Vec<String> {
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
                name = format!("{base}_{n}");
            }
            used.insert(name.clone());
            let option = format!("{column}={name}");
            if option.contains('\'') {
                format!("--rename {option:?}")
            } else {
                format!("--rename '{option}'")
            }
        })
        .collect()
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
    fn renames_are_distinct_and_quoted() {
        let got = rename_options(
            &[(3, "Région"), (4, "région"), (5, "(€)"), (6, "O'Brien Score"), (7, "Id")],
            &["region_2"],
        );
        assert_eq!(
            got,
            [
                "--rename 'Région=region'",
                "--rename 'région=region_3'",
                "--rename '(€)=column_6'",
                "--rename \"O'Brien Score=o_brien_score\"",
                "--rename 'Id=id_2'",
            ]
        );
    }
}
