//! `geocrm bench --quick --json` end to end: the JSON report parses, geocrm and rstar have
//! rows for every query, geocrm's ratios are 1, no peer disagrees with geocrm, and
//! `--export-csv` writes the dataset, the query points, geocrm's answers and the polygons.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_geocrm")).arg("bench").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "geocrm bench failed: {stderr}");
    assert!(!stderr.contains("WARNING"), "a peer disagreed with geocrm: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn quick_json_report_has_checked_rows_for_geocrm_and_rstar() {
    let export = tempfile::tempdir().unwrap();
    let dir = export.path().to_str().unwrap();
    // Fewer query points than the checked queries: both cycle over them.
    let v = bench(&["--records", "2000", "--query-points", "7", "--quick", "--json", "--export-csv", dir]);
    assert_eq!(v["records"], 2000);
    assert_eq!(v["query_points"], 7);
    let notes = v["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().starts_with("query points cycled: 7 points")),
        "{notes:?}"
    );
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(!v["commit"].as_str().unwrap().is_empty());
    let rows = v["rows"].as_array().unwrap();
    let of = |engine: &'static str| rows.iter().filter(move |r| r["engine"] == engine);
    for r in of("geocrm") {
        assert_eq!(r["ratio_to_geocrm"].as_f64(), Some(1.0), "{r}");
        assert!(r["median_us"].as_f64().unwrap() >= 0.0);
    }
    for r in rows {
        assert_eq!(r["status"], "ok", "{r}");
        assert!(r["p90_us"].as_f64().unwrap() >= r["median_us"].as_f64().unwrap(), "{r}");
    }
    for dataset in ["uniform", "clustered"] {
        for op in ["nearest-10", "radius 2 km count", "bbox 50 km count"] {
            for engine in ["geocrm", "rstar"] {
                assert!(
                    of(engine).any(|r| r["dataset"] == dataset && r["operation"] == op),
                    "no {engine} row for {dataset} / {op}"
                );
            }
        }
        let polygons = of("geocrm").filter(|r| r["dataset"] == dataset);
        assert_eq!(
            polygons.filter(|r| r["operation"].as_str().unwrap().starts_with("polygon count")).count(),
            3
        );
    }
    for file in
        ["customers_uniform.csv", "queries_clustered.csv", "expected_uniform.csv", "china_ne10m.geojson"]
    {
        assert!(export.path().join(file).is_file(), "{file} not exported");
    }
    let csv = std::fs::read_to_string(export.path().join("customers_clustered.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2001);
    let queries = std::fs::read_to_string(export.path().join("queries_uniform.csv")).unwrap();
    assert_eq!(queries.lines().count(), 8);
    assert!(csv.starts_with("id,lat,lon,tier,lifetime_value\n"));
}

#[test]
fn zero_or_too_many_records_is_a_clear_error() {
    // Too many was a capacity-overflow panic (exit 101) or an aborted allocation (from the
    // CLI review).
    for command in ["bench", "demo"] {
        for n in ["0", "20000001", "18446744073709551615"] {
            let out =
                Command::new(env!("CARGO_BIN_EXE_geocrm")).args([command, "--records", n]).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{command} {n}: {err}");
            assert!(err.contains(&format!("takes 1 to 20000000 records, not {n}")), "{command} {n}: {err}");
        }
    }
}

#[test]
fn zero_or_too_many_query_points_is_a_clear_error() {
    for n in ["0", "1048577", "18446744073709551615"] {
        let out = Command::new(env!("CARGO_BIN_EXE_geocrm"))
            .args(["bench", "--records", "100", "--quick", "--query-points", n])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{n}: {err}");
        assert!(err.contains(&format!("takes 1 to 1048576 query points, not {n}")), "{n}: {err}");
    }
}
