//! Binary operators: scalar/scalar, vector/scalar and vector/vector with
//! `on`/`ignoring`, `group_left`/`group_right`, `bool` and the set operators.
//! Semantics follow Prometheus's `VectorBinop`, `VectorAnd/Or/Unless` and
//! `resultMetric` (promql/engine.go).

use std::collections::HashMap;

use super::eval::{dedupe, drop_names, exec_err, Evaluator, Val};
use super::plan::{BinOp, Card, Plan, VectorMatching};
use super::value::Series;
use super::QueryError;
use crate::model::{Labels, LabelsBuilder, Sample, METRIC_NAME};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Applies `op` to two floats: `(value, keep)`. For comparisons the value is
/// the left operand and `keep` the comparison's outcome.
pub(crate) fn apply(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Mod => (l % r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, true),
    }
}

/// Whether the operator's result drops the metric name.
fn drops_name(op: BinOp) -> bool {
    matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow | BinOp::Atan2)
}

pub(crate) fn eval(
    ev: &mut Evaluator<'_>,
    op: BinOp,
    lhs: &Plan,
    rhs: &Plan,
    matching: Option<&VectorMatching>,
    return_bool: bool,
) -> Result<Val, QueryError> {
    if let Some(v) = super::streamed::compare_filter(ev, op, lhs, rhs, return_bool) {
        return v;
    }
    let l = ev.eval(lhs)?;
    let r = ev.eval(rhs)?;
    match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => Ok(Val::Scalar(
            a.iter()
                .zip(b.iter())
                .map(|(&x, &y)| {
                    let (v, keep) = apply(op, x, y);
                    if op.is_comparison() {
                        if keep {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        v
                    }
                })
                .collect(),
        )),
        (Val::Vector(v), Val::Scalar(s)) => vector_scalar(ev, op, v, &s, false, return_bool),
        (Val::Scalar(s), Val::Vector(v)) => vector_scalar(ev, op, v, &s, true, return_bool),
        (Val::Vector(a), Val::Vector(b)) => {
            let default = VectorMatching { card: Card::OneToOne, on: false, labels: Vec::new(), include: Vec::new() };
            let m = matching.unwrap_or(&default);
            match op {
                BinOp::And => Ok(Val::Vector(set_and_unless(ev, a, b, m, true))),
                BinOp::Unless => Ok(Val::Vector(set_and_unless(ev, a, b, m, false))),
                BinOp::Or => Ok(Val::Vector(set_or(ev, a, b, m))),
                _ => Ok(Val::Vector(vector_vector(ev, op, a, b, m, return_bool)?)),
            }
        }
        _ => Err(exec_err("binary operator applied to a non-numeric operand")),
    }
}

fn vector_scalar(
    ev: &Evaluator<'_>,
    op: BinOp,
    mut v: Vec<Series>,
    s: &[f64],
    scalar_left: bool,
    return_bool: bool,
) -> Result<Val, QueryError> {
    for series in &mut v {
        series.points.retain_mut(|p| {
            let sv = s[ev.step_of(p.t)];
            let (l, r) = if scalar_left { (sv, p.v) } else { (p.v, sv) };
            let (mut value, keep) = apply(op, l, r);
            if op.is_comparison() && scalar_left {
                value = r;
            }
            if return_bool {
                p.v = if keep { 1.0 } else { 0.0 };
                return true;
            }
            p.v = value;
            keep
        });
    }
    v.retain(|s| !s.points.is_empty());
    if drops_name(op) || return_bool {
        Ok(Val::Vector(drop_names(v)?))
    } else {
        Ok(Val::Vector(v))
    }
}

/// The matching signature of a label set: the `on` labels, or every label
/// but the `ignoring` ones and the metric name.
fn signature(labels: &Labels, m: &VectorMatching, buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    for l in labels.iter() {
        let wanted = if m.on {
            m.labels.iter().any(|n| n == l.name)
        } else {
            l.name != METRIC_NAME && !m.labels.iter().any(|n| n == l.name)
        };
        if wanted {
            buf.extend_from_slice(l.name.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(l.value.as_bytes());
            buf.push(0xff);
        }
    }
    xxhash_rust::xxh3::xxh3_64(buf)
}

/// The labels that identify a match group in error messages.
fn match_labels(labels: &Labels, m: &VectorMatching) -> Labels {
    if m.on {
        labels.keep_only(&m.labels)
    } else {
        let mut b = labels.to_builder();
        b.del(METRIC_NAME);
        for n in &m.labels {
            b.del(n);
        }
        b.build()
    }
}

/// Prometheus's `labels.Labels.String()`: `{a="1", b="2"}`, the name included as a label.
pub(crate) fn prom_string(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, p) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(p.name);
        s.push('=');
        let _ = crate::model::labels::write_quoted(&mut s, p.value);
    }
    s.push('}');
    s
}

/// Per-step cursor over series whose points sit on step timestamps.
struct Cursors {
    pos: Vec<usize>,
}

impl Cursors {
    fn new(n: usize) -> Self {
        Cursors { pos: vec![0; n] }
    }

    /// The value of series `i` at timestamp `t`, advancing its cursor.
    #[inline]
    fn at(&mut self, series: &[Series], i: usize, t: i64) -> Option<f64> {
        let pts = &series[i].points;
        let p = &mut self.pos[i];
        while *p < pts.len() && pts[*p].t < t {
            *p += 1;
        }
        (*p < pts.len() && pts[*p].t == t).then(|| pts[*p].v)
    }
}

fn set_and_unless(ev: &Evaluator<'_>, a: Vec<Series>, b: Vec<Series>, m: &VectorMatching, and: bool) -> Vec<Series> {
    let mut buf = Vec::new();
    let sig_b: Vec<u64> = b.iter().map(|s| signature(&s.labels, m, &mut buf)).collect();
    // Steps at which each right-side signature is present.
    let mut present: FastMap<u64, Vec<i64>> = FastMap::default();
    for (s, sig) in b.iter().zip(sig_b) {
        present.entry(sig).or_default().extend(s.points.iter().map(|p| p.t));
    }
    for v in present.values_mut() {
        v.sort_unstable();
    }
    let _ = ev;
    let mut out = Vec::with_capacity(a.len());
    for mut s in a {
        let sig = signature(&s.labels, m, &mut buf);
        let ts = present.get(&sig);
        s.points.retain(|p| {
            let found = ts.is_some_and(|ts| ts.binary_search(&p.t).is_ok());
            found == and
        });
        if !s.points.is_empty() {
            out.push(s);
        }
    }
    out
}

fn set_or(ev: &Evaluator<'_>, a: Vec<Series>, b: Vec<Series>, m: &VectorMatching) -> Vec<Series> {
    let mut buf = Vec::new();
    let mut present: FastMap<u64, Vec<i64>> = FastMap::default();
    for s in &a {
        let sig = signature(&s.labels, m, &mut buf);
        present.entry(sig).or_default().extend(s.points.iter().map(|p| p.t));
    }
    for v in present.values_mut() {
        v.sort_unstable();
    }
    let _ = ev;
    let mut out = a;
    for mut s in b {
        let sig = signature(&s.labels, m, &mut buf);
        let ts = present.get(&sig);
        s.points.retain(|p| !ts.is_some_and(|ts| ts.binary_search(&p.t).is_ok()));
        if !s.points.is_empty() {
            out.push(s);
        }
    }
    // Left and right series with equal labels at different steps are one series.
    merge_equal_labels(out)
}

/// Merges series with equal labels (their points never overlap here).
fn merge_equal_labels(series: Vec<Series>) -> Vec<Series> {
    match dedupe(series.clone()) {
        Ok(s) => s,
        Err(_) => series,
    }
}

fn vector_vector(
    ev: &mut Evaluator<'_>,
    op: BinOp,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
    m: &VectorMatching,
    return_bool: bool,
) -> Result<Vec<Series>, QueryError> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let swapped = m.card == Card::OneToMany;
    // `one` is the side whose signatures must be unique.
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let mut buf = Vec::new();
    let sig_many: Vec<u64> = many.iter().map(|s| signature(&s.labels, m, &mut buf)).collect();
    let sig_one: Vec<u64> = one.iter().map(|s| signature(&s.labels, m, &mut buf)).collect();

    // Only signatures present on both sides matter.
    let one_sigs: FastMap<u64, ()> = sig_one.iter().map(|&s| (s, ())).collect();
    let many_idx: Vec<usize> = (0..many.len()).filter(|&i| one_sigs.contains_key(&sig_many[i])).collect();
    let many_sigs: FastMap<u64, ()> = many_idx.iter().map(|&i| (sig_many[i], ())).collect();
    let one_idx: Vec<usize> = (0..one.len()).filter(|&j| many_sigs.contains_key(&sig_one[j])).collect();

    let mut out: Vec<Series> = Vec::new();
    let mut out_index: FastMap<(usize, usize), usize> = FastMap::default();
    let mut one_at: FastMap<u64, usize> = FastMap::default();
    let mut matched: FastMap<u64, Vec<usize>> = FastMap::default();
    let mut cur_many = Cursors::new(many.len());
    let mut cur_one = Cursors::new(one.len());
    let n = ev.nsteps();
    for step in 0..n {
        let t = ev.ts(step);
        one_at.clear();
        matched.clear();
        for &j in &one_idx {
            if cur_one.at(&one, j, t).is_none() {
                continue;
            }
            if let Some(&prev) = one_at.get(&sig_one[j]) {
                let side = if swapped { "left" } else { "right" };
                let (a, b) = if one[j].labels <= one[prev].labels { (j, prev) } else { (prev, j) };
                return Err(exec_err(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    prom_string(&match_labels(&one[j].labels, m)),
                    side,
                    prom_string(&one[a].labels),
                    prom_string(&one[b].labels)
                )));
            }
            one_at.insert(sig_one[j], j);
        }
        if one_at.is_empty() {
            continue;
        }
        for &i in &many_idx {
            let Some(mv) = cur_many.at(&many, i, t) else { continue };
            let Some(&j) = one_at.get(&sig_many[i]) else { continue };
            let Some(ov) = cur_one.at(&one, j, t) else { continue };
            let (l, r) = if swapped { (ov, mv) } else { (mv, ov) };
            let (mut value, keep) = apply(op, l, r);
            let key = if m.include.is_empty() && m.card == Card::OneToOne { (i, usize::MAX) } else { (i, j) };
            let oi = match out_index.get(&key) {
                Some(&oi) => oi,
                None => {
                    let labels = result_labels(&many[i].labels, &one[j].labels, op, m, return_bool);
                    out.push(Series { labels, points: Vec::new() });
                    out_index.insert(key, out.len() - 1);
                    out.len() - 1
                }
            };
            // Matching errors are raised even for pairs a filter drops.
            let entry = matched.entry(sig_many[i]).or_default();
            if m.card == Card::OneToOne {
                if !entry.is_empty() {
                    return Err(exec_err(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
            } else if entry.iter().any(|&o| out[o].labels == out[oi].labels) {
                return Err(exec_err("multiple matches for labels: grouping labels must ensure unique matches"));
            }
            entry.push(oi);
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            out[oi].points.push(Sample::new(t, value));
        }
    }
    out.retain(|s| !s.points.is_empty());
    ev.limits.release(super::eval::points_in(&many) + super::eval::points_in(&one));
    ev.limits.add_samples(super::eval::points_in(&out))?;
    dedupe(out)
}

/// Prometheus's `resultMetric`.
fn result_labels(many: &Labels, one: &Labels, op: BinOp, m: &VectorMatching, return_bool: bool) -> Labels {
    let mut b = LabelsBuilder::from_labels(many);
    if drops_name(op) || return_bool {
        b.del(METRIC_NAME);
    }
    if m.card == Card::OneToOne {
        if m.on {
            b.retain(|n, _| m.labels.iter().any(|x| x == n));
        } else {
            for n in &m.labels {
                b.del(n);
            }
        }
    }
    for n in &m.include {
        match one.get(n) {
            Some(v) => b.set(n, v),
            None => b.del(n),
        };
    }
    b.build()
}
