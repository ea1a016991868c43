//! Persistent blocks: immutable directories holding a time range of series.
//!
//! ```text
//! <ULID>/
//!   meta.json        identity, time range, stats, compaction history
//!   index            symbols, series, postings, TOC, CRC32C per section
//!   chunks/000001    chunk segment files: XOR chunks, each with a CRC32C
//! ```
//! A block is written into `<ULID>.tmp/`, fsynced and renamed into place,
//! then opened read-only through memory maps after every file's length and
//! every index section's checksum has been validated. The byte layout is in
//! `docs/FORMAT.md` (Blocks).

mod bytes;
mod encoding;
mod error;
mod index;
mod meta;

mod reader;
mod segments;
mod ulid;
mod writer;

pub use error::BlockError;
pub use meta::{BlockDesc, BlockMeta, BlockStats, Compaction, META_FORMAT, META_VERSION};
pub use reader::Block;
pub use ulid::{BlockId, BlockIdError};
pub use writer::{write_block, WriteOptions, SAMPLES_PER_CHUNK, TMP_SUFFIX};
