//! When a group evaluates: timestamps aligned to its interval with a stable
//! per-group offset, and missed iterations skipped (counted), never bunched.
//!
//! Mirrors Prometheus's `Group.EvalTimestamp` and its run loop
//! (rules/group.go), in milliseconds. Pure functions; the clock is a trait.

/// Reads the wall clock (a seam so tests can drive time).
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// The group's stable offset within its interval: a hash of file and name,
/// so groups spread over the interval and keep their slot across restarts.
pub fn group_offset_ms(file: &str, name: &str, interval_ms: i64) -> i64 {
    if interval_ms <= 0 {
        return 0;
    }
    let mut key = Vec::with_capacity(file.len() + name.len() + 1);
    key.extend_from_slice(file.as_bytes());
    key.push(0xff);
    key.extend_from_slice(name.as_bytes());
    // The modulus is positive and fits in i64, so the cast back is exact.
    (xxhash_rust::xxh3::xxh3_64(&key) % interval_ms as u64) as i64
}

/// The latest aligned evaluation slot at or before `now_ms`.
pub fn eval_timestamp(now_ms: i64, interval_ms: i64, offset_ms: i64) -> i64 {
    let interval = interval_ms.max(1);
    let adj = now_ms - offset_ms;
    adj - adj.rem_euclid(interval) + offset_ms
}

/// The next evaluation after the one at `last_ts`, given that it is now
/// `now_ms`: the latest slot due, and how many slots were skipped to get
/// there (an overrun evaluation skips slots rather than running them late
/// one after another).
pub fn next_iteration(last_ts: i64, now_ms: i64, interval_ms: i64) -> (i64, u64) {
    let interval = interval_ms.max(1);
    let due = ((now_ms - last_ts) / interval).max(1);
    let missed = due - 1;
    (last_ts + due * interval, u64::try_from(missed).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_stable_and_within_interval() {
        let a = group_offset_ms("rules/api.yml", "api", 15_000);
        assert_eq!(a, group_offset_ms("rules/api.yml", "api", 15_000));
        assert!((0..15_000).contains(&a));
        let offsets: std::collections::HashSet<i64> =
            (0..20).map(|i| group_offset_ms("f.yml", &format!("g{i}"), 60_000)).collect();
        assert!(offsets.len() > 15, "groups spread over the interval");
    }

    #[test]
    fn timestamps_align_to_interval_plus_offset() {
        for now in [0, 1, 9_999, 10_000, 10_001, 123_456_789] {
            let ts = eval_timestamp(now, 10_000, 3_000);
            assert!(ts <= now && now - ts < 10_000, "now {now} ts {ts}");
            assert_eq!((ts - 3_000).rem_euclid(10_000), 0);
        }
        assert_eq!(eval_timestamp(12_999, 10_000, 3_000), 3_000);
        assert_eq!(eval_timestamp(13_000, 10_000, 3_000), 13_000);
    }

    #[test]
    fn missed_iterations_skipped_not_bunched() {
        // On time.
        assert_eq!(next_iteration(10_000, 20_000, 10_000), (20_000, 0));
        assert_eq!(next_iteration(10_000, 20_500, 10_000), (20_000, 0));
        // Woken early (timer jitter): still the next slot, nothing missed.
        assert_eq!(next_iteration(10_000, 19_990, 10_000), (20_000, 0));
        // An evaluation overran by 2.5 intervals: two slots skipped.
        assert_eq!(next_iteration(10_000, 45_000, 10_000), (40_000, 2));
    }
}
