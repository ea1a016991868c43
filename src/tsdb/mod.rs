//! The memory-mapped time-series database.
//!
//! - [`chunk`]: pure chunk codecs (Gorilla XOR).
//! - [`head`]: the in-memory head (series, index, open chunks, head chunk files) on top of the WAL.
//! - [`wal`]: the write-ahead log (record codec, framing, segment I/O, checkpoints).
//!
//! File formats are described in `docs/FORMAT.md`.

pub mod chunk;
pub mod head;
pub mod wal;
