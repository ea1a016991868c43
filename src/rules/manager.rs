//! The rule manager: one tokio task per group, reload with state carried
//! over, state files for restart, snapshots for the API, metrics.
//!
//! Each group's evaluation runs on the blocking pool (PromQL is CPU work), so
//! a slow group occupies one blocking thread and never delays another group
//! or the runtime's I/O threads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::RwLock;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::model::Labels;
use crate::storage::{Appendable, Queryable};

use super::alerting::dur_ms;
use super::api::GroupView;
use super::group::{EvalDeps, Group, GroupMetrics};
use super::restore::{self, StateStore};
use super::schedule::{eval_timestamp, group_offset_ms, next_iteration, Clock};
use super::seams::{AlertSink, RuleQuerier, TemplateExpander};
use super::validate::GroupSpec;

/// Settings of the rule manager.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// `global.evaluation_interval` (default 1m).
    pub default_interval: Duration,
    /// `global.rule_query_offset` (default 0).
    pub default_query_offset: Duration,
    /// `--rules.alert.resend-delay` (default 1m).
    pub resend_delay: Duration,
    /// `global.external_labels`.
    pub external_labels: Labels,
    /// `--web.external-url`.
    pub external_url: String,
    /// Directory for alert state files (`<data dir>/rules`); `None` disables restore.
    pub state_dir: Option<PathBuf>,
    /// Longest gap after which saved alerts are still restored (default 5m,
    /// the lookback window: after it the rules' series went stale).
    pub max_restore_gap: Duration,
    /// Called after every group evaluation (e.g. by `promlite gate` to record
    /// alert timelines); `None` for the plain server.
    pub observer: Option<EvalObserverHandle>,
}

/// Sees every group right after it was evaluated. Runs on the evaluation's
/// blocking thread, so it must be quick and must not block.
pub trait EvalObserver: Send + Sync {
    /// `group` was just evaluated at `ts_ms`.
    fn evaluated(&self, group: &Group, ts_ms: i64);
}

/// A shared [`EvalObserver`] (a named type so [`ManagerOptions`] stays `Debug`).
#[derive(Clone)]
pub struct EvalObserverHandle(pub Arc<dyn EvalObserver>);

impl std::fmt::Debug for EvalObserverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvalObserverHandle")
    }
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            default_interval: Duration::from_secs(60),
            default_query_offset: Duration::ZERO,
            resend_delay: Duration::from_secs(60),
            external_labels: Labels::empty(),
            external_url: String::new(),
            state_dir: None,
            max_restore_gap: Duration::from_secs(300),
            observer: None,
        }
    }
}

/// What the manager evaluates with.
#[derive(Clone)]
pub struct ManagerDeps {
    /// The PromQL engine.
    pub querier: Arc<dyn RuleQuerier>,
    /// Storage to read.
    pub queryable: Arc<dyn Queryable>,
    /// Storage to write.
    pub appendable: Arc<dyn Appendable>,
    /// Template engine.
    pub templates: Arc<dyn TemplateExpander>,
    /// Notifier.
    pub sink: Arc<dyn AlertSink>,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
}

struct Shared {
    opts: ManagerOptions,
    deps: ManagerDeps,
    store: Option<StateStore>,
}

struct Running {
    key: (String, String),
    stop: watch::Sender<bool>,
    handle: JoinHandle<Option<Group>>,
    view: Arc<ArcSwap<GroupView>>,
    metrics: Arc<GroupMetrics>,
    rules: usize,
}

/// A group's published snapshot, its counters and its rule count.
type ViewEntry = (Arc<ArcSwap<GroupView>>, Arc<GroupMetrics>, usize);

/// Runs rule groups.
pub struct Manager {
    shared: Arc<Shared>,
    running: tokio::sync::Mutex<Vec<Running>>,
    views: RwLock<Vec<ViewEntry>>,
}

/// Bookkeeping for the state file of one group.
#[derive(Default)]
struct Persist {
    last_body: Option<Vec<u8>>,
}

fn evaluate(g: &mut Group, ts: i64, sh: &Shared, persist: &mut Persist) {
    let d = &sh.deps;
    let deps = EvalDeps {
        querier: d.querier.as_ref(),
        queryable: d.queryable.as_ref(),
        appendable: d.appendable.as_ref(),
        templates: d.templates.as_ref(),
        sink: d.sink.as_ref(),
        external_labels: &sh.opts.external_labels,
        external_url: &sh.opts.external_url,
        resend_delay_ms: dur_ms(sh.opts.resend_delay),
    };
    g.eval(ts, &deps);
    if let Some(o) = &sh.opts.observer {
        o.0.evaluated(g, ts);
    }
    let Some(store) = &sh.store else { return };
    if !g.has_alerts() && persist.last_body.as_ref().is_none_or(|b| b.is_empty()) {
        return;
    }
    let mut saved = g.saved_state();
    // Compare without the timestamp: fsync only when the alerts changed.
    let stamp = saved.saved_at_ms;
    saved.saved_at_ms = 0;
    let body = if saved.rules.is_empty() { Vec::new() } else { restore::encode(&saved) };
    let changed = persist.last_body.as_ref() != Some(&body);
    saved.saved_at_ms = stamp;
    // Refreshed every evaluation (for the gap check at restore); fsynced on change.
    if let Err(e) = store.store(&saved, changed) {
        tracing::warn!(group = %g.name, error = %e, "writing alert state failed");
        return;
    }
    persist.last_body = Some(body);
}

async fn run_group(
    mut g: Group,
    sh: Arc<Shared>,
    view: Arc<ArcSwap<GroupView>>,
    mut stop: watch::Receiver<bool>,
) -> Option<Group> {
    let interval = g.interval_ms;
    let offset = group_offset_ms(&g.file, &g.name, interval);
    let mut last = eval_timestamp(sh.deps.clock.now_ms(), interval, offset).max(g.last_eval_ms);
    let mut persist = Persist::default();
    loop {
        let wait = last + interval - sh.deps.clock.now_ms();
        if wait > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))) => {}
                _ = stop.changed() => return Some(g),
            }
        }
        if *stop.borrow() {
            return Some(g);
        }
        let (ts, missed) = next_iteration(last, sh.deps.clock.now_ms(), interval);
        if missed > 0 {
            g.metrics.iterations_missed.fetch_add(missed, Ordering::Relaxed);
            tracing::warn!(group = %g.name, missed, "rule group evaluation overran its interval; iterations skipped");
        }
        last = ts;
        let shc = sh.clone();
        let joined = tokio::task::spawn_blocking(move || {
            evaluate(&mut g, ts, &shc, &mut persist);
            (g, persist)
        })
        .await;
        match joined {
            Ok((back, p)) => {
                g = back;
                persist = p;
            }
            Err(e) => {
                tracing::error!(error = %e, "rule group evaluation panicked; group stopped");
                return None;
            }
        }
        view.store(Arc::new(GroupView::of(&g)));
    }
}

impl Manager {
    /// A manager with no groups.
    pub fn new(opts: ManagerOptions, deps: ManagerDeps) -> Self {
        let store = opts.state_dir.clone().map(StateStore::new);
        Manager {
            shared: Arc::new(Shared { opts, deps, store }),
            running: tokio::sync::Mutex::new(Vec::new()),
            views: RwLock::new(Vec::new()),
        }
    }

    /// Replaces the running groups with `specs` (start or reload). Groups
    /// that stay (same file and name) keep their alerts and series for rules
    /// with the same name, kind and expression; new groups restore saved
    /// state; removed groups write stale markers for their series.
    pub async fn update(&self, specs: Vec<GroupSpec>) {
        let mut running = self.running.lock().await;
        let mut old: HashMap<(String, String), Group> = HashMap::new();
        for r in running.drain(..) {
            let _ = r.stop.send(true);
            if let Ok(Some(g)) = r.handle.await {
                old.insert(r.key, g);
            }
        }
        let sh = &self.shared;
        for spec in specs {
            let key = (spec.file.clone(), spec.name.clone());
            let mut g = Group::new(spec, sh.opts.default_interval, sh.opts.default_query_offset);
            if let Some(o) = old.remove(&key) {
                g.inherit(o);
            } else if let Some(store) = &sh.store {
                match store.load(&key.0, &key.1) {
                    Ok(Some(saved)) => g.set_restore(saved, dur_ms(sh.opts.max_restore_gap)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(file = %key.0, group = %key.1, error = %e, "ignoring unreadable alert state file")
                    }
                }
            }
            let view = Arc::new(ArcSwap::from_pointee(GroupView::of(&g)));
            let metrics = g.metrics.clone();
            let rules = g.rules.len();
            let (tx, rx) = watch::channel(false);
            let handle = tokio::spawn(run_group(g, sh.clone(), view.clone(), rx));
            running.push(Running { key, stop: tx, handle, view, metrics, rules });
        }
        let now = sh.deps.clock.now_ms();
        for ((file, name), mut g) in old {
            g.mark_all_stale(sh.deps.appendable.as_ref(), now);
            if let Some(store) = &sh.store {
                store.remove(&file, &name);
            }
        }
        *self.views.write() = running.iter().map(|r| (r.view.clone(), r.metrics.clone(), r.rules)).collect();
    }

    /// Stops every group (their state files stay for the next start).
    pub async fn stop(&self) {
        let mut running = self.running.lock().await;
        for r in running.drain(..) {
            let _ = r.stop.send(true);
            let _ = r.handle.await;
        }
        self.views.write().clear();
    }

    /// Snapshots of every group, in configuration order (for the API).
    pub fn group_views(&self) -> Vec<Arc<GroupView>> {
        self.views.read().iter().map(|(v, _, _)| v.load_full()).collect()
    }

    /// Per-group metrics (for `/metrics`): see [`RuleMetricsCollector`].
    pub fn collector(self: &Arc<Self>) -> RuleMetricsCollector {
        RuleMetricsCollector { manager: self.clone() }
    }
}

/// Exposes per-group metrics under Prometheus's names, labelled
/// `rule_group="<file>;<group>"`. Register with
/// `registry.register_collector(Box::new(manager.collector()))`.
pub struct RuleMetricsCollector {
    manager: Arc<Manager>,
}

impl std::fmt::Debug for RuleMetricsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuleMetricsCollector")
    }
}

impl prometheus_client::collector::Collector for RuleMetricsCollector {
    fn encode(&self, mut enc: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::metrics::MetricType;
        let rows: Vec<(String, Arc<GroupMetrics>, usize)> = self
            .manager
            .views
            .read()
            .iter()
            .map(|(v, m, n)| {
                let v = v.load();
                (format!("{};{}", v.file, v.name), m.clone(), *n)
            })
            .collect();
        type Getter = fn(&GroupMetrics, usize) -> f64;
        let gauges: [(&str, &str, Getter); 3] = [
            (
                "prometheus_rule_group_last_duration_seconds",
                "The duration of the last rule group evaluation.",
                |m, _| m.last_duration_seconds(),
            ),
            (
                "prometheus_rule_group_last_evaluation_timestamp_seconds",
                "The timestamp of the last rule group evaluation in seconds.",
                |m, _| m.last_evaluation_seconds(),
            ),
            ("prometheus_rule_group_rules", "The number of rules.", |_, n| n as f64),
        ];
        for (name, help, get) in gauges {
            let mut me = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (key, m, n) in &rows {
                let labels = [("rule_group", key.as_str())];
                me.encode_family(&labels)?.encode_gauge(&get(m, *n))?;
            }
        }
        type CGetter = fn(&GroupMetrics) -> u64;
        let counters: [(&str, &str, CGetter); 4] = [
            (
                "prometheus_rule_group_iterations_missed",
                "The total number of rule group evaluations missed due to slow rule group evaluation.",
                |m| m.iterations_missed.load(Ordering::Relaxed),
            ),
            ("prometheus_rule_group_iterations", "The total number of scheduled rule group evaluations.", |m| {
                m.evaluations.load(Ordering::Relaxed) + m.iterations_missed.load(Ordering::Relaxed)
            }),
            ("prometheus_rule_evaluation_failures", "The total number of rule evaluation failures.", |m| {
                m.rule_failures.load(Ordering::Relaxed)
            }),
            ("promlite_rule_append_failures", "Samples written by rules that storage refused.", |m| {
                m.append_failures.load(Ordering::Relaxed)
            }),
        ];
        for (name, help, get) in counters {
            let mut me = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (key, m, _) in &rows {
                let labels = [("rule_group", key.as_str())];
                me.encode_family(&labels)?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&get(m), None)?;
            }
        }
        Ok(())
    }
}
