//! The one place that knows the parser: parses PromQL with `promql-parser`
//! and converts its AST into promlite's [`Plan`].
//!
//! Regex matchers are recompiled here with Prometheus 3's semantics (fully
//! anchored, `.` matching newline, ASCII classes) through
//! [`crate::model::Matcher::new`], never with the parser's regexes; each
//! distinct pattern is compiled once per query.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self as pp, token};

use super::functions;
use super::plan::{AggOp, At, BinOp, Card, Grouping, Plan, Selector, ValueType, VectorMatching};
use crate::model::{MatchOp, Matcher, METRIC_NAME};

/// A query that does not parse or type-check.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses `query` and converts it into a plan.
pub fn parse(query: &str) -> Result<Plan, ParseError> {
    let ast = pp::parse(query).map_err(|e| ParseError(format_parse_error(query, &e)))?;
    let mut cx = Converter { regex_cache: HashMap::new() };
    cx.expr(&ast).map_err(|e| ParseError(format!("1:1: parse error: {e}")))
}

/// Brings the crate's message into Prometheus's `<line>:<col>: parse error: <msg>` shape.
fn format_parse_error(query: &str, msg: &str) -> String {
    let msg = msg.trim();
    if query.trim().is_empty() {
        return "1:1: parse error: no expression found in input".to_string();
    }
    if msg.starts_with(|c: char| c.is_ascii_digit()) && msg.contains(": parse error:") {
        return msg.to_string();
    }
    let msg = msg.strip_prefix("parse error: ").unwrap_or(msg);
    let msg = prometheus_wording(msg);
    // The crate rarely reports a position: point at the function a message
    // names, else at the first unbalanced bracket, else at the start.
    let end_of_input = msg.contains("end of input").then(|| query.chars().count() + 1);
    let pos = function_position(query, &msg).or_else(|| unbalanced_position(query)).or(end_of_input).unwrap_or(1);
    format!("1:{pos}: parse error: {msg}")
}

/// Rewrites the crate's wording into Prometheus's (type names, quoting).
fn prometheus_wording(msg: &str) -> String {
    let mut m = msg.to_string();
    for (from, to) in [
        ("type matrix", "type range vector"),
        ("type vector", "type instant vector"),
        ("got matrix", "got range vector"),
        ("got vector", "got instant vector"),
    ] {
        m = m.replace(from, to);
    }
    // 'name' → "name" for function names.
    if let (Some(a), Some(b)) = (m.find('\''), m.rfind('\'')) {
        if a < b && !m[a + 1..b].contains(' ') {
            m = format!("{}\"{}\"{}", &m[..a], &m[a + 1..b], &m[b + 1..]);
        }
    }
    m
}

/// 1-based column of the first argument of the function a message names.
fn function_position(query: &str, msg: &str) -> Option<usize> {
    let start = msg.find('"')? + 1;
    let end = start + msg[start..].find('"')?;
    let name = &msg[start..end];
    let at = query.find(&format!("{name}("))?;
    if msg.starts_with("unknown function") {
        return Some(at + 1);
    }
    Some(at + name.len() + 2)
}

fn unbalanced_position(query: &str) -> Option<usize> {
    let mut stack = Vec::new();
    let mut in_str: Option<char> = None;
    let mut escaped = false;
    for (i, c) in query.char_indices() {
        if let Some(q) = in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => in_str = Some(c),
            '(' | '[' | '{' => stack.push(i),
            ')' | ']' | '}' => {
                if stack.pop().is_none() {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    stack.first().map(|&i| i + 1)
}

struct Converter {
    regex_cache: HashMap<(bool, String, String), Matcher>,
}

fn millis(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<pp::Offset>) -> i64 {
    match o {
        None => 0,
        Some(pp::Offset::Pos(d)) => millis(d),
        Some(pp::Offset::Neg(d)) => -millis(d),
    }
}

fn at_of(a: &Option<pp::AtModifier>) -> Option<At> {
    a.as_ref().map(|a| match a {
        pp::AtModifier::Start => At::Start,
        pp::AtModifier::End => At::End,
        pp::AtModifier::At(t) => At::Time(match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => millis(&d),
            Err(e) => -millis(&e.duration()),
        }),
    })
}

impl Converter {
    fn matcher(&mut self, m: &promql_parser::label::Matcher) -> Result<Matcher, String> {
        let op = match &m.op {
            PMatchOp::Equal => return Ok(Matcher::equal(m.name.clone(), m.value.clone())),
            PMatchOp::NotEqual => MatchOp::NotEqual,
            PMatchOp::Re(_) => MatchOp::RegexMatch,
            PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
        };
        let key = (op == MatchOp::RegexMatch, m.name.clone(), m.value.clone());
        if let Some(c) = self.regex_cache.get(&key) {
            return Ok(c.clone());
        }
        let c = Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())?;
        self.regex_cache.insert(key, c.clone());
        Ok(c)
    }

    fn selector(&mut self, vs: &pp::VectorSelector) -> Result<Selector, String> {
        // With `or`, the parser moves every group into `or_matchers`.
        let mut raw: Vec<&[promql_parser::label::Matcher]> = Vec::new();
        if !vs.matchers.matchers.is_empty() || vs.matchers.or_matchers.is_empty() {
            raw.push(&vs.matchers.matchers);
        }
        for set in &vs.matchers.or_matchers {
            raw.push(set);
        }
        let mut groups = Vec::with_capacity(raw.len());
        for set in raw {
            let mut conv = Vec::with_capacity(set.len() + 1);
            if let Some(name) = &vs.name {
                conv.push(Matcher::equal(METRIC_NAME, name.clone()));
            }
            for m in set {
                conv.push(self.matcher(m)?);
            }
            groups.push(conv);
        }
        let matchers = if groups.is_empty() { Vec::new() } else { groups.remove(0) };
        Ok(Selector { matchers, or_matchers: groups, offset: offset_ms(&vs.offset), at: at_of(&vs.at) })
    }

    fn expr(&mut self, e: &pp::Expr) -> Result<Plan, String> {
        Ok(match e {
            pp::Expr::NumberLiteral(n) => Plan::Number(n.val),
            pp::Expr::StringLiteral(s) => Plan::Str(s.val.clone()),
            pp::Expr::Paren(p) => self.expr(&p.expr)?,
            pp::Expr::Unary(u) => {
                let inner = self.expr(&u.expr)?;
                if let Plan::Number(v) = inner {
                    Plan::Number(-v)
                } else {
                    Plan::Neg(Box::new(inner))
                }
            }
            pp::Expr::VectorSelector(vs) => Plan::Selector(self.selector(vs)?),
            pp::Expr::MatrixSelector(ms) => {
                Plan::MatrixSelector { sel: self.selector(&ms.vs)?, range: millis(&ms.range) }
            }
            pp::Expr::Subquery(sq) => Plan::Subquery {
                expr: Box::new(self.expr(&sq.expr)?),
                range: millis(&sq.range),
                step: sq.step.as_ref().map(millis).filter(|&s| s > 0),
                offset: offset_ms(&sq.offset),
                at: at_of(&sq.at),
            },
            pp::Expr::Call(c) => {
                let name = c.func.name;
                if !functions::is_supported(name) {
                    return Err(format!("unknown function with name {name:?}"));
                }
                let args = c.args.args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>, _>>()?;
                check_call(name, &args)?;
                Plan::Call { func: name, args }
            }
            pp::Expr::Aggregate(a) => self.aggregate(a)?,
            pp::Expr::Binary(b) => self.binary(b)?,
            pp::Expr::Extension(_) => return Err("extension expressions are not supported".into()),
        })
    }

    fn aggregate(&mut self, a: &pp::AggregateExpr) -> Result<Plan, String> {
        let op = match a.op.id() {
            token::T_SUM => AggOp::Sum,
            token::T_AVG => AggOp::Avg,
            token::T_COUNT => AggOp::Count,
            token::T_MIN => AggOp::Min,
            token::T_MAX => AggOp::Max,
            token::T_GROUP => AggOp::Group,
            token::T_STDDEV => AggOp::Stddev,
            token::T_STDVAR => AggOp::Stdvar,
            token::T_TOPK => AggOp::Topk,
            token::T_BOTTOMK => AggOp::Bottomk,
            token::T_QUANTILE => AggOp::Quantile,
            token::T_COUNT_VALUES => AggOp::CountValues,
            token::T_LIMITK => AggOp::Limitk,
            token::T_LIMIT_RATIO => AggOp::LimitRatio,
            _ => return Err(format!("unknown aggregation operator {}", a.op)),
        };
        let expr = self.expr(&a.expr)?;
        if expr.value_type() != ValueType::Vector {
            return Err(format!(
                "expected type instant vector in aggregation expression, got {}",
                type_name(expr.value_type())
            ));
        }
        let param = match &a.param {
            Some(p) => Some(Box::new(self.expr(p)?)),
            None => None,
        };
        let grouping = match &a.modifier {
            None => Grouping { without: false, labels: Vec::new() },
            Some(pp::LabelModifier::Include(l)) => Grouping { without: false, labels: l.labels.clone() },
            Some(pp::LabelModifier::Exclude(l)) => Grouping { without: true, labels: l.labels.clone() },
        };
        Ok(Plan::Aggregate { op, expr: Box::new(expr), param, grouping })
    }

    fn binary(&mut self, b: &pp::BinaryExpr) -> Result<Plan, String> {
        let op = match b.op.id() {
            token::T_ADD => BinOp::Add,
            token::T_SUB => BinOp::Sub,
            token::T_MUL => BinOp::Mul,
            token::T_DIV => BinOp::Div,
            token::T_MOD => BinOp::Mod,
            token::T_POW => BinOp::Pow,
            token::T_ATAN2 => BinOp::Atan2,
            token::T_EQLC => BinOp::Eq,
            token::T_NEQ => BinOp::Ne,
            token::T_GTR => BinOp::Gt,
            token::T_LSS => BinOp::Lt,
            token::T_GTE => BinOp::Ge,
            token::T_LTE => BinOp::Le,
            token::T_LAND => BinOp::And,
            token::T_LOR => BinOp::Or,
            token::T_LUNLESS => BinOp::Unless,
            _ => return Err(format!("unknown binary operator {}", b.op)),
        };
        let lhs = self.expr(&b.lhs)?;
        let rhs = self.expr(&b.rhs)?;
        for side in [&lhs, &rhs] {
            let t = side.value_type();
            if t != ValueType::Scalar && t != ValueType::Vector {
                return Err("binary expression must contain only scalar and instant vector types".to_string());
            }
        }
        let both_vectors = lhs.value_type() == ValueType::Vector && rhs.value_type() == ValueType::Vector;
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        if op.is_comparison()
            && !return_bool
            && lhs.value_type() == ValueType::Scalar
            && rhs.value_type() == ValueType::Scalar
        {
            return Err("comparisons between scalars must use BOOL modifier".into());
        }
        if op.is_set() && !both_vectors {
            return Err(format!("set operator {} not allowed in binary scalar expression", b.op));
        }
        let matching = if both_vectors {
            let mut vm = VectorMatching {
                card: if op.is_set() { Card::ManyToMany } else { Card::OneToOne },
                on: false,
                labels: Vec::new(),
                include: Vec::new(),
            };
            if let Some(m) = &b.modifier {
                match &m.card {
                    pp::VectorMatchCardinality::OneToOne => {}
                    pp::VectorMatchCardinality::ManyToOne(l) => {
                        vm.card = Card::ManyToOne;
                        vm.include = l.labels.clone();
                    }
                    pp::VectorMatchCardinality::OneToMany(l) => {
                        vm.card = Card::OneToMany;
                        vm.include = l.labels.clone();
                    }
                    pp::VectorMatchCardinality::ManyToMany => vm.card = Card::ManyToMany,
                }
                if op.is_set() {
                    vm.card = Card::ManyToMany;
                }
                match &m.matching {
                    Some(pp::LabelModifier::Include(l)) => {
                        vm.on = true;
                        vm.labels = l.labels.clone();
                    }
                    Some(pp::LabelModifier::Exclude(l)) => vm.labels = l.labels.clone(),
                    None => {}
                }
            }
            Some(vm)
        } else {
            None
        };
        Ok(Plan::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs), matching, return_bool })
    }
}

/// Prometheus's names for value types in type errors.
pub fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
    }
}

/// Argument checks the parser leaves to the engine.
fn check_call(name: &str, args: &[Plan]) -> Result<(), String> {
    match name {
        "label_replace" | "label_join" => {
            for a in &args[1..] {
                if !matches!(a, Plan::Str(_)) {
                    return Err(format!("expected string literal arguments in call to function {name:?}"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Parses a series selector (`match[]` of the API) into matcher sets: the
/// series matching any one set are selected.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, ParseError> {
    let ast = pp::parse(s).map_err(|e| ParseError(format_parse_error(s, &e)))?;
    let pp::Expr::VectorSelector(vs) = ast else {
        return Err(ParseError("1:1: parse error: expected vector selector".to_string()));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(ParseError("1:1: parse error: unexpected offset or @ in series selector".to_string()));
    }
    let mut cx = Converter { regex_cache: HashMap::new() };
    let sel = cx.selector(&vs).map_err(|e| ParseError(format!("1:1: parse error: {e}")))?;
    let mut sets = vec![sel.matchers];
    sets.extend(sel.or_matchers);
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        match parse(q) {
            Err(e) => e.0,
            Ok(p) => panic!("{q} parsed: {p:?}"),
        }
    }

    #[test]
    fn errors_have_prometheus_shape_and_wording() {
        assert_eq!(
            err("rate(foo)"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
        );
        assert_eq!(err("sum("), "1:4: parse error: unclosed left parenthesis");
        assert_eq!(err(""), "1:1: parse error: no expression found in input");
        assert_eq!(err("abs(foo, bar)"), "1:5: parse error: expected 1 argument(s) in call to \"abs\", got 2");
        assert!(
            err("sum(foo[5m])").contains("expected type instant vector in aggregation expression, got range vector")
        );
        assert!(err("1 > 2").contains("comparisons between scalars must use BOOL modifier"));
    }

    #[test]
    fn regexes_are_anchored_and_dot_matches_newline() {
        let Ok(Plan::Selector(sel)) = parse(r#"foo{a=~"x.y", b!~"z"}"#) else { panic!("not a selector") };
        let a = &sel.matchers[1];
        assert!(a.matches("x\ny"));
        assert!(!a.matches("xxy!"));
        assert!(sel.matchers[2].matches("zz"));
        assert!(!sel.matchers[2].matches("z"));
    }

    #[test]
    fn or_selectors_become_alternative_matcher_sets() {
        let Ok(Plan::Selector(sel)) = parse(r#"foo{a="1" or b="2"}"#) else { panic!("not a selector") };
        assert_eq!(sel.matchers.len(), 2);
        assert_eq!(sel.or_matchers.len(), 1);
        assert_eq!(sel.or_matchers[0][1].name, "b");
    }
}
