//! Shared fixtures of the fuzz targets: one gateway per process (router, token, a fixed state
//! key), a gRPC call through a tonic server service without a socket, and the oracles that
//! decide what counts as a crash beyond a panic.
//!
//! The oracles encode the product's promises (product.md §2): bad input is a typed 4xx with the
//! error envelope, never a 500; the only 5xx a fuzzed request may see is 503 `unavailable`,
//! because the gateway here runs with `Backends::not_built()` (no compute), so every request
//! that passes validation stops at the first upstream call.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;

/// The state key of the fuzzed gateway, so seeds can carry validly signed states. A fuzz-only
/// key: it signs nothing outside this process.
pub const STATE_KEY: [u8; t2_state::KEY_BYTES] = [0x5a; t2_state::KEY_BYTES];

pub fn state_key() -> t2_state::StateKey {
    t2_state::StateKey::from_bytes(STATE_KEY)
}

/// A current-thread runtime: every fuzz input runs to completion inside one `block_on`.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// The gateway under test, opened once per fuzzing process.
pub struct Gateway {
    pub app: Router,
    pub token: String,
    _dir: tempfile::TempDir,
}

pub fn gateway() -> &'static Gateway {
    static GW: OnceLock<Gateway> = OnceLock::new();
    GW.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join(t2_gateway::STATE_KEY_FILE),
            STATE_KEY
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
        .expect("state key");
        let token = t2_gateway::auth::TokenStore::new(dir.path())
            .add("fuzz")
            .expect("token");
        let config = t2_gateway::GatewayConfig::new(dir.path().to_path_buf());
        let state = runtime()
            .block_on(t2_gateway::AppState::open(
                &config,
                t2_gateway::Backends::not_built(),
            ))
            .expect("gateway state");
        Gateway {
            app: t2_gateway::app(state),
            token,
            _dir: dir,
        }
    })
}

/// One HTTP answer, body collected.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Gateway {
    /// `POST path` with `body` as JSON, authenticated, through the whole router.
    pub fn post_json(&self, path: &str, body: &[u8]) -> Reply {
        let req = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .body(Body::from(body.to_vec()))
            .expect("request");
        runtime().block_on(async {
            let resp = self.app.clone().oneshot(req).await.expect("infallible");
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp
                .into_body()
                .collect()
                .await
                .expect("response body")
                .to_bytes();
            Reply {
                status,
                headers,
                body,
            }
        })
    }
}

/// Panics (a fuzzing crash) unless `r` keeps the API's promises for a request that may be
/// anything: 4xx with the envelope whose code matches the status, or 503 `unavailable` (the
/// compute is not built here), or 2xx; never another 5xx; `x-request-id` equal to the
/// envelope's `request_id`.
pub fn check_api_reply(what: &str, input: &[u8], r: &Reply) {
    let fail = |why: String| -> ! {
        panic!(
            "{what}: {why}\nstatus {}\nbody {}\ninput {:?}",
            r.status,
            String::from_utf8_lossy(&r.body),
            String::from_utf8_lossy(&input[..input.len().min(2000)])
        )
    };
    if r.status.is_success() {
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| fail(format!("error body is not JSON: {e}")));
    let code = v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| fail("no error.code in the envelope".into()));
    let expected = match r.status.as_u16() {
        400 => &["validation_error"][..],
        401 => &["unauthorized"],
        404 => &["not_found"],
        413 => &["payload_too_large"],
        503 => &["unavailable"],
        _ => fail(format!("status {} is not allowed for any input", r.status)),
    };
    if !expected.contains(&code) {
        fail(format!(
            "code {code:?} does not belong to status {}",
            r.status
        ));
    }
    let rid = v["error"]["request_id"].as_str().unwrap_or_default();
    if rid.is_empty() {
        fail("empty request_id".into());
    }
    let header = r
        .headers
        .get("x-request-id")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if header != rid {
        fail(format!("x-request-id {header:?} != request_id {rid:?}"));
    }
    if v["error"]["message"].as_str().is_none_or(str::is_empty) {
        fail("empty error message".into());
    }
}

/// The gRPC status of one call to a tonic server `svc` at `path`, with `body` as the HTTP/2
/// request body (already gRPC-framed or not), read from the headers (trailers-only answer) or
/// the trailers after the streamed messages.
pub fn grpc_status<S, B>(svc: S, path: &str, body: Bytes) -> Option<tonic::Code>
where
    S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let req = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(Full::new(body))
        .expect("request");
    runtime().block_on(async {
        let resp = svc
            .oneshot(req)
            .await
            .expect("tonic services are infallible");
        let code_of = |h: &HeaderMap| {
            h.get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map(tonic::Code::from)
        };
        if let Some(c) = code_of(resp.headers()) {
            return Some(c);
        }
        let collected = resp.into_body().collect().await.expect("response body");
        collected.trailers().and_then(code_of)
    })
}

/// `message` in gRPC's length-prefixed framing (uncompressed).
pub fn grpc_frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.into()
}
