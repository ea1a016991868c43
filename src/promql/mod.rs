//! PromQL: parsing into promlite's own plan, and an evaluator over the
//! storage seam ([`crate::storage::Queryable`]).
//!
//! [`Engine`] runs instant and range queries with one evaluator: an instant
//! query is a range query with a single step. Semantics follow Prometheus 3
//! (left-open range and lookback windows, stale markers, extrapolated rates,
//! classic-bucket `histogram_quantile`); see each module for the Prometheus
//! code it mirrors.

mod aggregate;
mod binary;
pub mod convert;
mod eval;
pub mod functions;
pub mod plan;
pub mod series_notation;
mod streamed;
pub mod value;

use std::time::{Duration, Instant};

pub use convert::{parse, ParseError};
pub use plan::Plan;
pub use value::{format_float, format_time_seconds, push_float, push_time_seconds, QueryValue, Series, VectorSample};

use crate::model::Labels;
use crate::storage::{Queryable, StorageError};
use eval::{Evaluator, Limits, Val};

/// Why a query failed; [`QueryError::error_type`] and [`QueryError::http_status`]
/// give the API's mapping.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse or type-check.
    #[error("{0}")]
    Parse(String),
    /// Invalid parameters (bad step, too many points, wrong result type).
    #[error("{0}")]
    BadData(String),
    /// An error raised during evaluation (Prometheus's `errorf`).
    #[error("{0}")]
    Execution(String),
    /// More samples than `max_samples` would be held in memory.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The query ran longer than its timeout.
    #[error("query timed out in query execution")]
    Timeout,
    /// Storage failed.
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
}

impl QueryError {
    /// Prometheus's `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples => "execution",
            QueryError::Timeout => "timeout",
            QueryError::Storage(_) => "internal",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => 400,
            QueryError::Execution(_) | QueryError::TooManySamples => 422,
            QueryError::Timeout => 503,
            QueryError::Storage(_) => 500,
        }
    }
}

/// Engine settings (Prometheus's defaults).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (default 5m).
    pub lookback_delta: Duration,
    /// Maximum samples held in memory by one query (default 50,000,000; 0 = unlimited).
    pub max_samples: usize,
    /// Query timeout (default 2m).
    pub timeout: Duration,
    /// Maximum points per series of a range query (default 11,000).
    pub max_points_per_series: i64,
    /// Step of subqueries written without one (default 1m).
    pub default_subquery_step: Duration,
    /// Threads one query may use to walk and compute the series of a
    /// streamed aggregation over many steps (default: the machine's cores,
    /// at most 4; 1 computes on the calling thread only). Results are the
    /// same bits whatever the number.
    pub walk_threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_points_per_series: 11_000,
            default_subquery_step: Duration::from_secs(60),
            walk_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        }
    }
}

/// Runs PromQL queries against any [`Queryable`].
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Engine {
    /// An engine with these options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    fn run(&self, storage: &dyn Queryable, plan: &Plan, start: i64, end: i64, step: i64) -> Result<Val, QueryError> {
        let query_step = if start == end { 0 } else { step };
        let mut limits = Limits {
            max_samples: self.opts.max_samples,
            samples: 0,
            deadline: Instant::now().checked_add(self.opts.timeout),
            checks: 0,
            walk_threads: self.opts.walk_threads.max(1),
        };
        let mut ev = Evaluator {
            storage,
            start,
            end,
            step: step.max(1),
            query_start: start,
            query_end: end,
            query_step,
            lookback: ms(self.opts.lookback_delta).max(1),
            subquery_step: ms(self.opts.default_subquery_step).max(1),
            limits: &mut limits,
        };
        ev.eval(plan)
    }

    /// Evaluates a parsed query at one time (milliseconds).
    pub fn instant(&self, storage: &dyn Queryable, plan: &Plan, t: i64) -> Result<QueryValue, QueryError> {
        Ok(match self.run(storage, plan, t, t, 1)? {
            Val::Scalar(v) => QueryValue::Scalar { t, v: v.first().copied().unwrap_or(f64::NAN) },
            Val::Str(s) => QueryValue::String { t, v: s },
            Val::Vector(series) => QueryValue::Vector(
                series
                    .into_iter()
                    .filter_map(|s| {
                        let v = s.points.first()?.v;
                        Some(VectorSample { labels: s.labels, t, v })
                    })
                    .collect(),
            ),
            Val::Matrix(m) => QueryValue::Matrix(m),
        })
    }

    /// Evaluates a parsed query over `[start, end]` every `step` (milliseconds).
    /// The result is a matrix sorted by labels.
    pub fn range(
        &self,
        storage: &dyn Queryable,
        plan: &Plan,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryValue, QueryError> {
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadData("end timestamp must not be before start time".into()));
        }
        if end.saturating_sub(start) / step >= self.opts.max_points_per_series {
            return Err(QueryError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                    .into(),
            ));
        }
        eval::check_range_query_type(plan)?;
        let mut series = match self.run(storage, plan, start, end, step)? {
            Val::Scalar(v) => {
                let points =
                    v.iter().enumerate().map(|(i, &x)| crate::model::Sample::new(start + i as i64 * step, x)).collect();
                vec![Series { labels: Labels::empty(), points }]
            }
            Val::Vector(s) => s,
            _ => return Err(QueryError::BadData("range query must return a scalar or an instant vector".into())),
        };
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(QueryValue::Matrix(series))
    }

    /// Parses and evaluates `query` at `t` (milliseconds).
    pub fn instant_query(&self, storage: &dyn Queryable, query: &str, t: i64) -> Result<QueryValue, QueryError> {
        let plan = parse(query).map_err(|e| QueryError::Parse(e.0))?;
        self.instant(storage, &plan, t)
    }

    /// Parses and evaluates `query` over a range (milliseconds).
    pub fn range_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryValue, QueryError> {
        let plan = parse(query).map_err(|e| QueryError::Parse(e.0))?;
        self.range(storage, &plan, start, end, step)
    }
}
