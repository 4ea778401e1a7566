//! The gateway's own image gate (`t2_gateway::image_check`): base64 (with `data:` URIs and
//! whitespace) and the header-first, allocation-limited decode of PNG/JPEG/WebP. Bombs,
//! truncated files and lying headers must end in `validation_error` or `payload_too_large`, and an
//! accepted image must respect the size limits.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use t2_gateway::image_check::{MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, check_image, decode_base64};
use t2_proto::ErrorCode;

fn check(
    what: &str,
    r: Result<t2_gateway::image_check::CheckedImage, t2_gateway::error::ApiError>,
) {
    match r {
        Ok(img) => assert!(
            (1..=MAX_IMAGE_SIDE).contains(&img.width) && (1..=MAX_IMAGE_SIDE).contains(&img.height),
            "{what}: accepted a {}x{} image",
            img.width,
            img.height
        ),
        Err(e) => assert!(
            matches!(
                e.code,
                ErrorCode::ValidationError | ErrorCode::PayloadTooLarge
            ),
            "{what}: {e:?}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    // Raw bytes as the decoded image.
    check("raw", check_image(Bytes::copy_from_slice(data)));
    // The same bytes as the base64 text of the `image` field.
    if let Ok(text) = std::str::from_utf8(data) {
        match decode_base64("image", text, MAX_IMAGE_BYTES) {
            Ok(bytes) => {
                assert!(bytes.len() <= MAX_IMAGE_BYTES);
                check("base64", check_image(bytes));
            }
            Err(e) => assert!(
                matches!(
                    e.code,
                    ErrorCode::ValidationError | ErrorCode::PayloadTooLarge
                ),
                "base64: {e:?}"
            ),
        }
    }
});
