use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq)]
struct Owned {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    ts: Option<i64>,
}

#[derive(Debug, Default)]
struct Collected {
    samples: Vec<Owned>,
    help: Vec<(String, String)>,
    types: Vec<(String, MetricType)>,
    units: Vec<(String, String)>,
}

fn collect(body: &str, format: Format) -> Result<Collected, ParseError> {
    let mut c = Collected::default();
    parse(body.as_bytes(), format, |e| match e {
        Event::Sample(s) => c.samples.push(Owned {
            name: s.name.to_string(),
            labels: s.labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            value: s.value,
            ts: s.timestamp,
        }),
        Event::Help { family, text } => c.help.push((family.to_string(), text.to_string())),
        Event::Type { family, kind } => c.types.push((family.to_string(), kind)),
        Event::Unit { family, unit } => c.units.push((family.to_string(), unit.to_string())),
    })?;
    Ok(c)
}

fn ok(body: &str, format: Format) -> Collected {
    collect(body, format).unwrap_or_else(|e| panic!("{body:?}: {e}"))
}

fn one(body: &str, format: Format) -> Owned {
    let c = ok(body, format);
    assert_eq!(c.samples.len(), 1, "{body:?}");
    c.samples[0].clone()
}

fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn text_format_table() {
    let t = Format::PromText;
    let cases: Vec<(&str, &str, Vec<(String, String)>, f64, Option<i64>)> = vec![
        ("up 1\n", "up", vec![], 1.0, None),
        ("up 1", "up", vec![], 1.0, None),
        ("  up   1   \n", "up", vec![], 1.0, None),
        ("up\t1\t1700000000000\n", "up", vec![], 1.0, Some(1_700_000_000_000)),
        ("a:b_c{x=\"1\"} -2.5e3\n", "a:b_c", l(&[("x", "1")]), -2500.0, None),
        ("m{a=\"1\",b=\"2\",} 3\n", "m", l(&[("a", "1"), ("b", "2")]), 3.0, None),
        ("m { a = \"1\" , b=\"x y\" } 3\n", "m", l(&[("a", "1"), ("b", "x y")]), 3.0, None),
        ("m{} 3\n", "m", vec![], 3.0, None),
        (
            r#"m{path="C:\\dir\\f",q="say \"hi\"",n="a\nb"} 1"#,
            "m",
            l(&[("path", "C:\\dir\\f"), ("q", "say \"hi\""), ("n", "a\nb")]),
            1.0,
            None,
        ),
        (r#"m{r="\d+"} 1"#, "m", l(&[("r", "\\d+")]), 1.0, None),
        ("m{a=\"ünï\"} 1", "m", l(&[("a", "ünï")]), 1.0, None),
        ("m +Inf", "m", vec![], f64::INFINITY, None),
        ("m -Inf -5", "m", vec![], f64::NEG_INFINITY, Some(-5)),
        ("m 1e-7", "m", vec![], 1e-7, None),
        (r#"{"my.metric","a.b"="c"} 2"#, "my.metric", l(&[("a.b", "c")]), 2.0, None),
        (r#"{"my.metric"} 2"#, "my.metric", vec![], 2.0, None),
        ("m\r\n", "", vec![], 0.0, None), // placeholder replaced below
    ];
    for (body, name, labels, value, ts) in cases.into_iter().filter(|c| !c.1.is_empty()) {
        let s = one(body, t);
        assert_eq!(s.name, name, "{body:?}");
        assert_eq!(s.labels, labels, "{body:?}");
        assert_eq!(s.value.to_bits(), value.to_bits(), "{body:?}");
        assert_eq!(s.ts, ts, "{body:?}");
    }
    assert!(one("m NaN", t).value.is_nan());
    assert_eq!(one("m 1\r\n", t).value, 1.0);
}

#[test]
fn text_format_errors_name_the_line() {
    let t = Format::PromText;
    let cases = [
        ("up 1\nup\n", 2, "missing value"),
        ("up 1\n\n# c\nup{a=\"1\" 2\n", 4, "expected ',' or '}'"),
        ("up{a=1} 2", 1, "quoted value"),
        ("up{a=\"1} 2", 1, "unterminated"),
        ("up 1 2 3", 1, "unexpected text"),
        ("up one", 1, "invalid value"),
        ("up 1 1.5", 1, "invalid timestamp"),
        ("# TYPE up countr\nup 1", 1, "invalid metric type"),
        ("1up 1", 1, "metric name"),
        ("up{1a=\"x\"} 1", 1, "invalid label name"),
        ("up{a} 1", 1, "without a value"),
        ("up 1\n\u{0}", 2, "metric name"),
    ];
    for (body, line, msg) in cases {
        let e = collect(body, t).err().unwrap_or_else(|| panic!("{body:?} should fail"));
        assert_eq!(e.line, line, "{body:?}: {e}");
        assert!(e.message.contains(msg), "{body:?}: {e}");
        assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
    }
    let bad = [b'u', b'p', b' ', b'1', b'\n', b'u', 0xff, b' ', b'1'];
    let e = parse(&bad, t, |_| {}).err().unwrap_or_else(|| panic!("bad utf-8 accepted"));
    assert_eq!((e.line, e.message.as_str()), (2, "invalid UTF-8"));
}

#[test]
fn text_metadata_and_comments() {
    let c = ok(
        "# a comment\n#HELP x not metadata without space? it is: HELP\n# HELP up Whether \\\\ the\\ntarget is up.\n# TYPE up gauge\n# UNIT up seconds\nup 1\n",
        Format::PromText,
    );
    assert_eq!(c.help.iter().find(|h| h.0 == "up").map(|h| h.1.as_str()), Some("Whether \\ the\ntarget is up."));
    assert_eq!(c.types, vec![("up".to_string(), MetricType::Gauge)]);
    assert!(c.units.is_empty(), "UNIT is a comment in the text format");
    assert_eq!(c.samples.len(), 1);
}

#[test]
fn le_and_quantile_are_normalised_for_their_types_only() {
    let c = ok(
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_bucket{le=\"1e6\"} 2\n\
         # TYPE s summary\ns{quantile=\"0\"} 1\ns{quantile=\"0.99\"} 1\n# TYPE g gauge\ng{le=\"1\"} 1\n",
        Format::PromText,
    );
    let les: Vec<&str> = c.samples.iter().map(|s| s.labels[0].1.as_str()).collect();
    assert_eq!(les, ["1.0", "0.5", "+Inf", "1e+06", "0.0", "0.99", "1"]);
}

#[test]
fn go_float_formatting() {
    let cases = [
        (1.0, "1.0"),
        (0.0, "0.0"),
        (10.0, "10.0"),
        (0.005, "0.005"),
        (2.5, "2.5"),
        (123456.0, "123456.0"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.25, "-0.25"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (1e21, "1e+21"),
    ];
    for (f, want) in cases {
        assert_eq!(format_openmetrics_float(f), want, "{f}");
    }
}

#[test]
fn openmetrics_table() {
    let om = Format::OpenMetrics;
    let c = ok(
        "# HELP foo A \\\"counter\\\".\n# TYPE foo counter\n# UNIT foo seconds\nfoo_total{a=\"b\"} 17.0 1520879607.789 # {id=\"x\"} 1.0 1520879607.0\nfoo_created{a=\"b\"} 1520430000.123\n# EOF\n",
        om,
    );
    assert_eq!(c.help, vec![("foo".to_string(), "A \"counter\".".to_string())]);
    assert_eq!(c.units, vec![("foo".to_string(), "seconds".to_string())]);
    assert_eq!(
        c.samples[0],
        Owned { name: "foo_total".into(), labels: l(&[("a", "b")]), value: 17.0, ts: Some(1_520_879_607_789) }
    );
    assert_eq!(c.samples[1].name, "foo_created");
    assert_eq!(c.samples.len(), 2);
    // Exemplar without timestamp, directly after the value.
    assert_eq!(ok("m_total 1 # {t=\"1\"} 2\n# EOF", om).samples[0].value, 1.0);
    // No trailing newline after # EOF is fine.
    assert_eq!(ok("m 1\n# EOF", om).samples.len(), 1);
}

#[test]
fn openmetrics_errors() {
    let om = Format::OpenMetrics;
    let cases = [
        ("m 1\n", 2, "does not end with # EOF"),
        ("m 1\n# EOF\nm 2\n", 3, "after # EOF"),
        ("m 1\n\n# EOF\n", 2, "empty line"),
        ("m  1\n# EOF\n", 1, "missing value"),
        ("# random comment\n# EOF\n", 1, "invalid metadata keyword"),
        ("m 1 junk\n# EOF\n", 1, "invalid timestamp"),
        ("# TYPE m untyped\n# EOF\n", 1, "invalid metric type"),
    ];
    for (body, line, msg) in cases {
        let e = collect(body, om).err().unwrap_or_else(|| panic!("{body:?} should fail"));
        assert_eq!(e.line, line, "{body:?}: {e}");
        assert!(e.message.contains(msg), "{body:?}: {e}");
    }
}

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/exposition").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn fixtures_parse_every_sample_line() {
    for (name, format) in [
        ("triton.prom", Format::PromText),
        ("fastapi.prom", Format::PromText),
        ("node_exporter.prom", Format::PromText),
        ("dcgm.prom", Format::PromText),
        ("fastapi.om.txt", Format::OpenMetrics),
    ] {
        let body = fixture(name);
        let c = ok(&body, format);
        let sample_lines = body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
        assert_eq!(c.samples.len(), sample_lines, "{name}");
        // Every TYPE'd family has a HELP (as these exporters emit), except OM info.
        assert!(!c.types.is_empty(), "{name}");
        for s in &c.samples {
            assert!(!s.name.is_empty() && !s.value.is_nan(), "{name}: {s:?}");
        }
    }
    let triton = ok(&fixture("triton.prom"), Format::PromText);
    let pending: Vec<&Owned> =
        triton.samples.iter().filter(|s| s.name == "nv_inference_pending_request_count").collect();
    assert_eq!(pending.len(), 3);
    assert_eq!(pending[0].labels, l(&[("model", "resnet50"), ("version", "1")]));
    let fast = ok(&fixture("fastapi.prom"), Format::PromText);
    let le: Vec<&str> = fast
        .samples
        .iter()
        .filter(|s| s.name == "http_request_duration_seconds_bucket")
        .take(15)
        .filter_map(|s| s.labels.iter().find(|(n, _)| n == "le").map(|(_, v)| v.as_str()))
        .collect();
    assert_eq!(le[9], "1.0");
    assert_eq!(le[14], "+Inf");
}

#[test]
fn bad_fixture_reports_line_four() {
    let e =
        collect(&fixture("bad_missing_value.prom"), Format::PromText).err().unwrap_or_else(|| panic!("should fail"));
    assert_eq!(e.line, 4, "{e}");
    assert!(e.to_string().contains("line 4: missing value"), "{e}");
}

fn label_value() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 _.\\\\\"\n/ü{},=#-]{0,12}").unwrap_or_else(|e| panic!("{e}"))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

proptest! {
    /// Any sample we write with escaped values parses back to the same name,
    /// labels, value bits and timestamp, in both formats.
    #[test]
    fn roundtrip(
        name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
        labels in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,10}", label_value()), 0..5),
        value in proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::INFINITE,
        ts in proptest::option::of(-1_000_000_000_000i64..4_000_000_000_000),
        om in any::<bool>(),
    ) {
        let mut line = name.clone();
        if !labels.is_empty() {
            let parts: Vec<String> = labels.iter().map(|(n, v)| format!("{n}=\"{}\"", escape(v))).collect();
            line.push('{');
            line.push_str(&parts.join(","));
            line.push('}');
        }
        let vs = if value.is_infinite() { if value > 0.0 { "+Inf".to_string() } else { "-Inf".to_string() } } else { format!("{value:?}") };
        line.push(' ');
        line.push_str(&vs);
        let format = if om { Format::OpenMetrics } else { Format::PromText };
        if let Some(t) = ts {
            line.push(' ');
            // OM timestamps are seconds; use whole seconds so the ms value is exact.
            line.push_str(&if om { format!("{}", t / 1000) } else { t.to_string() });
        }
        line.push('\n');
        if om { line.push_str("# EOF\n"); }
        let c = collect(&line, format);
        prop_assert!(c.is_ok(), "{:?}: {:?}", line, c.err());
        let c = c.unwrap_or_default();
        prop_assert_eq!(c.samples.len(), 1);
        let s = &c.samples[0];
        prop_assert_eq!(&s.name, &name);
        let want: Vec<(String, String)> = labels.clone();
        prop_assert_eq!(&s.labels, &want);
        prop_assert_eq!(s.value.to_bits(), value.to_bits());
        let want_ts = ts.map(|t| if om { (t / 1000) * 1000 } else { t });
        prop_assert_eq!(s.ts, want_ts);
    }

    /// Arbitrary bytes never panic; they parse or fail with a line number inside the body.
    #[test]
    fn arbitrary_input_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), om in any::<bool>()) {
        let format = if om { Format::OpenMetrics } else { Format::PromText };
        if let Err(e) = parse(&body, format, |_| {}) {
            let lines = body.iter().filter(|&&b| b == b'\n').count() + 2;
            prop_assert!(e.line >= 1 && e.line <= lines);
        }
    }
}
