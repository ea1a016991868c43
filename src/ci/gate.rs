//! `promlite gate`: runs the full server during a load test (remote_write in,
//! scraping, rule evaluation, Alertmanager notifications as configured), then
//! decides the build: exit 0 when no alert matching `--fail-on` fired, 1 when
//! one did, 2 when the gate could not run (bad config, flags, port, storage).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::app::{self, RunOptions};
use crate::cli::ServerFlags;

use super::report::{FailOn, GateResult};
use super::timeline::SharedRecorder;

/// Exit code: no alert matching `--fail-on` fired.
pub const EXIT_PASSED: u8 = 0;
/// Exit code: an alert matching `--fail-on` fired.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the gate could not run or could not write its reports.
pub const EXIT_ERROR: u8 = 2;

/// How often `--until-file` is looked for.
const UNTIL_FILE_POLL: Duration = Duration::from_millis(200);

/// The gate's settings.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// The server's flags.
    pub flags: ServerFlags,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop when this file appears.
    pub until_file: Option<PathBuf>,
    /// Which alerts fail the gate.
    pub fail_on: String,
    /// Where to write the JSON report.
    pub report_json: Option<PathBuf>,
    /// Where to write the JUnit report.
    pub report_junit: Option<PathBuf>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Resolves when the run should end: after `duration`, when `until_file`
/// exists, or on SIGTERM/Ctrl-C, whichever comes first.
async fn stop_when(duration: Option<Duration>, until_file: Option<PathBuf>) {
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    let file = async {
        match until_file {
            Some(f) => {
                while !f.exists() {
                    tokio::time::sleep(UNTIL_FILE_POLL).await;
                }
                tracing::info!(file = %f.display(), "until-file appeared; stopping");
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = timer => tracing::info!("gate duration elapsed; stopping"),
        _ = file => {}
        _ = app::shutdown_signal() => tracing::info!("signal received; stopping"),
    }
}

/// The server's default data directory; the gate replaces it with a fresh one.
const DEFAULT_DATA_DIR: &str = "data/";

/// A fresh data directory for one gate run, removed when dropped. A gate
/// run must not inherit an earlier run's samples or saved alert state (a
/// firing alert restored from yesterday's run would fail today's calm one).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> Result<ScratchDir, String> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("promlite-gate-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("creating the gate's data directory {}: {e}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove the gate's data directory");
        }
    }
}

fn write_report(path: &Path, body: &str) -> Result<(), String> {
    std::fs::write(path, body).map_err(|e| format!("writing report {}: {e}", path.display()))
}

/// Runs the gate; returns the process exit code.
pub async fn run(opts: GateOptions) -> u8 {
    match run_inner(opts).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("promlite gate: {e}");
            EXIT_ERROR
        }
    }
}

async fn run_inner(opts: GateOptions) -> Result<u8, String> {
    let fail_on = FailOn::parse(&opts.fail_on)?;
    if opts.duration.is_some_and(|d| d.is_zero()) {
        return Err("--duration must be positive".into());
    }
    let cfg = app::load_config(opts.flags.config_file.as_ref()).map_err(|e| format!("{e:#}"))?;
    let groups = app::load_rules(&cfg, &app::adapters::CheckOnlyTemplates).map_err(|e| format!("{e:#}"))?;
    let recorder = SharedRecorder::default();
    recorder.0.lock().register(&groups);
    let listener = tokio::net::TcpListener::bind(&opts.flags.listen_address)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.flags.listen_address))?;
    if let Ok(a) = listener.local_addr() {
        eprintln!("promlite gate: listening on {a}");
    }
    let mut flags = opts.flags.clone();
    let scratch = if flags.tsdb_path == Path::new(DEFAULT_DATA_DIR) { Some(ScratchDir::create()?) } else { None };
    if let Some(s) = &scratch {
        flags.tsdb_path = s.0.clone();
    }
    eprintln!("promlite gate: data in {}", flags.tsdb_path.display());
    let start_ms = now_ms();
    let stop = stop_when(opts.duration, opts.until_file.clone());
    let run_opts = RunOptions { rule_observer: Some(recorder.handle()) };
    app::run_with(flags, listener, stop, run_opts).await.map_err(|e| format!("{e:#}"))?;
    drop(scratch);
    let end_ms = now_ms();

    let timelines = recorder.0.lock().timelines();
    let result = GateResult { timelines: &timelines, start_ms, end_ms, fail_on: &fail_on };
    print!("{}", result.summary());
    if let Some(p) = &opts.report_json {
        let body =
            serde_json::to_string_pretty(&result.json()).map_err(|e| format!("encoding the JSON report: {e}"))?;
        write_report(p, &body)?;
    }
    if let Some(p) = &opts.report_junit {
        write_report(p, &result.junit())?;
    }
    Ok(if result.failed() { EXIT_FAILED } else { EXIT_PASSED })
}
