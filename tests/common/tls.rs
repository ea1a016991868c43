//! Test certificate authorities and the certificates they issue (rcgen),
//! written as PEM files for configs that name files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// A self-signed CA that can issue server and client certificates.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// An issued certificate and its key, PEM.
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("ca key");
        let cert = params.self_signed(&key).expect("self-sign ca");
        TestCa { cert_pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Issued {
        let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Issued {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate with common name `cn`.
    pub fn client(&self, cn: &str) -> Issued {
        self.issue(&[cn], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// Writes the CA certificate to `dir/<file>` and returns the path.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        write(dir, file, &self.cert_pem)
    }
}

impl Issued {
    /// Writes `<stem>.crt` and `<stem>.key` into `dir`; returns (cert, key) paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        (write(dir, &format!("{stem}.crt"), &self.cert_pem), write(dir, &format!("{stem}.key"), &self.key_pem))
    }
}

/// Writes `text` to `dir/file`.
pub fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, text).expect("write PEM");
    p
}
