//! `/api/v1/targets` and `/api/v1/metadata` in Prometheus's JSON shapes.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::manager::Manager;
use super::target::Target;
use crate::model::Labels;

fn labels_json(l: &Labels) -> Value {
    let mut m = Map::new();
    for p in l.iter() {
        m.insert(p.name.to_string(), Value::String(p.value.to_string()));
    }
    Value::Object(m)
}

fn rfc3339(t: Option<SystemTime>) -> String {
    match t {
        // Prometheus shows Go's zero time for targets not scraped yet.
        None => "0001-01-01T00:00:00Z".to_string(),
        Some(t) => chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    }
}

/// This machine's host name, for `globalUrl`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The URL as another machine would reach it: a loopback host is replaced by
/// this machine's host name (Prometheus's `getGlobalURL`).
fn global_url(url: &str, host: &str) -> String {
    for lo in ["localhost", "127.0.0.1", "[::1]"] {
        for scheme in ["http://", "https://"] {
            let prefix = format!("{scheme}{lo}");
            if let Some(rest) = url.strip_prefix(&prefix) {
                if rest.is_empty() || rest.starts_with(':') || rest.starts_with('/') {
                    return format!("{scheme}{host}{rest}");
                }
            }
        }
    }
    url.to_string()
}

fn active_json(t: &Target, host: &str) -> Value {
    let s = t.status();
    json!({
        "discoveredLabels": labels_json(&t.discovered),
        "labels": labels_json(&t.series_labels()),
        "scrapePool": t.pool,
        "scrapeUrl": t.url,
        "globalUrl": global_url(&t.url, host),
        "lastError": s.last_error,
        "lastScrape": rfc3339(s.last_scrape),
        "lastScrapeDuration": s.last_duration.as_secs_f64(),
        "health": s.health.as_str(),
        "scrapeInterval": t.interval.to_string(),
        "scrapeTimeout": t.timeout.to_string(),
    })
}

/// The `data` object of `/api/v1/targets`: `state` is `active`, `dropped`
/// or `any` (default), `pool` filters by scrape pool.
pub fn targets_data(m: &Manager, state: Option<&str>, pool: Option<&str>) -> Value {
    let host = hostname();
    let state = state.unwrap_or("any").to_ascii_lowercase();
    let (want_active, want_dropped) = match state.as_str() {
        "active" => (true, false),
        "dropped" => (false, true),
        _ => (true, true),
    };
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut counts = Map::new();
    for (name, act, drop, count) in m.targets() {
        if pool.is_some_and(|p| p != name) {
            continue;
        }
        counts.insert(name.clone(), json!(count));
        if want_active {
            active.extend(act.iter().map(|t| active_json(t, &host)));
        }
        if want_dropped {
            dropped.extend(drop.iter().map(|d| json!({"discoveredLabels": labels_json(d), "scrapePool": name})));
        }
    }
    let mut data = Map::new();
    if want_active {
        data.insert("activeTargets".into(), Value::Array(active));
    }
    if want_dropped {
        data.insert("droppedTargets".into(), Value::Array(dropped));
        data.insert("droppedTargetCounts".into(), Value::Object(counts));
    }
    Value::Object(data)
}

/// The `data` object of `/api/v1/metadata`: `metric` filters to one family,
/// `limit` caps the number of families (negative or absent: all).
pub fn metadata_data(m: &Manager, metric: Option<&str>, limit: Option<i64>) -> Value {
    let mut out = Map::new();
    for (family, entries) in m.metadata() {
        if metric.is_some_and(|f| f != family) {
            continue;
        }
        if limit.is_some_and(|l| l >= 0 && out.len() as i64 >= l) {
            break;
        }
        let list: Vec<Value> =
            entries.iter().map(|e| json!({"type": e.kind.as_str(), "help": e.help, "unit": e.unit})).collect();
        out.insert(family, Value::Array(list));
    }
    Value::Object(out)
}

#[derive(serde::Deserialize)]
struct TargetsQuery {
    state: Option<String>,
    #[serde(rename = "scrapePool")]
    scrape_pool: Option<String>,
}

#[derive(serde::Deserialize)]
struct MetadataQuery {
    metric: Option<String>,
    limit: Option<i64>,
}

/// A router serving `GET /api/v1/targets` and `GET /api/v1/metadata` with
/// the `{"status":"success","data":...}` envelope.
pub fn router(m: Arc<Manager>) -> Router {
    Router::new()
        .route(
            "/api/v1/targets",
            get(|State(m): State<Arc<Manager>>, Query(q): Query<TargetsQuery>| async move {
                Json(json!({"status": "success", "data": targets_data(&m, q.state.as_deref(), q.scrape_pool.as_deref())}))
            }),
        )
        .route(
            "/api/v1/metadata",
            get(|State(m): State<Arc<Manager>>, Query(q): Query<MetadataQuery>| async move {
                Json(json!({"status": "success", "data": metadata_data(&m, q.metric.as_deref(), q.limit)}))
            }),
        )
        .with_state(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_url_replaces_loopback_hosts() {
        assert_eq!(global_url("http://localhost:9090/metrics", "node1"), "http://node1:9090/metrics");
        assert_eq!(global_url("http://127.0.0.1:8002/metrics", "node1"), "http://node1:8002/metrics");
        assert_eq!(global_url("http://localhostx:1/m", "node1"), "http://localhostx:1/m");
        assert_eq!(global_url("http://10.0.0.1:1/m", "node1"), "http://10.0.0.1:1/m");
    }

    #[test]
    fn zero_time_for_unscraped() {
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_250);
        assert_eq!(rfc3339(Some(t)), "2023-11-14T22:13:20.250Z");
    }
}
