//! The `promlite` binary: parses flags, then hands over to the library.
//! Exit codes: 0 success, 1 a check or run failed, 2 bad usage or configuration.

use std::process::ExitCode;

use clap::Parser;
use promlite::cli::{BacktestFormat, CheckCommand, Cli, Command, GateArgs, RulesCommand, ServerFlags, TestCommand};

/// jemalloc instead of glibc malloc: size-class slabs keep the head's many
/// small, growing allocations (open chunk buffers) from fragmenting the heap,
/// which cost a few hundred bytes per active series (docs/BENCHMARKS.md,
/// issue 3).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A C string pointer jemalloc reads at start-up.
#[cfg(not(target_env = "msvc"))]
#[repr(transparent)]
pub struct MallocConf(*const std::ffi::c_char);

// SAFETY: points at a static, immutable, NUL-terminated string.
#[cfg(not(target_env = "msvc"))]
unsafe impl Sync for MallocConf {}

/// jemalloc's built-in options (the `_RJEM_MALLOC_CONF` environment variable
/// still overrides them): two arenas for the two-core target instead of eight,
/// and freed pages handed back to the system at once instead of after 10 s, so
/// the resident size follows what the head holds (a 0.1-1 s decay left
/// 60-170 bytes more per series, for ~0.1 us less CPU per sample).
#[cfg(not(target_env = "msvc"))]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: MallocConf = MallocConf(c"narenas:2,dirty_decay_ms:0,muzzy_decay_ms:0".as_ptr());

fn init_logging(level: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn check_config(files: &[std::path::PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match promlite::config::check(f) {
            Ok(summary) => println!("  SUCCESS: {summary}"),
            Err(errors) => {
                ok = false;
                println!("  FAILED:");
                for e in errors {
                    println!("    {e}");
                }
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn check_rules(files: &[std::path::PathBuf]) -> ExitCode {
    let report = promlite::rules::check(files, &promlite::app::adapters::CheckOnlyTemplates);
    print!("{report}");
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn test_rules(files: &[std::path::PathBuf], junit: Option<&std::path::Path>) -> ExitCode {
    let report = promlite::ruletest::run(files);
    print!("{report}");
    if let Some(path) = junit {
        if let Err(e) = std::fs::write(path, promlite::junit::render(&report.junit())) {
            eprintln!("promlite: cannot write JUnit report {}: {e}", path.display());
            return ExitCode::from(promlite::ruletest::report::EXIT_INVALID);
        }
    }
    ExitCode::from(report.exit_code())
}

fn run_server(flags: ServerFlags) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("promlite: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&flags.listen_address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", flags.listen_address))?;
        promlite::app::run(flags, listener, promlite::app::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("promlite: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn backtest(cmd: RulesCommand) -> ExitCode {
    use promlite::ci::backtest::{self, BacktestError, BacktestOptions};
    let RulesCommand::Backtest { start, end, step, tsdb_path, format, output_block, files } = cmd;
    let times = promlite::ci::parse_time(&start).and_then(|s| promlite::ci::parse_time(&end).map(|e| (s, e)));
    let (start_ms, end_ms) = match times {
        Ok(t) => t,
        Err(e) => {
            eprintln!("promlite rules backtest: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = BacktestOptions { tsdb_path, start_ms, end_ms, step, rule_files: files, output_block };
    let result = match backtest::run(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("promlite rules backtest: {e}");
            return ExitCode::from(match e {
                BacktestError::Usage(_) => 2,
                BacktestError::Run(_) => 1,
            });
        }
    };
    match format {
        BacktestFormat::Table => print!("{}", promlite::ci::report::backtest_table(&result.timelines)),
        BacktestFormat::Json => {
            let doc = promlite::ci::report::backtest_json(&result.timelines, start_ms, end_ms, result.evaluations);
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    if let Some(b) = &result.block {
        eprintln!("recording-rule results written to block {}", b.display());
    }
    for e in &result.rule_errors {
        eprintln!("evaluation error: {e}");
    }
    if result.rule_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn gate(args: GateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("promlite: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = promlite::ci::gate::GateOptions {
        flags: args.server,
        duration: args.duration,
        until_file: args.until_file,
        fail_on: args.fail_on,
        report_json: args.report_json,
        report_junit: args.report_junit,
    };
    ExitCode::from(runtime.block_on(promlite::ci::gate::run(opts)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match &cli.command {
        Some(Command::Gate(g)) => g.server.log_level.clone(),
        _ => cli.server.log_level.clone(),
    };
    init_logging(&level);
    match cli.command {
        None => run_server(cli.server),
        Some(Command::Check(CheckCommand::Config { files })) => check_config(&files),
        Some(Command::Check(CheckCommand::Rules { files })) => check_rules(&files),
        Some(Command::Test(TestCommand::Rules { files, junit })) => test_rules(&files, junit.as_deref()),
        Some(Command::Rules(cmd)) => backtest(cmd),
        Some(Command::Gate(args)) => gate(args),
    }
}
