//! `meta.json`: a block's identity, time range, statistics and compaction
//! history. Field names follow Prometheus's `meta.json` so operators can
//! read it the same way; `format` marks it as promlite's own layout.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::BlockError;
use super::ulid::BlockId;

/// The `meta.json` version this build writes and reads.
pub const META_VERSION: u32 = 1;

/// The value of the `format` field.
pub const META_FORMAT: &str = "promlite";

/// Counts over a block's contents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    /// Samples in the block.
    pub num_samples: u64,
    /// Series in the block.
    pub num_series: u64,
    /// Chunks in the block.
    pub num_chunks: u64,
}

/// A parent of a compacted block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    /// The parent's id.
    pub ulid: BlockId,
    /// Its minimum time (inclusive, ms).
    pub min_time: i64,
    /// Its maximum time (exclusive, ms).
    pub max_time: i64,
}

/// How a block came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compaction {
    /// 1 for a block cut from the head, parents' maximum + 1 for a compacted one.
    pub level: u32,
    /// The level-1 blocks whose data this block holds.
    pub sources: Vec<BlockId>,
    /// The blocks compacted into this one (empty at level 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    /// The block's id; also its directory name.
    pub ulid: BlockId,
    /// Lowest timestamp the block may hold (inclusive, ms).
    pub min_time: i64,
    /// End of the block's range (exclusive, ms): every sample has `t < max_time`.
    pub max_time: i64,
    /// Counts.
    pub stats: BlockStats,
    /// Origin.
    pub compaction: Compaction,
    /// Layout version of `meta.json`.
    pub version: u32,
    /// Always `"promlite"`: the index and chunk files are promlite's layout,
    /// not Prometheus's, although `meta.json` reads alike.
    pub format: String,
}

impl BlockMeta {
    /// A level-1 meta for a block cut from the head over `[min_time, max_time)`.
    pub fn new_level1(ulid: BlockId, min_time: i64, max_time: i64) -> Self {
        BlockMeta {
            ulid,
            min_time,
            max_time,
            stats: BlockStats::default(),
            compaction: Compaction { level: 1, sources: vec![ulid], parents: Vec::new() },
            version: META_VERSION,
            format: META_FORMAT.to_string(),
        }
    }

    /// This block as a parent entry of a compacted block.
    pub fn desc(&self) -> BlockDesc {
        BlockDesc { ulid: self.ulid, min_time: self.min_time, max_time: self.max_time }
    }

    /// Whether `[mint, maxt]` (inclusive) overlaps the block's range.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        mint < self.max_time && maxt >= self.min_time
    }

    /// Serialises as pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses and checks `meta.json` read from `path`.
    pub fn from_json(path: &Path, data: &[u8]) -> Result<Self, BlockError> {
        let m: BlockMeta = serde_json::from_slice(data).map_err(|e| {
            // serde_json reports line/column; turn them into a byte offset.
            let offset = line_col_offset(data, e.line(), e.column());
            BlockError::corrupt(path, offset, format!("meta.json does not parse: {e}"))
        })?;
        if m.format != META_FORMAT {
            return Err(BlockError::corrupt(
                path,
                0,
                format!("format {:?} is not {META_FORMAT:?} (not a promlite block)", m.format),
            ));
        }
        if m.version != META_VERSION {
            return Err(BlockError::Version {
                path: path.display().to_string(),
                what: "meta.json",
                version: m.version,
                supported: META_VERSION,
            });
        }
        if m.min_time >= m.max_time {
            return Err(BlockError::corrupt(
                path,
                0,
                format!("minTime {} is not below maxTime {}", m.min_time, m.max_time),
            ));
        }
        Ok(m)
    }
}

fn line_col_offset(data: &[u8], line: usize, col: usize) -> u64 {
    let mut off = 0usize;
    for (i, l) in data.split(|&b| b == b'\n').enumerate() {
        if i + 1 == line {
            return (off + col.saturating_sub(1)) as u64;
        }
        off += l.len() + 1;
    }
    data.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_checks() {
        let mut m = BlockMeta::new_level1(BlockId::new(5), 0, 7_200_000);
        m.stats = BlockStats { num_samples: 10, num_series: 2, num_chunks: 3 };
        let p = Path::new("x/meta.json");
        let back = BlockMeta::from_json(p, &m.to_json()).unwrap();
        assert_eq!(back, m);
        let text = String::from_utf8(m.to_json()).unwrap();
        assert!(text.contains("\"minTime\": 0") && text.contains("\"numSamples\": 10"));

        let mut bad = m.clone();
        bad.version = 9;
        assert!(matches!(BlockMeta::from_json(p, &bad.to_json()), Err(BlockError::Version { version: 9, .. })));
        bad = m.clone();
        bad.max_time = 0;
        assert!(BlockMeta::from_json(p, &bad.to_json()).is_err());
        let e = BlockMeta::from_json(p, b"{\n \"ulid\": 5").unwrap_err().to_string();
        assert!(e.contains("x/meta.json") && e.contains("offset"), "{e}");
    }
}
