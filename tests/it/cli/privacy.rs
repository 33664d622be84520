//! `geocrm erase`, `export-subject`, `audit`, `find` and `duplicates`, and phone/e-mail
//! validation in `import`.

use serde_json::Value;

use super::{contains, fail, ok, Env};

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
    // What the log keeps until `compact`, in the JSON receipt too (only the text said so).
    let kept = receipt["until_compaction"].as_array().unwrap();
    assert!(kept.iter().any(|x| x.as_str().unwrap().contains("location")), "{receipt}");
    assert_eq!(env.records(), Some(59));
    let err = super::fail(&env.run(true, "get", &["--id", &r.id, "--reveal"]));
    assert!(err.contains("no such record"), "{err}");
    // The keystore no longer holds the record's id (its entry was rewritten away).
    let keystore = std::fs::read(env.db.join("keystore")).unwrap();
    assert!(!contains(&keystore, &r.id));

    // Several ids: one receipt each, as an array; the text form has a line per id.
    let (a, b) = (&rows[5].id, &rows[6].id);
    let receipts: Value =
        serde_json::from_str(&ok(&env.run(true, "erase", &["--id", a, "--id", b, "--json"]))).unwrap();
    let receipts = receipts.as_array().unwrap();
    assert_eq!(receipts.len(), 2);
    assert_eq!(
        (&receipts[0]["id"], &receipts[1]["id"]),
        (&Value::from(a.as_str()), &Value::from(b.as_str()))
    );
    assert_eq!(env.records(), Some(57));
    // The same id twice: one receipt, still an array (the shape follows the arguments).
    let c = &rows[8].id;
    let receipts: Value =
        serde_json::from_str(&ok(&env.run(true, "erase", &["--id", c, "--id", c, "--json"]))).unwrap();
    assert_eq!(receipts.as_array().map(Vec::len), Some(1), "{receipts}");
    assert_eq!(env.records(), Some(56));
    let text = ok(&env.run(true, "erase", &["--id", &rows[7].id, "--id", "nobody"]));
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("nobody was not present"), "{text}");
    // "Removed" is about the live record: what the log keeps until a compaction is said.
    assert!(text.lines().last().is_some_and(|l| l.starts_with("note: until `geocrm compact`")), "{text}");
    // Deleted, then erased: the text says the erasure destroyed the data key the deletion
    // kept, as the JSON receipt does (it said only "not present": from the privacy review).
    let d = &rows[9].id;
    env.ok("delete", &["--id", d]);
    let text = ok(&env.run(true, "erase", &["--id", d]));
    assert!(text.contains("was not present (deleted before)") && text.contains("removed data key"), "{text}");
}

#[test]
fn audit_lists_reveals_and_exports_with_actor_ids_and_fields_only() {
    let env = Env::new();
    let rows = env.import_fixture();
    assert_eq!(env.json("audit", &[]), serde_json::json!([]), "imports are not audited");
    ok(&env.run(true, "get", &["--id", &rows[1].id, "--reveal", "--actor", "alice"]));
    // (Spaces around an actor are dropped: it was another actor than `bob`.)
    ok(&env.run(true, "export-subject", &["--id", &rows[2].id, "--actor", " bob\u{a0}"]));
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
    // An actor that would forge a line in the listing (or is empty, or huge) is refused.
    let forged = "mallory\n1796400000000 alice reveal customers ids=X fields=phone";
    // So is a blank one, which would record the read as nobody's (from the privacy review).
    for actor in [
        forged,
        "",
        &"a".repeat(300),
        "mallory\u{202e}ecila",
        "mallory\u{2028}x",
        "a\tb",
        "\tbob",
        "bob\n",
        "   ",
        "\u{3000}",
        "\u{2800}",
    ] {
        let err = fail(&env.run(true, "get", &["--id", &rows[1].id, "--reveal", "--actor", actor]));
        assert!(err.contains("invalid argument actor"), "{err}");
    }
    // Spaces of other scripts are ordinary (a full-width space in a Japanese name).
    ok(&env.run(true, "stats", &["--actor", "山田\u{3000}太郎"]));
    // A blank GEOCRM_ACTOR is unset, not a refused actor.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geocrm"))
        .args(["stats", "--db"])
        .arg(&env.db)
        .env("GEOCRM_ACTOR", "  ")
        .output()
        .unwrap();
    ok(&out);
    let text = env.ok("audit", &[]);
    assert_eq!(text.lines().count(), 2, "{text}");
    // A value that could pass for another column is quoted in the listing.
    ok(&env.run(true, "get", &["--id", &rows[1].id, "--reveal", "--actor", "eve  reveal  customers  ids=X"]));
    let text = env.ok("audit", &[]);
    let last = text.lines().last().unwrap();
    assert!(last.contains(" \"eve  reveal  customers  ids=X\" "), "{last}");
    assert_eq!(env.json("audit", &[])[2]["actor"], "eve  reveal  customers  ids=X");
    let text = text.lines().take(2).collect::<Vec<_>>().join("\n");
    assert!(text.contains("alice") && text.contains(&rows[1].id) && text.contains("reveal"), "{text}");
    let file = std::fs::read(env.db.join("audit.log")).unwrap();
    for row in &rows[1..3] {
        for value in &row.pii {
            assert!(!text.contains(value.as_str()) && !contains(&file, value), "PII in the audit log");
        }
    }
}

/// `duplicates` lists a group's ids on one line: an id with a space is quoted, or `A B C`
/// read as three records where there were two (from the privacy review).
#[test]
fn duplicates_quotes_ids_that_would_read_as_several() {
    let env = Env::new();
    let csv = env.file(
        "dup.csv",
        "id,lat,lon,name,phone\nA B,48.8,2.3,Ann,+44 20 7946 0958\nC,10.0,2.3,Cy,+442079460958\n",
    );
    ok(&env.run(true, "import", &[csv.to_str().unwrap(), "--pii", "name", "--phone", "phone"]));
    let text = ok(&env.run(true, "duplicates", &[]));
    assert_eq!(text.trim(), "same_phone         \"A B\" C", "{text}");
    let found = ok(&env.run(true, "find", &["--phone", "+442079460958"]));
    assert_eq!(found, "A B\nC\n");
}

#[test]
fn import_validates_phone_and_email_columns_with_line_and_column_never_the_value() {
    let header = "id,lat,lon,name,phone,email";
    let csv = format!(
        "{header}\n\
         G-1,48.8,2.3,Gina,+33 6 12 34 56 78,Gina@Example.org\n\
         B-1,48.8,2.3,Bob,06 12 34 99 88,bob@example.org\n\
         B-2,48.8,2.3,Bea,+33 6 12 34 77 66,bea-at-example.org\n\
         G-2,48.8,2.3,Gus,,gus@example.org\n"
    );
    let env = Env::new();
    let file = env.file("people.csv", &csv);
    let path = file.to_str().unwrap();
    let err = super::fail(&env.run(
        true,
        "import",
        &[path, "--pii", "name", "--phone", "phone", "--email", "email"],
    ));
    assert_eq!(
        err.trim(),
        "error: line 3, column phone: phone number must start with '+' and a country code (E.164)"
    );
    assert!(!env.db.join("log").exists() || env.records().is_none_or(|n| n == 0), "nothing imported");
    let rejects = env.dir.path().join("rejects.csv");
    let args = [
        path,
        "--pii",
        "name",
        "--phone",
        "phone",
        "--email",
        "email",
        "--skip-invalid",
        rejects.to_str().unwrap(),
        "--json",
    ];
    let out: Value = serde_json::from_str(&ok(&env.run(true, "import", &args))).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"imported": 2, "replaced": 0, "rejected": 2, "created_collection": true, "missing_values": {}, "empty_rows": 0, "notes": [], "schema": {"numbers": [], "categories": [], "pii": ["name"], "phones": ["phone"], "emails": ["email"]}, "fields_not_in_file": []})
    );
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(
        text,
        "line,id,column,reason\n\
         3,B-1,phone,phone number must start with '+' and a country code (E.164)\n\
         4,B-2,email,e-mail address must contain exactly one '@'\n"
    );
    for value in ["06 12 34 99 88", "0612349988", "bea-at-example", "99 88"] {
        assert!(!text.contains(value) && !err.contains(value), "{value} echoed");
    }
    // Stored normalized; the collection remembers the kinds (a second import validates
    // without --phone/--email), and lookups work from the CLI.
    let got = ok(&env.run(true, "get", &["--id", "G-1", "--reveal", "--json"]));
    let got: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["pii"]["phone"], "+33612345678");
    assert_eq!(got["pii"]["email"], "gina@example.org");
    let more = env.file("more.csv", format!("{header}\nB-3,48.8,2.3,Bo,+1 (555) 0100 x7,b3@example.org\n"));
    let err = super::fail(&env.run(true, "import", &[more.to_str().unwrap(), "--pii", "name,phone,email"]));
    assert_eq!(err.trim(), "error: line 2, column phone: phone number may contain only digits after '+'");
    let found = ok(&env.run(true, "find", &["--phone", "+33 612 345 678"]));
    assert_eq!(found.trim(), "G-1");
    let found = ok(&env.run(true, "find", &["--email", "GINA@example.org", "--json"]));
    assert_eq!(serde_json::from_str::<Value>(&found).unwrap(), serde_json::json!(["G-1"]));
    // `-` reads the value from standard input (out of shell history and `ps`).
    assert_eq!(ok(&find_from_stdin(&env, "--phone", "+33 612 345 678\n")).trim(), "G-1");
    assert_eq!(ok(&find_from_stdin(&env, "--email", "gina@example.org\r\n")).trim(), "G-1");
    let none = find_from_stdin(&env, "--email", "nobody@example.org");
    assert_eq!(ok(&none).trim(), "");
    let said = String::from_utf8_lossy(&none.stderr);
    assert!(said.contains("no record") && !said.contains("nobody"), "{said}");
    let err = super::fail(&find_from_stdin(&env, "--phone", "\n"));
    assert!(err.contains("phone") && err.contains("standard input"), "{err}");
    for long in ["a".repeat(70_000), "é".repeat(40_000)] {
        let err = super::fail(&find_from_stdin(&env, "--email", &long));
        assert!(err.contains("longer than 64 KiB") && !err.contains("aaaa") && !err.contains("éé"), "{err}");
    }
    // Exactly 64 KiB with a CRLF ending is read whole (and then refused as no e-mail).
    let err = super::fail(&find_from_stdin(&env, "--email", &format!("{}\r\n", "a".repeat(65_536))));
    assert!(!err.contains("64 KiB") && !err.contains("aaaa"), "{err}");
}

/// `geocrm find FLAG -` with `input` on standard input.
fn find_from_stdin(env: &Env, flag: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_geocrm"))
        .args(["find", "--db", env.db.to_str().unwrap(), flag, "-"])
        .env("GEOCRM_KEY", super::KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused over-long line may close the pipe before all of it is written.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn duplicates_command_reports_groups() {
    let csv = "id,lat,lon,name,phone,email\n\
               A,48.8,2.3,Ada Lovelace,+33 6 12 34 56 78,a@example.org\n\
               B,10.0,2.3,Someone,+33612345678,b@example.org\n\
               C,30.0,2.3,Alan Turing,,c@example.org\n\
               D,30.0001,2.3,alan turing,,C@Example.org\n";
    let env = Env::new();
    let file = env.file("people.csv", csv);
    ok(&env.run(
        true,
        "import",
        &[file.to_str().unwrap(), "--pii", "name", "--phone", "phone", "--email", "email"],
    ));
    let out = ok(&env.run(true, "duplicates", &["--json", "--actor", "dedup"]));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!([
            {"reason": "same_phone", "ids": ["A", "B"]},
            {"reason": "same_email", "ids": ["C", "D"]},
            {"reason": "same_name_nearby", "ids": ["C", "D"]},
        ])
    );
    let text = ok(&env.run(true, "duplicates", &[]));
    assert_eq!(text.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["same_phone", "A", "B"]);
    assert!(env.fail("duplicates", &[]).contains("key"), "needs the key");
    let audit = env.json("audit", &[]);
    assert_eq!(audit[0]["action"], "duplicates");
    assert_eq!(audit[0]["actor"], "dedup");
}

/// Names held in fields not called `name` are compared when named (they never were: the
/// report was empty with no word why; from a hands-on review).
#[test]
fn duplicates_compares_the_name_fields_it_is_given() {
    let env = Env::new();
    let file = env.file(
        "people.csv",
        // F4 and F5 hold "Lee" in different fields: not the same name.
        "id,lat,lon,first,last\nF1,1,1,Ann,Lee\nF2,1.00001,1,ANN ,lee\nF3,1.00001,1,Ann,\nF4,1,1,,Lee\nF5,1,1,Lee,\n",
    );
    ok(&env.run(true, "import", &[file.to_str().unwrap(), "--pii", "first,last"]));
    let out = env.run(true, "duplicates", &["--json"]);
    assert_eq!(serde_json::from_str::<Value>(&ok(&out)).unwrap(), serde_json::json!([]));
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(note.contains("no text PII field called name: names were not compared (--name-fields"), "{note}");
    let out = ok(&env.run(true, "duplicates", &["--json", "--name-fields", "first,last"]));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!([{"reason": "same_name_nearby", "ids": ["F1", "F2"]}])
    );
    let err = fail(&env.run(true, "duplicates", &["--name-fields", "first,lat"]));
    assert!(err.contains("invalid argument name-fields: \"lat\" is not a text PII field"), "{err}");
    let audit = env.json("audit", &[]);
    assert_eq!(audit.as_array().unwrap().last().unwrap()["fields"], serde_json::json!(["first", "last"]));
}

/// A `--key-file` a command does not need is read all the same: a missing or malformed one
/// is an error naming it (it passed unseen: `checkpoint --key-file /nonexistent/key` and
/// `get` without `--reveal` succeeded; from a hands-on review), and a good one changes
/// nothing.
#[test]
fn a_key_file_a_command_does_not_need_is_still_read() {
    let env = Env::new();
    let rows = env.import_fixture();
    let id = rows[0].id.as_str();
    let good = env.file("good.key", format!("{}\n", super::KEY));
    let bad = env.file("bad.key", "not a key\n");
    use std::os::unix::fs::PermissionsExt;
    for key in [&good, &bad] {
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let missing = env.dir.path().join("missing.key");
    let commands: [(&str, Vec<&str>); 4] = [
        ("get", vec!["--id", id]),
        ("near", vec!["--lat", "1", "--lon", "2", "-k", "1"]),
        ("checkpoint", vec![]),
        ("stats", vec![]),
    ];
    for (cmd, args) in &commands {
        for key in [&missing, &bad] {
            let mut with_key = args.clone();
            with_key.extend(["--key-file", key.to_str().unwrap()]);
            let err = env.fail(cmd, &with_key);
            assert!(err.contains(key.to_str().unwrap()) || err.contains("key file"), "{cmd}: {err}");
        }
        let mut with_key = args.clone();
        with_key.extend(["--key-file", good.to_str().unwrap()]);
        env.ok(cmd, &with_key);
        // And a malformed GEOCRM_KEY (from the diff review).
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_geocrm"))
            .arg(cmd)
            .arg("--db")
            .arg(&env.db)
            .args(args)
            .env("GEOCRM_KEY", "0123")
            .output()
            .unwrap();
        let err = fail(&out);
        assert!(err.contains("invalid key"), "{cmd}: {err}");
    }
}

#[test]
fn rotate_key_rewraps_every_data_key_and_the_old_key_opens_nothing() {
    let env = Env::new();
    let rows = env.import_fixture();
    let new_key = env.file("new.key", format!("{}\n", "5a".repeat(32)));
    let with_new = ["--key-file", new_key.to_str().unwrap()];
    let rotate_to = ["--new-key-file", new_key.to_str().unwrap()];
    let reveal = |key: Option<&[&str]>| {
        let mut args = vec!["--id", rows[1].id.as_str(), "--reveal", "--json"];
        args.extend(key.unwrap_or_default());
        env.run(key.is_none(), "get", &args)
    };
    let before: Value = serde_json::from_str(&ok(&reveal(None))).unwrap();
    // A key file others may read is taken, with a warning (it was silent); not once private.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = reveal(Some(&with_new));
    let warning = String::from_utf8(out.stderr).unwrap();
    assert!(
        warning.contains("warning: --key-file") && warning.contains("(mode 644): `chmod 600` it"),
        "{warning}"
    );
    std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = reveal(Some(&with_new));
    assert!(!String::from_utf8(out.stderr).unwrap().contains("warning"));
    // Without the current key: refused, nothing changes.
    let err = env.fail("rotate-key", &rotate_to);
    assert!(err.contains("key"), "{err}");
    ok(&reveal(None));
    // To the current key: refused (it said the old key opened nothing, and to destroy it).
    let same = env.file("same.key", format!("{}\n", super::KEY));
    let err = fail(&env.run(true, "rotate-key", &["--new-key-file", same.to_str().unwrap()]));
    assert!(err.contains("is the current master key"), "{err}");
    ok(&reveal(None));
    let out = ok(&env.run(true, "rotate-key", &[&rotate_to[..], &["--json"]].concat()));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!({"rotated": true, "keystore_created": false})
    );
    // The old key opens nothing; the new one reads the same PII; locations need neither.
    let err = fail(&reveal(None));
    assert!(err.contains("not this database's master key"), "{err}");
    let after: Value = serde_json::from_str(&ok(&reveal(Some(&with_new)))).unwrap();
    assert_eq!(after, before);
    assert_eq!(env.records(), Some(rows.len() as u64));
    ok(&env.run(false, "verify", &[]));
}

/// A database without a keystore (nothing stored under a key) has no key to check the
/// current one against: the rotation says so, and binds the database to the new key (it
/// said "every data key is wrapped under the new key").
#[test]
fn rotate_key_on_a_database_without_a_keystore_says_it_creates_one() {
    let env = Env::new();
    let csv = env.file("plain.csv", "id,lat,lon,tier\nA,1,2,gold\n");
    env.ok("import", &[csv.to_str().unwrap()]);
    assert!(!env.db.join("keystore").exists());
    let new_key = env.file("new.key", format!("{}\n", "5a".repeat(32)));
    let rotate_to = ["--new-key-file", new_key.to_str().unwrap()];
    let text = ok(&env.run(true, "rotate-key", &rotate_to));
    assert!(text.contains("had no keystore") && text.contains("checked against nothing"), "{text}");
    assert!(env.db.join("keystore").exists());
    // The new key is the database's; the old one is refused.
    let with_pii = env.file("pii.csv", "id,lat,lon,phone\nB,1,2,+44 20 7946 0001\n");
    let import = |key: Option<&std::path::Path>| {
        let mut args = vec![with_pii.to_str().unwrap(), "--pii", "phone", "--collection", "staff"];
        if let Some(k) = key {
            args.extend(["--key-file", k.to_str().unwrap()]);
        }
        env.run(key.is_none(), "import", &args)
    };
    let err = fail(&import(None));
    assert!(err.contains("not this database's master key"), "{err}");
    ok(&import(Some(&new_key)));
    // The same as JSON; and a rotation that fails after the open created the keystore
    // says so (the keystore stays, under the current key).
    let env2 = Env::new();
    let csv2 = env2.file("plain.csv", "id,lat,lon,tier\nA,1,2,gold\n");
    env2.ok("import", &[csv2.to_str().unwrap()]);
    let out = ok(&env2.run(true, "rotate-key", &[&rotate_to[..], &["--json"]].concat()));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!({"rotated": true, "keystore_created": true})
    );
    let env3 = Env::new();
    let csv3 = env3.file("plain.csv", "id,lat,lon,tier\nA,1,2,gold\n");
    env3.ok("import", &[csv3.to_str().unwrap()]);
    let same = env3.file("same.key", format!("{}\n", super::KEY));
    let err = fail(&env3.run(true, "rotate-key", &["--new-key-file", same.to_str().unwrap()]));
    assert!(
        err.contains("is the current master key") && err.contains("note: the database had no keystore"),
        "{err}"
    );
    assert!(env3.db.join("keystore").exists());
    // A missing new key file is refused before the open creates anything.
    let env4 = Env::new();
    let csv4 = env4.file("plain.csv", "id,lat,lon,tier\nA,1,2,gold\n");
    env4.ok("import", &[csv4.to_str().unwrap()]);
    let err = fail(&env4.run(true, "rotate-key", &["--new-key-file", "/nonexistent/new.key"]));
    assert!(err.contains("--new-key-file"), "{err}");
    assert!(!env4.db.join("keystore").exists());
    // Nor a placeholder new key (it was refused only after the open created a keystore).
    let zeros = env4.file("zeros.key", format!("{}\n", "0".repeat(64)));
    let err = fail(&env4.run(true, "rotate-key", &["--new-key-file", zeros.to_str().unwrap()]));
    assert!(err.contains("placeholder"), "{err}");
    assert!(!env4.db.join("keystore").exists());
    // Nor is a device that never ends read whole (it was: `/dev/zero` ran out of memory).
    if std::path::Path::new("/dev/zero").exists() {
        let err = fail(&env4.run(true, "rotate-key", &["--new-key-file", "/dev/zero"]));
        assert!(err.contains("longer than 1024 bytes"), "{err}");
        assert!(!env4.db.join("keystore").exists());
    }
    // A second rotation (back to the first key) finds the keystore.
    let old_key = env.file("old.key", format!("{}\n", super::KEY));
    let out = ok(&env.run(
        false,
        "rotate-key",
        &["--key-file", new_key.to_str().unwrap(), "--new-key-file", old_key.to_str().unwrap(), "--json"],
    ));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!({"rotated": true, "keystore_created": false})
    );
}

#[test]
fn the_default_actor_is_the_process_user_even_without_user_variables() {
    // Under cron, systemd or in a container USER is often unset: reads were audited as
    // "unknown" (found by a reviewing helper). Now the user id's name (or `uid N`).
    let env = Env::new();
    let rows = env.import_fixture();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geocrm"))
        .args(["get", "--reveal", "--id", &rows[1].id, "--db"])
        .arg(&env.db)
        .env("GEOCRM_KEY", super::KEY)
        .env_remove("USER")
        .env_remove("USERNAME")
        .env_remove("LOGNAME")
        .env_remove("GEOCRM_ACTOR")
        .output()
        .unwrap();
    ok(&out);
    let actor = env.json("audit", &[])[0]["actor"].as_str().unwrap().to_owned();
    assert_ne!(actor, "unknown");
    // As `id -un` says, where it can.
    if let Ok(id) = std::process::Command::new("id").arg("-un").output() {
        if id.status.success() {
            assert_eq!(actor, String::from_utf8_lossy(&id.stdout).trim());
        }
    }
}

/// One damaged frame of the audit log: `audit` shows the entries before it and ends with the
/// damage, naming the file and offset — in text and in one JSON document (every entry was
/// hidden until `repair`: from a hands-on review).
#[test]
fn audit_shows_the_entries_before_damage() {
    let env = Env::new();
    let rows = env.import_fixture();
    for (row, actor) in rows.iter().take(3).zip(["alice", "bob", "carol"]) {
        ok(&env.run(true, "get", &["--id", &row.id, "--reveal", "--actor", actor]));
    }
    let audit = env.db.join("audit.log");
    let mut bytes = std::fs::read(&audit).unwrap();
    let before = bytes.len();
    ok(&env.run(true, "get", &["--id", &rows[3].id, "--reveal", "--actor", "dave"]));
    bytes = std::fs::read(&audit).unwrap();
    // A byte of the third entry's frame: the last entry's frame starts at `before`.
    let third = bytes.len() - 2 * (bytes.len() - before) + 3;
    let whole = std::fs::read(&audit).unwrap();
    let mut damaged = whole.clone();
    damaged[third] ^= 0x5a;
    std::fs::write(&audit, &damaged).unwrap();
    let out = env.run(false, "audit", &[]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("alice") && lines[1].contains("bob"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("audit.log") && err.contains("the entries before it are shown"), "{err}");
    let out = env.run(false, "audit", &["--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["entries"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(doc["error"]["kind"], "corrupt", "{doc}");
    // Undamaged, every entry, as before.
    std::fs::write(&audit, &whole).unwrap();
    assert_eq!(env.json("audit", &[]).as_array().unwrap().len(), 4);
}

/// `get --reveal` on a database without a keystore (nothing sealed yet) reads the record
/// without the key: it created a keystore bound to whatever key it was given, so a mistyped
/// one locked the right one out of the next import of PII.
#[test]
fn get_reveal_without_a_keystore_binds_no_key() {
    let env = Env::new();
    let csv = env.file("plain.csv", "id,lat,lon,ltv\nC-1,48.85,2.35,10\n");
    ok(&env.run(false, "import", &[csv.to_str().unwrap()]));
    let keystore = env.db.join("keystore");
    assert!(!keystore.exists());
    let got: Value =
        serde_json::from_str(&ok(&env.run(true, "get", &["--id", "C-1", "--reveal", "--json"]))).unwrap();
    assert_eq!((got["id"].as_str(), got["pii"].clone()), (Some("C-1"), serde_json::json!({})), "{got}");
    assert!(!keystore.exists(), "a read created a keystore");
    // Another key then seals PII: nothing was bound to the first.
    let other = env.file("other.key", "22".repeat(32));
    let pii = env.file("pii.csv", "id,lat,lon,name\nC-2,48.86,2.36,Ada Lovelace\n");
    let out = env.run(
        false,
        "import",
        &[
            pii.to_str().unwrap(),
            "--pii",
            "name",
            "--key-file",
            other.to_str().unwrap(),
            "--collection",
            "people",
        ],
    );
    ok(&out);
    assert!(keystore.exists());
    let shown = ok(&env.run(
        false,
        "get",
        &["--id", "C-2", "--collection", "people", "--reveal", "--key-file", other.to_str().unwrap()],
    ));
    assert!(shown.contains("Ada Lovelace"), "{shown}");
    // A keystore lost: the record's sealed PII is not shown as none, and no keystore is
    // created in its place.
    std::fs::remove_file(&keystore).unwrap();
    let err = fail(&env.run(
        false,
        "get",
        &["--id", "C-2", "--collection", "people", "--reveal", "--key-file", other.to_str().unwrap()],
    ));
    assert!(err.contains("keystore is missing"), "{err}");
    assert!(!keystore.exists());
}
