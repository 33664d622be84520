//! `geocrm checkpoint`, `compact`, `verify` and the checkpoint fields of `stats`.

use super::{all_files, contains, newest_segment, Env};

/// One flipped byte in the only import of a database the tool closed: `verify` reports
/// the segment (status 3), and opening refuses it rather than cutting the import (it was cut
/// silently, as a torn append; from a hands-on review).
#[test]
fn damage_to_the_last_import_is_reported_not_cut() {
    let env = Env::new();
    env.import_fixture();
    let seg = newest_segment(&env.db);
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() * 2 / 3;
    bytes[at] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let out = env.run(false, "verify", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("000000000001.seg") && text.contains("not a torn append"), "{text}");
    let err = env.fail("stats", &[]);
    assert!(err.contains("000000000001.seg"), "{err}");
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "the damaged import was cut");
}

#[test]
fn checkpoint_stats_verify_compact_and_damage_detection() {
    let env = Env::new();
    let rows = env.import_fixture();
    let before = env.json("stats", &[]);
    assert_eq!(before["checkpoint"], serde_json::Value::Null);
    assert_eq!(before["collections"]["customers"]["memory_rows"], 60);
    // The text: no "since the checkpoint" without one, and one segment is "1 segment" (from a
    // hands-on review).
    let text = env.ok("stats", &[]);
    assert!(text.contains("no checkpoint yet") && text.contains(") in the log; log 1 segment, "), "{text}");
    assert!(!text.contains("since the checkpoint") && text.contains(" 60 records ("), "{text}");

    let report = env.json("checkpoint", &[]);
    assert_eq!(report["rows"], 60);
    let stats = env.json("stats", &[]);
    let c = &stats["collections"]["customers"];
    assert_eq!(
        (c["records"].as_u64(), c["checkpoint_rows"].as_u64(), c["memory_rows"].as_u64()),
        (Some(60), Some(60), Some(0))
    );
    assert!(stats["checkpoint"]["lsn"].as_u64().unwrap() > 60, "{stats}");
    assert_eq!(stats["ops_since_checkpoint"], 0);
    let text = env.ok("stats", &[]);
    assert!(
        text.contains("checkpoint at LSN")
            && text.contains("0 operations (48 log bytes) since the checkpoint; log 2 segments, "),
        "{text}"
    );
    assert!(env.ok("checkpoint", &[]).contains("nothing changed"));

    // The same answers from the checkpoint as from the log.
    let near = env.json("near", &["--lat", "48.85", "--lon", "2.35", "--k", "5"]);
    assert_eq!(near.as_array().unwrap().len(), 5);

    let verify = env.json("verify", &[]);
    assert_eq!(verify["rows_checked"], 60);
    let kinds: Vec<&str> =
        verify["files"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    for kind in ["manifest", "keystore", "log segment", "checkpoint"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }

    // Delete some, compact: fewer log bytes, still verified.
    env.ok("delete", &["--id", &rows[0].id]);
    let log_before = env.json("stats", &[])["log"]["bytes"].as_u64().unwrap();
    let compacted = env.json("compact", &[]);
    assert_eq!(compacted["rows"], 59);
    assert!(env.json("stats", &[])["log"]["bytes"].as_u64().unwrap() < log_before);
    assert_eq!(env.json("verify", &[])["rows_checked"], 59);
    assert_eq!(env.records(), Some(59));

    // No plaintext PII in the checkpoint files either.
    for f in all_files(&env.db) {
        let bytes = std::fs::read(&f).unwrap();
        for r in &rows {
            for v in &r.pii {
                assert!(!contains(&bytes, v), "{v:?} in plaintext in {}", f.display());
            }
        }
    }

    // Damage a checkpoint byte: verify names the file and fails; queries still answer (the
    // state is rebuilt from the log) and stats says why.
    let ckpt = all_files(&env.db).into_iter().find(|p| p.extension().is_some_and(|e| e == "ckpt")).unwrap();
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&ckpt, bytes).unwrap();
    let err = env.fail("verify", &[]);
    assert!(err.contains(".ckpt at byte offset") && err.contains("(see the report above)"), "{err}");
    assert_eq!(err.matches("corrupt file").count(), 1, "{err}");
    // Its own exit status: 3 for damage, 1 for a database it could not check.
    assert_eq!(env.run(false, "verify", &[]).status.code(), Some(3));
    let holder = geocrm::Database::open(&env.db, geocrm::Options::new()).unwrap();
    assert_eq!(env.run(false, "verify", &[]).status.code(), Some(1), "locked: not damage");
    drop(holder);
    let out = String::from_utf8(env.run(false, "verify", &[]).stdout).unwrap();
    assert!(out.contains("DAMAGED") && out.contains(ckpt.file_name().unwrap().to_str().unwrap()), "{out}");
    // With `--json`: one document, the report with the error the command ends with (the
    // error printed as a second document after the report was not JSON a script could read).
    let out = env.run(false, "verify", &["--json"]);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "corrupt", "{report}");
    // The error names the damaged file (it named the directory, "at byte offset 0").
    let message = report["error"]["message"].as_str().unwrap();
    let name = ckpt.file_name().unwrap().to_str().unwrap();
    // (In JSON the report is the document's `files`, not text above: from a hands-on review.)
    assert!(message.contains(name) && message.ends_with("(see the files' problems)"), "{message}");
    let text = env.fail("verify", &[]);
    assert!(text.contains(name) && text.trim_end().ends_with("(see the report above)"), "{text}");
    assert!(report["files"].as_array().unwrap().iter().any(|f| !f["problem"].is_null()), "{report}");
    assert_eq!(env.records(), Some(59));
    assert!(env.json("stats", &[])["checkpoint_rejected"].as_str().unwrap().contains("checksum"));
    // Not "checkpoint at LSN …, replay starts at segment …" beside the warning that it was
    // not used (from a hands-on review).
    let text = env.ok("stats", &[]);
    assert!(
        text.contains("checkpoint not in use (see the warning below)") && text.contains(") in the log;"),
        "{text}"
    );
    assert!(
        !text.contains("checkpoint at LSN") && text.contains("WARNING: the checkpoint was not usable"),
        "{text}"
    );
}

/// Importing the same file again replaces every record, and says so (text and JSON).
#[test]
fn a_reimport_reports_the_records_it_replaced() {
    let env = Env::new();
    let rows = env.import_fixture();
    let csv = env.file("again.csv", super::csv_of(&rows));
    let path = csv.to_str().unwrap();
    let out = super::ok(&env.run(true, "import", &[path, "--pii", super::PII_ARG]));
    assert!(out.contains("imported 60 records") && out.contains("of which 60 replaced"), "{out}");
    let out = super::ok(&env.run(true, "import", &[path, "--pii", super::PII_ARG, "--json"]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report,
        serde_json::json!({"imported": 60, "replaced": 60, "rejected": 0, "created_collection": false, "missing_values": {}, "empty_rows": 0, "notes": [], "schema": null, "fields_not_in_file": []})
    );
}

#[test]
fn checkpoint_keeps_the_files_of_unchanged_collections_and_says_so() {
    let env = Env::new();
    env.import_fixture();
    let first = env.json("checkpoint", &[]);
    assert_eq!(first["kept"].as_array().unwrap().len(), 0, "{first}");
    let staff = env.file("staff.csv", "id,lat,lon\nS-1,48.85,2.35\n");
    env.ok("import", &[staff.to_str().unwrap(), "--collection", "staff"]);
    let text = env.ok("checkpoint", &[]);
    assert!(
        text.contains("checkpointed 1 rows") && text.contains("1 of 2 collections' files kept"),
        "{text}"
    );
    let staff2 = env.file("staff2.csv", "id,lat,lon\nS-2,48.86,2.36\n");
    env.ok("import", &[staff2.to_str().unwrap(), "--collection", "staff"]);
    let report = env.json("checkpoint", &[]);
    assert_eq!(report["rows"], 2, "{report}");
    assert_eq!(report["kept"], serde_json::json!([first["files"][0]]), "{report}");
    assert_eq!(env.json("verify", &[])["rows_checked"], 62);
}

/// What an open sets aside without calling it damage — an incomplete final frame of the log,
/// the keystore or the audit log — is listed by `verify` as notes (it passed silently: the
/// open it made had cut the log's).
#[test]
fn verify_notes_incomplete_final_frames_it_set_aside() {
    let env = Env::new();
    env.import_fixture();
    env.ok("get", &["--id", "C-0001"]);
    let append = |path: &std::path::Path, bytes: &[u8]| {
        let mut all = std::fs::read(path).unwrap();
        all.extend_from_slice(bytes);
        std::fs::write(path, all).unwrap();
    };
    let quiet = env.json("verify", &[]);
    assert_eq!(quiet["notes"], serde_json::json!([]));
    let seg = newest_segment(&env.db);
    append(&seg, &[0x40, 0, 0, 0, 7, 7, 7]);
    append(&env.db.join("keystore"), &[0x40, 0, 0, 0, 9, 9, 9, 9, 9]);
    append(&env.db.join("audit.log"), &[0x30, 0, 0, 0, 1]);
    let before = files_and_bytes(&env.db);
    let out = env.ok("verify", &[]);
    assert!(out.contains("note: log: the last 7 bytes"), "{out}");
    assert!(out.contains("note: keystore: its last 9 bytes"), "{out}");
    assert!(out.contains("note: audit log: its last 5 bytes"), "{out}");
    // Verify opens read-only: it cut nothing (it cut the log's and the audit log's tails,
    // the evidence of damage to a last frame), so the next one finds the same.
    assert!(files_and_bytes(&env.db) == before, "verify changed a file");
    let again = env.json("verify", &[]);
    let notes: Vec<String> = serde_json::from_value(again["notes"].clone()).unwrap();
    assert_eq!(notes.len(), 3, "{notes:?}");
}

/// Every file under `dir` with its bytes.
fn files_and_bytes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    all_files(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

/// `verify` reports damage as damage (status 3, the file named) and changes no file, also
/// when the damage keeps the database from opening, is in the audit log, or is a keystore
/// cut at a frame boundary (which passes the keystore's own checks) — from the robustness
/// review: those exited 1 with a bare error, passed, or were cut or marked by its open.
#[test]
fn verify_reports_damage_anywhere_and_changes_nothing() {
    // Without a checkpoint the damaged segment keeps the database from opening; with one,
    // the keys of the checkpoint's rows are checked through their log records.
    for checkpointed in [false, true] {
        verify_reports_damage(checkpointed);
    }
}

fn verify_reports_damage(checkpointed: bool) {
    let env = Env::new();
    env.import_fixture();
    // Two audited reads, so damage to the first is not a torn tail.
    for _ in 0..2 {
        super::ok(&env.run(true, "get", &["--id", "C-0001", "--reveal"]));
    }
    // A later commit, so damage to the fixture's is not a torn tail.
    let more = env.file("more.csv", "id,lat,lon\nX-1,1,1\n");
    env.ok("import", &[more.to_str().unwrap()]);
    if checkpointed {
        env.ok("checkpoint", &[]);
    }
    let pristine = files_and_bytes(&env.db);
    let restore = || {
        for (p, b) in &pristine {
            std::fs::write(p, b).unwrap();
        }
    };
    let seg = newest_segment(&env.db);
    let keystore = env.db.join("keystore");
    let audit = env.db.join("audit.log");
    let seg_len = std::fs::metadata(&seg).unwrap().len() as usize;
    let keystore_len = std::fs::metadata(&keystore).unwrap().len() as usize;
    type Damage = Box<dyn Fn()>;
    let flip = |path: std::path::PathBuf, at: usize| -> Damage {
        Box::new(move || {
            let mut b = std::fs::read(&path).unwrap();
            b[at] ^= 0x5a;
            std::fs::write(&path, b).unwrap();
        })
    };
    let cases: Vec<(&str, Damage, &str)> = vec![
        ("a flipped byte early in the newest segment", flip(seg.clone(), seg_len / 3), "log segment"),
        ("a flipped byte in the audit log", flip(audit.clone(), 40), "audit log"),
        ("a flipped byte mid-keystore", flip(keystore.clone(), keystore_len / 2), "keystore"),
        (
            "a keystore cut after its header frame",
            Box::new({
                let keystore = keystore.clone();
                move || {
                    // Only the 99-byte header (FORMAT.md § 8) is left: every key is gone.
                    let b = std::fs::read(&keystore).unwrap();
                    std::fs::write(&keystore, &b[..99]).unwrap();
                }
            }),
            "keystore",
        ),
    ];
    for (what, damage, kind) in cases {
        restore();
        damage();
        let damaged = files_and_bytes(&env.db);
        let out = env.run(false, "verify", &["--json"]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{what} ({checkpointed}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let bad: Vec<&str> = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| !f["problem"].is_null())
            .map(|f| f["kind"].as_str().unwrap())
            .collect();
        assert!(bad.contains(&kind), "{what}: {report}");
        assert_eq!(report["error"]["kind"], "corrupt", "{what}: {report}");
        assert!(files_and_bytes(&env.db) == damaged, "{what}: verify changed a file");
    }
    restore();
    assert_eq!(env.run(false, "verify", &[]).status.code(), Some(0));
}

/// `geocrm update` without a key moves a customer and sets (trimmed, as the import reads
/// cells) or clears attributes, keeping its PII (revealed with the key afterwards); a PII
/// value, an unknown field, a value of the wrong kind (not repeated), an empty value, contact
/// data for a category, no change at all and an absent id are errors that change nothing.
#[test]
fn update_moves_a_customer_and_keeps_its_pii() {
    let env = Env::new();
    let rows = env.import_fixture();
    let c7 = &rows[7];
    let out = env.json(
        "update",
        &[
            "--id",
            &c7.id,
            "--lat",
            "-33.86",
            "--lon",
            "151.2",
            "--set",
            "tier= platinum ",
            "--set",
            "visits=41",
            "--clear",
            "ltv",
        ],
    );
    assert_eq!((out["id"].as_str(), out["updated"].as_bool()), (Some(c7.id.as_str()), Some(true)), "{out}");
    let got = env.json("get", &["--id", &c7.id]);
    assert_eq!((got["lat"].as_f64(), got["lon"].as_f64()), (Some(-33.86), Some(151.2)), "{got}");
    assert_eq!(
        (got["categories"]["tier"].as_str(), got["numbers"]["visits"].as_f64()),
        (Some("platinum"), Some(41.0))
    );
    assert!(got["numbers"].get("ltv").is_none(), "{got}");
    let revealed = super::ok(&env.run(true, "get", &["--id", &c7.id, "--reveal", "--json"]));
    assert!(revealed.contains(&c7.pii[0].replace('"', "\\\"")), "{revealed}");
    let near = env.json("near", &["--lat", "-33.86", "--lon", "151.2", "-k", "1"]);
    assert_eq!(near[0]["id"].as_str(), Some(c7.id.as_str()));
    let before = env.json("get", &["--id", "C-0001"]);
    for (args, why) in [
        (vec!["--id", "C-0001", "--set", "name=Eve"], "does not set"),
        (vec!["--id", "C-0001", "--set", "colour=red"], "its attributes are ltv, visits, tier"),
        (vec!["--id", "C-0001", "--set", "visits=Ada Lovelace"], "of 12 characters is not a finite number"),
        (vec!["--id", "C-0001", "--set", "visits=inf"], "not a finite number"),
        (vec!["--id", "C-0001", "--set", "Ada Lovelace"], "of 12 characters has no '='"),
        (vec!["--id", "C-0001", "--set", "tier= "], "--clear tier"),
        (vec!["--id", "C-0001", "--set", "tier=call +49 151 12345678"], "e-mail address or a phone number"),
        (vec!["--id", "C-0001", "--set", "tier=ada@example.org"], "in plaintext"),
        (vec!["--id", "C-0001", "--set", "visits=+33612345678"], "phone number or an e-mail address"),
        (vec!["--id", "C-0001"], "changes nothing"),
        (vec!["--id", "C-0001", "--lat", "91", "--lon", "0"], "latitude"),
        (vec!["--id", "C-9999", "--set", "visits=1"], "no such record"),
    ] {
        let err = env.fail("update", &args);
        let leaked = ["Ada", "12345678", "33612345678"].iter().any(|v| err.contains(v));
        assert!(err.contains(why) && !leaked, "{args:?}: {err}");
    }
    assert_eq!(env.json("get", &["--id", "C-0001"]), before);
    for file in super::all_files(&env.db) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!super::contains(&bytes, &c7.pii[0]), "{file:?}");
    }
}

/// `geocrm verify` of a log segment damaged under a checkpoint: the segment is DAMAGED, the
/// checkpoint ok (it was DAMAGED too, "0 checkpoint rows checked"), with a note counting the
/// rows pointing into the damage; exit status 3 (from a hands-on review).
#[test]
fn verify_blames_log_damage_under_a_checkpoint_on_the_log() {
    let env = Env::new();
    env.import_fixture();
    env.ok("checkpoint", &[]);
    let first = env.db.join("log/000000000001.seg");
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&first, &bytes).unwrap();
    let out = env.run(false, "verify", &[]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |kind: &str| text.lines().find(|l| l.contains(kind)).unwrap_or_default().to_owned();
    assert!(line("checkpoint   ").starts_with("ok "), "{text}");
    assert!(line("000000000001.seg").starts_with("DAMAGED "), "{text}");
    assert!(text.contains("point into the damaged log and could not be"), "{text}");
    assert!(text.contains("note: ") && text.contains("the checkpoint is sound"), "{text}");
    let out = env.run(false, "verify", &["--json"]);
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (checked, unreadable) =
        (json["rows_checked"].as_u64().unwrap(), json["rows_in_damaged_log"].as_u64().unwrap());
    assert!(unreadable > 0 && checked + unreadable == 60, "{json}");
}

/// `--collection`, which every database command takes, was silently ignored by the commands
/// that work on the whole database: `stats` and `audit` now show that collection only, and
/// `checkpoint`, `compact`, `verify`, `repair` and `rotate-key` refuse it, changing nothing.
#[test]
fn collection_selects_in_stats_and_audit_and_is_refused_where_it_cannot_apply() {
    let env = Env::new();
    let rows = env.import_fixture();
    let staff = env.file("staff.csv", "id,lat,lon\nS-1,48.85,2.35\nS-2,45.76,4.84\n");
    super::ok(&env.run(true, "import", &[staff.to_str().unwrap(), "--collection", "staff"]));
    super::ok(&env.run(true, "get", &["--id", &rows[0].id, "--reveal"]));

    let all = env.json("stats", &[]);
    assert_eq!(all["collections"].as_object().unwrap().len(), 2, "{all}");
    let only = env.json("stats", &["--collection", "staff"]);
    let names: Vec<&String> = only["collections"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["staff"], "{only}");
    assert_eq!(only["collections"]["staff"]["records"], 2);
    let text = env.ok("stats", &["--collection", "staff"]);
    assert!(text.contains("  staff ") && !text.contains("customers"), "{text}");
    let err = env.fail("stats", &["--collection", "nope"]);
    assert!(err.contains("nope"), "{err}");

    assert_eq!(env.json("audit", &[]).as_array().unwrap().len(), 1);
    assert_eq!(env.json("audit", &["--collection", "staff"]), serde_json::json!([]));
    let customers = env.json("audit", &["--collection", "customers"]);
    assert_eq!(customers.as_array().unwrap().len(), 1, "{customers}");

    let before = super::all_files(&env.db);
    let key = env.file("new.key", "11".repeat(32));
    for (cmd, extra) in [
        ("checkpoint", &[][..]),
        ("compact", &[][..]),
        ("verify", &[][..]),
        ("repair", &[][..]),
        ("rotate-key", &["--new-key-file", key.to_str().unwrap()][..]),
    ] {
        let mut args = vec!["--collection", "staff"];
        args.extend_from_slice(extra);
        let err = super::fail(&env.run(true, cmd, &args));
        assert!(err.contains("--collection") && err.contains("every collection"), "{cmd}: {err}");
        assert_eq!(super::all_files(&env.db), before, "{cmd} changed files");
    }
    assert_eq!(env.json("checkpoint", &[])["rows"], 62, "without it, every collection");
}

/// A read-only handle in this process while `geocrm` processes write, checkpoint and compact
/// the database: the compaction deletes every segment the handle's records are in, and each
/// of them still reads, with the values the handle's snapshot saw (they said "open it again").
#[test]
fn a_read_only_handle_reads_through_another_process_compacting() {
    let env = Env::new();
    let rows = env.import_fixture();
    env.ok("checkpoint", &[]);
    let reader = geocrm::Database::open(&env.db, geocrm::Options::new().read_only(true)).unwrap();
    let log = env.db.join("log");
    let segments = |dir: &std::path::Path| -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".seg"))
            .collect();
        names.sort();
        names
    };
    let before = segments(&log);
    env.ok("update", &["--id", &rows[0].id, "--set", "visits=999"]);
    env.ok("delete", &["--id", &rows[1].id]);
    env.ok("compact", &[]);
    let after = segments(&log);
    assert!(before.iter().all(|s| !after.contains(s)), "the compaction deleted {before:?}: {after:?} left");
    let snap = reader.read();
    let c = snap.collection("customers").unwrap();
    for r in &rows {
        let got = c.get(&r.id).unwrap_or_else(|e| panic!("{}: {e}", r.id)).expect("in the handle's snapshot");
        assert_eq!((got.location.lat(), got.location.lon()), (r.lat, r.lon), "{}", r.id);
        assert_eq!(got.numbers.get("visits"), Some(&r.visits), "{}: as the snapshot saw it", r.id);
    }
}
