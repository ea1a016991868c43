//! Read-only file contents: a memory map in production, a vector in unit
//! tests, so the codecs run the same over both.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use super::error::BlockError;

/// The bytes of one immutable block file.
pub(crate) enum FileBytes {
    /// A read-only mapping of a file that is never modified after it was
    /// fsynced and renamed into place.
    Mmap(memmap2::Mmap),
    /// Bytes held in memory (tests, and empty files, which cannot be mapped).
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Maps `path` read-only; returns it with its length taken from the
    /// open file's metadata, so callers compare lengths before touching pages.
    pub(crate) fn map(path: &Path) -> Result<FileBytes, BlockError> {
        let f = File::open(path).map_err(|e| BlockError::io("open", path, e))?;
        let len = f.metadata().map_err(|e| BlockError::io("stat", path, e))?.len();
        if len == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: block files are written to a temporary directory, fsynced
        // and renamed into place, and never written or truncated afterwards
        // (deletion only unlinks, which keeps mapped pages valid). A file
        // truncated behind our back by another process would still SIGBUS;
        // every length is checked against the metadata above before use.
        let m = unsafe { memmap2::MmapOptions::new().map(&f) }.map_err(|e| BlockError::io("mmap", path, e))?;
        let _ = m.advise(memmap2::Advice::Random);
        Ok(FileBytes::Mmap(m))
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mmap(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}
