//! Turning one decoded series into a valid [`Labels`], or saying why not.
//!
//! Label names follow Prometheus 3's default (UTF-8) validation scheme, which
//! its remote_write handler always applies (`ls.IsValid(model.UTF8Validation)`
//! in `storage/remote/write_handler.go`): a name is valid when it is
//! non-empty UTF-8, a value when it is UTF-8, and the series must have a
//! non-empty `__name__`. Legacy names (`[a-zA-Z_][a-zA-Z0-9_]*`) are a subset,
//! so every Prometheus 2 sender passes. Duplicate names reject the series.
//! Labels with empty values are dropped, since an empty value means "absent".

use std::fmt::Write as _;

use super::decode::SeriesView;
use super::limits::{LimitName, Limits};
use crate::model::labels::write_quoted;
use crate::model::{Labels, METRIC_NAME};

/// Why a series was rejected. The sender gets a 400 naming it; the rest of
/// the request is still stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSeries {
    /// No `__name__` label, or an empty one.
    #[error("invalid metric name or labels, got {labels}: missing metric name")]
    MissingMetricName {
        /// The series as sent.
        labels: String,
    },
    /// An empty or non-UTF-8 label name.
    #[error("invalid metric name or labels, got {labels}: invalid label name")]
    InvalidLabelName {
        /// The series as sent (invalid bytes shown as U+FFFD).
        labels: String,
    },
    /// A non-UTF-8 label value.
    #[error("invalid metric name or labels, got {labels}: label {name:?} has an invalid UTF-8 value")]
    InvalidLabelValue {
        /// The series as sent.
        labels: String,
        /// The label whose value is bad.
        name: String,
    },
    /// The same label name twice.
    #[error("invalid labels for series, labels {labels}, duplicated label {name}")]
    DuplicateLabel {
        /// The series as sent.
        labels: String,
        /// The repeated name.
        name: String,
    },
    /// More labels than [`Limits::labels_per_series`].
    #[error("series {labels} has {count} labels, more than the limit of {limit}")]
    TooManyLabels {
        /// The series as sent.
        labels: String,
        /// Labels it has.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A name longer than [`Limits::label_name_bytes`].
    #[error("series {labels} has a label name of {len} bytes, more than the limit of {limit}")]
    LabelNameTooLong {
        /// The series as sent.
        labels: String,
        /// The name's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A value longer than [`Limits::label_value_bytes`].
    #[error("series {labels} has a value of {len} bytes for label {name:?}, more than the limit of {limit}")]
    LabelValueTooLong {
        /// The series as sent.
        labels: String,
        /// The label.
        name: String,
        /// The value's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

impl InvalidSeries {
    /// The `reason` label of `promlite_rejected_samples_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            InvalidSeries::MissingMetricName { .. } => "missing_metric_name",
            InvalidSeries::InvalidLabelName { .. } => "invalid_label_name",
            InvalidSeries::InvalidLabelValue { .. } => "invalid_label_value",
            InvalidSeries::DuplicateLabel { .. } => "duplicate_label_name",
            InvalidSeries::TooManyLabels { .. } => "limit_labels_per_series",
            InvalidSeries::LabelNameTooLong { .. } => "limit_label_name_bytes",
            InvalidSeries::LabelValueTooLong { .. } => "limit_label_value_bytes",
        }
    }

    /// The limit that tripped, if this is a limit.
    pub fn limit(&self) -> Option<LimitName> {
        match self {
            InvalidSeries::TooManyLabels { .. } => Some(LimitName::LabelsPerSeries),
            InvalidSeries::LabelNameTooLong { .. } => Some(LimitName::LabelNameBytes),
            InvalidSeries::LabelValueTooLong { .. } => Some(LimitName::LabelValueBytes),
            _ => None,
        }
    }
}

/// At most this many bytes of a rejected series are quoted in an error.
const MAX_QUOTED: usize = 512;

/// Renders raw pairs like Prometheus's `Labels.String()`, lossily, capped.
fn describe(view: &SeriesView<'_>) -> String {
    let mut s = String::from("{");
    for (i, (n, v)) in view.labels().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&String::from_utf8_lossy(n));
        s.push('=');
        // Writing into a String cannot fail.
        let _ = write_quoted(&mut s, &String::from_utf8_lossy(v));
        if s.len() > MAX_QUOTED {
            let mut cut = MAX_QUOTED;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("...");
            return s;
        }
    }
    s.push('}');
    s
}

/// A reusable buffer for [`series_labels`], one per request.
#[derive(Debug, Default)]
pub struct Scratch<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl Scratch<'_> {
    /// An empty buffer.
    pub fn new() -> Self {
        Scratch { pairs: Vec::new() }
    }
}

/// Validates a series' labels against Prometheus's rules and `limits`, and
/// builds its [`Labels`] (sorted, empty values dropped).
pub fn series_labels<'a>(
    view: &SeriesView<'a>,
    limits: &Limits,
    scratch: &mut Scratch<'a>,
) -> Result<Labels, InvalidSeries> {
    let pairs = &mut scratch.pairs;
    pairs.clear();
    let mut sorted = true;
    for (n, v) in view.labels() {
        let name = match std::str::from_utf8(n) {
            Ok(s) if !s.is_empty() => s,
            _ => return Err(InvalidSeries::InvalidLabelName { labels: describe(view) }),
        };
        let Ok(value) = std::str::from_utf8(v) else {
            return Err(InvalidSeries::InvalidLabelValue { labels: describe(view), name: name.to_string() });
        };
        if name.len() > limits.label_name_bytes {
            return Err(InvalidSeries::LabelNameTooLong {
                labels: describe(view),
                len: name.len(),
                limit: limits.label_name_bytes,
            });
        }
        if value.len() > limits.label_value_bytes {
            return Err(InvalidSeries::LabelValueTooLong {
                labels: describe(view),
                name: name.to_string(),
                len: value.len(),
                limit: limits.label_value_bytes,
            });
        }
        if let Some(&(prev, _)) = pairs.last() {
            sorted &= prev < name;
        }
        pairs.push((name, value));
    }
    if !sorted {
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(InvalidSeries::DuplicateLabel { labels: describe(view), name: w[0].0.to_string() });
        }
    }
    // Strictly increasing names when `sorted` held, so no duplicates there.
    pairs.retain(|(_, v)| !v.is_empty());
    if pairs.len() > limits.labels_per_series {
        return Err(InvalidSeries::TooManyLabels {
            labels: describe(view),
            count: pairs.len(),
            limit: limits.labels_per_series,
        });
    }
    if !pairs.iter().any(|(n, _)| *n == METRIC_NAME) {
        return Err(InvalidSeries::MissingMetricName { labels: describe(view) });
    }
    // The pairs are sorted, unique and non-empty, so this cannot fail; a
    // failure would be a bug, reported as an invalid series rather than a panic.
    Labels::from_sorted_pairs(pairs).map_err(|_| InvalidSeries::InvalidLabelName { labels: describe(view) })
}

/// Formats `labels` for error messages (used by the write path).
pub(crate) fn display(labels: &Labels) -> String {
    let mut s = String::new();
    let _ = write!(s, "{labels}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::DecodedRequest;
    fn check(pairs: &[(&[u8], &[u8])], limits: &Limits) -> Result<Labels, InvalidSeries> {
        // Build the protobuf by hand so invalid UTF-8 can be sent.
        let mut ts = Vec::new();
        for (n, v) in pairs {
            let mut l = Vec::new();
            prost::encoding::bytes::encode(1, &n.to_vec(), &mut l);
            prost::encoding::bytes::encode(2, &v.to_vec(), &mut l);
            prost::encoding::bytes::encode(1, &l, &mut ts);
        }
        let mut raw = Vec::new();
        prost::encoding::bytes::encode(1, &ts, &mut raw);
        let mut d = DecodedRequest::new();
        d.decode_uncompressed(&raw, 10).unwrap();
        let view = d.series().next().unwrap();
        let mut scratch = Scratch::new();
        series_labels(&view, limits, &mut scratch)
    }

    #[test]
    fn sorts_and_drops_empty_values() {
        let l = check(&[(b"job", b"api"), (b"__name__", b"up"), (b"zone", b"")], &Limits::default()).unwrap();
        assert_eq!(l, crate::labels!("__name__" => "up", "job" => "api"));
    }

    #[test]
    fn utf8_names_are_valid_like_prometheus_3() {
        let l =
            check(&[(b"__name__", "ĉu.metriko".as_bytes()), ("naĉo.x".as_bytes(), b"1")], &Limits::default()).unwrap();
        assert_eq!(l.get("naĉo.x"), Some("1"));
    }

    #[test]
    fn rejections_name_their_reason() {
        let lim = Limits::default();
        type Case<'a> = (Vec<(&'a [u8], &'a [u8])>, &'a str);
        let cases: Vec<Case> = vec![
            (vec![(b"job", b"x")], "missing_metric_name"),
            (vec![(b"__name__", b"")], "missing_metric_name"),
            (vec![(b"__name__", b"a"), (b"", b"x")], "invalid_label_name"),
            (vec![(b"__name__", b"a"), (b"b\xff", b"x")], "invalid_label_name"),
            (vec![(b"__name__", b"a"), (b"b", b"\xc3\x28")], "invalid_label_value"),
            (vec![(b"__name__", b"a"), (b"b", b"1"), (b"b", b"2")], "duplicate_label_name"),
            (vec![(b"b", b"1"), (b"__name__", b"a"), (b"b", b"")], "duplicate_label_name"),
        ];
        for (pairs, reason) in cases {
            let e = check(&pairs, &lim).unwrap_err();
            assert_eq!(e.reason(), reason, "{pairs:?}: {e}");
            assert_eq!(e.limit(), None);
        }
    }

    #[test]
    fn limits_trip() {
        let lim = Limits { labels_per_series: 2, label_name_bytes: 8, label_value_bytes: 4, ..Limits::default() };
        let e = check(&[(b"__name__", b"a"), (b"b", b"1"), (b"c", b"1")], &lim).unwrap_err();
        assert_eq!(e.limit(), Some(LimitName::LabelsPerSeries));
        // Empty values do not count.
        check(&[(b"__name__", b"a"), (b"b", b"1"), (b"c", b"")], &lim).unwrap();
        let e = check(&[(b"__name__", b"a"), (b"verylongname", b"1")], &lim).unwrap_err();
        assert_eq!(e.limit(), Some(LimitName::LabelNameBytes));
        let e = check(&[(b"__name__", b"abcde")], &lim).unwrap_err();
        assert_eq!(e.limit(), Some(LimitName::LabelValueBytes));
        assert!(e.to_string().contains("more than the limit of 4"), "{e}");
    }

    #[test]
    fn error_text_quotes_the_series_boundedly() {
        let long = vec![b'x'; 5000];
        let e = check(&[(b"job", &long)], &Limits { label_value_bytes: 10_000, ..Limits::default() }).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("invalid metric name or labels, got {job=\"xxx"), "{s}");
        assert!(s.len() < 700);
    }
}
