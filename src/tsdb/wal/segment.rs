//! Segment file I/O: naming, listing, creating, appending, syncing, scanning.
//!
//! Segments are append-only files named by an 8-digit index (`00000042`).
//! They are written with ordinary `write` calls and `fdatasync`, and read
//! whole at replay; they are never memory-mapped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frame::{self, Frame};
use super::WalError;

/// Path of segment `index` in `dir`.
pub fn segment_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("{index:08}"))
}

/// Segment indexes in `dir`, ascending. Other names are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<u32>, WalError> {
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| WalError::io("list", dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(i) = name.parse::<u32>() {
                out.push(i);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Fsyncs a directory so created, renamed or deleted entries are durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| WalError::io("fsync dir", dir, e))
}

/// An open segment being appended to.
#[derive(Debug)]
pub struct SegmentWriter {
    file: Arc<File>,
    path: PathBuf,
    index: u32,
    /// Bytes known to be fully written (header included).
    size: u64,
}

impl SegmentWriter {
    /// Creates segment `index` in `dir` with its header, durably.
    pub fn create(dir: &Path, index: u32) -> Result<Self, WalError> {
        let path = segment_path(dir, index);
        // Append mode: after a failed write is cut back with `set_len`, the next
        // write lands at the new end instead of leaving a hole.
        let mut file =
            OpenOptions::new().create(true).append(true).open(&path).map_err(|e| WalError::io("create", &path, e))?;
        file.set_len(0).map_err(|e| WalError::io("truncate", &path, e))?;
        file.write_all(&frame::header()).map_err(|e| WalError::io("write", &path, e))?;
        file.sync_data().map_err(|e| WalError::io("fsync", &path, e))?;
        sync_dir(dir)?;
        Ok(SegmentWriter { file: Arc::new(file), path, index, size: frame::HEADER_LEN as u64 })
    }

    /// The segment's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file, shared so it can be synced outside the writer's lock.
    pub fn file(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `bytes`. On failure the file is cut back to its previous size so
    /// no partial frame stays behind, and the error is returned.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        let res = (&*self.file).write_all(bytes);
        match res {
            Ok(()) => {
                self.size += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Best effort: a partial frame would otherwise be read as a torn tail
                // in the middle of the segment once later writes succeed.
                let cut = self.file.set_len(self.size);
                if let Err(cut_err) = cut {
                    tracing::error!(file = %self.path.display(), error = %cut_err, "cannot cut back a failed WAL write");
                }
                Err(WalError::io("write", &self.path, e))
            }
        }
    }

    /// `fdatasync`s the segment.
    pub fn sync(&self) -> Result<(), WalError> {
        self.file.sync_data().map_err(|e| WalError::io("fsync", &self.path, e))
    }
}

/// How scanning a segment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belonged to a good frame.
    Clean,
    /// Damage at `offset`: a torn or corrupt frame, or a bad header.
    Damaged {
        /// Byte offset of the first bad byte range.
        offset: u64,
        /// What was found.
        reason: String,
    },
}

/// Reads a whole segment file.
pub fn read_segment(path: &Path) -> Result<Vec<u8>, WalError> {
    let mut f = File::open(path).map_err(|e| WalError::io("open", path, e))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out).map_err(|e| WalError::io("read", path, e))?;
    Ok(out)
}

/// Walks the frames of a segment's bytes, calling `f(offset, payload)` for each
/// good one, and reports where (if anywhere) the good frames end.
pub fn scan<E>(bytes: &[u8], mut f: impl FnMut(u64, &[u8]) -> Result<(), E>) -> Result<ScanEnd, E> {
    if let Err(e) = frame::check_header(bytes) {
        return Ok(ScanEnd::Damaged { offset: 0, reason: format!("bad segment header: {e:?}") });
    }
    let mut pos = frame::HEADER_LEN;
    while pos < bytes.len() {
        match frame::decode_frame(&bytes[pos..]) {
            Frame::Ok { payload, len } => {
                f(pos as u64, payload)?;
                pos += len;
            }
            Frame::Truncated => {
                return Ok(ScanEnd::Damaged { offset: pos as u64, reason: "record cut short (torn write)".into() })
            }
            Frame::Corrupt(why) => return Ok(ScanEnd::Damaged { offset: pos as u64, reason: why.into() }),
        }
    }
    Ok(ScanEnd::Clean)
}

/// Cuts a segment file to `len` bytes and syncs it (repairing a torn tail).
pub fn truncate_file(path: &Path, len: u64) -> Result<(), WalError> {
    let f = OpenOptions::new().write(true).open(path).map_err(|e| WalError::io("open", path, e))?;
    f.set_len(len).map_err(|e| WalError::io("truncate", path, e))?;
    f.sync_all().map_err(|e| WalError::io("fsync", path, e))
}

/// Replaces a segment whose header is damaged by an empty, valid segment.
pub fn rewrite_empty(path: &Path) -> Result<(), WalError> {
    let mut f = OpenOptions::new().write(true).truncate(true).open(path).map_err(|e| WalError::io("open", path, e))?;
    f.write_all(&frame::header()).map_err(|e| WalError::io("write", path, e))?;
    f.sync_all().map_err(|e| WalError::io("fsync", path, e))
}

/// Whether an I/O error means the disk is full.
pub fn is_no_space(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == io::ErrorKind::StorageFull
}
