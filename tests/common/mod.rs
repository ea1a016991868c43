//! Helpers shared by the integration tests: HTTP clients built the way
//! promlite builds its own (`promlite::http_client`, which installs the
//! rustls crypto provider that a bare `reqwest::Client::new()` would panic
//! without), a real Alertmanager, and test certificate authorities.
#![allow(dead_code)]

pub mod alertmanager;
#[cfg(feature = "tls")]
pub mod tls;

use std::net::TcpListener;

/// A default HTTP client (no `tls_config`).
pub fn http() -> reqwest::Client {
    promlite::http_client::client().expect("build the HTTP client")
}

/// `GET url` with [`http`]: the stand-in for `reqwest::get`.
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}
