//! The send loop of one Alertmanager: take a batch, POST it, retry what a
//! retry can fix.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::alert::{encode_batch, Alert};
use super::metrics::AmMetrics;
use super::{AmState, Auth, Secret, Shared};

/// What one POST came to.
enum Outcome {
    Delivered,
    /// 4xx: the Alertmanager rejected the payload; sending it again cannot help.
    Rejected(String),
    /// Connection error, timeout or 5xx.
    Failed(String),
}

/// Runs until the notifier stops and the queue is empty.
pub(super) async fn run(shared: Arc<Shared>, am: Arc<AmState>) {
    loop {
        if am.queue.is_empty() {
            if shared.stopping.load(Ordering::Acquire) {
                return;
            }
            // `notify_one` leaves a permit when nobody waits, so a send that
            // raced with this check still wakes us.
            tokio::select! {
                _ = am.wake.notified() => {}
                _ = shared.stop.notified() => {}
            }
            continue;
        }
        let batch = am.queue.pop_batch(shared.opts.max_batch);
        send_batch(&shared, &am, &batch).await;
    }
}

async fn send_batch(shared: &Shared, am: &AmState, batch: &[Arc<Alert>]) {
    let n = batch.len();
    let body = bytes::Bytes::from(encode_batch(batch));
    let opts = &shared.opts;
    let started = Instant::now();
    let mut backoff = opts.retry_initial_backoff;
    loop {
        match post(am, body.clone()).await {
            Outcome::Delivered => {
                AmMetrics::add(&am.metrics.sent, n);
                return;
            }
            Outcome::Rejected(msg) => {
                AmMetrics::add(&am.metrics.errors, n);
                AmMetrics::add(&am.metrics.dropped, n);
                tracing::warn!(alertmanager = %am.url, alerts = n, error = %msg, "alertmanager rejected alerts; not retrying");
                return;
            }
            Outcome::Failed(msg) => {
                AmMetrics::add(&am.metrics.errors, n);
                let stopping = shared.stopping.load(Ordering::Acquire);
                if stopping || started.elapsed() + backoff > opts.max_retry_duration {
                    AmMetrics::add(&am.metrics.dropped, n);
                    tracing::warn!(alertmanager = %am.url, alerts = n, error = %msg, "giving up sending alerts");
                    return;
                }
                AmMetrics::add(&am.metrics.retries, 1);
                tracing::debug!(alertmanager = %am.url, error = %msg, ?backoff, "alert send failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shared.stop.notified() => {}
                }
                backoff = (backoff * 2).min(opts.retry_max_backoff);
            }
        }
    }
}

async fn read_secret(s: &Secret) -> Result<String, String> {
    match s {
        Secret::Inline(v) => Ok(v.clone()),
        Secret::File(p) => tokio::fs::read_to_string(p)
            .await
            .map(|v| v.trim_end().to_string())
            .map_err(|e| format!("reading credentials file {}: {e}", p.display())),
    }
}

async fn post(am: &AmState, body: bytes::Bytes) -> Outcome {
    let client = match am.client.current() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("HTTP client: {e}")),
    };
    let mut req = client
        .post(&am.url)
        .timeout(am.cfg.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    match &am.cfg.auth {
        Auth::None => {}
        Auth::Basic { username, password } => match read_secret(password).await {
            Ok(p) => req = req.basic_auth(username, Some(p)),
            Err(e) => return Outcome::Failed(e),
        },
        Auth::Authorization { scheme, credentials } => match read_secret(credentials).await {
            Ok(c) => req = req.header(reqwest::header::AUTHORIZATION, format!("{scheme} {c}")),
            Err(e) => return Outcome::Failed(e),
        },
    }
    let t0 = Instant::now();
    let res = req.send().await;
    let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
    am.metrics.latency_us_sum.fetch_add(us, Ordering::Relaxed);
    am.metrics.latency_count.fetch_add(1, Ordering::Relaxed);
    match res {
        Err(e) => Outcome::Failed(describe(&e)),
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                Outcome::Delivered
            } else if status.is_client_error() {
                Outcome::Rejected(format!("bad response status {status}"))
            } else {
                Outcome::Failed(format!("bad response status {status}"))
            }
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    if e.is_timeout() {
        s.push_str(" (timeout)");
    }
    s
}
