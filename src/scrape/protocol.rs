//! Scrape protocol names (`scrape_protocols`) and the `Accept` header built
//! from them, as Prometheus negotiates: OpenMetrics preferred, the classic
//! text format as fallback.

/// The protocol names Prometheus accepts in `scrape_protocols`.
pub const NAMES: [&str; 5] =
    ["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0", "PrometheusText0.0.4", "PrometheusProto"];

/// Prometheus 3's default order (without native histograms).
pub const DEFAULT: [&str; 4] =
    ["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0", "PrometheusText0.0.4"];

/// Whether `name` is a protocol name Prometheus knows.
pub fn is_known(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The media type promlite asks for under a protocol name; `None` for the
/// protobuf format, which promlite does not parse and so never asks for.
fn media_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "OpenMetricsText1.0.0" => "application/openmetrics-text;version=1.0.0",
        "OpenMetricsText0.0.1" => "application/openmetrics-text;version=0.0.1",
        "PrometheusText1.0.0" => "text/plain;version=1.0.0",
        "PrometheusText0.0.4" => "text/plain;version=0.0.4",
        _ => return None,
    })
}

/// The `Accept` header for `protocols` in preference order, with descending
/// q-values starting at `0.6` and a final `*/*`, as Prometheus's
/// `acceptHeader` builds it.
pub fn accept_header(protocols: &[impl AsRef<str>]) -> String {
    let mut parts = Vec::new();
    let mut weight = NAMES.len() + 1;
    for p in protocols {
        if let Some(mt) = media_type(p.as_ref()) {
            parts.push(format!("{mt};q=0.{weight}"));
            weight = weight.saturating_sub(1).max(1);
        }
    }
    parts.push(format!("*/*;q=0.{weight}"));
    parts.join(",")
}

/// Which parser a response's `Content-Type` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format (0.0.4 / 1.0.0).
    PromText,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

/// Chooses the parser for a `Content-Type`; `None` for unknown types
/// (the scrape then fails unless a fallback protocol is configured).
pub fn format_for_content_type(ct: &str) -> Option<Format> {
    let mt = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mt.as_str() {
        "application/openmetrics-text" => Some(Format::OpenMetrics),
        "text/plain" | "" => Some(Format::PromText),
        _ => None,
    }
}

/// The parser a fallback protocol name selects.
pub fn format_for_protocol(name: &str) -> Option<Format> {
    match name {
        "OpenMetricsText1.0.0" | "OpenMetricsText0.0.1" => Some(Format::OpenMetrics),
        "PrometheusText1.0.0" | "PrometheusText0.0.4" => Some(Format::PromText),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_accept_prefers_openmetrics() {
        assert_eq!(
            accept_header(&DEFAULT),
            "application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,\
             text/plain;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
    }

    #[test]
    fn content_type_selects_parser() {
        assert_eq!(
            format_for_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Some(Format::OpenMetrics)
        );
        assert_eq!(format_for_content_type("text/plain; version=0.0.4"), Some(Format::PromText));
        assert_eq!(format_for_content_type("application/json"), None);
    }
}
