//! `promlite gate` end to end with the real binary: a test service whose 5xx
//! ratio rises mid-run is scraped every second, the rules evaluate every
//! second, and the gate fails the run with the right alert in its JUnit file;
//! a calm run (ended by `--until-file`) passes; a bad config exits 2.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

const RULES: &str = r#"groups:
  - name: svc-slo
    rules:
      - alert: HighErrorRatio
        expr: sum(rate(http_requests_total{code=~"5.."}[3s])) / sum(rate(http_requests_total[3s])) > 0.1
        labels:
          severity: critical
        annotations:
          summary: "5xx ratio {{ $value }}"
      - alert: SomeErrors
        expr: sum(rate(http_requests_total{code=~"5.."}[3s])) > 1
        labels:
          severity: warning
"#;

/// Serves `/metrics` on 127.0.0.1: 100 requests/s answered 200 and, from
/// `degrade_after` on, 50 requests/s answered 500. Returns the address.
fn start_service(degrade_after: Option<Duration>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind service");
    let addr = listener.local_addr().expect("addr").to_string();
    let started = Instant::now();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let ms = started.elapsed().as_millis() as u64;
            let bad = degrade_after.map_or(0, |d| ms.saturating_sub(d.as_millis() as u64) * 50 / 1000);
            let body = format!(
                "# TYPE http_requests_total counter\nhttp_requests_total{{code=\"200\"}} {}\nhttp_requests_total{{code=\"500\"}} {bad}\n",
                ms * 100 / 1000
            );
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    addr
}

fn write_config(dir: &Path, target: &str) -> PathBuf {
    write_config_am(dir, target, None)
}

fn write_config_am(dir: &Path, target: &str, am_port: Option<u16>) -> PathBuf {
    let rules = dir.join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let cfg = dir.join("promlite.yml");
    let text = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: svc\n    static_configs:\n      - targets: ['{target}']\n",
        rules.display()
    );
    let alerting = am_port.map_or(String::new(), |p| {
        format!("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{p}']\n")
    });
    std::fs::write(&cfg, text + &alerting).unwrap();
    cfg
}

fn gate(dir: &Path, cfg: &Path, extra: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_promlite"))
        .arg("gate")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!("--report-junit={}", dir.join("junit.xml").display()))
        .arg(format!("--report-json={}", dir.join("report.json").display()))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promlite gate")
}

/// Waits for the gate, killing it (and failing) if it runs past 30 s.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("gate did not stop; stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn rising_5xx_ratio_fails_the_gate_with_the_right_alert() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let am = rt.block_on(common::alertmanager::Alertmanager::start());
    let target = start_service(Some(Duration::from_secs(2)));
    let cfg = write_config_am(tmp.path(), &target, Some(am.port()));
    let out = finish(gate(tmp.path(), &cfg, &["--duration=8s".to_string()]));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("2 alerting rules, 2 fired, 1 matching --fail-on severity=~\"critical|page\": FAILED"),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL   HighErrorRatio (") && stdout.contains("fired  SomeErrors ("), "{stdout}");

    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuites tests=\"2\" failures=\"1\" errors=\"0\">"), "{junit}");
    let high =
        junit.split("<testcase ").find(|c| c.starts_with("name=\"HighErrorRatio\"")).expect("HighErrorRatio case");
    assert!(high.contains("<failure message=\"alert HighErrorRatio fired (first at "), "{junit}");
    assert!(high.contains("{severity=&quot;critical&quot;}: pending at "), "{junit}");
    let warn = junit.split("<testcase ").find(|c| c.starts_with("name=\"SomeErrors\"")).expect("SomeErrors case");
    let warn = warn.lines().next().unwrap_or("");
    assert!(warn.ends_with("/>"), "a warning does not fail the gate: {junit}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["result"], "failed");
    let rule = &report["rules"][0];
    assert_eq!((rule["rule"].as_str(), rule["fails_gate"].as_bool()), (Some("HighErrorRatio"), Some(true)));
    // 50 of 150 requests/s fail once the service degrades.
    let peak = rule["peak"].as_f64().unwrap();
    assert!((0.2..=0.34).contains(&peak), "peak {peak}");
    assert!(rule["longest_firing_seconds"].as_f64().unwrap() >= 1.0, "{rule}");

    // The alerts also went to Alertmanager, as the server sends them.
    let alerts = rt.block_on(am.alerts());
    let names: Vec<&str> = alerts.iter().filter_map(|a| a["labels"]["alertname"].as_str()).collect();
    assert!(names.contains(&"HighErrorRatio") && names.contains(&"SomeErrors"), "{alerts:?}");
}

#[test]
fn calm_run_passes_and_stops_on_the_until_file() {
    let tmp = tempfile::tempdir().unwrap();
    let target = start_service(None);
    let cfg = write_config(tmp.path(), &target);
    let stop = tmp.path().join("done");
    let child = gate(tmp.path(), &cfg, &[format!("--until-file={}", stop.display())]);
    std::thread::sleep(Duration::from_secs(5));
    std::fs::write(&stop, "").unwrap();
    let out = finish(child);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("2 alerting rules, 0 fired, 0 matching"), "{stdout}");
    assert!(stdout.contains("ok     HighErrorRatio (") && stdout.contains("never fired, peak -"), "{stdout}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuites tests=\"2\" failures=\"0\" errors=\"0\">"), "{junit}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["result"], "passed");
}

#[test]
fn bad_config_or_flags_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.yml");
    std::fs::write(&cfg, "global:\n  scrape_intervall: 1s\n").unwrap();
    let out = finish(gate(tmp.path(), &cfg, &["--duration=1s".to_string()]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bad.yml"), "{}", text(&out.stderr));
    assert!(!tmp.path().join("junit.xml").exists(), "no report when the gate could not run");

    let good = write_config(tmp.path(), "127.0.0.1:1");
    let out = finish(gate(tmp.path(), &good, &["--duration=1s".to_string(), "--fail-on=severity=~\"(\"".to_string()]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("invalid --fail-on"), "{}", text(&out.stderr));
}

#[test]
fn sigterm_ends_the_run_with_a_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let target = start_service(None);
    let cfg = write_config(tmp.path(), &target);
    let child = gate(tmp.path(), &cfg, &[]);
    std::thread::sleep(Duration::from_secs(3));
    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(killed.success());
    let out = finish(child);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(": PASSED"), "{stdout}");
    assert!(tmp.path().join("junit.xml").exists());
}

#[test]
fn without_a_data_dir_the_gate_uses_a_fresh_one_and_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let target = start_service(None);
    let cfg = write_config(tmp.path(), &target);
    let child = Command::new(env!("CARGO_BIN_EXE_promlite"))
        .current_dir(tmp.path())
        .args(["gate", "--web.listen-address=127.0.0.1:0", "--duration=2s"])
        .arg(format!("--config.file={}", cfg.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promlite gate");
    let out = finish(child);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let used = stderr
        .lines()
        .find_map(|l| l.strip_prefix("promlite gate: data in "))
        .unwrap_or_else(|| panic!("no data directory line in:\n{stderr}"));
    assert!(used.contains("promlite-gate-"), "{used}");
    assert!(!Path::new(used).exists(), "{used} was left behind");
    assert!(!tmp.path().join("data").exists(), "the gate wrote ./data");
}
