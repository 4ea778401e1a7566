//! `trellis2 models fetch` against a local server that answers like the Hugging Face Hub:
//! `HEAD …/resolve/main/<file>` gives LFS files as a redirect carrying `X-Linked-Size` and
//! `X-Linked-Etag` (SHA-256) and small files as 200 with a git-blob-SHA-1 `ETag`; the gated
//! repos answer 401 without the right token; the CDN honours `Range`. The served bytes are the
//! demo model set, which has every file of the real set at the real paths.
//!
//! Checked: gated repos are named (and skipped after their first file) without a token; with
//! it every file arrives byte-identical; a connection dropped mid-file resumes with `Range`
//! instead of starting over; a second run downloads nothing; a file whose bytes do not match
//! the announced hash is refused and removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use sha1::Digest as _;
use t2_cli::models::check::check;
use t2_cli::models::fetch::{FetchError, FetchOptions, Outcome, fetch};
use t2_cli::models::manifest::MODEL_SET;

const TOKEN: &str = "hf_accepted_licences";
/// The file whose first download the server cuts in the middle.
const DROPPED: &str = "ckpts/slat_flow_img2shape_dit_1_3B_1024_bf16.safetensors";

#[derive(Default)]
struct Hub {
    /// repo id → (path in repo → bytes served).
    files: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// repo id → (path in repo → the SHA-256 announced, when it differs from the bytes').
    announced: BTreeMap<String, BTreeMap<String, String>>,
    gated: BTreeSet<String>,
    /// Files whose next CDN download is cut after half the bytes.
    cut_next: BTreeSet<String>,
    /// Every CDN GET: (path in repo, Range header).
    gets: Vec<(String, Option<String>)>,
}

type Shared = Arc<Mutex<Hub>>;

fn is_lfs(path: &str) -> bool {
    path.ends_with(".safetensors") || path.ends_with(".onnx")
}

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn git_sha1(b: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", b.len()).as_bytes());
    h.update(b);
    hex::encode(h.finalize())
}

/// Splits `/{org}/{name}/resolve/main/{file}` or `/cdn/{org}/{name}/{file}`.
fn route(path: &str) -> Option<(bool, String, String)> {
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    match parts.as_slice() {
        ["cdn", org, name, rest @ ..] => Some((true, format!("{org}/{name}"), rest.join("/"))),
        [org, name, "resolve", "main", file] => {
            Some((false, format!("{org}/{name}"), (*file).to_string()))
        }
        _ => None,
    }
}

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .unwrap()
}

async fn serve(State(hub): State<Shared>, req: Request) -> Response {
    let Some((cdn, repo, file)) = route(req.uri().path()) else {
        return status(StatusCode::NOT_FOUND);
    };
    let mut hub = hub.lock().unwrap();
    let Some(bytes) = hub.files.get(&repo).and_then(|f| f.get(&file)).cloned() else {
        return status(StatusCode::NOT_FOUND);
    };
    let authorised = req.headers().get(header::AUTHORIZATION)
        == Some(&HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap());
    if !cdn && hub.gated.contains(&repo) && !authorised {
        return status(StatusCode::UNAUTHORIZED);
    }
    if !cdn && is_lfs(&file) {
        // The Hub's answer for an LFS file: a redirect to the CDN with the file's metadata.
        let etag = hub
            .announced
            .get(&repo)
            .and_then(|a| a.get(&file))
            .cloned()
            .unwrap_or_else(|| sha256(&bytes));
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, format!("/cdn/{repo}/{file}"))
            .header("x-linked-size", bytes.len())
            .header("x-linked-etag", format!("\"{etag}\""))
            .body(Body::empty())
            .unwrap();
    }
    let mut headers = HeaderMap::new();
    if !cdn {
        headers.insert(
            header::ETAG,
            HeaderValue::from_str(&format!("\"{}\"", git_sha1(&bytes))).unwrap(),
        );
    }
    if req.method() == Method::HEAD {
        let mut r = status(StatusCode::OK);
        r.headers_mut().extend(headers);
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, bytes.len().into());
        return r;
    }
    let range = req
        .headers()
        .get(header::RANGE)
        .map(|v| v.to_str().unwrap().to_string());
    hub.gets.push((file.clone(), range.clone()));
    let from: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .unwrap_or(0);
    let body = bytes[from..].to_vec();
    let mut resp = Response::builder()
        .status(if from > 0 {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_LENGTH, body.len());
    if from > 0 {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {from}-{}/{}", bytes.len() - 1, bytes.len()),
        );
    }
    for (k, v) in &headers {
        resp = resp.header(k, v);
    }
    if hub.cut_next.remove(&file) {
        // Half the bytes, then the connection breaks (the announced length is never reached).
        // The pause lets the first half reach the client before the error aborts the stream.
        let half = Bytes::from(body[..body.len() / 2].to_vec());
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
        tokio::spawn(async move {
            let _ = tx.send(Ok(half)).await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
            let _ = tx.send(Err(cut)).await;
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        return resp.body(Body::from_stream(stream)).unwrap();
    }
    resp.body(Body::from(body)).unwrap()
}

/// Serves the demo set's files under the real repos' names.
async fn start_hub(source: &Path) -> (String, Shared) {
    let mut hub = Hub::default();
    for repo in MODEL_SET {
        let files = hub.files.entry(repo.id.to_string()).or_default();
        for f in repo.files {
            files.insert(
                f.to_string(),
                std::fs::read(source.join(repo.local_path(f))).unwrap(),
            );
        }
        if repo.gated {
            hub.gated.insert(repo.id.to_string());
        }
    }
    let hub = Arc::new(Mutex::new(hub));
    let app = axum::Router::new().fallback(serve).with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hub)
}

fn options(endpoint: &str, out: &Path, token: Option<&str>) -> FetchOptions {
    FetchOptions {
        endpoint: endpoint.to_string(),
        token: token.map(str::to_string),
        out: out.to_path_buf(),
        retries: 3,
        progress: false,
    }
}

fn all_files() -> Vec<(String, PathBuf)> {
    MODEL_SET
        .iter()
        .flat_map(|r| {
            r.files
                .iter()
                .map(|f| (r.local_path(f), PathBuf::from(r.local_path(f))))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_from_a_hub_like_server() {
    let source = tempfile::tempdir().unwrap();
    t2_svc_flow::shared::model_dir::write_demo_set(source.path()).unwrap();
    let (endpoint, hub) = start_hub(source.path()).await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("models");

    // 1. No token: every gated repo refuses and is named; the open repo downloads.
    let report = fetch(options(&endpoint, &dir, None)).await.unwrap();
    let gated: BTreeSet<String> = report
        .failures
        .iter()
        .map(|e| match e {
            FetchError::Gated { repo, status, .. } => {
                assert_eq!(*status, 401);
                assert!(e.to_string().contains("--token"), "{e}");
                repo.clone()
            }
            other => panic!("unexpected failure without a token: {other}"),
        })
        .collect();
    let expected_gated: BTreeSet<String> = MODEL_SET
        .iter()
        .filter(|r| r.gated)
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(gated, expected_gated);
    // One refusal per gated repo: the rest of its files are not tried.
    assert_eq!(report.failures.len(), expected_gated.len());
    let open: Vec<String> = MODEL_SET
        .iter()
        .filter(|r| !r.gated)
        .flat_map(|r| r.files.iter().map(|f| r.local_path(f)))
        .collect();
    let got: Vec<String> = report.files.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(got, open);
    let gaps = check(&dir);
    assert!(!gaps.is_complete());
    let text = gaps.to_string();
    for id in &expected_gated {
        assert!(
            text.contains(id.as_str()),
            "check does not name {id}:\n{text}"
        );
    }

    // 2. With the token: everything, the cut file resumed with a Range request.
    hub.lock().unwrap().cut_next.insert(DROPPED.to_string());
    let report = fetch(options(&endpoint, &dir, Some(TOKEN))).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for (rel, path) in all_files() {
        assert_eq!(
            std::fs::read(dir.join(&path)).unwrap(),
            std::fs::read(source.path().join(&path)).unwrap(),
            "{rel} differs from the served bytes"
        );
        assert!(!dir.join(format!("{rel}.part")).exists());
    }
    let outcome = |name: &str| {
        report
            .files
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, o)| o.clone())
            .unwrap()
    };
    let size = std::fs::metadata(source.path().join(DROPPED))
        .unwrap()
        .len();
    assert!(
        matches!(outcome(DROPPED), Outcome::Downloaded { bytes, .. } if bytes == size),
        "{:?}",
        outcome(DROPPED)
    );
    let resumed: Vec<_> = hub
        .lock()
        .unwrap()
        .gets
        .iter()
        .filter(|(f, r)| f == DROPPED && r.is_some())
        .cloned()
        .collect();
    assert_eq!(resumed.len(), 1, "exactly one resumed request: {resumed:?}");
    assert_eq!(
        resumed[0].1.as_deref(),
        Some(&*format!("bytes={}-", size / 2))
    );
    // The open repo's files from step 1 were kept, not downloaded again.
    for p in &open {
        assert_eq!(outcome(p), Outcome::Kept, "{p}");
    }
    assert!(check(&dir).is_complete(), "{}", check(&dir));

    // 3. A second run downloads nothing.
    let before = hub.lock().unwrap().gets.len();
    let report = fetch(options(&endpoint, &dir, Some(TOKEN))).await.unwrap();
    assert!(report.failures.is_empty());
    assert!(report.files.iter().all(|(_, o)| *o == Outcome::Kept));
    assert_eq!(hub.lock().unwrap().gets.len(), before);

    // 4. Bytes that do not match the announced SHA-256: refused, nothing left in place.
    let victim = "ckpts/ss_flow_img_dit_1_3B_64_bf16.safetensors";
    std::fs::remove_file(dir.join(victim)).unwrap();
    {
        let mut h = hub.lock().unwrap();
        let bytes = h
            .files
            .get_mut("microsoft/TRELLIS.2-4B")
            .unwrap()
            .get_mut(victim)
            .unwrap();
        let honest = sha256(bytes);
        *bytes.last_mut().unwrap() ^= 1;
        h.announced
            .entry("microsoft/TRELLIS.2-4B".into())
            .or_default()
            .insert(victim.into(), honest);
    }
    let report = fetch(options(&endpoint, &dir, Some(TOKEN))).await.unwrap();
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        matches!(&report.failures[0], FetchError::Hash { file, algorithm: "sha256", .. } if file == victim),
        "{}",
        report.failures[0]
    );
    assert!(!dir.join(victim).exists());
    assert!(!dir.join(format!("{victim}.part")).exists());
    assert!(!check(&dir).is_complete());
}
