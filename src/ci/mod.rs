//! promlite in CI: backtesting rules over stored data (`promlite rules
//! backtest`) and gating a load test on the alerts it raised (`promlite gate`).
//!
//! - [`timeline`]: alert timelines (pending, firing, resolved, peak) recorded from group evaluations.
//! - [`report`]: the table, JSON, JUnit and human-summary renderings of those timelines.
//! - [`overlay`]: read a TSDB while writing rule results to memory only.
//! - [`backtest`]: evaluates rule files over a TSDB directory's past data.
//! - [`gate`]: runs the server for a load test and decides pass or fail.

pub mod backtest;
pub mod gate;
pub mod overlay;
pub mod report;
pub mod timeline;

use chrono::{DateTime, SecondsFormat, Utc};

/// Parses a time given as RFC3339 (`2026-12-06T13:00:00Z`) or Unix seconds
/// (`1733490000`, `1733490000.5`) into milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && secs.abs() < 1e13 {
            return Ok((secs * 1000.0).round() as i64);
        }
        return Err(format!("invalid time {s:?}: out of range"));
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_millis())
        .map_err(|e| format!("invalid time {s:?}: {e} (use RFC3339 like 2026-12-06T13:00:00Z or Unix seconds)"))
}

/// Formats milliseconds as RFC3339 in UTC (`2026-12-06T13:00:00Z`, with
/// milliseconds only when they are not zero).
pub fn format_time(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(d) if ms % 1000 == 0 => d.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(d) => d.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{ms}ms"),
    }
}

/// Formats a duration in milliseconds the way Prometheus prints durations (`1h2m3s`, `500ms`, `0s`).
pub fn format_duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, len) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_both_ways_and_format_back() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1700000000.25").unwrap(), 1_700_000_000_250);
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00").unwrap(), 1_700_000_000_000);
        assert!(parse_time("yesterday").unwrap_err().contains("yesterday"));
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(1_700_000_000_250), "2023-11-14T22:13:20.250Z");
        assert_eq!(format_duration(3_723_000), "1h2m3s");
        assert_eq!(format_duration(500), "500ms");
        assert_eq!(format_duration(0), "0s");
    }
}
