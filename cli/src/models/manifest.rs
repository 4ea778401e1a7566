//! The files of the real model set and where they sit in a model directory: TRELLIS.2-4B's
//! files at the root, every other Hugging Face repo under `<org>/<repo>/` (the layout
//! `pipeline.json`'s paths and `t2-models` expect).

/// One Hugging Face repository's part of the model set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repo {
    /// `org/name` on the Hub.
    pub id: &'static str,
    /// Folder inside the model directory ("" = the root).
    pub dest: &'static str,
    /// Paths inside the repo.
    pub files: &'static [&'static str],
    /// True when the Hub serves the files only to accounts that accepted the licence.
    pub gated: bool,
    pub licence: &'static str,
    /// What the service uses it for.
    pub role: &'static str,
}

impl Repo {
    /// Where `file` of this repo goes, relative to the model directory.
    pub fn local_path(&self, file: &str) -> String {
        if self.dest.is_empty() {
            file.to_string()
        } else {
            format!("{}/{file}", self.dest)
        }
    }

    pub fn page(&self, endpoint: &str) -> String {
        format!("{}/{}", endpoint.trim_end_matches('/'), self.id)
    }
}

/// The revision downloaded (the repos' default branch).
pub const REVISION: &str = "main";

/// TRELLIS.2-4B and the three models its `pipeline.json` pulls from other repos.
pub const MODEL_SET: &[Repo] = &[
    Repo {
        id: "microsoft/TRELLIS.2-4B",
        dest: "",
        files: &[
            "pipeline.json",
            "ckpts/ss_flow_img_dit_1_3B_64_bf16.json",
            "ckpts/ss_flow_img_dit_1_3B_64_bf16.safetensors",
            "ckpts/slat_flow_img2shape_dit_1_3B_512_bf16.json",
            "ckpts/slat_flow_img2shape_dit_1_3B_512_bf16.safetensors",
            "ckpts/slat_flow_img2shape_dit_1_3B_1024_bf16.json",
            "ckpts/slat_flow_img2shape_dit_1_3B_1024_bf16.safetensors",
            "ckpts/slat_flow_imgshape2tex_dit_1_3B_512_bf16.json",
            "ckpts/slat_flow_imgshape2tex_dit_1_3B_512_bf16.safetensors",
            "ckpts/slat_flow_imgshape2tex_dit_1_3B_1024_bf16.json",
            "ckpts/slat_flow_imgshape2tex_dit_1_3B_1024_bf16.safetensors",
            "ckpts/shape_dec_next_dc_f16c32_fp16.json",
            "ckpts/shape_dec_next_dc_f16c32_fp16.safetensors",
            "ckpts/tex_dec_next_dc_f16c32_fp16.json",
            "ckpts/tex_dec_next_dc_f16c32_fp16.safetensors",
        ],
        gated: true,
        licence: "MIT (access is gated on the Hub: accept the terms on its page)",
        role: "flows and SC-VAE decoders (flow, mesh services)",
    },
    Repo {
        id: "microsoft/TRELLIS-image-large",
        dest: "microsoft/TRELLIS-image-large",
        files: &[
            "ckpts/ss_dec_conv3d_16l8_fp16.json",
            "ckpts/ss_dec_conv3d_16l8_fp16.safetensors",
        ],
        gated: false,
        licence: "MIT",
        role: "sparse-structure decoder (flow service)",
    },
    Repo {
        id: "facebook/dinov3-vitl16-pretrain-lvd1689m",
        dest: "facebook/dinov3-vitl16-pretrain-lvd1689m",
        files: &["config.json", "model.safetensors"],
        gated: true,
        licence: "DINOv3 License (gated: accept it on the model page)",
        role: "image features (dinov3 service)",
    },
    Repo {
        id: "briaai/RMBG-2.0",
        dest: "briaai/RMBG-2.0",
        files: &["onnx/model.onnx"],
        gated: true,
        licence: "CC BY-NC 4.0, non-commercial (gated: accept it on the model page)",
        role: "background removal (rmbg service)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest is the layout the services read: the demo set (same layout) has every
    /// manifest file, and the RMBG path is the one the rmbg service opens.
    #[test]
    fn the_manifest_is_the_layout_the_services_read() {
        let dir = tempfile::tempdir().unwrap();
        t2_svc_flow::shared::model_dir::write_demo_set(dir.path()).unwrap();
        for repo in MODEL_SET {
            for f in repo.files {
                let p = dir.path().join(repo.local_path(f));
                assert!(p.is_file(), "{} missing from the demo set", p.display());
            }
        }
        assert_eq!(
            MODEL_SET[3].local_path(MODEL_SET[3].files[0]),
            t2_svc_flow::shared::model_dir::RMBG_ONNX
        );
    }
}
