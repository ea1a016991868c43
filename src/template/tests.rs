//! Table tests: each expected output is what Prometheus (Go text/template with
//! Prometheus's functions and `missingkey=zero`) renders for the same input,
//! worked out from the Go sources named in the module docs.

use super::*;
use crate::labels;

struct FakeQuerier;

impl TemplateQuerier for FakeQuerier {
    fn query(&self, q: &str, ts_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        match q {
            "up" => Ok(vec![
                (labels!("__name__" => "up", "instance" => "b:9100", "job" => "node"), 1.0),
                (labels!("__name__" => "up", "instance" => "a:9100", "job" => "node"), 0.0),
            ]),
            "empty" => Ok(vec![]),
            "time" => Ok(vec![(Labels::empty(), ts_ms as f64 / 1000.0)]),
            _ => Err(format!("parse error in {q:?}")),
        }
    }
}

fn run(text: &str, value: f64) -> Result<String, String> {
    let l = labels!("alertname" => "HighLatency", "instance" => "host-1.example.com:9100", "job" => "api", "severity" => "page");
    let ext = labels!("cluster" => "edge-1");
    let data = TemplateData { labels: &l, external_labels: &ext, external_url: "http://prom.example:9090/sub", value };
    let t = Template::parse("__alert_HighLatency", text).map_err(|e| e.to_string())?;
    t.execute(&data, Some(&FakeQuerier), 1_600_000_000_000).map_err(|e| e.to_string())
}

#[test]
fn renders_like_prometheus() {
    let cases: &[(&str, f64, &str)] = &[
        ("plain text", 0.0, "plain text"),
        ("{{ $labels.instance }} of {{ $labels.job }}", 0.0, "host-1.example.com:9100 of api"),
        ("{{ .Labels.job }}/{{ .ExternalLabels.cluster }}/{{ $externalLabels.cluster }}", 0.0, "api/edge-1/edge-1"),
        ("[{{ $labels.missing }}]", 0.0, "[]"),
        ("{{ $value }}", 0.5, "0.5"),
        ("{{ .Value }}", 1e6, "1e+06"),
        ("{{ $value }}", 123456.0, "123456"),
        ("{{ $value | humanize }}", 1234567.0, "1.235M"),
        ("{{ humanize $value }}", 0.0012, "1.2m"),
        ("{{ $value | humanize1024 }}B", 1073741824.0, "1GiB"),
        ("{{ $value | humanizePercentage }}", 0.0234, "2.34%"),
        ("{{ $value | humanizePercentage }}", 0.123456, "12.35%"),
        ("{{ $value | humanizeDuration }}", 93784.0, "1d 2h 3m 4s"),
        ("{{ humanizeDuration 0.25 }}", 0.0, "250ms"),
        ("{{ $value | humanizeTimestamp }}", 1435065584.128, "2015-06-23 13:19:44.128 +0000 UTC"),
        ("{{ humanize \"2048\" }}", 0.0, "2.048k"),
        ("{{ printf \"%.2f\" $value }}", 1.23456, "1.23"),
        ("{{ printf \"%.1f%%\" (mul) }}", 0.0, "ERR"),
        ("{{ printf \"%s=%d\" \"n\" 5 }}", 0.0, "n=5"),
        ("{{ printf \"%v\" 1.5 }} {{ print 1 2 }} {{ println \"x\" }}", 0.0, "1.5 1 2 x\n"),
        ("{{ $labels.job | toUpper }} {{ \"ABC\" | toLower }} {{ title \"hello world\" }}", 0.0, "API abc Hello World"),
        ("{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}", 0.0, "host-1.example.com"),
        ("{{ if match \"^host-\" $labels.instance }}yes{{ else }}no{{ end }}", 0.0, "yes"),
        (
            "{{ $labels.instance | stripPort }}|{{ $labels.instance | stripDomain }}",
            0.0,
            "host-1.example.com|host-1:9100",
        ),
        ("{{ stripDomain \"10.0.0.1:80\" }}", 0.0, "10.0.0.1:80"),
        ("{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}", 0.7, "high"),
        ("{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}", 0.2, "mid"),
        ("{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}", 0.0, "low"),
        ("{{ if and (eq $labels.job \"api\") (ne $labels.severity \"info\") }}ok{{ end }}", 0.0, "ok"),
        ("{{ or \"\" \"fallback\" }} {{ and 1 0 }} {{ not true }}", 0.0, "fallback 0 false"),
        (
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            0.0,
            "alertname=HighLatency;instance=host-1.example.com:9100;job=api;severity=page;",
        ),
        ("{{ range $labels }}{{ . }},{{ end }}", 0.0, "HighLatency,host-1.example.com:9100,api,page,"),
        ("{{ range query \"up\" }}{{ .Labels.instance }}={{ .Value }} {{ end }}", 0.0, "b:9100=1 a:9100=0 "),
        ("{{ range sortByLabel \"instance\" (query \"up\") }}{{ .Labels.instance }} {{ end }}", 0.0, "a:9100 b:9100 "),
        ("{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}", 0.0, "1"),
        ("{{ with query \"empty\" }}some{{ else }}none{{ end }}", 0.0, "none"),
        ("{{ query \"up\" | first | label \"job\" }}", 0.0, "node"),
        ("{{ (query \"up\" | first).Labels.instance }}", 0.0, "b:9100"),
        ("{{ len (query \"up\") }} {{ index $labels \"job\" }} {{ (index (query \"up\") 1).Value }}", 0.0, "2 api 0"),
        ("{{ query \"time\" | first | value | humanizeTimestamp }}", 0.0, "2020-09-13 12:26:40 +0000 UTC"),
        ("{{ range $i, $s := query \"up\" }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $i }}{{ end }}", 0.0, "0"),
        ("{{ range $i, $s := query \"up\" }}{{ if eq $i 0 }}{{ continue }}{{ end }}{{ $i }}{{ end }}", 0.0, "1"),
        ("{{ range 3 }}{{ . }}{{ end }}", 0.0, "012"),
        ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", 0.0, "2"),
        ("a  {{- \" b \" -}}  c", 0.0, "a b c"),
        ("x{{/* a comment */}}y {{- /* trimmed */ -}} z", 0.0, "xyz"),
        (
            "{{ externalURL }}|{{ pathPrefix }}|{{ $externalURL }}",
            0.0,
            "http://prom.example:9090/sub|/sub|http://prom.example:9090/sub",
        ),
        ("{{ graphLink \"up == 0\" }}", 0.0, "/graph?g0.expr=up+%3D%3D+0&g0.tab=0"),
        ("{{ parseDuration \"1h30m\" }}", 0.0, "5400"),
        ("{{ (toTime 1435065584.5).Format \"2006-01-02 15:04\" }} {{ (toTime 60).Unix }}", 0.0, "2015-06-23 13:19 60"),
        ("{{ toTime 0 }}", 0.0, "1970-01-01 00:00:00 +0000 UTC"),
        ("{{ args 1 \"a\" }}", 0.0, "map[arg0:1 arg1:a]"),
        ("{{ $a := args 1 }}{{ $a.arg0 }}", 0.0, "1"),
        ("{{ safeHtml \"<b>\" }} {{ html \"<b>\" }} {{ urlquery \"a b\" }}", 0.0, "<b> &lt;b&gt; a+b"),
        ("{{ $labels }}", 0.0, "map[alertname:HighLatency instance:host-1.example.com:9100 job:api severity:page]"),
        ("{{ with $labels.severity }}sev={{ . }}{{ end }}{{ with $labels.none }}x{{ end }}", 0.0, "sev=page"),
        ("{{ 1e3 }} {{ 0x10 }} {{ 'a' }} {{ -2.5 }}", 0.0, "1000 16 97 -2.5"),
        ("{{ `raw \\n` }}", 0.0, "raw \\n"),
        ("{{ $value | printf \"%.3g\" }}", 0.000123456, "0.000123"),
        ("{{ lt 1 2 }} {{ le \"a\" \"a\" }} {{ ge 2.0 3.0 }}", 0.0, "true true false"),
    ];
    for (text, value, want) in cases {
        let got = run(text, *value);
        if *want == "ERR" {
            assert!(got.is_err(), "{text}: expected an error, got {got:?}");
            continue;
        }
        assert_eq!(got.as_deref(), Ok(*want), "{text}");
    }
}

#[test]
fn execution_errors_like_prometheus() {
    // Columns count the rule manager's 112-byte header on line 1.
    let h = ALERT_HEADER.len();
    assert_eq!(h, 112);
    let cases: &[(&str, String)] = &[
        (
            "{{ query \"empty\" | first }}",
            format!("error executing template __alert_HighLatency: template: __alert_HighLatency:1:{}: executing \"__alert_HighLatency\" at <first>: error calling first: first() called on vector with no elements", h + 19),
        ),
        (
            "{{ if gt $value 80 }}x{{ end }}",
            format!("error executing template __alert_HighLatency: template: __alert_HighLatency:1:{}: executing \"__alert_HighLatency\" at <gt>: error calling gt: incompatible types for comparison", h + 6),
        ),
        (
            "a\n{{ .Nope }}",
            "error executing template __alert_HighLatency: template: __alert_HighLatency:2:3: executing \"__alert_HighLatency\" at <.Nope>: can't evaluate field Nope in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }".to_string(),
        ),
        (
            "{{ humanize \"abc\" }}",
            format!("error executing template __alert_HighLatency: template: __alert_HighLatency:1:{}: executing \"__alert_HighLatency\" at <humanize>: error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax", h + 3),
        ),
        (
            "{{ toUpper $value }}",
            format!("error executing template __alert_HighLatency: template: __alert_HighLatency:1:{}: executing \"__alert_HighLatency\" at <$value>: wrong type for value; expected string; got float64", h + 11),
        ),
        (
            "{{ label \"x\" }}",
            format!("error executing template __alert_HighLatency: template: __alert_HighLatency:1:{}: executing \"__alert_HighLatency\" at <label>: wrong number of args for label: want 2 got 1", h + 3),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(run(text, 1.0).unwrap_err(), *want, "{text}");
    }
}

#[test]
fn parse_errors_like_prometheus() {
    // The classic single-brace typo.
    let e = Template::parse("__alert_X", "{{ $labels.instance }").unwrap_err();
    assert_eq!(e.to_string(), "error parsing template __alert_X: template: __alert_X:1: unexpected \"}\" in operand");
    let e = Template::parse("__alert_X", "{{ 1").unwrap_err();
    assert_eq!(e.to_string(), "error parsing template __alert_X: template: __alert_X:1: unclosed action");
    let e = Template::parse("__alert_X", "ok\n{{ \"a\"} }}").unwrap_err();
    assert_eq!(e.to_string(), "error parsing template __alert_X: template: __alert_X:2: unexpected \"}\" in operand");
    assert_eq!(
        e.annotation_text(),
        "<error expanding template: error parsing template __alert_X: template: __alert_X:2: unexpected \"}\" in operand>"
    );
    assert_eq!(e.go_error(), "template: __alert_X:2: unexpected \"}\" in operand");
    assert!(check("{{ humanize $value }}").is_ok());
    assert!(check("{{ humanise $value }}").is_err());
}

#[test]
fn limits_stop_runaway_templates() {
    let e = run("{{ range 100000000 }}{{ end }}", 0.0).unwrap_err();
    assert!(e.contains("execution steps"), "{e}");
    let e = run("{{ range 900000 }}aaaaaaaaaa{{ end }}", 0.0).unwrap_err();
    assert!(e.contains("output exceeds"), "{e}");
}

#[test]
fn query_without_querier_fails_cleanly() {
    let l = Labels::empty();
    let data = TemplateData { labels: &l, external_labels: &l, external_url: "", value: 0.0 };
    let e = expand("t", "{{ query \"up\" }}", &data).unwrap_err();
    assert!(e.contains("error calling query"), "{e}");
    assert_eq!(expand("t", "static", &data), Ok("static".to_string()));
}

#[test]
fn template_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
}
