"""Schemathesis hooks of scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

`t2_server_error` replaces the built-in `not_a_server_error` with the product's exact rule
(product.md section 2): no 5xx for any input, except 503 `unavailable` while the compute is not
wired into the gateway under test (T2_COMPUTE_WIRED=0, decided by the script from /ready) and
429/503 `overloaded` (admission control, with Retry-After).

`t2_error_envelope`: every 4xx/5xx carries the envelope {"error": {"code", "message",
"request_id"}} with the code that belongs to the status, and the same request id in the
`x-request-id` header.
"""

import json
import os

import schemathesis

COMPUTE_WIRED = os.environ.get("T2_COMPUTE_WIRED", "1") == "1"

CODES_BY_STATUS = {
    400: {"validation_error"},
    401: {"unauthorized"},
    404: {"not_found"},
    # A method the path does not serve (Schemathesis sends e.g. TRACE): the gateway answers
    # 405 with `Allow` and the envelope's validation_error (gateway/tests/http_api.rs).
    405: {"validation_error"},
    413: {"payload_too_large"},
    429: {"overloaded"},
    499: {"cancelled"},
    500: {"generation_error", "rendering_error", "extraction_error", "internal_error"},
    503: {"unavailable", "overloaded", "cuda_oom"},
    504: {"timeout"},
}


def _envelope(response):
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"error body is not JSON: {e}: {response.content[:200]!r}")
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        raise AssertionError(f"no error envelope: {body!r}"[:400])
    return err


@schemathesis.check
def t2_server_error(ctx, response, case):
    status = response.status_code
    if status < 500:
        return None
    if status == 503 and response.headers.get("content-type", [""])[0].startswith("application/json"):
        body = json.loads(response.content)
        # /ready answers 503 with its own body (which upstream is not ready): an answer, not
        # an error, and documented as such.
        if isinstance(body, dict) and "ready" in body and case.operation.path == "/ready":
            return None
        code = _envelope(response).get("code")
        if code == "overloaded":
            return None
        if code == "unavailable" and not COMPUTE_WIRED:
            return None
    raise AssertionError(f"server error {status}: {response.content[:300]!r}")


@schemathesis.check
def t2_error_envelope(ctx, response, case):
    status = response.status_code
    if status < 400 or (status == 503 and case.operation.path == "/ready"):
        return None
    err = _envelope(response)
    code = err.get("code")
    allowed = CODES_BY_STATUS.get(status)
    if allowed is None or code not in allowed:
        raise AssertionError(f"status {status} with error code {code!r}")
    if not err.get("message"):
        raise AssertionError("empty error message")
    rid = err.get("request_id")
    header = response.headers.get("x-request-id", [None])[0]
    if not rid or rid != header:
        raise AssertionError(f"request_id {rid!r} != x-request-id {header!r}")
    return None
