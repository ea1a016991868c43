//! Builds a rustls `ClientConfig` from resolved [`TlsOptions`], with errors
//! that name the `tls_config` field (and file) at fault.

use std::sync::{Arc, Once};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

use super::options::{Pem, TlsOptions, TlsVersion};
use super::verify::{NamedVerifier, SkipVerify};

/// The crypto provider every client uses: ring.
///
/// rustls 0.23.48 deprecated ring's provider because it lacks post-quantum
/// key exchange; the alternative, aws-lc-rs, needs cmake and a larger C build
/// (see DEPENDENCIES.md), so ring stays until that changes.
#[allow(deprecated)]
pub(super) fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Installs ring as the process-wide rustls provider, once. reqwest builds
/// its own rustls config for clients without a `tls_config` and panics when
/// no provider is installed.
pub(super) fn install_default_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means another provider was installed first; that one serves too.
        let _ = provider().install_default();
    });
}

fn certs(pem: &Pem) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(&pem.bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not valid PEM: {e}", pem.origin))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM CERTIFICATE block found", pem.origin));
    }
    Ok(certs)
}

fn versions(o: &TlsOptions) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let min = o.min_version.unwrap_or(TlsVersion::Tls12);
    let max = o.max_version.unwrap_or(TlsVersion::Tls13);
    if max < TlsVersion::Tls12 {
        return Err(format!(
            "tls_config.max_version {}: promlite speaks TLS 1.2 and 1.3 only (rustls has no TLS 1.0/1.1)",
            max.name()
        ));
    }
    let mut out = Vec::new();
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        out.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

fn verifier(o: &TlsOptions, provider: &Arc<CryptoProvider>) -> Result<Arc<dyn ServerCertVerifier>, String> {
    if o.insecure_skip_verify {
        return Ok(Arc::new(SkipVerify { provider: provider.clone() }));
    }
    let base: Arc<dyn ServerCertVerifier> = match &o.ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c).map_err(|e| format!("{}: unusable CA certificate: {e}", ca.origin))?;
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("{}: {e}", ca.origin))?
        }
        None => Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| format!("loading the system's CA certificates: {e}"))?,
        ),
    };
    Ok(match &o.server_name {
        Some(n) if !n.is_empty() => {
            let name = ServerName::try_from(n.clone())
                .map_err(|e| format!("tls_config.server_name {n:?} is not a valid DNS name or IP address: {e}"))?;
            Arc::new(NamedVerifier { inner: base, name })
        }
        _ => base,
    })
}

/// The rustls client config for `o`, or what is wrong with it.
pub(super) fn client_config(o: &TlsOptions) -> Result<ClientConfig, String> {
    let provider = Arc::new(provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(o)?)
        .map_err(|e| format!("tls_config min_version/max_version: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier(o, &provider)?);
    let mut cfg = match (&o.cert, &o.key) {
        (Some(cert), Some(key)) => {
            let chain = certs(cert)?;
            let key_der = PrivateKeyDer::from_pem_slice(&key.bytes)
                .map_err(|e| format!("{}: no usable PEM private key: {e}", key.origin))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("unable to use client certificate {} with key {}: {e}", cert.origin, key.origin))?
        }
        (Some(_), None) => {
            return Err(
                "exactly one of key or key_file must be configured when a client certificate is configured".into()
            )
        }
        (None, Some(_)) => {
            return Err("exactly one of cert or cert_file must be configured when a client key is configured".into())
        }
        (None, None) => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}
