//! Runs PromQL test files in Prometheus's `.test` format against promlite's
//! engine, in process.
//!
//! * `testdata/promql/*.test`: promlite's own cases; every case must pass.
//! * Prometheus's own files (`$PROMQLTEST_DIR`, else `../shared/promqltest`
//!   beside the repository, else `/work/shared/promqltest`): prints
//!   `promqltest: N passed, M failed, K skipped`; fails when a case that is not
//!   listed in `tests/promql_known_failures.txt` fails. Native-histogram cases
//!   and the experimental files named in that folder's README are skipped.
//!
//! The format is described in Prometheus's `promql/promqltest/README.md`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use promlite::model::Labels;
use promlite::promql::series_notation::{
    almost_equal, expand_values, parse_labels, parse_number, split_descriptor, SeqValue,
};
use promlite::promql::{Engine, EngineOptions, QueryValue};
use promlite::storage::{Appendable, Queryable};

/// The storage under test: the real TSDB (head, WAL, chunks) in a fresh
/// temporary directory, so conformance covers storage as well as the engine.
struct TestDb {
    db: promlite::tsdb::db::Db,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestDb {
    type Target = promlite::tsdb::db::Db;
    fn deref(&self) -> &Self::Target {
        &self.db
    }
}

/// The one place that builds the storage under test.
fn new_storage() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = promlite::tsdb::db::Db::open(dir.path(), promlite::tsdb::db::DbOptions::default()).expect("open tsdb");
    TestDb { db, _dir: dir }
}

/// Files about experimental Prometheus features (per the folder's README).
const EXPERIMENTAL: &[&str] = &[
    "duration_expression.test",
    "extended_vectors.test",
    "fill-modifier.test",
    "info.test",
    "type_and_unit.test",
    "start_timestamps.test",
    "native_histograms.test",
];

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Pass,
    Fail(String),
    Skip,
}

fn parse_time(s: &str) -> Result<i64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let ms = if let Some(d) = parse_duration_ms(body) {
        d
    } else if let Ok(f) = body.parse::<f64>() {
        (f * 1000.0).round() as i64
    } else {
        return Err(format!("bad time {s:?}"));
    };
    Ok(if neg { -ms } else { ms })
}

/// Prometheus duration syntax (`1h30m`, `0m`, `500ms`), in milliseconds.
fn parse_duration_ms(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0i64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (mult, len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            let m = match rest.chars().next()? {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 604_800_000,
                'y' => 31_536_000_000,
                _ => return None,
            };
            (m, 1)
        };
        total += n * mult;
        rest = &rest[len..];
    }
    Some(total)
}

enum Query {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

struct EvalCase {
    line: usize,
    query: String,
    kind: Query,
    ordered: bool,
    fail: bool,
    fail_msg: Option<String>,
    fail_regex: Option<String>,
    expect_string: Option<String>,
    /// `expect range vector from .. to .. step ..` for instant queries.
    range_vector: Option<(i64, i64, i64)>,
    lines: Vec<String>,
}

struct Runner {
    storage: TestDb,
    engine: Engine,
    hist_names: HashSet<String>,
}

impl Runner {
    fn new() -> Self {
        let engine = Engine::new(EngineOptions { max_samples: 50_000_000, ..EngineOptions::default() });
        Runner { storage: new_storage(), engine, hist_names: HashSet::new() }
    }

    fn clear(&mut self) {
        self.storage = new_storage();
        self.hist_names.clear();
    }

    fn load(&mut self, interval: i64, lines: &[String], nhcb: bool) -> Result<(), String> {
        // A later line for the same series overrides earlier samples, as in Prometheus.
        let mut series: std::collections::BTreeMap<Labels, std::collections::BTreeMap<i64, f64>> = Default::default();
        for l in lines {
            let (desc, rest) = split_descriptor(l);
            let labels = parse_labels(desc)?;
            let values = expand_values(rest)?;
            let name = labels.metric_name().unwrap_or("").to_string();
            if nhcb {
                for suffix in ["_bucket", "_count", "_sum"] {
                    if let Some(base) = name.strip_suffix(suffix) {
                        self.hist_names.insert(base.to_string());
                    }
                }
            }
            if values.contains(&SeqValue::Histogram) {
                self.hist_names.insert(name.clone());
            }
            let e = series.entry(labels).or_default();
            for (i, v) in values.iter().enumerate() {
                if let SeqValue::Num(x) = v {
                    e.insert(i as i64 * interval, *x);
                }
            }
        }
        let mut app = self.storage.appender();
        for (labels, samples) in &series {
            for (&t, &v) in samples {
                app.append(labels, t, v).map_err(|e| format!("load {labels}: {e}"))?;
            }
        }
        app.commit().map_err(|e| e.to_string())
    }

    fn mentions_histogram(&self, query: &str) -> bool {
        self.hist_names.iter().any(|n| {
            query.match_indices(n.as_str()).any(|(i, _)| {
                let before = query[..i].chars().next_back();
                let after = query[i + n.len()..].chars().next();
                let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                !ident(before) && !ident(after)
            })
        })
    }

    fn eval(&self, c: &EvalCase) -> Outcome {
        let regex_name = !self.hist_names.is_empty() && c.query.contains("__name__");
        if c.lines.iter().any(|l| l.contains("{{")) || self.mentions_histogram(&c.query) || regex_name {
            return Outcome::Skip;
        }
        let res = match c.kind {
            Query::Instant(t) => self.engine.instant_query(&*self.storage as &dyn Queryable, &c.query, t),
            Query::Range { start, end, step } => {
                self.engine.range_query(&*self.storage as &dyn Queryable, &c.query, start, end, step)
            }
        };
        if c.fail {
            return match res {
                Ok(v) => Outcome::Fail(format!("expected an error, got {v:?}")),
                Err(e) => {
                    let msg = e.to_string();
                    if let Some(m) = &c.fail_msg {
                        if &msg != m {
                            return Outcome::Fail(format!("error {msg:?}, expected {m:?}"));
                        }
                    }
                    if let Some(r) = &c.fail_regex {
                        match regex::Regex::new(r) {
                            Ok(re) if re.is_match(&msg) => {}
                            _ => return Outcome::Fail(format!("error {msg:?} does not match {r:?}")),
                        }
                    }
                    Outcome::Pass
                }
            };
        }
        let v = match res {
            Ok(v) => v,
            Err(e) => return Outcome::Fail(format!("unexpected error: {e}")),
        };
        match self.compare(c, v) {
            Ok(()) => Outcome::Pass,
            Err(e) => Outcome::Fail(e),
        }
    }

    fn compare(&self, c: &EvalCase, v: QueryValue) -> Result<(), String> {
        if let Some(s) = &c.expect_string {
            return match v {
                QueryValue::String { v, .. } if &v == s => Ok(()),
                other => Err(format!("expected string {s:?}, got {other:?}")),
            };
        }
        match (&c.kind, v) {
            (Query::Instant(_), QueryValue::Scalar { v, .. }) => {
                let [line] = c.lines.as_slice() else {
                    return Err(format!("scalar result {v} but expected {} lines", c.lines.len()));
                };
                let want = parse_number(line.trim()).ok_or(format!("bad expected scalar {line:?}"))?;
                if almost_equal(want, v) {
                    Ok(())
                } else {
                    Err(format!("expected scalar {want}, got {v}"))
                }
            }
            (Query::Instant(_), QueryValue::Vector(got)) => {
                if c.range_vector.is_some() {
                    return Err("expected a range vector, got an instant vector".into());
                }
                let mut want: Vec<(Labels, f64)> = Vec::new();
                for l in &c.lines {
                    let (desc, rest) = split_descriptor(l);
                    let vals = expand_values(rest)?;
                    let [SeqValue::Num(x)] = vals.as_slice() else {
                        return Err(format!("bad expected sample {l:?}"));
                    };
                    want.push((parse_labels(desc)?, *x));
                }
                if want.len() != got.len() {
                    return Err(format!(
                        "expected {} samples, got {}: {}",
                        want.len(),
                        got.len(),
                        got.iter().map(|s| format!("{} {}", s.labels, s.v)).collect::<Vec<_>>().join(", ")
                    ));
                }
                for (i, s) in got.iter().enumerate() {
                    let found = if c.ordered {
                        (want[i].0 == s.labels).then_some(want[i].1)
                    } else {
                        want.iter().find(|w| w.0 == s.labels).map(|w| w.1)
                    };
                    match found {
                        None => return Err(format!("unexpected sample {} {} (position {i})", s.labels, s.v)),
                        Some(x) if !almost_equal(x, s.v) => {
                            return Err(format!("{}: expected {x}, got {}", s.labels, s.v))
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            (Query::Instant(_), QueryValue::Matrix(got)) => {
                let Some((start, _end, step)) = c.range_vector else {
                    return Err("got a range vector; the case does not expect one".into());
                };
                compare_matrix(&c.lines, &got, start, step)
            }
            (Query::Range { start, step, .. }, QueryValue::Matrix(got)) => {
                compare_matrix(&c.lines, &got, *start, *step)
            }
            (_, other) => Err(format!("unexpected result {other:?}")),
        }
    }
}

fn compare_matrix(lines: &[String], got: &[promlite::promql::Series], start: i64, step: i64) -> Result<(), String> {
    let mut want: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
    for l in lines {
        let (desc, rest) = split_descriptor(l);
        let vals = expand_values(rest)?;
        let mut pts = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            if let SeqValue::Num(x) = v {
                pts.push((start + i as i64 * step, *x));
            }
        }
        want.push((parse_labels(desc)?, pts));
    }
    let got: Vec<&promlite::promql::Series> = got.iter().filter(|s| !s.points.is_empty()).collect();
    want.retain(|w| !w.1.is_empty());
    if want.len() != got.len() {
        return Err(format!(
            "expected {} series, got {}: {}",
            want.len(),
            got.len(),
            got.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    for s in got {
        let Some(w) = want.iter().find(|w| w.0 == s.labels) else {
            return Err(format!("unexpected series {}", s.labels));
        };
        let gp: Vec<(i64, f64)> = s.points.iter().map(|p| (p.t, p.v)).collect();
        let same = gp.len() == w.1.len() && gp.iter().zip(&w.1).all(|(a, b)| a.0 == b.0 && almost_equal(a.1, b.1));
        if !same {
            return Err(format!("{}: expected {:?}, got {:?}", s.labels, w.1, gp));
        }
    }
    Ok(())
}

/// Lines with comments blanked, as Prometheus's `getLines` does.
fn get_lines(input: &str) -> Vec<String> {
    input
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect()
}

fn parse_eval_header(line: &str, lineno: usize) -> Result<EvalCase, String> {
    let (cmd, rest) = line.split_once(char::is_whitespace).ok_or("bad eval")?;
    let rest = rest.trim_start();
    let mut case = EvalCase {
        line: lineno,
        query: String::new(),
        kind: Query::Instant(0),
        ordered: cmd == "eval_ordered",
        fail: cmd == "eval_fail",
        fail_msg: None,
        fail_regex: None,
        expect_string: None,
        range_vector: None,
        lines: Vec::new(),
    };
    if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim_start().strip_prefix("at").ok_or("expected 'at'")?.trim_start();
        let (t, q) = r.split_once(char::is_whitespace).ok_or("missing query")?;
        case.kind = Query::Instant(parse_time(t)?);
        case.query = q.trim().to_string();
    } else if let Some(r) = rest.strip_prefix("range") {
        // `from <t> to <t> step <d> <query>`: take six tokens, the rest is the query.
        let mut r = r.trim_start();
        let mut words = Vec::new();
        for _ in 0..6 {
            let end = r.find(char::is_whitespace).ok_or(format!("bad range eval {line:?}"))?;
            words.push(&r[..end]);
            r = r[end..].trim_start();
        }
        if words[0] != "from" || words[2] != "to" || words[4] != "step" {
            return Err(format!("bad range eval {line:?}"));
        }
        case.kind =
            Query::Range { start: parse_time(words[1])?, end: parse_time(words[3])?, step: parse_time(words[5])? };
        case.query = r.trim().to_string();
    } else {
        return Err(format!("bad eval {line:?}"));
    }
    Ok(case)
}

/// Parses the body lines of an eval (expect directives and results).
fn parse_eval_body(case: &mut EvalCase, body: &[String]) -> Result<(), String> {
    for l in body {
        if let Some(d) = l.strip_prefix("expect ") {
            let d = d.trim();
            if let Some(m) = d.strip_prefix("fail") {
                case.fail = true;
                let m = m.trim();
                if let Some(msg) = m.strip_prefix("msg:") {
                    case.fail_msg = Some(msg.trim().to_string());
                } else if let Some(r) = m.strip_prefix("regex:") {
                    case.fail_regex = Some(r.trim().to_string());
                }
            } else if d == "ordered" {
                case.ordered = true;
            } else if let Some(s) = d.strip_prefix("string") {
                let s = s.trim();
                let unq =
                    if s.len() >= 2 && (s.starts_with('`') || s.starts_with('"')) { &s[1..s.len() - 1] } else { s };
                case.expect_string = Some(unq.to_string());
            } else if let Some(r) = d.strip_prefix("range vector") {
                let w: Vec<&str> = r.split_whitespace().collect();
                if w.len() != 6 || w[0] != "from" || w[2] != "to" || w[4] != "step" {
                    return Err(format!("bad expect range {l:?}"));
                }
                case.range_vector = Some((parse_time(w[1])?, parse_time(w[3])?, parse_time(w[5])?));
            }
            // warn / info / no_warn / no_info: annotations are not compared.
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_message") {
            case.fail_msg = Some(m.trim().to_string());
            continue;
        }
        if let Some(r) = l.strip_prefix("expected_fail_regexp") {
            case.fail_regex = Some(r.trim().to_string());
            continue;
        }
        case.lines.push(l.clone());
    }
    Ok(())
}

/// Runs one file; returns `(line, outcome)` per eval.
fn run_file(path: &Path, skip_all: bool) -> Result<Vec<(usize, Outcome)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines = get_lines(&text);
    let mut runner = Runner::new();
    let mut results = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        let lineno = i + 1;
        if l.is_empty() {
            i += 1;
            continue;
        }
        let mut body = Vec::new();
        let mut j = i + 1;
        while j < lines.len() && !lines[j].is_empty() {
            body.push(lines[j].clone());
            j += 1;
        }
        let cmd = l.split_whitespace().next().unwrap_or("");
        match cmd {
            "clear" => {
                runner.clear();
                j = i + 1;
            }
            "load" | "load_with_nhcb" => {
                let arg = l.split_whitespace().nth(1).ok_or(format!("line {lineno}: load without interval"))?;
                let interval = parse_time(arg)?;
                if skip_all {
                    i = j;
                    continue;
                }
                runner
                    .load(interval, &body, cmd == "load_with_nhcb")
                    .map_err(|e| format!("{}:{lineno}: {e}", path.display()))?;
            }
            "eval" | "eval_fail" | "eval_ordered" | "eval_warn" | "eval_info" => {
                if skip_all {
                    results.push((lineno, Outcome::Skip));
                    i = j;
                    continue;
                }
                let mut case = parse_eval_header(l, lineno).map_err(|e| format!("{}:{lineno}: {e}", path.display()))?;
                parse_eval_body(&mut case, &body).map_err(|e| format!("{}:{lineno}: {e}", path.display()))?;
                let outcome = if skip_all { Outcome::Skip } else { runner.eval(&case) };
                results.push((case.line, outcome));
            }
            "ignore" | "resume" => {
                j = i + 1;
            }
            other => return Err(format!("{}:{lineno}: unknown command {other:?}", path.display())),
        }
        i = j;
    }
    Ok(results)
}

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "test"));
    files.sort();
    files
}

#[test]
fn promlite_own_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/promql");
    let files = test_files(&dir);
    assert!(!files.is_empty(), "no .test files in {}", dir.display());
    let (mut passed, mut failures) = (0, Vec::new());
    for f in &files {
        let results = run_file(f, false).unwrap_or_else(|e| panic!("{e}"));
        for (line, o) in results {
            match o {
                Outcome::Pass => passed += 1,
                Outcome::Fail(why) => failures.push(format!("{}:{line}: {why}", f.display())),
                Outcome::Skip => failures.push(format!("{}:{line}: skipped (own cases must not skip)", f.display())),
            }
        }
    }
    println!("promlite cases: {passed} passed, {} failed", failures.len());
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}

fn promqltest_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("PROMQLTEST_DIR") {
        return Some(PathBuf::from(d));
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/promqltest");
    [beside, PathBuf::from("/work/shared/promqltest")].into_iter().find(|p| p.is_dir())
}

/// `file:line` → reason, from tests/promql_known_failures.txt.
fn known_failures() -> HashMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql_known_failures.txt");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (k.to_string(), reason.trim().to_string())
        })
        .collect()
}

#[test]
fn prometheus_cases() {
    let Some(dir) = promqltest_dir() else {
        println!("promqltest: folder not found, set PROMQLTEST_DIR");
        return;
    };
    let known = known_failures();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let mut all_failures = Vec::new();
    for f in test_files(&dir) {
        let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let skip_all = EXPERIMENTAL.contains(&name.as_str());
        let results = run_file(&f, skip_all).unwrap_or_else(|e| panic!("{e}"));
        for (line, o) in results {
            let key = format!("{name}:{line}");
            match o {
                Outcome::Pass => {
                    passed += 1;
                    if known.contains_key(&key) {
                        fixed.push(key);
                    }
                }
                Outcome::Skip => skipped += 1,
                Outcome::Fail(why) => {
                    failed += 1;
                    all_failures.push(format!("{key} {why}"));
                    if !known.contains_key(&key) {
                        unexpected.push(format!("{key}: {why}"));
                    }
                }
            }
        }
    }
    // Written past the test harness's capture so the summary always shows.
    {
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "promqltest: {passed} passed, {failed} failed, {skipped} skipped");
    }
    if let Ok(out) = std::env::var("PROMQLTEST_FAILURES_OUT") {
        let _ = std::fs::write(out, all_failures.join("\n") + "\n");
    }
    if !fixed.is_empty() {
        println!("listed as known failures but now passing (remove them): {}", fixed.join(", "));
    }
    let rate = passed as f64 / (passed + failed).max(1) as f64;
    assert!(unexpected.is_empty(), "{} unexpected failures:\n{}", unexpected.len(), unexpected.join("\n"));
    assert!(rate >= 0.97, "pass rate {rate:.3} is below 97%");
}
