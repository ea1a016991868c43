//! Alerts to a real Alertmanager over HTTPS (issue 5, "TLS with custom CA"):
//! Debian's `prometheus-alertmanager` started with `--web.config.file`
//! holding a `tls_server_config` whose certificate comes from a test CA
//! (rcgen), and promlite's notifier configured from an `alerting:` section
//! with `scheme: https` and `tls_config`, exactly as the server wires it.
#![cfg(feature = "tls")]

use std::path::Path;
use std::time::{Duration, Instant};

use promlite::config::Config;
use promlite::http_client::{Pem, TlsOptions};
use promlite::labels;
use promlite::notify::{Alert, Notifier, NotifierOptions};

mod common;

use common::alertmanager::Alertmanager;
use common::tls::TestCa;

/// Certificates for one test, written under a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: TestCa,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("promlite test CA");
        ca.write(dir.path(), "ca.pem");
        ca.server(&["127.0.0.1"]).write(dir.path(), "am");
        ca.client("promlite").write(dir.path(), "client");
        Pki { dir, ca }
    }

    fn path(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }

    /// Alertmanager's `--web.config.file`, optionally requiring a client certificate from the CA.
    fn web_config(&self, require_client_cert: bool) -> String {
        let mut s =
            format!("tls_server_config:\n  cert_file: {}\n  key_file: {}\n", self.path("am.crt"), self.path("am.key"));
        if require_client_cert {
            s.push_str(&format!(
                "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
                self.path("ca.pem")
            ));
        }
        s
    }

    /// The test's own client to read Alertmanager's API: trusts the CA, presents the client certificate.
    fn reader(&self) -> reqwest::Client {
        let pem = |f: &str| Pem {
            origin: f.to_string(),
            path: None,
            bytes: std::fs::read(self.dir.path().join(f)).expect("read"),
        };
        let tls = TlsOptions {
            ca: Some(Pem { origin: "ca".into(), path: None, bytes: self.ca.cert_pem.clone().into_bytes() }),
            cert: Some(pem("client.crt")),
            key: Some(pem("client.key")),
            ..TlsOptions::default()
        };
        promlite::http_client::builder(Some(&tls)).expect("builder").build().expect("client")
    }
}

/// The notifier the server would build from `alerting_yaml`, with fast retries.
fn notifier(dir: &Path, alerting_yaml: &str) -> Notifier {
    let cfg = Config::parse(alerting_yaml, "promlite.yml", dir).unwrap_or_else(|e| panic!("{alerting_yaml}\n{e:?}"));
    let opts = NotifierOptions {
        retry_initial_backoff: Duration::from_millis(100),
        retry_max_backoff: Duration::from_millis(200),
        max_retry_duration: Duration::from_secs(2),
        ..promlite::app::adapters::notifier_options(&cfg, 100, Duration::from_secs(60))
    };
    Notifier::new(opts, promlite::app::adapters::alertmanagers(&cfg)).expect("notifier")
}

fn alert(name: &str) -> Alert {
    let now = chrono::Utc::now().timestamp_millis();
    Alert {
        labels: labels!("alertname" => name, "severity" => "page"),
        annotations: labels!("summary" => format!("{name} over TLS")),
        starts_at_ms: Some(now - 60_000),
        ends_at_ms: Some(now + 300_000),
        generator_url: "http://promlite:9090/graph".to_string(),
    }
}

fn metric(n: &Notifier, name: &str) -> f64 {
    n.metrics().iter().filter(|m| m.name == name).map(|m| m.value).sum()
}

fn names(alerts: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> =
        alerts.iter().filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string)).collect();
    v.sort();
    v
}

fn alerting(host: &str, tls: &str) -> String {
    format!(
        "global:\n  external_labels:\n    site: edge-1\nalerting:\n  alertmanagers:\n    - scheme: https\n      timeout: 2s\n      static_configs:\n        - targets: ['{host}']\n{tls}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_reaches_alertmanager_over_tls_with_custom_ca() {
    let pki = Pki::new();
    let am = Alertmanager::start_tls(&pki.web_config(false), pki.reader()).await;
    assert!(am.url().starts_with("https://"));

    // Trusting the test CA (ca_file relative to the config's directory): delivered.
    let n = notifier(pki.dir.path(), &alerting(&am.host(), "      tls_config:\n        ca_file: ca.pem\n"));
    n.send(vec![alert("OverTls")]);
    let got = am.wait_for(15, "the alert over TLS", |a| names(a) == ["OverTls"]).await;
    assert_eq!(got[0]["labels"]["site"], "edge-1", "external labels applied");
    assert_eq!(got[0]["annotations"]["summary"], "OverTls over TLS");
    assert_eq!(metric(&n, "prometheus_notifications_sent"), 1.0);
    n.shutdown(Duration::from_secs(2)).await;

    // Without the CA (system roots only), the certificate is refused: nothing
    // arrives, the failures are counted and the batch is finally dropped.
    let n = notifier(pki.dir.path(), &alerting(&am.host(), ""));
    n.send(vec![alert("Untrusted")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&n, "prometheus_notifications_dropped") < 1.0 {
        assert!(Instant::now() < deadline, "the untrusted send never gave up: {:?}", n.metrics());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metric(&n, "prometheus_notifications_errors") >= 1.0);
    assert_eq!(metric(&n, "prometheus_notifications_sent"), 0.0);
    assert_eq!(names(&am.alerts().await), ["OverTls"], "the untrusted alert must not arrive");
    n.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_requiring_a_client_certificate() {
    let pki = Pki::new();
    let am = Alertmanager::start_tls(&pki.web_config(true), pki.reader()).await;

    let with_cert = notifier(
        pki.dir.path(),
        &alerting(
            &am.host(),
            "      tls_config:\n        ca_file: ca.pem\n        cert_file: client.crt\n        key_file: client.key\n        server_name: 127.0.0.1\n        min_version: TLS12\n",
        ),
    );
    with_cert.send(vec![alert("WithClientCert")]);
    am.wait_for(15, "the alert sent with a client certificate", |a| names(a) == ["WithClientCert"]).await;
    assert_eq!(metric(&with_cert, "prometheus_notifications_sent"), 1.0);
    with_cert.shutdown(Duration::from_secs(2)).await;

    let without = notifier(pki.dir.path(), &alerting(&am.host(), "      tls_config:\n        ca_file: ca.pem\n"));
    without.send(vec![alert("WithoutClientCert")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&without, "prometheus_notifications_dropped") < 1.0 {
        assert!(Instant::now() < deadline, "the send without a client certificate never gave up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&without, "prometheus_notifications_sent"), 0.0);
    assert_eq!(names(&am.alerts().await), ["WithClientCert"]);
    without.shutdown(Duration::from_secs(1)).await;
}
