//! Prometheus's series notation, as written in PromQL `.test` files (`load`
//! blocks) and in promtool's rule unit tests (`input_series`):
//! `metric{a="b"} 1 2 _ stale 0+10x5 1-1x3 _x2`.
//!
//! * `a+bxN` / `a-bxN`: N+1 values starting at `a`, each `b` more (or less)
//!   than the one before; `axN`: `a` repeated N+1 times.
//! * `_` leaves a step without a sample; `_xN` leaves N steps out.
//! * `stale` is a stale marker; `Inf`, `-Inf`, `NaN` and hex integers parse.
//! * `{{...}}` is a native histogram, recognised but not decoded.
//!
//! Shared by the PromQL conformance runner and `promlite test rules`; the
//! rules follow Prometheus's `parseSeries` (promql/parser/lex.go, parse.go).

use crate::model::{Labels, STALE_NAN};

/// The most values one token may expand to (`0+1x1000000`), so a typo
/// cannot allocate without bound.
pub const MAX_EXPANSION: usize = 1_000_000;

/// One value of the notation: a number, a gap, or a native histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeqValue {
    /// A float sample (stale markers included, as [`STALE_NAN`]).
    Num(f64),
    /// `_`: no sample at this step.
    Omitted,
    /// `{{...}}`: a native histogram (not decoded).
    Histogram,
}

/// Parses one number of the notation: decimal, `Inf`, `NaN`, `stale`, `0x..`.
pub fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" => f64::INFINITY,
        "nan" => f64::NAN,
        "stale" => return (!neg).then_some(STALE_NAN),
        b if b.starts_with("0x") => i64::from_str_radix(&b[2..], 16).ok()? as f64,
        _ => body.parse::<f64>().ok()?,
    };
    Some(if neg { -v } else { v })
}

/// Splits a values string into tokens at whitespace, keeping `{{...}}` histograms whole.
pub fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' && chars.peek() == Some(&'{') {
            depth += 1;
        }
        if c == '}' && chars.peek() == Some(&'}') && depth > 0 {
            depth -= 1;
            cur.push(c);
            cur.push('}');
            chars.next();
            continue;
        }
        if c.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Expands a values string (`1 2 _ stale 0+10x5 1x3 _x2 {{...}}`) into one
/// value per step. The error names the token that does not parse.
pub fn expand_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    for tok in tokens(s) {
        if tok.starts_with("{{") {
            let times = tok.rsplit_once("}}x").and_then(|(_, n)| n.parse::<usize>().ok()).unwrap_or(0);
            if times >= MAX_EXPANSION {
                return Err(format!("{tok:?} expands to more than {MAX_EXPANSION} values"));
            }
            for _ in 0..=times {
                out.push(SeqValue::Histogram);
            }
            continue;
        }
        if tok == "_" {
            out.push(SeqValue::Omitted);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad repetition {tok:?}"))?;
            if n > MAX_EXPANSION {
                return Err(format!("{tok:?} expands to more than {MAX_EXPANSION} values"));
            }
            out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
            continue;
        }
        if let Some((head, times)) = tok.rsplit_once('x') {
            if let Ok(times) = times.parse::<usize>() {
                if times >= MAX_EXPANSION {
                    return Err(format!("{tok:?} expands to more than {MAX_EXPANSION} values"));
                }
                // head is `a`, `a+b` or `a-b`.
                let bytes = head.as_bytes();
                let mut split = None;
                for i in 1..bytes.len() {
                    if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
                        split = Some(i);
                        break;
                    }
                }
                let (start, inc) = match split {
                    Some(i) => {
                        let start = parse_number(&head[..i]).ok_or(format!("bad value {tok:?}"))?;
                        let inc = parse_number(&head[i..]).ok_or(format!("bad increment {tok:?}"))?;
                        (start, inc)
                    }
                    None => (parse_number(head).ok_or(format!("bad value {tok:?}"))?, 0.0),
                };
                let mut v = start;
                for _ in 0..=times {
                    out.push(SeqValue::Num(v));
                    v += inc;
                }
                continue;
            }
        }
        out.push(SeqValue::Num(parse_number(&tok).ok_or(format!("bad value {tok:?}"))?));
    }
    Ok(out)
}

/// Splits `metric{a="b"} rest` into the series descriptor and the rest.
pub fn split_descriptor(line: &str) -> (&str, &str) {
    let mut in_str = false;
    let mut escaped = false;
    let mut brace = false;
    for (i, c) in line.char_indices() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => brace = true,
            '}' if brace => return (&line[..=i], &line[i + 1..]),
            c if c.is_whitespace() && !brace => return (&line[..i], &line[i..]),
            _ => {}
        }
    }
    (line, "")
}

/// Parses a series descriptor (`metric{a="b"}`, `{__name__="m"}`, `{}`) into
/// labels with the PromQL parser, as Prometheus's `ParseMetric` does.
pub fn parse_labels(desc: &str) -> Result<Labels, String> {
    let d = desc.trim();
    if d == "{}" {
        return Ok(Labels::empty());
    }
    let expr = promql_parser::parser::parse(d).map_err(|e| format!("bad series {d:?}: {e}"))?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(format!("bad series {d:?}"));
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(n) = vs.name {
        pairs.push(("__name__".into(), n));
    }
    for m in vs.matchers.matchers {
        if m.op != promql_parser::label::MatchOp::Equal {
            return Err(format!("bad series {d:?}: only = may be used in a series descriptor"));
        }
        pairs.push((m.name, m.value));
    }
    Ok(Labels::from_pairs(pairs))
}

/// Whether two floats are equal within promqltest's tolerance: both NaN,
/// identical, or a relative difference below 1e-6 (Prometheus's
/// `almost.Equal` with `defaultEpsilon`).
pub fn almost_equal(a: f64, b: f64) -> bool {
    super::functions::almost_equal(a, b, 1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(s: &str) -> Vec<Option<f64>> {
        expand_values(s)
            .unwrap()
            .into_iter()
            .map(|v| match v {
                SeqValue::Num(x) => Some(x),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn expansions() {
        assert_eq!(nums("0+10x3"), [Some(0.0), Some(10.0), Some(20.0), Some(30.0)]);
        assert_eq!(nums("1-1x2"), [Some(1.0), Some(0.0), Some(-1.0)]);
        assert_eq!(nums("5x2 _ _x2 7"), [Some(5.0), Some(5.0), Some(5.0), None, None, None, Some(7.0)]);
        assert_eq!(nums("1e3 -2"), [Some(1000.0), Some(-2.0)]);
        let stale = expand_values("stale").unwrap();
        assert!(matches!(stale[0], SeqValue::Num(v) if v.to_bits() == STALE_NAN.to_bits()));
        assert!(expand_values("1 two").unwrap_err().contains("two"));
        assert!(expand_values("0+1x100000000").unwrap_err().contains("more than"));
        assert!(expand_values("_x100000000").is_err());
    }

    #[test]
    fn descriptors() {
        let (d, rest) = split_descriptor(r#"up{job="a b", x="}"} 1 2"#);
        assert_eq!(d, r#"up{job="a b", x="}"}"#);
        assert_eq!(rest.trim(), "1 2");
        let l = parse_labels(d).unwrap();
        assert_eq!(l.get("job"), Some("a b"));
        assert_eq!(l.metric_name(), Some("up"));
        assert!(parse_labels("up{job=~\"a\"}").is_err());
        assert!(parse_labels("{}").unwrap().is_empty());
    }

    #[test]
    fn tolerance() {
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(1.0, 1.001));
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(!almost_equal(0.0, 1e-9));
    }
}
