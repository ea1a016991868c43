//! HTTP routes that read the running stages' state: `/api/v1/targets`,
//! `/api/v1/rules` and `/api/v1/alerts`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::rules::api::{alerts_data, rules_data, GroupView, RulesFilter};

/// Where the routes read from.
#[derive(Clone)]
pub struct StageState {
    /// The scrape manager.
    pub scrape: Arc<crate::scrape::Manager>,
    /// The rule manager.
    pub rules: Arc<crate::rules::Manager>,
}

fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn views(st: &StageState) -> Vec<GroupView> {
    st.rules.group_views().iter().map(|v| v.as_ref().clone()).collect()
}

async fn targets(State(st): State<StageState>, RawQuery(raw): RawQuery) -> Response {
    let pairs = query_pairs(&raw);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let data = crate::scrape::api::targets_data(&st.scrape, get("state"), get("scrapePool"));
    Json(json!({"status": "success", "data": data})).into_response()
}

async fn rules(State(st): State<StageState>, RawQuery(raw): RawQuery) -> Response {
    let pairs = query_pairs(&raw);
    let filter = match RulesFilter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(f) => f,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"status": "error", "errorType": "bad_data", "error": e})))
                .into_response()
        }
    };
    Json(json!({"status": "success", "data": rules_data(&views(&st), &filter)})).into_response()
}

async fn alerts(State(st): State<StageState>) -> Response {
    Json(json!({"status": "success", "data": alerts_data(&views(&st))})).into_response()
}

/// The routes.
pub fn router(st: StageState) -> Router {
    Router::new()
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .with_state(st)
}
