//! Bad input to the CLI: each case exits non-zero with a clear message on stderr and leaves
//! the database as it was.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use geocrm::{Database, Options};
use serde_json::json;

use super::{all_files, contains, fail, newest_segment, ok, run_at, Env, HEADER, PII_ARG};

const GOOD: &str = "G-1,48.8,2.3,Gina,+33 6 00 00 00 01,gina@example.org,1 Rue Haute,10,1,gold\n";

/// A bad row's CSV line, built from the good one with `field` replaced.
fn bad_row(id: &str, field: usize, value: &str) -> String {
    let mut f: Vec<String> = GOOD.trim_end().split(',').map(str::to_owned).collect();
    f[0] = id.to_owned();
    f[3] = format!("Secret Name {id}");
    f[field] = value.to_owned();
    format!("{}\n", f.join(","))
}

/// Imports `csv` (expected to fail) and returns stderr.
fn import_fails(env: &Env, csv: &[u8], extra: &[&str]) -> String {
    let path = env.file("bad.csv", csv);
    let mut args = vec![path.to_str().unwrap(), "--pii", PII_ARG];
    args.extend(extra);
    fail(&env.run(true, "import", &args))
}

/// Each bad file, imported into a fresh database and into one holding the fixture: the
/// message is exact and nothing is imported.
fn check_rejected(cases: &[(&str, Vec<u8>, String)]) {
    let loaded = Env::new();
    loaded.import_fixture();
    for (what, csv, message) in cases {
        let fresh = Env::new();
        for env in [&fresh, &loaded] {
            let err = import_fails(env, csv, &[]);
            // (A column of the existing collection cannot be declared a category.)
            let message = if std::ptr::eq(env, &loaded) {
                message.replace(
                    "declare the column a category to import it as text",
                    "the collection's field is a number",
                )
            } else {
                message.clone()
            };
            assert_eq!(err.trim(), format!("error: {message}"), "{what}");
            assert!(!err.contains("Secret Name"), "{what}: PII in the message");
            if std::ptr::eq(env, &loaded) {
                assert_eq!(env.records(), Some(60), "{what}: something was imported");
            } else {
                assert!(!env.db.exists(), "{what}: a refused import left a new database behind");
            }
        }
        for id in ["G-1", "B-1"] {
            assert!(loaded.fail("get", &["--id", id]).contains("no such record"), "{what}");
        }
    }
}

fn with_header(rows: &str) -> Vec<u8> {
    format!("{HEADER}\n{rows}").into_bytes()
}

#[test]
fn bad_rows_abort_the_whole_import() {
    let row = |field, value| with_header(&format!("{GOOD}{}", bad_row("B-1", field, value)));
    let fin = "coordinates must be finite numbers";
    let cases = vec![
        ("number", row(7, "12x"), "line 3, column ltv: \"12x\" is not a finite number (declare the column a category to import it as text; an empty cell or NA is no value)".to_owned()),
        ("inf number", row(8, "inf"), "line 3, column visits: \"inf\" is not a finite number (declare the column a category to import it as text; an empty cell or NA is no value)".to_owned()),
        ("lat 91", row(1, "91"), "line 3, column lat: latitude must be within [-90, 90]".to_owned()),
        ("lon -200", row(2, "-200"), "line 3, column lon: longitude must be within [-180, 180]".to_owned()),
        ("lat NaN", row(1, "NaN"), "line 3, column lat: lat is missing (NaN)".to_owned()),
        ("lon NaN", row(2, "NaN"), "line 3, column lon: lon is missing (NaN)".to_owned()),
        ("lat inf", row(1, "inf"), format!("line 3, column lat: {fin}")),
        ("lon -inf", row(2, "-inf"), format!("line 3, column lon: {fin}")),
        ("lat text", row(1, "north"), "line 3, column lat: a text value of 5 characters (not shown: it may be personal data) is not a number".to_owned()),
        ("lon missing", row(2, " "), "line 3, column lon: lon is missing".to_owned()),
        ("missing id", row(0, ""), "line 3, column id: the id is missing".to_owned()),
        (
            "column count",
            with_header(&format!("{GOOD}B-1,48.8,2.3,Secret Name B-1,x,y,z,1,2\n")),
            "line 3, column -: wrong number of columns: expected 10, found 9".to_owned(),
        ),
        (
            // A quoted field spanning two lines moves the bad row to line 5.
            "line numbers count quoted newlines",
            with_header(&format!(
                "Q-1,48.8,2.3,Quinn,+33,q@example.org,\"a\nb\",1,2,gold\n{GOOD}{}",
                bad_row("B-1", 1, "-95")
            )),
            "line 5, column lat: latitude must be within [-90, 90]".to_owned(),
        ),
    ];
    check_rejected(&cases);
}

#[test]
fn bad_headers_and_files_abort() {
    let non_utf8 =
        [with_header(GOOD), b"B-1,48.8,2.3,Secret Name \xff\xfe B-1,a,b,c,1,2,gold\n".to_vec()].concat();
    let cases = vec![
        ("non-UTF-8", non_utf8, "line 3, column name: field 4 is not valid UTF-8 (the file must be UTF-8: save a UTF-16 or Latin-1 export as UTF-8)".to_owned()),
        (
            "missing lat",
            format!("id,latitude,lon\n{}", "B-1,1,2\n").into_bytes(),
            "line 1, column header: required column \"lat\" is missing (there is \"latitude\": take it under that name with --rename \"latitude=lat\")".to_owned(),
        ),
        (
            "duplicate column",
            b"id,lat,lon,name,tier,tier\nB-1,1,2,Secret Name B-1,a,b\n".to_vec(),
            "line 1, column header: column \"tier\" appears twice (the spaces around header names are ignored)".to_owned(),
        ),
        (
            // No header line: the first row is read as the header and refused without
            // quoting it (its name was once reported as "appearing twice").
            "no header line",
            b"B-1,48.8,2.3,Secret Name B-1,Secret Name B-1,gold\nB-2,48.8,2.3,Al,Bo,gold\n".to_vec(),
            "line 1, column header: required columns \"id\", \"lat\" and \"lon\" are missing (the first line holds \
             numbers, as a row of data does: the file needs a header line naming its columns, id, lat, lon and the \
             others)"
                .to_owned(),
        ),
        (
            "empty file",
            Vec::new(),
            "line 1, column header: the file is empty (expected a header with id, lat, lon)".to_owned(),
        ),
    ];
    check_rejected(&cases);

    let env = Env::new();
    let csv = env.file("ok.csv", with_header(GOOD));
    let err = fail(&env.run(true, "import", &[csv.to_str().unwrap(), "--pii", "name,ssn"]));
    assert_eq!(
        err.trim(),
        "error: line 1, column header: column \"ssn\" named in the options is not in the header"
    );
    // --rename takes COLUMN=NAME; a header column it names must be there.
    let err = fail(&env.run(true, "import", &[csv.to_str().unwrap(), "--rename", "name"]));
    assert_eq!(err.trim(), "error: invalid argument rename: \"name\" is not COLUMN=NAME");
    let err = fail(&env.run(true, "import", &[csv.to_str().unwrap(), "--rename", "First Name=first_name"]));
    assert_eq!(err.trim(), "error: invalid argument rename: the header has no column \"First Name\"");
    // --delimiter: one ASCII character or `tab`; a tab-separated file read as CSV says so.
    let tsv = env.file("ok.tsv", "id\tlat\tlon\ttier\nT-1\t1\t2\tgold\n");
    let err = fail(&env.run(true, "import", &[tsv.to_str().unwrap()]));
    assert!(
        err.contains("holding a tab: if the file is separated by it, import it with --delimiter tab"),
        "{err}"
    );
    for bad in ["", ";;", "é"] {
        let out = env.run(true, "import", &[tsv.to_str().unwrap(), "--delimiter", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(fail(&out).contains("expected one ASCII character, or `tab`"), "{bad:?}");
    }
    let err = fail(&env.run(true, "import", &[tsv.to_str().unwrap(), "--delimiter", "x"]));
    assert!(err.contains("invalid argument delimiter: 'x' cannot separate fields"), "{err}");
    let out = env.ok("import", &[tsv.to_str().unwrap(), "--delimiter", "tab"]);
    // A new collection's inferred kinds are shown.
    assert!(out.contains("\ncreated collection \"customers\": categories tier\n"), "{out}");
    assert_eq!(env.records(), Some(1));
    assert_eq!(env.json("get", &["--id", "T-1"])["categories"]["tier"], "gold");
    // Replaced by a file without the tier: said, on standard error.
    let no_tier = env.file("no-tier.csv", "id,lat,lon\nT-1,1,2\n");
    let again = env.run(false, "import", &[no_tier.to_str().unwrap()]);
    ok(&again);
    let note = String::from_utf8(again.stderr).unwrap();
    assert!(
        note.contains("note: the file has no column for tier: the 1 replaced record no longer has it"),
        "{note}"
    );
    // --thousands reads money written with thousands separators.
    let env = Env::new();
    let money = env.file("money.csv", "id,lat,lon,revenue\nM-1,1,2,\"1,234.50\"\nM-2,1,2,900\n");
    let err = fail(&env.run(false, "import", &[money.to_str().unwrap(), "--numbers", "revenue"]));
    assert!(err.contains("which --thousands reads"), "{err}");
    env.ok("import", &[money.to_str().unwrap(), "--thousands"]);
    assert_eq!(env.json("get", &["--id", "M-1"])["numbers"]["revenue"], 1234.5);
    // --currency reads amounts written with a currency; the note names the currency.
    let dollars = env.file("dollars.csv", "id,lat,lon,revenue\nM-3,1,2,\"$1,000.25\"\nM-4,1,2,($3)\n");
    let err = fail(&env.run(false, "import", &[dollars.to_str().unwrap(), "--thousands"]));
    assert!(err.contains("which --currency reads"), "{err}");
    let out = env.run(false, "import", &[dollars.to_str().unwrap(), "--thousands", "--currency"]);
    assert!(out.status.success(), "{out:?}");
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(note.contains("column \"revenue\": amounts in $ read as numbers"), "{note}");
    assert_eq!(env.json("get", &["--id", "M-3"])["numbers"]["revenue"], 1000.25);
    assert_eq!(env.json("get", &["--id", "M-4"])["numbers"]["revenue"], -3.0);
    let env = Env::new();
    let missing = env.dir.path().join("nope.csv");
    let err = fail(&env.run(true, "import", &[missing.to_str().unwrap()]));
    assert!(err.contains("open CSV") && err.contains("nope.csv") && err.contains("No such file"), "{err}");
    assert_eq!(err.lines().count(), 1, "the cause is not repeated: {err}");
    assert!(!env.db.exists(), "a failed import must not leave a new database behind");
    // A directory opens, but is no CSV: an I/O error naming it (it was "line 0, column
    // header: Is a directory", with no path; from the CLI review).
    let folder = env.dir.path().join("folder.csv");
    std::fs::create_dir(&folder).unwrap();
    let err = fail(&env.run(true, "import", &[folder.to_str().unwrap()]));
    assert!(
        err.contains("open CSV") && err.contains("folder.csv") && err.contains("Is a directory"),
        "{err}"
    );
    assert!(!err.contains("line 0"), "{err}");
    assert!(!env.db.exists(), "a failed import must not leave a new database behind");
}

#[test]
fn a_line_over_one_mib_is_refused_without_exhausting_memory() {
    let env = Env::new();
    env.import_fixture();
    let mut csv = with_header(GOOD);
    csv.extend(std::iter::repeat_n(b'x', 2 << 20));
    let started = std::time::Instant::now();
    let err = import_fails(&env, &csv, &[]);
    assert_eq!(err.trim(), "error: line 3, column -: line is longer than 1048576 bytes");
    assert!(started.elapsed().as_secs() < 30);
    assert_eq!(env.records(), Some(60));
    // The same as the header line.
    let err = import_fails(&Env::new(), &vec![b'y'; 2 << 20], &[]);
    assert_eq!(err.trim(), "error: line 1, column -: line is longer than 1048576 bytes");
}

#[test]
fn skip_invalid_imports_good_rows_and_reports_bad_ones_without_their_contents() {
    let env = Env::new();
    let rows = [
        GOOD.to_owned(),
        bad_row("B-1", 7, "lots"),
        bad_row("B-2", 1, "91"),
        bad_row("", 2, "2.5"),
        "B-4,48.8,2.3,Secret Name B-4,x\n".to_owned(),
        bad_row("G-2", 1, "48.9"),
        bad_row("B-5", 2, "NaN"),
    ]
    .concat();
    let non_utf8 = b"B-6,48.8,2.3,Secret Name \xff B-6,a,b,c,1,2,gold\n";
    let csv = env.file("mixed.csv", [with_header(&rows), non_utf8.to_vec()].concat());
    let rejects = env.dir.path().join("rejects.csv");
    let args =
        [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", rejects.to_str().unwrap(), "--json"];
    let out: serde_json::Value = serde_json::from_str(&ok(&env.run(true, "import", &args))).unwrap();
    assert_eq!(
        out,
        json!({"imported": 2, "replaced": 0, "rejected": 6, "created_collection": true, "missing_values": {}, "empty_rows": 0, "notes": [], "schema": {"numbers": ["ltv", "visits"], "categories": ["tier"], "pii": ["name", "phone", "email", "address"], "phones": [], "emails": []}, "fields_not_in_file": []})
    );
    assert_eq!(env.records(), Some(2));
    env.ok("get", &["--id", "G-2"]);
    let text = std::fs::read(&rejects).unwrap();
    let expected = "line,id,column,reason\n\
        3,B-1,ltv,a text value of 4 characters (not shown: it may be personal data) is not a finite number (declare the column a category to import it as text; an empty cell or NA is no value)\n\
        4,B-2,lat,\"latitude must be within [-90, 90]\"\n\
        5,,id,the id is missing\n\
        6,,-,\"wrong number of columns: expected 10, found 5\"\n\
        8,B-5,lon,lon is missing (NaN)\n\
        9,,name,field 4 is not valid UTF-8 (the file must be UTF-8: save a UTF-16 or Latin-1 export as UTF-8)\n";
    assert_eq!(String::from_utf8(text.clone()).unwrap(), expected);
    assert!(!contains(&text, "Secret Name"));
    assert!(!contains(&text, "gina@example.org"));
}

/// A rejected row's id or column that a spreadsheet would run as a formula is written with a
/// `'` in front (CSV injection: `=HYPERLINK(…)` ran when the rejects file was opened; from a
/// hands-on review).
#[test]
fn rejects_file_cells_are_never_formulas() {
    let env = Env::new();
    let csv =
        env.file("f.csv", "id,lat,lon,v\n=HYPERLINK(\"x\"),91,2,1\n@SUM(A1),1,2,x,y\n-2+3,1,x,1\nok,1,2,1\n");
    let rejects = env.dir.path().join("rejects.csv");
    let args = [csv.to_str().unwrap(), "--skip-invalid", rejects.to_str().unwrap()];
    ok(&env.run(false, "import", &args));
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(
        text,
        "line,id,column,reason\n\
         2,\"'=HYPERLINK(\"\"x\"\")\",lat,\"latitude must be within [-90, 90]\"\n\
         3,,-,\"wrong number of columns: expected 4, found 5\"\n\
         4,'-2+3,lon,a text value of 1 character (not shown: it may be personal data) is not a number\n"
    );
}

/// The rejects file through a symbolic link replaces the file the link names, not the link;
/// `/dev/stdout` (a link to `/proc/self/fd/1`) and a named pipe are written to as they are,
/// the standard output through the same open file as the report (they were replaced by a
/// regular file: as root, `--skip-invalid /dev/stdout` replaced the system's link; from a
/// hands-on review).
#[test]
fn a_rejects_file_through_a_link_a_pipe_or_standard_output() {
    let env = Env::new();
    let csv = env.file("c.csv", with_header(&format!("{GOOD}{}", bad_row("B-1", 7, "lots"))));
    let import = |env: &Env, rejects: &Path| {
        let args = [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", rejects.to_str().unwrap()];
        ok(&env.run(true, "import", &args))
    };
    let target = env.file("target.csv", "old");
    let link = env.dir.path().join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    import(&env, &link);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read_to_string(&target).unwrap().contains("B-1,"));
    // Standard output, by its name and by a link to what it names: the rejects, then the
    // report, both in the captured output.
    let fake = env.dir.path().join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &fake).unwrap();
    for (i, rejects) in [Path::new("/dev/stdout"), fake.as_path()].into_iter().enumerate() {
        let env = Env::new();
        let out = import(&env, rejects);
        assert!(out.starts_with("line,id,column,reason\n") && out.contains("B-1,"), "{i}: {out}");
        assert!(out.contains("imported 1 record into"), "{i}: {out}");
    }
    assert!(std::fs::symlink_metadata(&fake).unwrap().file_type().is_symlink());
    // A named pipe, read as the import writes; while it waits for its reader, no database
    // is created or locked (an interrupt then left a new, empty one behind).
    let fifo = env.dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let waiting = Env::new();
    let importing = {
        let (db, csv, fifo) = (waiting.db.clone(), csv.clone(), fifo.clone());
        std::thread::spawn(move || {
            let args = [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", fifo.to_str().unwrap()];
            ok(&run_at(&db, true, "import", &args))
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!waiting.db.exists(), "created while waiting for the pipe's reader");
    let read = std::fs::read_to_string(&fifo).unwrap();
    importing.join().unwrap();
    assert!(read.contains("B-1,"), "{read}");
    assert_eq!(waiting.records(), Some(1));
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the pipe was replaced");
}

#[test]
fn a_rejects_file_that_cannot_be_created_fails_the_import_before_anything_is_written() {
    // It used to be created after the commit: the rows landed, the list of rejects was lost.
    let env = Env::new();
    let csv = env.file("c.csv", with_header(&format!("{GOOD}{}", bad_row("B-1", 7, "lots"))));
    let nowhere = env.dir.path().join("no-such-dir").join("rejects.csv");
    let args = [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", nowhere.to_str().unwrap()];
    let err = fail(&env.run(true, "import", &args));
    assert!(err.contains("rejects file"), "{err}");
    assert!(!env.db.exists(), "nothing imported, no database created");
    // Beside the database it can be created.
    let beside = env.dir.path().join("rejects.csv");
    let args = [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", beside.to_str().unwrap()];
    ok(&env.run(true, "import", &args));
    assert!(std::fs::read_to_string(&beside).unwrap().contains("B-1"));
    // Not inside the database (it was renamed over the database's file it named, after the
    // commit: the keystore, a log segment, MANIFEST), by any path to it.
    let keystore = std::fs::read(env.db.join("keystore")).unwrap();
    let link = env.dir.path().join("link-to-db");
    std::os::unix::fs::symlink(&env.db, &link).unwrap();
    for inside in [
        env.db.join("keystore"),
        env.db.join("rejects.csv"),
        env.db.join("log").join("x"),
        link.join("MANIFEST"),
    ] {
        let args = [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", inside.to_str().unwrap()];
        let err = fail(&env.run(true, "import", &args));
        assert!(err.contains("inside the database directory"), "{inside:?}: {err}");
    }
    assert_eq!(std::fs::read(env.db.join("keystore")).unwrap(), keystore, "the keystore was replaced");
    // Also inside a database the import would create.
    let new_db = env.dir.path().join("new.db");
    let inside = new_db.join("rejects.csv");
    let args = [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", inside.to_str().unwrap()];
    let err = fail(&run_at(&new_db, true, "import", &args));
    assert!(err.contains("inside the database directory"), "{err}");
    assert!(!new_db.exists());
    assert!(!env.db.join("rejects.csv").exists());
    // Nor may it be the input itself.
    let args = [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", csv.to_str().unwrap()];
    let err = fail(&env.run(true, "import", &args));
    assert!(err.contains("input"), "{err}");
    assert!(std::fs::read_to_string(&csv).unwrap().contains("B-1"), "the input is intact");
    // Nor a directory (the database's, or any): found after the commit, it failed an
    // import that had landed.
    let fresh = Env::new();
    for dir in [fresh.dir.path().to_owned(), fresh.db.clone()] {
        std::fs::create_dir_all(&dir).unwrap();
        let args = [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", dir.to_str().unwrap()];
        let err = fail(&fresh.run(true, "import", &args));
        assert!(err.contains("the rejects file is a directory"), "{err}");
        assert!(!fresh.db.join("MANIFEST").exists(), "nothing imported, no database created");
    }
    // A path naming a directory that does not exist yet ("out/") failed only at the rename.
    let out = format!("{}/", fresh.dir.path().join("out").display());
    let args = [csv.to_str().unwrap(), "--pii", PII_ARG, "--skip-invalid", out.as_str()];
    assert!(fail(&fresh.run(true, "import", &args)).contains("the rejects file is a directory"));
    // Bad options are refused before a database is created for them.
    for extra in [["--collection", "bad-name"], ["--numbers", "lat"], ["--numbers", "name"]] {
        let mut args = vec![csv.to_str().unwrap(), "--pii", PII_ARG];
        args.extend(extra);
        let err = fail(&fresh.run(true, "import", &args));
        assert!(err.contains("invalid argument"), "{extra:?}: {err}");
        assert!(!fresh.db.join("MANIFEST").exists(), "{extra:?}: a database was created");
    }
}

#[test]
fn importing_pii_needs_the_key_and_nothing_is_written_without_it() {
    let env = Env::new();
    let csv = env.file("c.csv", with_header(&format!("{GOOD}{}", bad_row("G-2", 1, "48.9"))));
    let err = fail(&env.run(false, "import", &[csv.to_str().unwrap(), "--pii", PII_ARG]));
    assert!(err.contains("key") && err.contains("GEOCRM_KEY"), "{err}");
    assert!(!env.db.exists(), "a refused import left a new database behind");
    // Into an empty directory: it stays, empty.
    std::fs::create_dir(&env.db).unwrap();
    fail(&env.run(false, "import", &[csv.to_str().unwrap(), "--pii", PII_ARG]));
    assert_eq!(std::fs::read_dir(&env.db).unwrap().count(), 0, "a refused import left files behind");
    // Without PII columns no key is needed.
    let plain = env.file("p.csv", "id,lat,lon,tier\nP-1,1,2,gold\n");
    ok(&env.run(false, "import", &[plain.to_str().unwrap(), "--collection", "plain"]));
}

#[test]
fn import_creates_over_what_a_killed_creating_open_left_and_nowhere_else() {
    // A creating open killed before its MANIFEST leaves an empty LOCK, maybe MANIFEST.tmp:
    // every command refused the directory as "corrupt", and repair could not help.
    let plain = |env: &Env| env.file("p.csv", "id,lat,lon,tier\nP-1,1,2,gold\n");
    for leftovers in [&["LOCK"][..], &["LOCK", "MANIFEST.tmp"]] {
        let env = Env::new();
        std::fs::create_dir(&env.db).unwrap();
        for name in leftovers {
            std::fs::write(env.db.join(name), b"").unwrap();
        }
        ok(&env.run(false, "import", &[plain(&env).to_str().unwrap()]));
        assert_eq!(env.records(), Some(1), "{leftovers:?}");
    }
    // A directory with other files is not a database: said so, not "corrupt" — a user's
    // own MANIFEST.tmp included (creating there replaced it).
    for (name, bytes) in [("notes.txt", &b"mine"[..]), ("MANIFEST.tmp", b"my notes")] {
        let env = Env::new();
        std::fs::create_dir(&env.db).unwrap();
        std::fs::write(env.db.join(name), bytes).unwrap();
        let err = fail(&env.run(false, "import", &[plain(&env).to_str().unwrap()]));
        assert!(err.contains("holds files but no geocrm database"), "{err}");
        assert_eq!(std::fs::read(env.db.join(name)).unwrap(), bytes);
    }
    // A database that lost its MANIFEST keeps its own error (repair rebuilds it).
    let env = Env::new();
    ok(&env.run(false, "import", &[plain(&env).to_str().unwrap()]));
    std::fs::remove_file(env.db.join("MANIFEST")).unwrap();
    let err = fail(&env.run(false, "import", &[plain(&env).to_str().unwrap()]));
    assert!(
        err.contains("the MANIFEST is missing") && err.contains("repair") && !err.contains("holds files"),
        "{err}"
    );
    // `verify` reports it as damage (exit 3), and repair rebuilds it (from the diff review:
    // it said "not a geocrm database", exit 1).
    let out = env.run(false, "verify", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    ok(&env.run(false, "repair", &[]));
    ok(&env.run(false, "stats", &[]));
}

#[test]
fn two_imports_creating_one_database_at_once_never_fail_as_corrupt() {
    // A creates the database and discards it (its last row is bad) while B waits to import
    // good rows: B either creates it and imports, or (waiting too long) is locked out — it
    // failed with "not a geocrm database" or "no such directory".
    let env = Env::new();
    let mut rows = String::from("id,lat,lon,tier\n");
    for i in 0..20_000 {
        rows.push_str(&format!("A-{i},{},{},gold\n", (i % 80) as f64, (i % 170) as f64));
    }
    rows.push_str("A-bad,91,0,gold\n");
    let bad = env.file("a.csv", rows);
    let good = env.file("b.csv", "id,lat,lon,tier\nB-1,1,2,gold\n");
    for delay_ms in [0u64, 2, 5, 10, 20, 40] {
        let _ = std::fs::remove_dir_all(&env.db);
        let bin = env!("CARGO_BIN_EXE_geocrm");
        let a = std::process::Command::new(bin)
            .args(["import", "--db"])
            .arg(&env.db)
            .arg(&bad)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let b = env.run(false, "import", &[good.to_str().unwrap()]);
        let a = a.wait_with_output().unwrap();
        assert!(!a.status.success());
        if !b.status.success() {
            let err = String::from_utf8_lossy(&b.stderr);
            assert!(err.contains("locked"), "after {delay_ms} ms: {err}");
        } else {
            assert_eq!(env.records(), Some(1), "after {delay_ms} ms");
        }
    }
}

#[test]
fn existing_collection_rejects_foreign_columns_and_kind_changes() {
    let env = Env::new();
    env.import_fixture();
    let csv = env.file("extra.csv", format!("{HEADER},vip\n{},yes\n", GOOD.trim_end()));
    let err = fail(&env.run(true, "import", &[csv.to_str().unwrap(), "--pii", PII_ARG]));
    assert_eq!(
        err.trim(),
        "error: line 1, column header: column \"vip\" is not a field of the existing collection"
    );
    assert_eq!(env.records(), Some(60));

    // A collection created without --pii holds `note` as a category; a later import that
    // names `note` as PII must not store it in plaintext.
    let first = env.file("n1.csv", "id,lat,lon,note\nN-1,1,2,harmless\n");
    ok(&env.run(true, "import", &[first.to_str().unwrap(), "--collection", "notes"]));
    let second = env.file("n2.csv", "id,lat,lon,note\nN-2,1,2,Secret Note Value\n");
    let err =
        fail(&env.run(true, "import", &[second.to_str().unwrap(), "--collection", "notes", "--pii", "note"]));
    assert_eq!(
        err.trim(),
        "error: line 1, column header: column \"note\" is a category field of the existing collection, not pii \
         (a field's kind is fixed when its collection is created: to make it a pii field, import the file into a \
         new collection, --collection NAME, or a new database)"
    );
    for f in all_files(&env.db) {
        assert!(!contains(&std::fs::read(&f).unwrap(), "Secret Note Value"), "{}", f.display());
    }
}

#[test]
fn import_into_an_existing_empty_directory() {
    let env = Env::new();
    std::fs::create_dir(&env.db).unwrap();
    let csv = env.file("c.csv", with_header(GOOD));
    ok(&env.run(true, "import", &[csv.to_str().unwrap(), "--pii", PII_ARG]));
    assert_eq!(env.records(), Some(1));
}

#[test]
fn bad_query_arguments() {
    let env = Env::new();
    env.import_fixture();
    let at = ["--lat", "48.85", "--lon", "2.35"];
    let near = |extra: &[&str]| env.fail("near", &[&at[..], extra].concat());
    let err = near(&["--where", "tier == 'gold'"]);
    // The filter's values are masked (they may be personal data).
    assert!(
        err.contains(
            "invalid filter \"tier == '****'\" at character 5: '==' is not an operator here: write '='"
        ),
        "{err}"
    );
    // Also when the value is meant for another field: a name compared with a number.
    for filter in [
        "ltv = 'Alice Secretname'",
        "ltv in ('Alice Secretname')",
        "tier = 'x' and ltv = \"Alice Secretname\"",
    ] {
        let err = near(&["--where", filter]);
        assert!(!err.contains("Secretname"), "{filter}: {err}");
        assert!(err.contains("a text value of 16 characters (not shown"), "{filter}: {err}");
    }
    // A mistyped number is shown (it is no one's data); a date is not.
    assert!(near(&["--where", "ltv = '12x'"]).contains("\"12x\" is not a number"));
    let err = near(&["--where", "ltv = '1.2.90'"]);
    assert!(!err.contains("1.2.90") && err.contains("a text value of 6 characters"), "{err}");
    let err = near(&["--where", "tier = 'gold' and and"]);
    assert!(err.contains("at character 18") && err.contains("expected a condition before 'and'"), "{err}");
    // Positions count characters, not bytes.
    let err = near(&["--where", "tier = 'Zürich' oops"]);
    assert!(err.contains("at character 16"), "{err}");
    // An unknown field is not repeated (a value typed on the left, `Lovelace = name`, was);
    // the fields a filter can use are listed.
    let err = near(&["--where", "nosuch = 1"]);
    assert!(!err.contains("nosuch") && err.contains("unknown field of 6 characters"), "{err}");
    assert!(err.contains("ltv") && err.contains("tier") && !err.contains("email"), "{err}");
    let err = near(&["--where", "Lovelace = name"]);
    assert!(!err.contains("Lovelace"), "{err}");
    // A field error points at the field in the whole filter (it said "at character 0" and
    // showed the field alone).
    let err = near(&["--where", "tier = 'gold' and nosuch = 1"]);
    assert!(
        err.contains("invalid filter \"tier = '****' and ****** = *\" at character 18: unknown field of 6"),
        "{err}"
    );
    let err = near(&["--where", "ltv > 1 or tier > 2"]);
    assert!(err.contains("\"ltv > * or tier > *\" at character 11: \"tier\" is a category field"), "{err}");
    let err = near(&["--where", "name = 'Ada'"]);
    assert!(err.contains("name"), "{err}");
    // k out of range is a usage error (exit 2) like a negative one (k 0 exited 1, -1 exited 2).
    let out = env.run(false, "near", &[&at[..], &["-k", "0"][..]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = fail(&out);
    assert!(err.contains("invalid value '0'") && err.contains("0 is not in 1..=1000000"), "{err}");
    // A negative k is a bad value of -k, not an unknown argument `-1`.
    let out = env.run(false, "near", &[&at[..], &["-k", "-1"][..]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = fail(&out);
    assert!(err.contains("invalid value '-1'") && err.contains("<K>"), "{err}");
    let err = env.fail("near", &["--lat", "91", "--lon", "0"]);
    assert!(err.contains("latitude must be within [-90, 90]"), "{err}");
    for meters in [&["--meters", "-5"][..], &["--meters=-5"][..]] {
        let err = env.fail("radius", &[&at[..], meters].concat());
        assert!(err.contains("invalid argument meters: radius must be a finite number ≥ 0, got -5"), "{err}");
    }
    // The flags typed, not the library's argument names (`group_by`, `field`, `metres`: from
    // the CLI review).
    let err = env.fail("agg", &["--by", "h3:16"]);
    assert!(err.contains("invalid argument by: H3 resolution 16 is not 0-15"), "{err}");
    let err = env.fail("agg", &["--by", "h3:x"]);
    assert!(err.contains("\"x\" is not a number 0-15"), "{err}");
    // What the field is instead, and the fields that would do (an unknown one was "not a
    // category attribute": from a hands-on review).
    let err = env.fail("agg", &["--by", "attr:ltv"]);
    assert!(
        err.contains("invalid argument by: \"ltv\" is a number attribute, not a category attribute (its category attributes: \"tier\")"),
        "{err}"
    );
    let err = env.fail("agg", &["--by", "attr:nope"]);
    assert!(
        err.contains("\"nope\" is not a field of the collection (its category attributes: \"tier\")"),
        "{err}"
    );
    let err = env.fail("agg", &["--by", "all", "--sum", "tier"]);
    assert!(
        err.contains("invalid argument sum/avg/min/max: \"tier\" is a category attribute, not a number attribute (its number attributes: \"ltv\", \"visits\")"),
        "{err}"
    );
    let err = env.fail("agg", &["--by", "all", "--sum", "name"]);
    assert!(err.contains("\"name\" is a PII field (encrypted: it cannot be aggregated)"), "{err}");

    let line = env.file("line.geojson", r#"{"type": "LineString", "coordinates": [[0,0],[1,1]]}"#);
    let broken = env.file("broken.geojson", "{\"type\": \"Polygon\", \"coordinates\": [[[0,0],[1,");
    for cmd in ["within", "agg"] {
        let flag = if cmd == "within" { "--geojson" } else { "--within" };
        let mut args = vec![flag, line.to_str().unwrap()];
        if cmd == "agg" {
            args.extend(["--by", "all"]);
        }
        let err = env.fail(cmd, &args);
        assert!(err.contains("invalid GeoJSON") && err.contains("LineString"), "{err}");
        args[1] = broken.to_str().unwrap();
        let err = env.fail(cmd, &args);
        assert!(err.contains("invalid GeoJSON: not valid JSON at line 1"), "{err}");
    }
    // A file over 64 MiB is refused before it is parsed (it was read whole: about 14 bytes
    // of memory per byte; from the CLI review). Sparse: nothing is written.
    let huge = env.dir.path().join("huge.geojson");
    std::fs::File::create(&huge).unwrap().set_len((64 << 20) + 1).unwrap();
    let err = env.fail("within", &["--geojson", huge.to_str().unwrap()]);
    assert!(err.contains("invalid GeoJSON") && err.contains("larger than 64 MiB"), "{err}");
    // A two-byte character cut by the limit: still the size (it read as "not valid UTF-8";
    // from the diff review).
    let mut file = std::fs::OpenOptions::new().write(true).open(&huge).unwrap();
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(64 << 20)).unwrap();
    std::io::Write::write_all(&mut file, "é{}".as_bytes()).unwrap();
    drop(file);
    let err = env.fail("within", &["--geojson", huge.to_str().unwrap()]);
    assert!(err.contains("larger than 64 MiB"), "{err}");
    // `delete --id ""` said " was not present" and exited 0.
    let err = env.fail("delete", &["--id", ""]);
    assert!(err.contains("the id is empty"), "{err}");
    assert_eq!(env.records(), Some(60));
}

#[test]
fn queries_on_a_missing_directory_do_not_create_it() {
    let env = Env::new();
    for (cmd, args) in [
        ("near", &["--lat", "1", "--lon", "2"][..]),
        ("stats", &[][..]),
        ("get", &["--id", "C-1"][..]),
        ("delete", &["--id", "C-1"][..]),
    ] {
        let err = env.fail(cmd, args);
        assert!(err.contains("no such directory") && err.contains("crm.db"), "{cmd}: {err}");
        assert!(!env.db.exists(), "{cmd} created the database directory");
    }
}

/// In an empty directory — not a database — `verify` says so with status 1 (it could not
/// check: not damage), and neither it nor `repair` (dry or not) leaves a file there (they
/// left a lock file: from the robustness review).
#[test]
fn verify_and_repair_leave_a_directory_that_is_no_database_as_it_was() {
    let env = Env::new();
    std::fs::create_dir(&env.db).unwrap();
    let out = env.run(false, "verify", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a geocrm database"));
    // Its own kind: a mistyped `--db` is no damage (it was `corrupt`, naming a MANIFEST
    // that does not exist: from the CLI review).
    let out = env.run(false, "stats", &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "not_a_database", "{v}");
    for args in [&["--dry-run"][..], &[][..]] {
        let err = env.fail("repair", args);
        assert!(err.contains("not a geocrm database"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(&env.db).unwrap().count(), 0, "a file was left");
}

#[test]
fn a_locked_database_is_reported_as_locked() {
    let env = Env::new();
    env.import_fixture();
    let held = Database::open(&env.db, Options::new()).unwrap();
    // Commands that write, or read PII (audited), need the lock.
    for (key, cmd, args) in [
        (false, "delete", &["--id", "C-0001"][..]),
        (false, "checkpoint", &[][..]),
        (true, "get", &["--id", "C-0001", "--reveal"][..]),
    ] {
        let err = fail(&env.run(key, cmd, args));
        assert!(err.contains("locked"), "{cmd}: {err}");
    }
    // Commands that read locations, attributes and statistics read a snapshot without it.
    let mut b = held.begin_write();
    b.delete("customers", "C-0002").unwrap();
    b.commit().unwrap();
    assert_eq!(env.records(), Some(59), "stats sees the holder's acknowledged commit");
    let near = env.json("near", &["--lat", "1", "--lon", "2", "--k", "100"]);
    assert_eq!(near.as_array().map(Vec::len), Some(59));
    let count = env.ok("radius", &["--lat", "1", "--lon", "2", "--meters", "2e7", "--count"]);
    assert_eq!(count.trim(), "59");
    let csv = env.file("c.csv", with_header(GOOD));
    let err = fail(&run_at(&env.db, true, "import", &[csv.to_str().unwrap(), "--pii", PII_ARG]));
    assert!(err.contains("locked"), "{err}");
    drop(held);
    assert_eq!(env.records(), Some(59));
}

#[test]
fn output_into_a_closed_pipe_exits_quietly() {
    // `geocrm … | head` closing early: println! panicked ("failed printing to stdout: Broken
    // pipe", a backtrace, exit 101). Now no message and 141, as for a process SIGPIPE ends.
    let env = Env::new();
    env.import_fixture();
    let mut sigpipes = 0;
    for _ in 0..5 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_geocrm"))
            .args(["stats", "--db"])
            .arg(&env.db)
            .arg("--json")
            .env_remove("GEOCRM_KEY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the tool writes
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        // (0 if a child another test thread was starting held a copy of the read end
        // until its exec, after the tool wrote into the pipe.)
        assert!(matches!(out.status.code(), Some(141 | 0)), "{stderr}");
        sigpipes += usize::from(out.status.code() == Some(141));
    }
    assert!(sigpipes > 0, "no run ended by SIGPIPE");
    // The demo's temporary database goes too (destructors run).
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_geocrm"))
        .args(["demo", "--records", "50"])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its first line comes before the database is created: read it, then close the pipe.
    let mut first = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut reader, &mut first).unwrap();
    drop(reader);
    let out = child.wait_with_output().unwrap();
    // (0 if the whole demo fit in the pipe before it closed.)
    assert!(matches!(out.status.code(), Some(141 | 0)), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "the demo database was left behind");
}

#[test]
fn output_onto_a_full_disk_is_an_error_not_a_panic_or_success() {
    // `> /dev/full`: println! panicked (exit 101, "panicked" and a backtrace), and `get`'s
    // text output ignored the failed write (exit 0, nothing shown).
    let env = Env::new();
    env.import_fixture();
    for (cmd, args) in [
        ("stats", &["--json"][..]),
        ("near", &["--lat", "1", "--lon", "2"][..]),
        ("get", &["--id", "C-0001"][..]),
        ("get", &["--id", "C-0001", "--json"][..]),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_geocrm"))
            .arg(cmd)
            .arg("--db")
            .arg(&env.db)
            .args(args)
            .env_remove("GEOCRM_KEY")
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd} {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{cmd} {args:?}: {stderr}");
        assert!(stderr.starts_with("error: writing to standard output: No space left"), "{cmd}: {stderr}");
    }
}

/// A category value with a line break printed as two rows of `agg`'s text output, and a
/// value "(none)" as the row of records without one.
#[test]
fn agg_text_output_escapes_category_keys() {
    let env = Env::new();
    let csv = env.file(
        "c.csv",
        "id,lat,lon,tier,v\nA,1,2,\"g\nfake count=99\",1\nB,1,2,(none),2\nC,1,2,,3\nD,1,2,x count=9,4\n",
    );
    ok(&env.run(false, "import", &[csv.to_str().unwrap()]));
    let out = env.ok("agg", &["--by", "attr:tier", "--sum", "v"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    // Spaces and `=` would read as more fields (from the diff review).
    assert!(lines.iter().any(|l| l.starts_with("\"x count=9\" ") && l.contains("sum_v=4")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("\"g\\nfake count=99\" ")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("\"(none)\" ") && l.contains("sum_v=2")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("(none) ") && l.contains("sum_v=3")), "{out}");
}

/// With `--json`, a failing command prints its error on stdout as JSON too — its kind and the
/// message stderr gives —, so a script reading stdout gets something it can parse (it got
/// nothing before). Without `--json`, stdout stays empty.
#[test]
fn json_commands_print_their_errors_as_json() {
    let env = Env::new();
    env.import_fixture();
    let bad_csv = env.file("bad.csv", format!("{HEADER}\n{}", bad_row("B-1", 1, "91.5")));
    let missing = env.dir.path().join("no-such-dir").join("db");
    let cases: Vec<(&std::path::Path, &str, Vec<&str>, &str)> = vec![
        (&env.db, "near", vec!["--lat", "91", "--lon", "0"], "invalid_coordinate"),
        (&env.db, "near", vec!["--lat", "1", "--lon", "0", "--where", "tier =="], "invalid_filter"),
        (&env.db, "import", vec![bad_csv.to_str().unwrap(), "--pii", PII_ARG], "csv"),
        (&missing, "stats", vec![], "io"),
    ];
    for (db, cmd, args, kind) in cases {
        let out = run_at(db, true, cmd, &args);
        assert!(out.stdout.is_empty(), "{cmd}: stdout without --json");
        let plain = fail(&out);
        let mut with_json = args.clone();
        with_json.push("--json");
        let out = run_at(db, true, cmd, &with_json);
        let stderr = fail(&out);
        assert_eq!(stderr, plain, "{cmd}: stderr is the same with --json");
        let stdout: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(stdout["error"]["kind"], kind, "{cmd}: {stdout}");
        let message = stdout["error"]["message"].as_str().unwrap();
        assert_eq!(format!("error: {message}"), stderr.trim_end(), "{cmd}");
    }
    assert_eq!(env.records(), Some(60));
}

#[test]
fn stats_reports_a_torn_log_tail_and_leaves_it_to_a_writable_open() {
    let env = Env::new();
    env.import_fixture();
    let seg = newest_segment(&env.db);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 7, 7, 7]);
    std::fs::write(&seg, &bytes).unwrap();
    let out = env.ok("stats", &[]);
    assert!(out.contains("the log ends in 7 bytes that are not a whole commit"), "{out}");
    assert_eq!(env.json("stats", &[])["log"]["truncated_tail_bytes"], 7);
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "a read-only command cut the tail");
    env.ok("checkpoint", &[]);
    assert!(!env.ok("stats", &[]).contains("not a whole commit"));
    assert_eq!(env.records(), Some(60));
}

/// An empty or blank `GEOCRM_KEY` is unset, as `GEOCRM_ACTOR` is (it was refused as bad
/// hex): an import without PII works, and one with PII says the key is missing.
#[test]
fn an_empty_geocrm_key_is_unset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, "id,lat,lon\nA,1,2\n").unwrap();
    let sealed = dir.path().join("sealed.csv");
    std::fs::write(&sealed, "id,lat,lon,name\nB,1,2,Bo\n").unwrap();
    for blank in ["", "  "] {
        let run = |file: &std::path::Path, more: &[&str]| {
            let db = db.join(file.file_stem().unwrap());
            std::process::Command::new(env!("CARGO_BIN_EXE_geocrm"))
                .args(["import", "--db", db.to_str().unwrap(), file.to_str().unwrap()])
                .args(more)
                .env("GEOCRM_KEY", blank)
                .output()
                .unwrap()
        };
        super::ok(&run(&plain, &[]));
        let err = super::fail(&run(&sealed, &["--pii", "name"]));
        assert!(err.contains("key") && !err.contains("hex"), "{blank:?}: {err}");
    }
}

/// A number cell written `NA` is no value, and the import says how many there were.
#[test]
fn missing_value_markers_are_counted_in_the_report() {
    let env = Env::new();
    let rows: String = (0..10).map(|i| format!("R{i},1,4,5,{i}\n")).collect();
    let csv = env.file("m.csv", format!("id,lat,lon,ltv,score\nA,1,1,NA,-\nB,1,2,#N/A,3\nC,1,3,4,5\n{rows}"));
    let out = env.run(false, "import", &[csv.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(report["missing_values"], json!({"ltv": 2}));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("were taken as empty, so those records have no value for the field: ltv 2"),
        "{stderr}"
    );
    // A `-` first made `score` text: a note says so, there and in the report.
    let note = "column \"score\" became a category, as its first value is not a number, though 12 of its 13 values are";
    assert!(stderr.contains(&format!("note: {note}")), "{stderr}");
    assert!(report["notes"][0].as_str().unwrap().starts_with(note), "{report}");
}
