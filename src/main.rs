//! The `promlite` binary: parses flags, then hands over to the library.
//! Exit codes: 0 success, 1 a check or run failed, 2 bad usage or configuration.

use std::process::ExitCode;

use clap::Parser;
use promlite::cli::{CheckCommand, Cli, Command, ServerFlags, TestCommand};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.server.log_level);
    match cli.command {
        None => run_server(cli.server),
        Some(Command::Check(CheckCommand::Config { files })) => check_config(&files),
        Some(Command::Check(CheckCommand::Rules { files })) => check_rules(&files),
        Some(Command::Test(TestCommand::Rules { files, junit })) => test_rules(&files, junit.as_deref()),
    }
}
