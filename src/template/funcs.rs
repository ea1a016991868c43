//! Template functions: Go's `text/template` builtins and the ones Prometheus adds
//! in `template/template.go` (`NewTemplateExpander`'s `FuncMap`).
//!
//! Every Prometheus function here names the Go function whose output it
//! reproduces; numbers go through our Go-compatible `%g` formatter.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use parking_lot::Mutex;
use regex::Regex;

use super::gofmt::format_g;
use super::gotime;
use super::value::{sprint, sprintf, sprintln, QSample, Value};
use super::TemplateQuerier;

/// A function known to the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    // Go builtins.
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Html,
    Js,
    UrlQuery,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    // Prometheus.
    Query,
    First,
    Label,
    ValueOf,
    StrValue,
    Args,
    ReReplaceAll,
    SafeHtml,
    Match,
    Title,
    ToUpper,
    ToLower,
    GraphLink,
    TableLink,
    SortByLabel,
    StripPort,
    StripDomain,
    Humanize,
    Humanize1024,
    HumanizeDuration,
    HumanizePercentage,
    HumanizeTimestamp,
    ToTime,
    PathPrefix,
    ExternalUrl,
    ParseDuration,
}

const TABLE: [(&str, Func); 44] = [
    ("and", Func::And),
    ("or", Func::Or),
    ("not", Func::Not),
    ("len", Func::Len),
    ("index", Func::Index),
    ("slice", Func::Slice),
    ("print", Func::Print),
    ("printf", Func::Printf),
    ("println", Func::Println),
    ("html", Func::Html),
    ("js", Func::Js),
    ("urlquery", Func::UrlQuery),
    ("eq", Func::Eq),
    ("ne", Func::Ne),
    ("lt", Func::Lt),
    ("le", Func::Le),
    ("gt", Func::Gt),
    ("ge", Func::Ge),
    ("query", Func::Query),
    ("first", Func::First),
    ("label", Func::Label),
    ("value", Func::ValueOf),
    ("strvalue", Func::StrValue),
    ("args", Func::Args),
    ("reReplaceAll", Func::ReReplaceAll),
    ("safeHtml", Func::SafeHtml),
    ("match", Func::Match),
    ("title", Func::Title),
    ("toUpper", Func::ToUpper),
    ("toLower", Func::ToLower),
    ("graphLink", Func::GraphLink),
    ("tableLink", Func::TableLink),
    ("sortByLabel", Func::SortByLabel),
    ("stripPort", Func::StripPort),
    ("stripDomain", Func::StripDomain),
    ("humanize", Func::Humanize),
    ("humanize1024", Func::Humanize1024),
    ("humanizeDuration", Func::HumanizeDuration),
    ("humanizePercentage", Func::HumanizePercentage),
    ("humanizeTimestamp", Func::HumanizeTimestamp),
    ("toTime", Func::ToTime),
    ("pathPrefix", Func::PathPrefix),
    ("externalURL", Func::ExternalUrl),
    ("parseDuration", Func::ParseDuration),
];

impl Func {
    /// The function of that name, if templates may call it.
    pub fn lookup(name: &str) -> Option<Func> {
        TABLE.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The name templates call it by.
    pub fn name(self) -> &'static str {
        TABLE.iter().find(|(_, f)| *f == self).map_or("?", |(n, _)| n)
    }

    /// Fixed arity (`Some(n)`) or the minimum for variadic functions (`None, min`).
    fn arity(self) -> (Option<usize>, usize) {
        use Func::*;
        match self {
            And | Or => (None, 1),
            Not | Len | First | ValueOf | StrValue | SafeHtml | Title | ToUpper | ToLower | GraphLink | TableLink
            | StripPort | StripDomain | Humanize | Humanize1024 | HumanizeDuration | HumanizePercentage
            | HumanizeTimestamp | ToTime | ParseDuration | Query => (Some(1), 1),
            Index | Slice => (None, 1),
            Print | Println | Html | Js | UrlQuery | Args => (None, 0),
            Printf => (None, 1),
            Eq => (None, 1),
            Ne | Lt | Le | Gt | Ge | Label | Match | SortByLabel => (Some(2), 2),
            ReReplaceAll => (Some(3), 3),
            PathPrefix | ExternalUrl => (Some(0), 0),
        }
    }

    /// Go's arity check, with its error text.
    pub fn check_arity(self, got: usize) -> Result<(), String> {
        match self.arity() {
            (Some(n), _) if n != got => {
                Err(format!("wrong number of args for {}: want {} got {}", self.name(), n, got))
            }
            (None, min) if got < min => {
                Err(format!("wrong number of args for {}: want at least {} got {}", self.name(), min, got))
            }
            _ => Ok(()),
        }
    }
}

/// A bounded cache of compiled regexes, shared by all executions of one template.
#[derive(Debug, Default)]
pub(crate) struct RegexCache {
    map: Mutex<HashMap<String, Arc<Regex>>>,
}

const REGEX_CACHE_MAX: usize = 64;

impl RegexCache {
    fn get(&self, pattern: &str) -> Result<Arc<Regex>, String> {
        if let Some(r) = self.map.lock().get(pattern) {
            return Ok(r.clone());
        }
        // Compile outside the lock.
        let re = Arc::new(Regex::new(pattern).map_err(|e| format!("error parsing regexp: {e}"))?);
        let mut m = self.map.lock();
        if m.len() >= REGEX_CACHE_MAX {
            m.clear();
        }
        m.insert(pattern.to_string(), re.clone());
        Ok(re)
    }
}

/// What functions may read besides their arguments.
pub(crate) struct Env<'a> {
    pub querier: Option<&'a dyn TemplateQuerier>,
    pub ts_ms: i64,
    pub external_url: &'a str,
    pub regexes: &'a RegexCache,
}

/// A function failure: a bad argument (reported as is, like Go's argument
/// validation) or an error from the function itself ("error calling NAME: ...").
#[derive(Debug)]
pub(crate) enum FuncError {
    /// Argument `.0` (0-based) has the wrong type.
    Arg(usize, String),
    Call(String),
}

fn wrong_type(i: usize, expected: &str, got: &Value) -> FuncError {
    FuncError::Arg(i, format!("wrong type for value; expected {expected}; got {}", got.type_name()))
}

const NIL: Value = Value::Nil;

fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&NIL)
}

fn want_str(args: &[Value], i: usize) -> Result<&str, FuncError> {
    let v = arg(args, i);
    v.as_str().ok_or_else(|| wrong_type(i, "string", v))
}

fn want_sample(args: &[Value], i: usize) -> Result<&Rc<QSample>, FuncError> {
    match arg(args, i) {
        Value::Sample(s) => Ok(s),
        other => Err(wrong_type(i, "*template.sample", other)),
    }
}

fn want_samples(args: &[Value], i: usize) -> Result<&Rc<Vec<Rc<QSample>>>, FuncError> {
    match arg(args, i) {
        Value::Samples(s) => Ok(s),
        other => Err(wrong_type(i, "template.queryResult", other)),
    }
}

/// Go's `strconv.ParseFloat` for the inputs Prometheus passes to `convertToFloat`.
fn parse_go_float(s: &str) -> Result<f64, String> {
    let t = s.trim_start_matches(['+', '-']);
    let special = matches!(t.to_ascii_lowercase().as_str(), "inf" | "infinity" | "nan");
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    let r = if special { cleaned.to_ascii_lowercase().parse::<f64>().ok() } else { cleaned.parse::<f64>().ok() };
    match r {
        Some(v) if !t.is_empty() && (special || t.starts_with(|c: char| c.is_ascii_digit() || c == '.')) => Ok(v),
        _ => Err(format!("strconv.ParseFloat: parsing {}: invalid syntax", super::lex::go_quote(s))),
    }
}

/// Prometheus's `convertToFloat`: numbers, numeric strings; anything else is an error.
fn to_float(v: &Value) -> Result<f64, FuncError> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s).map_err(FuncError::Call),
        other => Err(FuncError::Call(format!("can't convert {} to float", other.type_name()))),
    }
}

const SI_BIG: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
const SI_SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];
const IEC: [&str; 8] = ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];

/// Scales `v` below 1 up by 1000s and returns the prefix (the small-number
/// branch shared by `humanize` and `humanizeDuration`).
fn scale_small(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in SI_SMALL {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

/// Prometheus `humanize`: SI prefixes with `%.4g`.
pub(crate) fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in SI_BIG {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", format_g(v, Some(4)));
    }
    let (v, prefix) = scale_small(v);
    format!("{}{prefix}", format_g(v, Some(4)))
}

/// Prometheus `humanize1024`: IEC prefixes with `%.4g`.
pub(crate) fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    let mut prefix = "";
    for p in IEC {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_g(v, Some(4)))
}

/// Prometheus `humanizeDuration` (prometheus/common `HumanizeDuration`).
pub(crate) fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    if v == 0.0 {
        return format!("{}s", format_g(v, Some(4)));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        // Go's int64(v) truncates; `as` saturates instead of overflowing.
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", format_g(v, Some(4)));
    }
    let (v, prefix) = scale_small(v);
    format!("{}{prefix}s", format_g(v, Some(4)))
}

/// Prometheus `floatToTime`: seconds to a millisecond time, via int64 nanoseconds.
fn float_to_time(v: f64) -> Result<i64, String> {
    if v.is_nan() || v.is_infinite() {
        return Err("value is NaN or Inf".to_string());
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            super::gofmt::format_v(v)
        ));
    }
    // model.TimeFromUnixNano: integer division truncates toward zero.
    Ok((ns as i64) / 1_000_000)
}

/// Prometheus `humanizeTimestamp`: `Time.String()` of the UTC time.
pub(crate) fn humanize_timestamp(v: f64) -> Result<String, String> {
    if v.is_nan() || v.is_infinite() {
        return Ok(format_g(v, Some(4)));
    }
    float_to_time(v).map(gotime::time_string)
}

/// Go's `net.SplitHostPort`, enough for `stripPort`/`stripDomain`.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host, port));
    }
    let i = s.rfind(':')?;
    let (host, port) = (&s[..i], &s[i + 1..]);
    if host.contains(':') {
        return None; // too many colons
    }
    Some((host, port))
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `strings.Title` / `cases.Title(..., cases.NoLower)`: upper-case the first
/// letter of each word, leave the rest as it is.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_word = false;
    for c in s.chars() {
        if !prev_word && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_word = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

#[derive(PartialEq, PartialOrd)]
enum Kind<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

fn basic_kind(v: &Value) -> Option<Kind<'_>> {
    match v {
        Value::Bool(b) => Some(Kind::Bool(*b)),
        Value::Int(i) => Some(Kind::Int(*i)),
        Value::Float(f) => Some(Kind::Float(*f)),
        Value::Str(s) | Value::Html(s) => Some(Kind::Str(s)),
        _ => None,
    }
}

/// Go's `eq`: arg1 equals any of the others.
fn go_eq(a: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    for b in others {
        let equal = match (basic_kind(a), basic_kind(b)) {
            (Some(x), Some(y)) => {
                if std::mem::discriminant(&x) != std::mem::discriminant(&y) {
                    return Err("incompatible types for comparison".to_string());
                }
                x == y
            }
            _ if matches!(a, Value::Nil) || matches!(b, Value::Nil) => {
                matches!(a, Value::Nil) && matches!(b, Value::Nil)
            }
            _ if a.type_name() != b.type_name() => return Err("incompatible types for comparison".to_string()),
            (None, _) => return Err(format!("non-comparable type {}: {}", a.display(), a.type_name())),
            (_, None) => return Err(format!("non-comparable type {}: {}", b.display(), b.type_name())),
        };
        if equal {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt`.
fn go_lt(a: &Value, b: &Value) -> Result<bool, String> {
    match (basic_kind(a), basic_kind(b)) {
        (Some(Kind::Bool(_)), _) | (_, Some(Kind::Bool(_))) | (None, _) | (_, None) => {
            Err("invalid type for comparison".to_string())
        }
        (Some(x), Some(y)) => {
            if std::mem::discriminant(&x) != std::mem::discriminant(&y) {
                return Err("incompatible types for comparison".to_string());
            }
            Ok(x < y)
        }
    }
}

fn index_one(item: &Value, key: &Value) -> Result<Value, String> {
    match (item, key) {
        (Value::StrMap(m), k) => {
            let k = k.as_str().ok_or_else(|| format!("value has type {}; should be string", k.type_name()))?;
            Ok(Value::str(m.get(k).unwrap_or("")))
        }
        (Value::AnyMap(m), k) => {
            let k = k.as_str().ok_or_else(|| format!("value has type {}; should be string", k.type_name()))?;
            Ok(m.get(k).cloned().unwrap_or(Value::Nil))
        }
        (Value::Samples(s), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| s.get(i))
            .map(|x| Value::Sample(x.clone()))
            .ok_or_else(|| format!("index out of range: {i}")),
        (Value::Str(s), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| s.as_bytes().get(i))
            .map(|b| Value::Int(i64::from(*b)))
            .ok_or_else(|| format!("index out of range: {i}")),
        (Value::Samples(_) | Value::Str(_), k) => Err(format!("cannot index slice/array with type {}", k.type_name())),
        (Value::Nil, _) => Err("index of untyped nil".to_string()),
        (other, _) => Err(format!("can't index item of type {}", other.type_name())),
    }
}

fn slice_value(item: &Value, idx: &[Value]) -> Result<Value, String> {
    let mut bounds = Vec::with_capacity(idx.len());
    for v in idx {
        match v {
            Value::Int(i) if *i >= 0 => bounds.push(*i as usize),
            Value::Int(i) => return Err(format!("index out of range: {i}")),
            other => return Err(format!("cannot index slice/array with type {}", other.type_name())),
        }
    }
    let len = match item {
        Value::Str(s) => s.len(),
        Value::Samples(s) => s.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    if bounds.len() > 2 {
        return Err("cannot 3-index slice a string".to_string());
    }
    let lo = bounds.first().copied().unwrap_or(0);
    let hi = bounds.get(1).copied().unwrap_or(len);
    if lo > hi || hi > len {
        return Err(format!("invalid slice index: {lo} > {hi}"));
    }
    Ok(match item {
        Value::Str(s) => Value::str(s.get(lo..hi).ok_or_else(|| "slice splits a UTF-8 character".to_string())?),
        Value::Samples(s) => Value::Samples(Rc::new(s[lo..hi].to_vec())),
        _ => Value::Nil,
    })
}

/// Calls a strict (non short-circuit) function on evaluated arguments.
pub(crate) fn call(f: Func, args: &[Value], env: &Env<'_>) -> Result<Value, FuncError> {
    use Func::*;
    let call_err = FuncError::Call;
    let a0 = || args.first().unwrap_or(&Value::Nil);
    let a1 = || args.get(1).unwrap_or(&Value::Nil);
    Ok(match f {
        And | Or => {
            // Evaluated lazily by the executor; reaching here means all args are values.
            let pick = args.iter().find(|v| v.truth() == (f == Or));
            pick.or(args.last()).cloned().unwrap_or(Value::Nil)
        }
        Not => Value::Bool(!a0().truth()),
        Len => Value::Int(match a0() {
            Value::Str(s) | Value::Html(s) => s.len(),
            Value::StrMap(m) => m.len(),
            Value::AnyMap(m) => m.len(),
            Value::Samples(s) => s.len(),
            other => return Err(call_err(format!("len of type {}", other.type_name()))),
        } as i64),
        Index => {
            let mut cur = a0().clone();
            for k in &args[1..] {
                cur = index_one(&cur, k).map_err(call_err)?;
            }
            cur
        }
        Slice => slice_value(a0(), &args[1..]).map_err(call_err)?,
        Print => Value::str(&sprint(args)),
        Println => Value::str(&sprintln(args)),
        Printf => Value::str(&sprintf(want_str(args, 0)?, &args[1..])),
        Html => Value::str(&html_escape(&eval_args_string(args))),
        Js => Value::str(&js_escape(&eval_args_string(args))),
        UrlQuery => Value::str(&query_escape(&eval_args_string(args))),
        Eq => Value::Bool(go_eq(a0(), &args[1..]).map_err(call_err)?),
        Ne => Value::Bool(!go_eq(a0(), &args[1..2]).map_err(call_err)?),
        Lt => Value::Bool(go_lt(a0(), a1()).map_err(call_err)?),
        Le => Value::Bool(go_lt(a0(), a1()).map_err(call_err)? || go_eq(a0(), &args[1..2]).map_err(call_err)?),
        Gt => Value::Bool(!(go_lt(a0(), a1()).map_err(call_err)? || go_eq(a0(), &args[1..2]).map_err(call_err)?)),
        Ge => Value::Bool(!go_lt(a0(), a1()).map_err(call_err)?),
        Query => {
            let q = want_str(args, 0)?;
            let Some(querier) = env.querier else {
                return Err(call_err("no query engine available to templates".to_string()));
            };
            let res = querier.query(q, env.ts_ms).map_err(call_err)?;
            Value::Samples(Rc::new(
                res.into_iter().map(|(l, v)| Rc::new(QSample { labels: Rc::new(l), value: v })).collect(),
            ))
        }
        First => match want_samples(args, 0)?.first() {
            Some(s) => Value::Sample(s.clone()),
            None => return Err(call_err("first() called on vector with no elements".to_string())),
        },
        Label => {
            let name = want_str(args, 0)?;
            Value::str(want_sample(args, 1)?.labels.get(name).unwrap_or(""))
        }
        ValueOf => Value::Float(want_sample(args, 0)?.value),
        StrValue => Value::str(want_sample(args, 0)?.labels.get("__value__").unwrap_or("")),
        Args => Value::AnyMap(Rc::new(args.iter().enumerate().map(|(i, v)| (format!("arg{i}"), v.clone())).collect())),
        ReReplaceAll => {
            let (pat, repl, text) = (want_str(args, 0)?, want_str(args, 1)?, want_str(args, 2)?);
            let re = env
                .regexes
                .get(pat)
                .map_err(|e| call_err(format!("regexp: Compile({}): {e}", super::lex::go_quote(pat))))?;
            Value::str(&re.replace_all(text, repl))
        }
        SafeHtml => Value::Html(Rc::from(want_str(args, 0)?)),
        Match => {
            let (pat, text) = (want_str(args, 0)?, want_str(args, 1)?);
            Value::Bool(env.regexes.get(pat).map_err(call_err)?.is_match(text))
        }
        Title => Value::str(&title(want_str(args, 0)?)),
        ToUpper => Value::str(&want_str(args, 0)?.to_uppercase()),
        ToLower => Value::str(&want_str(args, 0)?.to_lowercase()),
        GraphLink => Value::str(&format!("/graph?g0.expr={}&g0.tab=0", query_escape(want_str(args, 0)?))),
        TableLink => Value::str(&format!("/graph?g0.expr={}&g0.tab=1", query_escape(want_str(args, 0)?))),
        SortByLabel => {
            let name = want_str(args, 0)?;
            let mut v: Vec<Rc<QSample>> = want_samples(args, 1)?.as_ref().clone();
            // Stable, like Go's sort.Stable.
            v.sort_by(|x, y| x.labels.get(name).unwrap_or("").cmp(y.labels.get(name).unwrap_or("")));
            Value::Samples(Rc::new(v))
        }
        StripPort => {
            let s = want_str(args, 0)?;
            Value::str(split_host_port(s).map_or(s, |(h, _)| h))
        }
        StripDomain => {
            let s = want_str(args, 0)?;
            let (host, port) = split_host_port(s).unwrap_or((s, ""));
            if is_ip(host) {
                Value::str(s)
            } else {
                let short = host.split('.').next().unwrap_or("");
                if port.is_empty() {
                    Value::str(short)
                } else {
                    Value::str(&join_host_port(short, port))
                }
            }
        }
        Humanize => Value::str(&humanize(to_float(a0())?)),
        Humanize1024 => Value::str(&humanize1024(to_float(a0())?)),
        HumanizeDuration => Value::str(&humanize_duration(to_float(a0())?)),
        HumanizePercentage => Value::str(&format!("{}%", format_g(to_float(a0())? * 100.0, Some(4)))),
        HumanizeTimestamp => Value::str(&humanize_timestamp(to_float(a0())?).map_err(call_err)?),
        ToTime => Value::Time(float_to_time(to_float(a0())?).map_err(call_err)?),
        PathPrefix => Value::str(url_path(env.external_url)),
        ExternalUrl => Value::str(env.external_url),
        ParseDuration => {
            let s = want_str(args, 0)?;
            let d = promql_parser::util::parse_duration(s)
                .map_err(|_| call_err(format!("not a valid duration string: {}", super::lex::go_quote(s))))?;
            Value::Float(d.as_secs_f64())
        }
    })
}

fn eval_args_string(args: &[Value]) -> String {
    // Go's evalArgs: a single string argument is used as is, otherwise fmt.Sprint.
    match args {
        [v] if v.as_str().is_some() => v.as_str().unwrap_or_default().to_string(),
        _ => sprint(args),
    }
}

/// The path part of an external URL (`url.URL.Path`).
fn url_path(u: &str) -> &str {
    let after_scheme = u.split_once("://").map_or(u, |(_, r)| r);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.split(['?', '#']).next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_table() {
        // Outputs of Prometheus's humanize (template.go) for the same inputs.
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (1234.0, "1.234k"),
            (1234567.0, "1.235M"),
            (12345678901.0, "12.35G"),
            (-1234.0, "-1.234k"),
            (0.1, "100m"),
            (0.0012, "1.2m"),
            (0.000001234, "1.234u"),
            (1e30, "1e+06Y"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(humanize(v), want, "{v}");
        }
    }

    #[test]
    fn humanize1024_table() {
        let cases =
            [(0.5, "0.5"), (1.0, "1"), (1024.0, "1ki"), (1048576.0, "1Mi"), (1536.0, "1.5ki"), (-4096.0, "-4ki")];
        for (v, want) in cases {
            assert_eq!(humanize1024(v), want, "{v}");
        }
    }

    #[test]
    fn humanize_duration_table() {
        let cases = [
            (0.0, "0s"),
            (1.0, "1s"),
            (1.5, "1.5s"),
            (59.99, "59.99s"),
            (60.0, "1m 0s"),
            (899.99, "14m 59s"),
            (3600.0, "1h 0m 0s"),
            (93784.0, "1d 2h 3m 4s"),
            (-93784.0, "-1d 2h 3m 4s"),
            (0.0015, "1.5ms"),
            (0.000000123, "123ns"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(humanize_duration(v), want, "{v}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(humanize_timestamp(1435065584.128).unwrap(), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(humanize_timestamp(0.0).unwrap(), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(humanize_timestamp(f64::INFINITY).unwrap(), "+Inf");
        assert!(humanize_timestamp(1e20).unwrap_err().contains("overflows int64"));
    }

    #[test]
    fn host_helpers() {
        let f = |s: &str| split_host_port(s).map(|(h, p)| (h.to_string(), p.to_string()));
        assert_eq!(f("a.b:9100"), Some(("a.b".into(), "9100".into())));
        assert_eq!(f("[::1]:80"), Some(("::1".into(), "80".into())));
        assert_eq!(f("::1"), None);
        assert_eq!(f("host"), None);
        assert_eq!(query_escape("up{job=\"a b\"}"), "up%7Bjob%3D%22a+b%22%7D");
        assert_eq!(url_path("http://x:9090/prom/?a"), "/prom/");
        assert_eq!(title("hello wORLD foo-bar"), "Hello WORLD Foo-Bar");
    }

    #[test]
    fn comparisons() {
        assert_eq!(go_lt(&Value::Float(1.0), &Value::Float(2.0)), Ok(true));
        assert_eq!(go_lt(&Value::Float(1.0), &Value::Int(2)), Err("incompatible types for comparison".to_string()));
        assert_eq!(go_eq(&Value::str("a"), &[Value::str("b"), Value::str("a")]), Ok(true));
        assert_eq!(go_lt(&Value::Bool(true), &Value::Bool(false)), Err("invalid type for comparison".to_string()));
    }
}
