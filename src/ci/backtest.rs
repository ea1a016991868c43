//! `promlite rules backtest`: evaluates rule files over data already stored in
//! a promlite TSDB directory, as if the rules had been running then.
//!
//! The directory is opened like the server opens it, taking its lock, so a
//! directory a running server holds is refused rather than shared (opening
//! does a server start's housekeeping: a new empty WAL segment, a torn WAL
//! tail cut). No sample is appended to it: recording-rule results and
//! `ALERTS` series go to an
//! in-memory layer ([`super::overlay`]) that later rules read, and are
//! optionally written as a block into a *separate* output directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::app::adapters::{EngineRuleQuerier, GoTemplates};
use crate::model::{Labels, Sample};
use crate::promql::{Engine, EngineOptions};
use crate::rules::alerting::{dur_ms, ALERTS_FOR_STATE_METRIC, ALERTS_METRIC};
use crate::rules::group::{EvalDeps, Group, Health};
use crate::rules::seams::NoopSink;
use crate::rules::GroupSpec;
use crate::storage::memory::MemStorage;
use crate::storage::{Appendable, Queryable};
use crate::tsdb::block::{write_block, WriteOptions};
use crate::tsdb::db::{Db, DbError, DbOptions};

use super::overlay::Overlay;
use super::timeline::{Recorder, RuleTimeline};

/// Most evaluations of one group a backtest will run (guards against a tiny `--step`).
pub const MAX_EVALUATIONS_PER_GROUP: i64 = 1_000_000;

/// What to backtest.
#[derive(Debug, Clone)]
pub struct BacktestOptions {
    /// The TSDB directory to read.
    pub tsdb_path: PathBuf,
    /// First evaluation time, ms.
    pub start_ms: i64,
    /// Last evaluation time (inclusive), ms.
    pub end_ms: i64,
    /// Evaluation step for every group; `None` uses each group's `interval` (default 1m).
    pub step: Option<Duration>,
    /// Rule files.
    pub rule_files: Vec<PathBuf>,
    /// Write recording-rule results as a block into this directory.
    pub output_block: Option<PathBuf>,
}

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// Bad flags, rule files or directory (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Reading or writing data failed.
    #[error("{0}")]
    Run(String),
}

/// What a backtest found.
#[derive(Debug)]
pub struct BacktestResult {
    /// Every alerting rule's timeline.
    pub timelines: Vec<RuleTimeline>,
    /// Group evaluations run.
    pub evaluations: u64,
    /// The first evaluation error of each rule that had one.
    pub rule_errors: Vec<String>,
    /// The block written with `output_block`, if any.
    pub block: Option<PathBuf>,
}

/// Loads and validates rule files; every problem is reported with file:line.
pub fn load_groups(files: &[PathBuf]) -> Result<Vec<GroupSpec>, String> {
    let tmpl = crate::app::adapters::CheckOnlyTemplates;
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        let (g, p) = crate::rules::validate::load_file(f, &tmpl);
        groups.extend(g);
        problems.extend(p.into_iter().map(|p| p.to_string()));
    }
    if problems.is_empty() {
        Ok(groups)
    } else {
        Err(format!("invalid rule files:\n{}", problems.join("\n")))
    }
}

fn open_db(dir: &Path) -> Result<Db, BacktestError> {
    if !dir.is_dir() {
        return Err(BacktestError::Usage(format!("{}: not a directory (give --storage.tsdb.path)", dir.display())));
    }
    let has_data = dir.join("wal").is_dir()
        || std::fs::read_dir(dir).map(|rd| rd.flatten().any(|e| e.path().join("meta.json").is_file())).unwrap_or(false);
    if !has_data {
        return Err(BacktestError::Usage(format!("{}: no promlite TSDB here (no wal/ and no blocks)", dir.display())));
    }
    Db::open(dir, DbOptions::default()).map_err(|e| match e {
        DbError::Locked { .. } => BacktestError::Usage(format!(
            "{}: in use by a running promlite; stop it or backtest a copy (cp -r {} /tmp/copy)",
            dir.display(),
            dir.display()
        )),
        e => BacktestError::Run(format!("opening the TSDB in {}: {e}", dir.display())),
    })
}

/// Runs the backtest.
pub fn run(opts: &BacktestOptions) -> Result<BacktestResult, BacktestError> {
    if opts.end_ms < opts.start_ms {
        return Err(BacktestError::Usage("--end is before --start".into()));
    }
    if opts.step.is_some_and(|s| s.is_zero()) {
        return Err(BacktestError::Usage("--step must be positive".into()));
    }
    let specs = load_groups(&opts.rule_files).map_err(BacktestError::Usage)?;
    if let Some(out) = &opts.output_block {
        let same = match (out.canonicalize(), opts.tsdb_path.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            return Err(BacktestError::Usage(
                "--output-block must not be the TSDB being read: a block overlapping the head drops head data".into(),
            ));
        }
    }
    let db = open_db(&opts.tsdb_path)?;
    let db: Arc<dyn Queryable> = Arc::new(db);
    let top = Arc::new(MemStorage::new());
    let overlay = Arc::new(Overlay { base: db, top: top.clone() });
    let engine = Engine::new(EngineOptions::default());
    let querier = EngineRuleQuerier::new(engine.clone());
    let templates = GoTemplates::new(engine, overlay.clone());
    let external = Labels::empty();
    let deps = EvalDeps {
        querier: &querier,
        queryable: overlay.as_ref(),
        appendable: overlay.as_ref(),
        templates: &templates,
        sink: &NoopSink,
        external_labels: &external,
        external_url: "",
        resend_delay_ms: 60_000,
    };

    let mut recorder = Recorder::new();
    recorder.register(&specs);
    let mut groups: Vec<Group> = specs
        .into_iter()
        .map(|s| {
            let mut g = Group::new(s, Duration::from_secs(60), Duration::ZERO);
            if let Some(step) = opts.step {
                g.interval_ms = dur_ms(step).max(1);
            }
            g
        })
        .collect();
    for g in &groups {
        if (opts.end_ms - opts.start_ms) / g.interval_ms >= MAX_EVALUATIONS_PER_GROUP {
            return Err(BacktestError::Usage(format!(
                "group {:?} would be evaluated more than {MAX_EVALUATIONS_PER_GROUP} times; use a larger --step or a shorter range",
                g.name
            )));
        }
    }
    let mut next: Vec<i64> = vec![opts.start_ms; groups.len()];
    let mut errors: Vec<String> = Vec::new();
    let mut seen_error: std::collections::HashSet<(usize, usize)> = Default::default();
    let mut evaluations = 0u64;
    // Earliest due group first; ties in file order, so groups interleave in time.
    while let Some((i, ts)) =
        next.iter().copied().enumerate().filter(|(_, t)| *t <= opts.end_ms).min_by_key(|(i, t)| (*t, *i))
    {
        let g = &mut groups[i];
        g.eval(ts, &deps);
        recorder.observe(g, ts);
        evaluations += 1;
        for (j, slot) in g.rules.iter().enumerate() {
            if slot.status.health == Health::Err && seen_error.insert((i, j)) {
                errors.push(format!(
                    "{} group {:?} rule {:?} at {}: {}",
                    g.file,
                    g.name,
                    slot.rule.spec().name,
                    super::format_time(ts),
                    slot.status.last_error.as_deref().unwrap_or("error")
                ));
            }
        }
        next[i] = ts + g.interval_ms;
    }
    let block = match &opts.output_block {
        Some(dir) => write_recordings(&top, dir)?,
        None => None,
    };
    Ok(BacktestResult { timelines: recorder.timelines(), evaluations, rule_errors: errors, block })
}

/// Writes the recording-rule series of `top` (not `ALERTS`) as one block in `dir`.
fn write_recordings(top: &MemStorage, dir: &Path) -> Result<Option<PathBuf>, BacktestError> {
    let run_err = |e: String| BacktestError::Run(e);
    let rec = MemStorage::new();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    let mut app = rec.appender();
    for mut s in top.select(i64::MIN, i64::MAX, &[]).map_err(|e| run_err(e.to_string()))? {
        if matches!(s.labels.metric_name(), Some(ALERTS_METRIC | ALERTS_FOR_STATE_METRIC)) {
            continue;
        }
        let mut v: Vec<Sample> = Vec::new();
        s.samples.collect_into(&mut v);
        for x in v {
            mint = mint.min(x.t);
            maxt = maxt.max(x.t);
            app.append(&s.labels, x.t, x.v).map_err(|e| run_err(format!("copying {}: {e}", s.labels)))?;
        }
    }
    app.commit().map_err(|e| run_err(e.to_string()))?;
    if mint > maxt {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).map_err(|e| run_err(format!("creating {}: {e}", dir.display())))?;
    let written = write_block(dir, &rec, mint, maxt + 1, &[], &WriteOptions::default())
        .map_err(|e| run_err(format!("writing a block in {}: {e}", dir.display())))?;
    Ok(written.map(|(p, _)| p))
}
