//! The memory-mapped time-series database.
//!
//! - [`chunk`]: pure chunk codecs (Gorilla XOR).
//! - [`block`]: immutable, memory-mapped blocks (writer, reader, index).
//!
//! File formats are described in `docs/FORMAT.md`.

pub mod block;
pub mod chunk;
pub mod db;
