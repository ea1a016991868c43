//! Rule files: the YAML shapes and their decoding (pure: text in, values out).
//!
//! Two shapes are accepted, also mixed as several YAML documents in one file:
//! Prometheus rule files (`groups:` at the top) and Prometheus Operator
//! `PrometheusRule` manifests (`apiVersion: monitoring.coreos.com/v1`,
//! `kind: PrometheusRule`, groups under `spec.groups`). Unknown fields are
//! errors, as `promtool check rules` treats them. Semantic checks live in
//! [`super::validate`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::{SnippetMode, Spanned};

/// A position in a rule file (1-based line and column; 0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub col: u64,
}

impl Pos {
    fn of<T>(s: &Spanned<T>) -> Pos {
        Pos { line: s.referenced.line(), col: s.referenced.column() }
    }
}

/// One group as written in a file, before validation.
#[derive(Debug, Clone)]
pub struct RawGroup {
    /// Where the group starts.
    pub pos: Pos,
    /// `name`.
    pub name: Spanned<String>,
    /// `interval`, unparsed.
    pub interval: Option<Spanned<String>>,
    /// `query_offset`, unparsed.
    pub query_offset: Option<Spanned<String>>,
    /// `limit` (0 = none).
    pub limit: u64,
    /// Group `labels`, added to every rule's labels (rule labels win).
    pub labels: Option<Spanned<BTreeMap<String, String>>>,
    /// The rules in order.
    pub rules: Vec<RawRule>,
}

/// One rule as written in a file, before validation.
#[derive(Debug, Clone)]
pub struct RawRule {
    /// Where the rule starts.
    pub pos: Pos,
    /// `record`.
    pub record: Option<Spanned<String>>,
    /// `alert`.
    pub alert: Option<Spanned<String>>,
    /// `expr`.
    pub expr: Option<Spanned<String>>,
    /// `for`, unparsed.
    pub for_: Option<Spanned<String>>,
    /// `keep_firing_for`, unparsed.
    pub keep_firing_for: Option<Spanned<String>>,
    /// `labels`.
    pub labels: Option<Spanned<BTreeMap<String, String>>>,
    /// `annotations`.
    pub annotations: Option<Spanned<BTreeMap<String, String>>>,
}

impl RawRule {
    /// The rule's name (`alert` or `record`), or "" when neither is set.
    pub fn name(&self) -> &str {
        self.alert.as_ref().or(self.record.as_ref()).map(|s| s.value.as_str()).unwrap_or("")
    }
}

/// A file that could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos_line}:{pos_col}: {message}")]
pub struct DecodeError {
    /// Line of the problem (0 when unknown).
    pub pos_line: u64,
    /// Column of the problem (0 when unknown).
    pub pos_col: u64,
    /// What is wrong.
    pub message: String,
}

// ---- serde shapes (private): strict, with positions ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocSerde {
    groups: Option<Vec<Spanned<GroupSerde>>>,
    #[serde(rename = "apiVersion")]
    api_version: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    /// Kubernetes metadata: accepted and ignored.
    #[allow(dead_code)]
    metadata: Option<serde::de::IgnoredAny>,
    spec: Option<SpecSerde>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecSerde {
    groups: Option<Vec<Spanned<GroupSerde>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSerde {
    name: Spanned<String>,
    interval: Option<Spanned<String>>,
    query_offset: Option<Spanned<String>>,
    limit: Option<u64>,
    labels: Option<Spanned<BTreeMap<String, String>>>,
    rules: Option<Vec<Spanned<RuleSerde>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSerde {
    record: Option<Spanned<String>>,
    alert: Option<Spanned<String>>,
    expr: Option<Spanned<ExprText>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<String>>,
    keep_firing_for: Option<Spanned<String>>,
    labels: Option<Spanned<BTreeMap<String, String>>>,
    annotations: Option<Spanned<BTreeMap<String, String>>>,
}

/// `expr` may be written as a YAML number (`expr: 1`), which Prometheus reads as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExprText {
    Text(String),
    Int(i64),
    Float(f64),
}

impl ExprText {
    fn into_string(self) -> String {
        match self {
            ExprText::Text(s) => s,
            ExprText::Int(i) => i.to_string(),
            ExprText::Float(f) => f.to_string(),
        }
    }
}

fn decode_error(e: &serde_saphyr::Error) -> DecodeError {
    let mut opts = serde_saphyr::RenderOptions::default();
    opts.snippets = SnippetMode::Off;
    let (line, col) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    DecodeError { pos_line: line, pos_col: col, message: e.render_with_options(opts) }
}

/// Decodes the text of one rule file into its groups, in file order.
///
/// Errors are structural (YAML syntax, unknown fields, wrong kind); the groups'
/// contents are checked by [`super::validate`].
pub fn decode(text: &str) -> Result<Vec<RawGroup>, Vec<DecodeError>> {
    let docs: Vec<Option<DocSerde>> = serde_saphyr::from_multiple(text).map_err(|e| vec![decode_error(&e)])?;
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for doc in docs.into_iter().flatten() {
        let doc_groups = match (&doc.kind, &doc.api_version) {
            (None, None) => {
                if doc.spec.is_some() {
                    errors.push(DecodeError {
                        pos_line: 0,
                        pos_col: 0,
                        message: "field 'spec' is only valid in a PrometheusRule manifest (kind: PrometheusRule)"
                            .into(),
                    });
                    continue;
                }
                doc.groups.unwrap_or_default()
            }
            (kind, api) => {
                if let Some(kind) = kind.as_ref().filter(|k| k.value != "PrometheusRule") {
                    let p = Pos::of(kind);
                    errors.push(DecodeError {
                        pos_line: p.line,
                        pos_col: p.col,
                        message: format!("unsupported kind {:?}: only PrometheusRule manifests hold rules", kind.value),
                    });
                    continue;
                }
                if let Some(api) = api.as_ref().filter(|a| !a.value.starts_with("monitoring.coreos.com/")) {
                    let p = Pos::of(api);
                    errors.push(DecodeError {
                        pos_line: p.line,
                        pos_col: p.col,
                        message: format!("unsupported apiVersion {:?}: expected monitoring.coreos.com/v1", api.value),
                    });
                    continue;
                }
                if doc.groups.is_some() {
                    errors.push(DecodeError {
                        pos_line: 0,
                        pos_col: 0,
                        message: "a PrometheusRule manifest keeps its groups under spec.groups, not at the top".into(),
                    });
                    continue;
                }
                doc.spec.and_then(|s| s.groups).unwrap_or_default()
            }
        };
        for g in doc_groups {
            let pos = Pos::of(&g);
            let g = g.value;
            let rules = g
                .rules
                .unwrap_or_default()
                .into_iter()
                .map(|r| {
                    let pos = Pos::of(&r);
                    let r = r.value;
                    RawRule {
                        pos,
                        record: r.record,
                        alert: r.alert,
                        expr: r.expr.map(|e| Spanned {
                            value: e.value.into_string(),
                            referenced: e.referenced,
                            defined: e.defined,
                        }),
                        for_: r.for_,
                        keep_firing_for: r.keep_firing_for,
                        labels: r.labels,
                        annotations: r.annotations,
                    }
                })
                .collect();
            groups.push(RawGroup {
                pos,
                name: g.name,
                interval: g.interval,
                query_offset: g.query_offset,
                limit: g.limit.unwrap_or(0),
                labels: g.labels,
                rules,
            });
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rule_file_with_positions() {
        let text = "groups:\n  - name: g\n    interval: 30s\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m\n      - record: job:up:sum\n        expr: sum by (job) (up)\n";
        let gs = decode(text).unwrap();
        assert_eq!(gs.len(), 1);
        assert_eq!(gs[0].name.value, "g");
        assert_eq!(gs[0].rules.len(), 2);
        assert_eq!(gs[0].rules[0].name(), "A");
        assert_eq!(gs[0].rules[0].pos.line, 5);
        assert_eq!(gs[0].rules[1].expr.as_ref().unwrap().referenced.line(), 9);
        assert_eq!(gs[0].interval.as_ref().unwrap().value, "30s");
    }

    #[test]
    fn manifests_and_plain_documents_mixed() {
        let text = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: x\n  labels: {a: b}\nspec:\n  groups:\n  - name: m\n    rules:\n    - alert: B\n      expr: vector(1)\n---\ngroups:\n- name: p\n  rules: []\n---\n";
        let gs = decode(text).unwrap();
        let names: Vec<_> = gs.iter().map(|g| g.name.value.as_str()).collect();
        assert_eq!(names, ["m", "p"]);
        assert_eq!(gs[0].rules[0].pos.line, 10);
    }

    #[test]
    fn unknown_field_rejected_with_line() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    severity: page\n";
        let errs = decode(text).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].pos_line, 6, "{:?}", errs[0]);
        assert!(errs[0].message.contains("severity"), "{}", errs[0].message);
    }

    #[test]
    fn numeric_expr_accepted_and_wrong_kind_rejected() {
        let gs = decode("groups:\n- name: g\n  rules:\n  - record: one\n    expr: 1\n").unwrap();
        assert_eq!(gs[0].rules[0].expr.as_ref().unwrap().value, "1");
        let errs = decode("apiVersion: v1\nkind: ConfigMap\n").unwrap_err();
        assert!(errs[0].message.contains("ConfigMap"));
        assert_eq!(errs[0].pos_line, 2);
    }

    #[test]
    fn empty_and_comment_only_files_have_no_groups() {
        assert!(decode("").unwrap().is_empty());
        assert!(decode("# nothing here\n").unwrap().is_empty());
        assert!(decode("groups: []\n").unwrap().is_empty());
    }

    #[test]
    fn yaml_syntax_error_has_position() {
        let errs = decode("groups:\n- name: g\n  rules: [\n").unwrap_err();
        assert!(errs[0].pos_line >= 3, "{:?}", errs[0]);
    }
}
