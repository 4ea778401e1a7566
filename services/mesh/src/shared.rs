//! Code every service crate shares (`services/shared/*.rs`), compiled into each crate so the
//! four stay independent of each other.

#[path = "../../shared/lane.rs"]
pub mod lane;
#[path = "../../shared/loading.rs"]
pub mod loading;
#[path = "../../shared/model_dir.rs"]
pub mod model_dir;
#[path = "../../shared/model_error.rs"]
pub mod model_error;
#[path = "../../shared/upstream.rs"]
pub mod upstream;
#[path = "../../shared/warm_up.rs"]
pub mod warm_up;
