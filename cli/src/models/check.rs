//! `trellis2 models check DIR`: which files of the model set are missing or empty, per
//! repository (naming the licence-gated ones), and whether `pipeline.json` resolves every model
//! it lists.

use std::fmt;
use std::path::{Path, PathBuf};

use super::manifest::{MODEL_SET, Repo};

/// Files of one repository that are not usable in the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoGap {
    pub repo: &'static Repo,
    /// Relative to the model directory.
    pub missing: Vec<String>,
    pub empty: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub dir: PathBuf,
    pub gaps: Vec<RepoGap>,
    /// `pipeline.json` problems (unparseable, a listed model that does not resolve).
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn is_complete(&self) -> bool {
        self.gaps.is_empty() && self.problems.is_empty()
    }
}

/// Checks `dir` against the model set.
pub fn check(dir: &Path) -> CheckReport {
    let mut gaps = Vec::new();
    for repo in MODEL_SET {
        let mut gap = RepoGap {
            repo,
            missing: vec![],
            empty: vec![],
        };
        for f in repo.files {
            let rel = repo.local_path(f);
            match std::fs::metadata(dir.join(&rel)) {
                Ok(m) if m.is_file() && m.len() > 0 => {}
                Ok(m) if m.is_file() => gap.empty.push(rel),
                _ => gap.missing.push(rel),
            }
        }
        if !gap.missing.is_empty() || !gap.empty.is_empty() {
            gaps.push(gap);
        }
    }
    let mut problems = Vec::new();
    if dir.join("pipeline.json").is_file() {
        match t2_models::config::PipelineConfig::load(dir) {
            Err(e) => problems.push(format!("pipeline.json does not load: {e}")),
            Ok(config) => {
                for key in config.args.models.keys() {
                    if let Err(e) = config.model_files(key) {
                        problems.push(format!("model `{key}`: {e}"));
                    }
                }
                if let Err(e) = config.image_cond_files() {
                    problems.push(format!("image_cond_model: {e}"));
                }
            }
        }
    }
    CheckReport {
        dir: dir.to_path_buf(),
        gaps,
        problems,
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_complete() {
            return writeln!(f, "{}: complete", self.dir.display());
        }
        writeln!(f, "{}: incomplete", self.dir.display())?;
        for g in &self.gaps {
            let gate = if g.repo.gated {
                format!(
                    " — licence-gated ({}): accept it at {} before downloading",
                    g.repo.licence,
                    g.repo.page("https://huggingface.co")
                )
            } else {
                String::new()
            };
            writeln!(f, "  {} [{}]{gate}", g.repo.id, g.repo.role)?;
            for m in &g.missing {
                writeln!(f, "    missing: {m}")?;
            }
            for m in &g.empty {
                writeln!(f, "    empty:   {m}")?;
            }
        }
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        if !self.gaps.is_empty() {
            writeln!(
                f,
                "download them with: trellis2 models fetch --out {} --token <Hugging Face token>",
                self.dir.display()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_exactly_what_is_missing_and_names_gated_repos() {
        let dir = tempfile::tempdir().unwrap();
        t2_svc_flow::shared::model_dir::write_demo_set(dir.path()).unwrap();
        assert!(check(dir.path()).is_complete(), "{}", check(dir.path()));

        std::fs::remove_file(dir.path().join("briaai/RMBG-2.0/onnx/model.onnx")).unwrap();
        std::fs::write(
            dir.path()
                .join("microsoft/TRELLIS-image-large/ckpts/ss_dec_conv3d_16l8_fp16.safetensors"),
            b"",
        )
        .unwrap();
        let r = check(dir.path());
        assert!(!r.is_complete());
        let text = r.to_string();
        assert!(
            text.contains("briaai/RMBG-2.0")
                && text.contains("licence-gated")
                && text.contains("missing: briaai/RMBG-2.0/onnx/model.onnx"),
            "{text}"
        );
        assert!(
            text.contains(
                "empty:   microsoft/TRELLIS-image-large/ckpts/ss_dec_conv3d_16l8_fp16.safetensors"
            ),
            "{text}"
        );
        assert_eq!(r.gaps.len(), 2, "{text}");

        let empty = tempfile::tempdir().unwrap();
        let r = check(empty.path());
        let missing: usize = r.gaps.iter().map(|g| g.missing.len()).sum();
        assert_eq!(missing, 20, "{r}");
    }
}
