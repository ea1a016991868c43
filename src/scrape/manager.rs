//! The scrape manager: one pool per `scrape_configs` job, one loop per target.
//!
//! A pool's task discovers targets (static groups, file SD polled every
//! `file_sd_poll`), relabels them, starts loops for new targets and stops
//! loops of vanished ones (stale markers). Applying a new config keeps pools
//! whose job config is unchanged untouched; a changed pool is rebuilt, and
//! loops of targets that survive hand their series state to their
//! replacement, so a reload writes no stale markers for them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::append::ScrapeOptions;
use super::discovery::{static_groups, FileSd};
use super::fetch::Fetcher;
use super::scrape_loop::{self, Carry, LoopContext, StopMode};
use super::target::{populate_labels, MetricMetadata, Populated, Target, TargetGroup};
use crate::config::{ClientAuth, Config, ScrapeConfig};
use crate::model::Labels;
use crate::storage::Appendable;

/// Manager settings that are not part of the config file.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// How often file SD files are checked for changes (default 5s).
    pub file_sd_poll: StdDuration,
    /// Seed mixed into target start offsets (Prometheus uses external labels and hostname).
    pub offset_seed: u64,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions { file_sd_poll: StdDuration::from_secs(5), offset_seed: 0 }
    }
}

/// What the API shows of one pool.
#[derive(Debug, Default)]
pub struct PoolState {
    /// Active targets, sorted by labels.
    pub active: Vec<Arc<Target>>,
    /// Discovered labels of targets dropped by relabeling.
    pub dropped: Vec<Labels>,
    /// How many were dropped (may exceed `dropped.len()` with `keep_dropped_targets`).
    pub dropped_count: usize,
}

struct PoolHandle {
    fingerprint: String,
    state: Arc<Mutex<PoolState>>,
    stop: watch::Sender<Option<StopMode>>,
    task: JoinHandle<HashMap<u64, Carry>>,
}

/// Runs every scrape pool.
pub struct Manager {
    storage: Arc<dyn Appendable>,
    opts: ManagerOptions,
    pools: Mutex<BTreeMap<String, PoolHandle>>,
    /// Serialises `apply_config` calls (held across awaits on purpose: reloads are rare).
    reload: tokio::sync::Mutex<()>,
}

fn fingerprint(c: &ScrapeConfig) -> String {
    // Debug prints secrets as "<secret>", so add them to notice a rotated password.
    let secret = match &c.auth {
        ClientAuth::None => String::new(),
        ClientAuth::Basic { username, password } => format!("{username}:{}", password.expose()),
        ClientAuth::Header { scheme, credentials } => format!("{scheme} {}", credentials.expose()),
    };
    format!("{c:?}|{:016x}", xxhash_rust::xxh3::xxh3_64(secret.as_bytes()))
}

impl Manager {
    /// A manager writing to `storage`; nothing runs until [`Manager::apply_config`].
    pub fn new(storage: Arc<dyn Appendable>, opts: ManagerOptions) -> Self {
        Manager { storage, opts, pools: Mutex::new(BTreeMap::new()), reload: tokio::sync::Mutex::new(()) }
    }

    /// Starts, keeps, rebuilds or stops pools to match `cfg.scrape_configs`.
    /// Must run inside a tokio runtime.
    pub async fn apply_config(&self, cfg: &Config) {
        let _serial = self.reload.lock().await;
        let wanted: BTreeMap<String, &ScrapeConfig> =
            cfg.scrape_configs.iter().map(|s| (s.job_name.clone(), s)).collect();
        // Take out the pools to stop or rebuild, without holding the lock across awaits.
        let mut to_stop: Vec<(String, PoolHandle, bool)> = Vec::new();
        {
            let mut pools = self.pools.lock();
            let names: Vec<String> = pools.keys().cloned().collect();
            for name in names {
                let keep = wanted
                    .get(&name)
                    .is_some_and(|c| pools.get(&name).is_some_and(|p| p.fingerprint == fingerprint(c)));
                if !keep {
                    if let Some(p) = pools.remove(&name) {
                        to_stop.push((name.clone(), p, wanted.contains_key(&name)));
                    }
                }
            }
        }
        let mut carried: HashMap<String, HashMap<u64, Carry>> = HashMap::new();
        for (name, p, rebuilt) in to_stop {
            let mode = if rebuilt { StopMode::Handover } else { StopMode::Stale };
            let _ = p.stop.send(Some(mode));
            match p.task.await {
                Ok(c) if rebuilt => {
                    carried.insert(name, c);
                }
                Ok(_) => {}
                Err(e) => tracing::error!(pool = %name, error = %e, "scrape pool task failed"),
            }
        }
        let mut pools = self.pools.lock();
        for (name, sc) in wanted {
            if pools.contains_key(&name) {
                continue;
            }
            let carry = carried.remove(&name).unwrap_or_default();
            pools.insert(name, self.start_pool(sc.clone(), carry));
        }
    }

    fn start_pool(&self, cfg: ScrapeConfig, carry: HashMap<u64, Carry>) -> PoolHandle {
        let state = Arc::new(Mutex::new(PoolState::default()));
        let (stop, stop_rx) = watch::channel(None);
        let fetcher = Fetcher::new(&cfg);
        if let Err(e) = &fetcher {
            tracing::error!(job = %cfg.job_name, error = %e, "scrape pool client");
        }
        let ctx = LoopContext {
            storage: self.storage.clone(),
            fetcher: Arc::new(fetcher),
            opts: Arc::new(ScrapeOptions::from(&cfg)),
            offset_seed: self.opts.offset_seed,
        };
        let fp = fingerprint(&cfg);
        let pool = Pool { cfg, ctx, state: state.clone(), loops: HashMap::new(), carry, poll: self.opts.file_sd_poll };
        let task = tokio::spawn(pool.run(stop_rx));
        PoolHandle { fingerprint: fp, state, stop, task }
    }

    /// Stops every pool, ending all series with stale markers.
    pub async fn stop(&self) {
        let pools: Vec<(String, PoolHandle)> = std::mem::take(&mut *self.pools.lock()).into_iter().collect();
        for (name, p) in pools {
            let _ = p.stop.send(Some(StopMode::Stale));
            if let Err(e) = p.task.await {
                tracing::error!(pool = %name, error = %e, "scrape pool task failed");
            }
        }
    }

    /// The pools' names (job names), sorted.
    pub fn pool_names(&self) -> Vec<String> {
        self.pools.lock().keys().cloned().collect()
    }

    /// Each pool's state: `(job, active targets, dropped discovered labels, dropped count)`.
    pub fn targets(&self) -> Vec<(String, Vec<Arc<Target>>, Vec<Labels>, usize)> {
        let pools = self.pools.lock();
        pools
            .iter()
            .map(|(n, p)| {
                let s = p.state.lock();
                (n.clone(), s.active.clone(), s.dropped.clone(), s.dropped_count)
            })
            .collect()
    }

    /// Metric metadata over all targets: family → distinct (type, help, unit)
    /// entries, as `/api/v1/metadata` lists them.
    pub fn metadata(&self) -> BTreeMap<String, Vec<MetricMetadata>> {
        let mut out: BTreeMap<String, Vec<MetricMetadata>> = BTreeMap::new();
        for (_, active, _, _) in self.targets() {
            for t in active {
                for (family, m) in t.metadata() {
                    let e = out.entry(family).or_default();
                    if !e.contains(&m) {
                        e.push(m);
                    }
                }
            }
        }
        out
    }
}

struct LoopHandle {
    target: Arc<Target>,
    stop: oneshot::Sender<StopMode>,
    task: JoinHandle<Carry>,
}

struct Pool {
    cfg: ScrapeConfig,
    ctx: LoopContext,
    state: Arc<Mutex<PoolState>>,
    loops: HashMap<u64, LoopHandle>,
    /// Series state handed over from the pool this one replaced.
    carry: HashMap<u64, Carry>,
    poll: StdDuration,
}

impl Pool {
    async fn run(mut self, mut stop: watch::Receiver<Option<StopMode>>) -> HashMap<u64, Carry> {
        let statics = static_groups(&self.cfg.job_name, &self.cfg.static_configs);
        let mut file_sds: Vec<FileSd> = self.cfg.file_sd_configs.iter().cloned().map(FileSd::new).collect();
        let mut first = true;
        let mode = loop {
            let mut changed = first;
            for sd in &mut file_sds {
                changed |= sd.refresh(Instant::now());
                for e in &sd.errors {
                    tracing::warn!(job = %self.cfg.job_name, error = %e, "file_sd");
                }
            }
            if changed {
                let groups: Vec<TargetGroup> =
                    statics.iter().cloned().chain(file_sds.iter().flat_map(|f| f.groups().cloned())).collect();
                self.sync(&groups).await;
            }
            if first {
                // Targets handed over but gone from the new config: end their series.
                for (_, c) in std::mem::take(&mut self.carry) {
                    self.end_carry(c).await;
                }
                first = false;
            }
            if let Some(m) = *stop.borrow() {
                break m;
            }
            if file_sds.is_empty() {
                if stop.changed().await.is_err() {
                    break StopMode::Stale;
                }
            } else {
                tokio::select! {
                    r = stop.changed() => if r.is_err() { break StopMode::Stale },
                    _ = tokio::time::sleep(self.poll) => {}
                }
            }
            if let Some(m) = *stop.borrow() {
                break m;
            }
        };
        let mut out = HashMap::new();
        for (h, l) in self.loops.drain() {
            let _ = l.stop.send(mode);
            if let Ok(c) = l.task.await {
                out.insert(h, c);
            }
        }
        out
    }

    async fn end_carry(&self, c: Carry) {
        let storage = self.ctx.storage.clone();
        let ts = scrape_loop::now_ms(std::time::SystemTime::now()).max(c.last_ts + 1);
        let _ = tokio::task::spawn_blocking(move || {
            let mut cache = c.cache;
            scrape_loop::write_stale(storage.as_ref(), &mut cache, &c.labels, ts);
        })
        .await;
    }

    async fn sync(&mut self, groups: &[TargetGroup]) {
        let job = self.cfg.job_name.clone();
        let mut active: HashMap<u64, Arc<Target>> = HashMap::new();
        let mut dropped = Vec::new();
        for g in groups {
            for t in &g.targets {
                match populate_labels(&self.cfg, t, &g.labels) {
                    Ok(Populated::Active { labels, discovered }) => {
                        let target = Target::new(&job, labels, discovered, &self.cfg);
                        active.entry(target.hash()).or_insert_with(|| Arc::new(target));
                    }
                    Ok(Populated::Dropped(d)) => dropped.push(d),
                    Err(e) => {
                        tracing::warn!(job = %job, source = %g.source, labels = %t, error = %e, "creating target failed")
                    }
                }
            }
        }
        if let Some(limit) = self.cfg.target_limit.filter(|l| *l > 0) {
            if active.len() as u64 > limit {
                tracing::error!(job = %job, targets = active.len(), limit, "target_limit exceeded; scraping no target of this pool");
                active.clear();
            }
        }
        // Stop loops of vanished targets.
        let gone: Vec<u64> = self.loops.keys().filter(|h| !active.contains_key(h)).copied().collect();
        for h in gone {
            if let Some(l) = self.loops.remove(&h) {
                let _ = l.stop.send(StopMode::Stale);
                let _ = l.task.await;
            }
        }
        // Start loops for new ones (with handed-over state when there is some).
        for (h, t) in &active {
            if self.loops.contains_key(h) {
                continue;
            }
            let carry = self.carry.remove(h).unwrap_or_default();
            let (stop, rx) = oneshot::channel();
            let task = tokio::spawn(scrape_loop::run(t.clone(), self.ctx.clone(), carry, rx));
            self.loops.insert(*h, LoopHandle { target: t.clone(), stop, task });
        }
        let mut list: Vec<Arc<Target>> = self.loops.values().map(|l| l.target.clone()).collect();
        list.sort_by(|a, b| a.labels.cmp(&b.labels));
        let dropped_count = dropped.len();
        let keep = self.cfg.keep_dropped_targets.unwrap_or(0) as usize;
        if keep > 0 {
            dropped.truncate(keep);
        }
        let mut st = self.state.lock();
        st.active = list;
        st.dropped = dropped;
        st.dropped_count = dropped_count;
    }
}
