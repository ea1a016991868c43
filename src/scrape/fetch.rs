//! The HTTP side of a scrape: one GET with Prometheus's headers, a timeout,
//! auth, gzip and a body size limit.

use std::time::Duration as StdDuration;

use bytes::{Bytes, BytesMut};

use super::protocol::{self, Format};
use crate::config::{ClientAuth, ScrapeConfig};
use crate::http_client::ReloadingClient;

/// Why fetching a target failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Connection, TLS, timeout or protocol errors.
    #[error("{0}")]
    Http(String),
    /// A status other than 200.
    #[error("server returned HTTP status {0}")]
    Status(String),
    /// The body exceeded `body_size_limit`.
    #[error("body size limit exceeded: more than {0} bytes")]
    BodyTooLarge(u64),
    /// A Content-Type no parser handles and no fallback protocol configured.
    #[error("received unsupported Content-Type {0:?} and no fallback_scrape_protocol specified for target")]
    UnsupportedContentType(String),
    /// The client could not be built from the config.
    #[error("client configuration: {0}")]
    Client(String),
}

/// A scrape pool's HTTP client and request settings.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: ReloadingClient,
    accept: String,
    auth: ClientAuth,
    body_limit: u64,
    fallback: Option<Format>,
}

/// A fetched body and the parser it needs.
#[derive(Debug)]
pub struct Fetched {
    /// The (decompressed) body.
    pub body: Bytes,
    /// The exposition format.
    pub format: Format,
}

impl Fetcher {
    /// A fetcher for one scrape config.
    pub fn new(cfg: &ScrapeConfig) -> Result<Self, FetchError> {
        let proxy = match &cfg.proxy_url {
            Some(p) => Some(reqwest::Proxy::all(p).map_err(|e| FetchError::Client(format!("proxy_url {p:?}: {e}")))?),
            None => None,
        };
        let (follow_redirects, gzip) = (cfg.follow_redirects, cfg.enable_compression);
        let configure = move |b: reqwest::ClientBuilder| {
            let mut b = b.redirect(if follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            });
            if !gzip {
                b = b.no_gzip();
            }
            match &proxy {
                Some(p) => b.proxy(p.clone()),
                None => b.no_proxy(),
            }
        };
        let client = ReloadingClient::new(cfg.tls.clone(), configure).map_err(|e| FetchError::Client(e.to_string()))?;
        let protocols: Vec<String> = match &cfg.scrape_protocols {
            Some(p) => p.clone(),
            None => protocol::DEFAULT.iter().map(|s| s.to_string()).collect(),
        };
        Ok(Fetcher {
            client,
            accept: protocol::accept_header(&protocols),
            auth: cfg.auth.clone(),
            body_limit: cfg.body_size_limit.map_or(0, |b| b.0),
            fallback: cfg.fallback_scrape_protocol.as_deref().and_then(protocol::format_for_protocol),
        })
    }

    /// The `Accept` header sent.
    pub fn accept(&self) -> &str {
        &self.accept
    }

    /// GETs `url` within `timeout`.
    pub async fn fetch(&self, url: &str, timeout: StdDuration) -> Result<Fetched, FetchError> {
        let client = self.client.current().map_err(|e| FetchError::Client(e.to_string()))?;
        let mut req = client
            .get(url)
            .timeout(timeout)
            .header(reqwest::header::ACCEPT, &self.accept)
            .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", timeout.as_secs_f64()));
        req = match &self.auth {
            ClientAuth::None => req,
            ClientAuth::Basic { username, password } => req.basic_auth(username, Some(password.expose())),
            ClientAuth::Header { scheme, credentials } => {
                req.header(reqwest::header::AUTHORIZATION, format!("{scheme} {}", credentials.expose()))
            }
        };
        let mut resp = req.send().await.map_err(|e| FetchError::Http(error_chain(&e)))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(resp.status().to_string()));
        }
        let ct =
            resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        // Prometheus 3 fails a scrape with a blank or unknown Content-Type
        // unless `fallback_scrape_protocol` says which parser to use.
        let format = match protocol::format_for_content_type(&ct) {
            Some(f) if !ct.trim().is_empty() => f,
            _ => self.fallback.ok_or(FetchError::UnsupportedContentType(ct))?,
        };
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| FetchError::Http(error_chain(&e)))? {
            if self.body_limit > 0 && (body.len() + chunk.len()) as u64 > self.body_limit {
                return Err(FetchError::BodyTooLarge(self.body_limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body: body.freeze(), format })
    }
}

/// An error with its causes, so "connection refused" is visible in `lastError`.
fn error_chain(e: &dyn std::error::Error) -> String {
    crate::http_client::error_chain(e)
}
