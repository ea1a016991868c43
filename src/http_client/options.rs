//! Resolved TLS settings of one `tls_config`: certificate and key contents
//! already read from their files, versions parsed. Plain data, the same with
//! and without the `tls` feature, so the config can carry it either way.

use std::fmt;
use std::path::PathBuf;

/// A TLS protocol version as Prometheus names it in `min_version`/`max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLS10`: accepted in the config, but never negotiated (rustls has no TLS 1.0).
    Tls10,
    /// `TLS11`: accepted in the config, but never negotiated (rustls has no TLS 1.1).
    Tls11,
    /// `TLS12`.
    Tls12,
    /// `TLS13`.
    Tls13,
}

impl TlsVersion {
    /// Parses `TLS10` … `TLS13`; the error text is Prometheus's.
    pub fn parse(s: &str) -> Result<TlsVersion, String> {
        match s {
            "TLS10" => Ok(TlsVersion::Tls10),
            "TLS11" => Ok(TlsVersion::Tls11),
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            _ => Err(format!("unknown TLS version: {s}")),
        }
    }

    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS10",
            TlsVersion::Tls11 => "TLS11",
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

/// PEM text together with where it came from, for error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem {
    /// `tls_config.ca_file /path/ca.pem` or `tls_config.ca`.
    pub origin: String,
    /// The file it was read from (`None` when given inline); re-read before
    /// requests so a rotated certificate is used without a reload.
    pub path: Option<PathBuf>,
    /// The PEM bytes.
    pub bytes: Vec<u8>,
}

impl Pem {
    /// The same PEM with its file read again (inline PEM is returned as is).
    pub fn reread(&self) -> Result<Pem, String> {
        match &self.path {
            None => Ok(self.clone()),
            Some(p) => {
                std::fs::read(p).map(|bytes| Pem { bytes, ..self.clone() }).map_err(|e| format!("{}: {e}", self.origin))
            }
        }
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A content hash instead of the content: keys stay out of logs, and a
        // scrape pool whose certificate changed still compares unequal.
        write!(f, "{} (xxh3 {:016x})", self.origin, xxhash_rust::xxh3::xxh3_64(&self.bytes))
    }
}

/// A resolved `tls_config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificates to trust instead of the system's roots.
    pub ca: Option<Pem>,
    /// Client certificate chain presented to the server.
    pub cert: Option<Pem>,
    /// The client certificate's private key.
    pub key: Option<Pem>,
    /// Name the server certificate must be valid for, instead of the URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate.
    pub insecure_skip_verify: bool,
    /// Lowest version offered (Prometheus's default: TLS 1.2).
    pub min_version: Option<TlsVersion>,
    /// Highest version offered.
    pub max_version: Option<TlsVersion>,
}

impl TlsOptions {
    /// Whether any certificate or key comes from a file.
    pub fn has_files(&self) -> bool {
        [&self.ca, &self.cert, &self.key].into_iter().flatten().any(|p| p.path.is_some())
    }

    /// These options with every certificate and key file read again.
    pub fn reread(&self) -> Result<TlsOptions, String> {
        let re = |p: &Option<Pem>| p.as_ref().map(Pem::reread).transpose();
        Ok(TlsOptions { ca: re(&self.ca)?, cert: re(&self.cert)?, key: re(&self.key)?, ..self.clone() })
    }
}
