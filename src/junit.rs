//! JUnit XML reports, the format CI systems (GitLab, Jenkins, GitHub test
//! reporters) display as test results. Used by `promlite test rules --junit`
//! and by `promlite gate --report-junit`.
//!
//! The shape written is the common subset every consumer reads:
//! `<testsuites>` holding `<testsuite name tests failures errors>` holding
//! `<testcase name classname time>` with an optional `<failure message>` or
//! `<error message>` whose text is the full explanation.

use std::fmt::Write as _;

/// How one test case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The case passed.
    Passed,
    /// The case ran and its expectation did not hold: a one-line message and the details.
    Failed {
        /// Short reason, shown in the CI summary.
        message: String,
        /// Full text (diff, timeline), shown when the case is opened.
        details: String,
    },
    /// The case could not run (bad input, evaluation error).
    Error {
        /// Short reason.
        message: String,
        /// Full text.
        details: String,
    },
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The case's name.
    pub name: String,
    /// The class it belongs to (for rule tests, the test file).
    pub classname: String,
    /// Seconds it took; 0 when not measured.
    pub time_seconds: f64,
    /// How it ended.
    pub outcome: Outcome,
}

/// One `<testsuite>`: a named list of cases.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestSuite {
    /// The suite's name.
    pub name: String,
    /// Its cases, in the order they ran.
    pub cases: Vec<TestCase>,
}

impl TestSuite {
    /// Creates an empty suite.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), cases: Vec::new() }
    }

    fn count(&self, pick: fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| pick(&c.outcome)).count()
    }

    /// Number of failed cases.
    pub fn failures(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }

    /// Number of cases that could not run.
    pub fn errors(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Error { .. }))
    }
}

/// Renders suites as a JUnit XML document.
pub fn render(suites: &[TestSuite]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(TestSuite::failures).sum();
    let errors: usize = suites.iter().map(TestSuite::errors).sum();
    let _ = writeln!(out, "<testsuites tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">");
    for suite in suites {
        let time: f64 = suite.cases.iter().map(|c| c.time_seconds).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{time:.3}\">",
            escape(&suite.name),
            suite.cases.len(),
            suite.failures(),
            suite.errors()
        );
        for case in &suite.cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                escape(&case.name),
                escape(&case.classname),
                case.time_seconds
            );
            match &case.outcome {
                Outcome::Passed => out.push_str("/>\n"),
                Outcome::Failed { message, details } => push_problem(&mut out, "failure", message, details),
                Outcome::Error { message, details } => push_problem(&mut out, "error", message, details),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn push_problem(out: &mut String, tag: &str, message: &str, details: &str) {
    let _ =
        write!(out, ">\n      <{tag} message=\"{}\">{}</{tag}>\n    </testcase>\n", escape(message), escape(details));
}

/// Escapes text for XML attributes and element content. Characters XML 1.0
/// cannot hold at all (most C0 controls) become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, outcome: Outcome) -> TestCase {
        TestCase { name: name.into(), classname: "rules.yml".into(), time_seconds: 0.25, outcome }
    }

    #[test]
    fn counts_and_escapes() {
        let mut suite = TestSuite::new("promlite <rules>");
        suite.cases.push(case("ok", Outcome::Passed));
        suite.cases.push(case(
            "HighErrorRate & co",
            Outcome::Failed { message: "alert \"x\" missing".into(), details: "exp: a<b\n got: none".into() },
        ));
        suite.cases.push(case("broken", Outcome::Error { message: "bad\u{1}input".into(), details: String::new() }));
        let xml = render(&[suite]);
        assert!(xml.contains("<testsuites tests=\"3\" failures=\"1\" errors=\"1\">"), "{xml}");
        assert!(xml.contains("name=\"promlite &lt;rules&gt;\" tests=\"3\" failures=\"1\" errors=\"1\" time=\"0.750\""));
        assert!(xml.contains("<testcase name=\"ok\" classname=\"rules.yml\" time=\"0.250\"/>"));
        assert!(xml.contains("<failure message=\"alert &quot;x&quot; missing\">exp: a&lt;b\n got: none</failure>"));
        assert!(xml.contains("<error message=\"bad\u{FFFD}input\"></error>"));
        assert!(xml.ends_with("</testsuites>\n"));
    }
}
