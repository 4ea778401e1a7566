//! Client-side helpers: lazily connected channels and gRPC health checks.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::common::v1::ServiceInfo;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Connect timeout for upstream services: they are on the same host or cluster.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Health checks must answer quickly or count as down.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// A channel that connects on first use (so a gateway starts while its upstreams are still
/// starting) and reconnects after failures.
pub fn lazy_channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_string())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// The gRPC health of `service` on `channel`: `Ok(())` when SERVING, else why not.
pub async fn check_health(channel: Channel, service: &str) -> Result<(), String> {
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest {
        service: service.to_string(),
    });
    match tokio::time::timeout(HEALTH_TIMEOUT, call).await {
        Err(_) => Err("health check timed out".into()),
        Ok(Err(status)) => Err(format!("health check failed: {}", status.message())),
        Ok(Ok(resp)) => match resp.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            other => Err(format!("health status {}", other.as_str_name())),
        },
    }
}

/// Readiness of a remote service: gRPC health first (the source of truth for `/ready`), then
/// its self-description.
pub async fn remote_info(
    short_name: &str,
    channel: &Channel,
    grpc_name: &str,
    get_info: impl std::future::Future<Output = Result<tonic::Response<ServiceInfo>, tonic::Status>>,
) -> ServiceInfo {
    let health = check_health(channel.clone(), grpc_name).await;
    let mut info = match get_info.await {
        Ok(r) => r.into_inner(),
        Err(s) => ServiceInfo {
            service: short_name.into(),
            detail: format!("unreachable: {}", s.message()),
            ..Default::default()
        },
    };
    if let Err(why) = health {
        info.ready = false;
        if info.detail.is_empty() {
            info.detail = why;
        }
    }
    info
}

/// The service names a server lists through gRPC reflection (v1).
pub async fn reflection_services(channel: Channel) -> Result<Vec<String>, tonic::Status> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::once(req))
        .await?
        .into_inner();
    let mut names = Vec::new();
    while let Some(resp) = responses.message().await? {
        if let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response {
            names.extend(list.service.into_iter().map(|s| s.name));
        }
    }
    Ok(names)
}
