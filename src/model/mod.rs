//! The data model every stage shares: label sets, label matchers and samples.
//!
//! This module depends on nothing else in promlite.

pub mod labels;
pub mod matcher;
pub mod sample;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use sample::{is_stale_nan, Sample, STALE_NAN, STALE_NAN_BITS};
