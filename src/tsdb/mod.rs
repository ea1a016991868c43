//! The memory-mapped TSDB: head, write-ahead log, chunks, blocks and the database.

pub mod block;
