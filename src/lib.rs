//! promlite: an embedded time-series rule engine, a mini-Prometheus in one binary.
//!
//! Data flows one way: ingest/scrape → storage ← promql ← rules → notify, with
//! `http`, `config` and `cli` at the edges. See `docs/` for formats and design notes.
#![deny(missing_docs)]

pub mod app;
pub mod ci;
pub mod cli;
pub mod config;
pub mod http;
pub mod http_client;
pub mod ingest;
pub mod junit;
pub mod loadgen;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod prefetch;
pub mod promql;
pub mod relabel;
pub mod rules;
pub mod ruletest;
pub mod scrape;
pub mod storage;
pub mod template;
pub mod tsdb;
