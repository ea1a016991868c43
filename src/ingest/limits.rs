//! Size limits on remote_write requests, each counted in `/metrics` by name
//! when it trips.

/// Limits applied to every remote_write request. The defaults are generous
/// for Prometheus senders (which send ~2000 samples, a few hundred KiB, per
/// request) while keeping one request's memory bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Compressed body bytes; above it the request is answered 413 before
    /// (or while) reading it.
    pub body_bytes: usize,
    /// Decompressed bytes, checked against the snappy length header before any
    /// allocation; above it the request is answered 413. Capped at `u32::MAX`.
    pub decompressed_bytes: usize,
    /// Series in one request; above it the whole request is answered 413.
    pub series_per_request: usize,
    /// Labels in one series (after dropping empty values); above it that
    /// series is rejected (400), the rest of the request is stored.
    pub labels_per_series: usize,
    /// Bytes in one label name; above it the series is rejected (400).
    pub label_name_bytes: usize,
    /// Bytes in one label value; above it the series is rejected (400).
    pub label_value_bytes: usize,
    /// Requests decoded and appended at the same time; more wait for a slot
    /// before their body is read, which bounds the receiver's memory to about
    /// `max_in_flight * (body_bytes + decompressed_bytes)`.
    pub max_in_flight: usize,
    /// Series whose validated storage handle is cached between requests
    /// (about 48 bytes each, plus ~200 for an entry whose series the head has
    /// since dropped; 0 disables the cache). See [`super::refcache`].
    pub ref_cache_series: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 32 << 20,
            decompressed_bytes: 128 << 20,
            series_per_request: 100_000,
            labels_per_series: 128,
            label_name_bytes: 1024,
            label_value_bytes: 16 << 10,
            max_in_flight: 32,
            ref_cache_series: 2_000_000,
        }
    }
}

/// The name a limit has in the `limit` label of
/// `promlite_ingest_limit_hits_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitName {
    /// [`Limits::body_bytes`].
    BodyBytes,
    /// [`Limits::decompressed_bytes`].
    DecompressedBytes,
    /// [`Limits::series_per_request`].
    SeriesPerRequest,
    /// [`Limits::labels_per_series`].
    LabelsPerSeries,
    /// [`Limits::label_name_bytes`].
    LabelNameBytes,
    /// [`Limits::label_value_bytes`].
    LabelValueBytes,
}

impl LimitName {
    /// The label value used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitName::BodyBytes => "body_bytes",
            LimitName::DecompressedBytes => "decompressed_bytes",
            LimitName::SeriesPerRequest => "series_per_request",
            LimitName::LabelsPerSeries => "labels_per_series",
            LimitName::LabelNameBytes => "label_name_bytes",
            LimitName::LabelValueBytes => "label_value_bytes",
        }
    }
}

impl From<&crate::config::RemoteWriteLimits> for Limits {
    /// The `promlite.remote_write` config section; `max_in_flight` keeps its
    /// default (it is not configurable there yet).
    fn from(c: &crate::config::RemoteWriteLimits) -> Self {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Limits {
            body_bytes: n(c.max_body_bytes.0),
            decompressed_bytes: n(c.max_decompressed_bytes.0).min(u32::MAX as usize),
            series_per_request: n(c.max_series_per_request),
            labels_per_series: n(c.max_labels_per_series),
            label_name_bytes: n(c.max_label_name_length),
            label_value_bytes: n(c.max_label_value_length),
            ..Limits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_section_defaults_match_ours() {
        let from_config = Limits::from(&crate::config::RemoteWriteLimits::default());
        assert_eq!(from_config, Limits::default());
    }
}
