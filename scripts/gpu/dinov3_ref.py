"""DINOv3 ViT-L/16 as TRELLIS.2 calls it, with HF transformers (the reference's own model code),
on the weights and pixels `t2-bench dinov3` used; prints time and parity against ours.

TRELLIS.2's `DinoV3FeatureExtractor.extract_features`: embeddings → rope_embeddings → every
layer → a parameter-free layer_norm (eps 1e-5); all tokens returned; float32 throughout
(torch defaults: TF32 off for matmuls, on for cuDNN convs — the patch embedding).

  python3 scripts/gpu/dinov3_ref.py --models M --dump D --ours ours_dinov3.json [--reps 5]
"""
import argparse
import json
import time
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import DINOv3ViTModel

ap = argparse.ArgumentParser()
ap.add_argument("--models", required=True)
ap.add_argument("--dump", required=True)
ap.add_argument("--ours", required=True)
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--device", default="cuda")
a = ap.parse_args()

path = os.path.join(a.models, "facebook/dinov3-vitl16-pretrain-lvd1689m")
model = DINOv3ViTModel.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="sdpa")
model = model.to(a.device).eval()
# transformers 5.17 keeps the layers at model.layer, later versions at model.model.layer.
layers = model.layer if hasattr(model, "layer") else model.model.layer
dump = load_file(os.path.join(a.dump, "dinov3.safetensors"))
ours = json.load(open(a.ours))


@torch.no_grad()
def extract(pixels):
    h = model.embeddings(pixels)
    rope = model.rope_embeddings(pixels)
    for layer in layers:
        h = layer(h, position_embeddings=rope)
        if isinstance(h, tuple):
            h = h[0]
    return F.layer_norm(h, h.shape[-1:], eps=1e-5)


def median_ms(f, reps):
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    f()
    sync()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        sync()
        ts.append((time.perf_counter() - t) * 1e3)
    return sorted(ts)[len(ts) // 2]


print("| size | tokens | reference (transformers, SDPA) ms | ours ms | ratio ref/ours | max rel err | rel L2 |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for size in (512, 1024):
    pixels = dump[f"pixels_{size}"].to(a.device)
    ref = extract(pixels).float()
    mine = dump[f"tokens_{size}"].to(a.device)
    err = ((mine - ref).abs().max() / ref.abs().max()).item()
    l2 = ((mine - ref).norm() / ref.norm()).item()
    ms = median_ms(lambda: extract(pixels), a.reps)
    o = ours[str(size)]["ms"]
    print(f"| {size} | {ref.shape[1]} | {ms:.2f} | {o:.2f} | {ms / o:.2f}x | {err:.2e} | {l2:.2e} |")
