//! Scraping: the exposition parsers (Prometheus text and OpenMetrics), the
//! scrape manager with one loop per target, file-based discovery, staleness
//! and the `/api/v1/targets` view.

pub mod protocol;
pub mod parse;
