//! The memory-mapped time-series database.
//!
//! - [`chunk`]: pure chunk codecs (Gorilla XOR).
//! - [`wal`]: the write-ahead log (record codec, framing, segment I/O, checkpoints).
//! - [`block`]: immutable, memory-mapped blocks (writer, reader, index).
//!
//! File formats are described in `docs/FORMAT.md`.

pub mod block;
pub mod chunk;
pub mod wal;
