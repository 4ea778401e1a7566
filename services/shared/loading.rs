//! Model loading at service start: the server answers (health NOT_SERVING, `GetInfo` saying
//! "loading") while the weights load on their own thread, then turns SERVING with the measured
//! load time, or stays NOT_SERVING with the load error as its detail.
//!
//! (Shared source: included by each service crate with `#[path]`.)

use std::sync::{Arc, RwLock};
use std::time::Instant;

use t2_proto::ServiceError;

enum State<T> {
    Loading { since: Instant },
    Ready { value: Arc<T>, seconds: f64 },
    Failed(String),
}

/// Loaded models of type `T`, or why they are not there yet.
pub struct Loaded<T> {
    state: RwLock<State<T>>,
}

/// What `GetInfo` reports about loading.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadStatus {
    pub ready: bool,
    pub detail: String,
    pub load_time_seconds: f64,
}

impl<T: Send + Sync + 'static> Loaded<T> {
    /// Already loaded (in-process use after a synchronous load).
    pub fn ready(value: T, seconds: f64) -> Arc<Self> {
        Arc::new(Self {
            state: RwLock::new(State::Ready {
                value: Arc::new(value),
                seconds,
            }),
        })
    }

    /// Starts `load` on its own thread and returns at once.
    pub fn spawn<F>(what: &'static str, load: F) -> Arc<Self>
    where
        F: FnOnce() -> Result<T, String> + Send + 'static,
    {
        let me = Arc::new(Self {
            state: RwLock::new(State::Loading {
                since: Instant::now(),
            }),
        });
        let target = me.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("load-{what}"))
            .spawn(move || {
                let t = Instant::now();
                let next = match load() {
                    Ok(value) => {
                        let seconds = t.elapsed().as_secs_f64();
                        tracing::info!(models = what, load_time_seconds = seconds, "models loaded");
                        State::Ready {
                            value: Arc::new(value),
                            seconds,
                        }
                    }
                    Err(e) => {
                        tracing::error!(models = what, error = %e, "model loading failed");
                        State::Failed(e)
                    }
                };
                *target.state.write().unwrap_or_else(|p| p.into_inner()) = next;
            });
        if let Err(e) = spawned {
            *me.state.write().unwrap_or_else(|p| p.into_inner()) =
                State::Failed(format!("cannot start the loading thread: {e}"));
        }
        me
    }

    /// The models, or `unavailable` saying why not.
    pub fn get(&self) -> Result<Arc<T>, ServiceError> {
        match &*self.state.read().unwrap_or_else(|p| p.into_inner()) {
            State::Ready { value, .. } => Ok(value.clone()),
            State::Loading { since } => Err(ServiceError::Unavailable(format!(
                "models are still loading ({:.0} s so far)",
                since.elapsed().as_secs_f64()
            ))),
            State::Failed(e) => Err(ServiceError::Unavailable(format!(
                "model loading failed: {e}"
            ))),
        }
    }

    pub fn status(&self) -> LoadStatus {
        match &*self.state.read().unwrap_or_else(|p| p.into_inner()) {
            State::Ready { seconds, .. } => LoadStatus {
                ready: true,
                detail: String::new(),
                load_time_seconds: *seconds,
            },
            State::Loading { since } => LoadStatus {
                ready: false,
                detail: format!(
                    "loading models ({:.0} s so far)",
                    since.elapsed().as_secs_f64()
                ),
                load_time_seconds: 0.0,
            },
            State::Failed(e) => LoadStatus {
                ready: false,
                detail: format!("model loading failed: {e}"),
                load_time_seconds: 0.0,
            },
        }
    }
}
