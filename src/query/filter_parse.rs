//! The `--where` parser: a tokenizer and a recursive-descent parser with positions.

use std::ops::Bound;

use super::filter::Filter;
use crate::error::{Error, Result};

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
}

pub(super) fn parse(expr: &str) -> Result<Filter> {
    if expr.len() > MAX_EXPR_LEN {
        return Err(err(expr, 0, "the filter is longer than 64 KiB"));
    }
    let toks = tokenize(expr)?;
    if toks.is_empty() {
        return Ok(Filter::All);
    }
    let mut p = Parser { expr, toks, pos: 0, depth: 0 };
    let f = p.or()?;
    if let Some((at, t)) = p.toks.get(p.pos) {
        return Err(err(expr, *at, &format!("unexpected {} after a complete filter", describe(t))));
    }
    Ok(f)
}

/// `position` is a byte offset into `expr`; the error reports it in characters.
fn err(expr: &str, position: usize, reason: &str) -> Error {
    let position = expr.get(..position).map_or(position, |s| s.chars().count());
    Error::InvalidFilter { expr: expr.to_owned(), position, reason: reason.to_owned() }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("word {w:?}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Num(_, s) => format!("number {s}"),
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
            '=' => Tok::Op("="),
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
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '+' => {
                let mut s = String::from(c);
                while let Some(&(_, d)) = chars.get(i) {
                    if d.is_alphanumeric() || matches!(d, '_' | '-' | '.' | '+') {
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
            other => return Err(err(expr, at, &format!("unexpected character {other:?}"))),
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
        self.pos += 1;
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
            other => {
                let found = other.map_or_else(|| "the end".to_owned(), describe);
                return Err(err(
                    self.expr,
                    self.at(),
                    &format!("expected =, !=, <, <=, >, >=, in or between after {field:?}, found {found}"),
                ));
            }
        };
        self.pos += 1;
        Ok(match op {
            "=" => Filter::In { field, values: vec![self.value()?] },
            "!=" => Filter::Not(Box::new(Filter::In { field, values: vec![self.value()?] })),
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
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("{}a = 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(matches!(parse(&text), Err(Error::InvalidFilter { .. })));
        let text = format!("{}a = 1", "not ".repeat(10_000));
        assert!(matches!(parse(&text), Err(Error::InvalidFilter { .. })));
    }
}
