//! Model directories: the real set's manifest, `models check`, `models fetch` (Hugging Face,
//! resumable, verified) and the demo set (`models demo`, `--models demo`).

pub mod check;
pub mod fetch;
pub mod manifest;

pub use t2_svc_flow::shared::model_dir::{
    DEMO, ModelDirError, RMBG_ONNX, ensure_demo, is_current_demo, write_demo_set,
};
