#!/usr/bin/env bash
# A fresh machine → a textured GLB, with nothing but rustup, python3 (pip) and a C compiler:
#   1. ONNX Runtime's CPU library from PyPI (background removal; the services find it in
#      ~/.cache/t2-onnxruntime, so no variable has to be exported afterwards),
#   2. the release `trellis2` binary,
#   3. the demo model set (small random-weight models in the real checkpoint layout, written
#      once under ./data/models/demo; real weights: `trellis2 models fetch`),
#   4. examples/photo.jpg → out/photo.glb (+ out/photo.mp4 turntable) in this process.
# The demo weights are random, so the asset is not a ball on a block: this run shows the whole
# path working (background removal, DINOv3, three flows, decoders, remesh, UV, bake, GLB).
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(bash scripts/setup-onnxruntime.sh)"
cargo build --release -p t2-cli
mkdir -p out
./target/release/trellis2 generate examples/photo.jpg -o out/photo.glb --video out/photo.mp4 \
    --local --models demo --data ./data "$@"
echo "next: ./target/release/trellis2 serve --models demo   (README: 'Serving')" >&2
