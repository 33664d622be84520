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
    // The entries before any damage are shown, then the damage is the command's error (one
    // damaged frame hid every entry: from a hands-on review).
    let (mut entries, damage) = database.audit_entries_before_damage()?;
    // `--collection`: that collection's entries only (the collection may be gone since).
    if let Some(name) = db.collection.as_deref() {
        entries.retain(|e| e.collection == name);
    }
    let damage = damage.map(|e| match e {
        geocrm::Error::Corrupt { file, offset, reason } => geocrm::Error::corrupt(
            file,
            offset,
            format!("{reason} (the entries before it are shown; `geocrm repair` cuts the audit log there)"),
        ),
        other => other,
    });
    if db.json {
        let entries = serde_json::to_value(&entries).unwrap_or(Value::Null);
        match &damage {
            None => print_json(&entries),
            // One document: the entries, and the error the command ends with.
            Some(e) => {
                print_json(&serde_json::json!({"entries": entries, "error": super::commands::error_json(e)}))
            }
        }
    } else {
        for e in &entries {
            let action = serde_json::to_value(e.action).unwrap_or(Value::Null);
            // A value that could pass for another column or list item (spaces, commas, `=`,
            // quotes; control characters, which an older version let into an actor) is
            // shown quoted and escaped; any other value as it is, as in --json.
            let list = |items: &[String]| items.iter().map(|i| shown(i)).collect::<Vec<_>>().join(",");
            println!(
                "{} {:<16} {:<10} {:<16} ids={} fields={}",
                utc_time(e.unix_ms),
                shown(&e.actor),
                action.as_str().unwrap_or("?"),
                shown(&e.collection),
                list(&e.ids),
                list(&e.fields)
            );
        }
    }
    damage.map_or(Ok(()), Err)
}

/// `unix_ms` as a UTC time, `YYYY-MM-DDTHH:MM:SS.mmmZ` (days to dates: Howard Hinnant's
/// `civil_from_days`).
fn utc_time(unix_ms: u64) -> String {
    let (secs, ms) = (unix_ms / 1000, unix_ms % 1000);
    let (days, rem) = (i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2), secs % 86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ms:03}Z")
}

/// `geocrm duplicates [--name-fields a,b]`: groups of likely duplicates (needs the key).
pub fn duplicates(db: &DbArgs, name_fields: &[String]) -> Result<()> {
    let database = open(db, true)?;
    let snap = database.read();
    let coll = snap.collection(db.collection())?;
    let groups = if name_fields.is_empty() {
        if coll.schema().pii_kind("name") != Some(geocrm::model::PiiKind::Text) {
            // An empty answer would read as "no duplicate names" (from a hands-on review).
            eprintln!(
                "note: {:?} has no text PII field called name: names were not compared (--name-fields \
                 FIELD,… names the fields that hold them)",
                db.collection()
            );
        }
        coll.duplicates()?
    } else {
        let fields: Vec<&str> = name_fields.iter().map(String::as_str).collect();
        coll.duplicates_by(&fields)
            .map_err(|e| super::commands::as_flags(e, &[("name_fields", "name-fields")]))?
    };
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
    let c = snap.collection(db.collection())?;
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
            eprintln!("no record in {:?} has that {what}", db.collection());
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

#[cfg(test)]
mod tests {
    #[test]
    fn utc_times_match_the_calendar() {
        for (ms, want) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_764_953_497_123, "2025-12-05T16:51:37.123Z"),
            (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
            (253_402_300_799_000, "9999-12-31T23:59:59.000Z"),
        ] {
            assert_eq!(super::utc_time(ms), want);
        }
        assert!(!super::utc_time(u64::MAX).is_empty());
    }
}
