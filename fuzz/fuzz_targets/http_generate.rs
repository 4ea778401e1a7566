//! `POST /generate` with the fuzz input as the JSON body, through the gateway's whole router
//! (auth, body limit, strict JSON, field validation, base64 and image checks) with
//! `tower::ServiceExt::oneshot`. A request that passes every check reaches the upstream, which is
//! not built here: 503 `unavailable`. Any other 5xx, a missing envelope or a panic is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        t2_fuzz::gateway();
    },
    |data: &[u8]| {
    let reply = t2_fuzz::gateway().post_json("/generate", data);
    t2_fuzz::check_api_reply("POST /generate", data, &reply);
});
