//! The memory-mapped time-series database.
//!
//! - [`chunk`]: pure chunk codecs (Gorilla XOR).
//! - [`head`]: the in-memory head (series, index, open chunks, head chunk files) on top of the WAL.
//! - [`wal`]: the write-ahead log (record codec, framing, segment I/O, checkpoints).
//! - [`block`]: immutable, memory-mapped blocks (writer, reader, index).
//! - [`db`]: the database: head + blocks, compaction, retention.
//!
//! File formats are described in `docs/FORMAT.md`.

pub mod block;
pub mod chunk;
pub mod db;
pub mod head;
pub(crate) mod postings;
pub mod wal;
