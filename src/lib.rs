//! promlite: an embedded time-series rule engine, a mini-Prometheus in one binary.
//!
//! Data flows one way: ingest/scrape → storage ← promql ← rules → notify, with
//! `http`, `config` and `cli` at the edges. See `docs/` for formats and design notes.
#![deny(missing_docs)]

pub mod config;
pub mod model;
pub mod relabel;
pub mod scrape;
pub mod storage;
pub mod ingest;
pub mod metrics;
pub mod http;
pub mod loadgen;
pub mod tsdb;
