//! Every validation rule of product.md §2, through the real router (`oneshot`, no sockets),
//! with in-process services whose compute is not built (so valid requests end in 503).
//! Each case asserts the status, the envelope's code and its request id.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use common::*;
use http::{Method, Request, StatusCode};
use serde_json::json;

fn valid_generate() -> serde_json::Value {
    json!({ "image": b64(&png(16, 16)), "seed": 1, "preview_video": false })
}

#[tokio::test]
async fn health_is_public_and_carries_request_id_and_traceparent() {
    let g = gateway().await;
    let req = Request::get("/health").body(Body::empty()).unwrap();
    let r = g.send(req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok", "service": "trellis2-api"}));
    assert!(r.headers.contains_key("x-request-id"));
    let tp = r.headers["traceparent"].to_str().unwrap();
    assert!(tp.starts_with("00-") && tp.len() == 55, "{tp}");
}

#[tokio::test]
async fn a_callers_traceparent_is_continued_in_the_response() {
    let g = gateway().await;
    let req = Request::get("/health")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("x-request-id", "client-chosen-id-1")
        .body(Body::empty())
        .unwrap();
    let r = g.send(req).await;
    let tp = r.headers["traceparent"].to_str().unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    assert!(
        !tp.contains("00f067aa0ba902b7"),
        "the gateway's own span id: {tp}"
    );
    assert_eq!(r.headers["x-request-id"], "client-chosen-id-1");
}

#[tokio::test]
async fn missing_and_wrong_credentials_are_401() {
    let g = gateway().await;
    let r = g
        .send(Request::get("/v1/status").body(Body::empty()).unwrap())
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    let wrong = Request::get("/v1/status")
        .header("authorization", "Bearer t2_not-a-real-token")
        .body(Body::empty())
        .unwrap();
    g.send(wrong)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    let basic = Request::get("/v1/status")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(Body::empty())
        .unwrap();
    g.send(basic)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    // Legacy pair: right secret under another name is refused.
    let pair = Request::get("/v1/status")
        .header("modal-key", "someone-else")
        .header("modal-secret", &g.token)
        .body(Body::empty())
        .unwrap();
    g.send(pair)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    // Protected endpoints other than status, including the OpenAPI document and jobs.
    for (m, p) in [
        (Method::POST, "/generate"),
        (Method::POST, "/extract_glb"),
        (Method::POST, "/v1/jobs"),
        (Method::GET, "/v1/jobs/abc"),
        (Method::DELETE, "/v1/jobs/abc"),
        (Method::GET, "/v1/jobs/abc/artifacts/model.glb"),
        (Method::POST, "/v1/remove_background"),
        (Method::GET, "/openapi.json"),
    ] {
        let r = g
            .send(
                Request::builder()
                    .method(m)
                    .uri(p)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn bearer_and_legacy_pair_both_authenticate() {
    let g = gateway().await;
    assert_eq!(g.get("/v1/status").await.status, StatusCode::OK);
    let pair = Request::get("/v1/status")
        .header("modal-key", "tester")
        .header("modal-secret", &g.token)
        .body(Body::empty())
        .unwrap();
    assert_eq!(g.send(pair).await.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let g = gateway().await;
    for body in [&b"{\"image\": "[..], b"not json", b"", b"[1,2]"] {
        let r = g.post_raw("/generate", body.to_vec()).await;
        r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    }
    let r = g.post_raw("/extract_glb", b"{".to_vec()).await;
    r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
}

#[tokio::test]
async fn wrong_content_type_is_400() {
    let g = gateway().await;
    let req = g
        .request(Method::POST, "/generate")
        .header("content-type", "text/plain")
        .body(Body::from(valid_generate().to_string()))
        .unwrap();
    g.send(req)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");
}

#[tokio::test]
async fn unknown_fields_are_rejected() {
    let g = gateway().await;
    let mut body = valid_generate();
    body["colour"] = json!("red");
    let v = g.post_json("/generate", &body).await;
    let v = v.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("colour"),
        "{v}"
    );
    // `export` belongs to /v1/jobs only.
    let mut body = valid_generate();
    body["export"] = json!({"texture_size": 1024});
    g.post_json("/generate", &body)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    let r = g
        .post_json("/extract_glb", &json!({"state": "AAAA", "glb_quality": 3}))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
}

#[tokio::test]
async fn booleans_must_be_json_booleans() {
    let g = gateway().await;
    let r = g
        .post_json("/extract_glb", &json!({"state": "AAAA", "remesh": "false"}))
        .await;
    let v = r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("boolean"),
        "{v}"
    );
    let mut body = valid_generate();
    body["preview_video"] = json!("false");
    g.post_json("/generate", &body)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    body["preview_video"] = json!(0);
    g.post_json("/generate", &body)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");
}

#[tokio::test]
async fn unknown_pipeline_type_is_400() {
    let g = gateway().await;
    let mut body = valid_generate();
    body["pipeline_type"] = json!("2048_cascade");
    let v = g.post_json("/generate", &body).await;
    let v = v.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pipeline_type")
    );
}

#[tokio::test]
async fn sampler_parameters_out_of_range_are_400() {
    let g = gateway().await;
    for (field, value) in [
        ("ss_sampling_steps", json!(0)),
        ("shape_slat_sampling_steps", json!(101)),
        ("tex_slat_sampling_steps", json!(-1)),
        ("ss_sampling_steps", json!(12.5)),
        ("ss_guidance_strength", json!(-1.0)),
        ("shape_slat_guidance_strength", json!(1000.0)),
        ("tex_slat_guidance_rescale", json!(1.5)),
        ("ss_rescale_t", json!(0.0)),
        ("shape_slat_guidance_interval", json!([0.9, 0.1])),
        ("tex_slat_guidance_interval", json!([0.0, 2.0])),
        ("max_num_tokens", json!(10)),
        ("seed", json!(-5)),
    ] {
        let mut body = valid_generate();
        body[field] = value.clone();
        let r = g.post_json("/generate", &body).await;
        let v = r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(field) || msg.contains("invalid"),
            "{field}={value}: {msg}"
        );
    }
    // Several problems are reported together.
    let mut body = valid_generate();
    body["ss_sampling_steps"] = json!(0);
    body["tex_slat_guidance_rescale"] = json!(3.0);
    let v = g.post_json("/generate", &body).await;
    let v = v.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("ss_sampling_steps") && msg.contains("tex_slat_guidance_rescale"));
}

#[tokio::test]
async fn export_parameters_out_of_range_are_400() {
    let g = gateway().await;
    for (field, value) in [
        ("decimation_target", json!(999)),
        ("texture_size", json!(3000)),
        ("texture_format", json!("jpeg")),
        ("remesh_band", json!(-1.0)),
        ("remesh_project", json!(2.0)),
    ] {
        let mut body = json!({"state": "AAAA"});
        body[field] = value;
        let r = g.post_json("/extract_glb", &body).await;
        let v = r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
}

#[tokio::test]
async fn bad_base64_is_400() {
    let g = gateway().await;
    for image in [
        "%%%not-base64%%%",
        "data:image/png;base64,@@@@",
        "data:image/png,AAAA",
    ] {
        let r = g.post_json("/generate", &json!({"image": image})).await;
        r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    }
    let r = g.post_json("/extract_glb", &json!({"state": "!!!"})).await;
    r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
}

#[tokio::test]
async fn images_that_are_not_images_are_400() {
    let g = gateway().await;
    for bytes in [
        b"GIF89a\x01\x00\x01\x00".to_vec(),
        b"hello".to_vec(),
        png(4, 4)[..40].to_vec(),
    ] {
        let r = g
            .post_json("/generate", &json!({"image": b64(&bytes)}))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    }
}

#[tokio::test]
async fn a_4097_pixel_image_is_refused() {
    let g = gateway().await;
    for (w, h) in [(4097, 1), (1, 4097)] {
        let r = g
            .post_json("/generate", &json!({"image": b64(&png(w, h))}))
            .await;
        let v = r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("4096"),
            "{v}"
        );
    }
    // The maximum itself is accepted (and then fails only because compute is not built).
    let r = g
        .post_json(
            "/generate",
            &json!({"image": b64(&png(4096, 1)), "preview_video": false}),
        )
        .await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A valid-looking PNG of a few hundred bytes declaring 100,000 × 100,000 RGBA pixels
/// (40 GB once decoded).
fn bomb_png() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    // A zlib stream of zero rows (stored, empty): the header is all a checker needs to read.
    let idat = [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01];
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &idat));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_before_decoding() {
    let g = gateway().await;
    let bomb = bomb_png();
    assert!(bomb.len() < 200);
    let start = std::time::Instant::now();
    let r = g
        .post_json("/generate", &json!({"image": b64(&bomb)}))
        .await;
    let v = r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("100000"),
        "{v}"
    );
    // Not a timing assertion on the check's speed, a guard against decoding 40 GB: a decode
    // attempt would allocate far more than this process may and fail or take minutes.
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
    let r = g
        .post_json("/v1/remove_background", &json!({"image": b64(&bomb)}))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
}

#[tokio::test]
async fn an_image_over_10_mb_is_413() {
    let g = gateway().await;
    // 10.5 MB of bytes: the body (14 MB of base64) is under the body limit, the image is not.
    let big = vec![0u8; 10_500_000];
    let r = g.post_json("/generate", &json!({"image": b64(&big)})).await;
    r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn a_declared_oversize_body_is_413_before_reading() {
    let g = gateway().await;
    let req = g
        .request(Method::POST, "/generate")
        .header("content-type", "application/json")
        .header("content-length", (64u64 << 20).to_string())
        .body(Body::from("{}"))
        .unwrap();
    g.send(req)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn an_endless_streamed_body_is_cut_off_at_the_limit() {
    let g = gateway().await;
    const CHUNK: usize = 64 << 10;
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    // No Content-Length; the stream would never end if the server kept reading.
    let stream = futures::stream::repeat_with(move || {
        p.fetch_add(CHUNK, Ordering::SeqCst);
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; CHUNK]))
    });
    let req = g
        .request(Method::POST, "/generate")
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap();
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), g.send(req))
        .await
        .expect("the server must stop reading at the limit");
    r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let limit = t2_gateway::body::IMAGE_BODY_LIMIT;
    let n = pulled.load(Ordering::SeqCst);
    assert!(
        n <= limit + 2 * CHUNK,
        "read {n} bytes for a {limit}-byte limit"
    );
}

#[tokio::test]
async fn valid_requests_end_in_503_while_compute_is_not_built() {
    let g = gateway().await;
    let r = g.post_json("/generate", &valid_generate()).await;
    let v = r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not built"),
        "{v}"
    );
    assert!(r.headers.contains_key("retry-after"));
    let r = g
        .post_json("/v1/remove_background", &json!({"image": b64(&png(8, 8))}))
        .await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
}

fn sample_state(key: &t2_state::StateKey) -> Vec<u8> {
    let l = t2_state::Latents {
        model_id: "microsoft/TRELLIS.2-4B".into(),
        resolution: 1024,
        coords: vec![0, 1, 2, 3],
        shape_channels: 2,
        shape: vec![0.1, 0.2],
        tex_channels: 1,
        tex: vec![0.3],
    };
    t2_state::encode(&l, key).unwrap()
}

#[tokio::test]
async fn tampered_truncated_and_foreign_states_are_400() {
    let g = gateway().await;
    let good = sample_state(&g.state.state_key);
    let mut tampered = good.clone();
    let last = tampered.len() - 40;
    tampered[last] ^= 1;
    let foreign = sample_state(&t2_state::StateKey::generate());
    let pickle = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.".to_vec();
    for state in [tampered, good[..good.len() / 2].to_vec(), foreign, pickle] {
        let r = g
            .post_json("/extract_glb", &json!({"state": b64(&state)}))
            .await;
        let v = r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("state"),
            "{v}"
        );
    }
    // A state this server signed passes validation and reaches the (unbuilt) mesh service.
    let r = g
        .post_json("/extract_glb", &json!({"state": b64(&good)}))
        .await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let g = gateway().await;
    g.get("/nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = g
        .send(
            g.request(Method::PUT, "/health")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "validation_error");
}

#[tokio::test]
async fn ready_names_the_services_that_are_not_ready() {
    let g = gateway().await;
    let r = g
        .send(Request::get("/ready").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let v = r.json();
    assert_eq!(v["ready"], false);
    let names: Vec<_> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["rmbg", "dinov3", "flow", "mesh"]);
    let status = g.get("/v1/status").await.json();
    assert_eq!(status["services"][0]["status"], "unhealthy");
}

#[tokio::test]
async fn metrics_are_public_and_count_latency_and_errors() {
    let g = gateway().await;
    g.get("/nope").await;
    g.post_raw("/generate", b"{".to_vec()).await;
    let r = g
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    for needle in [
        "trellis2_http_request_duration_seconds_bucket{endpoint=\"/generate\",method=\"POST\",status=\"400\"",
        "trellis2_http_errors_total{code=\"validation_error\"} 1",
        "trellis2_http_errors_total{code=\"not_found\"} 1",
        "trellis2_http_requests_in_flight",
        "trellis2_jobs_queue_depth",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let g = gateway().await;
    let doc = g.get("/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
        ("/v1/status", "get"),
        ("/generate", "post"),
        ("/extract_glb", "post"),
        ("/v1/jobs", "post"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}", "delete"),
        ("/v1/jobs/{id}/artifacts/{name}", "get"),
        ("/v1/remove_background", "post"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
    assert!(doc["components"]["schemas"]["GenerateBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
