//! Aggregations and filters computed while storage walks the series, for
//! the shapes rules and dashboards use most: `op by (…) (f(metric{…}[r]))`
//! with a range function such as `rate`, `op by (…) (metric{…})`, and
//! `metric{…} < 5`.
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
use super::binary::apply;
use super::eval::{points_in, Evaluator, RangeInput, Val};
use super::functions::{pairs_never_decrease, range_points, range_points_with, streamable_range_fn, RangeFn};
use super::plan::{AggOp, BinOp, Grouping, Plan, Selector};
use super::value::Series;
use super::QueryError;
use crate::model::{is_stale_nan, Sample, METRIC_NAME};

/// Where each series' points come from.
enum Source<'p> {
    /// A range function over a matrix selector; `spec` places the windows.
    Range { sel: &'p Selector, kind: RangeFn, spec: RangeInput, mint: i64, maxt: i64 },
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

impl Source<'_> {
    /// The selector walked and the time range read.
    fn walked(&self) -> (&Selector, i64, i64) {
        match self {
            Source::Range { sel, mint, maxt, .. } | Source::Instant { sel, mint, maxt, .. } => (sel, *mint, *maxt),
        }
    }
}

/// Turns one series' samples into its points, with reused buffers.
struct PointMaker<'s, 'p> {
    source: &'s Source<'p>,
    clean: Vec<Sample>,
    scratch: Vec<f64>,
}

impl<'s, 'p> PointMaker<'s, 'p> {
    fn new(source: &'s Source<'p>) -> Self {
        PointMaker { source, clean: Vec::new(), scratch: Vec::new() }
    }

    /// Appends the points of a series with `samples` to `points`.
    fn push_points(&mut self, ev: &Evaluator<'_>, samples: &[Sample], points: &mut Vec<Sample>) {
        match self.source {
            Source::Range { kind, spec, .. } => {
                // The common case in one pass: no value below the one before
                // and none NaN means no stale marker and no counter reset.
                if samples.first().is_some_and(|s| !s.v.is_nan()) && pairs_never_decrease(samples) {
                    range_points_with(ev, *kind, spec, samples, false, &[], &mut self.scratch, points);
                    return;
                }
                let samples = if samples.iter().any(|s| is_stale_nan(s.v)) {
                    self.clean.clear();
                    self.clean.extend(samples.iter().filter(|s| !is_stale_nan(s.v)));
                    &self.clean[..]
                } else {
                    samples
                };
                range_points(ev, *kind, spec, samples, &[], &mut self.scratch, points);
            }
            Source::Instant { at, sel, .. } => ev.instant_points(*at, sel.offset, samples, false, points),
        }
    }
}

/// The accumulators of every (group, step) cell, group-major, and the
/// groups' labels in order of first appearance.
struct Cells<'g> {
    grouper: Grouper<'g>,
    acc: Vec<Acc>,
    steps: usize,
}

impl<'g> Cells<'g> {
    fn new(grouping: &'g Grouping, steps: usize) -> Self {
        Cells { grouper: Grouper::new(grouping), acc: Vec::new(), steps }
    }

    /// Folds one series' points into group `g`'s cells.
    fn fold(&mut self, ev: &Evaluator<'_>, op: AggOp, g: usize, points: &[Sample]) -> Result<(), Stop> {
        let n = self.steps;
        let end = (g + 1).saturating_mul(n);
        if end > self.acc.len() {
            if end > SERIES_MAJOR_MAX_CELLS {
                return Err(Stop::TooManyCells);
            }
            self.acc.resize(end, Acc::default());
        }
        accumulate_points(ev, op, &mut self.acc[g * n..end], points);
        Ok(())
    }
}

/// Range queries with at least this many steps walk on several threads
/// (when allowed): each series then costs many windows, far more than
/// handing its points over to be folded in walk order.
const PARALLEL_MIN_STEPS: usize = 16;

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
    let threads = ev.limits.walk_threads;
    let evr: &Evaluator<'_> = ev;
    let folded = if threads > 1 && evr.nsteps() >= PARALLEL_MIN_STEPS {
        parallel::fold(evr, op, &source, grouping, threads)
    } else {
        fold_serial(evr, op, &source, grouping)
    };
    let cells = match folded {
        Ok(cells) => cells,
        Err(Stop::TooManyCells) => return None,
        Err(Stop::Failed(e)) => return Some(Err(e)),
    };
    let out = finish_cells(ev, op, &cells.acc, cells.grouper.labels);
    Some(ev.limits.add_samples(points_in(&out)).map(|()| Val::Vector(out)))
}

/// The walk and fold on the calling thread.
fn fold_serial<'g>(
    ev: &Evaluator<'_>,
    op: AggOp,
    source: &Source<'_>,
    grouping: &'g Grouping,
) -> Result<Cells<'g>, Stop> {
    let (sel, mint, maxt) = source.walked();
    let mut guard = WalkGuard::new(ev);
    let mut cells = Cells::new(grouping, ev.nsteps());
    let mut maker = PointMaker::new(source);
    let mut points: Vec<Sample> = Vec::new();
    let walk = ev.storage.for_each_series(mint, maxt, &sel.matchers, &mut |labels, samples| {
        if guard.stops(samples.len()) {
            return ControlFlow::Break(());
        }
        points.clear();
        maker.push_points(ev, samples, &mut points);
        if points.is_empty() {
            return ControlFlow::Continue(());
        }
        let g = cells.grouper.group_of(labels);
        if let Err(stop) = cells.fold(ev, op, g, &points) {
            guard.stop = Some(stop);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    walk.map_err(|e| Stop::Failed(QueryError::Storage(e)))?;
    match guard.stop {
        Some(stop) => Err(stop),
        None => Ok(cells),
    }
}

/// The walk split between threads ([`Queryable::for_each_series_part`]):
/// the calling thread and `threads - 1` others each claim batches of the
/// walk and compute their series' points, and the points are folded in
/// walk order, so every accumulator sees the same values in the same order
/// as [`fold_serial`] and the results are the same bits.
///
/// There is no folding thread: a walker hands each message of points to
/// the fold, and whichever walker hands over the message next in walk order
/// while nobody is folding folds it, and any that were waiting for it. So
/// the walkers are all the threads there are (one per core), a message is
/// mostly folded by the thread that filled it, while still in its cache,
/// and a walker waits only when it runs ahead of the fold by more than
/// [`parallel::MAX_WAITING`] messages.
///
/// [`Queryable::for_each_series_part`]: crate::storage::Queryable::for_each_series_part
mod parallel {
    use std::collections::BTreeMap;
    use std::ops::ControlFlow;
    use std::sync::atomic::{AtomicBool, Ordering};

    use parking_lot::{Condvar, Mutex};

    use super::{Cells, Evaluator, PointMaker, Source, Stop, WalkGuard};
    use crate::model::{Labels, Sample};
    use crate::promql::aggregate::{group_labels, Grouper};
    use crate::promql::plan::{AggOp, Grouping};
    use crate::promql::QueryError;
    use crate::storage::{WalkEvent, WalkPart, WalkShare};

    /// Points a message holds at most before it is handed over: small
    /// enough to stay in cache until it is folded, and to bound memory
    /// (64 KiB per message).
    const MESSAGE_POINTS: usize = 1 << 12;

    /// Messages that may wait for their turn to be folded; a walker that
    /// would add one more waits instead (unless its message is the next).
    pub(super) const MAX_WAITING: usize = 8;

    /// One series' share of a message.
    struct SeriesPoints {
        /// Its group's key ([`Grouper::key_of`]).
        key: u64,
        /// The group's labels, when this walker had not met the group yet
        /// (the fold meets a group first in a message carrying them).
        labels: Option<Labels>,
        /// End of its points in the message's `points`.
        end: usize,
    }

    /// Points of consecutive series of one walk batch.
    #[derive(Default)]
    struct Message {
        series: Vec<SeriesPoints>,
        points: Vec<Sample>,
    }

    impl Message {
        /// An empty message with room for a full one (plus one series'
        /// points past the limit), so that filling it does not reallocate.
        fn with_room() -> Self {
            Message { series: Vec::new(), points: Vec::with_capacity(MESSAGE_POINTS + 1024) }
        }
    }

    /// A message's place in walk order: its batch, and its number within it.
    type Place = (usize, u32);

    /// The fold's progress, behind one lock.
    struct Order {
        /// The place of the message to fold next.
        next: Place,
        /// Messages handed over before their turn, with whether each ends its batch.
        waiting: BTreeMap<Place, (Message, bool)>,
        /// Whether a walker is folding (only one does at a time).
        folding: bool,
        /// Folded messages, emptied, for the walkers to fill again.
        spare: Vec<Message>,
        /// Why the fold stopped, when it did.
        failed: Option<Stop>,
    }

    /// What the walkers share.
    struct Fold<'g, 'e, 'q> {
        ev: &'e Evaluator<'q>,
        op: AggOp,
        order: Mutex<Order>,
        /// Signalled whenever a message is folded or the walk stops.
        room: Condvar,
        /// Locked only by the walker holding `Order::folding`.
        cells: Mutex<Cells<'g>>,
        /// Set when any walker fails or the fold stops: everyone ends.
        stop: AtomicBool,
    }

    impl Fold<'_, '_, '_> {
        fn stopped(&self) -> bool {
            self.stop.load(Ordering::Relaxed)
        }

        /// Ends the walk with `why` (the first reason given wins).
        fn fail(&self, why: Stop) {
            let mut o = self.order.lock();
            self.stop_under_lock(&mut o, why);
        }

        /// [`Fold::fail`] with the order already locked.
        fn stop_under_lock(&self, o: &mut Order, why: Stop) {
            o.failed.get_or_insert(why);
            self.stop.store(true, Ordering::Relaxed);
            self.room.notify_all();
        }

        /// Hands over the message at `place` (`last`: it ends its batch) and
        /// folds whatever is now due, unless another walker is folding.
        /// Returns an empty message to fill next, or `None` once the walk
        /// has stopped.
        fn hand_over(&self, place: Place, msg: Message, last: bool) -> Option<Message> {
            let mut o = self.order.lock();
            while o.waiting.len() >= MAX_WAITING && place != o.next && !self.stopped() {
                self.room.wait(&mut o);
            }
            if self.stopped() {
                return None;
            }
            o.waiting.insert(place, (msg, last));
            if !o.folding {
                o.folding = true;
                loop {
                    let next = o.next;
                    let Some(entry) = o.waiting.first_entry().filter(|e| *e.key() == next) else { break };
                    let (batch, n) = next;
                    let (mut m, last) = entry.remove();
                    o.next = if last { (batch + 1, 0) } else { (batch, n + 1) };
                    let folded = parking_lot::MutexGuard::unlocked(&mut o, || self.fold_message(&mut m));
                    m.series.clear();
                    m.points.clear();
                    o.spare.push(m);
                    self.room.notify_all();
                    if let Err(why) = folded {
                        self.stop_under_lock(&mut o, why);
                        break;
                    }
                }
                o.folding = false;
            }
            if self.stopped() {
                return None;
            }
            Some(o.spare.pop().unwrap_or_else(Message::with_room))
        }

        /// Folds one message's series into their groups' cells.
        fn fold_message(&self, msg: &mut Message) -> Result<(), Stop> {
            let mut cells = self.cells.lock();
            let mut start = 0;
            for s in &mut msg.series {
                let labels = s.labels.take();
                let mut missing = false;
                let g = cells.grouper.index_of(s.key, || {
                    missing = labels.is_none();
                    labels.unwrap_or_default()
                });
                if missing {
                    return Err(Stop::Failed(QueryError::Execution(
                        "internal error: a group first met without its labels".to_string(),
                    )));
                }
                cells.fold(self.ev, self.op, g, &msg.points[start..s.end])?;
                start = s.end;
            }
            Ok(())
        }
    }

    /// Stops the walk when its walker panics, so that the others do not
    /// wait for its batches forever (the panic itself reaches the caller
    /// when the threads are joined).
    struct StopOnPanic<'f, 'g, 'e, 'q>(&'f Fold<'g, 'e, 'q>);

    impl Drop for StopOnPanic<'_, '_, '_, '_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0
                    .fail(Stop::Failed(QueryError::Execution("internal error: a walking thread panicked".to_string())));
            }
        }
    }

    pub(super) fn fold<'g>(
        ev: &Evaluator<'_>,
        op: AggOp,
        source: &Source<'_>,
        grouping: &'g Grouping,
        threads: usize,
    ) -> Result<Cells<'g>, Stop> {
        let share = WalkShare::default();
        let fold = Fold {
            ev,
            op,
            order: Mutex::new(Order {
                next: (0, 0),
                waiting: BTreeMap::new(),
                folding: false,
                spare: Vec::new(),
                failed: None,
            }),
            room: Condvar::new(),
            cells: Mutex::new(Cells::new(grouping, ev.nsteps())),
            stop: AtomicBool::new(false),
        };
        let walk = |fold: &Fold<'g, '_, '_>| {
            let _unwinding = StopOnPanic(fold);
            if let Err(why) = walk_part(source, grouping, WalkPart::shared(&share), fold) {
                fold.fail(why);
            }
        };
        std::thread::scope(|scope| {
            let others: Vec<_> = (1..threads).map(|_| scope.spawn(|| walk(&fold))).collect();
            walk(&fold);
            for w in others {
                if let Err(panic) = w.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        });
        let order = fold.order.into_inner();
        if let Some(why) = order.failed {
            return Err(why);
        }
        if !order.waiting.is_empty() {
            return Err(Stop::Failed(QueryError::Execution(
                "internal error: a split walk ended with points not folded".to_string(),
            )));
        }
        Ok(fold.cells.into_inner())
    }

    /// One walker: the points of the series of the batches it claims, handed
    /// to the fold in messages.
    fn walk_part(
        source: &Source<'_>,
        grouping: &Grouping,
        part: WalkPart<'_>,
        fold: &Fold<'_, '_, '_>,
    ) -> Result<(), Stop> {
        let ev = fold.ev;
        let (sel, mint, maxt) = source.walked();
        let mut guard = WalkGuard::new(ev);
        let mut maker = PointMaker::new(source);
        let mut groups = Grouper::new(grouping);
        let mut msg = Message::with_room();
        let mut n: u32 = 0;
        let walk = ev.storage.for_each_series_part(mint, maxt, &sel.matchers, part, &mut |batch, event| {
            if fold.stopped() {
                return ControlFlow::Break(());
            }
            let (labels, samples) = match event {
                WalkEvent::Series(labels, samples) => (labels, samples),
                WalkEvent::BatchEnd => {
                    let Some(empty) = fold.hand_over((batch, n), std::mem::take(&mut msg), true) else {
                        return ControlFlow::Break(());
                    };
                    (msg, n) = (empty, 0);
                    return ControlFlow::Continue(());
                }
            };
            if guard.stops(samples.len()) {
                return ControlFlow::Break(());
            }
            if msg.points.len() >= MESSAGE_POINTS && !msg.series.is_empty() {
                let Some(empty) = fold.hand_over((batch, n), std::mem::take(&mut msg), false) else {
                    return ControlFlow::Break(());
                };
                (msg, n) = (empty, n + 1);
            }
            let start = msg.points.len();
            maker.push_points(ev, samples, &mut msg.points);
            if msg.points.len() == start {
                return ControlFlow::Continue(());
            }
            let key = groups.key_of(labels);
            let known = groups.labels.len();
            groups.index_of(key, || group_labels(grouping, labels));
            let labels = (groups.labels.len() > known).then(|| groups.labels[known].clone());
            msg.series.push(SeriesPoints { key, labels, end: msg.points.len() });
            ControlFlow::Continue(())
        });
        walk.map_err(|e| Stop::Failed(QueryError::Storage(e)))?;
        match guard.stop {
            Some(stop) => Err(stop),
            None => Ok(()),
        }
    }
}
/// `selector <cmp> number` or `number <cmp> selector` (a filter, no
/// `bool`) evaluated while walking storage: only series with a point left
/// after the comparison are copied out, sorted by labels as the general
/// path returns them. `None` for other shapes.
pub(super) fn compare_filter(
    ev: &mut Evaluator<'_>,
    op: BinOp,
    lhs: &Plan,
    rhs: &Plan,
    return_bool: bool,
) -> Option<Result<Val, QueryError>> {
    if !op.is_comparison() || return_bool {
        return None;
    }
    let (sel, c, scalar_left) = match (lhs, rhs) {
        (Plan::Selector(sel), Plan::Number(c)) => (sel, *c, false),
        (Plan::Number(c), Plan::Selector(sel)) => (sel, *c, true),
        _ => return None,
    };
    if !sel.or_matchers.is_empty() {
        return None;
    }
    let (at, mint, maxt) = ev.vector_bounds(sel);
    let mut guard = WalkGuard::new(ev);
    let storage = ev.storage;
    let evr: &Evaluator<'_> = ev;
    let mut points: Vec<Sample> = Vec::new();
    let mut out: Vec<Series> = Vec::new();
    let walk = storage.for_each_series(mint, maxt, &sel.matchers, &mut |labels, samples| {
        if guard.stops(samples.len()) {
            return ControlFlow::Break(());
        }
        points.clear();
        evr.instant_points(at, sel.offset, samples, false, &mut points);
        points.retain(|p| if scalar_left { apply(op, c, p.v).1 } else { apply(op, p.v, c).1 });
        if !points.is_empty() {
            out.push(Series { labels: labels.clone(), points: points.clone() });
        }
        ControlFlow::Continue(())
    });
    if let Err(e) = walk {
        return Some(Err(QueryError::Storage(e)));
    }
    if let Some(Stop::Failed(e)) = guard.stop {
        return Some(Err(e));
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Some(ev.limits.add_samples(points_in(&out)).map(|()| Val::Vector(out)))
}

/// The per-series checks of a walk: the deadline (every 256 series) and
/// the sample limit, which applies to one series' samples at a time, as in
/// Prometheus's evaluation series by series.
struct WalkGuard {
    deadline: Option<Instant>,
    max_samples: usize,
    walked: u32,
    stop: Option<Stop>,
}

impl WalkGuard {
    fn new(ev: &Evaluator<'_>) -> Self {
        WalkGuard { deadline: ev.limits.deadline, max_samples: ev.limits.max_samples, walked: 0, stop: None }
    }

    /// Whether the walk must stop before a series of `samples` samples
    /// (the reason is kept in `stop`).
    fn stops(&mut self, samples: usize) -> bool {
        self.walked = self.walked.wrapping_add(1);
        if self.walked.is_multiple_of(256) && self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stop = Some(Stop::Failed(QueryError::Timeout));
            return true;
        }
        if self.max_samples > 0 && samples > self.max_samples {
            self.stop = Some(Stop::Failed(QueryError::TooManySamples));
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Labels, STALE_NAN};
    use crate::promql::{Engine, EngineOptions, QueryValue};
    use crate::storage::Appendable;
    use crate::tsdb::db::{Db, DbOptions};

    /// A database whose series are created in label order, so the walk
    /// (creation order) and the general path (label order) add values in
    /// the same order and must agree bit for bit.
    fn db(dir: &std::path::Path) -> Db {
        let db = Db::open(dir, DbOptions::default()).unwrap();
        let mut app = db.appender();
        for i in 0..600u32 {
            let (g, inst) = (format!("g{}", i % 7), format!("i{i:04}"));
            let (mut counter, mut gauge) = (0.0f64, 0.0f64);
            for k in 0..60i64 {
                let t = k * 15_000 + i64::from(i % 13) * 100;
                counter += f64::from(i % 5) * 1.5 + (k % 3) as f64;
                if k == 31 && i % 4 == 0 {
                    counter = 2.0; // a reset
                }
                gauge = (gauge + f64::from(i) * 0.25).rem_euclid(97.0);
                let stale = k == 40 && i % 9 == 0;
                let c = Labels::from_pairs([("__name__", "c"), ("g", g.as_str()), ("inst", inst.as_str())]);
                let v = Labels::from_pairs([("__name__", "v"), ("g", g.as_str()), ("inst", inst.as_str())]);
                app.append(&c, t, if stale { STALE_NAN } else { counter }).unwrap();
                app.append(&v, t, if stale { STALE_NAN } else { gauge }).unwrap();
            }
        }
        app.commit().unwrap();
        db
    }

    fn bits(v: &QueryValue) -> Vec<(String, Vec<(i64, u64)>)> {
        match v {
            QueryValue::Vector(s) => s.iter().map(|x| (x.labels.to_string(), vec![(x.t, x.v.to_bits())])).collect(),
            QueryValue::Matrix(s) => s
                .iter()
                .map(|x| (x.labels.to_string(), x.points.iter().map(|p| (p.t, p.v.to_bits())).collect()))
                .collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn streamed_aggregations_match_the_general_path_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let e = Engine::new(EngineOptions::default());
        // Each streamed shape, and the same computation forced through the
        // general path (an extra node between aggregation and selector).
        let cases = [
            ("sum by (g) (rate(c[5m]))", "sum by (g) (rate(c[5m]) * 1)"),
            ("sum(increase(c[2m]))", "sum(increase(c[2m]) + 0)"),
            ("avg without (inst) (delta(v[5m]))", "avg without (inst) (delta(v[5m]) * 1)"),
            ("max by (g) (max_over_time(v[3m]))", "max by (g) (max_over_time(v[3m]) * 1)"),
            ("min by (g) (v)", "min by (g) (v * 1)"),
            ("count by (g) (v offset 1m)", "count by (g) ((v offset 1m) * 1)"),
            ("stddev by (g) (irate(c[1m]))", "stddev by (g) (irate(c[1m]) * 1)"),
            ("group by (g) (changes(v[10m]))", "group by (g) (changes(v[10m]) * 1)"),
            ("sum by (g) (rate(c[5m] @ 600))", "sum by (g) (rate(c[5m] @ 600) * 1)"),
            ("v < 40", "v < scalar(vector(40))"),
            ("40 >= v offset 2m", "scalar(vector(40)) >= v offset 2m"),
            ("v != 0", "v != scalar(vector(0))"),
        ];
        for (streamed, general) in cases {
            let a = e.instant_query(&db, streamed, 800_000).unwrap();
            let b = e.instant_query(&db, general, 800_000).unwrap();
            assert!(!bits(&a).is_empty(), "{streamed}: empty");
            assert_eq!(bits(&a), bits(&b), "instant {streamed}");
            let a = e.range_query(&db, streamed, 100_000, 880_000, 20_000).unwrap();
            let b = e.range_query(&db, general, 100_000, 880_000, 20_000).unwrap();
            assert_eq!(bits(&a), bits(&b), "range {streamed}");
        }
    }

    #[test]
    fn walks_split_between_threads_give_the_same_bits() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let engine = |walk_threads| Engine::new(EngineOptions { walk_threads, ..EngineOptions::default() });
        let one = engine(1);
        // 40 steps (over PARALLEL_MIN_STEPS); 600 series per metric, 3 walk batches.
        for q in [
            "sum by (g) (rate(c[5m]))",
            "sum(increase(c[2m]))",
            "avg without (inst) (delta(v[5m]))",
            "stddev by (g) (v)",
            "count(v)",
        ] {
            let want = bits(&one.range_query(&db, q, 100_000, 880_000, 20_000).unwrap());
            assert!(want.iter().map(|(_, p)| p.len()).sum::<usize>() >= 40, "{q}: {want:?}");
            for threads in [2, 3, 7] {
                let got = bits(&engine(threads).range_query(&db, q, 100_000, 880_000, 20_000).unwrap());
                assert_eq!(got, want, "{q} on {threads} threads");
            }
        }
        // Limits still apply on every thread.
        let e = Engine::new(EngineOptions { walk_threads: 2, max_samples: 10, ..EngineOptions::default() });
        let err = e.range_query(&db, "sum(rate(c[5m]))", 100_000, 880_000, 20_000).unwrap_err();
        assert!(matches!(err, crate::promql::QueryError::TooManySamples), "{err}");
    }

    #[test]
    fn split_walks_fold_in_order_across_empty_and_multi_message_batches() {
        // Series of "e" come in runs of 64 (one split-walk batch each) that
        // alternate between samples early and late, so a query over the
        // late part meets batches with no series in its range; 150 steps
        // give a batch more points (64 x 150) than one message holds.
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let mut app = db.appender();
        for i in 0..640u32 {
            let late = (i / 64) % 2 == 1;
            let l = Labels::from_pairs([("__name__", "e"), ("g", &format!("g{}", i % 5)), ("i", &format!("{i:04}"))]);
            let mut v = f64::from(i) * 0.37;
            for k in 0..400i64 {
                let t = if late { 3_000_000 } else { 0 } + k * 10_000 + i64::from(i % 7) * 100;
                v += f64::from(i % 11) * 0.125 + (k % 5) as f64 * 1.1;
                app.append(&l, t, v).unwrap();
            }
        }
        app.commit().unwrap();
        let engine = |walk_threads| Engine::new(EngineOptions { walk_threads, ..EngineOptions::default() });
        for q in ["sum by (g) (rate(e[1m]))", "stddev by (g) (e)", "avg(irate(e[1m]))", "count(e)"] {
            let want = bits(&engine(1).range_query(&db, q, 5_000_000, 6_490_000, 10_000).unwrap());
            let points: usize = want.iter().map(|(_, p)| p.len()).sum();
            assert!(points >= 150, "{q}: {points} points");
            for threads in [2, 3, 7] {
                let got = bits(&engine(threads).range_query(&db, q, 5_000_000, 6_490_000, 10_000).unwrap());
                assert_eq!(got, want, "{q} on {threads} threads");
            }
        }
    }

    /// A storage whose walk panics in its first batch, on whichever thread
    /// takes it; the other thread meanwhile hands over more messages than
    /// may wait, so it would wait for that batch forever.
    struct PanicsInFirstBatch(Db);

    impl crate::storage::Queryable for PanicsInFirstBatch {
        fn select(
            &self,
            mint: i64,
            maxt: i64,
            m: &[crate::model::Matcher],
        ) -> Result<Vec<crate::storage::Series>, crate::storage::StorageError> {
            self.0.select(mint, maxt, m)
        }

        fn for_each_series_part(
            &self,
            mint: i64,
            maxt: i64,
            m: &[crate::model::Matcher],
            part: crate::storage::WalkPart<'_>,
            f: &mut dyn FnMut(usize, crate::storage::WalkEvent<'_>) -> std::ops::ControlFlow<()>,
        ) -> Result<(), crate::storage::StorageError> {
            self.0.for_each_series_part(mint, maxt, m, part, &mut |batch, e| {
                assert_ne!(batch, 0, "injected failure");
                f(batch, e)
            })
        }

        fn label_names(
            &self,
            a: i64,
            b: i64,
            m: &[crate::model::Matcher],
        ) -> Result<Vec<String>, crate::storage::StorageError> {
            self.0.label_names(a, b, m)
        }

        fn label_values(
            &self,
            n: &str,
            a: i64,
            b: i64,
            m: &[crate::model::Matcher],
        ) -> Result<Vec<String>, crate::storage::StorageError> {
            self.0.label_values(n, a, b, m)
        }
    }

    #[test]
    fn a_panicking_walker_ends_the_split_walk_instead_of_hanging_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage = std::sync::Arc::new(PanicsInFirstBatch(db(dir.path())));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = storage.clone();
        std::thread::spawn(move || {
            let e = Engine::new(EngineOptions { walk_threads: 2, ..EngineOptions::default() });
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                e.range_query(s.as_ref(), "sum by (g) (rate(c[5m]))", 100_000, 880_000, 20_000)
            }));
            let _ = tx.send(r.is_err());
        });
        let panicked = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the query hung");
        assert!(panicked, "the walker's panic reaches the caller");
    }

    #[test]
    fn sample_limit_and_name_collisions_still_apply() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let e = Engine::new(EngineOptions { max_samples: 10, ..EngineOptions::default() });
        let err = e.instant_query(&db, "sum(rate(c[5m]))", 800_000).unwrap_err();
        assert!(matches!(err, crate::promql::QueryError::TooManySamples), "{err}");
        // Two names whose series collide once rate() drops the name: the
        // general path's error, not a silent sum.
        let e = Engine::new(EngineOptions::default());
        let err = e.instant_query(&db, r#"sum(rate({__name__=~"c|v"}[5m]))"#, 800_000).unwrap_err();
        assert!(err.to_string().contains("same labelset"), "{err}");
    }
}
