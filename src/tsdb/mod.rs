//! The memory-mapped time-series database.
//!
//! - [`chunk`]: pure chunk codecs (Gorilla XOR).
//! - [`wal`]: the write-ahead log (record codec, framing, segment I/O, checkpoints).
//!
//! File formats are described in `docs/FORMAT.md`.

pub mod chunk;
pub mod wal;
