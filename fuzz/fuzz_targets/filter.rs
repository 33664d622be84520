//! Arbitrary UTF-8 → `Filter::parse`; when it parses, `compile` against a small schema
//! (`Filter::parse_for` must agree with it) and evaluate on a few rows, against a reference
//! evaluation of the uncompiled filter in SQL's three-valued logic. No panic, hang or stack
//! overflow; `Err` is fine.
#![no_main]

use std::ops::RangeBounds;

use geocrm::model::FieldKind;
use geocrm::query::{CategoryCodes, MISSING_CODE};
use geocrm::{Filter, Schema};
use geocrm_fuzz::Draw;
use libfuzzer_sys::fuzz_target;

struct Codes;

/// Category field `field`'s values, code by code.
fn values_of(field: usize) -> &'static [&'static str] {
    match field {
        0 => &["gold", "silver", "bronze"],
        1 => &["north", "south", "1", "x y"],
        _ => &[],
    }
}

impl CategoryCodes for Codes {
    fn code(&self, field: usize, value: &str) -> Option<u32> {
        values_of(field).iter().position(|v| *v == value).and_then(|i| u32::try_from(i).ok())
    }
}

/// The filter's value for a row, by the rules written out on the uncompiled filter: a
/// comparison on a missing value is unknown (`None`), `not` keeps unknown, `and` is false
/// if a part is, `or` true if a part is, else unknown if a part is.
fn reference(f: &Filter, schema: &Schema, numbers: &[f64], categories: &[u32]) -> Option<bool> {
    let number = |field: &str| -> Option<f64> {
        let (_, i) = schema.field(field)?;
        numbers.get(i).copied().filter(|v| !v.is_nan())
    };
    // The category's value (`Some(None)` for a code with no value behind it).
    let category = |field: &str| -> Option<Option<&'static str>> {
        let (_, i) = schema.field(field)?;
        let code = categories.get(i).copied().filter(|&c| c != MISSING_CODE)?;
        Some(usize::try_from(code).ok().and_then(|c| values_of(i).get(c).copied()))
    };
    let is_number = |field: &str| matches!(schema.field(field), Some((FieldKind::Number, _)));
    match f {
        Filter::All => Some(true),
        Filter::In { field, values } if is_number(field) => {
            let x = number(field)?;
            Some(values.iter().any(|v| v.trim().parse::<f64>() == Ok(x)))
        }
        Filter::In { field, values } => {
            let value = category(field)?;
            Some(value.is_some_and(|value| values.iter().any(|v| v == value)))
        }
        Filter::Range { field, min, max } => number(field).map(|x| (*min, *max).contains(&x)),
        Filter::Present { field } if is_number(field) => Some(number(field).is_some()),
        Filter::Present { field } => Some(category(field).is_some()),
        Filter::Not(inner) => reference(inner, schema, numbers, categories).map(|v| !v),
        Filter::And(parts) => either(parts.iter().map(|p| reference(p, schema, numbers, categories)), false),
        Filter::Or(parts) => either(parts.iter().map(|p| reference(p, schema, numbers, categories)), true),
        other => panic!("a filter the reference does not know: {other:?}"),
    }
}

/// `and` (`decides` false) or `or` (`decides` true) of the parts' values.
fn either(values: impl Iterator<Item = Option<bool>>, decides: bool) -> Option<bool> {
    let values: Vec<Option<bool>> = values.collect();
    if values.contains(&Some(decides)) {
        Some(decides)
    } else if values.contains(&None) {
        None
    } else {
        Some(!decides)
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    let Ok(filter) = Filter::parse(text) else { return };
    let schema = Schema::crm().number("ltv").number("visits").category("tier").category("region");
    // Checking against the schema at parse time agrees with compiling.
    let checked = Filter::parse_for(text, &schema);
    let compiled = filter.compile(&schema, &Codes);
    assert_eq!(checked.as_ref().ok(), compiled.as_ref().ok().map(|_| &filter), "{text:?}");
    let Ok(compiled) = compiled else { return };
    assert_eq!(compiled.is_all(), filter == Filter::All);

    let mut draw = Draw::new(input);
    for _ in 0..8 {
        let numbers: Vec<f64> = (0..2)
            .map(|_| match draw.next_u64() % 4 {
                0 => f64::NAN,
                1 => draw.in_range(-10.0, 10.0).round(),
                _ => draw.in_range(-1e6, 1e6),
            })
            .collect();
        let categories: Vec<u32> = (0..2)
            .map(|_| match draw.next_u64() % 5 {
                4 => MISSING_CODE,
                c => c as u32,
            })
            .collect();
        let num = |i: usize| numbers.get(i).copied().unwrap_or(f64::NAN);
        let cat = |i: usize| categories.get(i).copied().unwrap_or(MISSING_CODE);
        let yes = compiled.matches(&num, &cat);
        if compiled.is_all() {
            assert!(yes);
        }
        // The compiled filter and its negation agree with the reference.
        let want = reference(&filter, &schema, &numbers, &categories);
        assert_eq!(yes, want == Some(true), "{filter:?} on {numbers:?} {categories:?}");
        let negated = Filter::Not(Box::new(filter.clone())).compile(&schema, &Codes).expect("not compiles");
        assert_eq!(negated.matches(&num, &cat), want == Some(false), "not {filter:?}");
    }
});
