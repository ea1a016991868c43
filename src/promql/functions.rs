//! PromQL functions. Semantics follow Prometheus's promql/functions.go and
//! promql/quantile.go (extrapolated rates, Kahan sums, classic-bucket
//! quantiles with monotonicity fix-up).

use chrono::{Datelike, Timelike};

use super::eval::{dedupe, drop_names, exec_err, Evaluator, RangeInput, Val};
use super::plan::{Plan, Selector, ValueType};
use super::value::Series;
use super::QueryError;
use crate::model::{Labels, LabelsBuilder, MatchOp, Sample, METRIC_NAME};

/// Functions evaluated over a range vector argument, with the argument's index.
fn matrix_arg(name: &str) -> Option<usize> {
    Some(match name {
        "rate"
        | "irate"
        | "increase"
        | "delta"
        | "idelta"
        | "deriv"
        | "predict_linear"
        | "resets"
        | "changes"
        | "avg_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "min_over_time"
        | "max_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "last_over_time"
        | "first_over_time"
        | "present_over_time"
        | "absent_over_time"
        | "mad_over_time"
        | "ts_of_min_over_time"
        | "ts_of_max_over_time"
        | "ts_of_last_over_time"
        | "ts_of_first_over_time"
        | "double_exponential_smoothing"
        | "holt_winters" => 0,
        "quantile_over_time" => 1,
        _ => return None,
    })
}

const INSTANT_FUNCS: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "exp",
    "sqrt",
    "ln",
    "log2",
    "log10",
    "sgn",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "deg",
    "rad",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "timestamp",
    "time",
    "vector",
    "scalar",
    "pi",
    "absent",
    "sort",
    "sort_desc",
    "sort_by_label",
    "sort_by_label_desc",
    "label_replace",
    "label_join",
    "histogram_quantile",
    "histogram_fraction",
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_stddev",
    "histogram_stdvar",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "hour",
    "minute",
    "month",
    "year",
    "step",
    "range",
    "start",
    "end",
    "min_of",
    "max_of",
    "histogram_quantiles",
];

/// Whether promlite implements the function.
pub fn is_supported(name: &str) -> bool {
    matrix_arg(name).is_some() || INSTANT_FUNCS.contains(&name)
}

/// The type a function returns.
pub fn return_type(name: &str) -> ValueType {
    match name {
        "time" | "scalar" | "pi" | "step" | "range" | "start" | "end" | "min_of" | "max_of" => ValueType::Scalar,
        _ => ValueType::Vector,
    }
}

/// Neumaier-improved Kahan summation step (Prometheus's `kahanSumInc`).
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `math.Max`.
fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        f64::INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`.
fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else if a < b {
        a
    } else {
        b
    }
}

/// The φ-quantile of `values` (Prometheus's `quantile`; NaN sorts first).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Least-squares fit (Prometheus's `linearRegression`), x in seconds from `intercept_time`.
fn linear_regression(samples: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut cx, mut sum_y, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut cxy, mut sum_x2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].v;
    let mut const_y = true;
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sum_x, cx) = kahan_inc(x, sum_x, cx);
        (sum_y, cy) = kahan_inc(s.v, sum_y, cy);
        (sum_xy, cxy) = kahan_inc(x * s.v, sum_xy, cxy);
        (sum_x2, cx2) = kahan_inc(x * x, sum_x2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += cx;
    sum_y += cy;
    sum_xy += cxy;
    sum_x2 += cx2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `rate`, `increase` and `delta` (Prometheus's `extrapolatedRate`).
#[inline(always)]
fn extrapolated_rate(
    w: &[Sample],
    range_start: i64,
    range_end: i64,
    range: i64,
    counter: bool,
    rate: bool,
    resets_possible: bool,
    memo: &mut RateMemo,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let first = w[0];
    let last = w[w.len() - 1];
    let mut result = last.v - first.v;
    if counter && resets_possible {
        let mut prev = first.v;
        for s in &w[1..] {
            if s.v < prev {
                result += prev;
            }
            prev = s.v;
        }
    }
    let key = (first.t - range_start, range_end - last.t, last.t - first.t, w.len(), range);
    let m = memo.get_or_insert(key, || window_shape(first.t, last.t, w.len(), range_start, range_end, range, rate));
    Some(extrapolate(result, first.v, &m, counter, rate, range))
}

/// The extrapolation inputs of a window of `len` samples from `first_t` to
/// `last_t` in `(range_start, range_end]` (the part of
/// [`extrapolated_rate`] that depends only on timestamps).
#[inline]
fn window_shape(
    first_t: i64,
    last_t: i64,
    len: usize,
    range_start: i64,
    range_end: i64,
    range: i64,
    rate: bool,
) -> WindowShape {
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg = sampled / (len - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let factor = extrapolation_factor(sampled, to_start, to_end, range, rate);
    WindowShape { to_start, to_end, sampled, factor }
}

/// A window's increase `result` (from a first value `first_v`)
/// extrapolated over a window of shape `m`.
#[inline(always)]
fn extrapolate(result: f64, first_v: f64, m: &WindowShape, counter: bool, rate: bool, range: i64) -> f64 {
    let mut factor = m.factor;
    // A counter at least twice the window's increase cannot reach zero within
    // the window's extrapolated start (`to_start` is under 1.1 average
    // intervals, `sampled` at least one, so to_zero >= 2 * sampled > to_start
    // whatever the rounding): the common case skips the division.
    if counter && result > 0.0 && first_v >= 0.0 && first_v < 2.0 * result {
        let to_zero = m.sampled * (first_v / result);
        if to_zero < m.to_start {
            factor = extrapolation_factor(m.sampled, to_zero, m.to_end, range, rate);
        }
    }
    result * factor
}

/// `rate`, `increase` or `delta` at every step for a series sampled at one
/// fixed interval that divides the step, with no counter reset and windows
/// sliding with the steps (no `@`); `false` (nothing pushed) for any other
/// series. Scrapes and rule evaluations give such series: Prometheus
/// aligns scrape timestamps to the interval (within 2 ms), and rules are
/// stamped with their group's evaluation times.
///
/// Each step then moves the window by the same number of samples, so every
/// window not cut by the series' ends holds as many samples at the same
/// distances from its bounds: one [`WindowShape`] serves them all, and such
/// a window costs a subtraction and [`extrapolate`]. Windows at the ends
/// take [`extrapolated_rate`]. The same operations on the same values as
/// the window walk, so the same bits.
fn regular_rate_points(
    ev: &Evaluator<'_>,
    input: &RangeInput,
    samples: &[Sample],
    counter: bool,
    rate: bool,
    points: &mut Vec<Sample>,
) -> bool {
    let len = samples.len();
    if len < 2 || input.at.is_some() || ev.nsteps() < 2 {
        return false;
    }
    let t0 = samples[0].t;
    let interval = samples[1].t - t0;
    if interval <= 0 || ev.step % interval != 0 {
        return false;
    }
    if !samples.windows(2).fold(true, |ok, p| ok & (p[1].t - p[0].t == interval)) {
        return false;
    }
    let per_step = ev.step / interval;
    let range = input.range;
    // Samples at or before `t` (unclamped: negative before the first).
    let count_to = |t: i64| (t - t0).div_euclid(interval) + 1;
    let reft0 = ev.ts(0) - input.offset;
    let (mut lo, mut hi) = (count_to(reft0 - range), count_to(reft0));
    let n = len as i64;
    let mut memo = RateMemo::default();
    let mut shape: Option<WindowShape> = None;
    for i in 0..ev.nsteps() {
        if lo >= n {
            break;
        }
        let ts = ev.ts(i);
        if lo >= 0 && hi <= n {
            // Not cut by the ends: the shared shape (these windows hold at
            // least two samples when the first does).
            let (a, b) = (lo as usize, hi as usize);
            if b >= a + 2 {
                let (first, last) = (samples[a], samples[b - 1]);
                let m = *shape.get_or_insert_with(|| {
                    let reft = ts - input.offset;
                    window_shape(first.t, last.t, b - a, reft - range, reft, range, rate)
                });
                points.push(Sample::new(ts, extrapolate(last.v - first.v, first.v, &m, counter, rate, range)));
            }
        } else {
            let (a, b) = (lo.max(0) as usize, hi.clamp(0, n) as usize);
            let reft = ts - input.offset;
            if b > a {
                if let Some(v) =
                    extrapolated_rate(&samples[a..b], reft - range, reft, range, counter, rate, false, &mut memo)
                {
                    points.push(Sample::new(ts, v));
                }
            }
        }
        lo += per_step;
        hi += per_step;
    }
    true
}

/// The factor a window's increase is scaled by: the extrapolated span over
/// the sampled one, per second of the range for `rate`.
#[inline]
fn extrapolation_factor(sampled: f64, to_start: f64, to_end: f64, range: i64, rate: bool) -> f64 {
    let mut factor = (sampled + to_start + to_end) / sampled;
    if rate {
        factor /= range as f64 / 1000.0;
    }
    factor
}

/// The part of [`extrapolated_rate`] that depends only on a window's
/// timestamps, kept for the last two window shapes of a series: regularly
/// scraped series give every step one of a few shapes (one when the step is
/// the scrape interval, two when it is half of it), so most windows skip the
/// divisions (the same operations on the same inputs, so bit-identical).
#[derive(Clone, Copy, Default)]
pub(crate) struct RateMemo {
    /// (first - start, end - last, last - first, samples, range) and what they give.
    entries: [Option<((i64, i64, i64, usize, i64), WindowShape)>; 2],
    /// The entry the next new shape replaces.
    next: usize,
}

/// Extrapolation inputs of one window shape.
#[derive(Clone, Copy)]
struct WindowShape {
    to_start: f64,
    to_end: f64,
    sampled: f64,
    factor: f64,
}

impl RateMemo {
    /// The shape for `key`, computed by `f` when not kept.
    #[inline]
    fn get_or_insert(&mut self, key: (i64, i64, i64, usize, i64), f: impl FnOnce() -> WindowShape) -> WindowShape {
        for (k, shape) in self.entries.iter().flatten() {
            if *k == key {
                return *shape;
            }
        }
        let shape = f();
        self.entries[self.next] = Some((key, shape));
        self.next = (self.next + 1) % self.entries.len();
        shape
    }
}

/// `irate` and `idelta`.
fn instant_value(w: &[Sample], rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let last = w[w.len() - 1];
    let prev = w[w.len() - 2];
    let mut v = if rate && last.v < prev.v { last.v } else { last.v - prev.v };
    let dt = last.t - prev.t;
    if dt == 0 {
        return None;
    }
    if rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

fn avg_values(w: &[Sample]) -> f64 {
    let (mut sum, mut count, mut mean, mut c) = (w[0].v, 1.0, 0.0, 0.0);
    let mut incremental = false;
    for (i, s) in w[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(s.v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(s.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn variance(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in w {
        count += 1.0;
        let delta = s.v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (s.v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

fn holt_winters(w: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (mut s0, mut s1, mut b) = (0.0, w[0].v, w[1].v - w[0].v);
    for (i, s) in w.iter().enumerate().skip(1) {
        let x = sf * s.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// Labels `absent()` gives its output: the selector's equality matchers.
fn absent_labels(sel: Option<&Selector>) -> Labels {
    let Some(sel) = sel else { return Labels::empty() };
    let mut b = LabelsBuilder::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &sel.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !seen.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            seen.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

fn scalar_arg(ev: &mut Evaluator<'_>, args: &[Plan], i: usize, default: f64) -> Result<Vec<f64>, QueryError> {
    match args.get(i) {
        Some(p) => ev.eval_scalar(p),
        None => Ok(vec![default; ev.nsteps()]),
    }
}

fn string_arg(args: &[Plan], i: usize) -> Result<String, QueryError> {
    match args.get(i) {
        Some(Plan::Str(s)) => Ok(s.clone()),
        _ => Err(exec_err("expected string argument")),
    }
}

/// Evaluates a function call for every step.
pub(crate) fn call(ev: &mut Evaluator<'_>, name: &'static str, args: &[Plan]) -> Result<Val, QueryError> {
    if let Some(mi) = matrix_arg(name) {
        return call_range(ev, name, args, mi, false);
    }
    let n = ev.nsteps();
    match name {
        "time" => Ok(Val::Scalar((0..n).map(|i| ev.ts(i) as f64 / 1000.0).collect())),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "step" => Ok(Val::Scalar(vec![ev.query_step as f64 / 1000.0; n])),
        "range" => Ok(Val::Scalar(vec![(ev.query_end - ev.query_start) as f64 / 1000.0; n])),
        "start" => Ok(Val::Scalar(vec![ev.query_start as f64 / 1000.0; n])),
        "end" => Ok(Val::Scalar(vec![ev.query_end as f64 / 1000.0; n])),
        "min_of" | "max_of" => {
            let a = ev.eval_scalar(&args[0])?;
            let b = ev.eval_scalar(&args[1])?;
            let f = if name == "min_of" { go_min } else { go_max };
            Ok(Val::Scalar(a.iter().zip(&b).map(|(&x, &y)| f(x, y)).collect()))
        }
        "histogram_quantiles" => {
            let label = string_arg(args, 1)?;
            if !super::aggregate::valid_label_name(&label) {
                return Err(exec_err(format!("invalid label name {label:?}")));
            }
            let mut out = Vec::new();
            for qp in &args[2..] {
                let q = ev.eval_scalar(qp)?;
                let Val::Vector(v) = histogram_fn_with(ev, "histogram_quantile", q.clone(), Vec::new(), &args[0])?
                else {
                    continue;
                };
                for mut s in v {
                    let qv = q.get(ev.step_of(s.points[0].t)).copied().unwrap_or(f64::NAN);
                    let mut txt = super::value::format_float(qv);
                    if qv.is_finite() && !txt.contains('.') && !txt.contains('e') {
                        txt.push_str(".0");
                    }
                    let mut b = s.labels.to_builder();
                    b.set(&label, &txt);
                    s.labels = b.build();
                    out.push(s);
                }
            }
            Ok(Val::Vector(dedupe(out)?))
        }
        "vector" => {
            let s = ev.eval_scalar(&args[0])?;
            let points = s.iter().enumerate().map(|(i, &v)| Sample::new(ev.ts(i), v)).collect();
            Ok(Val::Vector(vec![Series { labels: Labels::empty(), points }]))
        }
        "scalar" => {
            let v = ev.eval_vector(&args[0])?;
            let mut out = vec![f64::NAN; n];
            let mut count = vec![0u32; n];
            for s in &v {
                for p in &s.points {
                    let i = ev.step_of(p.t);
                    count[i] += 1;
                    out[i] = p.v;
                }
            }
            for i in 0..n {
                if count[i] != 1 {
                    out[i] = f64::NAN;
                }
            }
            Ok(Val::Scalar(out))
        }
        "timestamp" => {
            let v = match &args[0] {
                Plan::Selector(sel) => ev.vector_selector(sel, true)?,
                other => {
                    let mut v = ev.eval_vector(other)?;
                    for s in &mut v {
                        for p in &mut s.points {
                            p.v = p.t as f64 / 1000.0;
                        }
                    }
                    v
                }
            };
            Ok(Val::Vector(drop_names(v)?))
        }
        "absent" => {
            let v = ev.eval_vector(&args[0])?;
            let mut present = vec![false; n];
            for s in &v {
                for p in &s.points {
                    present[ev.step_of(p.t)] = true;
                }
            }
            let sel = if let Plan::Selector(s) = &args[0] { Some(s) } else { None };
            let points: Vec<Sample> = (0..n).filter(|&i| !present[i]).map(|i| Sample::new(ev.ts(i), 1.0)).collect();
            if points.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(vec![Series { labels: absent_labels(sel), points }]))
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(&args[0])?;
            if n == 1 {
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    let (x, y) = (a.points[0].v, b.points[0].v);
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ => {
                            let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                            if desc {
                                o.reverse()
                            } else {
                                o
                            }
                        }
                    }
                });
            }
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ev.eval_vector(&args[0])?;
            let names: Vec<String> = (1..args.len()).map(|i| string_arg(args, i)).collect::<Result<_, _>>()?;
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                for l in &names {
                    let (x, y) = (a.labels.get(l).unwrap_or(""), b.labels.get(l).unwrap_or(""));
                    let o = natural_cmp(x, y);
                    if o != std::cmp::Ordering::Equal {
                        return if desc { o.reverse() } else { o };
                    }
                }
                let o = a.labels.cmp(&b.labels);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            });
            Ok(Val::Vector(v))
        }
        "label_replace" => {
            let v = ev.eval_vector(&args[0])?;
            let dst = string_arg(args, 1)?;
            let repl = string_arg(args, 2)?;
            let src = string_arg(args, 3)?;
            let re_src = string_arg(args, 4)?;
            let re = crate::model::matcher::compile_anchored(&re_src)
                .map_err(|_| exec_err(format!("invalid regular expression in label_replace(): {re_src}")))?;
            if !super::aggregate::valid_label_name(&dst) {
                return Err(exec_err(format!("invalid destination label name in label_replace(): {dst}")));
            }
            let mut out = Vec::with_capacity(v.len());
            for mut s in v {
                let val = s.labels.get(&src).unwrap_or("").to_string();
                if let Some(caps) = re.captures(&val) {
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    let mut b = s.labels.to_builder();
                    b.set(&dst, &res);
                    s.labels = b.build();
                }
                out.push(s);
            }
            Ok(Val::Vector(dedupe(out)?))
        }
        "label_join" => {
            let v = ev.eval_vector(&args[0])?;
            let dst = string_arg(args, 1)?;
            let sep = string_arg(args, 2)?;
            let srcs: Vec<String> = (3..args.len()).map(|i| string_arg(args, i)).collect::<Result<_, _>>()?;
            for s in &srcs {
                if !super::aggregate::valid_label_name(s) {
                    return Err(exec_err(format!("invalid source label name in label_join(): {s}")));
                }
            }
            if !super::aggregate::valid_label_name(&dst) {
                return Err(exec_err(format!("invalid destination label name in label_join(): {dst}")));
            }
            let mut out = Vec::with_capacity(v.len());
            for mut s in v {
                let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
                let joined = joined.join(&sep);
                let mut b = s.labels.to_builder();
                b.set(&dst, &joined);
                s.labels = b.build();
                out.push(s);
            }
            Ok(Val::Vector(dedupe(out)?))
        }
        "histogram_quantile" | "histogram_fraction" => histogram_fn(ev, name, args),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => {
            // Only native histograms carry these; float series give nothing.
            let _ = ev.eval_vector(&args[0])?;
            Ok(Val::Vector(Vec::new()))
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute" | "month" | "year" => {
            let v = match args.first() {
                Some(a) => ev.eval_vector(a)?,
                None => {
                    let points = (0..n).map(|i| Sample::new(ev.ts(i), ev.ts(i) as f64 / 1000.0)).collect();
                    vec![Series { labels: Labels::empty(), points }]
                }
            };
            map_values(v, |x| date_fn(name, x))
        }
        "round" => {
            let v = ev.eval_vector(&args[0])?;
            let to = scalar_arg(ev, args, 1, 1.0)?;
            map_values_step(ev, v, |x, i| {
                let inv = 1.0 / to[i];
                (x * inv + 0.5).floor() / inv
            })
        }
        "clamp" => {
            let v = ev.eval_vector(&args[0])?;
            let lo = ev.eval_scalar(&args[1])?;
            let hi = ev.eval_scalar(&args[2])?;
            let mut v = v;
            for s in &mut v {
                s.points.retain(|p| {
                    let i = ev.step_of(p.t);
                    lo[i] <= hi[i] || lo[i].is_nan() || hi[i].is_nan()
                });
            }
            v.retain(|s| !s.points.is_empty());
            map_values_step(ev, v, |x, i| go_max(lo[i], go_min(hi[i], x)))
        }
        "clamp_min" => {
            let v = ev.eval_vector(&args[0])?;
            let lo = ev.eval_scalar(&args[1])?;
            map_values_step(ev, v, |x, i| go_max(lo[i], x))
        }
        "clamp_max" => {
            let v = ev.eval_vector(&args[0])?;
            let hi = ev.eval_scalar(&args[1])?;
            map_values_step(ev, v, |x, i| go_min(hi[i], x))
        }
        _ => {
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "exp" => f64::exp,
                "sqrt" => f64::sqrt,
                "ln" => f64::ln,
                "log2" => f64::log2,
                "log10" => f64::log10,
                "sgn" => |x: f64| {
                    if x < 0.0 {
                        -1.0
                    } else if x > 0.0 {
                        1.0
                    } else {
                        x
                    }
                },
                "sin" => f64::sin,
                "cos" => f64::cos,
                "tan" => f64::tan,
                "asin" => f64::asin,
                "acos" => f64::acos,
                "atan" => f64::atan,
                "sinh" => f64::sinh,
                "cosh" => f64::cosh,
                "tanh" => f64::tanh,
                "asinh" => f64::asinh,
                "acosh" => f64::acosh,
                "atanh" => f64::atanh,
                "deg" => |x: f64| x * 180.0 / std::f64::consts::PI,
                "rad" => |x: f64| x * std::f64::consts::PI / 180.0,
                _ => return Err(exec_err(format!("function {name:?} is not implemented"))),
            };
            let v = ev.eval_vector(&args[0])?;
            map_values(v, f)
        }
    }
}

fn map_values(mut v: Vec<Series>, f: impl Fn(f64) -> f64) -> Result<Val, QueryError> {
    for s in &mut v {
        s.points.iter_mut().for_each(|p| p.v = f(p.v));
    }
    Ok(Val::Vector(drop_names(v)?))
}

fn map_values_step(ev: &Evaluator<'_>, mut v: Vec<Series>, f: impl Fn(f64, usize) -> f64) -> Result<Val, QueryError> {
    for s in &mut v {
        for p in &mut s.points {
            p.v = f(p.v, ev.step_of(p.t));
        }
    }
    Ok(Val::Vector(drop_names(v)?))
}

fn date_fn(name: &str, x: f64) -> f64 {
    let Some(t) = chrono::DateTime::from_timestamp(x as i64, 0) else { return f64::NAN };
    match name {
        "day_of_month" => t.day() as f64,
        "day_of_week" => t.weekday().num_days_from_sunday() as f64,
        "day_of_year" => t.ordinal() as f64,
        "days_in_month" => {
            let (y, m) = (t.year(), t.month());
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            match (chrono::NaiveDate::from_ymd_opt(y, m, 1), chrono::NaiveDate::from_ymd_opt(ny, nm, 1)) {
                (Some(a), Some(b)) => (b - a).num_days() as f64,
                _ => f64::NAN,
            }
        }
        "hour" => t.hour() as f64,
        "minute" => t.minute() as f64,
        "month" => t.month() as f64,
        "year" => t.year() as f64,
        _ => f64::NAN,
    }
}

/// Natural ("version") ordering of strings: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let x = a[si..i].trim_start_matches('0');
            let y = b[sj..j].trim_start_matches('0');
            let o = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

/// A classic bucket: upper bound and cumulative count.
#[derive(Clone, Copy)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Go's `almost.Equal`: both NaN, identical, or a relative difference below `eps`.
pub(crate) fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < eps * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn prepare_buckets(buckets: &mut Vec<Bucket>) -> bool {
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return false;
    }
    // Coalesce equal bounds.
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(l) if l.upper == b.upper => l.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
    true
}

fn ensure_monotonic(buckets: &mut [Bucket]) {
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) || cur < prev {
            b.count = prev;
            continue;
        }
        prev = cur;
    }
}

/// Prometheus's `BucketQuantile` over classic buckets.
fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if !prepare_buckets(buckets) {
        return f64::NAN;
    }
    ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|x| x.count < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].upper;
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return buckets[0].upper;
    }
    let mut start = 0.0;
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    start + (end - start) * (rank / count)
}

/// Prometheus's `BucketFraction` over classic buckets.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if !prepare_buckets(buckets) {
        return f64::NAN;
    }
    ensure_monotonic(buckets);
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        let lower_bound = if i > 0 {
            buckets[i - 1].upper
        } else if b.upper > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let upper_bound = b.upper;
        // A bucket of infinite width gets no interpolation: its observations
        // count as lying at its finite edge.
        let interp = |v: f64| {
            if lower_bound.is_infinite() {
                b.count
            } else if upper_bound.is_infinite() {
                rank
            } else {
                rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interp(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interp(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Parses an `le` value as Go's `strconv.ParseFloat` would.
fn parse_le(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if t != s || t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok()
}

fn histogram_fn(ev: &mut Evaluator<'_>, name: &str, args: &[Plan]) -> Result<Val, QueryError> {
    let (p1, p2, vec_arg) = if name == "histogram_quantile" {
        (ev.eval_scalar(&args[0])?, Vec::new(), &args[1])
    } else {
        (ev.eval_scalar(&args[0])?, ev.eval_scalar(&args[1])?, &args[2])
    };
    histogram_fn_with(ev, name, p1, p2, vec_arg)
}

fn histogram_fn_with(
    ev: &mut Evaluator<'_>,
    name: &str,
    p1: Vec<f64>,
    p2: Vec<f64>,
    vec_arg: &Plan,
) -> Result<Val, QueryError> {
    let input = ev.eval_vector(vec_arg)?;
    // Group series by their labels without `le` and the metric name,
    // hashing first and building a label set only per new group.
    let mut groups: std::collections::HashMap<u64, usize, foldhash::fast::RandomState> = Default::default();
    let mut glabels: Vec<Labels> = Vec::new();
    let mut members: Vec<(usize, usize, f64)> = Vec::new(); // (series, group, upper)
    let mut buf: Vec<u8> = Vec::new();
    for (si, s) in input.iter().enumerate() {
        let Some(le) = s.labels.get("le").and_then(parse_le) else { continue };
        buf.clear();
        for l in s.labels.iter() {
            if l.name != "le" && l.name != METRIC_NAME {
                buf.extend_from_slice(l.name.as_bytes());
                buf.push(0xff);
                buf.extend_from_slice(l.value.as_bytes());
                buf.push(0xff);
            }
        }
        let h = xxhash_rust::xxh3::xxh3_64(&buf);
        let g = *groups.entry(h).or_insert_with(|| {
            let mut b = s.labels.to_builder();
            b.del("le");
            b.del(METRIC_NAME);
            glabels.push(b.build());
            glabels.len() - 1
        });
        members.push((si, g, le));
    }
    let n = ev.nsteps();
    let mut out: Vec<Series> = glabels.into_iter().map(|labels| Series { labels, points: Vec::new() }).collect();
    let mut per_group: Vec<Vec<Bucket>> = vec![Vec::new(); out.len()];
    let mut cursors = vec![0usize; input.len()];
    for step in 0..n {
        let t = ev.ts(step);
        for b in per_group.iter_mut() {
            b.clear();
        }
        for &(si, g, le) in &members {
            let pts = &input[si].points;
            let c = &mut cursors[si];
            while *c < pts.len() && pts[*c].t < t {
                *c += 1;
            }
            if *c < pts.len() && pts[*c].t == t {
                per_group[g].push(Bucket { upper: le, count: pts[*c].v });
            }
        }
        for (g, buckets) in per_group.iter_mut().enumerate() {
            if buckets.is_empty() {
                continue;
            }
            let v = if name == "histogram_quantile" {
                bucket_quantile(p1[step], buckets)
            } else {
                bucket_fraction(p1[step], p2[step], buckets)
            };
            out[g].points.push(Sample::new(t, v));
        }
    }
    out.retain(|s| !s.points.is_empty());
    Ok(Val::Vector(out))
}

/// The range functions, resolved once per call instead of per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFn {
    AvgOverTime,
    Changes,
    CountOverTime,
    Delta,
    Deriv,
    DoubleExponentialSmoothing,
    FirstOverTime,
    HoltWinters,
    Idelta,
    Increase,
    Irate,
    LastOverTime,
    MadOverTime,
    MaxOverTime,
    MinOverTime,
    PredictLinear,
    PresentOverTime,
    QuantileOverTime,
    Rate,
    Resets,
    StddevOverTime,
    StdvarOverTime,
    SumOverTime,
    TsOfFirstOverTime,
    TsOfLastOverTime,
    TsOfMaxOverTime,
    TsOfMinOverTime,
    Other,
}

impl RangeFn {
    fn of(name: &str) -> Self {
        match name {
            "avg_over_time" => RangeFn::AvgOverTime,
            "changes" => RangeFn::Changes,
            "count_over_time" => RangeFn::CountOverTime,
            "delta" => RangeFn::Delta,
            "deriv" => RangeFn::Deriv,
            "double_exponential_smoothing" => RangeFn::DoubleExponentialSmoothing,
            "first_over_time" => RangeFn::FirstOverTime,
            "holt_winters" => RangeFn::HoltWinters,
            "idelta" => RangeFn::Idelta,
            "increase" => RangeFn::Increase,
            "irate" => RangeFn::Irate,
            "last_over_time" => RangeFn::LastOverTime,
            "mad_over_time" => RangeFn::MadOverTime,
            "max_over_time" => RangeFn::MaxOverTime,
            "min_over_time" => RangeFn::MinOverTime,
            "predict_linear" => RangeFn::PredictLinear,
            "present_over_time" => RangeFn::PresentOverTime,
            "quantile_over_time" => RangeFn::QuantileOverTime,
            "rate" => RangeFn::Rate,
            "resets" => RangeFn::Resets,
            "stddev_over_time" => RangeFn::StddevOverTime,
            "stdvar_over_time" => RangeFn::StdvarOverTime,
            "sum_over_time" => RangeFn::SumOverTime,
            "ts_of_first_over_time" => RangeFn::TsOfFirstOverTime,
            "ts_of_last_over_time" => RangeFn::TsOfLastOverTime,
            "ts_of_max_over_time" => RangeFn::TsOfMaxOverTime,
            "ts_of_min_over_time" => RangeFn::TsOfMinOverTime,
            _ => RangeFn::Other,
        }
    }
}

/// Evaluates a call whose output labels are only read by an aggregation
/// grouping that ignores `__name__`: range functions then keep their input
/// labels (names included) instead of building a copy without the name per
/// series. `None` when the call is not such a function.
pub(crate) fn call_for_grouping(
    ev: &mut Evaluator<'_>,
    name: &'static str,
    args: &[Plan],
) -> Option<Result<Val, QueryError>> {
    let mi = matrix_arg(name)?;
    Some(call_range(ev, name, args, mi, true))
}

/// Functions over a range vector: windows slide over samples selected once.
/// With `names_unused`, output series may keep `__name__` (see
/// [`call_for_grouping`]); collisions once names are dropped are still errors.
fn call_range(
    ev: &mut Evaluator<'_>,
    name: &'static str,
    args: &[Plan],
    mi: usize,
    names_unused: bool,
) -> Result<Val, QueryError> {
    let n = ev.nsteps();
    let mut params: Vec<Vec<f64>> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != mi {
            params.push(ev.eval_scalar(a)?);
        }
    }
    if name == "double_exponential_smoothing" || name == "holt_winters" {
        for i in 0..n {
            let (sf, tf) = (params[0][i], params[1][i]);
            if !(sf > 0.0 && sf < 1.0) {
                return Err(exec_err(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}")));
            }
            if !(tf > 0.0 && tf < 1.0) {
                return Err(exec_err(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf}")));
            }
        }
    }
    let mut input: RangeInput = ev.range_input(&args[mi])?;
    if name == "absent_over_time" {
        let mut present = vec![false; n];
        for s in &input.series {
            ev.for_each_window(&input, &s.points, |w, i, _, _| {
                if !w.is_empty() {
                    present[i] = true;
                }
            });
        }
        let points: Vec<Sample> = (0..n).filter(|&i| !present[i]).map(|i| Sample::new(ev.ts(i), 1.0)).collect();
        if points.is_empty() {
            return Ok(Val::Vector(Vec::new()));
        }
        return Ok(Val::Vector(vec![Series { labels: absent_labels(input.selector.as_ref()), points }]));
    }
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let mut out: Vec<Series> = Vec::with_capacity(input.series.len());
    let mut scratch: Vec<f64> = Vec::new();
    let mut total = 0usize;
    let kind = RangeFn::of(name);
    // Inputs with different names may collide once names are dropped.
    let names_differ = input.series.windows(2).any(|w| w[0].labels.metric_name() != w[1].labels.metric_name());
    let input_points = super::eval::points_in(&input.series);
    let mut series = std::mem::take(&mut input.series);
    for s in series.iter_mut() {
        let mut points = Vec::new();
        range_points(ev, kind, &input, &s.points, &params, &mut scratch, &mut points);
        if !points.is_empty() {
            total += points.len();
            let labels = std::mem::take(&mut s.labels);
            let labels =
                if keep_name || (names_unused && !names_differ) { labels } else { super::eval::without_name(&labels) };
            out.push(Series { labels, points });
        }
    }
    ev.limits.release(input_points);
    ev.limits.add_samples(total)?;
    if keep_name {
        Ok(Val::Vector(out))
    } else if names_differ {
        Ok(Val::Vector(dedupe(out)?))
    } else {
        Ok(Val::Vector(out))
    }
}

/// The range function `name` when its output is a plain function of one
/// series' windows (no scalar parameters, no per-call state): what the
/// streamed aggregation in `streamed.rs` may compute series by series.
pub(crate) fn streamable_range_fn(name: &str) -> Option<RangeFn> {
    match RangeFn::of(name) {
        RangeFn::Other
        | RangeFn::PredictLinear
        | RangeFn::QuantileOverTime
        | RangeFn::DoubleExponentialSmoothing
        | RangeFn::HoltWinters => None,
        k => Some(k),
    }
}

/// The points of one series under range function `kind`: a value per step
/// whose window holds samples, appended to `points`. `params` are the
/// function's scalar arguments per step (none for the streamable ones).
pub(crate) fn range_points(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    input: &RangeInput,
    samples: &[Sample],
    params: &[Vec<f64>],
    scratch: &mut Vec<f64>,
    points: &mut Vec<Sample>,
) {
    // A series without any counter reset needs no per-window reset scan
    // (the scan would add nothing), which makes windows O(1) for rate.
    let resets = matches!(kind, RangeFn::Rate | RangeFn::Increase) && !pairs_never_decrease(samples);
    range_points_with(ev, kind, input, samples, resets, params, scratch, points);
}

/// Whether no value is below the one before it, or NaN (unless it stands
/// alone): then no window holds a counter reset. One pass without an early
/// exit, so that it vectorizes.
#[inline]
pub(crate) fn pairs_never_decrease(samples: &[Sample]) -> bool {
    samples.windows(2).fold(true, |ok, p| ok & (p[1].v >= p[0].v))
}

/// [`range_points`] with `resets` (whether a window may hold a counter
/// reset) known: false only when [`pairs_never_decrease`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn range_points_with(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    input: &RangeInput,
    samples: &[Sample],
    resets: bool,
    params: &[Vec<f64>],
    scratch: &mut Vec<f64>,
    points: &mut Vec<Sample>,
) {
    let regular = match kind {
        RangeFn::Rate if !resets => regular_rate_points(ev, input, samples, true, true, points),
        RangeFn::Increase if !resets => regular_rate_points(ev, input, samples, true, false, points),
        RangeFn::Delta => regular_rate_points(ev, input, samples, false, false, points),
        _ => false,
    };
    if !regular {
        windowed_points(ev, kind, input, samples, resets, params, scratch, points);
    }
}

/// [`range_points_with`] for any series and window placement: the window of
/// each step from [`Evaluator::for_each_window`], valued on its own.
#[allow(clippy::too_many_arguments)]
fn windowed_points(
    ev: &Evaluator<'_>,
    kind: RangeFn,
    input: &RangeInput,
    samples: &[Sample],
    resets: bool,
    params: &[Vec<f64>],
    scratch: &mut Vec<f64>,
    points: &mut Vec<Sample>,
) {
    let range = input.range;
    let mut memo = RateMemo::default();
    ev.for_each_window(input, samples, |w, i, mint, reft| {
        if w.is_empty() {
            return;
        }
        let ts = ev.ts(i);
        if let Some(v) = window_value(kind, w, mint, reft, range, resets, params, i, ts, scratch, &mut memo) {
            points.push(Sample::new(ts, v));
        }
    });
}

/// One window's value under `kind` (`None`: no point at this step).
#[allow(clippy::too_many_arguments)]
#[inline]
fn window_value(
    kind: RangeFn,
    w: &[Sample],
    mint: i64,
    reft: i64,
    range: i64,
    resets: bool,
    params: &[Vec<f64>],
    i: usize,
    ts: i64,
    scratch: &mut Vec<f64>,
    memo: &mut RateMemo,
) -> Option<f64> {
    match kind {
        RangeFn::Rate => extrapolated_rate(w, mint, reft, range, true, true, resets, memo),
        RangeFn::Increase => extrapolated_rate(w, mint, reft, range, true, false, resets, memo),
        RangeFn::Delta => extrapolated_rate(w, mint, reft, range, false, false, false, memo),
        RangeFn::Irate => instant_value(w, true),
        RangeFn::Idelta => instant_value(w, false),
        RangeFn::Deriv => (w.len() >= 2).then(|| linear_regression(w, w[0].t).0),
        RangeFn::PredictLinear => (w.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(w, ts);
            slope * params[0][i] + intercept
        }),
        RangeFn::Resets => {
            let mut c = 0.0;
            for p in w.windows(2) {
                if p[1].v < p[0].v {
                    c += 1.0;
                }
            }
            Some(c)
        }
        RangeFn::Changes => {
            let mut c = 0.0;
            for p in w.windows(2) {
                if !(p[1].v == p[0].v || (p[1].v.is_nan() && p[0].v.is_nan())) {
                    c += 1.0;
                }
            }
            Some(c)
        }
        RangeFn::AvgOverTime => Some(avg_values(w)),
        RangeFn::SumOverTime => {
            let (mut sum, mut c) = (0.0, 0.0);
            for p in w {
                (sum, c) = kahan_inc(p.v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        RangeFn::CountOverTime => Some(w.len() as f64),
        RangeFn::MinOverTime => {
            let mut m = w[0].v;
            for p in w {
                if p.v < m || m.is_nan() {
                    m = p.v;
                }
            }
            Some(m)
        }
        RangeFn::MaxOverTime => {
            let mut m = w[0].v;
            for p in w {
                if p.v > m || m.is_nan() {
                    m = p.v;
                }
            }
            Some(m)
        }
        RangeFn::TsOfMinOverTime | RangeFn::TsOfMaxOverTime => {
            let max = kind == RangeFn::TsOfMaxOverTime;
            let (mut m, mut t) = (w[0].v, w[0].t);
            for p in w {
                let better = if max { p.v >= m } else { p.v <= m };
                if better || m.is_nan() {
                    m = p.v;
                    t = p.t;
                }
            }
            Some(t as f64 / 1000.0)
        }
        RangeFn::TsOfLastOverTime => Some(w[w.len() - 1].t as f64 / 1000.0),
        RangeFn::TsOfFirstOverTime => Some(w[0].t as f64 / 1000.0),
        RangeFn::StddevOverTime => Some(variance(w).sqrt()),
        RangeFn::StdvarOverTime => Some(variance(w)),
        RangeFn::LastOverTime => Some(w[w.len() - 1].v),
        RangeFn::FirstOverTime => Some(w[0].v),
        RangeFn::PresentOverTime => Some(1.0),
        RangeFn::QuantileOverTime => {
            scratch.clear();
            scratch.extend(w.iter().map(|p| p.v));
            Some(quantile(params[0][i], scratch))
        }
        RangeFn::MadOverTime => {
            if w.iter().any(|p| p.v.is_nan()) {
                return Some(f64::NAN);
            }
            scratch.clear();
            scratch.extend(w.iter().map(|p| p.v));
            let median = quantile(0.5, scratch);
            scratch.clear();
            scratch.extend(w.iter().map(|p| (p.v - median).abs()));
            Some(quantile(0.5, scratch))
        }
        RangeFn::DoubleExponentialSmoothing | RangeFn::HoltWinters => holt_winters(w, params[0][i], params[1][i]),
        _ => None,
    }
}

#[cfg(test)]
mod rate_memo_tests {
    use super::*;

    /// Series sampled at a fixed interval take the shared-shape loop; it
    /// must give the window walk's bits: intervals dividing the step or not,
    /// series starting late and ending early, offsets, counters near zero
    /// (the zero-point correction), resets and jitter (both walked).
    #[test]
    fn regular_series_give_the_window_walks_bits() {
        let storage = crate::storage::memory::MemStorage::default();
        let series = |interval: i64, first: i64, last: i64, jitter: i64, reset_at: i64, base: f64| -> Vec<Sample> {
            (first..last)
                .map(|i| {
                    let t = 1_000 + i * interval + if jitter > 0 && i % 5 == 3 { jitter } else { 0 };
                    let v = if i >= reset_at {
                        (i - reset_at) as f64 * 0.5
                    } else {
                        base + (i * i % 3) as f64 + i as f64 * 3.25
                    };
                    Sample::new(t, v)
                })
                .collect()
        };
        let cases = [
            series(15_000, 0, 500, 0, i64::MAX, 1e6),
            series(15_000, 0, 500, 0, i64::MAX, 0.0),
            series(5_000, 40, 700, 0, i64::MAX, 2.0),
            series(15_000, 100, 260, 0, i64::MAX, -50.0),
            series(10_000, 0, 500, 0, 300, 7.0),
            series(15_000, 0, 500, 2, i64::MAX, 3.0),
            series(7_000, 0, 900, 0, i64::MAX, 1.5),
        ];
        let mut fast_paths = 0;
        for samples in &cases {
            for (step, range, offset) in
                [(15_000, 300_000, 0), (30_000, 60_000, 0), (60_000, 600_000, 45_000), (45_000, 90_000, 7_000)]
            {
                let mut limits = crate::promql::eval::Limits {
                    max_samples: 0,
                    samples: 0,
                    deadline: None,
                    checks: 0,
                    walk_threads: 1,
                };
                let ev = Evaluator {
                    storage: &storage,
                    start: 200_000,
                    end: 7_400_000,
                    step,
                    query_start: 200_000,
                    query_end: 7_400_000,
                    query_step: step,
                    lookback: 300_000,
                    subquery_step: 60_000,
                    limits: &mut limits,
                };
                let input = RangeInput { series: Vec::new(), range, offset, at: None, selector: None };
                for kind in [RangeFn::Rate, RangeFn::Increase, RangeFn::Delta] {
                    let counter = kind != RangeFn::Delta;
                    let resets = counter && !pairs_never_decrease(samples);
                    let (mut got, mut want) = (Vec::new(), Vec::new());
                    if !resets
                        && regular_rate_points(&ev, &input, samples, counter, kind == RangeFn::Rate, &mut Vec::new())
                    {
                        fast_paths += 1;
                    }
                    range_points(&ev, kind, &input, samples, &[], &mut Vec::new(), &mut got);
                    windowed_points(&ev, kind, &input, samples, resets, &[], &mut Vec::new(), &mut want);
                    assert!(want.len() > 5, "{kind:?} step {step}: {} points", want.len());
                    let bits = |p: &[Sample]| p.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{kind:?} step {step} range {range} offset {offset}");
                }
            }
        }
        assert!(fast_paths >= 40, "only {fast_paths} cases took the regular path");
    }

    /// Windows slid over regular and jittered series give the same bits with
    /// the memo carried along as with a fresh one per window.
    #[test]
    fn memoised_extrapolation_is_bit_identical() {
        for jitter in [0i64, 1, 7] {
            let samples: Vec<Sample> = (0..400i64)
                .map(|i| {
                    let t = i * 15_000 + (i * jitter * 37) % 900;
                    let v = if i == 200 { 3.0 } else { (i * i % 97) as f64 + i as f64 * 10.0 };
                    Sample::new(t, v)
                })
                .collect();
            for (counter, rate, resets) in [(true, true, true), (true, false, false), (false, false, false)] {
                let mut memo = RateMemo::default();
                let range = 300_000;
                for step in 0..380i64 {
                    let end = 320_000 + step * 15_000 + 123;
                    let start = end - range;
                    let w: Vec<Sample> = samples.iter().copied().filter(|s| s.t > start && s.t <= end).collect();
                    let shared = extrapolated_rate(&w, start, end, range, counter, rate, resets, &mut memo);
                    let fresh =
                        extrapolated_rate(&w, start, end, range, counter, rate, resets, &mut RateMemo::default());
                    assert_eq!(shared.map(f64::to_bits), fresh.map(f64::to_bits), "step {step} jitter {jitter}");
                }
            }
        }
    }

    /// Prometheus 3's extrapolation written out step by step (the 1.1x
    /// threshold, then the counter's zero point), with the zero-point check
    /// on every window.
    fn reference_rate(w: &[Sample], start: i64, end: i64, range: i64, rate: bool) -> Option<f64> {
        if w.len() < 2 {
            return None;
        }
        let (first, last) = (w[0], w[w.len() - 1]);
        let mut result = last.v - first.v;
        for p in w.windows(2) {
            if p[1].v < p[0].v {
                result += p[0].v;
            }
        }
        let mut to_start = (first.t - start) as f64 / 1000.0;
        let mut to_end = (end - last.t) as f64 / 1000.0;
        let sampled = (last.t - first.t) as f64 / 1000.0;
        let avg = sampled / (w.len() - 1) as f64;
        let threshold = avg * 1.1;
        if to_start >= threshold {
            to_start = avg / 2.0;
        }
        if to_end >= threshold {
            to_end = avg / 2.0;
        }
        if result > 0.0 && first.v >= 0.0 {
            let to_zero = sampled * (first.v / result);
            if to_zero < to_start {
                to_start = to_zero;
            }
        }
        Some(extrapolation_factor(sampled, to_start, to_end, range, rate) * result)
    }

    /// A counter that would reach zero inside the extrapolated start is
    /// extrapolated only to its zero point: 6 -> 18 over 15 s, 10 s after
    /// the range start, starts 7.5 s back (12 per 15 s) instead of 10.
    #[test]
    fn small_counter_extrapolates_to_its_zero_point() {
        let w = [Sample::new(10_000, 6.0), Sample::new(25_000, 18.0)];
        let got = extrapolated_rate(&w, 0, 60_000, 60_000, true, false, false, &mut RateMemo::default());
        assert_eq!(got, Some(12.0 * (15.0 + 7.5 + 7.5) / 15.0));
        assert_eq!(got, reference_rate(&w, 0, 60_000, 60_000, false));
    }

    proptest::proptest! {
        /// Counters of every size against their windows' increases (the
        /// zero-point check skipped for large ones) give Prometheus's bits;
        /// short windows starting near the range start are the ones where
        /// the zero point moves the extrapolation.
        #[test]
        fn counter_rate_matches_the_reference(
            base in proptest::prop_oneof![0.0..3.0f64, 0.0..300.0f64, 0.0..1e12f64],
            incs in proptest::collection::vec(0.0..100.0f64, 2..8),
            first_at in 1i64..40_000,
            gaps in proptest::collection::vec(1_000i64..30_000, 8),
            range in 30_000i64..200_000,
            rate: bool,
        ) {
            let (start, end) = (0, range);
            let mut t = first_at;
            let mut v = if base < 3.0 { 0.0 } else { base };
            let mut w = Vec::new();
            for (inc, gap) in incs.iter().zip(&gaps) {
                if t > end {
                    break;
                }
                w.push(Sample::new(t, v));
                v += inc;
                t += gap;
            }
            // Small bases are taken relative to the window's increase, so the
            // first value lands on both sides of the zero point's threshold.
            if base < 3.0 && w.len() >= 2 {
                let shift = base * (w[w.len() - 1].v - w[0].v);
                w.iter_mut().for_each(|s| s.v += shift);
            }
            let got = extrapolated_rate(&w, start, end, range, true, rate, false, &mut RateMemo::default());
            let want = reference_rate(&w, start, end, range, rate);
            proptest::prop_assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits));
        }
    }
}
