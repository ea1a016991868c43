//! The memory-mapped time-series database.
//!
//! - [`chunk`]: pure chunk codecs (Gorilla XOR).
//!
//! File formats are described in `docs/FORMAT.md`.

pub mod chunk;
