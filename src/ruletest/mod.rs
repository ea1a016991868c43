//! `promlite test rules`: rule unit tests in promtool's format, unchanged.
//!
//! * [`model`]: the test file's YAML shapes (strict, with positions).
//! * [`runner`]: loads rule files (Prometheus format or `PrometheusRule`
//!   manifests) through [`crate::rules`], builds an in-memory storage from the
//!   input series and evaluates the groups with the real engines.
//! * [`compare`]: expected vs produced alerts and samples, as diffs.
//! * [`report`]: promtool-like text, exit code and JUnit suites.

pub mod compare;
pub mod model;
pub mod report;
pub mod runner;

use std::path::PathBuf;

pub use report::Report;
pub use runner::{run_file, FileOutcome, GroupResult};

/// Runs every test file, in order.
pub fn run(files: &[PathBuf]) -> Report {
    Report { files: files.iter().map(|f| (f.display().to_string(), run_file(f))).collect() }
}
