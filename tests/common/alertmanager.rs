//! A real Alertmanager (Debian's `prometheus-alertmanager`, installed by
//! scripts/test.sh) on a free loopback port with its own temporary storage,
//! optionally serving HTTPS (`--web.config.file`), killed by PID on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "prometheus-alertmanager";

fn binary() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = PathBuf::from(dir).join(BINARY);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{BINARY} is not installed: these tests need a real Alertmanager. \
         Install it with `apt-get install -y prometheus-alertmanager` (scripts/test.sh does this)."
    );
}

/// A running Alertmanager.
pub struct Alertmanager {
    child: Option<Child>,
    port: u16,
    scheme: &'static str,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Plain HTTP on a free port.
    pub async fn start() -> Alertmanager {
        Alertmanager::start_on(super::free_port()).await
    }

    /// Plain HTTP on `port`, with fresh storage.
    pub async fn start_on(port: u16) -> Alertmanager {
        Alertmanager::spawn(port, None, super::http()).await
    }

    /// HTTPS on a free port: `web_config` is the `--web.config.file` text
    /// (`tls_server_config: …`); `client` must trust its certificate (and
    /// present a client certificate if the config asks for one).
    pub async fn start_tls(web_config: &str, client: reqwest::Client) -> Alertmanager {
        Alertmanager::spawn(super::free_port(), Some(web_config), client).await
    }

    async fn spawn(port: u16, web_config: Option<&str>, client: reqwest::Client) -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("alertmanager.yml");
        std::fs::write(&cfg, "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n").expect("write config");
        let log = std::fs::File::create(dir.path().join("am.log")).expect("log file");
        let log2 = log.try_clone().expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=");
        if let Some(web) = web_config {
            let p = dir.path().join("web.yml");
            std::fs::write(&p, web).expect("write web config");
            cmd.arg(format!("--web.config.file={}", p.display()));
        }
        let child = cmd.stdin(Stdio::null()).stdout(log).stderr(log2).spawn().expect("start alertmanager");
        let scheme = if web_config.is_some() { "https" } else { "http" };
        let am = Alertmanager { child: Some(child), port, scheme, client, dir };
        am.wait_ready().await;
        am
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("{}/-/ready", self.url());
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.client.get(&url).send().await {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = promlite::http_client::error_chain(&e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("alertmanager on port {} did not become ready ({last}); log:\n{}", self.port, self.log());
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("am.log")).unwrap_or_default()
    }

    /// Its temporary directory (config, storage, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills it (by PID) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `alertmanager_alerts_received_total{status=...}` summed over API versions.
    pub async fn received(&self, status: &str) -> f64 {
        let text = match self.client.get(format!("{}/metrics", self.url())).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => panic!("alertmanager metrics: {}", promlite::http_client::error_chain(&e)),
        };
        let wanted = format!("status=\"{status}\"");
        text.lines()
            .filter(|l| l.starts_with("alertmanager_alerts_received_total{") && l.contains(&wanted))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// `127.0.0.1:<port>`, as in `static_configs.targets`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `<scheme>://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.host())
    }

    /// Active alerts from `GET /api/v2/alerts` (empty while unreachable).
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        match self.client.get(format!("{}/api/v2/alerts", self.url())).send().await {
            Ok(r) => r.json::<Vec<serde_json::Value>>().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Polls until `pred` holds for the active alerts, or panics after `secs`.
    pub async fn wait_for(
        &self,
        secs: u64,
        what: &str,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let a = self.alerts().await;
            if pred(&a) {
                return a;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; alertmanager has {a:#?}\nlog:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.stop();
    }
}
