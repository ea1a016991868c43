//! `promlite rules backtest` end to end: data written into a real TSDB
//! directory with the storage API, the real binary evaluating a recording rule
//! and alerts over it, exact timelines checked in the table and the JSON.

use std::path::Path;
use std::process::{Command, Output};

use promlite::labels;
use promlite::storage::{Appendable, Queryable};
use promlite::tsdb::db::{Db, DbOptions};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

const RULES: &str = r#"groups:
  - name: api
    rules:
      - record: job:errors_ratio:max
        expr: max by (job) (errors_ratio)
      - alert: HighErrors
        expr: job:errors_ratio:max > 0.1
        for: 2m
        labels:
          severity: critical
      - alert: NoErrorsAtAll
        expr: job:errors_ratio:max < 0
"#;

/// The error ratio: 0.01, except 0.2 from 5m to 10m (0.35 at exactly 7m)
/// and a 0.5 blip from 15m to 15m45s.
fn ratio(t: i64) -> f64 {
    let off = t - T0;
    if off == 7 * MIN {
        0.35
    } else if (5 * MIN..10 * MIN).contains(&off) {
        0.2
    } else if (15 * MIN..15 * MIN + 46_000).contains(&off) {
        0.5
    } else {
        0.01
    }
}

fn write_data(dir: &Path) {
    let db = Db::open(dir, DbOptions::default()).expect("open tsdb");
    let mut app = db.appender();
    for i in 0..=80 {
        let t = T0 + i * 15_000;
        app.append(&labels!("__name__" => "errors_ratio", "job" => "api", "instance" => "a"), t, ratio(t)).unwrap();
        app.append(&labels!("__name__" => "errors_ratio", "job" => "api", "instance" => "b"), t, 0.0).unwrap();
    }
    app.commit().expect("commit");
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_data(&data);
    let rules = tmp.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    (tmp, data, rules)
}

fn backtest(data: &Path, extra: &[&str], rules: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_promlite"));
    cmd.args(["rules", "backtest", "--start", "1700000000", "--end", "2023-11-14T22:33:20Z", "--step", "1m"]);
    cmd.arg(format!("--storage.tsdb.path={}", data.display()));
    cmd.args(extra).arg(rules);
    cmd.output().expect("run promlite")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn table_shows_pending_firing_resolved_and_peak() {
    let (_tmp, data, rules) = setup();
    let out = backtest(&data, &[], &rules);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let rows: Vec<Vec<&str>> =
        stdout.lines().map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()).collect();
    assert_eq!(rows[0], ["RULE", "ALERT", "PENDING AT", "FIRING AT", "RESOLVED AT", "PEAK"], "{stdout}");
    let labels = r#"{job="api", severity="critical"}"#;
    assert_eq!(
        rows[1],
        ["HighErrors", labels, "2023-11-14T22:18:20Z", "2023-11-14T22:20:20Z", "2023-11-14T22:23:20Z", "0.35"],
        "{stdout}"
    );
    assert_eq!(rows[2], ["HighErrors", labels, "2023-11-14T22:28:20Z", "-", "2023-11-14T22:29:20Z", "0.5"], "{stdout}");
    assert_eq!(rows[3], ["NoErrorsAtAll", "(never active)", "-", "-", "-", "-"], "{stdout}");
    assert_eq!(rows.len(), 4, "{stdout}");
}

#[test]
fn json_timeline_and_recording_block() {
    let (tmp, data, rules) = setup();
    let block_dir = tmp.path().join("out");
    let out = backtest(&data, &["--format=json", &format!("--output-block={}", block_dir.display())], &rules);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(doc["start"], "2023-11-14T22:13:20Z");
    assert_eq!(doc["evaluations"], 21);
    let high = &doc["rules"][0];
    assert_eq!(high["rule"], "HighErrors");
    assert_eq!(high["group"], "api");
    let alert = &high["alerts"][0];
    assert_eq!(alert["labels"], serde_json::json!({"alertname": "HighErrors", "job": "api", "severity": "critical"}));
    assert_eq!(
        alert["episodes"],
        serde_json::json!([
            {"pending_at": "2023-11-14T22:18:20Z", "firing_at": "2023-11-14T22:20:20Z",
             "resolved_at": "2023-11-14T22:23:20Z", "peak": 0.35},
            {"pending_at": "2023-11-14T22:28:20Z", "firing_at": null,
             "resolved_at": "2023-11-14T22:29:20Z", "peak": 0.5},
        ])
    );
    assert_eq!(doc["rules"][1]["rule"], "NoErrorsAtAll");
    assert_eq!(doc["rules"][1]["alerts"], serde_json::json!([]));

    // The recording results, one per minute, are in the output block and nothing else is.
    let db = Db::open(&block_dir, DbOptions::default()).expect("open output");
    let all = db.select(i64::MIN, i64::MAX, &[]).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let mut s = all.into_iter().next().unwrap();
    assert_eq!(s.labels, labels!("__name__" => "job:errors_ratio:max", "job" => "api"));
    let mut v = Vec::new();
    s.samples.collect_into(&mut v);
    assert_eq!(v.len(), 21);
    assert_eq!((v[7].t, v[7].v), (T0 + 7 * MIN, 0.35));
    // The source directory got no rule output.
    drop(db);
    let src = Db::open(&data, DbOptions::default()).unwrap();
    let names = src.label_values("__name__", i64::MIN, i64::MAX, &[]).unwrap();
    assert_eq!(names, ["errors_ratio"]);
}

#[test]
fn refuses_a_directory_in_use_and_bad_input() {
    let (_tmp, data, rules) = setup();
    let held = Db::open(&data, DbOptions::default()).unwrap();
    let out = backtest(&data, &[], &rules);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("in use by a running promlite"), "{}", text(&out.stderr));
    drop(held);
    let bad = data.parent().unwrap().join("bad.yml");
    std::fs::write(&bad, "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: sum(\n").unwrap();
    let out = backtest(&data, &[], &bad);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bad.yml:5"), "{}", text(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_promlite"))
        .args(["rules", "backtest", "--start", "soon", "--end", "0"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid time \"soon\""), "{}", text(&out.stderr));
}
