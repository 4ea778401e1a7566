//! HTTP handlers, each documented for the OpenAPI document at `/openapi.json`.

pub mod generate;
pub mod jobs;
pub mod system;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Document root; paths are added by the router from the handlers themselves
/// (`utoipa_axum::routes!`), so the document cannot drift from what is served.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "trellis2 gateway",
        description = "Image to textured 3D asset (GLB) with TRELLIS.2. Errors use the envelope \
                       {\"error\": {\"code\", \"message\", \"request_id\"}}; every response carries \
                       `x-request-id` and `traceparent`."
    ),
    modifiers(&Security),
    security(("bearer" = []), ("modal_key" = [], "modal_secret" = [])),
    components(schemas(crate::error::ErrorEnvelope))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "modal_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Modal-Key"))),
        );
        components.add_security_scheme(
            "modal_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Modal-Secret"))),
        );
    }
}
