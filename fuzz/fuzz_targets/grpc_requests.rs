//! Protobuf requests into each service's tonic server (`grpc_service(...)`, the exact service the
//! binaries host), called with `tower::ServiceExt::oneshot` on an HTTP/2-shaped request: tonic's
//! framing and prost decoding, then the adapter's request validation. The implementations
//! behind the adapters are the not-built ones, so a request that passes validation answers
//! UNIMPLEMENTED; the compute's own decoding of images is `image_decode`'s target.
//!
//! Input: byte 0 picks the service (bits 0-1) and whether the rest is wrapped in a well-formed
//! gRPC frame (bit 2 clear) or sent raw as the body (bit 2 set: framing itself is fuzzed).
//!
//! Oracle for framed input, decided independently with prost and the services' validators:
//! undecodable protobuf → INTERNAL (tonic's mapping of a decode error); decodable but invalid →
//! INVALID_ARGUMENT; valid → UNIMPLEMENTED. Raw input must not panic and must get a status.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use t2_fuzz::{grpc_frame, grpc_status};
use t2_proto::dinov3::v1::FeaturesRequest;
use t2_proto::flow::v1::GenerateRequest;
use t2_proto::mesh::v1::ExtractRequest;
use t2_proto::rmbg::v1::RemoveBackgroundRequest;
use tonic::Code;

/// What the adapter should answer for a decoded message.
fn expected(valid: bool) -> Code {
    if valid {
        Code::Unimplemented
    } else {
        Code::InvalidArgument
    }
}

fn decoded<M: Message + Default>(bytes: &[u8], valid: impl FnOnce(&M) -> bool) -> Code {
    match M::decode(bytes) {
        Err(_) => Code::Internal,
        Ok(m) => expected(valid(&m)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let framed = selector & 4 == 0;
    let body = if framed {
        grpc_frame(message)
    } else {
        bytes::Bytes::copy_from_slice(message)
    };
    let (got, want) = match selector & 3 {
        0 => (
            grpc_status(
                t2_svc_rmbg::grpc_service(Arc::new(t2_svc_rmbg::NotBuilt)),
                "/trellis2.rmbg.v1.BackgroundRemoval/RemoveBackground",
                body,
            ),
            decoded(message, |m: &RemoveBackgroundRequest| {
                m.image.as_ref().is_some_and(|i| !i.data.is_empty())
            }),
        ),
        1 => (
            grpc_status(
                t2_svc_dinov3::grpc_service(Arc::new(t2_svc_dinov3::NotBuilt)),
                "/trellis2.dinov3.v1.Dinov3/Features",
                body,
            ),
            decoded(message, |m: &FeaturesRequest| {
                t2_svc_dinov3::validate_request(&m.image, &m.resolutions).is_ok()
            }),
        ),
        2 => (
            grpc_status(
                t2_svc_flow::grpc_service(Arc::new(t2_svc_flow::NotBuilt)),
                "/trellis2.flow.v1.Flow/Generate",
                body,
            ),
            decoded(message, |m: &GenerateRequest| {
                t2_svc_flow::validate_request(m).is_ok()
            }),
        ),
        _ => (
            grpc_status(
                t2_svc_mesh::grpc_service(Arc::new(t2_svc_mesh::NotBuilt)),
                "/trellis2.mesh.v1.Mesh/Extract",
                body,
            ),
            decoded(message, |m: &ExtractRequest| {
                t2_svc_mesh::validate_request(m).is_ok()
            }),
        ),
    };
    let got = got.expect("every gRPC answer carries a status");
    if framed {
        assert_eq!(
            got,
            want,
            "service {}: {} bytes of protobuf",
            selector & 3,
            message.len()
        );
    }
});
