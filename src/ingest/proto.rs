//! Rust mirrors of `proto/remote_write_v1.proto`, written by hand with
//! `prost`'s derive (no protoc, no build script).
//!
//! The receiver's hot path does not use these: it decodes with the zero-copy
//! decoder in [`super::decode`]. These structs are the reference the decoder
//! is tested against, and what the load tool and tests use to *encode*
//! requests.

/// `WriteRequest`: the body of one remote_write 1.0 request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// Field 1: the series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Field 3: metric family metadata (skipped by the receiver).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `TimeSeries`: one label set and its samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Field 1: the labels, sorted by name by conforming senders.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Field 2: float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Field 3: exemplars (skipped by the receiver).
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Field 4: native histograms (not stored; reported as rejected).
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `Label`: one name/value pair.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `Sample`: one float sample.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Field 1.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Field 2: milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `Exemplar`: a sample with its own labels (e.g. a trace id).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Field 2.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Field 3.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// A native histogram. Only its presence matters to promlite; the one field
/// kept here (the timestamp, field 15 in Prometheus's message) lets tests
/// send a non-empty histogram.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Field 15: milliseconds since the Unix epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

/// `MetricMetadata`: type, help and unit of a metric family.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// Field 1: the `MetricType` enum as its number.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Field 4.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Field 5.
    #[prost(string, tag = "5")]
    pub unit: String,
}

impl WriteRequest {
    /// The protobuf encoding compressed with the snappy block format, as a
    /// remote_write sender puts it on the wire.
    pub fn encode_snappy(&self) -> Result<Vec<u8>, snap::Error> {
        let raw = prost::Message::encode_to_vec(self);
        snap::raw::Encoder::new().compress_vec(&raw)
    }
}
