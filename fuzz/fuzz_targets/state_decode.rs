//! The state format (`t2-state`) as the gateway opens it (`pipeline::open`: verify, parse, turn
//! into wire latents), two ways per input:
//!
//! 1. the bytes as sent: anything not signed by the key is refused before a header field is
//!    trusted (only seeds that carry a valid signature get further);
//! 2. the bytes re-signed with the key, so the parser behind the MAC is fuzzed as well (a key
//!    shared with a server that writes something else, or our own encoder's bug).
//!
//! Oracles: an accepted state seals back (`pipeline::seal`) to a state that opens to the same
//! latents, and its latents pass the mesh service's request validation.
#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use t2_gateway::pipeline::{open, seal};
use t2_proto::mesh::v1::{ExportParams, ExtractRequest, TextureFormat};

fn signed(body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&t2_fuzz::STATE_KEY).expect("any key length");
    mac.update(body);
    let mut out = body.to_vec();
    out.extend_from_slice(&mac.finalize().into_bytes());
    out
}

fn check(bytes: &[u8]) {
    let key = t2_fuzz::state_key();
    let Ok(latents) = open(bytes, &key) else {
        return;
    };
    let resealed = seal(&latents, &key).expect("an opened state seals again");
    assert_eq!(
        resealed.len(),
        bytes.len(),
        "re-sealed state has another size"
    );
    assert_eq!(
        open(&resealed, &key).expect("re-sealed state opens"),
        latents
    );
    let req = ExtractRequest {
        latents: Some(latents),
        params: Some(ExportParams {
            decimation_target: 100_000,
            texture_size: 1024,
            remesh: true,
            remesh_band: 1.0,
            remesh_project: 0.0,
            texture_format: TextureFormat::Png as i32,
        }),
        preview_video: false,
    };
    t2_svc_mesh::validate_request(&req).expect("an opened state is a valid mesh request");
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&signed(data));
});
