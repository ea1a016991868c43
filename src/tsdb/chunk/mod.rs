//! Chunk codecs: pure functions from samples to bytes and back.
//!
//! Two float encodings exist: XOR (Gorilla, Prometheus's) and Decimal
//! (scaled integers for short decimals, XOR inside for other values). The
//! encoding byte is stored beside each chunk in files (head chunk files,
//! block chunk files); [`ChunkAppender`] and [`ChunkIter`] dispatch on it, so
//! chunks written by older versions (all XOR) stay readable.

mod bits;
pub mod decimal;
mod dispatch;
pub mod xor;

pub use decimal::{DecimalAppender, DecimalIter};
pub use dispatch::{decode_as, encode_as, ChunkAppender, ChunkIter};
pub use xor::{decode, encode, num_samples_of, OwnedXorIter, XorAppender, XorIter};

/// The encoding of chunks written from now on (head chunks and blocks).
pub const DEFAULT_ENCODING: Encoding = Encoding::Decimal;

/// How a chunk's bytes are encoded; stored as one byte next to every chunk.
/// Values follow Prometheus's `chunkenc.Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// Gorilla XOR floats ([`xor`]).
    Xor = 1,
    /// Scaled decimal integers, or XOR for other values ([`decimal`]).
    Decimal = 16,
}

impl Encoding {
    /// The encoding for a stored byte, or `None` for an unknown one.
    pub fn from_u8(b: u8) -> Option<Encoding> {
        match b {
            1 => Some(Encoding::Xor),
            16 => Some(Encoding::Decimal),
            _ => None,
        }
    }
}

/// A chunk that cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Fewer bytes than the two-byte header.
    #[error("chunk of {len} bytes is shorter than its header")]
    TooShort {
        /// Bytes present.
        len: usize,
    },
    /// The bit stream does not decode.
    #[error("corrupt chunk: bad {what} in sample {sample} at bit {bit_offset}")]
    Corrupt {
        /// Index of the sample being decoded.
        sample: u16,
        /// Bit offset from the start of the chunk.
        bit_offset: u64,
        /// Which field failed.
        what: &'static str,
    },
    /// The chunk already holds the maximum number of samples.
    #[error("chunk is full ({} samples)", xor::MAX_SAMPLES)]
    Full,
    /// An encoding byte this version does not know.
    #[error("unknown chunk encoding {0}")]
    UnknownEncoding(u8),
}
