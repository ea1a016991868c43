//! The alert as sent to Alertmanager, its API v2 JSON encoding, and the pure
//! steps applied before queueing (external labels, relabelling) and by the rule
//! engine when it decides what to send (`endsAt`, resend, generator URL).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::model::{Labels, LabelsBuilder};

/// An alert in the shape Alertmanager's `POST /api/v2/alerts` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels (after external labels and relabelling, once queued).
    pub labels: Labels,
    /// Annotations (rendered templates).
    pub annotations: Labels,
    /// When the alert started firing, milliseconds since the epoch.
    pub starts_at_ms: Option<i64>,
    /// When it resolved, or until when a firing alert is valid (see [`valid_until_ms`]).
    pub ends_at_ms: Option<i64>,
    /// Link back to the expression (see [`generator_url`]).
    pub generator_url: String,
}

/// A relabelling step: returns the new labels, or `None` to drop the alert.
/// The relabel engine lives elsewhere; this is the seam it plugs into.
pub type AlertRelabel = Arc<dyn Fn(&Labels) -> Option<Labels> + Send + Sync>;

#[derive(Serialize)]
struct WireAlert<'a> {
    labels: BTreeMap<&'a str, &'a str>,
    annotations: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "startsAt", skip_serializing_if = "Option::is_none")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt", skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", skip_serializing_if = "str::is_empty")]
    generator_url: &'a str,
}

/// RFC 3339 with milliseconds in UTC, as Alertmanager's `strfmt.DateTime` writes it.
pub fn rfc3339_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Encodes a batch as the JSON array `POST /api/v2/alerts` expects.
pub fn encode_batch(alerts: &[Arc<Alert>]) -> Vec<u8> {
    let wire: Vec<WireAlert<'_>> = alerts
        .iter()
        .map(|a| WireAlert {
            labels: a.labels.iter().map(|l| (l.name, l.value)).collect(),
            annotations: a.annotations.iter().map(|l| (l.name, l.value)).collect(),
            starts_at: a.starts_at_ms.map(rfc3339_ms),
            ends_at: a.ends_at_ms.map(rfc3339_ms),
            generator_url: &a.generator_url,
        })
        .collect();
    // Serializing string maps and strings cannot fail.
    serde_json::to_vec(&wire).unwrap_or_else(|_| b"[]".to_vec())
}

/// Adds external labels the alert does not already have, then relabels.
/// `None` when relabelling drops the alert or leaves no labels.
/// Follows Prometheus `notifier/manager.go` (`relabelAlerts`): alert labels win.
pub fn prepare_labels(labels: &Labels, external: &Labels, relabel: Option<&AlertRelabel>) -> Option<Labels> {
    let with_ext = if external.is_empty() {
        labels.clone()
    } else {
        let mut b = LabelsBuilder::from_labels(labels);
        for l in external.iter() {
            if labels.get(l.name).is_none() {
                b.set(l.name, l.value);
            }
        }
        b.build()
    };
    let out = match relabel {
        Some(f) => f(&with_ext)?,
        None => with_ext,
    };
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// How long a firing alert stays valid after a send: four resend periods,
/// where a period is the larger of the resend delay and the evaluation
/// interval, so two missed evaluations or sends do not resolve it.
/// Prometheus `rules/alerting.go` (`sendAlerts`: `ValidUntil = ts + 4*max(resendDelay, interval)`).
pub fn valid_until_ms(sent_at_ms: i64, resend_delay: Duration, eval_interval: Duration) -> i64 {
    let delta = resend_delay.max(eval_interval);
    sent_at_ms.saturating_add(i64::try_from(delta.as_millis().saturating_mul(4)).unwrap_or(i64::MAX))
}

/// The `endsAt` to send: the resolve time for a resolved alert, else
/// [`valid_until_ms`] from this send. Prometheus `rules/manager.go` (`SendAlerts`).
pub fn ends_at_ms(
    resolved_at_ms: Option<i64>,
    sent_at_ms: i64,
    resend_delay: Duration,
    eval_interval: Duration,
) -> i64 {
    resolved_at_ms.unwrap_or_else(|| valid_until_ms(sent_at_ms, resend_delay, eval_interval))
}

/// Whether an active (firing or resolved) alert must be sent at `now_ms`:
/// never while pending; at once when it resolved after the last send;
/// otherwise when the resend delay has passed. Prometheus `rules/alerting.go` (`needsSending`).
pub fn needs_sending(
    pending: bool,
    resolved_at_ms: Option<i64>,
    last_sent_at_ms: Option<i64>,
    now_ms: i64,
    resend_delay: Duration,
) -> bool {
    if pending {
        return false;
    }
    let last = last_sent_at_ms.unwrap_or(i64::MIN);
    if resolved_at_ms.is_some_and(|r| r > last) {
        return true;
    }
    let delay = i64::try_from(resend_delay.as_millis()).unwrap_or(i64::MAX);
    last.saturating_add(delay) < now_ms
}

/// `externalURL + "/graph?g0.expr=" + QueryEscape(expr) + "&g0.tab=1"`, as
/// Prometheus `rules/manager.go` builds `generatorURL` (`strutil.TableLinkForExpression`).
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!("{}/graph?g0.expr={}&g0.tab=1", external_url.trim_end_matches('/'), crate::template::query_escape(expr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    #[test]
    fn external_labels_do_not_override() {
        let a = labels!("alertname" => "X", "cluster" => "mine");
        let ext = labels!("cluster" => "edge", "region" => "eu");
        let got = prepare_labels(&a, &ext, None).unwrap();
        assert_eq!(got, labels!("alertname" => "X", "cluster" => "mine", "region" => "eu"));
    }

    #[test]
    fn relabel_can_drop_or_empty() {
        let a = labels!("alertname" => "X", "severity" => "info");
        let drop_info: AlertRelabel =
            Arc::new(|l: &Labels| if l.get("severity") == Some("info") { None } else { Some(l.clone()) });
        assert_eq!(prepare_labels(&a, &Labels::empty(), Some(&drop_info)), None);
        let empty: AlertRelabel = Arc::new(|_: &Labels| Some(Labels::empty()));
        assert_eq!(prepare_labels(&a, &Labels::empty(), Some(&empty)), None);
    }

    #[test]
    fn ends_at_formula() {
        let m = Duration::from_secs(60);
        assert_eq!(valid_until_ms(1_000, m, Duration::from_secs(15)), 1_000 + 240_000);
        assert_eq!(valid_until_ms(0, m, Duration::from_secs(120)), 480_000);
        assert_eq!(ends_at_ms(Some(5), 1_000, m, m), 5);
    }

    #[test]
    fn resend_rules() {
        let m = Duration::from_secs(60);
        assert!(!needs_sending(true, None, None, 0, m));
        assert!(needs_sending(false, None, None, 0, m));
        assert!(!needs_sending(false, None, Some(10_000), 60_000, m));
        assert!(needs_sending(false, None, Some(10_000), 70_001, m));
        assert!(needs_sending(false, Some(20_000), Some(10_000), 20_000, m));
    }

    #[test]
    fn json_shape() {
        let a = Arc::new(Alert {
            labels: labels!("alertname" => "X", "job" => "api"),
            annotations: labels!("summary" => "high \"latency\""),
            starts_at_ms: Some(1_600_000_000_123),
            ends_at_ms: None,
            generator_url: generator_url("http://p:9090/", "up == 0"),
        });
        let json = String::from_utf8(encode_batch(&[a])).unwrap();
        assert_eq!(
            json,
            r#"[{"labels":{"alertname":"X","job":"api"},"annotations":{"summary":"high \"latency\""},"startsAt":"2020-09-13T12:26:40.123Z","generatorURL":"http://p:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"}]"#
        );
    }
}
