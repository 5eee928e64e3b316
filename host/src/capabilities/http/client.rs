//! One HTTP/1.1 exchange over a socket the host opened to an address it
//! checked: TLS with rustls and the webpki roots for `https`, the response
//! body read up to a cap and no further.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::HttpError;

/// Response headers kept at most; hyper refuses more than 100 anyway.
const MAX_RESPONSE_HEADERS: usize = 100;

/// The TLS settings every outbound `https` request uses.
#[derive(Clone)]
pub struct Tls(tokio_rustls::TlsConnector);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(rustls, webpki roots)")
    }
}

impl Tls {
    /// rustls (ring) trusting the webpki roots, HTTP/1.1 only.
    pub fn webpki() -> Result<Tls, rustls::Error> {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls(tokio_rustls::TlsConnector::from(Arc::new(config))))
    }

    /// Speaks TLS over `tcp` to the server named `name`.
    pub async fn connect(
        &self,
        name: &str,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HttpError> {
        let transport = |what: &str, e: &dyn std::fmt::Display| HttpError::Transport(format!("{what}: {e}"));
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|e| transport("tls name", &e))?;
        self.0.connect(name, tcp).await.map_err(|e| transport("tls", &e))
    }
}

/// A response read whole, within the cap.
#[derive(Debug)]
pub struct Received {
    /// Status.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Connects to `address` (already checked), speaks TLS for `tls_name` if
/// given, sends `request` and reads the response up to `max_body` bytes.
pub async fn exchange(
    address: SocketAddr,
    tls: Option<(&Tls, &str)>,
    request: hyper::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<Received, HttpError> {
    let transport = |what: &str, e: &dyn std::fmt::Display| HttpError::Transport(format!("{what}: {e}"));
    let tcp = TcpStream::connect(address).await.map_err(|e| transport("connect", &e))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => send(tcp, request, max_body).await,
        Some((tls, name)) => send(tls.connect(name, tcp).await?, request, max_body).await,
    }
}

async fn send<S>(io: S, request: hyper::Request<Full<Bytes>>, max_body: usize) -> Result<Received, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let transport = |e: hyper::Error| HttpError::Transport(crate::contract::cut(&e.to_string(), 200).to_owned());
    let (mut sender, connection) = http1::handshake(TokioIo::new(io)).await.map_err(transport)?;
    // The connection is driven beside the request and dropped with it.
    let driver = AbortOnDrop(tokio::spawn(connection));
    let response = sender.send_request(request).await.map_err(transport)?;
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(transport)?;
        if let Some(data) = frame.data_ref() {
            if bytes.len().saturating_add(data.len()) > max_body {
                return Err(HttpError::TooLarge);
            }
            bytes.extend_from_slice(data);
        }
    }
    drop(driver);
    let headers = parts
        .headers
        .iter()
        .take(MAX_RESPONSE_HEADERS)
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    Ok(Received { status: parts.status.as_u16(), headers, body: bytes })
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
