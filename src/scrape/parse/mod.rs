//! Exposition parsers: the Prometheus text format (0.0.4 / 1.0.0) and
//! OpenMetrics 1.0 text. Pure: bytes in, events out, no I/O.
//!
//! A hand-written byte lexer (see `DEPENDENCIES.md`: faster than nom
//! combinators here and simpler to make zero-copy). Names, label values and
//! help texts borrow from the input unless they contain escapes; label
//! values are handed out from one reused buffer, so a body costs no
//! allocation per line. The first line that does not parse ends the parse
//! with its 1-based line number.
//!
//! Semantics follow Prometheus's `model/textparse` (`promparse.go`,
//! `openmetricsparse.go`):
//! - text format: blanks and tabs may separate tokens, `#` lines other than
//!   `HELP`/`TYPE` are comments, timestamps are integer milliseconds;
//! - OpenMetrics: `# EOF` must end the body, `# UNIT` is allowed,
//!   timestamps are float seconds, exemplars (`# {...} v [ts]`) are skipped;
//! - both: label values unescape `\\`, `\"` and `\n`; `+Inf`, `-Inf` and
//!   `NaN` values; the `le` label of histogram buckets and the `quantile`
//!   label of summaries are normalised as Prometheus 3 does (`1` → `1.0`);
//! - Prometheus 3's quoted UTF-8 names (`{"my.metric", "a.b"="c"}`) parse too.

use std::borrow::Cow;
use std::fmt;

use super::protocol::Format;

/// The type of a metric family from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics).
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `info` (OpenMetrics).
    Info,
    /// `stateset` (OpenMetrics).
    StateSet,
    /// `untyped` (text) or `unknown` (OpenMetrics).
    Unknown,
}

impl MetricType {
    fn parse(s: &str, format: Format) -> Option<MetricType> {
        Some(match (s, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::PromText) | ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// The name the metadata API uses (`unknown` for untyped).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// One sample line, borrowed from the input (and the parser's label buffer).
#[derive(Debug)]
pub struct SampleLine<'a, 'b> {
    /// The metric name.
    pub name: Cow<'a, str>,
    /// Label pairs in exposition order (not sorted, duplicates not checked).
    pub labels: &'b [(Cow<'a, str>, Cow<'a, str>)],
    /// The value.
    pub value: f64,
    /// Explicit timestamp in milliseconds.
    pub timestamp: Option<i64>,
    /// 1-based line number.
    pub line: usize,
}

/// What the parser found on one line.
#[derive(Debug)]
pub enum Event<'a, 'b> {
    /// `# HELP family text`.
    Help {
        /// Family name.
        family: Cow<'a, str>,
        /// Unescaped help text.
        text: Cow<'a, str>,
    },
    /// `# TYPE family type`.
    Type {
        /// Family name.
        family: Cow<'a, str>,
        /// The type.
        kind: MetricType,
    },
    /// `# UNIT family unit` (OpenMetrics).
    Unit {
        /// Family name.
        family: Cow<'a, str>,
        /// The unit.
        unit: &'a str,
    },
    /// A sample.
    Sample(SampleLine<'a, 'b>),
}

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// The start of the offending line (at most 80 bytes).
    pub excerpt: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)?;
        if !self.excerpt.is_empty() {
            write!(f, " in {:?}", self.excerpt)?;
        }
        Ok(())
    }
}

/// Totals of one parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Sample lines.
    pub samples: usize,
    /// Lines in the body.
    pub lines: usize,
}

/// Parses a whole body, calling `on_event` for every HELP/TYPE/UNIT and sample.
pub fn parse<'a, F>(body: &'a [u8], format: Format, on_event: F) -> Result<ParseStats, ParseError>
where
    F: for<'b> FnMut(Event<'a, 'b>),
{
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            let bad = e.valid_up_to();
            let line = body[..bad].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(ParseError { line, message: "invalid UTF-8".into(), excerpt: String::new() });
        }
    };
    let mut p = Parser {
        format,
        labels: Vec::with_capacity(16),
        family: None,
        stats: ParseStats::default(),
        norm_cache: Vec::new(),
    };
    p.run(text, on_event)?;
    Ok(p.stats)
}

struct Parser<'a> {
    format: Format,
    labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The family of the last TYPE line: its name and type (for `le`/`quantile` normalisation).
    family: Option<(Cow<'a, str>, MetricType)>,
    stats: ParseStats,
    /// Recent `le`/`quantile` values and their normalised form (`None`: already
    /// canonical). Bucket bounds repeat for every series of a histogram, so a
    /// small cache saves a float format per bucket line.
    norm_cache: Vec<(String, Option<String>)>,
}

const NORM_CACHE_SIZE: usize = 64;

/// An error at a byte position of a line, before the line number is known.
struct LineErr(String);

fn err<T>(m: impl Into<String>) -> Result<T, LineErr> {
    Err(LineErr(m.into()))
}

fn excerpt(line: &str) -> String {
    let mut end = line.len().min(80);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

impl<'a> Parser<'a> {
    fn run<F>(&mut self, text: &'a str, mut on_event: F) -> Result<(), ParseError>
    where
        F: for<'b> FnMut(Event<'a, 'b>),
    {
        let om = self.format == Format::OpenMetrics;
        let mut rest = text;
        let mut line_no = 0;
        let mut eof_seen = false;
        while !rest.is_empty() {
            let (line, next) = match rest.find('\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, ""),
            };
            rest = next;
            line_no += 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            let fail = |LineErr(message): LineErr| ParseError { line: line_no, message, excerpt: excerpt(line) };
            if eof_seen {
                return Err(fail(LineErr("unexpected data after # EOF".into())));
            }
            if om {
                if line == "# EOF" {
                    eof_seen = true;
                    continue;
                }
                if line.is_empty() {
                    return Err(fail(LineErr("empty line (not allowed in OpenMetrics)".into())));
                }
            } else if line.trim_matches(is_blank).is_empty() {
                continue;
            }
            let trimmed = if om { line } else { line.trim_start_matches(is_blank) };
            if let Some(comment) = trimmed.strip_prefix('#') {
                self.comment(comment, &mut on_event).map_err(fail)?;
            } else {
                self.sample(trimmed, line_no, &mut on_event).map_err(fail)?;
                self.stats.samples += 1;
            }
        }
        self.stats.lines = line_no;
        if om && !eof_seen {
            return Err(ParseError {
                line: line_no + 1,
                message: "data does not end with # EOF".into(),
                excerpt: String::new(),
            });
        }
        Ok(())
    }

    fn comment<F>(&mut self, c: &'a str, on_event: &mut F) -> Result<(), LineErr>
    where
        F: for<'b> FnMut(Event<'a, 'b>),
    {
        let om = self.format == Format::OpenMetrics;
        let body = if om {
            match c.strip_prefix(' ') {
                Some(b) => b,
                None => return err("invalid comment: expected '# ' followed by HELP, TYPE, UNIT or EOF"),
            }
        } else {
            c.trim_start_matches(is_blank)
        };
        let (keyword, after) = split_token(body);
        match keyword {
            "HELP" | "TYPE" | "UNIT" => {}
            _ if om => return err(format!("invalid metadata keyword {keyword:?}")),
            _ => return Ok(()), // a plain comment in the text format
        }
        if keyword == "UNIT" && !om {
            return Ok(()); // the text format has no UNIT; Prometheus treats it as a comment
        }
        let after = skip_sep(after, om)?;
        let (family, after) = self.metric_name(after)?;
        match keyword {
            "HELP" => {
                let text = if after.is_empty() { "" } else { skip_sep(after, om)? };
                let text = if om { text } else { text.trim_start_matches(is_blank) };
                let help = unescape(text, om);
                on_event(Event::Help { family, text: help });
            }
            "TYPE" => {
                let t = skip_sep(after, om)?;
                let t = if om { t } else { t.trim_matches(is_blank) };
                let kind =
                    MetricType::parse(t, self.format).ok_or_else(|| LineErr(format!("invalid metric type {t:?}")))?;
                self.family = Some((family.clone(), kind));
                on_event(Event::Type { family, kind });
            }
            _ => {
                let unit = skip_sep(after, om)?;
                on_event(Event::Unit { family, unit });
            }
        }
        Ok(())
    }

    /// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, or a quoted UTF-8 name.
    fn metric_name(&self, s: &'a str) -> Result<(Cow<'a, str>, &'a str), LineErr> {
        if s.starts_with('"') {
            let (v, rest) = quoted(s)?;
            return Ok((v, rest));
        }
        let end = name_end(s, true);
        if end == 0 {
            return err("expected a metric name");
        }
        Ok((Cow::Borrowed(&s[..end]), &s[end..]))
    }

    fn sample<F>(&mut self, line: &'a str, line_no: usize, on_event: &mut F) -> Result<(), LineErr>
    where
        F: for<'b> FnMut(Event<'a, 'b>),
    {
        let om = self.format == Format::OpenMetrics;
        self.labels.clear();
        let mut name: Option<Cow<'a, str>> = None;
        let mut s = line;
        if !s.starts_with('{') {
            let (n, rest) = self.metric_name(s)?;
            name = Some(n);
            s = rest;
            if !om {
                let t = s.trim_start_matches(is_blank);
                if t.starts_with('{') {
                    s = t;
                }
            }
        }
        let had_braces = s.starts_with('{');
        if let Some(mut r) = s.strip_prefix('{') {
            loop {
                if !om {
                    r = r.trim_start_matches(is_blank);
                }
                if let Some(after) = r.strip_prefix('}') {
                    s = after;
                    break;
                }
                let was_quoted = r.starts_with('"');
                let (lname, after) = if was_quoted { quoted(r)? } else { label_name(r)? };
                r = if om { after } else { after.trim_start_matches(is_blank) };
                if r.starts_with(',') || r.starts_with('}') {
                    // A bare quoted string is the metric name (Prometheus 3 UTF-8 syntax).
                    if !was_quoted || name.is_some() {
                        return err(format!("label {lname:?} without a value"));
                    }
                    name = Some(lname);
                } else {
                    r = r
                        .strip_prefix('=')
                        .ok_or_else(|| LineErr(format!("expected '=' after label name {lname:?}")))?;
                    if !om {
                        r = r.trim_start_matches(is_blank);
                    }
                    if !r.starts_with('"') {
                        return err(format!("expected a quoted value for label {lname:?}"));
                    }
                    let (value, after) = quoted(r)?;
                    let value = self.normalise(name.as_deref(), &lname, value);
                    self.labels.push((lname, value));
                    r = if om { after } else { after.trim_start_matches(is_blank) };
                }
                if let Some(after) = r.strip_prefix(',') {
                    r = after;
                } else if !r.starts_with('}') {
                    return err("expected ',' or '}' in label set");
                }
            }
        }
        let name = name.ok_or_else(|| LineErr("missing metric name".into()))?;
        // value
        let s2 = if s.is_empty() {
            return err("missing value");
        } else if had_braces && !om {
            s.trim_start_matches(is_blank)
        } else {
            skip_sep(s, om)
                .map_err(|_| LineErr(format!("unexpected character after the metric name: {:?}", excerpt(s))))?
        };
        let (vtok, rest) = split_token(s2);
        if vtok.is_empty() {
            return err("missing value");
        }
        let value = parse_value(vtok).ok_or_else(|| LineErr(format!("invalid value {vtok:?}")))?;
        let mut timestamp = None;
        let mut rest = rest;
        if !rest.is_empty() {
            let r = skip_sep(rest, om)?;
            if !r.is_empty() && !r.starts_with('#') {
                let (ttok, after) = split_token(r);
                timestamp = Some(if om {
                    let secs: f64 = ttok.parse().map_err(|_| LineErr(format!("invalid timestamp {ttok:?}")))?;
                    if !secs.is_finite() {
                        return err(format!("invalid timestamp {ttok:?}"));
                    }
                    (secs * 1000.0) as i64
                } else {
                    ttok.parse::<i64>().map_err(|_| LineErr(format!("invalid timestamp {ttok:?}")))?
                });
                rest = after;
            } else {
                rest = r;
            }
            if om {
                if !rest.is_empty() {
                    let ex = rest.strip_prefix(' ').unwrap_or(rest);
                    // Exemplars are skipped; check only that it is one.
                    if !ex.starts_with("# {") {
                        return err(format!("unexpected text after sample: {:?}", excerpt(ex)));
                    }
                }
            } else {
                let r = rest.trim_start_matches(is_blank);
                if !r.is_empty() {
                    return err(format!("unexpected text after sample: {:?}", excerpt(r)));
                }
            }
        }
        on_event(Event::Sample(SampleLine { name, labels: &self.labels, value, timestamp, line: line_no }));
        Ok(())
    }

    /// Prometheus 3 normalises `le` on histogram buckets and `quantile` on
    /// summaries to Go's float formatting with `.0` added (`1` → `1.0`).
    fn normalise(&mut self, metric: Option<&str>, lname: &str, value: Cow<'a, str>) -> Cow<'a, str> {
        let Some((fam, kind)) = &self.family else { return value };
        let applies = match (kind, lname) {
            (MetricType::Histogram, "le") | (MetricType::GaugeHistogram, "le") | (MetricType::Summary, "quantile") => {
                metric.is_some_and(|m| m.starts_with(fam.as_ref()))
            }
            _ => false,
        };
        if !applies {
            return value;
        }
        if let Some((_, norm)) = self.norm_cache.iter().find(|(raw, _)| raw.as_str() == value.as_ref()) {
            return match norm {
                None => value,
                Some(n) => Cow::Owned(n.clone()),
            };
        }
        let norm = parse_value(&value).map(format_openmetrics_float).filter(|s| *s != value);
        if self.norm_cache.len() >= NORM_CACHE_SIZE {
            self.norm_cache.clear();
        }
        self.norm_cache.push((value.to_string(), norm.clone()));
        match norm {
            None => value,
            Some(n) => Cow::Owned(n),
        }
    }
}

#[inline]
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// In the text format one or more blanks separate tokens; in OpenMetrics exactly one space.
fn skip_sep(s: &str, om: bool) -> Result<&str, LineErr> {
    if om {
        s.strip_prefix(' ').ok_or_else(|| LineErr("expected a single space".into()))
    } else {
        let t = s.trim_start_matches(is_blank);
        if t.len() == s.len() && !s.is_empty() {
            return err("expected a blank");
        }
        Ok(t)
    }
}

/// The next blank-delimited token and the rest (starting at the blank).
fn split_token(s: &str) -> (&str, &str) {
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Length of the leading `[a-zA-Z_:][a-zA-Z0-9_:]*` (colons only in metric names).
fn name_end(s: &str, colons: bool) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_alphabetic() || c == b'_' || (colons && c == b':') || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        i += 1;
    }
    i
}

fn label_name(s: &str) -> Result<(Cow<'_, str>, &str), LineErr> {
    let end = name_end(s, false);
    if end == 0 {
        return err(format!("invalid label name at {:?}", excerpt(s)));
    }
    Ok((Cow::Borrowed(&s[..end]), &s[end..]))
}

/// A double-quoted string starting at `s[0] == '"'`, unescaped, and the rest after the closing quote.
fn quoted(s: &str) -> Result<(Cow<'_, str>, &str), LineErr> {
    let body = &s[1..];
    let b = body.as_bytes();
    let mut i = 0;
    let mut has_escape = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let raw = &body[..i];
                let v = if has_escape { Cow::Owned(unescape_value(raw)) } else { Cow::Borrowed(raw) };
                return Ok((v, &body[i + 1..]));
            }
            b'\\' => {
                has_escape = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    err("unterminated quoted string")
}

/// Label value escapes: `\\`, `\"`, `\n`; any other `\x` stays as written (as Prometheus).
fn unescape_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// HELP text escapes: `\\` and `\n` (and `\"` in OpenMetrics).
fn unescape(text: &str, om: bool) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if om => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Parses a sample value as Go's `strconv.ParseFloat` does for the forms
/// exporters write: decimals, exponents, `±Inf`, `NaN` (case-insensitive).
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "inf" | "+inf" => return Some(f64::INFINITY),
        "-Inf" | "-inf" => return Some(f64::NEG_INFINITY),
        "NaN" | "nan" => return Some(f64::NAN),
        _ => {}
    }
    let b = s.as_bytes();
    // Reject forms Rust accepts but Go does not ("infinity" is accepted by both).
    if b.first().is_some_and(|c| *c == b'_') || s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` with `.0` appended when the
/// result has neither `.` nor `e` (Prometheus's `formatOpenMetricsFloat`).
pub fn format_openmetrics_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format_go_g(f);
    if s.contains(['.', 'e']) {
        s
    } else {
        s + ".0"
    }
}

/// Go's `%g` with the shortest precision: exponent form when the decimal
/// exponent is below -4 or at least 6 (`1e+06`, `1.5e-07`), else plain.
pub fn format_go_g(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let e = format!("{f:e}");
    let (mant, exp) = match e.split_once('e') {
        Some((m, x)) => (m, x.parse::<i32>().unwrap_or(0)),
        None => (e.as_str(), 0),
    };
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        out.push_str(&a.to_string());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

#[cfg(test)]
mod tests;
