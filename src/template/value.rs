//! Runtime values of the template engine and how Go's `fmt` prints them.
//!
//! Go templates run on reflected Go values; Prometheus hands them a struct
//! (`Labels`, `ExternalLabels`, `ExternalURL`, `Value`), `map[string]string`
//! label maps, query results (`[]*sample`) and, from `toTime`, `*time.Time`.
//! [`Value`] has one variant per shape that can occur, and remembers the Go
//! type name so that error texts read like Prometheus's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

use super::gofmt::{format_e, format_f, format_g, format_v};
use super::gotime;
use super::lex::go_quote;
use crate::model::Labels;

/// One element of a `query` result (Prometheus's `template.sample`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QSample {
    pub labels: Rc<Labels>,
    pub value: f64,
}

/// The data struct alert templates see as `.` (Prometheus's `AlertTemplateData`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DataV {
    pub labels: Rc<Labels>,
    pub external_labels: Rc<Labels>,
    pub external_url: Rc<str>,
    pub value: f64,
}

/// A template value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A nil interface or pointer.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    /// `html/template.HTML` from `safeHtml`; prints like a string.
    Html(Rc<str>),
    /// `map[string]string` (label sets, kept packed); a missing key reads as "".
    StrMap(Rc<Labels>),
    /// `map[string]interface{}` (from `args`); a missing key reads as nil.
    AnyMap(Rc<BTreeMap<String, Value>>),
    /// `*template.sample`.
    Sample(Rc<QSample>),
    /// `template.queryResult`, a slice of samples.
    Samples(Rc<Vec<Rc<QSample>>>),
    /// `*time.Time`, as milliseconds since the epoch (Prometheus's precision).
    Time(i64),
    /// The alert template data struct.
    Data(Rc<DataV>),
}

const DATA_TYPE: &str =
    "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }";

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    /// The Go type name, as `%T` prints it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::StrMap(_) => "map[string]string",
            Value::AnyMap(_) => "map[string]interface {}",
            Value::Sample(_) => "*template.sample",
            Value::Samples(_) => "template.queryResult",
            Value::Time(_) => "*time.Time",
            Value::Data(_) => DATA_TYPE,
        }
    }

    /// Go's template truth (`isTrue`): zero values, empty collections and nil are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::StrMap(m) => !m.is_empty(),
            Value::AnyMap(m) => !m.is_empty(),
            Value::Samples(s) => !s.is_empty(),
            Value::Sample(_) | Value::Time(_) | Value::Data(_) => true,
        }
    }

    /// The string inside a string-kinded value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Html(s) => Some(s),
            _ => None,
        }
    }

    /// `fmt.Sprint(v)`.
    pub fn display(&self) -> String {
        let mut s = String::new();
        self.write_display(&mut s);
        s
    }

    /// Writes `%v`. Go prints a pointer inside a container as an address; we
    /// print samples as `&{...}` everywhere instead, which is at least useful.
    fn write_display(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&format_v(*f)),
            Value::Str(s) | Value::Html(s) => out.push_str(s),
            Value::StrMap(m) => write_str_map(out, m),
            Value::AnyMap(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_display(out);
                }
                out.push(']');
            }
            Value::Sample(s) => {
                // Go prints a struct pointer as &{...}.
                out.push_str("&{");
                write_str_map(out, &s.labels);
                out.push(' ');
                out.push_str(&format_v(s.value));
                out.push('}');
            }
            Value::Samples(v) => {
                out.push('[');
                for (i, s) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    Value::Sample(s.clone()).write_display(out);
                }
                out.push(']');
            }
            Value::Time(ms) => out.push_str(&gotime::time_string(*ms)),
            Value::Data(d) => {
                out.push('{');
                write_str_map(out, &d.labels);
                out.push(' ');
                write_str_map(out, &d.external_labels);
                out.push(' ');
                out.push_str(&d.external_url);
                out.push(' ');
                out.push_str(&format_v(d.value));
                out.push('}');
            }
        }
    }
}

fn write_str_map(out: &mut String, m: &Labels) {
    // Labels are sorted by name, as Go prints map keys.
    out.push_str("map[");
    for (i, l) in m.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(l.name);
        out.push(':');
        out.push_str(l.value);
    }
    out.push(']');
}

/// `fmt.Sprint(args...)`: a space between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && a.as_str().is_none() && args[i - 1].as_str().is_none() {
            out.push(' ');
        }
        out.push_str(&a.display());
    }
    out
}

/// `fmt.Sprintln(args...)`: always spaces, then a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = args.iter().map(Value::display).collect::<Vec<_>>().join(" ");
    out.push('\n');
    out
}

#[derive(Default)]
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `fmt.Sprintf` for the verbs templates use: `%v %s %d %f %F %e %E %g %G %q %x %X %o %b %c %t %%`,
/// with flags `-+# 0`, width and precision (also `*`). Mismatches print Go's
/// `%!verb(type=value)` markers instead of failing, as Go does.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut argi = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut fl = Flags::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => fl.minus = true,
                '+' => fl.plus = true,
                '#' => fl.sharp = true,
                ' ' => fl.space = true,
                '0' => fl.zero = true,
                _ => break,
            }
            chars.next();
        }
        fl.width = read_num(&mut chars, args, &mut argi);
        if chars.peek() == Some(&'.') {
            chars.next();
            fl.prec = Some(read_num(&mut chars, args, &mut argi).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        let body = format_one(verb, arg, &fl);
        out.push_str(&body);
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", a.type_name(), a.display());
        }
        out.push(')');
    }
    out
}

fn read_num(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, args: &[Value], argi: &mut usize) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let v = match args.get(*argi) {
            Some(Value::Int(i)) => usize::try_from(*i).ok(),
            _ => None,
        };
        *argi += 1;
        return v;
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize).min(1 << 16));
    }
    n
}

fn bad_verb(verb: char, arg: &Value) -> String {
    match arg {
        Value::Nil => format!("%!{verb}(<nil>)"),
        a => format!("%!{verb}({}={})", a.type_name(), a.display()),
    }
}

fn sign(neg: bool, fl: &Flags) -> &'static str {
    if neg {
        "-"
    } else if fl.plus {
        "+"
    } else if fl.space {
        " "
    } else {
        ""
    }
}

/// Pads `body` (already signed) to the width; zero padding goes after the sign.
fn pad(body: String, fl: &Flags, numeric: bool) -> String {
    let Some(w) = fl.width else { return body };
    let n = body.chars().count();
    if n >= w {
        return body;
    }
    let fill = w - n;
    if fl.minus {
        return format!("{body}{}", " ".repeat(fill));
    }
    if fl.zero && numeric {
        let (s, rest) = match body.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), body[1..].to_string()),
            _ => (String::new(), body),
        };
        return format!("{s}{}{rest}", "0".repeat(fill));
    }
    format!("{}{body}", " ".repeat(fill))
}

fn format_int(verb: char, i: i64, fl: &Flags) -> Option<String> {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let digits = match verb {
        'd' | 'v' => u.to_string(),
        'x' => format!("{}{u:x}", if fl.sharp { "0x" } else { "" }),
        'X' => format!("{}{u:X}", if fl.sharp { "0X" } else { "" }),
        'o' => format!("{}{u:o}", if fl.sharp { "0" } else { "" }),
        'b' => format!("{u:b}"),
        'c' => return Some(char::from_u32(u32::try_from(i).ok()?).unwrap_or('\u{fffd}').to_string()),
        'q' => {
            let c = char::from_u32(u32::try_from(i).ok()?).unwrap_or('\u{fffd}');
            let q = go_quote(&c.to_string());
            return Some(format!("'{}'", &q[1..q.len() - 1].replace("\\\"", "\"")));
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => return None,
        _ => return None,
    };
    let digits = match fl.prec {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    Some(format!("{}{digits}", sign(neg, fl)))
}

fn format_float(verb: char, f: f64, fl: &Flags) -> Option<String> {
    let s = match verb {
        'v' => format_g(f, fl.prec),
        'g' => format_g(f, fl.prec),
        'G' => format_g(f, fl.prec).to_uppercase(),
        'e' => format_e(f, fl.prec.unwrap_or(6), false),
        'E' => format_e(f, fl.prec.unwrap_or(6), true),
        'f' | 'F' => format_f(f, fl.prec.unwrap_or(6)),
        _ => return None,
    };
    if f.is_nan() {
        return Some(if fl.plus { "+NaN".to_string() } else { s });
    }
    let (neg, mag) = match s.strip_prefix('-') {
        Some(m) => (true, m.to_string()),
        None => (false, s.trim_start_matches('+').to_string()),
    };
    if f.is_infinite() && !neg {
        return Some(if fl.space && !fl.plus { format!(" {mag}") } else { format!("+{mag}") });
    }
    Some(format!("{}{mag}", sign(neg, fl)))
}

fn format_one(verb: char, arg: &Value, fl: &Flags) -> String {
    let numeric = matches!(arg, Value::Int(_) | Value::Float(_));
    let body = match (verb, arg) {
        (_, Value::Int(i)) => format_int(verb, *i, fl),
        (_, Value::Float(f)) => format_float(verb, *f, fl),
        ('v' | 's', Value::Str(s) | Value::Html(s)) => Some(match fl.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.to_string(),
        }),
        ('q', Value::Str(s) | Value::Html(s)) => Some(go_quote(s)),
        ('x', Value::Str(s) | Value::Html(s)) => Some(s.bytes().map(|b| format!("{b:02x}")).collect()),
        ('X', Value::Str(s) | Value::Html(s)) => Some(s.bytes().map(|b| format!("{b:02X}")).collect()),
        ('v' | 't', Value::Bool(b)) => Some(b.to_string()),
        ('v' | 's', Value::Time(_)) => Some(arg.display()),
        ('v', _) => Some(arg.display()),
        ('s', Value::StrMap(_) | Value::AnyMap(_) | Value::Samples(_) | Value::Sample(_) | Value::Data(_)) => {
            Some(arg.display())
        }
        _ => None,
    };
    match body {
        Some(b) => pad(b, fl, numeric),
        None => bad_verb(verb, arg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[Value]) -> String {
        sprintf(fmt, args)
    }

    #[test]
    fn printf_like_go() {
        // Expected strings are Go's fmt.Sprintf output for the same inputs.
        assert_eq!(f("%.2f", &[Value::Float(1.23456)]), "1.23");
        assert_eq!(f("%d%%", &[Value::Int(42)]), "42%");
        assert_eq!(f("%s is %v", &[Value::str("x"), Value::Float(1e6)]), "x is 1e+06");
        assert_eq!(f("%g", &[Value::Float(0.000012)]), "1.2e-05");
        assert_eq!(f("%e", &[Value::Float(1234.5678)]), "1.234568e+03");
        assert_eq!(f("%q", &[Value::str("a\"b")]), "\"a\\\"b\"");
        assert_eq!(f("%x", &[Value::Int(255)]), "ff");
        assert_eq!(f("%x", &[Value::str("hi")]), "6869");
        assert_eq!(f("%5.1f|%-5d|%05d", &[Value::Float(2.25), Value::Int(7), Value::Int(-3)]), "  2.2|7    |-0003");
        assert_eq!(f("%+d %+.1f", &[Value::Int(5), Value::Float(-0.5)]), "+5 -0.5");
        assert_eq!(f("%d", &[Value::Float(3.0)]), "%!d(float64=3)");
        assert_eq!(f("%s", &[Value::Int(3)]), "%!s(int=3)");
        assert_eq!(f("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(f("%d", &[Value::Int(1), Value::str("x")]), "1%!(EXTRA string=x)");
        assert_eq!(f("%v", &[Value::Float(f64::INFINITY)]), "+Inf");
        assert_eq!(f("%.3s", &[Value::str("abcdef")]), "abc");
        assert_eq!(f("%t", &[Value::Bool(true)]), "true");
    }

    #[test]
    fn sprint_spacing() {
        // fmt.Sprint adds spaces only between two non-string operands.
        assert_eq!(sprint(&[Value::Int(1), Value::Int(2), Value::str("a"), Value::Int(3)]), "1 2a3");
        assert_eq!(sprintln(&[Value::str("a"), Value::Int(1)]), "a 1\n");
    }

    #[test]
    fn display_maps() {
        let m = Labels::from_pairs([("b", "2"), ("a", "1")]);
        assert_eq!(Value::StrMap(Rc::new(m)).display(), "map[a:1 b:2]");
    }
}
