//! Database options, with Prometheus's defaults.

use crate::tsdb::block::WriteOptions;
use crate::tsdb::head::HeadOptions;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// How a [`super::Db`] cuts, compacts and retains blocks.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Time range of a block cut from the head, in ms (default 2h). The head
    /// is cut once it spans 1.5 times this.
    pub block_range: i64,
    /// Delete blocks whose data ends more than this before the newest
    /// block's end, in ms; 0 disables (default 15d, as Prometheus).
    pub retention_time: i64,
    /// Delete the oldest blocks while blocks plus WAL exceed this many
    /// bytes; 0 disables (default).
    pub retention_size: u64,
    /// How far behind a series' newest sample an append may be, in ms
    /// (default 0: out-of-order samples are rejected). Passed to the head.
    pub out_of_order_window: i64,
    /// Largest block compaction produces, in ms; `None` means 10% of the
    /// retention time, at most 31 days (Prometheus's rule).
    pub max_block_duration: Option<i64>,
    /// Chunk and segment sizes of written blocks.
    pub write: WriteOptions,
    /// Head settings (WAL, head chunk files, series limit). Its chunk
    /// range, out-of-order window and oldest valid time are overridden by
    /// [`super::Db::open`] from the fields above and the blocks on disk.
    pub head: HeadOptions,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            block_range: 2 * HOUR_MS,
            retention_time: 15 * DAY_MS,
            retention_size: 0,
            out_of_order_window: 0,
            max_block_duration: None,
            write: WriteOptions::default(),
            head: HeadOptions::default(),
        }
    }
}

impl DbOptions {
    /// The effective maximum block duration.
    pub fn effective_max_block_duration(&self) -> i64 {
        let max = self.max_block_duration.unwrap_or_else(|| {
            let mut m = 31 * DAY_MS;
            if self.retention_time > 0 {
                m = m.min(self.retention_time / 10);
            }
            m
        });
        max.max(self.block_range)
    }
}
