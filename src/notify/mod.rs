//! Alertmanager notifier: API v2 fan-out with bounded queues.
//!
//! Shaped after Prometheus `notifier/manager.go`, with one difference: each
//! Alertmanager has its own queue and send loop, so a slow or dead
//! Alertmanager never delays delivery to the others (each still gets every
//! alert). Per Alertmanager:
//!
//! * a bounded FIFO ([`AlertQueue`], default capacity 10000) that drops the
//!   oldest alerts when full and counts them;
//! * a background tokio task that posts batches of at most 64 alerts to
//!   `<scheme>://<host><path_prefix>/api/v2/alerts` with a per-request timeout;
//! * retries with exponential backoff on connection errors, timeouts and 5xx,
//!   for at most [`NotifierOptions::max_retry_duration`]; a 4xx is not retried;
//! * counters ([`AmMetrics`]) listed by [`Notifier::metrics`].
//!
//! [`Notifier::send`] adds external labels (only those the alert lacks), runs
//! the relabel seams, drops alerts left without labels, and enqueues; it never
//! waits on the network. [`Notifier::shutdown`] flushes the queues with one
//! attempt per batch until a deadline, and is idempotent.
//!
//! Each Alertmanager has its own HTTP client, built by [`crate::http_client`]
//! from its `tls_config` (`https` with a custom CA, a client certificate, …).
//! A build without the `tls` feature rejects `https` Alertmanagers in
//! [`Notifier::new`] with [`NotifyError::UnsupportedScheme`].

mod alert;
mod metrics;
mod queue;
mod sender;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::http_client::{ReloadingClient, TlsOptions};
use crate::model::Labels;

pub use alert::{
    encode_batch, ends_at_ms, generator_url, needs_sending, prepare_labels, rfc3339_ms, valid_until_ms, Alert,
    AlertRelabel,
};
pub use metrics::{AmMetrics, MetricKind, MetricSample};
pub use queue::AlertQueue;

/// A secret given inline or read from a file at each request (so rotated
/// credentials are picked up, as Prometheus does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// The value itself.
    Inline(String),
    /// A file whose contents (trailing whitespace trimmed) are the value.
    File(PathBuf),
}

/// How to authenticate to an Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// HTTP basic auth (`basic_auth: {username, password | password_file}`).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: <scheme> <credentials>` (`authorization:` or the older
    /// `bearer_token`/`bearer_token_file`, whose scheme is `Bearer`).
    Authorization {
        /// The scheme, usually `Bearer`.
        scheme: String,
        /// The credentials.
        credentials: Secret,
    },
}

/// One Alertmanager to send to.
#[derive(Clone)]
pub struct AlertmanagerConfig {
    /// `http` or `https`.
    pub scheme: String,
    /// `host:port`, as in `static_configs.targets`.
    pub host: String,
    /// `path_prefix` (e.g. `/alertmanager`); may be empty.
    pub path_prefix: String,
    /// Timeout of one request (Prometheus's default is 10s).
    pub timeout: Duration,
    /// Credentials.
    pub auth: Auth,
    /// This Alertmanager set's `alert_relabel_configs`, applied after the global ones.
    pub relabel: Option<AlertRelabel>,
    /// `tls_config`, resolved; `None` uses the system's CA roots for `https`.
    pub tls: Option<TlsOptions>,
}

impl std::fmt::Debug for AlertmanagerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertmanagerConfig")
            .field("url", &self.url())
            .field("timeout", &self.timeout)
            .field("auth", &matches!(self.auth, Auth::None).then_some("none").unwrap_or("set"))
            .field("relabel", &self.relabel.is_some())
            .field("tls", &self.tls)
            .finish()
    }
}

impl AlertmanagerConfig {
    /// An `http` Alertmanager at `host` with default settings.
    pub fn new(host: &str) -> Self {
        AlertmanagerConfig {
            scheme: "http".to_string(),
            host: host.to_string(),
            path_prefix: String::new(),
            timeout: Duration::from_secs(10),
            auth: Auth::None,
            relabel: None,
            tls: None,
        }
    }

    /// The alerts endpoint: `path.Join("/", path_prefix, "/api/v2/alerts")` after the host.
    pub fn url(&self) -> String {
        let prefix = self.path_prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("{}://{}/api/v2/alerts", self.scheme, self.host)
        } else {
            format!("{}://{}/{}/api/v2/alerts", self.scheme, self.host, prefix)
        }
    }
}

/// Settings shared by all Alertmanagers.
#[derive(Clone)]
pub struct NotifierOptions {
    /// Capacity of each Alertmanager's queue (`--alertmanager.notification-queue-capacity`).
    pub queue_capacity: usize,
    /// Most alerts per POST (Prometheus: 64).
    pub max_batch: usize,
    /// Labels added to every alert that does not have them.
    pub external_labels: Labels,
    /// Global `alerting.alert_relabel_configs`.
    pub relabel: Option<AlertRelabel>,
    /// First retry delay; doubles per attempt.
    pub retry_initial_backoff: Duration,
    /// Longest retry delay.
    pub retry_max_backoff: Duration,
    /// How long one batch is retried before it is dropped. The rule engine
    /// resends firing alerts every resend delay, so longer brings nothing.
    pub max_retry_duration: Duration,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            queue_capacity: 10_000,
            max_batch: 64,
            external_labels: Labels::empty(),
            relabel: None,
            retry_initial_backoff: Duration::from_millis(500),
            retry_max_backoff: Duration::from_secs(10),
            max_retry_duration: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for NotifierOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifierOptions")
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch", &self.max_batch)
            .field("external_labels", &self.external_labels)
            .field("relabel", &self.relabel.is_some())
            .field("max_retry_duration", &self.max_retry_duration)
            .finish()
    }
}

/// Errors building a [`Notifier`].
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A scheme other than `http` and `https`, or `https` in a build without TLS.
    #[error("alertmanager {host}: scheme {scheme:?} is not supported by this build (it speaks {})", if crate::http_client::tls_supported() { "http and https" } else { "only http: built without the `tls` cargo feature" })]
    UnsupportedScheme {
        /// The Alertmanager.
        host: String,
        /// The scheme asked for.
        scheme: String,
    },
    /// The HTTP client could not be built.
    #[error("building the alertmanager HTTP client: {0}")]
    Client(String),
    /// `Notifier::new` was called outside a tokio runtime.
    #[error("the notifier needs a tokio runtime to run its send loops")]
    NoRuntime,
}

/// State of one Alertmanager, shared with its send loop.
pub(crate) struct AmState {
    pub cfg: AlertmanagerConfig,
    pub url: String,
    pub client: ReloadingClient,
    pub queue: AlertQueue,
    pub wake: Notify,
    pub metrics: AmMetrics,
}

/// State shared by the notifier handle and the send loops.
pub(crate) struct Shared {
    pub opts: NotifierOptions,
    pub ams: Vec<Arc<AmState>>,
    pub stopping: AtomicBool,
    pub stop: Notify,
}

/// Sends alerts to every configured Alertmanager from background tasks.
pub struct Notifier {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<&str> = self.shared.ams.iter().map(|a| a.url.as_str()).collect();
        f.debug_struct("Notifier").field("alertmanagers", &urls).finish()
    }
}

impl Notifier {
    /// Builds the notifier and starts one send loop per Alertmanager on the
    /// current tokio runtime.
    pub fn new(opts: NotifierOptions, alertmanagers: Vec<AlertmanagerConfig>) -> Result<Notifier, NotifyError> {
        let mut ams = Vec::with_capacity(alertmanagers.len());
        for cfg in alertmanagers {
            let supported = cfg.scheme == "http" || (cfg.scheme == "https" && crate::http_client::tls_supported());
            if !supported {
                return Err(NotifyError::UnsupportedScheme { host: cfg.host.clone(), scheme: cfg.scheme.clone() });
            }
            let client = ReloadingClient::new(cfg.tls.clone(), |b| b)
                .map_err(|e| NotifyError::Client(format!("alertmanager {}: {e}", cfg.host)))?;
            ams.push(Arc::new(AmState {
                url: cfg.url(),
                client,
                queue: AlertQueue::new(opts.queue_capacity),
                wake: Notify::new(),
                metrics: AmMetrics::default(),
                cfg,
            }));
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let shared = Arc::new(Shared { opts, ams, stopping: AtomicBool::new(false), stop: Notify::new() });
        let tasks = shared.ams.iter().map(|am| handle.spawn(sender::run(shared.clone(), am.clone()))).collect();
        Ok(Notifier { shared, tasks: Mutex::new(tasks) })
    }

    /// Queues alerts for every Alertmanager. Never waits: a full queue drops
    /// its oldest alerts (counted). After shutdown, alerts are dropped (counted).
    pub fn send(&self, alerts: Vec<Alert>) {
        let opts = &self.shared.opts;
        let prepared: Vec<Alert> = alerts
            .into_iter()
            .filter_map(|mut a| {
                a.labels = prepare_labels(&a.labels, &opts.external_labels, opts.relabel.as_ref())?;
                Some(a)
            })
            .collect();
        if prepared.is_empty() {
            return;
        }
        let shared_alerts: Vec<Arc<Alert>> = prepared.into_iter().map(Arc::new).collect();
        let stopping = self.shared.stopping.load(Ordering::Acquire);
        for am in &self.shared.ams {
            let batch: Vec<Arc<Alert>> = match &am.cfg.relabel {
                None => shared_alerts.clone(),
                Some(f) => shared_alerts
                    .iter()
                    .filter_map(|a| {
                        let labels = prepare_labels(&a.labels, &Labels::empty(), Some(f))?;
                        Some(Arc::new(Alert { labels, ..(**a).clone() }))
                    })
                    .collect(),
            };
            if stopping {
                AmMetrics::add(&am.metrics.dropped, batch.len());
                continue;
            }
            let dropped = am.queue.push(&batch);
            if dropped > 0 {
                AmMetrics::add(&am.metrics.dropped, dropped);
                tracing::warn!(alertmanager = %am.url, dropped, "alert queue full, dropped the oldest alerts");
            }
            am.wake.notify_one();
        }
    }

    /// Stops the send loops after flushing what is queued (one attempt per
    /// batch, no retries) or when `deadline` passes, whichever comes first.
    /// Calling it again returns at once.
    pub async fn shutdown(&self, deadline: Duration) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.stop.notify_waiters();
        for am in &self.shared.ams {
            am.wake.notify_one();
        }
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        if tasks.is_empty() {
            return;
        }
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("alert notifier flush did not finish before the shutdown deadline");
            for a in aborts {
                a.abort();
            }
        }
    }

    /// Alerts waiting in the queue of each Alertmanager, by URL.
    pub fn queue_lengths(&self) -> Vec<(String, usize)> {
        self.shared.ams.iter().map(|a| (a.url.clone(), a.queue.len())).collect()
    }

    /// The counters of each Alertmanager, by URL.
    pub fn alertmanager_metrics(&self) -> Vec<(String, &AmMetrics)> {
        self.shared.ams.iter().map(|a| (a.url.clone(), &a.metrics)).collect()
    }

    /// Every metric of every Alertmanager as (name, labels, value) samples.
    pub fn metrics(&self) -> Vec<MetricSample> {
        self.shared.ams.iter().flat_map(|a| a.metrics.samples(&a.url, a.queue.len(), a.queue.capacity())).collect()
    }
}

impl Drop for Notifier {
    /// Stops the send loops without flushing; call [`Notifier::shutdown`] to flush.
    fn drop(&mut self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_joins_prefix_like_path_join() {
        let mut c = AlertmanagerConfig::new("am:9093");
        assert_eq!(c.url(), "http://am:9093/api/v2/alerts");
        c.path_prefix = "/alertmanager/".to_string();
        assert_eq!(c.url(), "http://am:9093/alertmanager/api/v2/alerts");
        c.path_prefix = "a/b".to_string();
        assert_eq!(c.url(), "http://am:9093/a/b/api/v2/alerts");
    }

    #[test]
    fn new_needs_a_runtime() {
        let e = Notifier::new(NotifierOptions::default(), vec![]).unwrap_err();
        assert!(matches!(e, NotifyError::NoRuntime));
    }
}
