//! Shared helpers of the gateway's HTTP tests.
#![allow(dead_code)]

pub mod demo;
pub mod doubles;

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use base64::Engine;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::Value;
use t2_gateway::{AppState, Backends, GatewayConfig};
use tower::ServiceExt;

/// One tracing setup per test binary; spans go to an in-memory exporter tests can read.
pub fn telemetry() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        if std::env::var_os("RUST_LOG").is_none() {
            // SAFETY: runs once, before any test thread reads the environment.
            unsafe { std::env::set_var("RUST_LOG", "error") };
        }
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let guard = t2_telemetry::install(provider, "test", t2_telemetry::LogFormat::Text)
            .expect("telemetry installs once");
        // Keep the provider alive for the whole test binary.
        Box::leak(Box::new(guard));
        exporter
    })
}

pub struct TestGateway {
    pub app: Router,
    pub token: String,
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

pub async fn gateway_with(backends: Backends, dir: tempfile::TempDir) -> TestGateway {
    gateway_with_config(backends, dir, |_| {}).await
}

/// A gateway whose configuration `tweak` adjusts (timeouts, limits).
pub async fn gateway_with_config(
    backends: Backends,
    dir: tempfile::TempDir,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> TestGateway {
    telemetry();
    let store = t2_gateway::auth::TokenStore::new(dir.path());
    // On a reopened data directory the token exists already; callers restore it.
    let token = store.add("tester").unwrap_or_default();
    let mut config = GatewayConfig::new(dir.path().to_path_buf());
    tweak(&mut config);
    let state = AppState::open(&config, backends).await.unwrap();
    TestGateway {
        app: t2_gateway::app(state.clone()),
        token,
        state,
        dir,
    }
}

pub async fn gateway() -> TestGateway {
    gateway_with(Backends::not_built(), tempfile::tempdir().unwrap()).await
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the error envelope: status, code, a request id equal to the header's, and a
    /// traceparent header.
    pub fn assert_error(&self, status: StatusCode, code: &str) -> Value {
        let v = self.json();
        assert_eq!(self.status, status, "body: {v}");
        assert_eq!(v["error"]["code"], code, "body: {v}");
        let rid = v["error"]["request_id"].as_str().expect("request_id");
        assert!(!rid.is_empty(), "empty request_id: {v}");
        assert_eq!(self.headers["x-request-id"].to_str().unwrap(), rid);
        assert!(self.headers.contains_key("traceparent"), "no traceparent");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        v
    }
}

impl TestGateway {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, serde_json::to_vec(body).unwrap()).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Reply {
        let req = self
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path).body(Body::empty()).unwrap())
            .await
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 100, 50]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}
