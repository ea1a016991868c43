//! Validation of decoded rule files into ready-to-run group specs, reporting
//! every problem with file:line and the rule's name (`promlite check rules`).
//!
//! Messages follow Prometheus's `rulefmt` wording where one exists.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use promql_parser::parser::value::ValueType;

use super::file::{self, Pos, RawGroup, RawRule};
use super::seams::{RuleExpr, TemplateExpander};

/// Whether a rule records a series or raises alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `record:`.
    Recording,
    /// `alert:`.
    Alerting,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// Recording or alerting.
    pub kind: RuleKind,
    /// The `record` metric name or the `alert` name.
    pub name: String,
    /// The parsed expression, shared by every evaluation.
    pub expr: Arc<RuleExpr>,
    /// `for` (zero when absent).
    pub for_: Duration,
    /// `keep_firing_for` (zero when absent).
    pub keep_firing_for: Duration,
    /// Group labels overlaid by rule labels, sorted by name (values may be templates for alerts).
    pub labels: Vec<(String, String)>,
    /// Annotations sorted by name (templates).
    pub annotations: Vec<(String, String)>,
    /// Line of the rule in its file.
    pub line: u64,
}

/// A validated group.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// The file the group came from, as given.
    pub file: String,
    /// The group's name (unique within its file).
    pub name: String,
    /// `interval`, or `None` for the global evaluation interval.
    pub interval: Option<Duration>,
    /// `query_offset`, or `None` for the global default.
    pub query_offset: Option<Duration>,
    /// `limit` (0 = unlimited).
    pub limit: usize,
    /// The rules, in order.
    pub rules: Vec<RuleSpec>,
}

/// One problem found in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// Where in the file.
    pub pos: Pos,
    /// The group's name, if the problem is inside one.
    pub group: Option<String>,
    /// The rule's 1-based index and name, if the problem is inside one.
    pub rule: Option<(usize, String)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.pos.line, self.pos.col)?;
        if let Some(g) = &self.group {
            write!(f, "group {g:?}, ")?;
        }
        if let Some((i, n)) = &self.rule {
            write!(f, "rule {i}, {n:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Parses a Prometheus duration (`30s`, `1h30m`, `0s`, `0`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    // promql-parser rejects zero durations; rule files allow them (`for: 0s`).
    if !s.is_empty() && s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).chars().all(|c| c == '0') {
        let unit = s.trim_start_matches('0');
        if ["", "ms", "s", "m", "h", "d", "w", "y"].contains(&unit) {
            return Ok(Duration::ZERO);
        }
    }
    promql_parser::util::parse_duration(s)
}

/// A legacy label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A legacy metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

struct Ctx<'a> {
    file: &'a str,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn push(&mut self, pos: Pos, group: Option<&str>, rule: Option<(usize, &str)>, message: String) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            pos,
            group: group.map(str::to_string),
            rule: rule.map(|(i, n)| (i, n.to_string())),
            message,
        });
    }
}

fn spos<T>(s: &serde_saphyr::Spanned<T>) -> Pos {
    Pos { line: s.referenced.line(), col: s.referenced.column() }
}

/// Validates the groups decoded from `file`, returning the good groups and
/// every problem. A group with any problem is not returned.
pub fn validate_groups(file: &str, raw: Vec<RawGroup>, tmpl: &dyn TemplateExpander) -> (Vec<GroupSpec>, Vec<Problem>) {
    let mut ctx = Ctx { file, problems: Vec::new() };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for g in raw {
        let before = ctx.problems.len();
        let name = g.name.value.clone();
        if name.is_empty() {
            ctx.push(spos(&g.name), None, None, "groupname must not be empty".into());
        } else if !seen.insert(name.clone()) {
            ctx.push(spos(&g.name), None, None, format!("groupname: {name:?} is repeated in the same file"));
        }
        let gname = Some(name.as_str());
        let interval = g.interval.as_ref().and_then(|i| match parse_duration(&i.value) {
            Ok(d) if d.is_zero() => {
                ctx.push(spos(i), gname, None, "interval must be greater than 0".into());
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                ctx.push(spos(i), gname, None, format!("invalid interval {:?}: {e}", i.value));
                None
            }
        });
        let query_offset = g.query_offset.as_ref().and_then(|o| match parse_duration(&o.value) {
            Ok(d) => Some(d),
            Err(e) => {
                ctx.push(spos(o), gname, None, format!("invalid query_offset {:?}: {e}", o.value));
                None
            }
        });
        let mut group_labels: Vec<(String, String)> = Vec::new();
        if let Some(l) = &g.labels {
            for (k, v) in &l.value {
                if !is_valid_label_name(k) || k == crate::model::METRIC_NAME {
                    ctx.push(spos(l), gname, None, format!("invalid label name: {k}"));
                }
                group_labels.push((k.clone(), v.clone()));
            }
        }
        let mut rules = Vec::new();
        for (i, r) in g.rules.iter().enumerate() {
            if let Some(spec) = validate_rule(&mut ctx, &name, i + 1, r, &group_labels, tmpl) {
                rules.push(spec);
            }
        }
        if ctx.problems.len() == before {
            out.push(GroupSpec {
                file: file.to_string(),
                name,
                interval,
                query_offset,
                limit: usize::try_from(g.limit).unwrap_or(usize::MAX),
                rules,
            });
        }
    }
    (out, ctx.problems)
}

fn validate_rule(
    ctx: &mut Ctx<'_>,
    group: &str,
    index: usize,
    r: &RawRule,
    group_labels: &[(String, String)],
    tmpl: &dyn TemplateExpander,
) -> Option<RuleSpec> {
    let before = ctx.problems.len();
    let name = r.name().to_string();
    let at = |ctx: &mut Ctx<'_>, pos: Pos, msg: String| ctx.push(pos, Some(group), Some((index, &name)), msg);
    let kind = match (&r.record, &r.alert) {
        (Some(_), Some(_)) => {
            at(ctx, r.pos, "only one of 'record' and 'alert' must be set".into());
            None
        }
        (None, None) => {
            at(ctx, r.pos, "one of 'record' or 'alert' must be set".into());
            None
        }
        (Some(rec), None) => {
            if !is_valid_metric_name(&rec.value) {
                at(ctx, spos(rec), format!("invalid recording rule name: {}", rec.value));
            }
            if r.annotations.is_some() {
                at(ctx, r.pos, "invalid field 'annotations' in recording rule".into());
            }
            if r.for_.is_some() {
                at(ctx, r.pos, "invalid field 'for' in recording rule".into());
            }
            if r.keep_firing_for.is_some() {
                at(ctx, r.pos, "invalid field 'keep_firing_for' in recording rule".into());
            }
            Some(RuleKind::Recording)
        }
        (None, Some(al)) => {
            if al.value.is_empty() {
                at(ctx, spos(al), "alert name must not be empty".into());
            }
            Some(RuleKind::Alerting)
        }
    };
    let expr = match &r.expr {
        None => {
            at(ctx, r.pos, "field 'expr' must be set in rule".into());
            None
        }
        Some(e) if e.value.trim().is_empty() => {
            at(ctx, spos(e), "field 'expr' must be set in rule".into());
            None
        }
        Some(e) => match RuleExpr::parse(&e.value) {
            Ok(x) => {
                let t = x.parsed.value_type();
                if !matches!(t, ValueType::Vector | ValueType::Scalar) {
                    at(ctx, spos(e), format!("expression must be of type vector or scalar, got {t}"));
                }
                Some(x)
            }
            Err(msg) => {
                at(ctx, spos(e), format!("could not parse expression: {msg}"));
                None
            }
        },
    };
    let dur = |ctx: &mut Ctx<'_>, field: &str, v: &Option<serde_saphyr::Spanned<String>>| match v {
        None => Duration::ZERO,
        Some(s) => parse_duration(&s.value).unwrap_or_else(|e| {
            ctx.push(spos(s), Some(group), Some((index, &name)), format!("invalid {field} {:?}: {e}", s.value));
            Duration::ZERO
        }),
    };
    let for_ = dur(ctx, "for", &r.for_);
    let keep_firing_for = dur(ctx, "keep_firing_for", &r.keep_firing_for);

    let mut labels: Vec<(String, String)> = group_labels.to_vec();
    if let Some(l) = &r.labels {
        for (k, v) in &l.value {
            if !is_valid_label_name(k) || k == crate::model::METRIC_NAME {
                at(ctx, spos(l), format!("invalid label name: {k}"));
            }
            if kind == Some(RuleKind::Alerting) {
                if let Err(e) = tmpl.check(v) {
                    at(ctx, spos(l), format!("label {k:?}: template does not parse: {e}"));
                }
            }
            labels.retain(|(n, _)| n != k);
            labels.push((k.clone(), v.clone()));
        }
    }
    labels.sort();
    let mut annotations = Vec::new();
    if let Some(a) = &r.annotations {
        for (k, v) in &a.value {
            if !is_valid_label_name(k) {
                at(ctx, spos(a), format!("invalid annotation name: {k}"));
            }
            if let Err(e) = tmpl.check(v) {
                at(ctx, spos(a), format!("annotation {k:?}: template does not parse: {e}"));
            }
            annotations.push((k.clone(), v.clone()));
        }
    }
    if ctx.problems.len() != before {
        return None;
    }
    Some(RuleSpec {
        kind: kind?,
        name,
        expr: Arc::new(expr?),
        for_,
        keep_firing_for,
        labels,
        annotations,
        line: r.pos.line,
    })
}

/// Reads, decodes and validates one rule file.
pub fn load_file(path: &Path, tmpl: &dyn TemplateExpander) -> (Vec<GroupSpec>, Vec<Problem>) {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return (
                Vec::new(),
                vec![Problem {
                    file: name,
                    pos: Pos::default(),
                    group: None,
                    rule: None,
                    message: format!("read: {e}"),
                }],
            )
        }
    };
    load_text(&name, &text, tmpl)
}

/// Decodes and validates rule-file text named `file`.
pub fn load_text(file: &str, text: &str, tmpl: &dyn TemplateExpander) -> (Vec<GroupSpec>, Vec<Problem>) {
    match file::decode(text) {
        Ok(raw) => validate_groups(file, raw, tmpl),
        Err(errs) => (
            Vec::new(),
            errs.into_iter()
                .map(|e| Problem {
                    file: file.to_string(),
                    pos: Pos { line: e.pos_line, col: e.pos_col },
                    group: None,
                    rule: None,
                    message: e.message,
                })
                .collect(),
        ),
    }
}

/// The result of checking rule files (`promlite check rules FILE...`).
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Per file: its name, the number of rules found, and its problems.
    pub files: Vec<(String, usize, Vec<Problem>)>,
}

impl CheckReport {
    /// Whether every file is free of problems (the exit code is 0 only then).
    pub fn ok(&self) -> bool {
        self.files.iter().all(|(_, _, p)| p.is_empty())
    }
}

impl fmt::Display for CheckReport {
    /// promtool's layout: `Checking FILE`, then `  SUCCESS: N rules found` or
    /// `  FAILED:` and one line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, n, problems) in &self.files {
            writeln!(f, "Checking {name}")?;
            if problems.is_empty() {
                writeln!(f, "  SUCCESS: {n} rules found")?;
            } else {
                writeln!(f, "  FAILED:")?;
                for p in problems {
                    writeln!(f, "{p}")?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Checks every file, reporting all problems of all files.
pub fn check(files: &[PathBuf], tmpl: &dyn TemplateExpander) -> CheckReport {
    let mut report = CheckReport::default();
    for f in files {
        let (groups, problems) = load_file(f, tmpl);
        let n = groups.iter().map(|g| g.rules.len()).sum();
        report.files.push((f.display().to_string(), n, problems));
    }
    report
}

/// A `rule_files` pattern that could not be expanded.
#[derive(Debug, thiserror::Error)]
#[error("rule_files pattern {pattern:?}: {reason}")]
pub struct GlobError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong.
    pub reason: String,
}

/// Expands `rule_files` patterns (relative ones against `base`, the config
/// file's directory) into a sorted, de-duplicated file list. A pattern that
/// matches nothing is not an error (Prometheus behaves the same way).
pub fn expand_rule_files(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>, GlobError> {
    let mut out = Vec::new();
    for p in patterns {
        let full = if Path::new(p).is_absolute() { PathBuf::from(p) } else { base.join(p) };
        let full_s = full.to_string_lossy().to_string();
        let paths = glob::glob(&full_s).map_err(|e| GlobError { pattern: p.clone(), reason: e.to_string() })?;
        for entry in paths {
            let path = entry.map_err(|e| GlobError { pattern: p.clone(), reason: e.to_string() })?;
            if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
