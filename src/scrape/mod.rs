//! Scraping: the exposition parsers (Prometheus text and OpenMetrics), the
//! scrape manager with one loop per target, file-based discovery, staleness
//! and the `/api/v1/targets` view.
//!
//! Layout: [`parse`] (pure parser) → [`append`] (labels, limits, staleness,
//! report series; pure over an `Appender`) ← [`scrape_loop`] (timing, I/O via
//! [`fetch`]) ← [`manager`] (pools, discovery via [`discovery`], reload);
//! [`target`] builds targets from discovered labels; [`api`] renders state.

pub mod api;
pub mod append;
pub mod discovery;
pub mod fetch;
pub mod manager;
pub mod parse;
pub mod protocol;
pub mod scrape_loop;
pub mod target;

pub use manager::{Manager, ManagerOptions};
