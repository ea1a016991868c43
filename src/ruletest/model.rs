//! The rule unit-test file, in promtool's format unchanged (Prometheus docs:
//! "Unit Testing for Rules"; promtool's `unitTestFile` in
//! cmd/promtool/unittest.go). Decoding only: text in, values with positions
//! out. Unknown fields are errors, as promtool's strict YAML decoding makes them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::Duration;

/// A whole test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Rule files (relative to the test file, globs allowed).
    #[serde(default)]
    pub rule_files: Vec<Spanned<String>>,
    /// Step between rule evaluations; 1m when absent.
    pub evaluation_interval: Option<Duration>,
    /// Group names in the order they are evaluated at each step.
    #[serde(default)]
    pub group_eval_order: Vec<Spanned<String>>,
    /// The test groups.
    #[serde(default)]
    pub tests: Vec<Spanned<TestGroup>>,
}

/// One test group: input series and the checks run against them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestGroup {
    /// Step between the input series' values; 1m when absent.
    pub interval: Option<Duration>,
    /// The series to load.
    #[serde(default)]
    pub input_series: Vec<Spanned<InputSeries>>,
    /// Alert checks.
    #[serde(default)]
    pub alert_rule_test: Vec<Spanned<AlertTest>>,
    /// Expression checks.
    #[serde(default)]
    pub promql_expr_test: Vec<Spanned<ExprTest>>,
    /// `$externalLabels` for templates.
    #[serde(default)]
    pub external_labels: BTreeMap<String, Scalar>,
    /// `$externalURL` for templates.
    pub external_url: Option<String>,
    /// The group's name, shown in failures.
    pub name: Option<String>,
}

/// One input series: a descriptor and its values in series notation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    /// `metric{label="value"}`.
    pub series: Spanned<String>,
    /// `1 2 3`, `0+10x100`, `_`, `stale` ... (see [`crate::promql::series_notation`]).
    pub values: Spanned<Scalar>,
}

/// The alerts expected to be firing at one time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTest {
    /// Time since 0 at which the alerts are checked.
    #[serde(default)]
    pub eval_time: Duration,
    /// The alerting rule's name.
    #[serde(default)]
    pub alertname: String,
    /// Firing alerts expected; empty means none.
    #[serde(default)]
    pub exp_alerts: Vec<ExpAlert>,
}

/// One expected alert.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpAlert {
    /// Labels, without `alertname` (added from the test).
    #[serde(default)]
    pub exp_labels: BTreeMap<String, Scalar>,
    /// Expanded annotations.
    #[serde(default)]
    pub exp_annotations: BTreeMap<String, Scalar>,
}

/// An expression and the samples it must give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExprTest {
    /// The PromQL expression.
    pub expr: Scalar,
    /// Time since 0 at which it is evaluated.
    #[serde(default)]
    pub eval_time: Duration,
    /// Expected samples; empty means an empty result.
    #[serde(default)]
    pub exp_samples: Vec<Spanned<ExpSample>>,
}

/// One expected sample.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpSample {
    /// The series descriptor, `metric{label="value"}` (`{}` for a scalar).
    #[serde(default)]
    pub labels: String,
    /// The value.
    pub value: f64,
}

/// A YAML scalar read as text, as promtool's Go decoding reads numbers and
/// booleans into string fields (`values: 1`, `exp_labels: {code: 500}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A string.
    Text(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// The scalar as text.
    pub fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// A test file that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct DecodeError {
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

/// Decodes the text of a test file.
pub fn decode(text: &str) -> Result<TestFile, DecodeError> {
    serde_saphyr::from_str::<Option<TestFile>>(text)
        .map(|f| {
            f.unwrap_or(TestFile {
                rule_files: vec![],
                evaluation_interval: None,
                group_eval_order: vec![],
                tests: vec![],
            })
        })
        .map_err(|e| {
            let (line, column, message) = crate::config::yaml_error_parts(&e);
            DecodeError { line, column, message }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_decodes_with_positions() {
        let text = r#"rule_files: [a.yml]
evaluation_interval: 30s
group_eval_order: [g1, g2]
tests:
  - interval: 1m
    name: t
    external_labels: {region: eu}
    external_url: http://x
    input_series:
      - series: 'up{job="a"}'
        values: '1 0x5'
      - series: 'one'
        values: 1
    alert_rule_test:
      - eval_time: 5m
        alertname: Down
        exp_alerts:
          - exp_labels: {job: a, code: 500}
            exp_annotations: {summary: "a down"}
    promql_expr_test:
      - expr: up
        eval_time: 1m
        exp_samples:
          - labels: 'up{job="a"}'
            value: 0
"#;
        let f = decode(text).unwrap();
        assert_eq!(f.evaluation_interval.unwrap().as_millis(), 30_000);
        let t = &f.tests[0].value;
        assert_eq!(t.input_series[1].value.values.value.text(), "1");
        assert_eq!(t.input_series[0].value.values.referenced.line(), 11);
        assert_eq!(t.alert_rule_test[0].value.exp_alerts[0].exp_labels["code"].text(), "500");
        assert_eq!(t.promql_expr_test[0].value.exp_samples[0].value.value, 0.0);
        assert_eq!(t.alert_rule_test[0].value.eval_time.as_millis(), 300_000);
    }

    #[test]
    fn unknown_field_has_line() {
        let e = decode("tests:\n  - interval: 1m\n    input_serie: []\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("input_serie"), "{e}");
    }

    #[test]
    fn empty_file_is_empty() {
        assert!(decode("").unwrap().tests.is_empty());
    }
}
