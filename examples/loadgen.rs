//! remote_write load tool. Example:
//!
//! ```text
//! cargo run --release --example loadgen -- --url http://127.0.0.1:9090/api/v1/write \
//!     --series 100000 --concurrency 4 --duration 30s
//! ```
//!
//! Works against promlite, Prometheus (`--web.enable-remote-write-receiver`)
//! and VictoriaMetrics (`/api/v1/write`).

use clap::Parser;

#[derive(Parser)]
#[command(about = "Send realistic remote_write load to a URL and report samples/s and latency")]
struct Cli {
    #[command(flatten)]
    opts: promlite::loadgen::Options,
    /// Runtime threads for the client (1 leaves the other core to the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(cli.threads.max(1)).enable_all().build()?;
    let report = rt.block_on(promlite::loadgen::run(&cli.opts))?;
    if cli.opts.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
