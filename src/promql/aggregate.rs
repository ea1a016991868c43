//! Aggregation operators, following Prometheus's `aggregation` and
//! `aggregationK` (promql/engine.go): Kahan summation for `sum`/`avg`,
//! incremental mean once a sum would overflow, NaN handling of `min`/`max`,
//! and per-group heaps for `topk`/`bottomk`.

use std::collections::HashMap;

use super::eval::{exec_err, Evaluator, Val};
use super::functions::{kahan_inc, quantile};
use super::plan::{AggOp, Grouping, Plan};
use super::value::{format_float, Series};
use super::QueryError;
use crate::model::{Labels, LabelsBuilder, Sample, METRIC_NAME};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One group's running state at one step.
#[derive(Clone, Copy, Default)]
pub(super) struct Acc {
    seen: bool,
    value: f64,
    kahan: f64,
    mean: f64,
    count: f64,
    incremental: bool,
}

/// Whether a label name is valid in Prometheus's legacy charset.
pub(crate) fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Assigns series to groups by the labels a grouping keeps: the group's
/// index, first seen first, and its labels.
pub(super) struct Grouper<'g> {
    grouping: &'g Grouping,
    map: FastMap<u64, usize>,
    /// Labels of each group, by index.
    pub(super) labels: Vec<Labels>,
    key: Vec<u8>,
}

impl<'g> Grouper<'g> {
    pub(super) fn new(grouping: &'g Grouping) -> Self {
        Grouper { grouping, map: FastMap::default(), labels: Vec::new(), key: Vec::new() }
    }

    /// Whether every series falls in one group (`sum(x)`), labelled empty.
    fn single(&self) -> bool {
        !self.grouping.without && self.grouping.labels.is_empty()
    }

    /// The group of a series with `labels`, created when new.
    pub(super) fn group_of(&mut self, labels: &Labels) -> usize {
        let key = self.key_of(labels);
        let grouping = self.grouping;
        self.index_of(key, || group_labels(grouping, labels))
    }

    /// A hash of the labels the grouping keeps from `labels` (0 when every
    /// series falls in one group): equal for series of the same group.
    pub(super) fn key_of(&mut self, labels: &Labels) -> u64 {
        let g = self.grouping;
        if self.single() {
            return 0;
        }
        self.key.clear();
        for l in labels.iter() {
            let keep = if g.without {
                l.name != METRIC_NAME && !g.labels.iter().any(|n| n == l.name)
            } else {
                g.labels.iter().any(|n| n == l.name)
            };
            if keep {
                self.key.extend_from_slice(l.name.as_bytes());
                self.key.push(0xff);
                self.key.extend_from_slice(l.value.as_bytes());
                self.key.push(0xff);
            }
        }
        xxhash_rust::xxh3::xxh3_64(&self.key)
    }

    /// The group of `key` (from [`Grouper::key_of`]); a new group gets the
    /// labels `make` returns.
    pub(super) fn index_of(&mut self, key: u64, make: impl FnOnce() -> Labels) -> usize {
        if self.single() {
            if self.labels.is_empty() {
                self.labels.push(Labels::empty());
            }
            return 0;
        }
        let group_labels = &mut self.labels;
        *self.map.entry(key).or_insert_with(|| {
            group_labels.push(make());
            group_labels.len() - 1
        })
    }
}

/// The labels of the group a series with `labels` falls in.
pub(super) fn group_labels(g: &Grouping, labels: &Labels) -> Labels {
    if g.without {
        let mut b = labels.to_builder();
        b.del(METRIC_NAME);
        for n in &g.labels {
            b.del(n);
        }
        b.build()
    } else {
        labels.keep_only(&g.labels)
    }
}

/// Assigns each series to its group; returns group indices and group labels.
fn groups(series: &[Series], g: &Grouping) -> (Vec<usize>, Vec<Labels>) {
    let mut grouper = Grouper::new(g);
    let idx = series.iter().map(|s| grouper.group_of(&s.labels)).collect();
    (idx, grouper.labels)
}

pub(crate) fn eval(
    ev: &mut Evaluator<'_>,
    op: AggOp,
    expr: &Plan,
    param: Option<&Plan>,
    grouping: &Grouping,
) -> Result<Val, QueryError> {
    // Parameters are evaluated first, as Prometheus does.
    let mut scalar_param = None;
    let mut string_param = None;
    if let Some(p) = param {
        match ev.eval(p)? {
            Val::Scalar(v) => scalar_param = Some(v),
            Val::Str(s) => string_param = Some(s),
            _ => return Err(exec_err("aggregation parameter must be a scalar or string")),
        }
    }
    if param.is_none() {
        if let Some(v) = super::streamed::aggregate(ev, op, expr, grouping) {
            return v;
        }
    }
    let input = match expr {
        // Grouping that ignores `__name__` never needs the function's output
        // labels without it, so they are not rebuilt per series.
        Plan::Call { func, args }
            if !matches!(op, AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio | AggOp::CountValues)
                && (grouping.without || !grouping.labels.iter().any(|n| n == METRIC_NAME)) =>
        {
            match super::functions::call_for_grouping(ev, func, args) {
                Some(v) => match v? {
                    Val::Vector(v) => v,
                    _ => return Err(exec_err("expected instant vector")),
                },
                None => ev.eval_vector(expr)?,
            }
        }
        _ => ev.eval_vector(expr)?,
    };
    if let AggOp::CountValues = op {
        let label = string_param.unwrap_or_default();
        if !valid_label_name(&label) {
            return Err(exec_err(format!("invalid label name {label:?}")));
        }
        return count_values(ev, input, grouping, &label);
    }
    if matches!(op, AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio) {
        let p = scalar_param.unwrap_or_default();
        return select_k(ev, op, input, grouping, &p);
    }
    let (gidx, glabels) = groups(&input, grouping);
    let ng = glabels.len();
    let n = ev.nsteps();
    if op != AggOp::Quantile && ng.saturating_mul(n) <= SERIES_MAJOR_MAX_CELLS {
        return aggregate_series_major(ev, op, input, gidx, glabels);
    }
    let mut cursors = vec![0usize; input.len()];
    let mut acc = vec![Acc::default(); ng];
    let mut values: Vec<Vec<f64>> = if op == AggOp::Quantile { vec![Vec::new(); ng] } else { Vec::new() };
    let mut out: Vec<Series> = glabels.into_iter().map(|labels| Series { labels, points: Vec::new() }).collect();
    for step in 0..n {
        let t = ev.ts(step);
        for a in acc.iter_mut() {
            a.seen = false;
        }
        for v in values.iter_mut() {
            v.clear();
        }
        let mut any = false;
        for (si, s) in input.iter().enumerate() {
            let c = &mut cursors[si];
            if *c >= s.points.len() || s.points[*c].t != t {
                continue;
            }
            let f = s.points[*c].v;
            *c += 1;
            any = true;
            let g = gidx[si];
            if op == AggOp::Quantile {
                acc[g].seen = true;
                values[g].push(f);
            } else {
                accumulate(op, &mut acc[g], f);
            }
        }
        if !any {
            continue;
        }
        for (g, a) in acc.iter().enumerate() {
            if !a.seen {
                continue;
            }
            let v = if op == AggOp::Quantile {
                let q = scalar_param.as_ref().map(|p| p[step]).unwrap_or(f64::NAN);
                quantile(q, &mut values[g])
            } else {
                finish(op, a)
            };
            out[g].points.push(Sample::new(t, v));
        }
    }
    out.retain(|s| !s.points.is_empty());
    ev.limits.release(super::eval::points_in(&input));
    ev.limits.add_samples(super::eval::points_in(&out))?;
    Ok(Val::Vector(out))
}

/// Most accumulators (groups x steps) [`aggregate_series_major`] allocates.
pub(super) const SERIES_MAJOR_MAX_CELLS: usize = 1 << 20;

/// Adds `f` to a group's accumulator at one step (the first value starts it).
#[inline(always)]
fn accumulate(op: AggOp, a: &mut Acc, f: f64) {
    if !a.seen {
        *a = Acc { seen: true, value: f, kahan: 0.0, mean: f, count: 1.0, incremental: false };
        match op {
            AggOp::Group => a.value = 1.0,
            AggOp::Stddev | AggOp::Stdvar => a.value = if f.is_finite() { 0.0 } else { f64::NAN },
            _ => {}
        }
        return;
    }
    match op {
        AggOp::Sum => {
            let (v, c) = kahan_inc(f, a.value, a.kahan);
            a.value = v;
            a.kahan = c;
        }
        AggOp::Avg => {
            a.count += 1.0;
            if !a.incremental {
                let (v, c) = kahan_inc(f, a.value, a.kahan);
                if v.is_finite() || v.is_nan() {
                    a.value = v;
                    a.kahan = c;
                    return;
                }
                a.incremental = true;
                a.mean = a.value / (a.count - 1.0);
                a.kahan /= a.count - 1.0;
            }
            let q = (a.count - 1.0) / a.count;
            let (m, c) = kahan_inc(f / a.count, q * a.mean, q * a.kahan);
            a.mean = m;
            a.kahan = c;
        }
        AggOp::Count => a.count += 1.0,
        AggOp::Min if a.value > f || a.value.is_nan() => a.value = f,
        AggOp::Max if a.value < f || a.value.is_nan() => a.value = f,
        AggOp::Stddev | AggOp::Stdvar => {
            a.count += 1.0;
            let delta = f - a.mean;
            a.mean += delta / a.count;
            a.value += delta * (f - a.mean);
        }
        _ => {}
    }
}

/// A group's result at one step.
fn finish(op: AggOp, a: &Acc) -> f64 {
    match op {
        AggOp::Sum => a.value + a.kahan,
        AggOp::Avg => {
            if a.incremental {
                a.mean + a.kahan
            } else {
                a.value / a.count + a.kahan / a.count
            }
        }
        AggOp::Count => a.count,
        AggOp::Group => 1.0,
        AggOp::Min | AggOp::Max => a.value,
        AggOp::Stdvar => a.value / a.count,
        AggOp::Stddev => (a.value / a.count).sqrt(),
        _ => 0.0,
    }
}

/// The step-by-step aggregation walked series by series: one accumulator
/// per (group, step), so each series' points are read in one pass instead
/// of touching every series at every step. Values reach each accumulator in
/// the same order (series order), so results are bit-identical.
fn aggregate_series_major(
    ev: &mut Evaluator<'_>,
    op: AggOp,
    input: Vec<Series>,
    gidx: Vec<usize>,
    glabels: Vec<Labels>,
) -> Result<Val, QueryError> {
    let n = ev.nsteps();
    let mut acc = vec![Acc::default(); glabels.len() * n];
    for (s, &g) in input.iter().zip(&gidx) {
        accumulate_points(ev, op, &mut acc[g * n..(g + 1) * n], &s.points);
    }
    let out = finish_cells(ev, op, &acc, glabels);
    ev.limits.release(super::eval::points_in(&input));
    ev.limits.add_samples(super::eval::points_in(&out))?;
    Ok(Val::Vector(out))
}

/// Adds one series' points to its group's cells (one accumulator per step).
pub(super) fn accumulate_points(ev: &Evaluator<'_>, op: AggOp, cells: &mut [Acc], points: &[Sample]) {
    // `sum` gets its own copy of the loop with the operation known, so the
    // per-point step is inlined (the fold of a range query runs it for every
    // point of every series).
    match op {
        AggOp::Sum => accumulate_points_with(ev, cells, points, |a, f| accumulate(AggOp::Sum, a, f)),
        _ => accumulate_points_with(ev, cells, points, |a, f| accumulate(op, a, f)),
    }
}

#[inline(always)]
fn accumulate_points_with(
    ev: &Evaluator<'_>,
    cells: &mut [Acc],
    points: &[Sample],
    mut add: impl FnMut(&mut Acc, f64),
) {
    let n = cells.len();
    // Points on consecutive steps (the usual case: a value at every step
    // of a series' time range) go straight to their cells.
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        if first.t >= ev.start && (first.t - ev.start) % ev.step == 0 {
            let s0 = ev.step_of(first.t);
            let end = s0.checked_add(points.len()).filter(|&e| e <= n);
            let consecutive = end.is_some_and(|e| last.t == ev.ts(e - 1))
                && points.windows(2).fold(true, |ok, w| ok & (w[1].t - w[0].t == ev.step));
            if consecutive {
                for (a, p) in cells[s0..s0 + points.len()].iter_mut().zip(points) {
                    add(a, p.v);
                }
                return;
            }
        }
    }
    let mut next = 0usize;
    for p in points {
        // Points sit on step timestamps in order; anything else is never
        // matched by a step (and stops the series, as a cursor would).
        if p.t < ev.start {
            break;
        }
        // Points usually sit on consecutive steps: check the next one before
        // dividing.
        let step = if next < n && ev.ts(next) == p.t { next } else { ev.step_of(p.t) };
        if step < next || step >= n || ev.ts(step) != p.t {
            break;
        }
        add(&mut cells[step], p.v);
        next = step + 1;
    }
}

/// The result series of cells laid out group-major (`glabels.len()` groups
/// of one accumulator per step); groups without a value are left out.
pub(super) fn finish_cells(ev: &Evaluator<'_>, op: AggOp, acc: &[Acc], glabels: Vec<Labels>) -> Vec<Series> {
    let n = ev.nsteps();
    let mut out: Vec<Series> = Vec::with_capacity(glabels.len());
    for (g, labels) in glabels.into_iter().enumerate() {
        let Some(cells) = acc.get(g * n..(g + 1) * n) else { break };
        let points: Vec<Sample> = cells
            .iter()
            .enumerate()
            .filter(|(_, a)| a.seen)
            .map(|(step, a)| Sample::new(ev.ts(step), finish(op, a)))
            .collect();
        if !points.is_empty() {
            out.push(Series { labels, points });
        }
    }
    out
}

fn count_values(
    ev: &mut Evaluator<'_>,
    input: Vec<Series>,
    grouping: &Grouping,
    label: &str,
) -> Result<Val, QueryError> {
    let (gidx, glabels) = groups(&input, grouping);
    let mut out: Vec<Series> = Vec::new();
    let mut index: FastMap<(usize, String), usize> = FastMap::default();
    let mut cursors = vec![0usize; input.len()];
    let mut counts: FastMap<usize, f64> = FastMap::default();
    let mut order: Vec<usize> = Vec::new();
    for step in 0..ev.nsteps() {
        let t = ev.ts(step);
        counts.clear();
        order.clear();
        for (si, s) in input.iter().enumerate() {
            let c = &mut cursors[si];
            if *c >= s.points.len() || s.points[*c].t != t {
                continue;
            }
            let f = s.points[*c].v;
            *c += 1;
            let key = (gidx[si], format_float(f));
            let oi = match index.get(&key) {
                Some(&oi) => oi,
                None => {
                    let mut b = LabelsBuilder::from_labels(&glabels[key.0]);
                    b.set(label, &key.1);
                    out.push(Series { labels: b.build(), points: Vec::new() });
                    index.insert(key, out.len() - 1);
                    out.len() - 1
                }
            };
            let e = counts.entry(oi).or_insert(0.0);
            if *e == 0.0 {
                order.push(oi);
            }
            *e += 1.0;
        }
        for &oi in &order {
            out[oi].points.push(Sample::new(t, counts[&oi]));
        }
    }
    out.retain(|s| !s.points.is_empty());
    Ok(Val::Vector(super::eval::dedupe(out)?))
}

/// Prometheus's ordering for topk: NaN counts as the smallest value.
fn topk_less(a: f64, b: f64) -> bool {
    if a.is_nan() {
        return !b.is_nan();
    }
    a < b
}

/// bottomk: NaN counts as the largest value.
fn bottomk_less(a: f64, b: f64) -> bool {
    if a.is_nan() {
        return false;
    }
    b.is_nan() || a < b
}

/// Prometheus's `labels.Hash`: xxhash64 of `name 0xff value 0xff ...`.
fn prom_labels_hash(l: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(l.as_bytes().len() + 16);
    for p in l.iter() {
        buf.extend_from_slice(p.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(p.value.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

/// Whether `limit_ratio(ratio)` keeps a series (Prometheus's `ratiosampler`).
fn ratio_keeps(l: &Labels, ratio: f64) -> bool {
    let r = prom_labels_hash(l) as f64 / u64::MAX as f64;
    if ratio >= 0.0 {
        r < ratio
    } else {
        r >= 1.0 + ratio
    }
}

fn select_k(
    ev: &mut Evaluator<'_>,
    op: AggOp,
    input: Vec<Series>,
    grouping: &Grouping,
    param: &[f64],
) -> Result<Val, QueryError> {
    let (gidx, glabels) = groups(&input, grouping);
    let ng = glabels.len();
    let n = ev.nsteps();
    let mut cursors = vec![0usize; input.len()];
    let mut out: Vec<Series> = input.iter().map(|s| Series { labels: s.labels.clone(), points: Vec::new() }).collect();
    let mut per_group: Vec<Vec<(usize, f64)>> = vec![Vec::new(); ng];
    let mut group_order: Vec<usize> = Vec::new();
    let mut emit_order: Vec<usize> = Vec::new();
    let mut first_emit: Vec<usize> = vec![usize::MAX; input.len()];
    for step in 0..n {
        let t = ev.ts(step);
        let p = param.get(step).copied().unwrap_or(f64::NAN);
        let k: usize = match op {
            AggOp::LimitRatio => {
                if p.is_nan() {
                    return Err(exec_err("Ratio value is NaN"));
                }
                0
            }
            _ => {
                if p.is_nan() {
                    return Err(exec_err("Parameter value is NaN"));
                }
                if p >= 9.2e18 {
                    usize::MAX
                } else if p < 1.0 {
                    0
                } else {
                    p as usize
                }
            }
        };
        let ratio = p.clamp(-1.0, 1.0);
        for g in per_group.iter_mut() {
            g.clear();
        }
        group_order.clear();
        for (si, s) in input.iter().enumerate() {
            let c = &mut cursors[si];
            if *c >= s.points.len() || s.points[*c].t != t {
                continue;
            }
            let f = s.points[*c].v;
            *c += 1;
            let g = gidx[si];
            if per_group[g].is_empty() {
                group_order.push(g);
            }
            per_group[g].push((si, f));
        }
        for &g in &group_order {
            let items = &mut per_group[g];
            match op {
                AggOp::Topk => {
                    // Stable: ties keep input order.
                    items.sort_by(|a, b| {
                        if topk_less(b.1, a.1) {
                            std::cmp::Ordering::Less
                        } else if topk_less(a.1, b.1) {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Equal
                        }
                    });
                    items.truncate(k);
                }
                AggOp::Bottomk => {
                    items.sort_by(|a, b| {
                        if bottomk_less(a.1, b.1) {
                            std::cmp::Ordering::Less
                        } else if bottomk_less(b.1, a.1) {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Equal
                        }
                    });
                    items.truncate(k);
                }
                AggOp::Limitk => items.truncate(k),
                _ => items.retain(|&(si, _)| ratio_keeps(&input[si].labels, ratio)),
            }
            for &(si, f) in items.iter() {
                out[si].points.push(Sample::new(t, f));
                if first_emit[si] == usize::MAX {
                    first_emit[si] = emit_order.len();
                    emit_order.push(si);
                }
            }
        }
    }
    // Keep the order of first selection (the instant query's order).
    let mut slots: Vec<Option<Series>> = out.into_iter().map(Some).collect();
    let result = emit_order.into_iter().filter_map(|si| slots[si].take()).collect();
    Ok(Val::Vector(result))
}
