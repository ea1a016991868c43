//! Wiring and lifecycle: builds every stage from the config and flags, connects
//! them through their seams, serves HTTP, reloads on SIGHUP or `/-/reload`, and
//! shuts down in order. No stage logic lives here.

pub mod adapters;
pub mod collectors;
pub mod routes;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::cli::ServerFlags;
use crate::config::Config;
use crate::http::query_api::{self, HeadStats, QueryApiState, StatEntry, TsdbStats};
use crate::http::{self as web, Readiness, ReloadFn, ServerParts};
use crate::metrics::{IngestMetrics, Registry};
use crate::notify::Notifier;
use crate::promql::{Engine, EngineOptions};
use crate::rules::{self, GroupSpec};
use crate::storage::{Appendable, Queryable};
use crate::tsdb::db::{Db, DbOptions};

use adapters::{EngineRuleQuerier, GoTemplates};

/// The file name the embedded self-monitoring rules are shown under.
pub const EMBEDDED_RULES_NAME: &str = "embedded:testdata/rules/self.yml";

/// Loads the config the flags name, or the embedded default.
pub fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let loaded = match path {
        Some(p) => Config::load(p),
        None => Config::embedded_default(),
    };
    loaded.map_err(|errs| {
        let what = path.map_or("embedded default config".to_string(), |p| p.display().to_string());
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("invalid configuration {what}:\n{}", lines.join("\n"))
    })
}

/// Loads and validates every rule file the config names; any problem fails the whole load.
pub fn load_rules(cfg: &Config, templates: &dyn rules::TemplateExpander) -> anyhow::Result<Vec<GroupSpec>> {
    let files = cfg.rule_file_paths().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    for f in &files {
        let (g, p) = rules::validate::load_file(f, templates);
        groups.extend(g);
        problems.extend(p);
    }
    if cfg.source.is_none() {
        // The embedded default config watches promlite itself with the bundled rules.
        let (g, p) = rules::validate::load_text(EMBEDDED_RULES_NAME, rules::SELF_MONITORING_RULES, templates);
        groups.extend(g);
        problems.extend(p);
    }
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        anyhow::bail!("invalid rule files:\n{}", lines.join("\n"));
    }
    Ok(groups)
}

fn engine_options(flags: &ServerFlags) -> EngineOptions {
    EngineOptions {
        lookback_delta: flags.lookback_delta,
        max_samples: flags.query_max_samples,
        timeout: flags.query_timeout,
        ..EngineOptions::default()
    }
}

fn db_options(flags: &ServerFlags, cfg: &Config) -> DbOptions {
    DbOptions {
        block_range: flags.block_duration.as_millis() as i64,
        retention_time: flags.retention_time.as_millis() as i64,
        retention_size: flags.retention_size,
        out_of_order_window: cfg.storage.out_of_order_time_window().as_millis() as i64,
        ..DbOptions::default()
    }
}

fn entries(v: &[(String, u64)]) -> Vec<StatEntry> {
    v.iter().map(|(name, value)| StatEntry { name: name.clone(), value: *value }).collect()
}

fn tsdb_stats(db: &Db, limit: usize) -> TsdbStats {
    let Ok(s) = db.stats() else { return TsdbStats::default() };
    let h = &s.head;
    let top = |v: &[(String, u64)]| entries(&v[..v.len().min(limit)]);
    TsdbStats {
        head_stats: HeadStats {
            num_series: h.num_series,
            chunk_count: h.num_chunks,
            min_time: h.min_time,
            max_time: h.max_time,
        },
        series_count_by_metric_name: top(&h.series_count_by_metric_name),
        label_value_count_by_label_name: top(&h.label_value_count_by_label_name),
        memory_in_bytes_by_label_name: top(&h.memory_in_bytes_by_label_name),
        series_count_by_label_value_pair: top(&h.series_count_by_label_value_pair),
    }
}

/// Scraped TYPE/HELP/UNIT per metric family for `/api/v1/metadata`.
fn metadata_map(
    scrape: &crate::scrape::Manager,
    metric: Option<&str>,
    limit_per_metric: Option<usize>,
) -> std::collections::BTreeMap<String, Vec<query_api::MetricMetadata>> {
    scrape
        .metadata()
        .into_iter()
        .filter(|(family, _)| metric.is_none_or(|m| m == family))
        .map(|(family, entries)| {
            let n = limit_per_metric.unwrap_or(usize::MAX);
            let list = entries
                .iter()
                .take(n)
                .map(|e| query_api::MetricMetadata {
                    kind: e.kind.as_str().to_string(),
                    help: e.help.clone(),
                    unit: e.unit.clone(),
                })
                .collect();
            (family, list)
        })
        .collect()
}

/// The running stages that a reload reconfigures.
struct Stages {
    flags: ServerFlags,
    scrape: Arc<crate::scrape::Manager>,
    rules: Arc<rules::Manager>,
    notifier: Arc<ArcSwap<Notifier>>,
    remote_write: Arc<crate::ingest::RemoteWrite>,
    templates: Arc<GoTemplates>,
}

impl Stages {
    /// Applies a new config: everything is validated first, so a bad config
    /// changes nothing and the old one keeps running.
    async fn apply(&self, cfg: Config) -> anyhow::Result<()> {
        let groups = load_rules(&cfg, self.templates.as_ref())?;
        let notifier = Notifier::new(
            adapters::notifier_options(&cfg, self.flags.notification_queue_capacity, self.flags.resend_delay),
            adapters::alertmanagers(&cfg),
        )
        .context("alerting configuration")?;
        self.scrape.apply_config(&cfg).await;
        self.remote_write.set_limits(adapters::ingest_limits(&cfg));
        let old = self.notifier.swap(Arc::new(notifier));
        tokio::spawn(async move { old.shutdown(Duration::from_secs(5)).await });
        self.rules.update(groups).await;
        tracing::info!(rule_groups = self.rules.group_views().len(), "configuration applied");
        Ok(())
    }

    async fn reload(&self) -> Result<(), String> {
        let cfg = load_config(self.flags.config_file.as_ref()).map_err(|e| e.to_string())?;
        self.apply(cfg).await.map_err(|e| format!("{e:#}"))
    }
}

/// Forwards alerts to whichever notifier is current.
struct SwappableSink(Arc<ArcSwap<Notifier>>);

impl rules::AlertSink for SwappableSink {
    fn send(&self, alerts: Vec<rules::Alert>) {
        rules::AlertSink::send(&adapters::NotifierSink(self.0.load_full()), alerts);
    }
}

/// Extra hooks for embedders of the server (`promlite gate`); the default adds none.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Sees every rule group evaluation.
    pub rule_observer: Option<rules::EvalObserverHandle>,
}

/// Runs the server on `listener` until `shutdown` completes.
pub async fn run(
    flags: ServerFlags,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(flags, listener, shutdown, RunOptions::default()).await
}

/// [`run`] with [`RunOptions`].
pub async fn run_with(
    flags: ServerFlags,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    run_opts: RunOptions,
) -> anyhow::Result<()> {
    let cfg = load_config(flags.config_file.as_ref())?;
    for w in cfg.warnings() {
        tracing::warn!("config: {w}");
    }
    std::fs::create_dir_all(&flags.tsdb_path)
        .with_context(|| format!("creating data directory {}", flags.tsdb_path.display()))?;
    let db_dir = flags.tsdb_path.clone();
    let opts = db_options(&flags, &cfg);
    let db = tokio::task::spawn_blocking(move || Db::open(&db_dir, opts))
        .await
        .context("opening the TSDB")?
        .with_context(|| format!("opening the TSDB in {}", flags.tsdb_path.display()))?;
    let db = Arc::new(db);
    let queryable: Arc<dyn Queryable> = db.clone();
    let appendable: Arc<dyn Appendable> = db.clone();

    let registry = Arc::new(Registry::with_process_metrics());
    let ingest_metrics = IngestMetrics::register(&registry);
    let engine = Engine::new(engine_options(&flags));
    let templates = Arc::new(GoTemplates::new(engine.clone(), queryable.clone()));

    let scrape = Arc::new(crate::scrape::Manager::new(appendable.clone(), Default::default()));
    let notifier = Arc::new(ArcSwap::from_pointee(Notifier::new(
        adapters::notifier_options(&cfg, flags.notification_queue_capacity, flags.resend_delay),
        adapters::alertmanagers(&cfg),
    )?));
    let rule_opts = rules::ManagerOptions {
        default_interval: cfg.global.evaluation_interval.to_std(),
        default_query_offset: cfg.global.rule_query_offset.unwrap_or_default().to_std(),
        resend_delay: flags.resend_delay,
        external_labels: cfg.global.external_labels(),
        external_url: flags.external_url.clone().unwrap_or_default(),
        state_dir: Some(flags.tsdb_path.join("rules")),
        observer: run_opts.rule_observer,
        ..rules::ManagerOptions::default()
    };
    let rule_deps = rules::ManagerDeps {
        querier: Arc::new(EngineRuleQuerier::new(engine.clone())),
        queryable: queryable.clone(),
        appendable: appendable.clone(),
        templates: templates.clone(),
        sink: Arc::new(SwappableSink(notifier.clone())),
        clock: Arc::new(rules::schedule::SystemClock),
    };
    let rule_manager = Arc::new(rules::Manager::new(rule_opts, rule_deps));
    registry.register_collector(Box::new(rule_manager.collector()));
    registry.register_collector(Box::new(collectors::TsdbCollector(db.clone())));
    registry.register_collector(Box::new(collectors::NotifierCollector(notifier.clone())));
    let remote_write =
        crate::ingest::RemoteWrite::new(appendable.clone(), adapters::ingest_limits(&cfg), ingest_metrics);

    let stages = Arc::new(Stages {
        flags: flags.clone(),
        scrape: scrape.clone(),
        rules: rule_manager.clone(),
        notifier: notifier.clone(),
        remote_write: remote_write.clone(),
        templates,
    });
    stages.apply(cfg).await?;

    let mut qstate = QueryApiState::new(queryable.clone());
    qstate.engine = engine;
    let stats_db = db.clone();
    qstate.tsdb_stats = Some(Arc::new(move |limit| tsdb_stats(&stats_db, limit)));
    let meta_scrape = scrape.clone();
    qstate.metadata = Some(Arc::new(move |metric, limit| metadata_map(&meta_scrape, metric, limit)));
    let reload_stages = stages.clone();
    let reload: ReloadFn = Arc::new(move || {
        let s = reload_stages.clone();
        Box::pin(async move { s.reload().await })
    });
    let ready = Readiness::new();
    let router = web::router(ServerParts {
        metrics: registry.clone(),
        ready: ready.clone(),
        reload: Some(reload.clone()),
        routers: vec![
            query_api::router(qstate),
            crate::ingest::router(remote_write),
            routes::router(routes::StageState { scrape: scrape.clone(), rules: rule_manager.clone() }),
        ],
    });

    let maintain_db = db.clone();
    let maintenance = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let d = maintain_db.clone();
            match tokio::task::spawn_blocking(move || d.maintain()).await {
                Ok(Ok(r)) if r.head_blocks + r.compactions + r.deleted > 0 => tracing::info!(?r, "tsdb maintenance"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("tsdb maintenance failed: {e}"),
                Err(e) => tracing::error!("tsdb maintenance task failed: {e}"),
            }
        }
    });
    let hup = tokio::spawn(reload_on_sighup(reload));

    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "promlite is ready");
    ready.set(true);
    let served = web::serve(listener, router, shutdown).await;
    ready.set(false);
    tracing::info!("shutting down");
    hup.abort();
    maintenance.abort();
    scrape.stop().await;
    rule_manager.stop().await;
    notifier.load_full().shutdown(Duration::from_secs(5)).await;
    served.context("HTTP server")?;
    Ok(())
}

async fn reload_on_sighup(reload: ReloadFn) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload");
        return;
    };
    while hup.recv().await.is_some() {
        match reload().await {
            Ok(()) => tracing::info!("configuration reloaded (SIGHUP)"),
            Err(e) => tracing::error!("reload refused, the old configuration keeps running: {e}"),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
