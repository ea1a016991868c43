//! `promlite check rules`: example rules pass, broken files report every problem
//! with file:line and the rule's name.

use std::path::PathBuf;

use promlite::rules::testing::SimpleTemplates;
use promlite::rules::validate::{load_text, RuleKind};
use promlite::rules::{check, expand_rule_files};

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/rules")
}

#[test]
fn example_rules_are_valid() {
    let files = expand_rule_files(&["*.yml".to_string()], &testdata()).unwrap();
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["api.yml", "availability.yml", "node.yml", "queue.yml", "self.yml", "triton.yml"]);
    let report = check(&files, &SimpleTemplates::default());
    assert!(report.ok(), "{report}");
    let counts: Vec<usize> = report.files.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(counts, [4, 1, 4, 3, 4, 5]);
    assert!(report.to_string().contains("SUCCESS: 5 rules found"));
}

#[test]
fn triton_manifest_loads_with_seed_thresholds() {
    let text = std::fs::read_to_string(testdata().join("triton.yml")).unwrap();
    let (groups, problems) = load_text("triton.yml", &text, &SimpleTemplates::default());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(groups[0].name, "triton.rules");
    let err = groups[0].rules.iter().find(|r| r.name == "TritonHighErrorRate").unwrap();
    assert_eq!(err.kind, RuleKind::Alerting);
    assert_eq!(err.for_.as_secs(), 120);
    assert!(err.expr.text.contains("clamp_min") && err.expr.text.contains("> 0.02"));
    assert!(err.labels.contains(&("severity".to_string(), "warning".to_string())));
}

const BAD: &str = r#"groups:
  - name: dup
    rules:
      - alert: BadExpr
        expr: sum(rate(x[5m])
      - record: "bad name"
        expr: up
      - record: matrix_result
        expr: up[5m]
      - alert: BadLabel
        expr: up == 0
        labels:
          "0bad": x
        annotations:
          summary: "{{ $value "
      - alert: Both
        record: both
        expr: up
      - expr: up
      - alert: ForOnRecord
        expr: up
        for: 5q
  - name: dup
    interval: 0s
    rules: []
"#;

#[test]
fn every_problem_reported_with_position_and_rule() {
    let (groups, problems) = load_text("bad.yml", BAD, &SimpleTemplates::default());
    assert!(groups.is_empty());
    let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let has = |needle: &str, line: u64| {
        assert!(
            problems.iter().any(|p| p.pos.line == line && p.to_string().contains(needle)),
            "missing {needle:?} at line {line} in:\n{}",
            lines.join("\n")
        )
    };
    has("rule 1, \"BadExpr\": could not parse expression", 5);
    has("invalid recording rule name: bad name", 6);
    has("expression must be of type vector or scalar, got matrix", 9);
    has("invalid label name: 0bad", 13);
    has("annotation \"summary\": template does not parse", 15);
    has("only one of 'record' and 'alert' must be set", 16);
    has("one of 'record' or 'alert' must be set", 19);
    has("invalid for \"5q\"", 22);
    has("groupname: \"dup\" is repeated in the same file", 23);
    has("interval must be greater than 0", 24);
    assert!(lines.iter().all(|l| l.starts_with("bad.yml:")), "{lines:?}");
    assert_eq!(problems.len(), 10, "{}", lines.join("\n"));
}

#[test]
fn unknown_fields_and_bad_yaml_are_errors() {
    let (_, p) =
        load_text("x.yml", "groups:\n- name: g\n  evaluation_interval: 1m\n  rules: []\n", &SimpleTemplates::default());
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].pos.line, 3);
    assert!(p[0].message.contains("evaluation_interval"), "{}", p[0].message);
    let (_, p) = load_text("y.yml", "groups: [\n", &SimpleTemplates::default());
    assert_eq!(p.len(), 1);
}

#[test]
fn check_report_fails_on_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&good, "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: vector(1)\n").unwrap();
    std::fs::write(&bad, BAD).unwrap();
    let report = check(&[good, bad, dir.path().join("missing.yml")], &SimpleTemplates::default());
    assert!(!report.ok());
    let text = report.to_string();
    assert!(text.contains("SUCCESS: 1 rules found"), "{text}");
    assert!(text.contains("FAILED:"), "{text}");
    assert!(text.contains("missing.yml:0:0: read:"), "{text}");
}
