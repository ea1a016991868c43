//! The evaluator: one engine for instant and range queries.
//!
//! Every node is evaluated once for all steps of the query: an instant query
//! is a range query with one step. Intermediate instant vectors are series
//! whose points sit on the step timestamps; range inputs (matrix selectors
//! and subqueries) are selected or evaluated once for the whole query range
//! and windows slide over the decoded samples, so storage is never read per
//! step.

use std::collections::HashMap;
use std::time::Instant;

use super::plan::{At, Plan, Selector, ValueType};
use super::value::Series;
use super::{aggregate, binary, functions, QueryError};
use crate::model::{is_stale_nan, Labels, Matcher, Sample};
use crate::storage::Queryable;

/// An intermediate value covering every step of the current evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    /// A string literal.
    Str(String),
    /// Series with points on step timestamps.
    Vector(Vec<Series>),
    /// Raw samples per series (a range vector at a single evaluation time).
    Matrix(Vec<Series>),
}

/// A range input: raw samples (no stale markers) for the whole query range,
/// and how windows are placed over them.
pub(crate) struct RangeInput {
    /// Series with their samples, in selection order.
    pub series: Vec<Series>,
    /// Window length in milliseconds.
    pub range: i64,
    /// Offset in milliseconds.
    pub offset: i64,
    /// Fixed evaluation time from `@`, if any.
    pub at: Option<i64>,
    /// Whether the input came from a plain matrix selector (for `absent_over_time` labels).
    pub selector: Option<Selector>,
}

/// Shared limits and counters of one query.
pub(crate) struct Limits {
    pub max_samples: usize,
    pub samples: usize,
    pub deadline: Option<Instant>,
    pub checks: u32,
    /// Threads a streamed aggregation may walk storage with (1: the caller's only).
    pub walk_threads: usize,
}

impl Limits {
    /// Accounts for `n` more samples held in memory.
    pub fn add_samples(&mut self, n: usize) -> Result<(), QueryError> {
        self.samples = self.samples.saturating_add(n);
        if self.max_samples > 0 && self.samples > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        self.check_deadline()
    }

    /// Forgets `n` samples no longer held (inputs a node has consumed), so
    /// the limit applies to samples held at once, as in Prometheus.
    pub fn release(&mut self, n: usize) {
        self.samples = self.samples.saturating_sub(n);
    }

    /// Fails once the query's time is up (checked every few calls).
    pub fn check_deadline(&mut self) -> Result<(), QueryError> {
        self.checks = self.checks.wrapping_add(1);
        if let Some(d) = self.deadline {
            if self.checks % 8 == 1 && Instant::now() >= d {
                return Err(QueryError::Timeout);
            }
        }
        Ok(())
    }
}

/// Evaluation state for one (sub)query range.
pub(crate) struct Evaluator<'a> {
    pub storage: &'a dyn Queryable,
    /// First step (ms).
    pub start: i64,
    /// Last step (ms).
    pub end: i64,
    /// Step (ms, > 0).
    pub step: i64,
    /// The outermost query's start and end, for `@ start()` / `@ end()`.
    pub query_start: i64,
    /// See `query_start`.
    pub query_end: i64,
    /// The outermost query's step (0 for an instant query), for `step()`.
    pub query_step: i64,
    /// Lookback delta (ms).
    pub lookback: i64,
    /// Default subquery step (ms).
    pub subquery_step: i64,
    /// Limits shared by all nested evaluators.
    pub limits: &'a mut Limits,
}

/// An error raised while evaluating (Prometheus's `ev.errorf`).
pub(crate) fn exec_err(msg: impl Into<String>) -> QueryError {
    QueryError::Execution(msg.into())
}

impl Evaluator<'_> {
    /// Number of steps.
    pub fn nsteps(&self) -> usize {
        ((self.end - self.start) / self.step + 1).max(0) as usize
    }

    /// Timestamp of step `i`.
    #[inline]
    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Step index of a point timestamp.
    #[inline]
    pub fn step_of(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }

    fn resolve_at(&self, at: Option<At>) -> Option<i64> {
        at.map(|a| match a {
            At::Start => self.query_start,
            At::End => self.query_end,
            At::Time(t) => t,
        })
    }

    /// Evaluates a node for every step.
    pub fn eval(&mut self, plan: &Plan) -> Result<Val, QueryError> {
        self.limits.check_deadline()?;
        match plan {
            Plan::Number(v) => Ok(Val::Scalar(vec![*v; self.nsteps()])),
            Plan::Str(s) => Ok(Val::Str(s.clone())),
            Plan::Selector(sel) => Ok(Val::Vector(self.vector_selector(sel, false)?)),
            Plan::MatrixSelector { .. } | Plan::Subquery { .. } => {
                // A range vector as a result: only valid at a single time.
                let input = self.range_input(plan)?;
                let t = self.start;
                let reft = input.at.unwrap_or(t) - input.offset;
                let mut out = Vec::new();
                for s in input.series {
                    let pts: Vec<Sample> =
                        s.points.iter().copied().filter(|p| p.t > reft - input.range && p.t <= reft).collect();
                    if !pts.is_empty() {
                        out.push(Series { labels: s.labels, points: pts });
                    }
                }
                Ok(Val::Matrix(out))
            }
            Plan::Call { func, args } => functions::call(self, func, args),
            Plan::Aggregate { op, expr, param, grouping } => {
                aggregate::eval(self, *op, expr, param.as_deref(), grouping)
            }
            Plan::Binary { op, lhs, rhs, matching, return_bool } => {
                binary::eval(self, *op, lhs, rhs, matching.as_ref(), *return_bool)
            }
            Plan::Neg(e) => match self.eval(e)? {
                Val::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Val::Scalar(v))
                }
                Val::Vector(mut series) => {
                    for s in &mut series {
                        s.points.iter_mut().for_each(|p| p.v = -p.v);
                    }
                    Ok(Val::Vector(drop_names(series)?))
                }
                _ => Err(exec_err("unary minus applied to a non-numeric value")),
            },
        }
    }

    /// Evaluates a node expected to be a vector.
    pub fn eval_vector(&mut self, plan: &Plan) -> Result<Vec<Series>, QueryError> {
        match self.eval(plan)? {
            Val::Vector(v) => Ok(v),
            Val::Scalar(_) => Err(exec_err("expected instant vector, got scalar")),
            _ => Err(exec_err("expected instant vector")),
        }
    }

    /// Evaluates a node expected to be a scalar.
    pub fn eval_scalar(&mut self, plan: &Plan) -> Result<Vec<f64>, QueryError> {
        match self.eval(plan)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(exec_err("expected scalar")),
        }
    }

    /// Selects the series of a selector over `[mint, maxt]`, decoding samples.
    fn select(&mut self, sel: &Selector, mint: i64, maxt: i64) -> Result<Vec<(Labels, Vec<Sample>)>, QueryError> {
        let mut sets: Vec<&[Matcher]> = vec![&sel.matchers];
        for o in &sel.or_matchers {
            sets.push(o);
        }
        let mut out: Vec<(Labels, Vec<Sample>)> = Vec::new();
        for (i, ms) in sets.iter().enumerate() {
            let series = self.storage.select(mint, maxt, ms).map_err(QueryError::Storage)?;
            // Decode into one reused buffer, then keep an exact-size copy
            // (one allocation per series instead of a growing vector).
            let mut buf = Vec::new();
            out.reserve(series.len());
            for mut s in series {
                buf.clear();
                s.samples.collect_into(&mut buf);
                self.limits.add_samples(buf.len())?;
                out.push((s.labels, buf.as_slice().to_vec()));
            }
            if i > 0 {
                out.sort_by(|a, b| a.0.cmp(&b.0));
                out.dedup_by(|a, b| a.0 == b.0);
            }
        }
        Ok(out)
    }

    /// Evaluates an instant vector selector at every step: the newest sample
    /// in the left-open lookback window `(t - lookback, t]`, unless it is a
    /// stale marker. With `keep_time`, the point's value is the sample's
    /// timestamp in seconds (for `timestamp()`).
    pub fn vector_selector(&mut self, sel: &Selector, sample_time: bool) -> Result<Vec<Series>, QueryError> {
        let (at, mint, maxt) = self.vector_bounds(sel);
        let selected = self.select(sel, mint, maxt)?;
        let n = self.nsteps();
        let mut out = Vec::with_capacity(selected.len());
        for (labels, samples) in selected {
            let mut points = Vec::with_capacity(n.min(samples.len() * 2 + 1));
            self.instant_points(at, sel.offset, &samples, sample_time, &mut points);
            self.limits.release(samples.len());
            if !points.is_empty() {
                self.limits.add_samples(points.len())?;
                out.push(Series { labels, points });
            }
        }
        Ok(out)
    }

    /// The selection window `[mint, maxt]` of an instant vector selector.
    pub fn vector_bounds(&self, sel: &Selector) -> (Option<i64>, i64, i64) {
        let at = self.resolve_at(sel.at);
        let (mint, maxt) = match at {
            Some(a) => (a - sel.offset - self.lookback + 1, a - sel.offset),
            None => (self.start - sel.offset - self.lookback + 1, self.end - sel.offset),
        };
        (at, mint, maxt)
    }

    /// One series' points under an instant vector selector: at each step the
    /// newest sample in `(t - lookback, t]`, unless it is a stale marker
    /// (with `sample_time`, its timestamp in seconds), appended to `points`.
    pub fn instant_points(
        &self,
        at: Option<i64>,
        offset: i64,
        samples: &[Sample],
        sample_time: bool,
        points: &mut Vec<Sample>,
    ) {
        let first = points.len();
        let mut idx = 0usize;
        for i in 0..self.nsteps() {
            let ts = self.ts(i);
            let reft = at.unwrap_or(ts) - offset;
            if at.is_some() && i > 0 {
                // Same sample at every step.
                if let Some(p) = points.get(first..).and_then(|p| p.last()).copied() {
                    points.push(Sample::new(ts, p.v));
                }
                continue;
            }
            while idx < samples.len() && samples[idx].t <= reft {
                idx += 1;
            }
            if idx == 0 {
                continue;
            }
            let s = samples[idx - 1];
            if s.t <= reft - self.lookback || is_stale_nan(s.v) {
                continue;
            }
            points.push(Sample::new(ts, if sample_time { s.t as f64 / 1000.0 } else { s.v }));
        }
    }

    /// The selection window `[mint, maxt]` of a matrix selector.
    pub fn matrix_bounds(&self, sel: &Selector, range: i64) -> (Option<i64>, i64, i64) {
        let at = self.resolve_at(sel.at);
        let (mint, maxt) = match at {
            Some(a) => (a - sel.offset - range + 1, a - sel.offset),
            None => (self.start - sel.offset - range + 1, self.end - sel.offset),
        };
        (at, mint, maxt)
    }

    /// Produces the raw samples behind a matrix selector or subquery.
    pub fn range_input(&mut self, plan: &Plan) -> Result<RangeInput, QueryError> {
        match plan {
            Plan::MatrixSelector { sel, range } => {
                let (at, mint, maxt) = self.matrix_bounds(sel, *range);
                let selected = self.select(sel, mint, maxt)?;
                let series = selected
                    .into_iter()
                    .map(|(labels, mut samples)| {
                        samples.retain(|s| !is_stale_nan(s.v));
                        Series { labels, points: samples }
                    })
                    .collect();
                Ok(RangeInput { series, range: *range, offset: sel.offset, at, selector: Some(sel.clone()) })
            }
            Plan::Subquery { expr, range, step, offset, at } => {
                let at = self.resolve_at(*at);
                let step = step.unwrap_or(self.subquery_step).max(1);
                let (raw_start, end) = match at {
                    Some(a) => (a - offset - range, a - offset),
                    None => (self.start - offset - range, self.end - offset),
                };
                let mut start = step * raw_start.div_euclid(step);
                if start <= raw_start {
                    start += step;
                }
                // Every inner step holds at least one value: refuse ranges
                // the sample limit could never hold before allocating them.
                let inner_steps = (end.saturating_sub(start) / step).saturating_add(1);
                if self.limits.max_samples > 0 && inner_steps > self.limits.max_samples as i64 {
                    return Err(QueryError::TooManySamples);
                }
                let mut sub = Evaluator {
                    storage: self.storage,
                    start,
                    end,
                    step,
                    query_start: self.query_start,
                    query_end: self.query_end,
                    query_step: self.query_step,
                    lookback: self.lookback,
                    subquery_step: self.subquery_step,
                    limits: &mut *self.limits,
                };
                let series = if start > end {
                    Vec::new()
                } else {
                    match sub.eval(expr)? {
                        Val::Vector(v) => v,
                        Val::Scalar(v) => {
                            let points: Vec<Sample> =
                                v.iter().enumerate().map(|(i, &x)| Sample::new(sub.ts(i), x)).collect();
                            vec![Series { labels: Labels::empty(), points }]
                        }
                        _ => return Err(exec_err("subquery is only allowed on instant vector or scalar")),
                    }
                };
                Ok(RangeInput { series, range: *range, offset: *offset, at, selector: None })
            }
            _ => Err(exec_err(format!("expected range vector, got {}", super::convert::type_name(plan.value_type())))),
        }
    }

    /// Slides the window of every step over one series' samples and calls
    /// `f(window, step_index, window_start, window_end)` for each step.
    pub fn for_each_window(
        &self,
        input: &RangeInput,
        samples: &[Sample],
        mut f: impl FnMut(&[Sample], usize, i64, i64),
    ) {
        let n = self.nsteps();
        let (mut lo, mut hi) = (0usize, 0usize);
        for i in 0..n {
            let reft = input.at.unwrap_or(self.ts(i)) - input.offset;
            let mint = reft - input.range;
            if input.at.is_some() {
                lo = samples.partition_point(|s| s.t <= mint);
                hi = samples.partition_point(|s| s.t <= reft);
            } else {
                while lo < samples.len() && samples[lo].t <= mint {
                    lo += 1;
                }
                if hi < lo {
                    hi = lo;
                }
                while hi < samples.len() && samples[hi].t <= reft {
                    hi += 1;
                }
            }
            f(&samples[lo..hi], i, mint, reft);
        }
    }
}

/// Number of points held by `series`.
pub(crate) fn points_in(series: &[Series]) -> usize {
    series.iter().map(|s| s.points.len()).sum()
}

/// Checks that no two series share a label set at the same step, merging
/// series with equal labels whose points do not overlap (Prometheus's
/// "vector cannot contain metrics with the same labelset").
pub(crate) fn dedupe(series: Vec<Series>) -> Result<Vec<Series>, QueryError> {
    if series.len() < 2 {
        return Ok(series);
    }
    let mut index: HashMap<Labels, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(series.len(), Default::default());
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    for s in series {
        match index.get(&s.labels) {
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&i) => {
                let dst = &mut out[i];
                let mut merged = Vec::with_capacity(dst.points.len() + s.points.len());
                let (a, b) = (&dst.points, &s.points);
                let (mut x, mut y) = (0, 0);
                while x < a.len() || y < b.len() {
                    if y >= b.len() || (x < a.len() && a[x].t < b[y].t) {
                        merged.push(a[x]);
                        x += 1;
                    } else if x >= a.len() || b[y].t < a[x].t {
                        merged.push(b[y]);
                        y += 1;
                    } else {
                        return Err(exec_err("vector cannot contain metrics with the same labelset"));
                    }
                }
                dst.points = merged;
            }
        }
    }
    Ok(out)
}

/// A copy of `l` without `__name__`, built straight from the packed
/// encoding (no per-label allocations; the hot path of every function).
pub(crate) fn without_name(l: &Labels) -> Labels {
    if l.metric_name().is_none() {
        return l.clone();
    }
    let mut buf = Vec::with_capacity(l.as_bytes().len());
    for p in l.iter() {
        if p.name == crate::model::METRIC_NAME {
            continue;
        }
        push_uvarint(&mut buf, p.name.len());
        buf.extend_from_slice(p.name.as_bytes());
        push_uvarint(&mut buf, p.value.len());
        buf.extend_from_slice(p.value.as_bytes());
    }
    // The pairs come from a valid set in order, so decoding cannot fail;
    // fall back to the builder if it ever did.
    Labels::from_bytes(&buf).unwrap_or_else(|_| l.without_metric_name())
}

fn push_uvarint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Drops `__name__` from every series, then checks for duplicates (skipped
/// when every input shares one name, since the inputs are unique).
pub(crate) fn drop_names(mut series: Vec<Series>) -> Result<Vec<Series>, QueryError> {
    let first = series.first().and_then(|s| s.labels.metric_name().map(str::to_string));
    let same = series.iter().all(|s| s.labels.metric_name() == first.as_deref());
    for s in &mut series {
        if s.labels.metric_name().is_some() {
            s.labels = without_name(&s.labels);
        }
    }
    if same {
        Ok(series)
    } else {
        dedupe(series)
    }
}

/// The type check the API applies to range queries.
pub(crate) fn check_range_query_type(plan: &Plan) -> Result<(), QueryError> {
    match plan.value_type() {
        ValueType::Scalar | ValueType::Vector => Ok(()),
        t => Err(QueryError::BadData(format!(
            "invalid expression type {:?} for range query, must be Scalar or instant Vector",
            super::convert::type_name(t)
        ))),
    }
}
