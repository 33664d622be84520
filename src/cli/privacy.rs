//! The privacy commands: `audit`.

use geocrm::Result;
use serde_json::Value;

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
