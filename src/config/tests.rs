use super::*;
use std::io::Write as _;

fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    Config::parse(text, "test.yml", Path::new("/nonexistent"))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {c:?}"),
        Err(es) => es.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn empty_file_gives_prometheus_defaults() {
    let c = parse("# nothing\n").unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
    assert_eq!(c.global.scrape_timeout(), Duration::from_secs(10));
    assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
    assert!(c.scrape_configs.is_empty());
}

#[test]
fn scrape_config_defaults_and_inheritance() {
    let c = parse(
        "global:\n  scrape_interval: 15s\n  external_labels:\n    cluster: edge-1\n\
         scrape_configs:\n  - job_name: triton\n    static_configs:\n      - targets: ['localhost:8002']\n\
         \x20 - job_name: fast\n    scrape_interval: 5s\n    static_configs:\n      - targets: ['a:1']\n",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let t = &c.scrape_configs[0];
    assert_eq!(t.interval(), Duration::from_secs(15));
    assert_eq!(t.timeout(), Duration::from_secs(10));
    assert_eq!(t.metrics_path, "/metrics");
    assert_eq!(t.scheme, "http");
    assert!(!t.honor_labels);
    assert!(t.honor_timestamps);
    // Timeout defaults to the interval when the interval is shorter than 10s.
    let f = &c.scrape_configs[1];
    assert_eq!(f.timeout(), Duration::from_secs(5));
    assert_eq!(c.global.external_labels().get("cluster"), Some("edge-1"));
}

#[test]
fn unknown_field_is_rejected_with_position_and_name() {
    let errs = errors("global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: x\n    metric_path: /m\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("test.yml:5:5:"), "{}", errs[0]);
    assert!(errs[0].contains("metric_path"), "{}", errs[0]);

    let errs = errors("globl:\n  scrape_interval: 15s\n");
    assert!(errs[0].starts_with("test.yml:1:1:") && errs[0].contains("globl"), "{}", errs[0]);
}

#[test]
fn bad_duration_has_position() {
    let errs = errors("global:\n  scrape_interval: 15 seconds\n");
    assert!(errs[0].starts_with("test.yml:2:"), "{}", errs[0]);
    assert!(errs[0].contains("15 seconds"), "{}", errs[0]);
}

#[test]
fn semantic_errors_are_all_reported() {
    let errs = errors(
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 10s\n    scrape_timeout: 20s\n\
         \x20 - job_name: a\n    static_configs:\n      - targets: ['http://x:1/metrics']\n\
         alerting:\n  alertmanagers:\n    - api_version: v1\n",
    );
    let all = errs.join("\n");
    assert!(all.contains("scrape timeout greater than scrape interval"), "{all}");
    assert!(all.contains("found multiple scrape configs with job name \"a\""), "{all}");
    assert!(all.contains("is not a valid hostname"), "{all}");
    assert!(all.contains("api version"), "{all}");
    assert_eq!(errs.len(), 4, "{all}");
}

#[test]
fn unsupported_discovery_is_rejected_not_ignored() {
    let errs = errors("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: pod\n");
    assert!(errs[0].starts_with("test.yml:"), "{}", errs[0]);
    assert!(errs[0].contains("not supported"), "{}", errs[0]);
}

#[test]
fn remote_write_is_accepted_with_warning() {
    let c = parse("remote_write:\n  - url: http://mimir/api/v1/push\n").unwrap_or_else(|e| panic!("{e:?}"));
    assert!(c.warnings().iter().any(|w| w.contains("remote_write") && w.contains("NOT sent")), "{:?}", c.warnings());
}

#[test]
fn relabel_errors_have_positions() {
    let errs = errors(
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n",
    );
    assert!(errs[0].contains("non-zero modulus"), "{}", errs[0]);
    assert!(errs[0].starts_with("test.yml:4:"), "{}", errs[0]);
}

#[test]
fn secrets_are_read_from_files_relative_to_config() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut f = std::fs::File::create(dir.path().join("pw")).unwrap_or_else(|e| panic!("{e}"));
    writeln!(f, "s3cret").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("tok"), "abc\n").unwrap_or_else(|e| panic!("{e}"));
    let cfg_path = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg_path,
        "scrape_configs:\n  - job_name: a\n    basic_auth:\n      username: u\n      password_file: pw\n\
         \x20 - job_name: b\n    authorization:\n      credentials_file: tok\n\
         \x20 - job_name: c\n    bearer_token_file: tok\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let c = Config::load(&cfg_path).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(c.scrape_configs[0].auth, ClientAuth::Basic { username: "u".into(), password: Secret("s3cret".into()) });
    let bearer = ClientAuth::Header { scheme: "Bearer".into(), credentials: Secret("abc".into()) };
    assert_eq!(c.scrape_configs[1].auth, bearer);
    assert_eq!(c.scrape_configs[2].auth, bearer);

    std::fs::write(&cfg_path, "scrape_configs:\n  - job_name: a\n    basic_auth:\n      password_file: missing\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let errs = Config::load(&cfg_path).err().unwrap_or_default();
    assert!(errs[0].to_string().contains("unable to read basic_auth password_file"), "{errs:?}");
}

#[test]
fn rule_file_globs_resolve_against_config_dir() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("rules")).unwrap_or_else(|e| panic!("{e}"));
    for n in ["b.yml", "a.yml", "c.txt"] {
        std::fs::write(dir.path().join("rules").join(n), "groups: []\n").unwrap_or_else(|e| panic!("{e}"));
    }
    let cfg_path = dir.path().join("p.yml");
    std::fs::write(&cfg_path, "rule_files:\n  - rules/*.yml\n  - none/*.yml\n").unwrap_or_else(|e| panic!("{e}"));
    let c = Config::load(&cfg_path).unwrap_or_else(|e| panic!("{e:?}"));
    let got = c.rule_file_paths().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, vec![dir.path().join("rules/a.yml"), dir.path().join("rules/b.yml")]);
    let summary = check(&cfg_path).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(summary.contains("none/*.yml: matches no file"), "{summary}");
}

#[test]
fn embedded_default_scrapes_itself() {
    let c = Config::embedded_default().unwrap_or_else(|e| panic!("{e:?}"));
    let sc = c.scrape_config("promlite").unwrap_or_else(|| panic!("no promlite job"));
    assert_eq!(sc.interval(), Duration::from_secs(15));
    assert_eq!(sc.static_configs[0].targets, vec!["localhost:9090".to_string()]);
}

#[test]
fn promlite_section_defaults_and_overrides() {
    let c = parse("promlite:\n  remote_write:\n    max_body_bytes: 1MB\n  query:\n    timeout: 30s\n")
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(c.promlite.remote_write.max_body_bytes, ByteSize(1 << 20));
    assert_eq!(c.promlite.remote_write.max_series_per_request, 100_000);
    assert_eq!(c.promlite.query.timeout, Duration::from_secs(30));
    assert_eq!(c.promlite.query.lookback_delta, Duration::from_secs(300));
    let errs = errors("promlite:\n  remote_write:\n    max_bodybytes: 1\n");
    assert!(errs[0].contains("max_bodybytes"), "{}", errs[0]);
}

#[test]
fn storage_out_of_order_window() {
    let c = parse("storage:\n  tsdb:\n    out_of_order_time_window: 30m\n").unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(c.storage.out_of_order_time_window(), Duration::from_secs(1800));
}

#[test]
fn duplicate_keys_are_rejected() {
    let errs = errors("global:\n  scrape_interval: 15s\n  scrape_interval: 30s\n");
    assert!(errs[0].starts_with("test.yml:3:"), "{}", errs[0]);
}

#[test]
fn testdata_configs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        if !name.ends_with(".yml") {
            continue;
        }
        seen += 1;
        let res = check(&p);
        if let Some(rest) = name.strip_prefix("bad_") {
            // bad_<what>.yml: the error text must mention the expectation in its sibling .err file.
            let want = std::fs::read_to_string(p.with_extension("err")).unwrap_or_else(|e| panic!("{name}: {e}"));
            let errs = res.err().unwrap_or_else(|| panic!("{name} should fail ({rest})"));
            let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            for line in want.lines().filter(|l| !l.is_empty()) {
                assert!(all.iter().any(|e| e.contains(line)), "{name}: want {line:?} in {all:?}");
            }
        } else if let Err(e) = res {
            panic!("{name} should load: {e:?}");
        }
    }
    assert!(seen >= 4, "only {seen} configs in testdata/config");
}

const HTTPS_EVERYWHERE: &str = "scrape_configs:\n  - job_name: j\n    scheme: https\n    tls_config:\n      insecure_skip_verify: true\n    static_configs:\n      - targets: ['a:1']\nalerting:\n  alertmanagers:\n    - scheme: https\n      static_configs:\n        - targets: ['am:9093']\n";

#[cfg(not(feature = "tls"))]
#[test]
fn https_and_tls_config_refused_without_the_tls_feature() {
    let errs = errors(HTTPS_EVERYWHERE);
    let has = |ctx: &str, what: &str| {
        errs.iter()
            .any(|e| e.contains("test.yml") && e.contains(ctx) && e.contains(what) && e.contains("`tls` cargo feature"))
    };
    assert!(has("scrape_configs[0]", "scheme https"), "{errs:?}");
    assert!(has("scrape_configs[0]", "tls_config:"), "{errs:?}");
    assert!(has("alerting.alertmanagers[0]", "scheme https"), "{errs:?}");
}

#[cfg(feature = "tls")]
#[test]
fn https_loads_with_the_tls_feature() {
    let c = parse(HTTPS_EVERYWHERE).unwrap_or_else(|e| panic!("{e:?}"));
    let tls = c.scrape_configs[0].tls.as_ref().expect("resolved tls_config");
    assert!(tls.insecure_skip_verify && tls.ca.is_none());
    assert!(
        c.warnings().iter().any(|w| w.contains("scrape_configs[0]") && w.contains("not verified")),
        "{:?}",
        c.warnings()
    );
    // No tls_config: https with the system's CA roots.
    assert_eq!(c.alerting.alertmanagers[0].scheme, "https");
    assert!(c.alerting.alertmanagers[0].tls.is_none());
}
