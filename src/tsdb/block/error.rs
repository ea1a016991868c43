//! Errors of block writing and reading. Every variant names the file, and
//! those about damaged data name the byte offset too.

use std::path::Path;

use crate::storage::StorageError;

/// A block that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// An I/O error on a named file.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "write", "fsync", ...).
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file shorter (or longer) than its header, TOC or index says.
    #[error("{path}: file is {actual} bytes but {claimed_by} claims {expected} (data missing or extra from offset {offset})")]
    Length {
        /// The file.
        path: String,
        /// Its size on disk.
        actual: u64,
        /// The size it should have, or the end of the last structure in it.
        expected: u64,
        /// Which structure made the claim.
        claimed_by: &'static str,
        /// The first offset that is missing (or extra).
        offset: u64,
    },
    /// A checksum that does not match its data.
    #[error("{path}: CRC32C mismatch in {what} at offset {offset}: stored {expected:#010x}, computed {got:#010x}")]
    Checksum {
        /// The file.
        path: String,
        /// The section or chunk.
        what: String,
        /// Offset of the first byte covered by the checksum.
        offset: u64,
        /// The stored checksum.
        expected: u32,
        /// The checksum of the data as read.
        got: u32,
    },
    /// Bytes that do not decode.
    #[error("{path}: corrupt at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// Offset of the damage.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A format version this build does not know.
    #[error("{path}: unsupported {what} version {version} (this build reads version {supported})")]
    Version {
        /// The file.
        path: String,
        /// Which format.
        what: &'static str,
        /// The version found.
        version: u32,
        /// The version supported.
        supported: u32,
    },
    /// The data to write does not fit the format (e.g. a section above 4 GiB).
    #[error("cannot write block {path}: {reason}")]
    Limit {
        /// The block directory.
        path: String,
        /// What overflowed.
        reason: String,
    },
    /// The source queryable failed while a block was being written.
    #[error("reading the source of block {path}: {source}")]
    Source {
        /// The block directory being written.
        path: String,
        /// The source's error.
        #[source]
        source: StorageError,
    },
}

impl BlockError {
    /// An I/O error on `path`.
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        BlockError::Io { op, path: path.display().to_string(), source }
    }

    /// Undecodable bytes in `path`.
    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        BlockError::Corrupt { path: path.display().to_string(), offset, reason: reason.into() }
    }
}

impl From<BlockError> for StorageError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Io { op, path, source } => StorageError::Io { op, path, source },
            BlockError::Corrupt { path, offset, reason } => StorageError::Corrupt { path, offset, reason },
            BlockError::Checksum { ref path, offset, .. } | BlockError::Length { ref path, offset, .. } => {
                StorageError::Corrupt { path: path.clone(), offset, reason: e.to_string() }
            }
            other => StorageError::Unavailable(other.to_string()),
        }
    }
}
