#!/usr/bin/env bash
# fetch-cuda-wheels.sh DIR — NVRTC and the CUDA headers from PyPI, for machines without a CUDA
# toolkit (CI). The CUDA backend's kernels are compiled by NVRTC at run time; this lets CI
# compile-check every kernel with no GPU and no nvcc (see crates/tensor/tests/nvrtc_compile.rs).
#
# Downloads the CUDA 13.0 wheels of nvidia-cuda-nvrtc (libnvrtc.so.13 + builtins),
# nvidia-cuda-runtime (cuda_fp16.h, cuda_bf16.h, …) and nvidia-cuda-cccl (<nv/target>, needed
# by those headers), unpacks them into DIR/nvidia/cu13/{lib,include}, adds the unversioned
# libnvrtc.so symlink the wheels lack, and prints the environment to export:
#     eval "$(scripts/fetch-cuda-wheels.sh .cuda)"
# Progress goes to stderr, so only the export lines reach stdout.
# CUDA 13.0 matches driver 580 on the H200 host and cudarc's `cuda-13000` feature.
set -euo pipefail
dir=${1:?usage: fetch-cuda-wheels.sh DIR}
version=${CUDA_WHEEL_VERSION:-13.0.*}
mkdir -p "$dir/wheels"
dir=$(cd "$dir" && pwd)
py=${PYTHON:-python3}
"$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux_2_12_x86_64 \
  -d "$dir/wheels" \
  "nvidia-cuda-nvrtc==$version" "nvidia-cuda-runtime==$version" "nvidia-cuda-cccl==$version" >&2
for w in "$dir"/wheels/nvidia_*.whl; do
  # Wheels are zip files; Python's zipfile avoids depending on an unzip binary.
  "$py" - "$w" "$dir" <<'PY' >&2
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith("nvidia/")])
print("unpacked", wheel.rsplit("/", 1)[-1])
PY
done
root="$dir/nvidia/cu13"
lib="$root/lib"
inc="$root/include"
nvrtc=$(ls "$lib"/libnvrtc.so.13* 2>/dev/null | head -n1 || true)
if [ -z "$nvrtc" ] || [ ! -f "$inc/cuda_fp16.h" ]; then
  echo "fetch-cuda-wheels: expected $lib/libnvrtc.so.13 and $inc/cuda_fp16.h after unpacking" >&2
  exit 1
fi
ln -sf "$(basename "$nvrtc")" "$lib/libnvrtc.so"
[ -e "$lib/libnvrtc.so.13" ] || ln -sf "$(basename "$nvrtc")" "$lib/libnvrtc.so.13"
echo "export LD_LIBRARY_PATH=\"$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
echo "export TRELLIS2_CUDA_INCLUDE=\"$inc\""
