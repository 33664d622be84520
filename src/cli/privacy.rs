//! The privacy commands: `audit`, `duplicates`, `find`.

use std::io::{BufRead, Read};

use geocrm::{Error, Result};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::args::DbArgs;
use super::commands::{open, open_read, print_json};

/// `geocrm audit`: every audit entry, oldest first (no key needed).
pub fn audit(db: &DbArgs) -> Result<()> {
    let database = open_read(db)?;
    let entries = database.audit_entries()?;
    if db.json {
        print_json(&serde_json::to_value(&entries).unwrap_or(Value::Null));
    } else {
        for e in &entries {
            let action = serde_json::to_value(e.action).unwrap_or(Value::Null);
            // A value that could pass for another column or list item (spaces, commas, `=`,
            // quotes; control characters, which an older version let into an actor) is
            // shown quoted and escaped; any other value as it is, as in --json.
            let list = |items: &[String]| items.iter().map(|i| shown(i)).collect::<Vec<_>>().join(",");
            println!(
                "{} {:<16} {:<10} {:<16} ids={} fields={}",
                e.unix_ms,
                shown(&e.actor),
                action.as_str().unwrap_or("?"),
                shown(&e.collection),
                list(&e.ids),
                list(&e.fields)
            );
        }
    }
    Ok(())
}

/// `geocrm duplicates`: groups of likely duplicates (needs the key).
pub fn duplicates(db: &DbArgs) -> Result<()> {
    let database = open(db, true)?;
    let snap = database.read();
    let groups = snap.collection(&db.collection)?.duplicates()?;
    if db.json {
        print_json(&serde_json::to_value(&groups).unwrap_or(Value::Null));
    } else {
        for g in &groups {
            let reason = serde_json::to_value(g.reason).unwrap_or(Value::Null);
            // Space-separated: an id with a space (or anything `shown` quotes) is quoted.
            let ids: Vec<String> = g.ids.iter().map(|id| shown(id)).collect();
            println!("{:<18} {}", reason.as_str().unwrap_or("?"), ids.join(" "));
        }
    }
    Ok(())
}

/// `geocrm find --phone P | --email E`: matching ids (needs the key). A value given as `-`
/// is read from the first line of standard input, out of the shell's history and the
/// process list.
pub fn find(db: &DbArgs, phone: Option<&str>, email: Option<&str>) -> Result<()> {
    let (phone, email) = (
        phone.map(|p| from_stdin_if_dash(p, "phone")).transpose()?,
        email.map(|e| from_stdin_if_dash(e, "email")).transpose()?,
    );
    let database = open(db, true)?;
    let snap = database.read();
    let c = snap.collection(&db.collection)?;
    let what = if phone.is_none() && email.is_some() { "e-mail address" } else { "phone number" };
    let ids = match (phone, email) {
        (Some(p), _) => c.find_by_phone(&p)?,
        (None, Some(e)) => c.find_by_email(&e)?,
        (None, None) => Vec::new(),
    };
    if db.json {
        print_json(&json!(ids));
    } else {
        ids.iter().for_each(|id| println!("{}", super::commands::id_shown(id)));
        if ids.is_empty() {
            // On standard error, so that standard output stays the list (empty).
            eprintln!("no record in {:?} has that {what}", db.collection);
        }
    }
    Ok(())
}

/// `value`, or for `-` the first line of standard input without its line ending (wiped
/// from memory when dropped; the standard library's own input buffer is not).
fn from_stdin_if_dash(value: &str, what: &'static str) -> Result<Zeroizing<String>> {
    if value != "-" {
        return Ok(Zeroizing::new(value.to_owned()));
    }
    // Room for the longest value the write path accepts and its line ending, reserved up
    // front so the buffer never moves (a grown one would leave an unwiped copy behind);
    // longer input is refused.
    const MAX: usize = 64 * 1024;
    let mut line = Zeroizing::new(Vec::with_capacity(MAX + 2));
    std::io::stdin()
        .lock()
        .take(MAX as u64 + 2)
        .read_until(b'\n', &mut line)
        .map_err(|e| Error::invalid_argument(what, format!("reading it from standard input: {e}")))?;
    let ending = usize::from(line.ends_with(b"\n")) + usize::from(line.ends_with(b"\r\n"));
    let len = line.len() - ending;
    if len > MAX {
        return Err(Error::invalid_argument(what, "the line on standard input is longer than 64 KiB"));
    }
    line.truncate(len);
    if line.is_empty() {
        return Err(Error::invalid_argument(
            what,
            "'-' reads it from standard input, which gave an empty line",
        ));
    }
    if std::str::from_utf8(&line).is_err() {
        return Err(Error::invalid_argument(what, "the line on standard input is not valid UTF-8"));
    }
    // Moves the checked bytes into the string (no copy); the Vec's wrapper wipes nothing left.
    let text = String::from_utf8(std::mem::take(&mut *line)).unwrap_or_default();
    Ok(Zeroizing::new(text))
}

/// `text` as it is, or quoted and escaped (`"support agent"`, `"a\nb"`) when it holds
/// whitespace, a comma, `=`, a quote, a control or an invisible character.
pub(super) fn shown(text: &str) -> String {
    // `Debug` escapes quotes, backslashes, control and non-printing characters.
    let quoted = format!("{text:?}");
    let plain = !text.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || matches!(c, ',' | '='))
        && quoted.len() == text.len() + 2;
    if plain {
        text.to_owned()
    } else {
        quoted
    }
}
