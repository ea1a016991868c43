//! Prometheus's HTTP query API: `/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/{name}/values`,
//! `/api/v1/status/buildinfo`, `/api/v1/status/tsdb`, `/api/v1/metadata` and
//! `/api/v1/query_exemplars`, in Prometheus's JSON shapes.
//!
//! Parameters are read alike from the query string and from a form-encoded
//! POST body, with `form_urlencoded`, so repeated `match[]` work. Errors are
//! `{"status":"error","errorType":...,"error":...}` with Prometheus's status
//! codes (web/api/v1/api.go).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::model::{Labels, Matcher};
use crate::promql::convert::parse_selector;
use crate::promql::{parse, Engine, EngineOptions, QueryError, QueryValue};
use crate::storage::Queryable;

/// Lowest and highest timestamps the API accepts (milliseconds): about
/// ±292,000 years, leaving room for offsets and windows without overflow.
const MIN_TIME: i64 = -9_223_309_901_257_974;
const MAX_TIME: i64 = 9_223_309_901_257_974;

/// The version reported by `/api/v1/status/buildinfo`: the Prometheus API
/// level promlite follows (clients such as Grafana check it).
pub const COMPAT_VERSION: &str = "3.0.0";

/// Head statistics of `/api/v1/status/tsdb`.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadStats {
    /// Number of series in the head.
    pub num_series: u64,
    /// Number of chunks in the head.
    pub chunk_count: u64,
    /// Oldest sample time (ms).
    pub min_time: i64,
    /// Newest sample time (ms).
    pub max_time: i64,
}

/// One `name`/`value` entry of the TSDB statistics lists.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StatEntry {
    /// Metric name, label name or `name=value` pair.
    pub name: String,
    /// The count or size.
    pub value: u64,
}

/// The data of `/api/v1/status/tsdb`.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TsdbStats {
    /// Head block statistics.
    pub head_stats: HeadStats,
    /// Series count per metric name (top N).
    pub series_count_by_metric_name: Vec<StatEntry>,
    /// Distinct values per label name (top N).
    pub label_value_count_by_label_name: Vec<StatEntry>,
    /// Bytes of label values per label name (top N).
    pub memory_in_bytes_by_label_name: Vec<StatEntry>,
    /// Series count per label pair (top N).
    pub series_count_by_label_value_pair: Vec<StatEntry>,
}

/// Gives TSDB statistics, limited to the top `limit` entries per list.
pub type TsdbStatsSource = Arc<dyn Fn(usize) -> TsdbStats + Send + Sync>;

/// Metadata of one metric, as `/api/v1/metadata` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricMetadata {
    /// `counter`, `gauge`, `histogram`, `summary`, `unknown`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The HELP text.
    pub help: String,
    /// The unit, often empty.
    pub unit: String,
}

/// Gives metric metadata: `(metric filter, limit per metric)` → metric name → entries.
pub type MetadataSource =
    Arc<dyn Fn(Option<&str>, Option<usize>) -> BTreeMap<String, Vec<MetricMetadata>> + Send + Sync>;

/// What the query API handlers share.
#[derive(Clone)]
pub struct QueryApiState {
    /// Where series are read.
    pub storage: Arc<dyn Queryable>,
    /// The PromQL engine.
    pub engine: Engine,
    /// Metric metadata, when an ingest path provides it.
    pub metadata: Option<MetadataSource>,
    /// TSDB statistics, when the storage provides them.
    pub tsdb_stats: Option<TsdbStatsSource>,
}

impl QueryApiState {
    /// State with default engine options and no metadata or statistics.
    pub fn new(storage: Arc<dyn Queryable>) -> Self {
        QueryApiState { storage, engine: Engine::new(EngineOptions::default()), metadata: None, tsdb_stats: None }
    }
}

/// The query API's routes.
pub fn router(state: QueryApiState) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/query_exemplars", get(exemplars).post(exemplars))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/tsdb", get(tsdb_status))
        .with_state(state)
}

/// An API error: Prometheus's `errorType` and message, with its status code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn bad_data(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, kind: "bad_data", message: message.into() }
    }

    fn invalid_param(name: &str, err: impl std::fmt::Display) -> Self {
        ApiError::bad_data(format!("invalid parameter {name:?}: {err}"))
    }

    fn internal(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, kind: "internal", message: message.into() }
    }

    fn from_query(e: QueryError) -> Self {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { status, kind: e.error_type(), message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"status": "error", "errorType": self.kind, "error": self.message});
        json_response(self.status, body.to_string())
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn success(data: serde_json::Value) -> Response {
    json_response(StatusCode::OK, serde_json::json!({"status": "success", "data": data}).to_string())
}

/// Request parameters from the query string and a form body, in order.
struct Params(Vec<(String, String)>);

impl Params {
    fn read(raw: Option<String>, headers: &HeaderMap, body: &Bytes) -> Self {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(q) = raw {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if is_form && !body.is_empty() {
            v.extend(form_urlencoded::parse(body).into_owned());
        }
        Params(v)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// Parses a time as Prometheus does: unix seconds (float) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            let secs = f.trunc();
            let frac = ((f - secs) * 1000.0).round();
            let ms = (secs as i64).saturating_mul(1000).saturating_add(frac as i64);
            // Keep room for offsets and windows: Prometheus's own bounds.
            return Ok(ms.clamp(MIN_TIME, MAX_TIME));
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis().clamp(MIN_TIME, MAX_TIME));
    }
    match s {
        "-292273086-05-16T16:47:06Z" => Ok(MIN_TIME),
        "292277025-08-18T07:12:54.999999999Z" => Ok(MAX_TIME),
        _ => Err(format!("cannot parse {s:?} to a valid timestamp")),
    }
}

/// Parses a duration: float seconds or Prometheus duration syntax; milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms >= i64::MAX as f64 || ms <= i64::MIN as f64 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok(ms.round() as i64);
    }
    match promql_parser::util::parse_duration(s) {
        Ok(d) => Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        Err(_) => Err(format!("cannot parse {s:?} to a valid duration")),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s).map_err(|e| ApiError::invalid_param(name, e)),
    }
}

fn engine_with_timeout(st: &QueryApiState, p: &Params) -> Result<Engine, ApiError> {
    let mut opts = st.engine.options().clone();
    if let Some(t) = p.get("timeout").filter(|t| !t.is_empty()) {
        let ms = parse_duration(t).map_err(|e| ApiError::invalid_param("timeout", e))?;
        let d = Duration::from_millis(ms.max(0) as u64);
        if d < opts.timeout {
            opts.timeout = d;
        }
    }
    if let Some(l) = p.get("lookback_delta").filter(|t| !t.is_empty()) {
        let ms = parse_duration(l).map_err(|e| ApiError::invalid_param("lookback_delta", e))?;
        if ms > 0 {
            opts.lookback_delta = Duration::from_millis(ms as u64);
        }
    }
    Ok(Engine::new(opts))
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from_query),
        Err(e) => Err(ApiError::internal(format!("query task failed: {e}"))),
    }
}

async fn query(State(st): State<QueryApiState>, RawQuery(raw): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::read(raw, &headers, &body);
    match query_inner(st, p).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn query_inner(st: QueryApiState, p: Params) -> Result<Response, ApiError> {
    let t = time_param(&p, "time", now_ms())?;
    let engine = engine_with_timeout(&st, &p)?;
    let q = p.get("query").unwrap_or("").to_string();
    let plan = parse(&q).map_err(|e| ApiError::invalid_param("query", e))?;
    let storage = st.storage.clone();
    let v = run_blocking(move || engine.instant(storage.as_ref(), &plan, t)).await?;
    Ok(json_response(StatusCode::OK, encode_result(&v)))
}

async fn query_range(
    State(st): State<QueryApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::read(raw, &headers, &body);
    match query_range_inner(st, p).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn query_range_inner(st: QueryApiState, p: Params) -> Result<Response, ApiError> {
    let start = match p.get("start") {
        Some(s) => parse_time(s).map_err(|e| ApiError::invalid_param("start", e))?,
        None => return Err(ApiError::invalid_param("start", "cannot parse \"\" to a valid timestamp")),
    };
    let end = match p.get("end") {
        Some(s) => parse_time(s).map_err(|e| ApiError::invalid_param("end", e))?,
        None => return Err(ApiError::invalid_param("end", "cannot parse \"\" to a valid timestamp")),
    };
    if end < start {
        return Err(ApiError::invalid_param("end", "end timestamp must not be before start time"));
    }
    let step = match p.get("step") {
        Some(s) => parse_duration(s).map_err(|e| ApiError::invalid_param("step", e))?,
        None => return Err(ApiError::invalid_param("step", "cannot parse \"\" to a valid duration")),
    };
    if step <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if end.saturating_sub(start) / step > 11_000 {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let engine = engine_with_timeout(&st, &p)?;
    let q = p.get("query").unwrap_or("").to_string();
    let plan = parse(&q).map_err(|e| ApiError::invalid_param("query", e))?;
    let storage = st.storage.clone();
    let v = run_blocking(move || engine.range(storage.as_ref(), &plan, start, end, step)).await?;
    Ok(json_response(StatusCode::OK, encode_result(&v)))
}

/// Appends a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, p) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, p.name);
        out.push(':');
        push_json_str(out, p.value);
    }
    out.push('}');
}

/// `[<unix seconds>,"<value>"]`, formatted as Prometheus does.
fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    crate::promql::push_time_seconds(out, t);
    out.push_str(",\"");
    crate::promql::push_float(out, v);
    out.push_str("\"]");
}

/// Encodes a query result as Prometheus's success envelope.
pub fn encode_result(v: &QueryValue) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"status\":\"success\",\"data\":{\"resultType\":\"");
    out.push_str(v.type_name());
    out.push_str("\",\"result\":");
    match v {
        QueryValue::Scalar { t, v } => push_point(&mut out, *t, *v),
        QueryValue::String { t, v } => {
            out.push('[');
            crate::promql::push_time_seconds(&mut out, *t);
            out.push(',');
            push_json_str(&mut out, v);
            out.push(']');
        }
        QueryValue::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.labels);
                out.push_str(",\"value\":");
                push_point(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        QueryValue::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.labels);
                out.push_str(",\"values\":[");
                for (j, p) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_point(&mut out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push_str("}}");
    out
}

fn matcher_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut sets = Vec::new();
    for m in p.all("match[]") {
        let s = parse_selector(m).map_err(|e| ApiError::invalid_param("match[]", e))?;
        sets.extend(s);
    }
    Ok(sets)
}

fn limit_param(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(0),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n as usize),
            _ => Err(ApiError::invalid_param("limit", "limit must be non-negative")),
        },
    }
}

async fn series(State(st): State<QueryApiState>, RawQuery(raw): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::read(raw, &headers, &body);
    match series_inner(st, p).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn series_inner(st: QueryApiState, p: Params) -> Result<Response, ApiError> {
    if p.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = time_param(&p, "start", MIN_TIME)?;
    let end = time_param(&p, "end", MAX_TIME)?;
    let limit = limit_param(&p)?;
    let sets = matcher_sets(&p)?;
    let storage = st.storage.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<Labels>, String> {
        let mut all: Vec<Labels> = Vec::new();
        for m in &sets {
            let series = storage.select(start, end, m).map_err(|e| e.to_string())?;
            all.extend(series.into_iter().map(|s| s.labels));
        }
        all.sort();
        all.dedup();
        Ok(all)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(ApiError::internal)?;
    let mut data = Vec::with_capacity(found.len());
    for l in found.iter().take(if limit == 0 { usize::MAX } else { limit }) {
        let obj: serde_json::Map<String, serde_json::Value> =
            l.iter().map(|p| (p.name.to_string(), serde_json::Value::String(p.value.to_string()))).collect();
        data.push(serde_json::Value::Object(obj));
    }
    Ok(success(serde_json::Value::Array(data)))
}

async fn labels(State(st): State<QueryApiState>, RawQuery(raw): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::read(raw, &headers, &body);
    match names_or_values(st, p, None).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn label_values(
    State(st): State<QueryApiState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = Params::read(raw, &headers, &Bytes::new());
    // Names outside the legacy charset arrive as `U__` escapes (Prometheus 3).
    let name = unescape_label_name(&name);
    match names_or_values(st, p, Some(name)).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Decodes Prometheus's `U__` label-name escaping (`U__a_2e_b` → `a.b`).
fn unescape_label_name(n: &str) -> String {
    let Some(rest) = n.strip_prefix("U__") else { return n.to_string() };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        while let Some(&h) = chars.peek() {
            chars.next();
            if h == '_' {
                break;
            }
            hex.push(h);
        }
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(c) => out.push(c),
            None => return n.to_string(),
        }
    }
    out
}

async fn names_or_values(st: QueryApiState, p: Params, name: Option<String>) -> Result<Response, ApiError> {
    let start = time_param(&p, "start", MIN_TIME)?;
    let end = time_param(&p, "end", MAX_TIME)?;
    let limit = limit_param(&p)?;
    let mut sets = matcher_sets(&p)?;
    if sets.is_empty() {
        sets.push(Vec::new());
    }
    let storage = st.storage.clone();
    let mut found = tokio::task::spawn_blocking(move || -> Result<Vec<String>, String> {
        let mut all = Vec::new();
        for m in &sets {
            let got = match &name {
                None => storage.label_names(start, end, m),
                Some(n) => storage.label_values(n, start, end, m),
            };
            all.extend(got.map_err(|e| e.to_string())?);
        }
        all.sort();
        all.dedup();
        Ok(all)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(ApiError::internal)?;
    if limit > 0 {
        found.truncate(limit);
    }
    Ok(success(serde_json::json!(found)))
}

async fn exemplars() -> Response {
    success(serde_json::json!([]))
}

async fn metadata(State(st): State<QueryApiState>, RawQuery(raw): RawQuery) -> Response {
    let p = Params::read(raw, &HeaderMap::new(), &Bytes::new());
    let limit = match p.get("limit") {
        None | Some("") => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return ApiError::invalid_param("limit", "limit must be a number").into_response(),
        },
    };
    let limit_per_metric = p.get("limit_per_metric").and_then(|s| s.parse::<usize>().ok()).filter(|&n| n > 0);
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let mut data = match &st.metadata {
        Some(src) => src(metric, limit_per_metric),
        None => BTreeMap::new(),
    };
    if let Some(l) = limit {
        while data.len() > l {
            data.pop_last();
        }
    }
    success(serde_json::json!(data))
}

async fn buildinfo() -> Response {
    success(serde_json::json!({
        "version": COMPAT_VERSION,
        "revision": concat!("promlite-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

async fn tsdb_status(State(st): State<QueryApiState>, RawQuery(raw): RawQuery) -> Response {
    let p = Params::read(raw, &HeaderMap::new(), &Bytes::new());
    let limit = match p.get("limit") {
        None | Some("") => 10,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return ApiError::invalid_param("limit", "limit must be a positive number").into_response(),
        },
    };
    let stats = match &st.tsdb_stats {
        Some(f) => f(limit),
        None => TsdbStats::default(),
    };
    match serde_json::to_value(stats) {
        Ok(v) => success(v),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_parse_like_prometheus() {
        assert_eq!(parse_time("1.5").unwrap(), 1500);
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn results_encode_in_prometheus_shapes() {
        let v = QueryValue::Scalar { t: 1_500, v: f64::INFINITY };
        assert_eq!(encode_result(&v), r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"+Inf"]}}"#);
        let v = QueryValue::Vector(vec![crate::promql::VectorSample {
            labels: crate::labels!("__name__" => "up", "job" => "a\"b"),
            t: 2_000,
            v: 0.1,
        }]);
        assert_eq!(
            encode_result(&v),
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[2,"0.1"]}]}}"#
        );
    }

    #[test]
    fn escaped_label_names_decode() {
        assert_eq!(unescape_label_name("U__a_2e_b"), "a.b");
        assert_eq!(unescape_label_name("job"), "job");
    }

    async fn serve() -> (String, tokio::task::JoinHandle<()>) {
        let st = crate::storage::memory::MemStorage::new();
        {
            use crate::storage::Appendable;
            let mut app = st.appender();
            for i in 0..=20i64 {
                let t = i * 15_000 + 250;
                app.append(
                    &crate::labels!("__name__" => "req_total", "job" => "api", "code" => "200"),
                    t,
                    (i * 30) as f64,
                )
                .unwrap();
                app.append(&crate::labels!("__name__" => "req_total", "job" => "api", "code" => "500"), t, i as f64)
                    .unwrap();
                app.append(&crate::labels!("__name__" => "up", "job" => "node"), t, 1.0).unwrap();
            }
            app.commit().unwrap();
        }
        let state = QueryApiState::new(Arc::new(st));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        (format!("http://{addr}"), h)
    }

    async fn get_json(url: &str) -> (u16, serde_json::Value) {
        let r = crate::http_client::client().unwrap().get(url).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    #[tokio::test]
    async fn http_endpoints_answer_like_prometheus() {
        let (base, h) = serve().await;
        let (s, v) =
            get_json(&format!("{base}/api/v1/query?query=sum%20by%20(code)%20(rate(req_total[1m]))&time=300")).await;
        assert_eq!(s, 200);
        assert_eq!(v["data"]["resultType"], "vector");
        let res = v["data"]["result"].as_array().unwrap();
        assert_eq!(res.len(), 2);
        let by_code: std::collections::HashMap<String, String> = res
            .iter()
            .map(|r| (r["metric"]["code"].as_str().unwrap().to_string(), r["value"][1].as_str().unwrap().to_string()))
            .collect();
        let rate_200: f64 = by_code["200"].parse().unwrap();
        assert!((rate_200 - 2.0).abs() < 1e-9, "{rate_200}");
        assert_eq!(res[0]["value"][0], serde_json::json!(300));

        // POST form with the same parameters.
        let client = crate::http_client::client().unwrap();
        let r = client
            .post(format!("{base}/api/v1/query_range"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("query=up&start=60&end=120&step=30")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["data"]["resultType"], "matrix");
        assert_eq!(v["data"]["result"][0]["values"], serde_json::json!([[60, "1"], [90, "1"], [120, "1"]]));

        // Repeated match[].
        let (s, v) =
            get_json(&format!("{base}/api/v1/series?match[]=up&match[]=req_total%7Bcode%3D%22500%22%7D")).await;
        assert_eq!(s, 200);
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        let (_, v) = get_json(&format!("{base}/api/v1/labels")).await;
        assert_eq!(v["data"], serde_json::json!(["__name__", "code", "job"]));
        let (_, v) = get_json(&format!("{base}/api/v1/label/job/values?match[]=up")).await;
        assert_eq!(v["data"], serde_json::json!(["node"]));
        let (_, v) = get_json(&format!("{base}/api/v1/label/__name__/values?limit=1")).await;
        assert_eq!(v["data"], serde_json::json!(["req_total"]));

        // Errors: shapes and status codes.
        let (s, v) = get_json(&format!("{base}/api/v1/query?query=sum(")).await;
        assert_eq!(s, 400);
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert!(v["error"].as_str().unwrap().starts_with("invalid parameter \"query\": 1:"), "{v}");
        let (s, v) = get_json(&format!("{base}/api/v1/query_range?query=up&start=0&end=100000&step=1")).await;
        assert_eq!(s, 400);
        assert!(v["error"].as_str().unwrap().contains("11,000 points"));
        let (s, _) = get_json(&format!("{base}/api/v1/query?query=up&time=abc")).await;
        assert_eq!(s, 400);
        let (s, v) =
            get_json(&format!("{base}/api/v1/query?query=req_total%20%2B%20on(job)%20req_total&time=100")).await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(v["errorType"], "execution");
        let (s, v) = get_json(&format!("{base}/api/v1/series")).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (400, "no match[] parameter provided"));

        let (s, v) =
            get_json(&format!("{base}/api/v1/query?query=sum(rate(req_total[1m]))&time=300&timeout=0.000001")).await;
        assert_eq!((s, v["errorType"].as_str()), (503, Some("timeout")), "{v}");
        assert_eq!(v["error"], "query timed out in query execution");

        let (_, v) = get_json(&format!("{base}/api/v1/status/buildinfo")).await;
        assert_eq!(v["data"]["version"], COMPAT_VERSION);
        let (_, v) = get_json(&format!("{base}/api/v1/query_exemplars?query=up")).await;
        assert_eq!(v["data"], serde_json::json!([]));
        let (_, v) = get_json(&format!("{base}/api/v1/metadata")).await;
        assert_eq!(v["data"], serde_json::json!({}));
        let (_, v) = get_json(&format!("{base}/api/v1/status/tsdb")).await;
        assert_eq!(v["data"]["headStats"]["numSeries"], 0);
        h.abort();
    }

    #[tokio::test]
    async fn too_many_samples_and_timeouts_map_to_prometheus_codes() {
        let st = crate::storage::memory::MemStorage::new();
        {
            use crate::storage::Appendable;
            let mut app = st.appender();
            for i in 0..100i64 {
                app.append(&crate::labels!("__name__" => "x", "i" => i.to_string().as_str()), 1_000, 1.0).unwrap();
            }
            app.commit().unwrap();
        }
        let mut state = QueryApiState::new(Arc::new(st));
        state.engine = Engine::new(EngineOptions { max_samples: 10, ..EngineOptions::default() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        let (s, v) = get_json(&format!("http://{addr}/api/v1/query?query=x&time=2")).await;
        assert_eq!(s, 422);
        assert_eq!(v["errorType"], "execution");
        assert_eq!(v["error"], "query processing would load too many samples into memory in query execution");
        h.abort();
    }
}
