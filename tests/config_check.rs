//! `promlite check config` behaviour through the public API: the summary of
//! a good config, and every error of a bad one with its position.

use std::path::Path;

use promlite::config::{self, Config, ConfigError};

fn testdata(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/config").join(name)
}

#[test]
fn good_config_summary_lists_what_was_found() {
    let s = config::check(&testdata("full_prometheus.yml")).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(s.contains("SUCCESS"), "{s}");
    assert!(s.contains("job \"fastapi\": every 1m (timeout 10s), http://<target>/internal/metrics, 2 static target(s), 2 file_sd path(s), 4 relabel / 2 metric_relabel rule(s), auth basic"), "{s}");
    assert!(s.contains("alerting: 1 alertmanager group(s), 2 static alertmanager(s), 1 alert_relabel_configs"), "{s}");
    assert!(s.contains("remote_write: 1 endpoint(s) configured"), "{s}");
    assert!(s.contains("global.query_log_file is accepted but ignored"), "{s}");
}

#[test]
fn bad_config_reports_every_error() {
    let errs = config::check(&testdata("bad_timeout.yml")).err().unwrap_or_default();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().all(|e| matches!(e, ConfigError::Invalid { .. })));
}

#[test]
fn unknown_field_error_names_file_line_column_and_field() {
    let errs = config::check(&testdata("bad_unknown_field.yml")).err().unwrap_or_default();
    match &errs[..] {
        [ConfigError::Syntax { file, line, column, message }] => {
            assert!(file.ends_with("bad_unknown_field.yml"));
            assert_eq!((*line, *column), (2, 3));
            assert!(message.contains("unknown field `scrape_intervall`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_file_is_a_read_error() {
    let errs = Config::load(&testdata("nope.yml")).err().unwrap_or_default();
    assert!(matches!(&errs[..], [ConfigError::Read { .. }]), "{errs:?}");
}
