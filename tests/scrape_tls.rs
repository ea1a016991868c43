//! Scraping `scheme: https` targets with `tls_config` (issue 3): a real HTTPS
//! server (tokio-rustls + hyper) on 127.0.0.1 with certificates from a test CA
//! made by rcgen, scraped by the scrape manager into `MemStorage`. Also the
//! errors `tls_config` gives when the config is loaded.
#![cfg(feature = "tls")]

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use promlite::config::Config;
use promlite::model::{is_stale_nan, Matcher};
use promlite::scrape::{api, Manager, ManagerOptions};
use promlite::storage::memory::MemStorage;
use promlite::storage::Queryable;
use serde_json::Value;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

mod common;

use common::tls::TestCa;

const BODY: &str = "# TYPE tls_test_value gauge\ntls_test_value 42\n";

#[allow(deprecated)] // ring's provider: see src/http_client/rustls_config.rs
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().expect("certs")
}

/// How the test server is set up.
struct ServerTls<'a> {
    cert: &'a common::tls::Issued,
    /// Require a client certificate issued by this CA.
    client_ca: Option<&'a TestCa>,
    /// Speak only TLS 1.2.
    tls12_only: bool,
}

/// Serves [`BODY`] over HTTPS on a loopback port; returns `127.0.0.1:<port>`.
async fn serve_https(s: ServerTls<'_>) -> String {
    use rustls::pki_types::pem::PemObject;
    let versions: &[&'static rustls::SupportedProtocolVersion] =
        if s.tls12_only { &[&rustls::version::TLS12] } else { &[&rustls::version::TLS12, &rustls::version::TLS13] };
    let builder = ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions).expect("versions");
    let builder = match s.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in pem_certs(&ca.cert_pem) {
                roots.add(c).expect("client ca");
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build().expect("verifier");
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(s.cert.key_pem.as_bytes()).expect("key");
    let cfg = builder.with_single_cert(pem_certs(&s.cert.cert_pem), key).expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                            .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                            .expect("response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
            });
        }
    });
    addr
}

fn job(name: &str, addr: &str, tls: &str) -> String {
    format!(
        "  - job_name: {name}\n    scheme: https\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    static_configs:\n      - targets: ['{addr}']\n{tls}"
    )
}

fn config(dir: &Path, jobs: &[String]) -> Config {
    let yaml = format!("scrape_configs:\n{}", jobs.join(""));
    Config::parse(&yaml, "tls.yml", dir).unwrap_or_else(|e| panic!("{yaml}\n{e:?}"))
}

/// Scrapes `cfg` until every job's target has been scraped once; returns the
/// active targets by job name.
async fn scrape(cfg: &Config) -> (Arc<MemStorage>, Vec<(String, Value)>) {
    let store = Arc::new(MemStorage::new());
    let m = Manager::new(store.clone(), ManagerOptions { file_sd_poll: Duration::from_millis(50), offset_seed: 0 });
    m.apply_config(cfg).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let targets = loop {
        let data = api::targets_data(&m, Some("active"), None);
        let ts: Vec<(String, Value)> = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t["scrapePool"].as_str().unwrap_or_default().to_string(), t))
            .collect();
        if ts.len() == cfg.scrape_configs.len() && ts.iter().all(|(_, t)| t["health"] != "unknown") {
            break ts;
        }
        assert!(Instant::now() < deadline, "targets never scraped: {ts:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    m.stop().await;
    (store, targets)
}

fn target<'a>(ts: &'a [(String, Value)], job: &str) -> &'a Value {
    &ts.iter().find(|(j, _)| j == job).unwrap_or_else(|| panic!("no target for job {job}: {ts:#?}")).1
}

fn last_error(t: &Value) -> String {
    t["lastError"].as_str().unwrap_or_default().to_string()
}

/// The values of `tls_test_value` stored for `job` (stale markers left out).
fn values(store: &MemStorage, job: &str) -> Vec<f64> {
    let ms = [Matcher::equal("__name__", "tls_test_value"), Matcher::equal("job", job)];
    let mut out = Vec::new();
    for mut s in store.select(i64::MIN, i64::MAX, &ms).unwrap_or_default() {
        let mut v = Vec::new();
        s.samples.collect_into(&mut v);
        out.extend(v.into_iter().map(|x| x.v).filter(|v| !is_stale_nan(*v)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_target_scraped_with_ca_file_and_refused_with_the_wrong_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("promlite test CA");
    let other = TestCa::new("some other CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    other.write(dir.path(), "other.pem");
    let server = ca.server(&["127.0.0.1"]);
    let addr = serve_https(ServerTls { cert: &server, client_ca: None, tls12_only: false }).await;
    let cfg = config(
        dir.path(),
        &[
            // Relative ca_file: resolved against the config's directory.
            job("good", &addr, "    tls_config:\n      ca_file: ca.pem\n"),
            job("inline_ca", &addr, &format!("    tls_config:\n      ca: |\n{}", indent(&ca.cert_pem, 8))),
            job("wrong_ca", &addr, "    tls_config:\n      ca_file: other.pem\n"),
            // No tls_config: the system's roots, which do not know the test CA.
            job("system_roots", &addr, ""),
            job("insecure", &addr, "    tls_config:\n      ca_file: other.pem\n      insecure_skip_verify: true\n"),
        ],
    );
    assert!(ca_file.exists());
    let (store, ts) = scrape(&cfg).await;

    for ok in ["good", "inline_ca", "insecure"] {
        let t = target(&ts, ok);
        assert_eq!(t["health"], "up", "{ok}: {t:#}");
        assert_eq!(last_error(t), "", "{ok}");
        assert_eq!(t["scrapeUrl"], format!("https://{addr}/metrics"));
        assert!(values(&store, ok).iter().all(|v| *v == 42.0) && !values(&store, ok).is_empty(), "{ok}");
    }
    for bad in ["wrong_ca", "system_roots"] {
        let t = target(&ts, bad);
        assert_eq!(t["health"], "down", "{bad}: {t:#}");
        let e = last_error(t);
        assert!(e.contains("invalid peer certificate") && e.contains("UnknownIssuer"), "{bad}: {e}");
        assert!(values(&store, bad).is_empty(), "{bad} stored samples");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_required_by_the_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("promlite test CA");
    let stranger_ca = TestCa::new("stranger CA");
    ca.write(dir.path(), "ca.pem");
    ca.client("promlite").write(dir.path(), "client");
    stranger_ca.client("promlite").write(dir.path(), "stranger");
    let server = ca.server(&["127.0.0.1"]);
    let addr = serve_https(ServerTls { cert: &server, client_ca: Some(&ca), tls12_only: false }).await;
    let cfg = config(
        dir.path(),
        &[
            job(
                "with_cert",
                &addr,
                "    tls_config:\n      ca_file: ca.pem\n      cert_file: client.crt\n      key_file: client.key\n",
            ),
            job("without_cert", &addr, "    tls_config:\n      ca_file: ca.pem\n"),
            job(
                "untrusted_cert",
                &addr,
                "    tls_config:\n      ca_file: ca.pem\n      cert_file: stranger.crt\n      key_file: stranger.key\n",
            ),
        ],
    );
    let (store, ts) = scrape(&cfg).await;
    let t = target(&ts, "with_cert");
    assert_eq!(t["health"], "up", "{t:#}");
    assert_eq!(values(&store, "with_cert").first(), Some(&42.0));
    for bad in ["without_cert", "untrusted_cert"] {
        let t = target(&ts, bad);
        assert_eq!(t["health"], "down", "{bad}: {t:#}");
        let e = last_error(t);
        let alert = if bad == "without_cert" { "received fatal alert: CertificateRequired" } else { "UnknownCA" };
        assert!(e.contains(alert), "{bad}: the server's TLS alert should show: {e}");
        assert!(values(&store, bad).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_name_and_tls_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("promlite test CA");
    ca.write(dir.path(), "ca.pem");
    // Valid only for a DNS name, served on an IP address, speaking only TLS 1.2.
    let server = ca.server(&["metrics.internal"]);
    let addr = serve_https(ServerTls { cert: &server, client_ca: None, tls12_only: true }).await;
    let cfg = config(
        dir.path(),
        &[
            job("named", &addr, "    tls_config:\n      ca_file: ca.pem\n      server_name: metrics.internal\n"),
            job("unnamed", &addr, "    tls_config:\n      ca_file: ca.pem\n"),
            job(
                "tls12_max",
                &addr,
                "    tls_config:\n      ca_file: ca.pem\n      server_name: metrics.internal\n      min_version: TLS12\n      max_version: TLS12\n",
            ),
            job(
                "tls13_min",
                &addr,
                "    tls_config:\n      ca_file: ca.pem\n      server_name: metrics.internal\n      min_version: TLS13\n",
            ),
        ],
    );
    let (store, ts) = scrape(&cfg).await;
    for ok in ["named", "tls12_max"] {
        let t = target(&ts, ok);
        assert_eq!(t["health"], "up", "{ok}: {t:#}");
        assert_eq!(values(&store, ok).first(), Some(&42.0), "{ok}");
    }
    let e = last_error(target(&ts, "unnamed"));
    assert!(e.contains("not valid for name \"127.0.0.1\""), "certificate for another name: {e}");
    let e = last_error(target(&ts, "tls13_min"));
    assert!(e.contains("received fatal alert: ProtocolVersion"), "TLS 1.3 client vs TLS 1.2 server: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_ca_file_is_used_without_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("promlite test CA");
    let old = TestCa::new("retired CA");
    // The file starts out holding a CA that did not sign the server's certificate.
    old.write(dir.path(), "ca.pem");
    let server = ca.server(&["127.0.0.1"]);
    let addr = serve_https(ServerTls { cert: &server, client_ca: None, tls12_only: false }).await;
    let cfg = config(dir.path(), &[job("rotating", &addr, "    tls_config:\n      ca_file: ca.pem\n")]);
    let store = Arc::new(MemStorage::new());
    let m = Manager::new(store.clone(), ManagerOptions { file_sd_poll: Duration::from_millis(50), offset_seed: 0 });
    m.apply_config(&cfg).await;
    let health = |want: &str| {
        let data = api::targets_data(&m, Some("active"), None);
        let t = data["activeTargets"][0].clone();
        (t["health"] == want, t)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (down, t) = health("down");
        if down {
            assert!(last_error(&t).contains("UnknownIssuer"), "{t:#}");
            break;
        }
        assert!(Instant::now() < deadline, "never failed with the retired CA: {t:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(values(&store, "rotating").is_empty());

    // Rotated in place, as cert-manager does: the next scrapes use it.
    ca.write(dir.path(), "ca.pem");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (up, t) = health("up");
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "the rewritten CA file was not picked up: {t:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    m.stop().await;
    assert_eq!(values(&store, "rotating").first(), Some(&42.0));
}

fn indent(text: &str, n: usize) -> String {
    text.lines().map(|l| format!("{}{l}\n", " ".repeat(n))).collect()
}

fn load_errors(dir: &Path, tls: &str) -> String {
    let yaml = format!("scrape_configs:\n{}", job("j", "127.0.0.1:1", tls));
    match Config::parse(&yaml, "tls.yml", dir) {
        Ok(_) => panic!("config accepted:\n{yaml}"),
        Err(es) => es.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
    }
}

#[test]
fn bad_tls_config_is_refused_at_load_with_field_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("promlite test CA");
    ca.write(dir.path(), "ca.pem");
    ca.client("a").write(dir.path(), "a");
    ca.client("b").write(dir.path(), "b");
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").expect("write");
    let missing = dir.path().join("missing.pem");

    let e = load_errors(dir.path(), "    tls_config:\n      ca_file: missing.pem\n");
    assert!(e.contains("tls.yml") && e.contains("job \"j\""), "{e}");
    assert!(e.contains(&format!("tls_config.ca_file {}", missing.display())) && e.contains("No such file"), "{e}");

    let e = load_errors(dir.path(), "    tls_config:\n      ca_file: junk.pem\n");
    assert!(e.contains("tls_config.ca_file") && e.contains("junk.pem") && e.contains("no PEM CERTIFICATE"), "{e}");

    let e = load_errors(dir.path(), "    tls_config:\n      cert_file: a.crt\n");
    assert!(e.contains("exactly one of key or key_file must be configured"), "{e}");
    let e = load_errors(dir.path(), "    tls_config:\n      key_file: a.key\n");
    assert!(e.contains("exactly one of cert or cert_file must be configured"), "{e}");

    let e = load_errors(dir.path(), "    tls_config:\n      cert_file: a.crt\n      key_file: b.key\n");
    assert!(e.contains("unable to use client certificate") && e.contains("a.crt") && e.contains("b.key"), "{e}");

    let e = load_errors(dir.path(), "    tls_config:\n      ca_file: ca.pem\n      ca: x\n");
    assert!(e.contains("at most one of ca and ca_file must be configured"), "{e}");

    let e = load_errors(dir.path(), "    tls_config:\n      min_version: TLS14\n");
    assert!(e.contains("tls_config.min_version: unknown TLS version: TLS14"), "{e}");
    let e = load_errors(dir.path(), "    tls_config:\n      min_version: TLS13\n      max_version: TLS12\n");
    assert!(e.contains("max_version must be greater than or equal to tls_config.min_version"), "{e}");
    let e = load_errors(dir.path(), "    tls_config:\n      max_version: TLS11\n");
    assert!(e.contains("TLS 1.2 and 1.3 only"), "{e}");

    let e = load_errors(dir.path(), "    tls_config:\n      ca_file: ca.pem\n      server_name: 'not a name'\n");
    assert!(e.contains("tls_config.server_name"), "{e}");

    // Both files are checked: every error is listed.
    let e = load_errors(
        dir.path(),
        "    tls_config:\n      ca_file: missing.pem\n      cert_file: nope.crt\n      key_file: a.key\n",
    );
    assert!(e.contains("missing.pem") && e.contains("nope.crt"), "{e}");

    // TLS 1.0/1.1 minimums load, with a warning that TLS 1.2 is the floor.
    let yaml = format!("scrape_configs:\n{}", job("j", "127.0.0.1:1", "    tls_config:\n      min_version: TLS10\n"));
    let cfg = Config::parse(&yaml, "tls.yml", dir.path()).expect("TLS10 minimum loads");
    assert!(cfg.warnings().iter().any(|w| w.contains("TLS 1.2 is the effective minimum")), "{:?}", cfg.warnings());
}
