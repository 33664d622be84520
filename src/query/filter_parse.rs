//! The `--where` parser: a tokenizer and a recursive-descent parser with positions.

use std::ops::Bound;

use super::filter::{CategoryCodes, Filter};
use crate::error::{Error, Result};
use crate::model::Schema;

/// Longest filter text accepted, in bytes.
const MAX_EXPR_LEN: usize = 64 * 1024;
/// Deepest nesting of parentheses and `not`s.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64, String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

struct Parser<'a> {
    expr: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
    /// Where each condition's field name starts (a byte offset), in the order the
    /// conditions were read: the order of [`conditions`].
    fields: Vec<usize>,
}

pub(super) fn parse(expr: &str) -> Result<Filter> {
    parse_located(expr).map(|(f, _)| f)
}

/// The filter, and where the field name of each of its [`conditions`] starts.
fn parse_located(expr: &str) -> Result<(Filter, Vec<usize>)> {
    if expr.len() > MAX_EXPR_LEN {
        return Err(err(expr, 0, "the filter is longer than 64 KiB"));
    }
    let toks = tokenize(expr)?;
    if toks.is_empty() {
        return Ok((Filter::All, Vec::new()));
    }
    let mut p = Parser { expr, toks, pos: 0, depth: 0, fields: Vec::new() };
    let f = p.or()?;
    if let Some((at, t)) = p.toks.get(p.pos) {
        // ("found a word", not "unexpected a word".)
        return Err(err(expr, *at, &format!("a complete filter ends here, but {} follows", describe(t))));
    }
    Ok((f, p.fields))
}

/// [`Filter::parse`], then each condition checked against `schema` the way compiling it
/// would: an unknown field, a PII field or an operator the field's kind has no use for is
/// an error at the field's place in the text, with the whole filter shown [`masked`].
pub(super) fn parse_for(expr: &str, schema: &Schema) -> Result<Filter> {
    /// Compiling only to check: no category value needs a code.
    struct NoCodes;
    impl CategoryCodes for NoCodes {
        fn code(&self, _field: usize, _value: &str) -> Option<u32> {
            None
        }
    }
    let (filter, fields) = parse_located(expr)?;
    let conditions = conditions(&filter);
    if conditions.len() != fields.len() {
        // Not expected (every condition the parser makes records its field): checked whole,
        // without places.
        filter.compile(schema, &NoCodes)?;
        return Ok(filter);
    }
    let located: Vec<(&Filter, usize)> = conditions.into_iter().zip(fields).collect();
    for &(condition, at) in &located {
        match condition.compile(schema, &NoCodes) {
            Ok(_) => {}
            Err(Error::InvalidFilter { reason, .. }) => {
                let (mut shown, position) = shown_at(expr, at);
                // Every field the schema does not know may be a value typed where a field
                // belongs (`Lovelace = name`): masked in the text, wherever it stands, as in
                // the reason (only the one named was, and `tier > 2 and Lovelace = 'x'`
                // showed the name; from the read-through review).
                let mut hide = vec![false; shown.chars().count()];
                for &(other, other_at) in &located {
                    let field = condition_field(other).unwrap_or_default();
                    if schema.field(field).is_none() {
                        let start = expr.get(..other_at).map_or(0, |s| s.chars().count());
                        for h in hide.iter_mut().skip(start).take(field.chars().count()) {
                            *h = true;
                        }
                    }
                }
                shown = shown.chars().zip(&hide).map(|(c, &h)| if h { '*' } else { c }).collect();
                return Err(Error::InvalidFilter { expr: shown, position, reason });
            }
            Err(other) => return Err(other),
        }
    }
    Ok(filter)
}

/// The filter's conditions (the parts that name a field), left to right.
fn conditions(f: &Filter) -> Vec<&Filter> {
    fn walk<'f>(f: &'f Filter, out: &mut Vec<&'f Filter>) {
        match f {
            Filter::All => {}
            Filter::And(parts) | Filter::Or(parts) => parts.iter().for_each(|p| walk(p, out)),
            Filter::Not(inner) => walk(inner, out),
            condition => out.push(condition),
        }
    }
    let mut out = Vec::new();
    walk(f, &mut out);
    out
}

fn condition_field(f: &Filter) -> Option<&str> {
    match f {
        Filter::In { field, .. } | Filter::Range { field, .. } | Filter::Present { field } => Some(field),
        _ => None,
    }
}

/// `position` is a byte offset into `expr`; the error reports it in characters. The error
/// carries the filter [`masked`]: its values may be personal data (a mistyped filter on a
/// PII field is refused here, before compiling would refuse the field).
fn err(expr: &str, position: usize, reason: &str) -> Error {
    let (expr, position) = shown_at(expr, position);
    Error::InvalidFilter { expr, position, reason: reason.to_owned() }
}

/// [`err`]'s filter and position: `expr` [`masked`], the byte offset in characters.
fn shown_at(expr: &str, position: usize) -> (String, usize) {
    (masked(expr), expr.get(..position).map_or(position, |s| s.chars().count()))
}

/// Words the grammar gives a meaning of its own.
const KEYWORDS: [&str; 8] = ["and", "or", "not", "in", "between", "is", "missing", "null"];

fn is_keyword(w: &str) -> bool {
    KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+')
}

/// `expr` without its values, one `*` per character (positions stay right): string
/// contents, numbers and bare words are masked; keywords, operators, parentheses and field
/// names are kept — a word where a field can stand (at the start, after a `(`, `and` or `or`
/// where no value stands — not the `and` of `between … and` — or a prefix `not` where a
/// field could stand) and that a predicate follows (an operator, `in (`,
/// `between NUMBER|'…'`, `is [not] missing|null`, `not in (`, `not between …`), so neither
/// `Ada Lovelace in London` nor `Lovelace in London` keeps a name. The first word where a
/// value stands (after an operator, a `,`, the `(` of an `in` list, a `(` where a value
/// stands, or the `and` of `between`) is masked even if it is a keyword; characters other than syntax and kept words are masked.
pub(super) fn masked(expr: &str) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let skip_blanks = |mut j: usize| {
        while chars.get(j).is_some_and(|d| d.is_whitespace()) {
            j += 1;
        }
        j
    };
    // The word starting at the first non-blank character from `j`, and where it ends.
    let word_from = |j: usize| -> (String, usize) {
        let (start, mut j) = (skip_blanks(j), skip_blanks(j));
        while chars.get(j).is_some_and(|&d| is_word_char(d)) {
            j += 1;
        }
        (chars.get(start..j).unwrap_or_default().iter().collect(), j)
    };
    let is_kw = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    // Whether what starts at `j` completes a predicate on a field before it — an operator,
    // `in (`, `between` and a number or quote, `is [not] missing|null`, or `not` and `in (`
    // or `between …` — so that the word before is a field name, not a value typed as a search.
    let predicate_follows = |j: usize| -> bool {
        let at = skip_blanks(j);
        match chars.get(at) {
            Some('=' | '<' | '>') => return true,
            Some('!') => return chars.get(at + 1) == Some(&'='),
            _ => {}
        }
        let (mut w, mut end) = word_from(at);
        let negated = is_kw(&w, "not");
        if negated {
            (w, end) = word_from(end);
        }
        if is_kw(&w, "in") {
            chars.get(skip_blanks(end)) == Some(&'(')
        } else if is_kw(&w, "between") {
            // A number, or a quoted bound (an error, but not a search's word).
            matches!(chars.get(skip_blanks(end)), Some('\'' | '"'))
                || word_from(end).0.parse::<f64>().is_ok_and(f64::is_finite)
        } else if is_kw(&w, "is") && !negated {
            let (mut w, end) = word_from(end);
            if is_kw(&w, "not") {
                w = word_from(end).0;
            }
            is_kw(&w, "missing") || is_kw(&w, "null")
        } else {
            false
        }
    };
    let mut out = String::with_capacity(expr.len());
    let mut i = 0;
    // Whether a field name can stand here; whether a value does; the word before.
    let mut field_place = true;
    let mut value_place = false;
    let mut last_word = String::new();
    // A `between` was read, and its `and` not yet.
    let mut after_between = false;
    while let Some(&c) = chars.get(i) {
        if c == '\'' || c == '"' {
            (field_place, value_place) = (false, false);
            last_word.clear();
            // To the closing quote; a doubled quote inside is an escaped one.
            out.push(c);
            i += 1;
            while let Some(&d) = chars.get(i) {
                i += 1;
                if d == c && chars.get(i) != Some(&c) {
                    out.push(d);
                    break;
                }
                out.push('*');
                if d == c {
                    out.push('*');
                    i += 1;
                }
            }
        } else if is_word_char(c) {
            let (word, end) = word_from(i);
            let field = field_place && predicate_follows(end);
            let keep = !value_place && (is_keyword(&word) || field) && word.parse::<f64>().is_err();
            // A `not` opens a field's place only as a prefix (`x not in` and `is not` do not);
            // the `and` of `between X and Y` opens a value's place, not a field's.
            let bound_and = is_kw(&word, "and") && after_between;
            after_between = is_kw(&word, "between") || after_between && !bound_and;
            field_place = !value_place
                && !bound_and
                && (is_kw(&word, "and") || is_kw(&word, "or") || is_kw(&word, "not") && field_place);
            value_place = bound_and;
            let run = chars.get(i..end).unwrap_or_default();
            if keep {
                out.extend(run);
            } else {
                out.extend(run.iter().map(|_| '*'));
            }
            i = end;
            last_word = word;
        } else {
            if !c.is_whitespace() {
                // A `(` where a value stands (`name = ((Ada = 1))`) opens no field's place and
                // keeps the value's. (A `between` stays open to its `and`, whatever comes
                // between: in a filter that parses, the next `and` is its bound.)
                field_place = c == '(' && !value_place;
                value_place = matches!(c, '=' | '<' | '>' | ',')
                    || c == '(' && (is_kw(&last_word, "in") || value_place);
                last_word.clear();
            }
            // Syntax is kept; any other character (`@`, `/`, a combining mark) may be part
            // of a value the tokenizer refused.
            out.push(if c.is_whitespace() || matches!(c, '(' | ')' | '=' | '!' | '<' | '>' | ',') {
                c
            } else {
                '*'
            });
            i += 1;
        }
    }
    out
}

/// Whether `w` is written as a number (not `inf` or `NaN`) but overflows an f64.
pub(super) fn is_too_large(w: &str) -> bool {
    w.trim_start_matches(['+', '-']).starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && w.parse::<f64>().is_ok_and(f64::is_infinite)
}

/// A token as errors name it: its kind, never a value's text.
fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) if is_keyword(w) => format!("{:?}", w.to_ascii_lowercase()),
        // `1e400` (it read "a word").
        Tok::Word(w) if is_too_large(w) => "a number too large for a 64-bit float (beyond ±1.8e308)".into(),
        Tok::Word(_) => "a word".into(),
        Tok::Str(_) => "a string".into(),
        Tok::Num(..) => "a number".into(),
        Tok::Op(o) => format!("operator {o:?}"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
    }
}

fn tokenize(expr: &str) -> Result<Vec<(usize, Tok)>> {
    let chars: Vec<(usize, char)> = expr.char_indices().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&(at, c)) = chars.get(i) {
        let next = chars.get(i + 1).map(|&(_, c)| c);
        i += 1;
        let tok = match c {
            c if c.is_whitespace() => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            // `==` and `<>` as other languages and SQL write them: `=` is said instead of the
            // first (it read "expected a value, found operator"), the second is SQL's `!=`.
            '=' if next == Some('=') => return Err(err(expr, at, "'==' is not an operator here: write '='")),
            '=' => Tok::Op("="),
            '<' if next == Some('>') => {
                i += 1;
                Tok::Op("!=")
            }
            '!' if next == Some('=') => {
                i += 1;
                Tok::Op("!=")
            }
            '<' | '>' => {
                let eq = next == Some('=');
                if eq {
                    i += 1;
                }
                Tok::Op(match (c, eq) {
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    ('>', true) => ">=",
                    _ => ">",
                })
            }
            '\'' | '"' => {
                let mut s = String::new();
                loop {
                    let Some(&(_, d)) = chars.get(i) else {
                        return Err(err(expr, at, "unterminated string"));
                    };
                    i += 1;
                    if d == c {
                        // A doubled quote is an escaped quote.
                        if chars.get(i).map(|&(_, e)| e) == Some(c) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    s.push(d);
                }
                Tok::Str(s)
            }
            c if is_word_char(c) => {
                let mut s = String::from(c);
                while let Some(&(_, d)) = chars.get(i) {
                    if is_word_char(d) {
                        s.push(d);
                        i += 1;
                    } else {
                        break;
                    }
                }
                match s.parse::<f64>() {
                    Ok(x) if x.is_finite() => Tok::Num(x, s),
                    _ => Tok::Word(s),
                }
            }
            // Named only when it is ASCII punctuation: a letter the tokenizer refuses (a
            // combining accent, a curly apostrophe) may be part of a name.
            other if other.is_ascii_punctuation() => {
                return Err(err(expr, at, &format!("unexpected character {other:?}")))
            }
            _ => return Err(err(expr, at, "unexpected character (not shown: it may be part of a value)")),
        };
        toks.push((at, tok));
    }
    Ok(toks)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.expr.len(), |(at, _)| *at)
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<()> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            let found = self.peek().map_or_else(|| "the end".to_owned(), describe);
            Err(err(self.expr, self.at(), &format!("expected {what}, found {found}")))
        }
    }

    fn or(&mut self) -> Result<Filter> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Filter::Or(parts) })
    }

    fn and(&mut self) -> Result<Filter> {
        let mut parts = vec![self.not()?];
        while self.keyword("and") {
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Filter::And(parts) })
    }

    fn not(&mut self) -> Result<Filter> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(self.expr, self.at(), "the filter nests deeper than 64 levels"));
        }
        let f = if self.keyword("not") { Filter::Not(Box::new(self.not()?)) } else { self.atom()? };
        self.depth -= 1;
        Ok(f)
    }

    fn atom(&mut self) -> Result<Filter> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let f = self.or()?;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(f);
        }
        let field = match self.peek() {
            Some(Tok::Word(w)) => w.clone(),
            other => {
                let found = other.map_or_else(|| "the end".to_owned(), describe);
                return Err(err(self.expr, self.at(), &format!("expected a field name, found {found}")));
            }
        };
        self.fields.push(self.at());
        self.pos += 1;
        // SQL's `x not in (…)` and `x not between a and b`.
        if self.keyword("not") {
            let next_is =
                |p: &Self, k: &str| matches!(p.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k));
            if !(next_is(self, "in") || next_is(self, "between")) {
                let found = self.peek().map_or_else(|| "the end".to_owned(), describe);
                return Err(err(
                    self.expr,
                    self.at(),
                    &format!("expected in or between after the field name and not, found {found}"),
                ));
            }
            return Ok(Filter::Not(Box::new(self.predicate(field)?)));
        }
        self.predicate(field)
    }

    /// What follows a field name: `in (…)`, `is [not] missing`, `between a and b` or an
    /// operator and a value.
    fn predicate(&mut self, field: String) -> Result<Filter> {
        if self.keyword("in") {
            self.expect(&Tok::LParen, "'(' after in")?;
            let mut values = vec![self.value()?];
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                values.push(self.value()?);
            }
            self.expect(&Tok::RParen, "')' closing the in list")?;
            return Ok(Filter::In { field, values });
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !(self.keyword("missing") || self.keyword("null")) {
                let found = self.peek().map_or_else(|| "the end".to_owned(), describe);
                return Err(err(
                    self.expr,
                    self.at(),
                    &format!("expected 'missing' after 'is' or 'is not', found {found}"),
                ));
            }
            return Ok(if negated { Filter::present(field) } else { Filter::missing(field) });
        }
        if self.keyword("between") {
            let lo = self.number()?;
            if !self.keyword("and") {
                return Err(err(self.expr, self.at(), "expected 'and' in 'between X and Y'"));
            }
            let hi = self.number()?;
            return Ok(Filter::between(field, lo, hi));
        }
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            // `and value > 0`: the connective where a condition belongs (it read as a field
            // name followed by a word: from a hands-on review). Keywords are safe to repeat.
            _ if ["and", "or"].iter().any(|k| field.eq_ignore_ascii_case(k)) => {
                return Err(err(
                    self.expr,
                    self.toks.get(self.pos.saturating_sub(1)).map_or(0, |(at, _)| *at),
                    &format!("expected a condition before '{}'", field.to_ascii_lowercase()),
                ));
            }
            // `and not in ('x')`: the field left out (it read "expected =, … after the field
            // name, found '('", the keyword taken for the field).
            _ if is_keyword(&field) => {
                return Err(err(
                    self.expr,
                    self.toks.get(self.pos.saturating_sub(1)).map_or(0, |(at, _)| *at),
                    &format!("expected a field name before '{}'", field.to_ascii_lowercase()),
                ));
            }
            other => {
                let found = other.map_or_else(|| "the end".to_owned(), describe);
                return Err(err(
                    self.expr,
                    self.at(),
                    // (The word is not repeated: where a field belongs it may be a value.)
                    &format!(
                        "expected =, !=, <>, <, <=, >, >=, [not] in, [not] between or is after the field name, found {found}"
                    ),
                ));
            }
        };
        self.pos += 1;
        Ok(match op {
            "=" => Filter::In { field, values: vec![self.value()?] },
            "!=" => Filter::ne(field, self.value()?),
            _ => {
                let x = self.number()?;
                let (min, max) = match op {
                    "<" => (Bound::Unbounded, Bound::Excluded(x)),
                    "<=" => (Bound::Unbounded, Bound::Included(x)),
                    ">" => (Bound::Excluded(x), Bound::Unbounded),
                    _ => (Bound::Included(x), Bound::Unbounded),
                };
                Filter::Range { field, min, max }
            }
        })
    }

    fn value(&mut self) -> Result<String> {
        let v = match self.peek() {
            // SQL users write `tier = null` and mean `tier is missing`: as a string it would
            // silently match nothing (and `!=` everything with a value).
            Some(Tok::Word(w)) if ["null", "missing"].iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                return Err(err(
                    self.expr,
                    self.at(),
                    "an unquoted null or missing is not a value: test for a missing attribute with \
                     'is missing' (or 'is not missing'), or quote it to compare with the text",
                ));
            }
            Some(Tok::Str(s) | Tok::Word(s) | Tok::Num(_, s)) => s.clone(),
            other => {
                let found = other.map_or_else(|| "the end".to_owned(), describe);
                return Err(err(self.expr, self.at(), &format!("expected a value, found {found}")));
            }
        };
        self.pos += 1;
        Ok(v)
    }

    fn number(&mut self) -> Result<f64> {
        match self.peek() {
            Some(Tok::Num(x, _)) => {
                let x = *x;
                self.pos += 1;
                Ok(x)
            }
            Some(Tok::Word(w)) if is_too_large(w) => {
                Err(err(self.expr, self.at(), "the number is too large for a 64-bit float (beyond ±1.8e308)"))
            }
            other => {
                let found = other.map_or_else(|| "the end".to_owned(), describe);
                Err(err(self.expr, self.at(), &format!("expected a number, found {found}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_precedence_and_forms() {
        let f = parse("a = 'x' or b >= 2 and not c in (p, \"q r\")").unwrap();
        let want = Filter::Or(vec![
            Filter::eq("a", "x"),
            Filter::And(vec![
                Filter::at_least("b", 2.0),
                Filter::Not(Box::new(Filter::one_of("c", ["p", "q r"]))),
            ]),
        ]);
        assert_eq!(f, want);
        assert_eq!(parse("x between -1.5 and 2e3").unwrap(), Filter::between("x", -1.5, 2000.0));
        assert_eq!(parse("  ").unwrap(), Filter::All);
        assert_eq!(parse("name = 'O''Brien'").unwrap(), Filter::eq("name", "O'Brien"));
        // Trailing words: said in a sentence (it read "unexpected a word"), the word not shown.
        let err = parse("tier = 'gold' Secretname").unwrap_err().to_string();
        assert!(
            err.contains("a complete filter ends here, but a word follows") && !err.contains("Secretname"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_position() {
        for (text, pos) in [
            ("a = ", 4),
            ("a >= 'x'", 5),
            ("(a = 1", 6),
            ("a = 1 b", 6),
            ("a ~ 1", 2),
            ("a in (1,", 8),
            ("'open", 0),
            ("c = 'é' x", 8),
        ] {
            match parse(text) {
                Err(Error::InvalidFilter { position, .. }) => assert_eq!(position, pos, "{text}"),
                other => panic!("{text}: expected InvalidFilter, got {other:?}"),
            }
        }
        // A connective where a condition belongs is named as such (it read as a field name);
        // a field that is called `and` still works.
        for (text, pos, word) in [("and v > 0", 0, "and"), ("t = 'x' or OR v > 0", 11, "or")] {
            match parse(text) {
                Err(Error::InvalidFilter { position, reason, .. }) => {
                    assert_eq!(
                        (position, reason),
                        (pos, format!("expected a condition before '{word}'")),
                        "{text}"
                    )
                }
                other => panic!("{text}: expected InvalidFilter, got {other:?}"),
            }
        }
        assert_eq!(parse("and = 'x'").unwrap(), Filter::eq("and", "x"));
    }

    /// Field errors found against a schema point at the field in the text (they said
    /// "at character 0" and showed only the field), with the whole filter masked.
    #[test]
    fn parse_for_places_schema_errors() {
        let schema = Schema::crm().number("ltv").category("tier").pii("name");
        let place = |text: &str| match parse_for(text, &schema) {
            Err(Error::InvalidFilter { expr, position, reason }) => (expr, position, reason),
            other => panic!("{text}: expected InvalidFilter, got {other:?}"),
        };
        for (text, shown, pos, reason) in [
            ("tier = 'x' and tier > 5", "tier = '*' and tier > *", 15, "\"tier\" is a category field"),
            ("ltv = 'gold'", "ltv = '****'", 0, "\"ltv\" is a number field and a text value of 4"),
            ("(ltv < 1 or name = 'Ada')", "(ltv < * or name = '***')", 12, "\"name\" is a PII field"),
            (
                "not (tier = 'é' and Lovelace = 1)",
                "not (tier = '*' and ******** = *)",
                20,
                "unknown field of 8",
            ),
            (
                "tier not in ('a') or ltv = 1e400",
                "tier not in ('*') or ltv = *****",
                21,
                "\"ltv\" is a number field and the value is too large",
            ),
            (
                "ltv is missing and nme is not null",
                "ltv is missing and *** is not null",
                19,
                "unknown field of 3",
            ),
        ] {
            let (expr, position, r) = place(text);
            assert_eq!((expr.as_str(), position), (shown, pos), "{text}");
            assert!(r.starts_with(reason), "{text}: {r}");
        }
        // A field typed in another case is masked too, and the schema's spelling suggested.
        let (expr, _, r) = place("TIER = 'gold'");
        assert_eq!(expr, "**** = '****'");
        assert!(r.contains("did you mean tier? (field names are case-sensitive)"), "{r}");
        assert!(!place("Lovelace = 1").2.contains("did you mean"));
        // Every unknown field is masked, not only the one named (the second showed).
        for text in
            ["tier > 2 and Lovelace = 'x'", "Lovelace = 1 or Lovelace is missing", "a = 1 and tier > 2"]
        {
            let (shown, _, _) = place(text);
            assert!(!shown.contains("Lovelace") && !shown.contains("a ="), "{text}: {shown}");
        }
        // The first bad condition from the left is the one named.
        assert_eq!(place("a = 1 and tier > 2").1, 0);
        assert_eq!(place("tier > 2 and a = 1").1, 0);
        assert_eq!(place("tier = 'a' and (ltv = 1 or (a = 1 and tier > 2))").1, 28);
        // A filter the schema takes comes back as parse gives it; text errors are parse's.
        let text = "tier in ('a', b) and not ltv between 1 and 2 or tier is missing";
        assert_eq!(parse_for(text, &schema).unwrap(), parse(text).unwrap());
        assert_eq!(parse_for("", &schema).unwrap(), Filter::All);
        assert_eq!(
            place("tier = 'x' and").2,
            parse("tier = 'x' and").unwrap_err().to_string().split(": ").last().unwrap()
        );
        // A keyword where the field belongs; a number too large.
        assert_eq!(place("tier = 'x' and not in ('y')").1, 19);
        assert_eq!(place("tier = 'x' and not in ('y')").2, "expected a field name before 'in'");
        assert_eq!(place("ltv < 1e400").2, "the number is too large for a 64-bit float (beyond ±1.8e308)");
        assert!(parse("ltv < inf").unwrap_err().to_string().ends_with("expected a number, found a word"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("{}a = 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(matches!(parse(&text), Err(Error::InvalidFilter { .. })));
        let text = format!("{}a = 1", "not ".repeat(10_000));
        assert!(matches!(parse(&text), Err(Error::InvalidFilter { .. })));
    }

    /// A mistyped filter is refused before compiling would refuse its PII field: the error
    /// must not carry the values (found by a reviewing helper).
    #[test]
    fn errors_carry_no_values() {
        for text in [
            "email = 'alice@example.com' and",
            "email = 'alice@example.com' 'x'",
            "email = alice.example and",
            "email = alice.example bob.example",
            "phone = 5551234 and",
            "phone in ('5551234', 'bob''s' nope",
            "name between 'alice' and",
        ] {
            let e = parse(text).unwrap_err();
            let shown = format!("{e} {e:?}");
            for secret in ["alice", "example", "5551234", "bob", "nope"] {
                assert!(!shown.contains(secret), "{text}: {shown}");
            }
            assert!(shown.contains("email") || shown.contains("phone") || shown.contains("name"), "{shown}");
        }
        // A value typed where a field belongs (a filter used as a search box) is not
        // repeated in the reason either (it was: `after "Ada"`).
        for text in ["Ada Lovelace", "Lovelace", "tier = 'gold' or Grace Hopper", "Ada Lovelace in London"] {
            let e = parse(text).unwrap_err();
            let shown = format!("{e} {e:?}");
            for secret in ["Ada", "Lovelace", "Grace", "Hopper"] {
                assert!(!shown.contains(secret), "{text}: {shown}");
            }
        }
        assert_eq!(masked("a = 'x''y' and b in (1, z)"), "a = '****' and b in (*, *)");
        assert_eq!(masked("n between 1 and 2"), "n between * and *");
        assert_eq!(masked("not tier != 'gold'"), "not tier != '****'");
        assert_eq!(masked("tier is not missing or Ada is null"), "tier is not missing or Ada is null");
        assert_eq!(masked("tier = Ada is missing"), "tier = *** is missing");
        // `is` makes the word before it a field only when `[not] missing|null` follows, and
        // a keyword where a value stands is masked like any value (found by a reviewing helper).
        for (text, want) in [
            ("Ada is in London", "*** is in ******"),
            ("Smith is gold", "***** is ****"),
            ("Ada is not Lovelace", "*** is not ********"),
            ("name is not Ada in London", "**** is not *** in ******"),
            ("name = Null and", "name = **** and"),
            ("tier in (missing, null, 'x')", "tier in (*******, ****, '*')"),
            ("name = \"Ada and Bob\" or", "name = \"***********\" or"),
            // One-word names typed as a search (found by the second review).
            ("Lovelace in London", "******** in ******"),
            ("Smith not Jones", "***** not *****"),
            ("Ada NOT Byron", "*** NOT *****"),
            ("name = Ada or Lovelace in London", "name = *** or ******** in ******"),
            ("Ada between London and Paris", "*** between ****** and *****"),
            ("not Ada in London", "not *** in ******"),
            ("Lovelace!", "********!"),
            ("email = ada@example.com", "email = ***************"),
            // A `not` that is not a prefix opens no field place; `between` needs a finite
            // number (found by the third review).
            ("name not Ada in (London)", "**** not *** in (******)"),
            ("tier in (x) not Ada = 1", "tier in (*) not *** = *"),
            ("name = not Lovelace in (x)", "name = *** ******** in (*)"),
            ("Smith between Infinity and Beyond", "***** between ******** and ******"),
            ("name = Jose\u{301} and", "name = ***** and"),
            ("name = O\u{2019}Brien", "name = *******"),
            // A `(` where a value stands, and the `and` of `between`, open no field's place
            // (found by the fourth review).
            ("name = (Lovelace = 1)", "name = (******** = *)"),
            ("name in (x, (Ada = 1))", "name in (*, (*** = *))"),
            ("age between 1 and Lovelace in (x)", "age between * and ******** in (*)"),
            ("age between 1 and Ada = 2", "age between * and *** = *"),
            ("name = ((Lovelace = 1))", "name = ((******** = *))"),
            ("name in (((Ada = 1)))", "name in (((*** = *)))"),
            ("a between (1) and Ada = 2", "* between (*) and *** = *"),
            ("a between 1/2 and Ada = 3", "a between *** and *** = *"),
        ] {
            assert_eq!(masked(text), want, "{text}");
            let e = parse(text).unwrap_err();
            let shown = format!("{e} {e:?}");
            for secret in [
                "Ada",
                "London",
                "Smith",
                "gold",
                "Lovelace",
                "Null",
                "missing, null",
                "Bob",
                "Infinity",
                "Beyond",
                "\u{301}",
                "\u{2019}",
                "Brien",
                "Jose",
            ] {
                assert!(!shown.contains(secret), "{text}: {shown}");
            }
        }
    }

    #[test]
    fn is_missing_and_is_not_missing() {
        assert_eq!(parse("tier is missing").unwrap(), Filter::missing("tier"));
        assert_eq!(parse("tier IS NOT NULL").unwrap(), Filter::present("tier"));
        assert_eq!(
            parse("not ltv is missing and tier = 'x'").unwrap(),
            Filter::And(vec![Filter::Not(Box::new(Filter::missing("ltv"))), Filter::eq("tier", "x")])
        );
        // Unquoted null or missing as a value is refused with the way to say it; quoted, it
        // is text.
        for text in ["tier = null", "tier != NULL", "tier in ('a', missing)"] {
            let reason = match parse(text) {
                Err(Error::InvalidFilter { reason, .. }) => reason,
                other => panic!("{text}: expected InvalidFilter, got {other:?}"),
            };
            assert!(reason.contains("'is missing'"), "{text}: {reason}");
        }
        assert_eq!(parse("tier = 'null'").unwrap(), Filter::eq("tier", "null"));
        // SQL's other spellings: `<>`, `not in`, `not between`; `==` is refused with `=`.
        assert_eq!(parse("tier <> 'gold'").unwrap(), Filter::ne("tier", "gold"));
        assert_eq!(
            parse("tier not in (a, b) or ltv NOT BETWEEN 1 and 2").unwrap(),
            Filter::Or(vec![
                Filter::Not(Box::new(Filter::one_of("tier", ["a", "b"]))),
                Filter::Not(Box::new(Filter::between("ltv", 1.0, 2.0))),
            ])
        );
        for (text, pos, reason) in [
            ("tier == 'gold'", 5, "'==' is not an operator here: write '='"),
            (
                "tier not = 'x'",
                9,
                "expected in or between after the field name and not, found operator \"=\"",
            ),
            ("tier not", 8, "expected in or between after the field name and not, found the end"),
        ] {
            match parse(text) {
                Err(Error::InvalidFilter { position, reason: r, .. }) => {
                    assert_eq!((position, r.as_str()), (pos, reason), "{text}")
                }
                other => panic!("{text}: expected InvalidFilter, got {other:?}"),
            }
        }
        assert_eq!(masked("Ada not in (Lovelace)"), "Ada not in (********)");
        for (text, pos) in [("tier is", 7), ("tier is not 'x'", 12), ("tier is gold", 8)] {
            match parse(text) {
                Err(Error::InvalidFilter { position, reason, .. }) => {
                    assert_eq!(position, pos, "{text}");
                    assert!(reason.starts_with("expected 'missing' after 'is'"), "{text}: {reason}");
                }
                other => panic!("{text}: expected InvalidFilter, got {other:?}"),
            }
        }
    }
}
