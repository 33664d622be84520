//! `geocrm erase` and `geocrm export-subject`.

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
