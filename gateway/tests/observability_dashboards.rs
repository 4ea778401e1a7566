//! The Grafana dashboards in `observability/grafana/dashboards/` parse, every panel queries
//! something, and every metric a panel queries is exported at a running gateway's `/metrics`
//! (the in-process router over the real `AppState`, scraped over its HTTP interface).
//!
//! The one allowance: GPU families that only have samples while a GPU is present. When the
//! scrape itself says there is none (`trellis2_gpu_cuda_devices 0`, `trellis2_gpu_nvml_available
//! 0`), those names must be ones t2-gpumon exports on a GPU machine; with a GPU they must appear.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use t2_gateway::{AppState, Backends, GatewayConfig};
use tower::ServiceExt;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo_root().join("observability/grafana/dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no dashboards in {}", dir.display());
    out
}

/// Every non-row panel, rows' nested panels included.
fn panels(dash: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            if p["type"] == "row" {
                walk(&p["panels"], out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

const PROMQL_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    // Aggregations may be followed by `by (…)` instead of their parenthesis.
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// Removes every `open … close` span (not nested: label matchers and ranges never nest).
fn strip(s: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut inside = false;
    for c in s.chars() {
        match c {
            c if c == open && !inside => inside = true,
            c if c == close && inside => {
                inside = false;
                out.push(' ');
            }
            _ if inside => {}
            c => out.push(c),
        }
    }
    out
}

/// The metric names a PromQL expression selects: identifiers that are not functions or
/// aggregations (followed by `(`), keywords, label lists of `by (…)` / `on (…)` and the like,
/// label matchers, ranges or strings.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut s = strip(expr, '"', '"');
    s = strip(&s, '{', '}');
    s = strip(&s, '[', ']');
    let chars: Vec<char> = s.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let lower = word.to_ascii_lowercase();
            if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&lower.as_str())
            {
                skip_group = next == Some(&'(');
            } else if next == Some(&'(') || PROMQL_KEYWORDS.contains(&lower.as_str()) {
                // a function or an aggregation
            } else {
                names.insert(word);
            }
        } else if c == '(' && skip_group {
            // Label names inside `by (…)`: skip to the closing parenthesis.
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            skip_group = false;
            i += 1;
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn the_promql_name_extraction_is_right() {
    let got = metric_names(
        r#"histogram_quantile(0.95, sum by (le, endpoint) (rate(a_bucket{endpoint!~"/health|x"}[$__rate_interval]))) / on (job) group_left b or vector(0) > 0.05"#,
    );
    assert_eq!(got, ["a_bucket", "b"].map(String::from).into());
}

/// Sample names and their (first) values in a text exposition.
fn scrape_names(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap().to_string();
        let value = line.rsplit(' ').next().and_then(|v| v.parse().ok());
        if let Some(v) = value {
            out.entry(name).or_insert(v);
        }
    }
    out
}

async fn call(app: &axum::Router, method: &str, uri: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn every_dashboard_metric_is_exported_by_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(
        &GatewayConfig::new(dir.path().to_path_buf()),
        Backends::not_built(),
    )
    .await
    .unwrap();
    let app = t2_gateway::app(state);
    // Traffic of the kinds the panels break down: a success, a caller error, a route miss.
    assert_eq!(call(&app, "GET", "/health").await.0, StatusCode::OK);
    assert_eq!(
        call(&app, "GET", "/v1/status").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(&app, "GET", "/nope").await.0, StatusCode::NOT_FOUND);
    let (status, text) = call(&app, "GET", "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let exported = scrape_names(&text);

    let cuda_devices = exported[t2_gpumon::CUDA_DEVICES];
    let nvml = exported[t2_gpumon::NVML_AVAILABLE];
    let datasources = std::fs::read_to_string(
        repo_root().join("observability/grafana/provisioning/datasources/datasources.yml"),
    )
    .unwrap();

    let mut checked = BTreeSet::new();
    let mut missing = Vec::new();
    for (file, dash) in dashboards() {
        assert!(dash["uid"].is_string(), "{file}: no uid");
        assert!(dash["title"].is_string(), "{file}: no title");
        let panels = panels(&dash);
        assert!(!panels.is_empty(), "{file}: no panels");
        for p in panels {
            let title = p["title"].as_str().unwrap_or("?");
            let uid = p["datasource"]["uid"].as_str().unwrap_or("");
            assert!(
                datasources.contains(&format!("uid: {uid}")),
                "{file} / {title}: datasource uid {uid:?} is not provisioned"
            );
            let targets = p["targets"].as_array().filter(|t| !t.is_empty());
            let targets = targets.unwrap_or_else(|| panic!("{file} / {title}: no query"));
            for t in targets {
                let expr = t["expr"].as_str().unwrap_or("");
                let names = metric_names(expr);
                assert!(!names.is_empty(), "{file} / {title}: no metric in {expr:?}");
                for name in names {
                    checked.insert(name.clone());
                    let ok = exported.contains_key(&name)
                        // Prometheus makes `up` itself for every scrape target.
                        || name == "up"
                        || (cuda_devices == 0.0
                            && t2_gpumon::CUDA_DEVICE_METRICS.contains(&name.as_str()))
                        || (nvml == 0.0 && t2_gpumon::NVML_METRICS.contains(&name.as_str()));
                    if !ok {
                        missing.push(format!("{file} / {title}: {name}"));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "dashboard metrics the gateway does not export:\n{}\n\n/metrics:\n{text}",
        missing.join("\n")
    );
    if cuda_devices == 0.0 || nvml == 0.0 {
        eprintln!(
            "no GPU here (CUDA devices {cuda_devices}, NVML {nvml}): per-device GPU names were \
             checked against t2-gpumon's lists"
        );
    }
    // The panels must cover what product.md §4 asks a dashboard to show.
    for family in [
        "trellis2_http_request_duration_seconds_count",
        "trellis2_http_request_duration_seconds_bucket",
        "trellis2_stage_duration_seconds_bucket",
        "trellis2_http_errors_total",
        "trellis2_jobs_queue_depth",
        t2_gpumon::ALLOCATED_BYTES,
        t2_gpumon::NVML_UTILIZATION_RATIO,
        "trellis2_model_load_seconds_sum",
    ] {
        assert!(checked.contains(family), "no panel shows {family}");
    }
}
