//! Which blocks to compact and which to delete: pure functions over block
//! metadata, following Prometheus's leveled compactor (`tsdb/compact.go`:
//! `plan`, `selectOverlappingDirs`, `selectDirs`, `splitByRange`) and its
//! retention rules (`tsdb/db.go`: `BeyondTimeRetention`, `BeyondSizeRetention`).

use crate::tsdb::block::{BlockId, BlockMeta};

/// Compaction ranges `[r, 3r, 9r, ...]` (Prometheus's
/// `ExponentialBlockRanges(r, 10, 3)`), cut above `max_block_duration`.
pub(crate) fn block_ranges(block_range: i64, max_block_duration: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut r = block_range.max(1);
    for _ in 0..10 {
        if r > max_block_duration && !out.is_empty() {
            break;
        }
        out.push(r);
        r = r.saturating_mul(3);
    }
    out
}

/// The blocks to compact next (none when nothing is due). `metas` must be
/// sorted by `min_time`.
pub(crate) fn plan_compaction(metas: &[BlockMeta], ranges: &[i64]) -> Vec<BlockId> {
    let overlapping = select_overlapping(metas);
    if !overlapping.is_empty() {
        return overlapping;
    }
    // Leave the newest block alone: it was just cut from the head, and a
    // full block range of time lets users back it up before it is merged.
    match metas.split_last() {
        Some((_, older)) => select_by_range(older, ranges),
        None => Vec::new(),
    }
}

/// The first run of blocks whose time ranges overlap.
fn select_overlapping(metas: &[BlockMeta]) -> Vec<BlockId> {
    let mut out = Vec::new();
    let Some(first) = metas.first() else { return out };
    let mut global_max = first.max_time;
    for (i, m) in metas.iter().enumerate().skip(1) {
        if m.min_time < global_max {
            if out.is_empty() {
                out.push(metas[i - 1].ulid);
            }
            out.push(m.ulid);
        } else if !out.is_empty() {
            break;
        }
        global_max = global_max.max(m.max_time);
    }
    out
}

fn select_by_range(metas: &[BlockMeta], ranges: &[i64]) -> Vec<BlockId> {
    let Some(newest) = metas.last() else { return Vec::new() };
    let high_time = newest.min_time;
    for &r in ranges.iter().skip(1) {
        for group in split_by_range(metas, r) {
            let (Some(a), Some(b)) = (group.first(), group.last()) else { continue };
            // The whole range is covered, or nothing newer can still join it.
            if group.len() > 1 && (b.max_time - a.min_time == r || b.max_time <= high_time) {
                return group.iter().map(|m| m.ulid).collect();
            }
        }
    }
    Vec::new()
}

/// Groups consecutive blocks lying inside the same aligned window of size `r`.
fn split_by_range(metas: &[BlockMeta], r: i64) -> Vec<Vec<&BlockMeta>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < metas.len() {
        let t0 = metas[i].min_time.div_euclid(r) * r;
        if metas[i].max_time > t0 + r {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < metas.len() && metas[i].max_time <= t0 + r {
            group.push(&metas[i]);
            i += 1;
        }
        out.push(group);
    }
    out
}

/// Blocks entirely older than `retention` before the newest block's end.
/// `metas` sorted newest first (by `max_time`).
pub(crate) fn beyond_time_retention(metas: &[&BlockMeta], retention: i64) -> Vec<BlockId> {
    if retention <= 0 {
        return Vec::new();
    }
    let Some(newest) = metas.first() else { return Vec::new() };
    match metas.iter().skip(1).position(|m| newest.max_time - m.max_time >= retention) {
        Some(p) => metas[p + 1..].iter().map(|m| m.ulid).collect(),
        None => Vec::new(),
    }
}

/// Blocks (id, bytes), newest first, that push the total past `max_bytes`
/// once `head_bytes` (WAL and head chunk files) are counted.
pub(crate) fn beyond_size_retention(blocks: &[(BlockId, u64)], head_bytes: u64, max_bytes: u64) -> Vec<BlockId> {
    if max_bytes == 0 {
        return Vec::new();
    }
    let mut total = head_bytes;
    for (i, (_, size)) in blocks.iter().enumerate() {
        total = total.saturating_add(*size);
        if total > max_bytes {
            return blocks[i..].iter().map(|b| b.0).collect();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn meta(n: u128, min: i64, max: i64) -> BlockMeta {
        BlockMeta::new_level1(BlockId(n), min, max)
    }

    fn ids(v: &[u128]) -> Vec<BlockId> {
        v.iter().map(|&n| BlockId(n)).collect()
    }

    #[test]
    fn ranges_grow_by_three_up_to_the_maximum() {
        assert_eq!(block_ranges(2 * H, 31 * 24 * H), vec![2 * H, 6 * H, 18 * H, 54 * H, 162 * H, 486 * H]);
        assert_eq!(block_ranges(2 * H, 36 * H), vec![2 * H, 6 * H, 18 * H]);
        assert_eq!(block_ranges(2 * H, H), vec![2 * H]);
    }

    #[test]
    fn plans_like_prometheus() {
        let r = block_ranges(2 * H, 100 * 24 * H);
        // Three 2h blocks fill a 6h window, but the newest is left out: not yet.
        let m = vec![meta(1, 0, 2 * H), meta(2, 2 * H, 4 * H), meta(3, 4 * H, 6 * H)];
        assert!(plan_compaction(&m, &r).is_empty());
        // With a newer block behind them, the full 6h window compacts.
        let mut m4 = m.clone();
        m4.push(meta(4, 6 * H, 8 * H));
        assert_eq!(plan_compaction(&m4, &r), ids(&[1, 2, 3]));
        // Two blocks in a window that the newest block has passed also compact.
        let m = vec![meta(1, 0, 2 * H), meta(2, 2 * H, 4 * H), meta(3, 6 * H, 8 * H), meta(4, 8 * H, 10 * H)];
        assert_eq!(plan_compaction(&m, &r), ids(&[1, 2]));
        // Overlapping blocks come first, whatever their size.
        let m = vec![meta(1, 0, 2 * H), meta(2, 2 * H, 4 * H), meta(3, 3 * H, 5 * H), meta(4, 10 * H, 12 * H)];
        assert_eq!(plan_compaction(&m, &r), ids(&[2, 3]));
        // A compacted 6h block and three more 2h blocks: the next 6h window.
        let m = vec![
            meta(1, 0, 6 * H),
            meta(2, 6 * H, 8 * H),
            meta(3, 8 * H, 10 * H),
            meta(4, 10 * H, 12 * H),
            meta(5, 12 * H, 14 * H),
        ];
        assert_eq!(plan_compaction(&m, &r), ids(&[2, 3, 4]));
        assert!(plan_compaction(&[], &r).is_empty());
    }

    #[test]
    fn retention_by_time_and_size() {
        let (a, b, c) = (meta(1, 0, 2 * H), meta(2, 2 * H, 4 * H), meta(3, 4 * H, 6 * H));
        let newest_first = vec![&c, &b, &a];
        assert_eq!(beyond_time_retention(&newest_first, 4 * H), ids(&[1]));
        assert_eq!(beyond_time_retention(&newest_first, 2 * H), ids(&[2, 1]));
        assert!(beyond_time_retention(&newest_first, 5 * H).is_empty());
        assert!(beyond_time_retention(&newest_first, 0).is_empty());
        let sized = [(BlockId(3), 100), (BlockId(2), 100), (BlockId(1), 100)];
        assert_eq!(beyond_size_retention(&sized, 50, 260), ids(&[1]));
        assert_eq!(beyond_size_retention(&sized, 50, 250), ids(&[1]));
        assert_eq!(beyond_size_retention(&sized, 0, 99), ids(&[3, 2, 1]));
        assert!(beyond_size_retention(&sized, 50, 0).is_empty());
        assert!(beyond_size_retention(&sized, 0, 300).is_empty());
    }
}
