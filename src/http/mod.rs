//! HTTP handlers at the edge of promlite.

pub mod query_api;
