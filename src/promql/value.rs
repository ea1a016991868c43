//! Query results and their text formatting.

use crate::model::{Labels, Sample};

/// One series of a result: its labels and points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Points (`t` in milliseconds).
    pub points: Vec<Sample>,
}

/// One element of an instant vector result.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// The series' labels.
    pub labels: Labels,
    /// Evaluation time in milliseconds.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// A scalar at time `t`.
    Scalar {
        /// Milliseconds.
        t: i64,
        /// The value.
        v: f64,
    },
    /// A string at time `t`.
    String {
        /// Milliseconds.
        t: i64,
        /// The value.
        v: String,
    },
    /// An instant vector (order as evaluated; see `sort`).
    Vector(Vec<VectorSample>),
    /// A range vector, or the result of a range query (sorted by labels).
    Matrix(Vec<Series>),
}

impl QueryValue {
    /// The API's `resultType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryValue::Scalar { .. } => "scalar",
            QueryValue::String { .. } => "string",
            QueryValue::Vector(_) => "vector",
            QueryValue::Matrix(_) => "matrix",
        }
    }
}

/// Formats a float as Prometheus does (Go's `strconv.FormatFloat(v, 'f', -1, 64)`,
/// with `+Inf`, `-Inf` and `NaN`). Rust's shortest round-trip `Display` prints
/// finite values exactly as Go's `'f'` format with precision -1 does.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// Formats a millisecond timestamp as unix seconds the way the API does
/// (Go's `strconv.FormatFloat(float64(t)/1000, 'f', -1, 64)`).
pub fn format_time_seconds(t: i64) -> String {
    format!("{}", t as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(-2.5), "-2.5");
        assert_eq!(format_time_seconds(1_500), "1.5");
        assert_eq!(format_time_seconds(3_000), "3");
    }
}
