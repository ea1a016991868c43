//! The HTTP side of remote_write: content negotiation, body limits, status
//! codes and metrics. Decoding and appending run on the blocking pool, since
//! committing writes the WAL.
//!
//! Status codes (what Prometheus senders expect, see Prometheus's
//! `storage/remote/write_handler.go`): 204 all stored; 400 with a plain-text
//! reason for anything a retry cannot fix (bad snappy or protobuf, invalid
//! series, out-of-order/out-of-bounds/duplicate samples), while the valid rest
//! is stored; 413 over a size limit; 415 for an unsupported content type or
//! encoding (including remote write 2.0); 500 when storage fails (retryable).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::decode::{DecodeError, DecodedRequest};
use super::limits::{LimitName, Limits};
use super::refcache::RefCache;
use super::write::write_request;
use crate::metrics::IngestMetrics;
use crate::storage::Appendable;

/// The `source` label value of this path's ingest metrics.
const SOURCE: &str = "remote_write";

/// Decode buffers above this capacity are released after use, so one huge
/// request does not pin memory in a pool thread.
const KEEP_BUFFER_BYTES: usize = 8 << 20;

/// The remote_write receiver's state: storage, limits (swappable on config
/// reload) and metrics.
pub struct RemoteWrite {
    storage: Arc<dyn Appendable>,
    limits: ArcSwap<Limits>,
    metrics: IngestMetrics,
    in_flight: Semaphore,
    in_flight_permits: usize,
    cache: RefCache,
    /// Decode buffers not in use. Shared by the blocking-pool threads rather
    /// than one per thread, so their number follows the requests being decoded
    /// at once, not how many threads the pool happens to have (each ~1 MB
    /// for a 2000-series request).
    decoders: Mutex<Vec<DecodedRequest>>,
}

impl RemoteWrite {
    /// A receiver appending to `storage`. `limits.max_in_flight` and
    /// `limits.ref_cache_series` are fixed here;
    /// the other limits can be changed with [`RemoteWrite::set_limits`].
    pub fn new(storage: Arc<dyn Appendable>, limits: Limits, metrics: IngestMetrics) -> Arc<Self> {
        let permits = limits.max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        let cache = RefCache::new(limits.ref_cache_series);
        Arc::new(RemoteWrite {
            storage,
            limits: ArcSwap::from_pointee(limits),
            metrics,
            in_flight: Semaphore::new(permits),
            in_flight_permits: permits,
            cache,
            decoders: Mutex::new(Vec::new()),
        })
    }

    /// Replaces the limits (e.g. after a config reload); requests already
    /// being read keep the old ones.
    pub fn set_limits(&self, limits: Limits) {
        self.limits.store(Arc::new(limits));
        // Cached series skipped validation under the old limits.
        self.cache.clear();
    }

    /// The current limits.
    pub fn limits(&self) -> Arc<Limits> {
        self.limits.load_full()
    }

    fn limit_hit(&self, l: LimitName) {
        self.metrics.limit_hits.get_or_create(&[("limit", l.as_str())]).inc();
    }
}

/// The routes of the receiver: `POST /api/v1/write`. axum's default 2 MB body
/// limit is lifted on this route only; [`Limits::body_bytes`] applies instead.
pub fn router(rw: Arc<RemoteWrite>) -> Router {
    Router::new().route("/api/v1/write", post(write).layer(DefaultBodyLimit::disable())).with_state(rw)
}

/// An error answer: status and plain-text body.
fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut body: String = msg.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// Checks `Content-Type` and `Content-Encoding` like Prometheus: a missing
/// type means remote write 1.0, a missing encoding means snappy.
fn negotiate(headers: &HeaderMap) -> Result<(), String> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().map_err(|_| "Content-Type is not ASCII".to_string())?;
        let mut parts = ct.split(';');
        let media = parts.next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/x-protobuf") {
            return Err(format!("expected application/x-protobuf as the first (media) part, got {ct:?} content-type"));
        }
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let Some((k, v)) = p.split_once('=') else {
                return Err(format!("expected parameters to be key=value, got {p:?} in {ct:?} content-type"));
            };
            if k.trim().eq_ignore_ascii_case("proto") {
                match v.trim().trim_matches('"') {
                    "prometheus.WriteRequest" => {}
                    "io.prometheus.write.v2.Request" => {
                        return Err("io.prometheus.write.v2.Request protobuf message is not accepted by this server; \
                                    accepted [prometheus.WriteRequest]"
                            .into())
                    }
                    other => return Err(format!("unknown remote write protobuf message {other:?}")),
                }
            }
        }
    }
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("");
        if !enc.trim().is_empty() && !enc.trim().eq_ignore_ascii_case("snappy") {
            return Err(format!(
                "{enc} encoding (compression) is not accepted by this server; only snappy is acceptable"
            ));
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

async fn write(State(rw): State<Arc<RemoteWrite>>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    let resp = handle(&rw, &headers, body).await;
    let code = resp.status();
    rw.metrics.requests.get_or_create(&[("code", code_label(code))]).inc();
    rw.metrics.duration.observe(start.elapsed().as_secs_f64());
    resp
}

/// Status codes this handler answers with, as static label values.
fn code_label(c: StatusCode) -> &'static str {
    match c.as_u16() {
        204 => "204",
        400 => "400",
        413 => "413",
        415 => "415",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

async fn handle(rw: &Arc<RemoteWrite>, headers: &HeaderMap, body: Body) -> Response {
    if let Err(msg) = negotiate(headers) {
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, msg);
    }
    let limits = rw.limits();
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared {
        if n > limits.body_bytes as u64 {
            rw.limit_hit(LimitName::BodyBytes);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body of {n} bytes exceeds the limit of {} bytes", limits.body_bytes),
            );
        }
    }
    // Wait for a slot before reading the body, so memory stays bounded. The
    // semaphore is never closed, so acquiring fails only if it were.
    let Ok(_permit) = rw.in_flight.acquire().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "remote_write receiver is shutting down");
    };
    let body = match Limited::new(body, limits.body_bytes).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            rw.limit_hit(LimitName::BodyBytes);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the limit of {} bytes", limits.body_bytes),
            );
        }
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading request body: {e}")),
    };
    rw.metrics.body_bytes.observe(body.len() as f64);

    let rw2 = Arc::clone(rw);
    let joined = tokio::task::spawn_blocking(move || {
        let mut decoded = rw2.decoders.lock().pop().unwrap_or_default();
        let r = decode_and_write(&rw2, &limits, &body, &mut decoded);
        // Kept for the next request unless it grew huge; at most one per
        // request that can be in flight.
        if decoded.decompressed_len() <= KEEP_BUFFER_BYTES {
            let mut pool = rw2.decoders.lock();
            if pool.len() < rw2.in_flight_permits {
                pool.push(decoded);
            }
        }
        r
    })
    .await;
    match joined {
        Ok(resp) => resp,
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("remote_write worker failed: {e}")),
    }
}

fn decode_and_write(rw: &RemoteWrite, limits: &Limits, body: &[u8], decoded: &mut DecodedRequest) -> Response {
    if let Err(e) = decoded.decode(body, limits.decompressed_bytes, limits.series_per_request) {
        return match e {
            DecodeError::DecompressedTooLarge { .. } => {
                rw.limit_hit(LimitName::DecompressedBytes);
                text(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            DecodeError::TooManySeries { .. } => {
                rw.limit_hit(LimitName::SeriesPerRequest);
                text(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            DecodeError::Snappy(_) | DecodeError::Protobuf { .. } => text(StatusCode::BAD_REQUEST, e.to_string()),
        };
    }
    rw.metrics.decompressed_bytes.observe(decoded.decompressed_len() as f64);
    let out = match write_request(rw.storage.appender(), decoded, limits, now_ms(), Some(&rw.cache)) {
        Ok(out) => out,
        Err(e) => {
            tracing::error!(error = %e, "remote_write commit failed");
            return text(StatusCode::INTERNAL_SERVER_ERROR, format!("storage: {e}"));
        }
    };
    let m = &rw.metrics;
    m.samples.get_or_create(&[("source", SOURCE)]).inc_by(out.samples_stored);
    m.series.get_or_create(&[("source", SOURCE)]).inc_by(out.series_stored);
    if out.exemplars_skipped > 0 {
        m.exemplars_skipped.inc_by(out.exemplars_skipped);
    }
    for &(reason, n) in &out.rejected {
        m.rejected.get_or_create(&[("source", SOURCE), ("reason", reason.as_str())]).inc_by(n);
    }
    for &(l, n) in &out.limit_hits {
        m.limit_hits.get_or_create(&[("limit", l.as_str())]).inc_by(n);
    }
    if out.has_errors() {
        tracing::debug!(errors = out.error_count, "remote_write request partly rejected");
        return text(StatusCode::BAD_REQUEST, out.error_text());
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(ct: Option<&str>, enc: Option<&str>) -> HeaderMap {
        let mut m = HeaderMap::new();
        if let Some(c) = ct {
            m.insert(header::CONTENT_TYPE, HeaderValue::from_str(c).unwrap());
        }
        if let Some(e) = enc {
            m.insert(header::CONTENT_ENCODING, HeaderValue::from_str(e).unwrap());
        }
        m
    }

    #[test]
    fn content_negotiation() {
        assert!(negotiate(&h(None, None)).is_ok());
        assert!(negotiate(&h(Some("application/x-protobuf"), Some("snappy"))).is_ok());
        assert!(negotiate(&h(Some("application/x-protobuf;proto=prometheus.WriteRequest"), Some("SNAPPY"))).is_ok());
        assert!(negotiate(&h(Some("application/x-protobuf; proto=io.prometheus.write.v2.Request"), None))
            .unwrap_err()
            .contains("not accepted"));
        assert!(negotiate(&h(Some("application/json"), None)).is_err());
        assert!(negotiate(&h(Some("application/x-protobuf;bogus"), None)).is_err());
        assert!(negotiate(&h(None, Some("gzip"))).unwrap_err().contains("only snappy"));
    }
}
