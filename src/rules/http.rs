//! An axum router for `/api/v1/rules` and `/api/v1/alerts` (GET and POST),
//! in Prometheus's envelope. The HTTP module merges it into the server.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::api::{alerts_data, rules_data, GroupView, RulesFilter};
use super::manager::Manager;

fn success(data: Value) -> Response {
    Json(json!({ "status": "success", "data": data })).into_response()
}

fn bad_data(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "status": "error", "errorType": "bad_data", "error": msg }))).into_response()
}

fn views(m: &Manager) -> Vec<GroupView> {
    m.group_views().iter().map(|v| (**v).clone()).collect()
}

async fn rules(State(m): State<Arc<Manager>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    // Repeated keys (`rule_name[]=a&rule_name[]=b`) need a pair list, and POST
    // bodies carry the same parameters as the query string.
    let mut pairs: Vec<(String, String)> =
        form_urlencoded::parse(q.unwrap_or_default().as_bytes()).into_owned().collect();
    pairs.extend(form_urlencoded::parse(&body).into_owned());
    match RulesFilter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(f) => success(rules_data(&views(&m), &f)),
        Err(e) => bad_data(e),
    }
}

async fn alerts(State(m): State<Arc<Manager>>) -> Response {
    success(alerts_data(&views(&m)))
}

/// Routes `/api/v1/rules` and `/api/v1/alerts` to `manager`'s state.
pub fn router(manager: Arc<Manager>) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules).post(rules))
        .route("/api/v1/alerts", get(alerts).post(alerts))
        .with_state(manager)
}
