#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/corpus/<target>/ (standard library only).

Seeds are small, valid-or-nearly-valid examples of each input kind, plus the classic hostile
ones (decompression bombs, truncations, lying headers), so libFuzzer starts next to every
branch that matters instead of having to find the formats from nothing. Regression inputs of
crashes found while fuzzing are added by hand as `regress-*` files and never rewritten here.

    python3 fuzz/make_seeds.py            # from the repository root

Inputs read: image fixtures of crates/imageops/tests/fixtures and the ONNX fixtures of
crates/birefnet/tests/fixtures; for model_config, the demo model set the model_config target
writes to $TMPDIR/t2-fuzz-demo-models-v1 on its first run (seeds are skipped if absent).
"""

import base64
import hashlib
import hmac
import json
import os
import struct
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
IMAGE_FIXTURES = os.path.join(ROOT, "crates", "imageops", "tests", "fixtures")
ONNX_FIXTURES = os.path.join(ROOT, "crates", "birefnet", "tests", "fixtures")
# Must equal t2_fuzz::STATE_KEY (fuzz/src/lib.rs).
STATE_KEY = bytes([0x5A]) * 32
DEMO = os.path.join(tempfile.gettempdir(), "t2-fuzz-demo-models-v1")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fixture(name):
    with open(os.path.join(IMAGE_FIXTURES, name), "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------
def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width, height, color_type, depth=8, rows=None, extra=b""):
    """A PNG with filter-0 rows (`rows` defaults to zeros) and optional chunks before IDAT."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    stride = (width * channels * depth + 7) // 8
    if rows is None:
        raw = b"".join(b"\x00" + bytes(stride) for _ in range(height))
    else:
        raw = rows
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + extra
        + png_chunk(b"IDAT", zlib.compress(raw, 9))
        + png_chunk(b"IEND", b"")
    )


def rgba_png(width, height, alpha):
    rows = b"".join(
        b"\x00" + b"".join(bytes([x * 30 % 256, y * 40 % 256, 90, alpha(x, y)]) for x in range(width))
        for y in range(height)
    )
    return png(width, height, 6, rows=rows)


SMALL_RGBA = rgba_png(8, 6, lambda x, y: 255 if 2 <= x <= 5 and 1 <= y <= 4 else 0)
SMALL_RGB = png(7, 5, 2, rows=b"".join(b"\x00" + bytes(range(y, y + 21)) for y in range(5)))


def jpeg_with_size(jpeg, width, height):
    """Rewrites the dimensions in the first SOFn segment."""
    i = 2
    while i + 4 < len(jpeg):
        if jpeg[i] != 0xFF:
            break
        marker = jpeg[i + 1]
        length = struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return jpeg[: i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9 :]
        i += 2 + length
    raise ValueError("no SOF segment")


def webp_vp8x(width, height, payload=b""):
    """A VP8X header announcing a canvas of width x height (what a bomb lies about)."""
    body = bytes([0x10, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(body)) + body + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def images():
    """(name, bytes) of every image seed."""
    out = []
    for name in [
        "src_bilevel_29x31.png",
        "src_gray16_27x21.png",
        "src_la_23x19.png",
        "src_palette_61x47.png",
        "src_rgba16_19x17.png",
        "src_gray_37x29.jpg",
        "src_ycbcr420_odd_67x43_q30.jpg",
        "src_progressive420_59x45.jpg",
        "src_cmyk_45x33.jpg",
        "src_adobe_rgb_31x23.jpg",
        "src_rgb_61x47_lossy.webp",
        "src_rgba_53x37_lossless.webp",
    ]:
        out.append((name, fixture(name)))
    out.append(("small_rgba_alpha.png", SMALL_RGBA))
    out.append(("small_rgb.png", SMALL_RGB))
    # Truncations: mid-data, and right after the header.
    for name in ["src_ycbcr420_odd_67x43_q30.jpg", "src_progressive420_59x45.jpg", "src_palette_61x47.png",
                 "src_rgb_61x47_lossy.webp"]:
        data = fixture(name)
        out.append(("trunc_half_" + name, data[: len(data) // 2]))
        out.append(("trunc_head_" + name, data[:40]))
    # Bombs: headers that announce more than the limits (must be refused before decoding) and
    # one at the limit's edge.
    out.append(("bomb_png_100000x100000.png", png(100000, 100000, 0, rows=b"\x00" * 64)))
    out.append(("bomb_png_4097x1.png", png(4097, 1, 0)))
    out.append(("bomb_png_1x4097.png", png(1, 4097, 0)))
    out.append(("lying_png_3000x3000_short_idat.png", png(3000, 3000, 0, rows=b"\x00" * 64)))
    out.append(("zero_png_0x0.png", png(0, 0, 0, rows=b"")))
    out.append(("bomb_jpeg_65500x65500.jpg", jpeg_with_size(fixture("src_gray_37x29.jpg"), 65500, 65500)))
    out.append(("bomb_jpeg_4096x4096.jpg", jpeg_with_size(fixture("src_gray_37x29.jpg"), 4096, 4096)))
    out.append(("bomb_webp_16384x16384.webp", webp_vp8x(16384, 16384)))
    out.append(("lying_png_idat_short.png", png(64, 64, 2, rows=b"\x00" * 10)))
    return out


# ---------------------------------------------------------------------------------------------
# State format (crates/state)
# ---------------------------------------------------------------------------------------------
def state_body(model_id, resolution, coords, shape_c, shape, tex_c, tex):
    n = len(coords) // 4
    m = model_id.encode()
    head = b"T2STATE\x00" + struct.pack("<HHIIHH", 1, len(m), resolution, n, shape_c, tex_c) + m
    head += b"\x00" * ((-len(head)) % 4)
    return (
        head
        + struct.pack("<%di" % len(coords), *coords)
        + struct.pack("<%df" % len(shape), *shape)
        + struct.pack("<%df" % len(tex), *tex)
    )


def signed(body):
    return body + hmac.new(STATE_KEY, body, hashlib.sha256).digest()


STATE_BODIES = {
    "two_tokens": state_body("demo", 512, [0, 1, 2, 3, 0, 4, 5, 6], 2, [0.5, -1.0, 2.0, 0.0], 1, [1.0, -2.0]),
    "empty": state_body("", 1024, [], 0, [], 0, []),
    "odd_model_id": state_body("m\u00e9", 1536, [0, 9, 9, 9], 1, [3.25], 3, [1.0, 2.0, 3.0]),
}


def states():
    out = []
    for name, body in STATE_BODIES.items():
        out.append(("signed_" + name, signed(body)))
        out.append(("body_" + name, body))
    body = STATE_BODIES["two_tokens"]
    tampered = bytearray(signed(body))
    tampered[30] ^= 1
    out.append(("tampered", bytes(tampered)))
    out.append(("bad_version", signed(body[:8] + b"\x02\x00" + body[10:])))
    out.append(("short", b"T2STATE\x00\x01\x00"))
    return out


# ---------------------------------------------------------------------------------------------
# HTTP JSON bodies
# ---------------------------------------------------------------------------------------------
def b64(data):
    return base64.b64encode(data).decode()


def generate_bodies():
    img = b64(SMALL_RGBA)
    full = {
        "image": img, "seed": 7, "pipeline_type": "512",
        "ss_sampling_steps": 12, "ss_guidance_strength": 7.5, "ss_guidance_rescale": 0.7,
        "ss_guidance_interval": [0.6, 1.0], "ss_rescale_t": 5.0,
        "shape_slat_sampling_steps": 12, "shape_slat_guidance_strength": 7.5,
        "shape_slat_guidance_rescale": 0.5, "shape_slat_guidance_interval": [0.6, 1.0],
        "shape_slat_rescale_t": 3.0,
        "tex_slat_sampling_steps": 12, "tex_slat_guidance_strength": 1.0,
        "tex_slat_guidance_rescale": 0.0, "tex_slat_guidance_interval": [0.6, 0.9],
        "tex_slat_rescale_t": 3.0, "max_num_tokens": 49152, "preview_video": False,
    }
    return [
        ("minimal.json", json.dumps({"image": img})),
        ("all_fields.json", json.dumps(full)),
        ("data_uri.json", json.dumps({"image": "data:image/png;base64," + b64(SMALL_RGB), "pipeline_type": "1536_cascade"})),
        ("jpeg.json", json.dumps({"image": b64(fixture("src_gray_37x29.jpg"))})),
        ("webp.json", json.dumps({"image": b64(fixture("src_rgba_53x37_lossless.webp"))})),
        ("bomb.json", json.dumps({"image": b64(png(100000, 100000, 0, rows=b"\x00" * 64))})),
        ("string_bool.json", json.dumps({"image": img, "preview_video": "false"})),
        ("unknown_field.json", json.dumps({"image": img, "nope": 1})),
        ("bad_ranges.json", json.dumps({"image": img, "ss_sampling_steps": 0, "ss_guidance_interval": [1.0, 0.2],
                                         "pipeline_type": "2048", "max_num_tokens": 1})),
        ("export_not_allowed.json", json.dumps({"image": img, "export": {"texture_size": 512}})),
        ("wrapped_base64.json", json.dumps({"image": img[:10] + "\n" + img[10:]})),
        ("malformed.json", '{"image": "AAAA", '),
        ("not_object.json", "[1, 2, 3]"),
    ]


def extract_bodies():
    state = b64(signed(STATE_BODIES["two_tokens"]))
    return [
        ("minimal.json", json.dumps({"state": state})),
        ("all_fields.json", json.dumps({"state": state, "decimation_target": 100000, "texture_size": 1024,
                                         "remesh": False, "remesh_band": 1.0, "remesh_project": 0.0,
                                         "texture_format": "webp"})),
        ("empty_state.json", json.dumps({"state": b64(signed(STATE_BODIES["empty"]))})),
        ("tampered.json", json.dumps({"state": b64(dict(states())["tampered"])})),
        ("bad_options.json", json.dumps({"state": state, "decimation_target": 10, "texture_size": 333,
                                          "texture_format": "gif", "remesh": "true"})),
        ("not_base64.json", json.dumps({"state": "!!!"})),
        ("unknown_field.json", json.dumps({"state": state, "glb": 1})),
    ]


# ---------------------------------------------------------------------------------------------
# Protobuf (hand-encoded: proto3 wire format)
# ---------------------------------------------------------------------------------------------
def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 2:
        return key + varint(len(payload)) + payload
    if wire == 5:
        return key + struct.pack("<f", payload)
    raise ValueError(wire)


def image_msg(data, media="image/png"):
    return field(1, 2, data) + field(2, 2, media.encode())


def dense(dtype, shape, data):
    packed = b"".join(varint(d) for d in shape)
    return field(1, 0, dtype) + field(2, 2, packed) + field(3, 2, data)


def sampler(steps=12, gs=7.5, rescale=0.7, start=0.6, end=1.0, rt=5.0):
    return (field(1, 0, steps) + field(2, 5, gs) + field(3, 5, rescale) + field(4, 5, start)
            + field(5, 5, end) + field(6, 5, rt))


def grpc_requests():
    """Selector byte (service in bits 0-1, bit 2 = raw body) + message."""
    rmbg, dino, flow, mesh = 0, 1, 2, 3
    f32 = lambda *v: struct.pack("<%df" % len(v), *v)
    cond = dense(1, [1, 2, 2], f32(1, 2, 3, 4))
    gen = (field(1, 2, cond) + field(2, 2, cond) + field(3, 0, 42) + field(4, 0, 3)
           + field(5, 2, sampler()) + field(6, 2, sampler(gs=7.5, rescale=0.5, rt=3.0))
           + field(7, 2, sampler(gs=1.0, rescale=0.0, end=0.9, rt=3.0)) + field(8, 0, 49152))
    coords = dense(4, [2, 4], struct.pack("<8i", 0, 1, 2, 3, 0, 4, 5, 6))
    latents = (field(1, 2, b"demo") + field(2, 0, 512) + field(3, 2, coords)
               + field(4, 2, dense(1, [2, 1], f32(0.5, 1.5))) + field(5, 2, dense(1, [2, 2], f32(1, 2, 3, 4))))
    params = (field(1, 0, 100000) + field(2, 0, 1024) + field(3, 0, 1) + field(4, 5, 1.0)
              + field(6, 0, 1))
    extract = field(1, 2, latents) + field(2, 2, params) + field(3, 0, 1)
    seeds = [
        ("rmbg_valid", rmbg, field(1, 2, image_msg(SMALL_RGB))),
        ("rmbg_empty", rmbg, b""),
        ("dinov3_valid", dino, field(1, 2, image_msg(SMALL_RGB)) + field(2, 2, varint(512) + varint(1024))),
        ("dinov3_twice", dino, field(1, 2, image_msg(SMALL_RGB)) + field(2, 2, varint(512) + varint(512))),
        ("dinov3_bad_res", dino, field(1, 2, image_msg(b"x")) + field(2, 0, 333)),
        ("flow_valid", flow, gen),
        ("flow_no_cond", flow, field(4, 0, 1) + field(8, 0, 49152)),
        ("flow_overflow_shape", flow, field(1, 2, dense(1, [2**63, 2**63, 4], b"")) + field(4, 0, 1)),
        ("flow_bad_enum", flow, gen + field(4, 0, 99)),
        ("mesh_valid", mesh, extract),
        ("mesh_bad_params", mesh, field(1, 2, latents) + field(2, 2, field(1, 0, 5) + field(2, 0, 3))),
        ("mesh_bad_dtype", mesh, field(1, 2, field(3, 2, dense(9, [1], b"1234"))) + field(2, 2, params)),
        ("raw_frame_rmbg", rmbg | 4, b"\x00\x00\x00\x00\x05" + field(1, 2, b"")),
        ("raw_compressed_flag", flow | 4, b"\x01\x00\x00\x00\x00"),
        ("raw_truncated_frame", mesh | 4, b"\x00\x00\x00\x10\x00abc"),
    ]
    return [(name, bytes([sel]) + msg) for name, sel, msg in seeds]


# ---------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------
def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    return [
        ("f32_2x2", safetensors({"w": ("F32", [2, 2], f32)}, {"format": "pt"})),
        ("mixed", safetensors({
            "a.weight": ("F16", [3], b"\x00\x3c\x00\xc0\x00\x38"),
            "a.bias": ("BF16", [2], b"\x80\x3f\x00\xc0"),
            "idx": ("I32", [2, 1], struct.pack("<2i", 7, -1)),
            "u": ("U32", [1], struct.pack("<I", 9)),
            "mask": ("BOOL", [2], b"\x01\x00"),
            "bytes": ("U8", [0, 5], b""),
            "scalar": ("F32", [], struct.pack("<f", 4.0)),
        })),
        ("unsupported_dtype", safetensors({"d": ("F64", [1], struct.pack("<d", 1.0))})),
        ("empty", safetensors({})),
        ("bad_offsets", struct.pack("<Q", 64) + json.dumps(
            {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 32]}}).encode().ljust(64) + f32),
        ("huge_header_len", struct.pack("<Q", 2**62) + b"{}"),
        ("short", b"\x08\x00"),
    ]


# ---------------------------------------------------------------------------------------------
# Model configs (selector byte: model in bits 0-2, F32 precision in bit 3)
# ---------------------------------------------------------------------------------------------
def model_configs():
    files = [
        (0, "pipeline.json"),
        (1, "facebook/dinov3-vitl16-pretrain-lvd1689m/config.json"),
        (2, "ckpts/ss_flow_img_dit_1_3B_64_bf16.json"),
        (3, "ckpts/slat_flow_img2shape_dit_1_3B_512_bf16.json"),
        (4, "ckpts/slat_flow_imgshape2tex_dit_1_3B_512_bf16.json"),
        (5, "microsoft/TRELLIS-image-large/ckpts/ss_dec_conv3d_16l8_fp16.json"),
        (6, "ckpts/shape_dec_next_dc_f16c32_fp16.json"),
        (7, "ckpts/tex_dec_next_dc_f16c32_fp16.json"),
    ]
    if not os.path.exists(os.path.join(DEMO, ".complete")):
        print(f"note: {DEMO} is missing (run the model_config target once); no model_config seeds",
              file=sys.stderr)
        return []
    out = []
    for sel, rel in files:
        with open(os.path.join(DEMO, rel), "rb") as f:
            text = json.dumps(json.load(f), separators=(",", ":")).encode()
        stem = rel.replace("/", "_").removesuffix(".json")
        out.append((f"{sel}_{stem}.json", bytes([sel]) + text))
        out.append((f"{sel}_f32_{stem}.json", bytes([sel | 8]) + text))
    out.append(("1_defaults.json", b"\x01{}"))
    out.append(("2_not_json", b"\x02{\"name\": "))
    return out


def main():
    for name, data in images():
        put("image_check", name, data)
        # A 4096² image costs the S0 path ~10 s under ASan (decode, then the LANCZOS downscale):
        # image_decode gets a smaller one over the 1024 px downscale threshold instead.
        if name != "bomb_jpeg_4096x4096.jpg":
            put("image_decode", name, data)
    put("image_decode", "bomb_jpeg_1100x1100.jpg", jpeg_with_size(fixture("src_gray_37x29.jpg"), 1100, 1100))
    put("image_check", "b64_small_rgba.txt", b64(SMALL_RGBA))
    put("image_check", "b64_data_uri_jpeg.txt", "data:image/jpeg;base64," + b64(fixture("src_gray_37x29.jpg")))
    put("image_check", "b64_wrapped.txt", "\n".join(b64(SMALL_RGB)[i:i + 8] for i in range(0, 200, 8)))
    for name, data in states():
        put("state_decode", name, data)
    for name, data in generate_bodies():
        put("http_generate", name, data)
    for name, data in extract_bodies():
        put("http_extract_glb", name, data)
    for name, data in grpc_requests():
        put("grpc_requests", name, data)
    for name, data in safetensors_seeds():
        put("safetensors_load", name, data)
    for name, data in model_configs():
        put("model_config", name, data)
    for name in ["rmbg_fixture.onnx", "rmbg_fixture_3out.onnx", "rmbg_wrong_size.onnx"]:
        with open(os.path.join(ONNX_FIXTURES, name), "rb") as f:
            data = f.read()
        put("onnx_load", name, data)
        put("onnx_load", "trunc_" + name, data[: len(data) // 2])
    put("onnx_load", "empty", b"")


if __name__ == "__main__":
    main()
