//! Where client credentials come from, in order: command-line flags, `TRELLIS2_API_KEY`, the
//! legacy `TRELLIS2_MODAL_KEY` + `TRELLIS2_MODAL_SECRET`, then a secrets file of `KEY=VALUE`
//! lines with the same names.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Bearer(String),
    ModalPair { key: String, secret: String },
    None,
}

#[derive(Debug, Clone, Default)]
pub struct CredentialFlags {
    pub token: Option<String>,
    pub modal_key: Option<String>,
    pub modal_secret: Option<String>,
    pub secrets_file: Option<PathBuf>,
}

/// `~/.config/trellis2/credentials`.
pub fn default_secrets_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/trellis2/credentials"))
}

fn read_secrets(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves credentials; `env` reads a variable (the process environment in production).
pub fn resolve(flags: &CredentialFlags, env: &dyn Fn(&str) -> Option<String>) -> Credentials {
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    if let Some(t) = nonempty(flags.token.clone()) {
        return Credentials::Bearer(t);
    }
    if let (Some(key), Some(secret)) = (
        nonempty(flags.modal_key.clone()),
        nonempty(flags.modal_secret.clone()),
    ) {
        return Credentials::ModalPair { key, secret };
    }
    if let Some(t) = nonempty(env("TRELLIS2_API_KEY")) {
        return Credentials::Bearer(t);
    }
    if let (Some(key), Some(secret)) = (
        nonempty(env("TRELLIS2_MODAL_KEY")),
        nonempty(env("TRELLIS2_MODAL_SECRET")),
    ) {
        return Credentials::ModalPair { key, secret };
    }
    let file = flags.secrets_file.clone().or_else(default_secrets_file);
    if let Some(file) = file {
        let entries = read_secrets(&file);
        let get = |k: &str| nonempty(entries.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
        if let Some(t) = get("TRELLIS2_API_KEY") {
            return Credentials::Bearer(t);
        }
        if let (Some(key), Some(secret)) = (get("TRELLIS2_MODAL_KEY"), get("TRELLIS2_MODAL_SECRET"))
        {
            return Credentials::ModalPair { key, secret };
        }
    }
    Credentials::None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_flags_env_legacy_env_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, "# comment\nTRELLIS2_API_KEY = \"from-file\"\n").unwrap();
        let env_all = |k: &str| match k {
            "TRELLIS2_API_KEY" => Some("from-env".to_string()),
            "TRELLIS2_MODAL_KEY" => Some("k".to_string()),
            "TRELLIS2_MODAL_SECRET" => Some("s".to_string()),
            _ => None,
        };
        let env_legacy = |k: &str| match k {
            "TRELLIS2_MODAL_KEY" => Some("k".to_string()),
            "TRELLIS2_MODAL_SECRET" => Some("s".to_string()),
            _ => None,
        };
        let none = |_: &str| None;
        let mut flags = CredentialFlags {
            token: Some("from-flag".into()),
            secrets_file: Some(file.clone()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&flags, &env_all),
            Credentials::Bearer("from-flag".into())
        );
        flags.token = None;
        assert_eq!(
            resolve(&flags, &env_all),
            Credentials::Bearer("from-env".into())
        );
        assert_eq!(
            resolve(&flags, &env_legacy),
            Credentials::ModalPair {
                key: "k".into(),
                secret: "s".into()
            }
        );
        assert_eq!(
            resolve(&flags, &none),
            Credentials::Bearer("from-file".into())
        );
        flags.secrets_file = Some(dir.path().join("missing"));
        assert_eq!(resolve(&flags, &none), Credentials::None);
        flags.modal_key = Some("fk".into());
        flags.modal_secret = Some("fs".into());
        assert_eq!(
            resolve(&flags, &env_all),
            Credentials::ModalPair {
                key: "fk".into(),
                secret: "fs".into()
            }
        );
    }
}
