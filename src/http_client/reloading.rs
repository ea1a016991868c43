//! A client whose TLS certificate and key files are re-read before each
//! request and which is rebuilt when they changed, as Prometheus's TLS round
//! tripper does: a rotated certificate (cert-manager, a renewed CA) is used
//! without a config reload.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{builder, ClientError, TlsOptions};

/// Settings applied to every (re)built client besides TLS: timeouts,
/// redirects, proxy, compression.
pub type Configure = dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync;

struct Built {
    client: reqwest::Client,
    tls: Option<TlsOptions>,
}

struct Inner {
    configure: Box<Configure>,
    current: Mutex<Arc<Built>>,
}

/// A reqwest client kept in step with its `tls_config` files. Cheap to clone.
#[derive(Clone)]
pub struct ReloadingClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for ReloadingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingClient").field("tls", &self.inner.current.lock().tls).finish()
    }
}

fn build(tls: Option<&TlsOptions>, configure: &Configure) -> Result<reqwest::Client, ClientError> {
    configure(builder(tls)?).build().map_err(|e| ClientError::Build(super::error_chain(&e)))
}

impl ReloadingClient {
    /// Builds the first client from `tls` (as loaded with the config) and `configure`.
    pub fn new(
        tls: Option<TlsOptions>,
        configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Result<Self, ClientError> {
        let client = build(tls.as_ref(), &configure)?;
        let built = Arc::new(Built { client, tls });
        Ok(ReloadingClient { inner: Arc::new(Inner { configure: Box::new(configure), current: Mutex::new(built) }) })
    }

    /// The client to send the next request with: the certificate and key
    /// files are read again, and the client is rebuilt if they changed. An
    /// unreadable or unusable file fails this request (and the old client is
    /// kept for the next try), as in Prometheus.
    pub fn current(&self) -> Result<reqwest::Client, ClientError> {
        let built = self.inner.current.lock().clone();
        let Some(tls) = built.tls.as_ref().filter(|t| t.has_files()) else { return Ok(built.client.clone()) };
        let fresh = tls.reread().map_err(ClientError::Tls)?;
        if &fresh == tls {
            return Ok(built.client.clone());
        }
        let client = build(Some(&fresh), self.inner.configure.as_ref())?;
        tracing::info!("TLS certificate files changed; HTTP client rebuilt with them");
        *self.inner.current.lock() = Arc::new(Built { client: client.clone(), tls: Some(fresh) });
        Ok(client)
    }
}
