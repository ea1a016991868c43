//! Aggregations computed while storage walks the series, for the shapes
//! rules and dashboards use most: `op by (…) (f(metric{…}[r]))` with a range
//! function such as `rate`, and `op by (…) (metric{…})`.
//!
//! Each series is handed over by [`Queryable::for_each_series`] (decoded into
//! one reused buffer, labels borrowed), turned into its points by the same
//! per-series code as the general path, and folded into its group's
//! accumulators at once. Nothing is kept per series: no label copies, no
//! sample vectors, no output series that the aggregation would drop again.
//! Series come in the storage's order (for the head, creation order, which
//! is the order Prometheus's head hands to its aggregations).
//!
//! Other shapes, and groupings too large for one accumulator per (group,
//! step), take the general path in `aggregate.rs`.
//!
//! [`Queryable::for_each_series`]: crate::storage::Queryable::for_each_series

use std::ops::ControlFlow;
use std::time::Instant;

use super::aggregate::{accumulate_points, finish_cells, Acc, Grouper, SERIES_MAJOR_MAX_CELLS};
use super::eval::{points_in, Evaluator, RangeInput, Val};
use super::functions::{range_points_of, streamable_range_fn, RangeFnKind};
use super::plan::{AggOp, Grouping, Plan, Selector};
use super::QueryError;
use crate::model::{is_stale_nan, Sample, METRIC_NAME};

/// Where each series' points come from.
enum Source<'p> {
    /// A range function over a matrix selector; `spec` places the windows.
    Range { sel: &'p Selector, kind: RangeFnKind, spec: RangeInput, mint: i64, maxt: i64 },
    /// An instant vector selector.
    Instant { sel: &'p Selector, at: Option<i64>, mint: i64, maxt: i64 },
}

impl<'p> Source<'p> {
    /// The source of `expr` under `grouping`, when it can be streamed.
    fn of(ev: &Evaluator<'_>, expr: &'p Plan, grouping: &Grouping) -> Option<Self> {
        match expr {
            Plan::Selector(sel) if sel.or_matchers.is_empty() => {
                let (at, mint, maxt) = ev.vector_bounds(sel);
                Some(Source::Instant { sel, at, mint, maxt })
            }
            Plan::Call { func, args } if args.len() == 1 => {
                let Plan::MatrixSelector { sel, range } = &args[0] else { return None };
                let kind = streamable_range_fn(func)?;
                // The function drops `__name__`: a grouping by it, or inputs
                // whose labels could collide once names are dropped (an error
                // the general path reports), are left to that path.
                let one_name =
                    sel.matchers.iter().any(|m| m.name == METRIC_NAME && m.op == crate::model::MatchOp::Equal);
                let by_name = !grouping.without && grouping.labels.iter().any(|n| n == METRIC_NAME);
                if !sel.or_matchers.is_empty() || !one_name || by_name {
                    return None;
                }
                let (at, mint, maxt) = ev.matrix_bounds(sel, *range);
                let spec = RangeInput { series: Vec::new(), range: *range, offset: sel.offset, at, selector: None };
                Some(Source::Range { sel, kind, spec, mint, maxt })
            }
            _ => None,
        }
    }
}

/// Why a walk stopped early.
enum Stop {
    /// The query fails with this error.
    Failed(QueryError),
    /// Too many (group, step) cells: evaluate the general way instead.
    TooManyCells,
}

/// `op by/without (…) (expr)` evaluated while walking storage, or `None`
/// when the shape is not one this module handles.
pub(super) fn aggregate(
    ev: &mut Evaluator<'_>,
    op: AggOp,
    expr: &Plan,
    grouping: &Grouping,
) -> Option<Result<Val, QueryError>> {
    use AggOp::*;
    if !matches!(op, Sum | Avg | Count | Min | Max | Group | Stddev | Stdvar) {
        return None;
    }
    let source = Source::of(ev, expr, grouping)?;
    let (sel, mint, maxt) = match &source {
        Source::Range { sel, mint, maxt, .. } | Source::Instant { sel, mint, maxt, .. } => (*sel, *mint, *maxt),
    };
    let n = ev.nsteps();
    let deadline = ev.limits.deadline;
    let max_samples = ev.limits.max_samples;
    let storage = ev.storage;
    let evr: &Evaluator<'_> = ev;
    let mut grouper = Grouper::new(grouping);
    let mut acc: Vec<Acc> = Vec::new();
    let mut points: Vec<Sample> = Vec::new();
    let mut clean: Vec<Sample> = Vec::new();
    let mut scratch: Vec<f64> = Vec::new();
    let mut stop: Option<Stop> = None;
    let mut walked = 0u32;
    let walk = storage.for_each_series(mint, maxt, &sel.matchers, &mut |labels, samples| {
        walked = walked.wrapping_add(1);
        if walked % 256 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            stop = Some(Stop::Failed(QueryError::Timeout));
            return ControlFlow::Break(());
        }
        // Only one series' samples are held at a time, as in Prometheus's
        // evaluation of a range function series by series.
        if max_samples > 0 && samples.len() > max_samples {
            stop = Some(Stop::Failed(QueryError::TooManySamples));
            return ControlFlow::Break(());
        }
        points.clear();
        match &source {
            Source::Range { kind, spec, .. } => {
                let samples = if samples.iter().any(|s| is_stale_nan(s.v)) {
                    clean.clear();
                    clean.extend(samples.iter().filter(|s| !is_stale_nan(s.v)));
                    &clean[..]
                } else {
                    samples
                };
                range_points_of(evr, *kind, spec, samples, &mut scratch, &mut points);
            }
            Source::Instant { at, sel, .. } => evr.instant_points(*at, sel.offset, samples, false, &mut points),
        }
        if points.is_empty() {
            return ControlFlow::Continue(());
        }
        let g = grouper.group_of(labels);
        let end = (g + 1).saturating_mul(n);
        if end > acc.len() {
            if end > SERIES_MAJOR_MAX_CELLS {
                stop = Some(Stop::TooManyCells);
                return ControlFlow::Break(());
            }
            acc.resize(end, Acc::default());
        }
        accumulate_points(evr, op, &mut acc[g * n..end], &points);
        ControlFlow::Continue(())
    });
    if let Err(e) = walk {
        return Some(Err(QueryError::Storage(e)));
    }
    match stop {
        Some(Stop::TooManyCells) => return None,
        Some(Stop::Failed(e)) => return Some(Err(e)),
        None => {}
    }
    let out = finish_cells(ev, op, &acc, grouper.labels);
    Some(ev.limits.add_samples(points_in(&out)).map(|()| Val::Vector(out)))
}
