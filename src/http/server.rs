//! Router composition, lifecycle endpoints and the serve loop.
//!
//! The caller binds the listener and passes a shutdown future (so tests bind
//! `127.0.0.1:0`, and `app` decides when to stop), as in mini-redis.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::metrics::{Registry, CONTENT_TYPE};

/// What a reload returns: `Err` carries the reason the new config was refused.
pub type ReloadFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// The injected reload action behind `POST /-/reload` (and SIGHUP in `app`).
pub type ReloadFn = Arc<dyn Fn() -> ReloadFuture + Send + Sync>;

/// Whether the server is ready to serve queries (set once start-up, e.g. WAL
/// replay, is done). Cheap to clone; all clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Not ready yet.
    pub fn new() -> Self {
        Readiness::default()
    }

    /// Marks ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// The current state.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Everything the server's own routes need, plus the other modules' routers.
pub struct ServerParts {
    /// Served at `/metrics`.
    pub metrics: Arc<Registry>,
    /// Answered at `/-/ready`.
    pub ready: Readiness,
    /// Called by `POST`/`PUT /-/reload`; `None` answers 403 (as Prometheus
    /// does without `--web.enable-lifecycle`).
    pub reload: Option<ReloadFn>,
    /// Routers of other modules (remote_write, query API, ...), merged as they are.
    pub routers: Vec<Router>,
}

#[derive(Clone)]
struct Lifecycle {
    metrics: Arc<Registry>,
    ready: Readiness,
    reload: Option<ReloadFn>,
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body.into()).into_response()
}

async fn healthy() -> Response {
    text(StatusCode::OK, "promlite is Healthy.\n")
}

async fn ready(State(s): State<Lifecycle>) -> Response {
    if s.ready.is_ready() {
        text(StatusCode::OK, "promlite is Ready.\n")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n")
    }
}

async fn reload(State(s): State<Lifecycle>) -> Response {
    let Some(f) = s.reload.as_ref() else {
        return text(StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n");
    };
    match f().await {
        Ok(()) => text(StatusCode::OK, ""),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")),
    }
}

async fn metrics(State(s): State<Lifecycle>) -> Response {
    match s.metrics.encode() {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}\n")),
    }
}

/// The full router: lifecycle routes, `/metrics`, and every router in
/// `parts.routers` merged in (their paths must not overlap).
pub fn router(parts: ServerParts) -> Router {
    let state = Lifecycle { metrics: parts.metrics, ready: parts.ready, reload: parts.reload };
    let own = Router::new()
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/metrics", get(metrics))
        .with_state(state);
    parts.routers.into_iter().fold(own, Router::merge)
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting and waits for in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(parts: ServerParts) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let h = tokio::spawn(async move {
            serve(listener, router(parts), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        (format!("http://{addr}"), tx, h)
    }

    #[tokio::test]
    async fn lifecycle_endpoints() {
        let reg = Arc::new(Registry::with_process_metrics());
        let ready_flag = Readiness::new();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c2 = Arc::clone(&calls);
        let reload: ReloadFn = Arc::new(move || {
            let n = c2.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    Ok(())
                } else {
                    Err("bad config at line 3".to_string())
                }
            })
        });
        let extra = Router::new().route("/extra", get(|| async { "x" }));
        let (base, stop, h) =
            start(ServerParts { metrics: reg, ready: ready_flag.clone(), reload: Some(reload), routers: vec![extra] })
                .await;
        let c = crate::http_client::client().unwrap();
        assert_eq!(c.get(format!("{base}/-/healthy")).send().await.unwrap().status(), 200);
        assert_eq!(c.get(format!("{base}/-/ready")).send().await.unwrap().status(), 503);
        ready_flag.set(true);
        assert_eq!(c.get(format!("{base}/-/ready")).send().await.unwrap().status(), 200);
        assert_eq!(c.post(format!("{base}/-/reload")).send().await.unwrap().status(), 200);
        let r = c.put(format!("{base}/-/reload")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        assert!(r.text().await.unwrap().contains("bad config at line 3"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let m = c.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(m.status(), 200);
        assert!(m.text().await.unwrap().contains("process_resident_memory_bytes"));
        assert_eq!(c.get(format!("{base}/extra")).send().await.unwrap().text().await.unwrap(), "x");
        stop.send(()).unwrap();
        h.await.unwrap();
    }

    #[tokio::test]
    async fn reload_disabled_is_forbidden() {
        let (base, stop, h) = start(ServerParts {
            metrics: Arc::new(Registry::new()),
            ready: Readiness::new(),
            reload: None,
            routers: vec![],
        })
        .await;
        let r = crate::http_client::client().unwrap().post(format!("{base}/-/reload")).send().await.unwrap();
        assert_eq!(r.status(), 403);
        stop.send(()).unwrap();
        h.await.unwrap();
    }
}
