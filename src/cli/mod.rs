//! Command-line flags and subcommands, named as Prometheus names them.
//!
//! Parsing only: `main` turns a [`Cli`] into actions; nothing here starts work.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Parses a Prometheus-syntax duration (`15s`, `1h30m`, `2d`, `1y`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    promql_parser::util::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Parses a byte size with Prometheus's units (`512MB`, `1GB`, `100KiB`); `0` disables.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}: expected a number and a unit like 512MB"))?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" => 1 << 10,
        "MB" | "MIB" => 1 << 20,
        "GB" | "GIB" => 1 << 30,
        "TB" | "TIB" => 1 << 40,
        "PB" | "PIB" => 1 << 50,
        "EB" | "EIB" => 1 << 60,
        u => return Err(format!("invalid size {s:?}: unknown unit {u:?} (use B, KB, MB, GB, TB, PB, EB)")),
    };
    if !(n.is_finite() && n >= 0.0) {
        return Err(format!("invalid size {s:?}"));
    }
    Ok((n * mult as f64) as u64)
}

/// promlite: an embedded time-series rule engine, a mini-Prometheus in one binary.
///
/// Started with no arguments it runs the server on an embedded default config:
/// listen on :9090, scrape its own /metrics, keep data under ./data.
#[derive(Debug, Parser)]
#[command(name = "promlite", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// A subcommand; without one, the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server flags.
    #[command(flatten)]
    pub server: ServerFlags,
}

/// Flags of the server (also used by `gate`).
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// Prometheus configuration file. Without it, the embedded default config is used.
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Directory for the TSDB (WAL, head chunks, blocks) and the alert state file.
    #[arg(long = "storage.tsdb.path", value_name = "DIR", default_value = "data/")]
    pub tsdb_path: PathBuf,

    /// How long to keep samples; older blocks are deleted whole.
    #[arg(long = "storage.tsdb.retention.time", value_name = "DURATION", default_value = "15d", value_parser = parse_duration)]
    pub retention_time: Duration,

    /// Maximum bytes of blocks to keep (e.g. 512MB); the oldest blocks go first. 0 means no limit.
    #[arg(long = "storage.tsdb.retention.size", value_name = "SIZE", default_value = "0", value_parser = parse_bytes)]
    pub retention_size: u64,

    /// Time range of one persisted block.
    #[arg(long = "storage.tsdb.min-block-duration", value_name = "DURATION", default_value = "2h", value_parser = parse_duration, hide = true)]
    pub block_duration: Duration,

    /// Address to listen on for the API, remote_write and /metrics.
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = "0.0.0.0:9090")]
    pub listen_address: String,

    /// URL under which promlite is reached, used in alerts' generatorURL.
    #[arg(long = "web.external-url", value_name = "URL")]
    pub external_url: Option<String>,

    /// Maximum time a query may run before it is cancelled.
    #[arg(long = "query.timeout", value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub query_timeout: Duration,

    /// Maximum samples a single query may load into memory.
    #[arg(long = "query.max-samples", value_name = "N", default_value_t = 50_000_000)]
    pub query_max_samples: usize,

    /// How far back an instant selector looks for the latest sample.
    #[arg(long = "query.lookback-delta", value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub lookback_delta: Duration,

    /// Minimum time between resends of a still-firing alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub resend_delay: Duration,

    /// Capacity of the queue of alerts waiting to be sent; the oldest are dropped when full.
    #[arg(long = "alertmanager.notification-queue-capacity", value_name = "N", default_value_t = 10_000)]
    pub notification_queue_capacity: usize,

    /// Log level filter (error, warn, info, debug, trace, or a tracing filter).
    #[arg(long = "log.level", value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate configuration or rule files.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Run unit tests.
    #[command(subcommand)]
    Test(TestCommand),
    /// Work with rule files over stored data.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run the server during a load test, then exit 0 (no alert matching --fail-on fired), 1 (one did)
    /// or 2 (configuration error), writing reports. Without --storage.tsdb.path the data lives in a
    /// fresh temporary directory, removed at the end, so no run inherits another's alerts.
    Gate(GateArgs),
}

/// Output format of `promlite rules backtest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BacktestFormat {
    /// An aligned text table.
    Table,
    /// A JSON document.
    Json,
}

/// `promlite rules ...`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Evaluate rule files over data already in a TSDB directory and print every alert's timeline.
    Backtest {
        /// First evaluation time: RFC3339 or Unix seconds.
        #[arg(long, value_name = "TIME")]
        start: String,
        /// Last evaluation time: RFC3339 or Unix seconds.
        #[arg(long, value_name = "TIME")]
        end: String,
        /// Evaluation step for every group (default: each group's interval, or 1m).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        step: Option<Duration>,
        /// The TSDB directory to read (no sample is written to it; refused while a server holds it).
        #[arg(long = "storage.tsdb.path", value_name = "DIR", default_value = "data/")]
        tsdb_path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: BacktestFormat,
        /// Write recording-rule results as a block into this directory (not the one being read).
        #[arg(long = "output-block", value_name = "DIR")]
        output_block: Option<PathBuf>,
        /// Rule files (Prometheus format or PrometheusRule manifests).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `promlite gate`.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Server flags.
    #[command(flatten)]
    pub server: ServerFlags,
    /// Stop after this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop when this file appears (SIGTERM or Ctrl-C also stop the run).
    #[arg(long = "until-file", value_name = "FILE")]
    pub until_file: Option<PathBuf>,
    /// Alerts that fail the gate, as label matchers.
    #[arg(long = "fail-on", value_name = "MATCHERS", default_value = r#"severity=~"critical|page""#)]
    pub fail_on: String,
    /// Write a JSON report here.
    #[arg(long = "report-json", value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write a JUnit XML report here (one test case per alerting rule).
    #[arg(long = "report-junit", value_name = "FILE")]
    pub report_junit: Option<PathBuf>,
}

/// `promlite check ...`
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Validate a Prometheus configuration file and print what it contains, or every error.
    Config {
        /// Configuration files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate rule files (Prometheus format or PrometheusRule manifests) and report every problem.
    Rules {
        /// Rule files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `promlite test ...`
#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Run rule unit tests written in promtool's format (`promtool test rules` files, unchanged).
    ///
    /// Exit codes: 0 when every test passes, 1 when a test fails, 2 when a test
    /// file or a rule file it names cannot be read or is invalid.
    Rules {
        /// Rule unit-test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also write the results as JUnit XML to FILE (one test case per test group).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_runs_the_server_with_defaults() {
        let cli = Cli::try_parse_from(["promlite"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.server.listen_address, "0.0.0.0:9090");
        assert_eq!(cli.server.retention_time, Duration::from_secs(15 * 86400));
        assert!(cli.server.config_file.is_none());
    }

    #[test]
    fn prometheus_flag_names_parse() {
        let cli = Cli::try_parse_from([
            "promlite",
            "--config.file=p.yml",
            "--storage.tsdb.path",
            "/d",
            "--storage.tsdb.retention.time=1h30m",
            "--storage.tsdb.retention.size=512MB",
            "--web.listen-address=127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(cli.server.config_file.as_deref(), Some(std::path::Path::new("p.yml")));
        assert_eq!(cli.server.retention_time, Duration::from_secs(5400));
        assert_eq!(cli.server.retention_size, 512 << 20);
    }

    #[test]
    fn bad_values_are_refused_with_the_value() {
        let e = Cli::try_parse_from(["promlite", "--storage.tsdb.retention.time=soon"]).unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
        assert!(parse_bytes("12XB").unwrap_err().contains("XB"));
    }

    #[test]
    fn check_config_subcommand() {
        let cli = Cli::try_parse_from(["promlite", "check", "config", "a.yml"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Check(CheckCommand::Config { .. }))));
    }

    #[test]
    fn test_rules_subcommand() {
        let cli = Cli::try_parse_from(["promlite", "test", "rules", "--junit", "out.xml", "a_test.yml"]).unwrap();
        let Some(Command::Test(TestCommand::Rules { files, junit })) = cli.command else { panic!("not test rules") };
        assert_eq!(files, [PathBuf::from("a_test.yml")]);
        assert_eq!(junit, Some(PathBuf::from("out.xml")));
    }

    #[test]
    fn backtest_and_gate_subcommands() {
        let cli = Cli::try_parse_from([
            "promlite",
            "rules",
            "backtest",
            "--start",
            "0",
            "--end",
            "60",
            "--step=15s",
            "--format=json",
            "r.yml",
        ])
        .unwrap();
        let Some(Command::Rules(RulesCommand::Backtest { step, format, files, .. })) = cli.command else {
            panic!("not backtest")
        };
        assert_eq!((step, format, files.len()), (Some(Duration::from_secs(15)), BacktestFormat::Json, 1));
        let cli = Cli::try_parse_from([
            "promlite",
            "gate",
            "--web.listen-address=127.0.0.1:0",
            "--duration=5s",
            "--report-junit=j.xml",
        ])
        .unwrap();
        let Some(Command::Gate(g)) = cli.command else { panic!("not gate") };
        assert_eq!(g.server.listen_address, "127.0.0.1:0");
        assert_eq!(g.duration, Some(Duration::from_secs(5)));
        assert_eq!(g.fail_on, r#"severity=~"critical|page""#);
    }
}
