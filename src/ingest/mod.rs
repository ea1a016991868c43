//! Ingest over remote_write 1.0: `POST /api/v1/write`.
//!
//! The transport ([`handler`]: HTTP, status codes, limits on the body) is kept
//! apart from the pure parts: [`decode`] (snappy → protobuf, zero-copy),
//! [`validate`] (labels by Prometheus 3's rules) and [`write`] (one appender
//! per request, the valid part stored and committed once).

pub mod decode;
pub mod handler;
pub mod limits;
pub mod proto;
pub mod refcache;
pub mod validate;
pub mod write;

pub use decode::{DecodeError, DecodedRequest};
pub use handler::{router, RemoteWrite};
pub use limits::{LimitName, Limits};
pub use refcache::RefCache;
pub use write::{append_request, write_request, RejectReason, WriteOutcome};
