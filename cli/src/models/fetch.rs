//! `trellis2 models fetch`: downloads the model set from the Hugging Face Hub into a model
//! directory, resumably, verifying every file.
//!
//! Per file, as the Hub serves it:
//! 1. `HEAD {endpoint}/{repo}/resolve/{revision}/{path}` without following redirects. An LFS
//!    file answers with a redirect to its CDN and the headers `X-Linked-Size` and
//!    `X-Linked-Etag` (the file's SHA-256); a small git-stored file answers 200 with its size and
//!    an `ETag` that is its git blob SHA-1. 401/403 means a licence-gated repo this token may
//!    not read yet.
//! 2. A file already in place with that size and a recorded matching hash is kept.
//! 3. Otherwise it is downloaded to `<file>.part`, resuming an existing part with
//!    `Range: bytes=N-` (also after a connection drops mid-file, up to `retries` times).
//! 4. The size and the hash are checked before the part is renamed into place; a mismatch
//!    deletes the part and fails that file.
//!
//! Verified files are recorded in `<out>/.trellis2-fetch.json` (path → size and hash), so a
//! second run checks sizes only.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{StatusCode, header};
use sha1::Digest as _;

use super::manifest::{MODEL_SET, REVISION, Repo};

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Where verified files are recorded, inside the model directory.
pub const RECORD_FILE: &str = ".trellis2-fetch.json";
/// Connection drops survived per file (each resumes where the last one stopped).
pub const DEFAULT_RETRIES: u32 = 5;

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub endpoint: String,
    pub token: Option<String>,
    pub out: PathBuf,
    pub retries: u32,
    /// Draw progress bars on stderr (when it is a terminal).
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "{repo} is licence-gated and HTTP {status} refused {file}: accept the licence at {page} \
         with the Hugging Face account of your token{hint}"
    )]
    Gated {
        repo: String,
        file: String,
        status: u16,
        page: String,
        hint: &'static str,
    },
    #[error("{repo} has no file {file} at revision {REVISION} (HTTP 404)")]
    NotFound { repo: String, file: String },
    #[error("{url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url}: unexpected HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the Hub gave no size for this file")]
    NoSize { url: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}: downloaded {got} bytes, the Hub announced {expected}")]
    Size {
        file: String,
        got: u64,
        expected: u64,
    },
    #[error("{file}: {algorithm} is {got}, the Hub announced {expected}; the download was removed")]
    Hash {
        file: String,
        algorithm: &'static str,
        got: String,
        expected: String,
    },
    #[error("{file}: the connection kept dropping ({attempts} attempts); run again to resume")]
    GaveUp { file: String, attempts: u32 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// How the Hub identifies a file's content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentHash {
    /// LFS files: SHA-256 of the bytes (`X-Linked-Etag`).
    Sha256(String),
    /// Git-stored files: SHA-1 of `blob <len>\0<bytes>` (`ETag`).
    GitSha1(String),
    /// Neither header was a hash (a mirror without them): the size alone is checked.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Remote {
    pub size: u64,
    pub hash: ContentHash,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already in place and verified.
    Kept,
    /// Downloaded; `resumed_from` bytes came from an earlier partial download.
    Downloaded { bytes: u64, resumed_from: u64 },
}

#[derive(Debug, Default)]
pub struct FetchReport {
    pub files: Vec<(String, Outcome)>,
    pub failures: Vec<FetchError>,
}

fn unquote(v: &str) -> String {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_ascii_lowercase()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn header_str<'a>(h: &'a header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

struct Fetcher {
    opts: FetchOptions,
    /// Follows no redirects, to read the Hub's `X-Linked-*` headers on HEAD.
    head: reqwest::Client,
    /// Follows redirects (to the CDN); reqwest drops `Authorization` when the host changes.
    get: reqwest::Client,
    record: BTreeMap<String, Remote>,
}

impl Fetcher {
    fn new(opts: FetchOptions) -> Result<Self, FetchError> {
        let build = |policy| {
            reqwest::Client::builder()
                .redirect(policy)
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(Duration::from_secs(120))
                .user_agent(concat!("trellis2/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|source| FetchError::Http {
                    url: opts.endpoint.clone(),
                    source,
                })
        };
        let head = build(reqwest::redirect::Policy::none())?;
        let get = build(reqwest::redirect::Policy::limited(10))?;
        let record = std::fs::read(opts.out.join(RECORD_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Self {
            opts,
            head,
            get,
            record,
        })
    }

    fn authed(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.opts.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    fn url(&self, repo: &Repo, file: &str) -> String {
        format!(
            "{}/{}/resolve/{REVISION}/{file}",
            self.opts.endpoint.trim_end_matches('/'),
            repo.id
        )
    }

    fn save_record(&self) -> Result<(), FetchError> {
        let path = self.opts.out.join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(&self.record).expect("serialisable");
        std::fs::write(&path, json).map_err(io(&path))
    }

    fn refused(&self, repo: &Repo, file: &str, status: StatusCode) -> Option<FetchError> {
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Some(FetchError::Gated {
                repo: repo.id.into(),
                file: file.into(),
                status: status.as_u16(),
                page: repo.page(&self.opts.endpoint),
                hint: if self.opts.token.is_some() {
                    ""
                } else {
                    ", and pass it with --token (or HF_TOKEN)"
                },
            }),
            StatusCode::NOT_FOUND => Some(FetchError::NotFound {
                repo: repo.id.into(),
                file: file.into(),
            }),
            _ => None,
        }
    }

    /// Step 1: size and hash from the Hub's headers.
    async fn remote(&self, repo: &Repo, file: &str) -> Result<Remote, FetchError> {
        let mut url = self.url(repo, file);
        for _ in 0..5 {
            let resp = self
                .authed(self.head.head(&url))
                .send()
                .await
                .map_err(|source| FetchError::Http {
                    url: url.clone(),
                    source,
                })?;
            let status = resp.status();
            if let Some(e) = self.refused(repo, file, status) {
                return Err(e);
            }
            let h = resp.headers();
            let linked_size = header_str(h, "x-linked-size").and_then(|v| v.parse().ok());
            let linked_etag = header_str(h, "x-linked-etag").map(unquote);
            if status.is_redirection() && linked_size.is_none() {
                // A repo or revision redirect (no file metadata yet): follow it.
                let loc = header_str(h, "location").ok_or(FetchError::Status {
                    url: url.clone(),
                    status: status.as_u16(),
                })?;
                url = reqwest::Url::parse(&url)
                    .and_then(|base| base.join(loc))
                    .map(|u| u.to_string())
                    .map_err(|_| FetchError::Status {
                        url: url.clone(),
                        status: status.as_u16(),
                    })?;
                continue;
            }
            if !(status.is_success() || status.is_redirection()) {
                return Err(FetchError::Status {
                    url,
                    status: status.as_u16(),
                });
            }
            let size = linked_size
                .or_else(|| header_str(h, "content-length").and_then(|v| v.parse().ok()))
                .ok_or(FetchError::NoSize { url: url.clone() })?;
            let etag = header_str(h, "etag").map(unquote);
            let hash = match (linked_etag, etag) {
                (Some(s), _) if is_hex(&s, 64) => ContentHash::Sha256(s),
                (_, Some(s)) if is_hex(&s, 64) => ContentHash::Sha256(s),
                (_, Some(s)) if is_hex(&s, 40) => ContentHash::GitSha1(s),
                _ => ContentHash::Unknown,
            };
            return Ok(Remote { size, hash });
        }
        Err(FetchError::Status {
            url,
            status: 310, // too many redirects
        })
    }

    async fn file(&mut self, repo: &Repo, file: &str) -> Result<Outcome, FetchError> {
        let rel = repo.local_path(file);
        let dest = self.opts.out.join(&rel);
        let remote = self.remote(repo, file).await?;
        if let Ok(m) = std::fs::metadata(&dest)
            && m.len() == remote.size
        {
            if self.record.get(&rel) == Some(&remote) {
                return Ok(Outcome::Kept);
            }
            // In place but not recorded (copied in by hand, or an older run): verify it.
            if verify(&dest, &rel, &remote).is_ok() {
                self.record.insert(rel, remote);
                self.save_record()?;
                return Ok(Outcome::Kept);
            }
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let part = PathBuf::from(format!("{}.part", dest.display()));
        let resumed_from = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let url = self.url(repo, file);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.download(repo, file, &url, &part, remote.size).await {
                Ok(()) => break,
                Err(e @ (FetchError::Http { .. } | FetchError::Size { .. }))
                    if attempts <= self.opts.retries =>
                {
                    tracing::warn!(file = %rel, error = %e, attempts, "download interrupted; resuming");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts))).await;
                }
                Err(FetchError::Http { .. } | FetchError::Size { .. }) => {
                    return Err(FetchError::GaveUp {
                        file: rel,
                        attempts,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        if let Err(e) = verify(&part, &rel, &remote) {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        std::fs::rename(&part, &dest).map_err(io(&dest))?;
        self.record.insert(rel, remote.clone());
        self.save_record()?;
        Ok(Outcome::Downloaded {
            bytes: remote.size,
            resumed_from: resumed_from.min(remote.size),
        })
    }

    /// Step 3: appends to `part` until it holds `size` bytes.
    async fn download(
        &self,
        repo: &Repo,
        file: &str,
        url: &str,
        part: &Path,
        size: u64,
    ) -> Result<(), FetchError> {
        let mut have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if have > size {
            std::fs::remove_file(part).map_err(io(part))?;
            have = 0;
        }
        if have == size {
            return Ok(());
        }
        let mut rb = self.authed(self.get.get(url));
        if have > 0 {
            rb = rb.header(header::RANGE, format!("bytes={have}-"));
        }
        let http = |source| FetchError::Http {
            url: url.to_string(),
            source,
        };
        let mut resp = rb.send().await.map_err(http)?;
        let status = resp.status();
        if let Some(e) = self.refused(repo, file, status) {
            return Err(e);
        }
        let append = match status {
            StatusCode::PARTIAL_CONTENT => true,
            StatusCode::OK => false, // the server ignored the range: start over
            StatusCode::RANGE_NOT_SATISFIABLE => {
                std::fs::remove_file(part).map_err(io(part))?;
                return Err(FetchError::Size {
                    file: file.into(),
                    got: have,
                    expected: size,
                });
            }
            s => {
                return Err(FetchError::Status {
                    url: url.into(),
                    status: s.as_u16(),
                });
            }
        };
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(part)
            .map_err(io(part))?;
        let mut written = if append { have } else { 0 };
        let bar = self.bar(&repo.local_path(file), size, written);
        while let Some(chunk) = resp.chunk().await.map_err(http)? {
            out.write_all(&chunk).map_err(io(part))?;
            written += chunk.len() as u64;
            bar.set_position(written);
        }
        out.flush().map_err(io(part))?;
        bar.finish_and_clear();
        if written != size {
            return Err(FetchError::Size {
                file: file.into(),
                got: written,
                expected: size,
            });
        }
        Ok(())
    }

    fn bar(&self, name: &str, size: u64, at: u64) -> indicatif::ProgressBar {
        if !self.opts.progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:<60} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(name.to_string());
        bar.set_position(at);
        bar
    }
}

/// Step 4: size, then the announced hash.
fn verify(path: &Path, rel: &str, remote: &Remote) -> Result<(), FetchError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let len = f.metadata().map_err(io(path))?.len();
    if len != remote.size {
        return Err(FetchError::Size {
            file: rel.into(),
            got: len,
            expected: remote.size,
        });
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut feed = |update: &mut dyn FnMut(&[u8])| -> Result<(), FetchError> {
        loop {
            let n = f.read(&mut buf).map_err(io(path))?;
            if n == 0 {
                return Ok(());
            }
            update(&buf[..n]);
        }
    };
    let (algorithm, got, expected) = match &remote.hash {
        ContentHash::Unknown => return Ok(()),
        ContentHash::Sha256(want) => {
            let mut h = sha2::Sha256::new();
            feed(&mut |b| sha2::Digest::update(&mut h, b))?;
            ("sha256", hex::encode(sha2::Digest::finalize(h)), want)
        }
        ContentHash::GitSha1(want) => {
            let mut h = sha1::Sha1::new();
            h.update(format!("blob {len}\0").as_bytes());
            feed(&mut |b| h.update(b))?;
            ("git blob sha1", hex::encode(h.finalize()), want)
        }
    };
    if &got != expected {
        return Err(FetchError::Hash {
            file: rel.into(),
            algorithm,
            got,
            expected: expected.clone(),
        });
    }
    Ok(())
}

/// Downloads every file of the model set into `opts.out`. A repo that refuses access is
/// skipped after its first file (the others still download); every failure is in the report.
pub async fn fetch(opts: FetchOptions) -> Result<FetchReport, FetchError> {
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    let mut f = Fetcher::new(opts)?;
    let mut report = FetchReport::default();
    for repo in MODEL_SET {
        for file in repo.files {
            match f.file(repo, file).await {
                Ok(outcome) => report.files.push((repo.local_path(file), outcome)),
                Err(e @ FetchError::Gated { .. }) => {
                    report.failures.push(e);
                    break;
                }
                Err(e) => report.failures.push(e),
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_sha1_is_what_git_computes() {
        // `printf 'hello\n' | git hash-object --stdin`
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello\n").unwrap();
        let remote = Remote {
            size: 6,
            hash: ContentHash::GitSha1("ce013625030ba8dba906f756967f9e9ca394464a".into()),
        };
        verify(&p, "f", &remote).unwrap();
        let wrong = Remote {
            size: 6,
            hash: ContentHash::Sha256("00".repeat(32)),
        };
        assert!(matches!(
            verify(&p, "f", &wrong),
            Err(FetchError::Hash { .. })
        ));
        assert_eq!(unquote("W/\"ABCdef\""), "abcdef");
    }
}
