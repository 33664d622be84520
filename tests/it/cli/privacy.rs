//! `geocrm erase`, `geocrm export-subject` and `geocrm audit`.

use serde_json::Value;

use super::{contains, ok, Env};

#[test]
fn export_subject_then_erase_leaves_no_way_back() {
    let env = Env::new();
    let rows = env.import_fixture();
    let r = &rows[3];
    let out = ok(&env.run(true, "export-subject", &["--id", &r.id, "--json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], r.id.as_str());
    assert_eq!(v["pii"]["name"], r.pii[0].as_str());
    assert!(env.fail("export-subject", &["--id", &r.id]).contains("key"), "export needs the key");

    let receipt: Value =
        serde_json::from_str(&ok(&env.run(true, "erase", &["--id", &r.id, "--json"]))).unwrap();
    assert_eq!(receipt["id"], r.id.as_str());
    assert_eq!(receipt["existed"], true);
    assert!(receipt["removed"].as_array().unwrap().iter().any(|x| x == "data key"));
    assert_eq!(env.records(), Some(59));
    let err = super::fail(&env.run(true, "get", &["--id", &r.id, "--reveal"]));
    assert!(err.contains("no such record"), "{err}");
    // The keystore no longer holds the record's id (its entry was rewritten away).
    let keystore = std::fs::read(env.db.join("keystore")).unwrap();
    assert!(!contains(&keystore, &r.id));
}

#[test]
fn audit_lists_reveals_and_exports_with_actor_ids_and_fields_only() {
    let env = Env::new();
    let rows = env.import_fixture();
    assert_eq!(env.json("audit", &[]), serde_json::json!([]), "imports are not audited");
    ok(&env.run(true, "get", &["--id", &rows[1].id, "--reveal", "--actor", "alice"]));
    ok(&env.run(true, "export-subject", &["--id", &rows[2].id, "--actor", "bob"]));
    ok(&env.run(true, "get", &["--id", &rows[3].id])); // sealed: not a PII read
    let entries = env.json("audit", &[]);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for (e, (actor, action, row)) in
        entries.iter().zip([("alice", "reveal", &rows[1]), ("bob", "export", &rows[2])])
    {
        assert_eq!(e["actor"], actor);
        assert_eq!(e["action"], action);
        assert_eq!(e["collection"], "customers");
        assert_eq!(e["ids"], serde_json::json!([row.id]));
        assert_eq!(e["fields"], serde_json::json!(["address", "email", "name", "phone"]));
        assert!(e["unix_ms"].as_u64().unwrap() > 1_700_000_000_000);
    }
    let text = env.ok("audit", &[]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("alice") && text.contains(&rows[1].id) && text.contains("reveal"), "{text}");
    let file = std::fs::read(env.db.join("audit.log")).unwrap();
    for row in &rows[1..3] {
        for value in &row.pii {
            assert!(!text.contains(value.as_str()) && !contains(&file, value), "PII in the audit log");
        }
    }
}
