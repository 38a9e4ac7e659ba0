//! HTTP/1.1 over gatewayd's Unix socket, typed with `shared::admin`'s types.

use std::path::PathBuf;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::admin::ErrorBody;

#[derive(Debug)]
pub enum ClientError {
    /// The daemon could not be reached (exit 3).
    Unreachable { socket: PathBuf, reason: String },
    /// The daemon refused the operation (exit 1).
    Refused { body: ErrorBody },
    /// Anything else that went wrong talking to it (exit 1).
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable { socket, reason } => write!(
                f,
                "cannot reach gatewayd at {}: {reason}\n\
                 Is gatewayd running? Point gbctl at its socket with --socket PATH or GBCTL_SOCKET=PATH.",
                socket.display()
            ),
            ClientError::Refused { body, .. } => {
                write!(f, "{}", body.error)?;
                for c in &body.candidates {
                    write!(f, "\n  #{} {}", c.id, c.key)?;
                }
                Ok(())
            }
            ClientError::Protocol(m) => write!(f, "talking to gatewayd failed: {m}"),
        }
    }
}

pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: PathBuf) -> Self {
        Client { socket }
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable { socket: self.socket.clone(), reason };
        let stream = tokio::net::UnixStream::connect(&self.socket).await.map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::new(Full::new(Bytes::from(body.unwrap_or_default())));
        *req.method_mut() = method;
        *req.uri_mut() = path.parse().map_err(|e| ClientError::Protocol(format!("bad path {path}: {e}")))?;
        // A Unix-socket client must name a host itself.
        req.headers_mut().insert(http::header::HOST, http::HeaderValue::from_static("gatewayd"));
        req.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        sender.send_request(req).await.map_err(|e| unreachable(e.to_string()))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let res = self.send(method, path, body).await?;
        let status = res.status();
        let bytes = res.into_body().collect().await.map_err(|e| ClientError::Protocol(e.to_string()))?.to_bytes();
        if !status.is_success() {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
                error: format!("gatewayd answered {status}: {}", String::from_utf8_lossy(&bytes)),
                candidates: Vec::new(),
            });
            return Err(ClientError::Refused { body });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(format!("unexpected answer: {e}")))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(serde_json::to_vec(body).expect("serializable"))).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.call(Method::PUT, path, Some(serde_json::to_vec(body).expect("serializable"))).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::DELETE, path, None).await
    }

    /// An endless response (NDJSON), for `logs -f`.
    pub async fn stream(&self, path: &str) -> Result<Incoming, ClientError> {
        let res = self.send(Method::GET, path, None).await?;
        let status = res.status();
        if !status.is_success() {
            let bytes = res.into_body().collect().await.map_err(|e| ClientError::Protocol(e.to_string()))?.to_bytes();
            let body = serde_json::from_slice::<ErrorBody>(&bytes)
                .unwrap_or_else(|_| ErrorBody { error: format!("gatewayd answered {status}"), candidates: Vec::new() });
            return Err(ClientError::Refused { body });
        }
        Ok(res.into_body())
    }
}

/// Percent-encodes a query value: everything but RFC 3986's unreserved characters.
pub fn encode(value: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(value, SET).to_string()
}
