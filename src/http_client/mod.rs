//! Every reqwest client promlite uses (scrape pools, the Alertmanager
//! notifier, the load generator, tests) is built here, so TLS is set up in
//! one place.
//!
//! With the `tls` cargo feature (on by default) clients speak `https` through
//! rustls with the ring provider: the system's CA roots by default, or what a
//! `tls_config` says ([`TlsOptions`]): its own CA, a client certificate,
//! `server_name`, `insecure_skip_verify`, `min_version`/`max_version`.
//! rustls 0.23 panics when a client is built with no crypto provider
//! installed, so [`builder`] installs ring first; never call
//! `reqwest::Client::new()` or `reqwest::get()` directly.
//!
//! Without the feature, [`builder`] refuses any [`TlsOptions`] and the config
//! loader refuses `https` and `tls_config` with an error saying why.
//!
//! Certificate and key files are read when the config is loaded (so errors
//! show there) and again before each request by [`ReloadingClient`], which
//! rebuilds its client when they changed, as Prometheus does.
//!
//! Limits: `server_name` changes the name the server's
//! certificate is verified against but not the SNI sent (rustls sends the
//! URL's host, and no SNI for an IP address); TLS 1.0 and 1.1 are never
//! negotiated.

mod options;
mod reloading;
#[cfg(feature = "tls")]
mod rustls_config;
#[cfg(feature = "tls")]
mod verify;

pub use options::{Pem, TlsOptions, TlsVersion};
pub use reloading::{Configure, ReloadingClient};

/// The `User-Agent` of every request promlite makes.
pub const USER_AGENT: &str = concat!("promlite/", env!("CARGO_PKG_VERSION"));

/// Why a client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// TLS settings were given to a build without TLS support.
    #[error("TLS is not supported by this promlite build (built without the `tls` cargo feature)")]
    NoTls,
    /// The TLS settings are unusable (a bad certificate, key or version).
    #[error("{0}")]
    Tls(String),
    /// reqwest refused the builder.
    #[error("building the HTTP client: {0}")]
    Build(String),
}

/// Whether this build can speak `https`.
pub const fn tls_supported() -> bool {
    cfg!(feature = "tls")
}

/// Checks that `tls` can be turned into a working client config (certificates
/// and keys parse, the key matches the certificate, versions are possible),
/// so the config loader can report it with the field at fault.
pub fn check_tls(tls: &TlsOptions) -> Result<(), ClientError> {
    #[cfg(feature = "tls")]
    {
        rustls_config::client_config(tls).map(|_| ()).map_err(ClientError::Tls)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        Err(ClientError::NoTls)
    }
}

/// A client builder with promlite's user agent and, when `tls` is given,
/// those TLS settings (otherwise the system's CA roots for `https`).
/// Safe to call from anywhere: it installs the rustls crypto provider first.
pub fn builder(tls: Option<&TlsOptions>) -> Result<reqwest::ClientBuilder, ClientError> {
    let b = reqwest::Client::builder().user_agent(USER_AGENT);
    #[cfg(feature = "tls")]
    {
        rustls_config::install_default_provider();
        match tls {
            Some(t) => Ok(b.tls_backend_preconfigured(rustls_config::client_config(t).map_err(ClientError::Tls)?)),
            None => Ok(b),
        }
    }
    #[cfg(not(feature = "tls"))]
    match tls {
        Some(_) => Err(ClientError::NoTls),
        None => Ok(b),
    }
}

/// A client with default settings (no `tls_config`).
pub fn client() -> Result<reqwest::Client, ClientError> {
    builder(None)?.build().map_err(|e| ClientError::Build(error_chain(&e)))
}

/// `e` with its causes, so "connection refused" or "UnknownIssuer" shows.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
