//! A small gateway client: credentials on every request, a per-request timeout, retries with
//! exponential backoff on connection errors (never on answers), and the error envelope decoded
//! into a readable message.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::credentials::Credentials;

/// First retry delay; doubles each attempt up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url} after {attempts} attempts: {source}")]
    Unreachable {
        url: String,
        attempts: u32,
        source: reqwest::Error,
    },
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{status} {code}: {message} (request_id {request_id})")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
        request_id: String,
    },
    #[error("unexpected answer from the gateway: {0}")]
    Protocol(String),
}

pub struct Client {
    base: String,
    http: reqwest::Client,
    credentials: Credentials,
    retries: u32,
}

impl Client {
    pub fn new(
        base: &str,
        credentials: Credentials,
        timeout: Duration,
        retries: u32,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|source| ClientError::Http {
                url: base.to_string(),
                source,
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            credentials,
            retries,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authed(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.credentials {
            Credentials::Bearer(t) => rb.bearer_auth(t),
            Credentials::ModalPair { key, secret } => {
                rb.header("Modal-Key", key).header("Modal-Secret", secret)
            }
            Credentials::None => rb,
        }
    }

    /// Sends a request, retrying only when no connection could be made.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ClientError> {
        let url = self.url(path);
        let mut delay = INITIAL_BACKOFF;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut rb = self.authed(self.http.request(method.clone(), &url));
            if let Some(b) = body {
                rb = rb.json(b);
            }
            match rb.send().await {
                Ok(resp) => return Ok(resp),
                Err(e) if e.is_connect() && attempt <= self.retries => {
                    tracing::debug!(attempt, "connection failed; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
                Err(source) if source.is_connect() => {
                    return Err(ClientError::Unreachable {
                        url,
                        attempts: attempt,
                        source,
                    });
                }
                Err(source) => return Err(ClientError::Http { url, source }),
            }
        }
    }

    /// Sends and returns the JSON body of a 2xx answer, or the decoded error envelope.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let url = self.url(path);
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Http { url, source })?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|_| ClientError::Protocol(format!("{status}: non-JSON body")))?;
        if status.is_success() || path == "/ready" {
            Ok(v)
        } else {
            Err(envelope_error(status, &v))
        }
    }

    /// Downloads a body (e.g. an artifact) after checking the status.
    pub async fn bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let resp = self.send(Method::GET, path, None).await?;
        let status = resp.status();
        let url = self.url(path);
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Http { url, source })?;
        if !status.is_success() {
            let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(envelope_error(status, &v));
        }
        Ok(bytes.to_vec())
    }
}

fn envelope_error(status: StatusCode, v: &Value) -> ClientError {
    let e = &v["error"];
    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
    ClientError::Api {
        status,
        code: s("code"),
        message: s("message"),
        request_id: s("request_id"),
    }
}
