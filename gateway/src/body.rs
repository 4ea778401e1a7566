//! Request bodies: size limits enforced while streaming (before anything is buffered past the
//! limit), then strict JSON parsing into the envelope's `validation_error`.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Body limit of image requests: a 10 MB image is 13.4 MB as base64, plus the other fields.
pub const IMAGE_BODY_LIMIT: usize = 16 << 20;
/// Body limit of `/extract_glb`: a 49,152-token state is 13 MB, 17.8 MB as base64.
pub const STATE_BODY_LIMIT: usize = 32 << 20;

/// Reads at most `limit` bytes of `req`'s body: a declared `Content-Length` above the limit is
/// refused before reading, and a streamed body is cut off as soon as it passes the limit.
pub async fn read_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::too_large(format!("request body exceeds {limit} bytes"));
    if let Some(len) = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::validation(format!(
            "reading the request body: {e}"
        ))),
    }
}

/// Parses JSON strictly: malformed JSON, wrong types (e.g. `"false"` for a boolean) and unknown
/// fields are all `validation_error`s naming the place.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof => "malformed JSON",
            Category::Data => "invalid request",
            Category::Io => "unreadable body",
        };
        ApiError::validation(format!("{what}: {e}"))
    })
}

/// A JSON body read under the `LIMIT`-byte cap.
pub struct LimitedJson<T, const LIMIT: usize>(pub T);

impl<S, T, const LIMIT: usize> FromRequest<S> for LimitedJson<T, LIMIT>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::validation(
                "Content-Type must be application/json",
            ));
        }
        let bytes = read_limited(req, LIMIT).await?;
        Ok(Self(parse_json(&bytes)?))
    }
}
