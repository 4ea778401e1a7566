//! What every trellis2 gRPC server exposes besides its own service: gRPC health checking driven
//! by the implementation's readiness, and server reflection over all trellis2 protos.

use std::future::Future;
use std::time::Duration;

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};

/// How often readiness is re-read for the health service: short enough that `/ready` follows a
/// model load within a second, long enough to cost nothing.
pub const READINESS_POLL: Duration = Duration::from_millis(500);

/// Health and reflection services for a server hosting `service_name`.
///
/// Health starts NOT_SERVING and follows `is_ready` (polled every [`READINESS_POLL`]) for both
/// `service_name` and the whole-server entry `""`. The polling task ends when the health service
/// is dropped.
pub fn support_services<F, Fut>(
    service_name: &'static str,
    is_ready: F,
) -> (
    HealthServer<impl Health>,
    ServerReflectionServer<impl ServerReflection>,
)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let (reporter, health) = tonic_health::server::health_reporter();
    let started = std::time::Instant::now();
    tokio::spawn(async move {
        let mut last = None;
        let mut cold_start_reported = false;
        loop {
            let ready = is_ready().await;
            if last != Some(ready) {
                let status = if ready {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                reporter.set_service_status(service_name, status).await;
                reporter.set_service_status("", status).await;
                tracing::info!(service = service_name, ready, "health status changed");
                if ready && !cold_start_reported {
                    // Process start (well, server setup) to first SERVING: the cold start.
                    let secs = started.elapsed().as_secs_f64();
                    tracing::info!(service = service_name, cold_start_seconds = secs, "ready");
                    cold_start_reported = true;
                }
                last = Some(ready);
            }
            tokio::time::sleep(READINESS_POLL).await;
        }
    });
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    (health, reflection)
}

/// Resolves when the process receives Ctrl-C or SIGTERM (for graceful shutdown).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The incoming-connection stream of a bound listener (lets callers bind port 0 first and learn
/// the address before serving).
pub fn incoming(listener: tokio::net::TcpListener) -> tokio_stream::wrappers::TcpListenerStream {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
}

/// A server-streamed response.
pub type EventStream<T> =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, tonic::Status>> + Send>>;

/// Runs `work` in its own task and streams what it produces: each progress report as
/// `on_progress(p)`, then the messages `on_done` makes of its result, or its error as the final
/// status. When the client goes away (the stream is dropped), the work is dropped with it, so a
/// cancelled call stops computing.
pub fn progress_stream<T, R, W, Fut>(
    work: W,
    on_progress: fn(crate::common::v1::Progress) -> T,
    on_done: impl FnOnce(R) -> Vec<T> + Send + 'static,
) -> EventStream<T>
where
    T: Send + 'static,
    R: Send + 'static,
    W: FnOnce(crate::ProgressSink) -> Fut + Send + 'static,
    Fut: Future<Output = Result<R, crate::ServiceError>> + Send + 'static,
{
    progress_stream_with_events(move |sink, _| work(sink), on_progress, on_done)
}

/// Sends messages of a [`progress_stream`] other than progress and the final ones (e.g. a
/// partial result ahead of the rest), in order with the progress events.
#[derive(Clone)]
pub struct Events<T>(tokio::sync::mpsc::UnboundedSender<Result<T, tonic::Status>>);

impl<T> Events<T> {
    pub fn send(&self, message: T) {
        let _ = self.0.send(Ok(message));
    }
}

/// [`progress_stream`] whose work can also send its own messages through [`Events`].
pub fn progress_stream_with_events<T, R, W, Fut>(
    work: W,
    on_progress: fn(crate::common::v1::Progress) -> T,
    on_done: impl FnOnce(R) -> Vec<T> + Send + 'static,
) -> EventStream<T>
where
    T: Send + 'static,
    R: Send + 'static,
    W: FnOnce(crate::ProgressSink, Events<T>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<R, crate::ServiceError>> + Send + 'static,
{
    use tracing::Instrument;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<T, tonic::Status>>();
    let progress_tx = tx.clone();
    let sink = crate::ProgressSink::new(move |p| {
        let _ = progress_tx.send(Ok(on_progress(p)));
    });
    let events = Events(tx.clone());
    let task = async move {
        tokio::select! {
            result = work(sink, events) => match result {
                Ok(value) => {
                    for message in on_done(value) {
                        if tx.send(Ok(message)).is_err() {
                            break;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                }
            },
            _ = tx.closed() => tracing::info!("client went away; computation cancelled"),
        }
    };
    tokio::spawn(task.instrument(tracing::Span::current()));
    Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
}
