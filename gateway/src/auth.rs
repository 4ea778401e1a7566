//! API tokens: generated with 256 bits of OS randomness, stored only as SHA-256 hashes (a fast
//! hash is sound for high-entropy secrets; there is nothing to brute-force), compared in
//! constant time, never logged (a masked prefix at most).
//!
//! Accepted credentials: `Authorization: Bearer <token>`, or the legacy pair
//! `Modal-Key: <token name>` + `Modal-Secret: <token>` of the Python service's clients.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

pub const TOKENS_FILE: &str = "tokens.json";
const TOKEN_PREFIX: &str = "t2_";
/// Characters of a token kept for display: the fixed prefix and 4 random characters.
const SHOWN_PREFIX_CHARS: usize = 7;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("token file {path} is corrupt: {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
    #[error("token name {0:?} must be 1-64 characters of A-Z a-z 0-9 . _ -")]
    BadName(String),
    #[error("a token named {0:?} already exists")]
    Exists(String),
    #[error("no token named {0:?}")]
    Unknown(String),
}

/// One stored token: never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredToken {
    pub name: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// The first characters of the token, e.g. `t2_AbCd…`, to recognise it in listings.
    pub prefix: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<StoredToken>,
}

/// The authenticated caller (the token's name), put in request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Stored hashes with their names, and the file's modification time they were read at.
type HashCache = (Option<std::time::SystemTime>, Vec<([u8; 32], String)>);

/// The token file under a data directory. Reads reload the file when it changed on disk, so
/// `trellis2 tokens add|revoke` take effect on a running gateway.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
    cache: Arc<RwLock<HashCache>>,
}

impl TokenStore {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(TOKENS_FILE),
            cache: Arc::new(RwLock::new((None, Vec::new()))),
        }
    }

    fn io(&self, source: std::io::Error) -> TokenError {
        TokenError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn read(&self) -> Result<TokenFile, TokenError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| TokenError::Corrupt {
                path: self.path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
            Err(e) => Err(self.io(e)),
        }
    }

    fn write(&self, file: &TokenFile) -> Result<(), TokenError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        // Write-then-rename so a running gateway never reads a half-written file.
        let tmp = self.path.with_extension("json.tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let json = serde_json::to_vec_pretty(file).expect("token file serialises");
        use std::io::Write;
        opts.open(&tmp)
            .and_then(|mut f| f.write_all(&json))
            .map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }

    /// Creates a token named `name` and returns it (the only time it is ever visible).
    pub fn add(&self, name: &str) -> Result<String, TokenError> {
        if !valid_name(name) {
            return Err(TokenError::BadName(name.to_string()));
        }
        let mut file = self.read()?;
        if file.tokens.iter().any(|t| t.name == name) {
            return Err(TokenError::Exists(name.to_string()));
        }
        let secret: [u8; 32] = rand::random();
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let created_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        file.tokens.push(StoredToken {
            name: name.to_string(),
            sha256: hex::encode(hash(&token)),
            prefix: format!("{}…", &token[..SHOWN_PREFIX_CHARS]),
            created_at,
        });
        self.write(&file)?;
        Ok(token)
    }

    pub fn list(&self) -> Result<Vec<StoredToken>, TokenError> {
        Ok(self.read()?.tokens)
    }

    pub fn revoke(&self, name: &str) -> Result<(), TokenError> {
        let mut file = self.read()?;
        let before = file.tokens.len();
        file.tokens.retain(|t| t.name != name);
        if file.tokens.len() == before {
            return Err(TokenError::Unknown(name.to_string()));
        }
        self.write(&file)
    }

    fn hashes(&self) -> Result<Vec<([u8; 32], String)>, TokenError> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        {
            let cache = self.cache.read().expect("token cache lock");
            if cache.0.is_some() && cache.0 == mtime {
                return Ok(cache.1.clone());
            }
        }
        let entries: Vec<_> = self
            .read()?
            .tokens
            .into_iter()
            .filter_map(|t| {
                let h: [u8; 32] = hex::decode(&t.sha256).ok()?.try_into().ok()?;
                Some((h, t.name))
            })
            .collect();
        *self.cache.write().expect("token cache lock") = (mtime, entries.clone());
        Ok(entries)
    }

    /// The name of the token `presented` matches (and, for the legacy pair, whose name is
    /// `expected_name`). Every stored hash is compared, in constant time each, so timing does
    /// not reveal which token or how much of it matched.
    pub fn verify(&self, presented: &str, expected_name: Option<&str>) -> Option<String> {
        let stored = self.hashes().ok()?;
        let found = find_match(&hash(presented), &stored, |a, b| a.ct_eq(b)).map(str::to_string);
        match (found, expected_name) {
            (Some(name), Some(expected)) if name != expected => None,
            (found, _) => found,
        }
    }
}

/// The name of the stored hash equal to `presented`, comparing with `eq` against every stored
/// hash without stopping at a match. Both sides are SHA-256 digests, so every comparison is of
/// 32 bytes whatever the presented token's length (nothing to return early on), and the work
/// done depends only on how many tokens are stored. `eq` is `subtle`'s constant-time equality
/// in production; tests pass a counting one.
fn find_match<'a>(
    presented: &[u8; 32],
    stored: &'a [([u8; 32], String)],
    eq: impl Fn(&[u8; 32], &[u8; 32]) -> subtle::Choice,
) -> Option<&'a str> {
    let mut found = None;
    for (hash, name) in stored {
        if bool::from(eq(hash, presented)) {
            found = Some(name.as_str());
        }
    }
    found
}

/// Masks a credential for logs: at most its first 4 characters.
pub fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}…")
}

/// Middleware guarding every authenticated route.
pub async fn require_auth(
    State(store): State<TokenStore>,
    mut req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let caller = if let Some(auth) = header("authorization") {
        match auth.strip_prefix("Bearer ").map(str::trim) {
            Some(token) if !token.is_empty() => {
                let who = store.verify(token, None);
                if who.is_none() {
                    tracing::info!(token = %mask(token), "rejected bearer token");
                }
                who.ok_or("invalid bearer token")
            }
            _ => Err("Authorization must be `Bearer <token>`"),
        }
    } else if let (Some(key), Some(secret)) = (header("modal-key"), header("modal-secret")) {
        let who = store.verify(secret, Some(key));
        if who.is_none() {
            // Masked like a secret: a client that swaps the two headers sends its token as
            // the key.
            tracing::info!(key = %mask(key), "rejected Modal-Key/Modal-Secret pair");
        }
        who.ok_or("invalid Modal-Key/Modal-Secret pair")
    } else {
        Err("missing credentials: send `Authorization: Bearer <token>`")
    };
    match caller {
        Ok(name) => {
            req.extensions_mut().insert(Caller(name));
            next.run(req).await
        }
        Err(why) => ApiError::unauthorized(why).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        let a = store.add("alice").unwrap();
        let b = store.add("bob").unwrap();
        assert!(a.starts_with("t2_") && a.len() > 40);
        assert_eq!(store.verify(&a, None).as_deref(), Some("alice"));
        assert_eq!(store.verify(&b, Some("bob")).as_deref(), Some("bob"));
        assert_eq!(store.verify(&b, Some("alice")), None);
        assert_eq!(store.verify("t2_wrong", None), None);
        assert!(matches!(store.add("alice"), Err(TokenError::Exists(_))));
        assert!(matches!(store.add("../x"), Err(TokenError::BadName(_))));
        let raw = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        assert!(
            !raw.contains(&a) && !raw.contains(&b),
            "tokens stored in clear"
        );
        let names: Vec<_> = store.list().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["alice", "bob"]);
        store.revoke("alice").unwrap();
        assert_eq!(store.verify(&a, None), None);
        assert!(matches!(store.revoke("alice"), Err(TokenError::Unknown(_))));
    }

    #[test]
    fn every_stored_token_is_compared_in_constant_time_whatever_the_input() {
        use std::cell::Cell;
        let stored: Vec<([u8; 32], String)> = ["alice", "bob", "carol"]
            .iter()
            .map(|n| (hash(&format!("t2_{n}-secret")), n.to_string()))
            .collect();
        // The first token matches at the first comparison; a 0-byte, a 1-byte, a 1 MB and a
        // matching-prefix token match nothing. Each takes exactly one 32-byte comparison per
        // stored token: no early return on a match, on a length or on a prefix.
        let long = "t".repeat(1 << 20);
        for (presented, want) in [
            ("t2_alice-secret", Some("alice")),
            ("t2_carol-secret", Some("carol")),
            ("", None),
            ("t", None),
            (long.as_str(), None),
            ("t2_alice-secre", None),
            ("t2_alice-secretX", None),
        ] {
            let calls = Cell::new(0);
            let got = find_match(&hash(presented), &stored, |a, b| {
                calls.set(calls.get() + 1);
                a.ct_eq(b)
            });
            assert_eq!(got, want, "{:?}", &presented[..presented.len().min(20)]);
            assert_eq!(calls.get(), stored.len(), "comparisons for {want:?}");
        }
    }

    #[test]
    fn masking_shows_at_most_four_characters() {
        assert_eq!(mask("t2_secretvalue"), "t2_s…");
    }
}
