//! HTTP client settings shared by scrape configs and Alertmanager configs:
//! basic auth, the `Authorization` header, bearer tokens and TLS, with
//! secrets that may come from files (read when the config is loaded).

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::http_client::{Pem, TlsOptions, TlsVersion};

/// A secret string; never printed.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// `basic_auth` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the user name.
    #[serde(default)]
    pub username_file: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<String>,
}

/// `authorization` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationConfig {
    /// Scheme of the `Authorization` header (default `Bearer`).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Credentials.
    #[serde(default)]
    pub credentials: Option<Secret>,
    /// File holding the credentials.
    #[serde(default)]
    pub credentials_file: Option<String>,
}

/// `tls_config` as written; resolved into [`TlsOptions`] when the config is
/// loaded (see [`RawHttpClient::resolve_tls`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate (PEM text).
    #[serde(default)]
    pub ca: Option<String>,
    /// CA certificate file.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Client certificate (PEM text).
    #[serde(default)]
    pub cert: Option<String>,
    /// Client certificate file.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// Client key (PEM text).
    #[serde(default)]
    pub key: Option<Secret>,
    /// Client key file.
    #[serde(default)]
    pub key_file: Option<String>,
    /// Server name for SNI and verification.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Skip certificate verification.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Minimum TLS version (`TLS12`, `TLS13`).
    #[serde(default)]
    pub min_version: Option<String>,
    /// Maximum TLS version.
    #[serde(default)]
    pub max_version: Option<String>,
}

/// Resolved client authentication: secrets already read from their files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No authentication.
    #[default]
    None,
    /// HTTP basic auth.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: <scheme> <credentials>`.
    Header {
        /// Scheme, e.g. `Bearer`.
        scheme: String,
        /// Credentials.
        credentials: Secret,
    },
}

/// Raw HTTP client fields, as they appear inline in a scrape or Alertmanager config.
#[derive(Debug, Clone, Default)]
pub struct RawHttpClient<'a> {
    /// `basic_auth`.
    pub basic_auth: Option<&'a BasicAuthConfig>,
    /// `authorization`.
    pub authorization: Option<&'a AuthorizationConfig>,
    /// `bearer_token` (Prometheus 2 form).
    pub bearer_token: Option<&'a Secret>,
    /// `bearer_token_file` (Prometheus 2 form).
    pub bearer_token_file: Option<&'a str>,
    /// `tls_config`.
    pub tls_config: Option<&'a TlsConfig>,
}

fn read_secret(base: &Path, file: &str, what: &str) -> Result<String, String> {
    let p = base.join(file);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("unable to read {what} {}: {e}", p.display()))
}

impl RawHttpClient<'_> {
    /// Validates the combination of fields as Prometheus's `HTTPClientConfig.Validate`
    /// does and reads secret files relative to `base`.
    pub fn resolve(&self, base: &Path) -> Result<ClientAuth, Vec<String>> {
        let mut errs = Vec::new();
        let has_bearer = self.bearer_token.is_some_and(|s| !s.0.is_empty()) || self.bearer_token_file.is_some();
        if self.bearer_token.is_some_and(|s| !s.0.is_empty()) && self.bearer_token_file.is_some() {
            errs.push("at most one of bearer_token & bearer_token_file must be configured".to_string());
        }
        if self.basic_auth.is_some() && has_bearer {
            errs.push("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
        }
        if self.authorization.is_some() && has_bearer {
            errs.push("authorization is not compatible with bearer_token & bearer_token_file".into());
        }
        if self.authorization.is_some() && self.basic_auth.is_some() {
            errs.push("at most one of basic_auth, oauth2 & authorization must be configured".into());
        }
        let mut auth = ClientAuth::None;
        if let Some(b) = self.basic_auth {
            if b.username.is_some() && b.username_file.is_some() {
                errs.push("at most one of basic_auth username & username_file must be configured".into());
            }
            if b.password.is_some() && b.password_file.is_some() {
                errs.push("at most one of basic_auth password & password_file must be configured".into());
            }
            let username = match &b.username_file {
                Some(f) => read_secret(base, f, "basic_auth username_file").unwrap_or_else(|e| {
                    errs.push(e);
                    String::new()
                }),
                None => b.username.clone().unwrap_or_default(),
            };
            let password = match &b.password_file {
                Some(f) => read_secret(base, f, "basic_auth password_file").unwrap_or_else(|e| {
                    errs.push(e);
                    String::new()
                }),
                None => b.password.clone().map(|s| s.0).unwrap_or_default(),
            };
            auth = ClientAuth::Basic { username, password: Secret(password) };
        }
        if let Some(a) = self.authorization {
            let scheme = a.kind.clone().filter(|k| !k.is_empty()).unwrap_or_else(|| "Bearer".to_string());
            if scheme.eq_ignore_ascii_case("basic") {
                errs.push("authorization type cannot be set to \"basic\", use \"basic_auth\" instead".into());
            }
            if a.credentials.is_some() && a.credentials_file.is_some() {
                errs.push("at most one of authorization credentials & credentials_file must be configured".into());
            }
            let credentials = match &a.credentials_file {
                Some(f) => read_secret(base, f, "authorization credentials_file").unwrap_or_else(|e| {
                    errs.push(e);
                    String::new()
                }),
                None => a.credentials.clone().map(|s| s.0).unwrap_or_default(),
            };
            auth = ClientAuth::Header { scheme, credentials: Secret(credentials) };
        } else if has_bearer {
            let credentials = match self.bearer_token_file {
                Some(f) => read_secret(base, f, "bearer_token_file").unwrap_or_else(|e| {
                    errs.push(e);
                    String::new()
                }),
                None => self.bearer_token.map(|s| s.0.clone()).unwrap_or_default(),
            };
            auth = ClientAuth::Header { scheme: "Bearer".into(), credentials: Secret(credentials) };
        }
        if errs.is_empty() {
            Ok(auth)
        } else {
            Err(errs)
        }
    }
}

/// Reads `tls_config.<field>` from `inline` or the file `file` (relative to `base`).
fn tls_pem(base: &Path, field: &str, inline: Option<&str>, file: Option<&str>) -> Result<Option<Pem>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("at most one of {field} and {field}_file must be configured")),
        (Some(text), None) => {
            Ok(Some(Pem { origin: format!("tls_config.{field}"), path: None, bytes: text.as_bytes().to_vec() }))
        }
        (None, Some(f)) => {
            let p = base.join(f);
            let origin = format!("tls_config.{field}_file {}", p.display());
            match std::fs::read(&p) {
                Ok(bytes) => Ok(Some(Pem { origin, path: Some(p), bytes })),
                Err(e) => Err(format!("{origin}: {e}")),
            }
        }
        (None, None) => Ok(None),
    }
}

impl RawHttpClient<'_> {
    /// Resolves `tls_config` as Prometheus's `TLSConfig.Validate` checks it:
    /// reads the CA, certificate and key files relative to `base`, parses
    /// the versions, and (with the `tls` feature) checks that a client can be
    /// built from it. `https` alone needs no `tls_config` (system roots).
    /// Without the `tls` feature, any `tls_config` or `https` is an error.
    /// Returns the options (if a `tls_config` is given) and warnings.
    pub fn resolve_tls(&self, base: &Path, scheme: &str) -> Result<(Option<TlsOptions>, Vec<String>), Vec<String>> {
        let mut errs = Vec::new();
        let mut warnings = Vec::new();
        if !crate::http_client::tls_supported() {
            if scheme == "https" {
                errs.push(
                    "scheme https: this promlite build has no TLS support (built without the `tls` cargo feature)"
                        .to_string(),
                );
            }
            if self.tls_config.is_some() {
                errs.push(
                    "tls_config: this promlite build has no TLS support (built without the `tls` cargo feature)"
                        .to_string(),
                );
            }
            return if errs.is_empty() { Ok((None, warnings)) } else { Err(errs) };
        }
        let Some(t) = self.tls_config else { return Ok((None, warnings)) };
        let mut pem = |field: &str, inline: Option<&str>, file: Option<&str>| {
            tls_pem(base, field, inline, file).unwrap_or_else(|e| {
                errs.push(e);
                None
            })
        };
        let ca = pem("ca", t.ca.as_deref(), t.ca_file.as_deref());
        let cert = pem("cert", t.cert.as_deref(), t.cert_file.as_deref());
        let key = pem("key", t.key.as_ref().map(|k| k.expose()), t.key_file.as_deref());
        let mut version = |field: &str, v: &Option<String>| match v.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => TlsVersion::parse(s).map_err(|e| errs.push(format!("tls_config.{field}: {e}"))).ok(),
        };
        let min_version = version("min_version", &t.min_version);
        let max_version = version("max_version", &t.max_version);
        if let (Some(min), Some(max)) = (min_version, max_version) {
            if max < min {
                errs.push(
                    "tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified"
                        .into(),
                );
            }
        }
        if min_version.is_some_and(|v| v < TlsVersion::Tls12) {
            warnings.push(format!(
                "tls_config.min_version {}: promlite never negotiates TLS 1.0/1.1; TLS 1.2 is the effective minimum",
                min_version.map_or("", |v| v.name())
            ));
        }
        if t.insecure_skip_verify {
            warnings.push("tls_config.insecure_skip_verify: server certificates are not verified".into());
        }
        let opts = TlsOptions {
            ca,
            cert,
            key,
            server_name: t.server_name.clone().filter(|s| !s.is_empty()),
            insecure_skip_verify: t.insecure_skip_verify,
            min_version,
            max_version,
        };
        if errs.is_empty() {
            if let Err(e) = crate::http_client::check_tls(&opts) {
                errs.push(e.to_string());
            }
        }
        if errs.is_empty() {
            Ok((Some(opts), warnings))
        } else {
            Err(errs)
        }
    }
}
