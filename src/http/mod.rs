//! The HTTP edge: one axum [`axum::Router`] composed of every module's routes
//! plus the server's own (`/-/healthy`, `/-/ready`, `/-/reload`, `/metrics`),
//! served on a listener the caller binds.

pub mod query_api;
pub mod server;

pub use server::{router, serve, Readiness, ReloadFn, ReloadFuture, ServerParts};
