//! Attribute filters: built in Rust or parsed from `--where` text, then compiled against a
//! collection's schema so matching a row is a few array lookups.

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::model::{FieldKind, Schema};

/// A predicate over a record's public attributes, with SQL's three-valued logic: a
/// comparison on an attribute the record does not have is *unknown*, `not` of unknown is
/// unknown, `and`/`or` are unknown when the known parts do not decide, and only a filter
/// that is true matches. So `tier != 'gold'` ([`Filter::ne`]) and `not tier = 'gold'` both
/// leave out records without a tier; [`Filter::missing`] (`tier is missing`) and
/// [`Filter::present`] (`tier is not missing`) are never unknown.
///
/// ```
/// use geocrm::Filter;
/// let f = Filter::eq("tier", "gold").and(Filter::at_least("lifetime_value", 1000.0));
/// assert_eq!(f, Filter::parse("tier = 'gold' and lifetime_value >= 1000")?);
/// assert_eq!(Filter::parse("tier is missing")?, Filter::missing("tier"));
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Filter {
    /// Matches every record.
    All,
    /// Category equals one of the values.
    In {
        /// Category field.
        field: String,
        /// Accepted values.
        values: Vec<String>,
    },
    /// Number within bounds.
    Range {
        /// Number field.
        field: String,
        /// Lower bound.
        min: Bound<f64>,
        /// Upper bound.
        max: Bound<f64>,
    },
    /// All of the parts.
    And(Vec<Filter>),
    /// Any of the parts.
    Or(Vec<Filter>),
    /// The opposite (unknown stays unknown).
    Not(Box<Filter>),
    /// The record has a value for the field (a number or category field).
    Present {
        /// Number or category field.
        field: String,
    },
}

impl Filter {
    /// Category `field` equals `value`.
    #[must_use]
    pub fn eq(field: impl Into<String>, value: impl Into<String>) -> Filter {
        Filter::In { field: field.into(), values: vec![value.into()] }
    }

    /// `field != value`: the same as `not field = value` — unknown, so never matching even
    /// under a `not`, for a record without the field.
    ///
    /// ```
    /// use geocrm::Filter;
    /// assert_eq!(Filter::parse("tier != 'gold'")?, Filter::ne("tier", "gold"));
    /// assert_eq!(Filter::parse("not tier = 'gold'")?, Filter::ne("tier", "gold"));
    /// # Ok::<(), geocrm::Error>(())
    /// ```
    #[must_use]
    pub fn ne(field: impl Into<String>, value: impl Into<String>) -> Filter {
        Filter::Not(Box::new(Filter::eq(field, value)))
    }

    /// The record has a value for `field` (`field is not missing`).
    #[must_use]
    pub fn present(field: impl Into<String>) -> Filter {
        Filter::Present { field: field.into() }
    }

    /// The record has no value for `field` (`field is missing`).
    ///
    /// ```
    /// use geocrm::Filter;
    /// // Records without a tier, or with one other than gold.
    /// let f = Filter::parse("tier != 'gold' or tier is missing")?;
    /// assert_eq!(f, Filter::Or(vec![Filter::ne("tier", "gold"), Filter::missing("tier")]));
    /// # Ok::<(), geocrm::Error>(())
    /// ```
    #[must_use]
    pub fn missing(field: impl Into<String>) -> Filter {
        Filter::Not(Box::new(Filter::present(field)))
    }

    /// Category `field` is one of `values`.
    #[must_use]
    pub fn one_of<I, S>(field: impl Into<String>, values: I) -> Filter
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Filter::In { field: field.into(), values: values.into_iter().map(Into::into).collect() }
    }

    /// Number `field` ≥ `min`.
    #[must_use]
    pub fn at_least(field: impl Into<String>, min: f64) -> Filter {
        Filter::Range { field: field.into(), min: Bound::Included(min), max: Bound::Unbounded }
    }

    /// Number `field` ≤ `max`.
    #[must_use]
    pub fn at_most(field: impl Into<String>, max: f64) -> Filter {
        Filter::Range { field: field.into(), min: Bound::Unbounded, max: Bound::Included(max) }
    }

    /// Number `field` within `min..=max`.
    #[must_use]
    pub fn between(field: impl Into<String>, min: f64, max: f64) -> Filter {
        Filter::Range { field: field.into(), min: Bound::Included(min), max: Bound::Included(max) }
    }

    /// Both this and `other`.
    #[must_use]
    pub fn and(self, other: Filter) -> Filter {
        match (self, other) {
            (Filter::All, f) | (f, Filter::All) => f,
            (Filter::And(mut a), Filter::And(b)) => {
                a.extend(b);
                Filter::And(a)
            }
            (Filter::And(mut a), f) => {
                a.push(f);
                Filter::And(a)
            }
            (f, g) => Filter::And(vec![f, g]),
        }
    }

    /// Parses `--where` text, e.g. `tier in ('gold', 'silver') and not lifetime_value < 10`.
    ///
    /// Grammar: `or := and ('or' and)*`, `and := not ('and' not)*`, `not := 'not' not | atom`,
    /// `atom := '(' or ')' | field ('='|'!='|'<>'|'<'|'<='|'>'|'>=') value |
    /// field ['not'] 'in' '(' value (',' value)* ')' | field ['not'] 'between' number 'and'
    /// number | field 'is' ['not'] ('missing'|'null')`.
    /// Values are numbers, 'quoted' or "quoted" strings, or bare words other than `null` and
    /// `missing` (refused: `is missing` tests for a missing value).
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] with the character position.
    pub fn parse(expr: &str) -> Result<Filter> {
        super::filter_parse::parse(expr)
    }

    /// [`Filter::parse`], checked against a collection's schema: a field the schema does not
    /// have, a PII field, or a condition the field's kind cannot take (`tier > 5` on a
    /// category, `ltv = 'gold'` on a number) is an error that points at the field's place in
    /// the text and shows the whole filter, its values masked. (A filter checked only when a
    /// query compiles it has no text to point into.)
    ///
    /// ```
    /// use geocrm::{Error, Filter, Schema};
    /// let schema = Schema::crm().number("lifetime_value").category("tier");
    /// let ok = Filter::parse_for("tier = 'gold' and lifetime_value > 10", &schema)?;
    /// assert_eq!(ok, Filter::parse("tier = 'gold' and lifetime_value > 10")?);
    ///
    /// let Err(Error::InvalidFilter { expr, position, reason }) =
    ///     Filter::parse_for("tier = 'gold' and lifetme_value > 10", &schema)
    /// else {
    ///     panic!("expected an invalid filter")
    /// };
    /// // (An unknown field is not shown: it may be a value typed where a field belongs.)
    /// assert_eq!((expr.as_str(), position), ("tier = '****' and ************* > **", 18));
    /// assert!(reason.starts_with("unknown field of 13 characters"), "{reason}");
    /// # Ok::<(), geocrm::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] with the character position, for the text and for the schema.
    pub fn parse_for(expr: &str, schema: &Schema) -> Result<Filter> {
        super::filter_parse::parse_for(expr, schema)
    }

    /// Resolves field names against a schema.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] for unknown fields, PII fields (not filterable: they are
    /// encrypted), a range on a category, and an equality on a number field with a value
    /// that is not a number.
    pub fn compile(&self, schema: &Schema, categories: &dyn CategoryCodes) -> Result<CompiledFilter> {
        Ok(CompiledFilter { node: compile_node(self, schema, categories, 0)? })
    }
}

/// Looks up the code of a category value (a dictionary per category field).
pub trait CategoryCodes {
    /// The code of `value` in category field number `field`, if that value was ever seen.
    fn code(&self, field: usize, value: &str) -> Option<u32>;
}

/// A filter bound to a schema: fields are positions, category values are codes.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    node: Node,
}

#[derive(Debug, Clone)]
enum Node {
    All,
    Codes {
        field: usize,
        codes: Vec<u32>,
    },
    /// The number field equals one of the values.
    Numbers {
        field: usize,
        values: Vec<f64>,
    },
    Range {
        field: usize,
        min: Bound<f64>,
        max: Bound<f64>,
    },
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// The category field has a value.
    HasCode {
        field: usize,
    },
    /// The number field has a value.
    HasNumber {
        field: usize,
    },
}

/// The value of a category code for "no value".
pub const MISSING_CODE: u32 = u32::MAX;

impl CompiledFilter {
    /// A filter that matches everything.
    #[must_use]
    pub fn all() -> Self {
        CompiledFilter { node: Node::All }
    }

    /// Whether the filter is [`Filter::All`] (lets queries skip attribute access).
    #[must_use]
    pub fn is_all(&self) -> bool {
        matches!(self.node, Node::All)
    }

    /// Whether a row with these attributes matches: the filter is true for it, not false
    /// or unknown. Missing numbers are NaN, missing categories are [`MISSING_CODE`].
    #[must_use]
    pub fn matches(&self, numbers: &dyn Fn(usize) -> f64, categories: &dyn Fn(usize) -> u32) -> bool {
        eval(&self.node, numbers, categories) == Some(true)
    }

    /// For a filter that is one category condition (`tier = 'gold'`, `tier in (…)`): the
    /// condition, tested on a row's code of its one field without the walk over the filter.
    pub(crate) fn as_codes(&self) -> Option<CodeCondition<'_>> {
        match &self.node {
            Node::Codes { field, codes } => Some(CodeCondition { field: *field, codes }),
            _ => None,
        }
    }
}

/// A filter that is one category condition; see [`CompiledFilter::as_codes`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeCondition<'a> {
    /// The category field it tests.
    pub(crate) field: usize,
    codes: &'a [u32],
}

impl CodeCondition<'_> {
    /// Whether a row whose code in [`Self::field`] is `code` matches: as
    /// [`CompiledFilter::matches`] on that row.
    pub(crate) fn matches(&self, code: u32) -> bool {
        codes_value(self.codes, code) == Some(true)
    }
}

/// A category condition's value for a row with `code`: unknown for a missing value, else
/// whether the code is among `codes`.
fn codes_value(codes: &[u32], code: u32) -> Option<bool> {
    (code != MISSING_CODE).then(|| codes.contains(&code))
}

/// The filter's value for a row: `None` is SQL's unknown, what a comparison on a missing
/// attribute gives.
fn eval(node: &Node, numbers: &dyn Fn(usize) -> f64, categories: &dyn Fn(usize) -> u32) -> Option<bool> {
    match node {
        Node::All => Some(true),
        Node::Codes { field, codes } => codes_value(codes, categories(*field)),
        Node::Numbers { field, values } => {
            let v = numbers(*field);
            (!v.is_nan()).then(|| values.contains(&v))
        }
        Node::Range { field, min, max } => {
            let v = numbers(*field);
            (!v.is_nan()).then(|| std::ops::RangeBounds::contains(&(*min, *max), &v))
        }
        Node::And(parts) => decide(parts, false, numbers, categories),
        Node::Or(parts) => decide(parts, true, numbers, categories),
        Node::Not(inner) => eval(inner, numbers, categories).map(|v| !v),
        Node::HasCode { field } => Some(categories(*field) != MISSING_CODE),
        Node::HasNumber { field } => Some(!numbers(*field).is_nan()),
    }
}

/// `and` (`decisive` false) or `or` (`decisive` true) of `parts`: the decisive value if a
/// part has it, else unknown if a part is unknown, else the other value.
fn decide(
    parts: &[Node],
    decisive: bool,
    numbers: &dyn Fn(usize) -> f64,
    categories: &dyn Fn(usize) -> u32,
) -> Option<bool> {
    let mut value = Some(!decisive);
    for p in parts {
        match eval(p, numbers, categories) {
            Some(v) if v == decisive => return Some(decisive),
            None => value = None,
            Some(_) => {}
        }
    }
    value
}

/// "the fields a filter can use are: …", for an unknown field's error.
fn known_fields(schema: &Schema) -> String {
    let known: Vec<&str> =
        schema.number_fields().iter().chain(schema.category_fields()).map(String::as_str).collect();
    format!(
        "the fields a filter can use are: {}",
        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
    )
}

fn filter_error(field: &str, reason: String) -> Error {
    Error::InvalidFilter { expr: field.to_owned(), position: 0, reason }
}

/// Deepest nesting of `and`, `or` and `not` a filter built through the API may have (the
/// parser stops at 64 levels of parentheses and `not`s): compiling and evaluating recurse,
/// and a million nested `Not`s overflowed the stack.
const MAX_COMPILE_DEPTH: usize = 512;

fn compile_node(f: &Filter, schema: &Schema, cats: &dyn CategoryCodes, depth: usize) -> Result<Node> {
    if depth > MAX_COMPILE_DEPTH {
        return Err(Error::InvalidFilter {
            expr: String::new(),
            position: 0,
            reason: format!("the filter nests and, or and not deeper than {MAX_COMPILE_DEPTH} levels"),
        });
    }
    let lookup = |field: &str, want: FieldKind| -> Result<usize> {
        match schema.field(field) {
            Some((kind, i)) if kind == want => Ok(i),
            Some((FieldKind::Pii, _)) => Err(filter_error(
                field,
                format!("{field:?} is a PII field; PII is encrypted and cannot be filtered"),
            )),
            Some((FieldKind::Number, _)) => Err(filter_error(
                field,
                format!("{field:?} is a number field; use <, <=, >, >=, between or = with a number"),
            )),
            Some((FieldKind::Category, _)) => {
                Err(filter_error(field, format!("{field:?} is a category field; use = or in with strings")))
            }
            // Not repeated: a word where a field belongs may be a value (`Lovelace = name`);
            // the fields that can be filtered are listed instead.
            None => {
                // A field typed in another case (`TIER`) is named by the schema's spelling,
                // which the list below shows anyway.
                let cased = schema
                    .number_fields()
                    .iter()
                    .chain(schema.category_fields())
                    .find(|known| known.to_lowercase() == field.to_lowercase())
                    .map(|known| format!("; did you mean {known}? (field names are case-sensitive)"))
                    .unwrap_or_default();
                let reason = format!(
                    "unknown field of {} characters (not shown: it may be a value){cased}; {}",
                    field.chars().count(),
                    known_fields(schema)
                );
                Err(Error::InvalidFilter { expr: "*".repeat(field.chars().count()), position: 0, reason })
            }
        }
    };
    Ok(match f {
        Filter::All => Node::All,
        Filter::In { field, values } if matches!(schema.field(field), Some((FieldKind::Number, _))) => {
            // `ltv = 10` or `ltv in (10, 20)` on a number field: exact values (unknown for a
            // record without the field, as a category's `in` is, even for no values).
            let i = lookup(field, FieldKind::Number)?;
            let mut parts = Vec::with_capacity(values.len());
            for v in values {
                let x: f64 = v.trim().parse().ok().filter(|x: &f64| x.is_finite()).ok_or_else(|| {
                    if super::filter_parse::is_too_large(v.trim()) {
                        return filter_error(
                            field,
                            format!("{field:?} is a number field and the value is too large for a 64-bit float (beyond ±1.8e308)"),
                        );
                    }
                    filter_error(
                        field,
                        format!(
                            "{field:?} is a number field and {} is not a number",
                            crate::error::quoted_value(v)
                        ),
                    )
                })?;
                parts.push(x);
            }
            Node::Numbers { field: i, values: parts }
        }
        Filter::In { field, values } => {
            let i = lookup(field, FieldKind::Category)?;
            // Values never seen have no code: they match nothing.
            let codes = values.iter().filter_map(|v| cats.code(i, v)).collect();
            Node::Codes { field: i, codes }
        }
        Filter::Range { field, min, max } => {
            let bad = |b: &Bound<f64>| matches!(b, Bound::Included(v) | Bound::Excluded(v) if v.is_nan());
            if bad(min) || bad(max) {
                return Err(filter_error(field, "a range bound is NaN".into()));
            }
            Node::Range { field: lookup(field, FieldKind::Number)?, min: *min, max: *max }
        }
        Filter::And(parts) => {
            Node::And(parts.iter().map(|p| compile_node(p, schema, cats, depth + 1)).collect::<Result<_>>()?)
        }
        Filter::Or(parts) => {
            Node::Or(parts.iter().map(|p| compile_node(p, schema, cats, depth + 1)).collect::<Result<_>>()?)
        }
        Filter::Not(inner) => Node::Not(Box::new(compile_node(inner, schema, cats, depth + 1)?)),
        Filter::Present { field } if matches!(schema.field(field), Some((FieldKind::Number, _))) => {
            Node::HasNumber { field: lookup(field, FieldKind::Number)? }
        }
        Filter::Present { field } => Node::HasCode { field: lookup(field, FieldKind::Category)? },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tiers;
    impl CategoryCodes for Tiers {
        fn code(&self, _field: usize, value: &str) -> Option<u32> {
            ["gold", "silver"].iter().position(|v| *v == value).map(|i| i as u32)
        }
    }

    /// Whether `text` matches a row with `ltv` (NaN: missing) and `tier` (None: missing).
    fn matches(f: &Filter, ltv: f64, tier: Option<&str>) -> bool {
        let schema = Schema::crm().number("ltv").category("tier");
        let compiled = f.compile(&schema, &Tiers).unwrap();
        let code = tier.map_or(MISSING_CODE, |t| Tiers.code(0, t).unwrap());
        compiled.matches(&|_| ltv, &|_| code)
    }

    /// A filter nested deeper than compiling allows is an error, not a stack overflow (found
    /// by a reviewing helper: only the parser had a limit).
    #[test]
    fn deep_filters_built_through_the_api_are_refused() {
        let schema = Schema::crm().number("ltv");
        let nest = |levels: usize| {
            let mut f = Filter::at_least("ltv", 1.0);
            for i in 0..levels {
                f = if i % 2 == 0 { Filter::Not(Box::new(f)) } else { Filter::And(vec![f]) };
            }
            f
        };
        assert!(nest(MAX_COMPILE_DEPTH).compile(&schema, &Tiers).is_ok());
        let deep = nest(100_000);
        assert!(matches!(deep.compile(&schema, &Tiers), Err(Error::InvalidFilter { .. })));
        // (Dropping it recursively would overflow the test's stack too: leak it.)
        std::mem::forget(deep);
    }

    #[test]
    fn three_valued_logic() {
        let f = |text: &str| Filter::parse(text).unwrap();
        let nan = f64::NAN;
        // Unknown under `not` stays unknown; `false and unknown` is false, `true or unknown`
        // true, so their negations are decided.
        assert!(!matches(&f("not tier = 'gold'"), 5.0, None));
        assert!(matches(&f("not tier = 'gold'"), 5.0, Some("silver")));
        assert!(matches(&f("not (ltv < 1 and tier = 'gold')"), 5.0, None));
        assert!(matches(&f("not (tier = 'gold' and ltv < 1)"), 5.0, None));
        assert!(matches(&f("tier = 'gold' or ltv < 10"), 5.0, None));
        assert!(!matches(&f("not (ltv < 10 and tier = 'gold')"), 5.0, None));
        assert!(!matches(&f("not (ltv < 1 or tier = 'gold')"), 5.0, None));
        assert!(!matches(&f("not (ltv < 10 or tier = 'gold')"), 5.0, None));
        assert!(matches(&f("ltv < 10 or tier = 'gold'"), 5.0, None));
        assert!(matches(&f("tier is missing"), nan, None));
        assert!(!matches(&f("not ltv is missing"), nan, None));
        assert!(matches(&f("ltv is not null and tier is not missing"), 1.0, Some("gold")));
        // An `in` list with no values is unknown without the field, number or category
        // alike (the number one was false, so its `not` matched records without one).
        for field in ["ltv", "tier"] {
            let none = Filter::Not(Box::new(Filter::one_of(field, Vec::<String>::new())));
            assert!(!matches(&none, nan, None), "{field}");
            assert!(matches(&none, 1.0, Some("gold")), "{field}");
        }
        assert!(matches(&f("ltv in (1, 2)"), 2.0, None));
        assert!(!matches(&f("not ltv in (1, 2)"), nan, None));
    }
}
