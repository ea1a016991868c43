//! A minimal promlite remote_write server for benchmarks, until the full
//! server is wired: the real router (`/api/v1/write`, `/metrics`, health) on
//! a chosen storage.
//!
//! ```text
//! cargo run --release --example rw_server -- --listen 127.0.0.1:9201 --storage mem
//! ```
//!
//! `--storage tsdb --data DIR` is the real TSDB head (`tsdb::head::Head`:
//! WAL, compressed chunks, memory-mapped head chunk files), with an fsync per
//! commit unless `--no-fsync`; `--storage mem` is `storage::memory::MemStorage`
//! (keeps every sample in a vector, no compression); `--storage null`
//! discards samples after validation, measuring the receiver alone.

use std::sync::Arc;

use clap::Parser;
use promlite::http::{router, serve, Readiness, ServerParts};
use promlite::ingest::{Limits, RemoteWrite};
use promlite::metrics::{IngestMetrics, Registry};
use promlite::model::Labels;
use promlite::storage::memory::MemStorage;
use promlite::storage::{AppendError, Appendable, Appender, SeriesRef, StorageError};
use promlite::tsdb::head::{Head, HeadOptions};

/// The same allocator and settings as the `promlite` binary (see src/main.rs),
/// so this example's memory figures match the real server's.
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

/// jemalloc's built-in options, as in src/main.rs.
#[cfg(not(target_env = "msvc"))]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: MallocConf = MallocConf(c"narenas:2,dirty_decay_ms:0,muzzy_decay_ms:0".as_ptr());

#[derive(Parser)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9201")]
    listen: String,
    /// `tsdb`, `mem` or `null`.
    #[arg(long, default_value = "tsdb")]
    storage: String,
    /// Data directory for `--storage tsdb`.
    #[arg(long, default_value = "data")]
    data: std::path::PathBuf,
    /// Skip the WAL fsync per commit (Prometheus does not fsync per request).
    #[arg(long)]
    no_fsync: bool,
    /// Runtime threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Accepts everything and keeps nothing.
struct Null;
struct NullAppender;

impl Appender for NullAppender {
    fn append(&mut self, _: &Labels, _: i64, _: f64) -> Result<SeriesRef, AppendError> {
        Ok(SeriesRef(0))
    }
    fn append_ref(&mut self, _: SeriesRef, _: i64, _: f64) -> Result<(), AppendError> {
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
    fn rollback(self: Box<Self>) {}
}

impl Appendable for Null {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(NullAppender)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let storage: Arc<dyn Appendable> = match cli.storage.as_str() {
        "tsdb" => {
            let mut opts = HeadOptions::default();
            opts.wal.fsync = !cli.no_fsync;
            let (head, _replay) = Head::open(&cli.data, opts)?;
            Arc::new(head)
        }
        "mem" => Arc::new(MemStorage::new()),
        "null" => Arc::new(Null),
        other => anyhow::bail!("unknown storage {other:?} (tsdb, mem, null)"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(cli.threads.max(1)).enable_all().build()?;
    rt.block_on(async move {
        let reg = Arc::new(Registry::with_process_metrics());
        let rw = RemoteWrite::new(storage, Limits::default(), IngestMetrics::register(&reg));
        let ready = Readiness::new();
        ready.set(true);
        let app =
            router(ServerParts { metrics: reg, ready, reload: None, routers: vec![promlite::ingest::router(rw)] });
        let listener = tokio::net::TcpListener::bind(&cli.listen).await?;
        eprintln!("rw_server listening on {} ({} storage)", listener.local_addr()?, cli.storage);
        serve(listener, app, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(())
    })
}
