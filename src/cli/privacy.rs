//! The privacy commands: `audit`, `duplicates`, `find`.

use geocrm::Result;
use serde_json::{json, Value};

use super::args::DbArgs;
use super::commands::{open, print_json};

/// `geocrm audit`: every audit entry, oldest first (no key needed).
pub fn audit(db: &DbArgs) -> Result<()> {
    let database = open(db, false)?;
    let entries = database.audit_entries()?;
    if db.json {
        print_json(&serde_json::to_value(&entries).unwrap_or(Value::Null));
    } else {
        for e in &entries {
            let action = serde_json::to_value(e.action).unwrap_or(Value::Null);
            println!(
                "{} {:<16} {:<10} {:<16} ids={} fields={}",
                e.unix_ms,
                e.actor,
                action.as_str().unwrap_or("?"),
                e.collection,
                e.ids.join(","),
                e.fields.join(",")
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
            println!("{:<18} {}", reason.as_str().unwrap_or("?"), g.ids.join(" "));
        }
    }
    Ok(())
}

/// `geocrm find --phone P | --email E`: matching ids (needs the key).
pub fn find(db: &DbArgs, phone: Option<&str>, email: Option<&str>) -> Result<()> {
    let database = open(db, true)?;
    let snap = database.read();
    let c = snap.collection(&db.collection)?;
    let ids = match (phone, email) {
        (Some(p), _) => c.find_by_phone(p)?,
        (None, Some(e)) => c.find_by_email(e)?,
        (None, None) => Vec::new(),
    };
    if db.json {
        print_json(&json!(ids));
    } else {
        ids.iter().for_each(|id| println!("{id}"));
    }
    Ok(())
}
