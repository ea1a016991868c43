//! Go `text/template` for alert labels and annotations, as Prometheus runs them.
//!
//! A hand-written engine for the part of Go's template language that
//! Prometheus alert templates use: actions with trim markers and comments,
//! variables (`$value`, `$labels`, `$externalLabels`, `$externalURL`, `$`, `:=`, `=`),
//! fields (`.Value`, `.Labels.job`), pipelines, `if`/`else if`/`else`, `range`
//! (maps in key order, query results, integers; `break`/`continue`), `with`,
//! Go's builtins and Prometheus's functions (see [`funcs`]). It runs with
//! `missingkey=zero`, so a missing label renders as an empty string.
//!
//! Semantics follow Prometheus `template/template.go` and `rules/alerting.go`:
//! the rule manager prepends a header declaring `$labels`, `$externalLabels`,
//! `$externalURL` and `$value`; we declare the same variables, and shift error
//! columns on line 1 by the header's length so error texts match Prometheus's.
//!
//! Templates parse once (at rule load) and execute many times; a template
//! without actions is returned verbatim without running the executor.

mod exec;
mod funcs;
mod gofmt;
mod gotime;
mod lex;
mod parse;
#[cfg(test)]
mod tests;
mod value;

use std::borrow::Cow;
use std::rc::Rc;

use crate::model::Labels;

/// Runs PromQL for the `query` template function.
pub trait TemplateQuerier {
    /// Evaluates `q` as an instant query at `ts_ms` (milliseconds), returning
    /// the resulting vector as (labels, value) pairs, or an error text.
    fn query(&self, q: &str, ts_ms: i64) -> Result<Vec<(Labels, f64)>, String>;
}

/// What an alert template sees: `.Labels`/`$labels`, `.ExternalLabels`/`$externalLabels`,
/// `.ExternalURL`/`$externalURL` and `.Value`/`$value`.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    /// The alert's labels.
    pub labels: &'a Labels,
    /// The server's external labels.
    pub external_labels: &'a Labels,
    /// The server's external URL (`--web.external-url`).
    pub external_url: &'a str,
    /// The alert's current value.
    pub value: f64,
}

/// A template that failed to parse or to execute. `Display` gives the same
/// text Prometheus logs and puts into annotations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template text does not parse.
    #[error("error parsing template {name}: template: {name}:{line}: {msg}")]
    Parse {
        /// Template name (Prometheus uses `__alert_<alertname>`).
        name: String,
        /// 1-based line of the error.
        line: usize,
        /// What is wrong, in Go's words.
        msg: String,
    },
    /// Execution failed (a function error, a bad field, a limit).
    #[error(
        "error executing template {name}: template: {name}:{line}:{col}: executing \"{name}\" at <{context}>: {msg}"
    )]
    Exec {
        /// Template name.
        name: String,
        /// 1-based line of the failing node.
        line: usize,
        /// Byte column (0-based, as Go counts, including the header on line 1).
        col: usize,
        /// The failing node's source form, cut at 20 bytes like Go.
        context: String,
        /// What went wrong.
        msg: String,
    },
}

impl TemplateError {
    /// The text Prometheus stores in a label or annotation whose template
    /// failed: `<error expanding template: ...>`.
    pub fn annotation_text(&self) -> String {
        format!("<error expanding template: {self}>")
    }

    /// Go's own error text without Prometheus's "error parsing/executing
    /// template NAME: " wrapper, e.g. `template: __alert_X:1: unexpected "}" in operand`
    /// (what `promtool check rules` prints for a bad template).
    pub fn go_error(&self) -> String {
        match self {
            TemplateError::Parse { name, line, msg } => format!("template: {name}:{line}: {msg}"),
            TemplateError::Exec { name, line, col, context, msg } => {
                format!("template: {name}:{line}:{col}: executing \"{name}\" at <{context}>: {msg}")
            }
        }
    }
}

/// The header Prometheus's rule manager prepends to every alert template
/// (`rules/alerting.go`, `Eval`); only its length matters to us, for columns.
const ALERT_HEADER: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// A parsed template, ready to execute many times. `Send + Sync`.
#[derive(Debug)]
pub struct Template {
    name: String,
    text: String,
    nodes: Vec<parse::Node>,
    /// True when the text has no actions: execution returns it verbatim.
    is_static: bool,
    regexes: funcs::RegexCache,
}

impl Template {
    /// Parses `text`; `name` appears in error messages (Prometheus uses
    /// `__alert_<alertname>` for alert templates).
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let nodes = parse::parse(text).map_err(|e| TemplateError::Parse {
            name: name.to_string(),
            line: e.line,
            msg: e.msg,
        })?;
        Ok(Template {
            name: name.to_string(),
            text: text.to_string(),
            is_static: !text.contains("{{"),
            nodes,
            regexes: funcs::RegexCache::default(),
        })
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.text
    }

    /// Renders the template for one alert. `ts_ms` is the evaluation time the
    /// `query` function runs at; without a querier, `query` fails.
    pub fn execute(
        &self,
        data: &TemplateData<'_>,
        querier: Option<&dyn TemplateQuerier>,
        ts_ms: i64,
    ) -> Result<String, TemplateError> {
        if self.is_static {
            return Ok(self.text.clone());
        }
        let labels = exec::labels_to_map(data.labels);
        let external = exec::labels_to_map(data.external_labels);
        let url: Rc<str> = Rc::from(data.external_url);
        let dot = value::Value::Data(Rc::new(value::DataV {
            labels: labels.clone(),
            external_labels: external.clone(),
            external_url: url.clone(),
            value: data.value,
        }));
        let vars = vec![
            (Cow::Borrowed("$"), dot.clone()),
            (Cow::Borrowed("$labels"), value::Value::StrMap(labels)),
            (Cow::Borrowed("$externalLabels"), value::Value::StrMap(external)),
            (Cow::Borrowed("$externalURL"), value::Value::Str(url)),
            (Cow::Borrowed("$value"), value::Value::Float(data.value)),
        ];
        let env = funcs::Env { querier, ts_ms, external_url: data.external_url, regexes: &self.regexes };
        exec::Exec::new(env, vars).run(&self.nodes, &dot).map_err(|e| self.exec_error(e))
    }

    fn exec_error(&self, e: exec::ExecError) -> TemplateError {
        let pos = e.pos.min(self.text.len());
        let before = self.text.get(..pos).unwrap_or("");
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - (nl + 1),
            None => ALERT_HEADER.len() + pos,
        };
        let context = if e.context.len() > 20 {
            let mut cut = 20;
            while !e.context.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}...", &e.context[..cut])
        } else {
            e.context
        };
        TemplateError::Exec { name: self.name.clone(), line, col, context, msg: e.msg }
    }
}

/// Parses and executes in one step (no `query` support); the error is
/// Prometheus's message text.
pub fn expand(name: &str, text: &str, data: &TemplateData<'_>) -> Result<String, String> {
    Template::parse(name, text).and_then(|t| t.execute(data, None, 0)).map_err(|e| e.to_string())
}

/// Checks that `text` parses as an alert template (what `promtool check rules` does).
pub fn check(text: &str) -> Result<(), TemplateError> {
    Template::parse("__check", text).map(|_| ())
}

/// Go's `url.QueryEscape` (used for Prometheus's graph links).
pub fn query_escape(s: &str) -> String {
    funcs::query_escape(s)
}
