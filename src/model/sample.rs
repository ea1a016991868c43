//! Samples and the stale marker.

/// The bit pattern Prometheus uses for a stale marker: a signalling NaN that
/// ends a series (`value.StaleNaN` in Prometheus's `model/value`).
///
/// It must be compared by bits, never by value: every NaN is unequal to itself.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker as an `f64`.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is the stale marker (exact bit comparison).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a timestamp in milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value; may be NaN, ±Inf or the stale marker.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` with value `v`.
    #[inline]
    pub const fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Equality by bits: what storage round trips must preserve.
    #[inline]
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_nan_but_distinct_from_plain_nan() {
        assert!(STALE_NAN.is_nan());
        assert!(is_stale_nan(STALE_NAN));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(0.0));
    }
}
