//! Query results and their text formatting.

use std::fmt::Write as _;

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
    let mut s = String::new();
    push_float(&mut s, v);
    s
}

/// Appends `v` formatted as [`format_float`] does, without allocating.
pub fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Formats a millisecond timestamp as unix seconds the way the API does
/// (Go's `strconv.FormatFloat(float64(t)/1000, 'f', -1, 64)`).
pub fn format_time_seconds(t: i64) -> String {
    let mut s = String::new();
    push_time_seconds(&mut s, t);
    s
}

/// Appends `t` (milliseconds) formatted as [`format_time_seconds`] does.
/// Below 10^15 ms the exact decimal `t / 1000` (at most 15 significant
/// digits) is the shortest decimal that reads back as the same double, so
/// it is printed from the integer; larger times go through the double.
pub fn push_time_seconds(out: &mut String, t: i64) {
    let a = t.unsigned_abs();
    if a >= 1_000_000_000_000_000 {
        let _ = write!(out, "{}", t as f64 / 1000.0);
        return;
    }
    if t < 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", a / 1000);
    let mut ms = a % 1000;
    if ms != 0 {
        out.push('.');
        let mut digits = 3;
        while ms.is_multiple_of(10) {
            ms /= 10;
            digits -= 1;
        }
        let _ = write!(out, "{ms:0digits$}");
    }
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
        assert_eq!(format_time_seconds(1_796_609_664_050), "1796609664.05");
        assert_eq!(format_time_seconds(-1_005), "-1.005");
        assert_eq!(format_time_seconds(7), "0.007");
    }

    #[test]
    fn times_print_as_the_double_t_over_1000_does() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut cases: Vec<i64> = vec![0, 1, -1, 999, 1000, 1001, -999_999, 999_999_999_999_999, -999_999_999_999_999];
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Across magnitudes, including past the integer path's limit.
            let t = ((x >> (x % 50)) as i64).wrapping_mul(if x & 1 == 0 { 1 } else { -1 });
            cases.push(t);
        }
        for t in cases {
            assert_eq!(format_time_seconds(t), format!("{}", t as f64 / 1000.0), "t = {t}");
        }
    }
}
