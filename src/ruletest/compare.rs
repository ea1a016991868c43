//! Comparing what a test expects with what the rules produced, and showing
//! the difference as a diff: `-` expected but missing, `+` produced but not
//! expected, two spaces for items that match.
//!
//! Alerts compare by labels and annotations exactly and in any order, as
//! promtool does; samples compare by labels exactly and by value within
//! promqltest's relative tolerance ([`almost_equal`]), so rounding
//! differences between engines do not fail a test.

use std::fmt::Write as _;

use crate::model::Labels;
use crate::promql::format_float;
use crate::promql::series_notation::almost_equal;

/// One firing alert: its labels (with `alertname`) and expanded annotations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AlertItem {
    /// Labels, `alertname` included.
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
}

fn alert_lines(out: &mut String, mark: char, a: &AlertItem) {
    let _ = writeln!(out, "{mark} labels:      {}", a.labels);
    let _ = writeln!(out, "  annotations: {}", a.annotations);
}

/// `None` when `got` holds exactly the alerts of `exp` (in any order);
/// otherwise a diff of the two lists.
pub fn diff_alerts(mut exp: Vec<AlertItem>, mut got: Vec<AlertItem>) -> Option<String> {
    exp.sort();
    got.sort();
    if exp == got {
        return None;
    }
    let mut out = format!("expected {} firing alert(s), got {}:\n", exp.len(), got.len());
    let (mut i, mut j) = (0, 0);
    while i < exp.len() || j < got.len() {
        match (exp.get(i), got.get(j)) {
            // Same labels: shown once when identical, else expected then produced.
            (Some(e), Some(g)) if e.labels == g.labels => {
                if e == g {
                    alert_lines(&mut out, ' ', e);
                } else {
                    alert_lines(&mut out, '-', e);
                    alert_lines(&mut out, '+', g);
                }
                i += 1;
                j += 1;
            }
            (Some(e), Some(g)) if e.labels < g.labels => {
                alert_lines(&mut out, '-', e);
                i += 1;
            }
            (_, Some(g)) => {
                alert_lines(&mut out, '+', g);
                j += 1;
            }
            (Some(e), None) => {
                alert_lines(&mut out, '-', e);
                i += 1;
            }
            (None, None) => break,
        }
    }
    Some(out)
}

/// `None` when `got` holds the samples of `exp` (same label sets, values
/// within tolerance, any order); otherwise a diff by label set.
pub fn diff_samples(mut exp: Vec<(Labels, f64)>, mut got: Vec<(Labels, f64)>) -> Option<String> {
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let same = exp.len() == got.len() && exp.iter().zip(&got).all(|(e, g)| e.0 == g.0 && almost_equal(e.1, g.1));
    if same {
        return None;
    }
    let mut out = format!("expected {} sample(s), got {}:\n", exp.len(), got.len());
    let (mut i, mut j) = (0, 0);
    while i < exp.len() || j < got.len() {
        match (exp.get(i), got.get(j)) {
            (Some(e), Some(g)) if e.0 == g.0 => {
                if almost_equal(e.1, g.1) {
                    let _ = writeln!(out, "  {} {}", e.0, format_float(g.1));
                } else {
                    let _ = writeln!(out, "- {} {}", e.0, format_float(e.1));
                    let _ = writeln!(out, "+ {} {}", g.0, format_float(g.1));
                }
                i += 1;
                j += 1;
            }
            (Some(e), Some(g)) if e.0 < g.0 => {
                let _ = writeln!(out, "- {} {}", e.0, format_float(e.1));
                i += 1;
            }
            (Some(_), Some(g)) | (None, Some(g)) => {
                let _ = writeln!(out, "+ {} {}", g.0, format_float(g.1));
                j += 1;
            }
            (Some(e), None) => {
                let _ = writeln!(out, "- {} {}", e.0, format_float(e.1));
                i += 1;
            }
            (None, None) => break,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(job: &str, summary: &str) -> AlertItem {
        AlertItem {
            labels: Labels::from_pairs([("alertname", "Down"), ("job", job)]),
            annotations: Labels::from_pairs([("summary", summary)]),
        }
    }

    #[test]
    fn alerts_in_any_order_match() {
        assert_eq!(diff_alerts(vec![alert("a", "x"), alert("b", "y")], vec![alert("b", "y"), alert("a", "x")]), None);
    }

    #[test]
    fn alert_diff_marks_missing_and_unexpected() {
        let d = diff_alerts(vec![alert("a", "x"), alert("b", "y")], vec![alert("a", "x"), alert("b", "z")]).unwrap();
        assert!(d.starts_with("expected 2 firing alert(s), got 2:\n"), "{d}");
        assert!(d.contains("  labels:      {alertname=\"Down\", job=\"a\"}"), "{d}");
        assert!(
            d.contains("- labels:      {alertname=\"Down\", job=\"b\"}\n  annotations: {summary=\"y\"}\n+ labels:"),
            "{d}"
        );
        assert!(d.contains("+ labels:      {alertname=\"Down\", job=\"b\"}\n  annotations: {summary=\"z\"}"), "{d}");
        let none = diff_alerts(vec![alert("a", "x")], vec![]).unwrap();
        assert!(none.starts_with("expected 1 firing alert(s), got 0"), "{none}");
    }

    #[test]
    fn samples_with_tolerance() {
        let l = Labels::from_pairs([("__name__", "m")]);
        assert_eq!(diff_samples(vec![(l.clone(), 0.1 + 0.2)], vec![(l.clone(), 0.3)]), None);
        let d = diff_samples(vec![(l.clone(), 1.0)], vec![(l.clone(), 2.0)]).unwrap();
        assert!(d.contains("- m 1\n+ m 2\n"), "{d}");
        let d = diff_samples(vec![], vec![(l, f64::NAN)]).unwrap();
        assert!(d.contains("+ m NaN"), "{d}");
    }
}
