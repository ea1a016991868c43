//! Label matchers: `=`, `!=`, `=~`, `!~` with Prometheus 3's regex semantics.

use std::fmt;

use regex::Regex;

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored)
    RegexMatch,
    /// `!~` (fully anchored)
    RegexNoMatch,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        })
    }
}

/// A regex that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {reason}")]
pub struct MatcherError {
    /// The pattern as written.
    pub pattern: String,
    /// What the regex compiler said.
    pub reason: String,
}

/// Matches one label of a series. A missing label matches as the empty string.
#[derive(Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or pattern as written.
    pub value: String,
    /// Compiled `^(?s:value)$` for the regex ops.
    regex: Option<Regex>,
}

/// Compiles `pattern` as Prometheus 3 does: fully anchored, `.` matching newline,
/// and Go's ASCII-only `\d`, `\w`, `\s`, `\b` (Rust's are Unicode by default).
pub fn compile_anchored(pattern: &str) -> Result<Regex, MatcherError> {
    let src = format!("^(?s:{})$", ascii_perl_classes(pattern));
    Regex::new(&src).map_err(|e| MatcherError { pattern: pattern.to_string(), reason: e.to_string() })
}

/// Rewrites `\d \D \w \W \s \S \b \B` outside character classes to their
/// ASCII forms, and inside classes `\d` etc. to ASCII ranges, so they mean what
/// Go's RE2 means.
fn ascii_perl_classes(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(&n) = chars.peek() else {
                out.push(c);
                break;
            };
            chars.next();
            match (n, in_class) {
                ('d' | 'D' | 'w' | 'W' | 's' | 'S' | 'b' | 'B', false) => {
                    out.push_str("(?-u:\\");
                    out.push(n);
                    out.push(')');
                }
                ('d', true) => out.push_str("0-9"),
                ('w', true) => out.push_str("0-9A-Za-z_"),
                ('s', true) => out.push_str("\\t\\n\\f\\r "),
                _ => {
                    out.push('\\');
                    out.push(n);
                }
            }
            continue;
        }
        if c == '[' && !in_class {
            in_class = true;
            out.push(c);
            // A ']' right after '[' or '[^' is a literal.
            if chars.peek() == Some(&'^') {
                out.push('^');
                chars.next();
            }
            if chars.peek() == Some(&']') {
                out.push_str("\\]");
                chars.next();
            }
            continue;
        }
        if c == ']' && in_class {
            in_class = false;
        }
        out.push(c);
    }
    out
}

impl Matcher {
    /// A matcher; regex patterns are compiled here.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, MatcherError> {
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(compile_anchored(&value)?),
            _ => None,
        };
        Ok(Matcher { name: name.into(), op, value, regex })
    }

    /// An `=` matcher (never fails).
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), op: MatchOp::Equal, value: value.into(), regex: None }
    }

    /// Whether a label value (empty when absent) satisfies this matcher.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == v,
            MatchOp::NotEqual => self.value != v,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher accepts the empty string, i.e. series lacking the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For a regex that is a plain alternation of literals (`a|b|c`), those
    /// literals, so an index can look them up instead of scanning values.
    pub fn set_matches(&self) -> Option<Vec<String>> {
        if self.op != MatchOp::RegexMatch {
            return None;
        }
        let special = |c: char| "\\.+*?()[]{}^$".contains(c);
        if self.value.chars().any(special) {
            return None;
        }
        Some(self.value.split('|').map(str::to_string).collect())
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.op)?;
        crate::model::labels::write_quoted(f, &self.value)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

/// Whether a label set satisfies every matcher.
pub fn matches_all(labels: &crate::model::Labels, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_fully_anchored_and_dot_matches_newline() {
        let m = Matcher::new(MatchOp::RegexMatch, "a", "fo.").unwrap();
        assert!(m.matches("foo"));
        assert!(m.matches("fo\n"));
        assert!(!m.matches("xfoo"));
        assert!(!m.matches("fooo"));
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        let m = Matcher::new(MatchOp::RegexMatch, "a", r"\d+").unwrap();
        assert!(m.matches("123"));
        assert!(!m.matches("٣"));
        let c = Matcher::new(MatchOp::RegexMatch, "a", r"[\d.]+").unwrap();
        assert!(c.matches("1.5"));
        assert!(!c.matches("٣"));
    }

    #[test]
    fn bad_regex_is_an_error_not_a_panic() {
        let e = Matcher::new(MatchOp::RegexMatch, "a", "(").unwrap_err();
        assert_eq!(e.pattern, "(");
    }

    #[test]
    fn negative_matchers_and_empty() {
        let m = Matcher::new(MatchOp::NotEqual, "a", "x").unwrap();
        assert!(m.matches_empty());
        let r = Matcher::new(MatchOp::RegexNoMatch, "a", "x|y").unwrap();
        assert!(!r.matches("y") && r.matches("z"));
        assert_eq!(
            Matcher::new(MatchOp::RegexMatch, "a", "x|y").unwrap().set_matches(),
            Some(vec!["x".into(), "y".into()])
        );
    }
}
