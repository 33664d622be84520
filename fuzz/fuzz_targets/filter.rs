//! Arbitrary UTF-8 → `Filter::parse`; when it parses, `compile` against a small schema and
//! evaluate on a few rows. No panic, hang or stack overflow; `Err` is fine.
#![no_main]

use geocrm::query::{CategoryCodes, MISSING_CODE};
use geocrm::{Filter, Schema};
use geocrm_fuzz::Draw;
use libfuzzer_sys::fuzz_target;

struct Codes;

impl CategoryCodes for Codes {
    fn code(&self, field: usize, value: &str) -> Option<u32> {
        let values: &[&str] = match field {
            0 => &["gold", "silver", "bronze"],
            1 => &["north", "south", "1", "x y"],
            _ => &[],
        };
        values.iter().position(|v| *v == value).and_then(|i| u32::try_from(i).ok())
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    let Ok(filter) = Filter::parse(text) else { return };
    let schema = Schema::crm().number("ltv").number("visits").category("tier").category("region");
    let Ok(compiled) = filter.compile(&schema, &Codes) else { return };
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
        // `not` negates, and keeps unknown unknown: a row never matches both a filter and its
        // negation, and `not not f` is `f`.
        let negated = Filter::Not(Box::new(filter.clone())).compile(&schema, &Codes).expect("not compiles");
        assert!(!(yes && negated.matches(&num, &cat)));
        let twice = Filter::Not(Box::new(Filter::Not(Box::new(filter.clone()))));
        assert_eq!(twice.compile(&schema, &Codes).expect("not not compiles").matches(&num, &cat), yes);
    }
});
