//! `POST /extract_glb` with the fuzz input as the JSON body, through the whole router: export
//! options, base64, the signed state (the seeds carry states signed with the fuzz gateway's key,
//! so mutations of the other fields still reach the upstream call). Same oracle as
//! `http_generate`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        t2_fuzz::gateway();
    },
    |data: &[u8]| {
    let reply = t2_fuzz::gateway().post_json("/extract_glb", data);
    t2_fuzz::check_api_reply("POST /extract_glb", data, &reply);
});
