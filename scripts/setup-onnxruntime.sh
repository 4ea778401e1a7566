#!/usr/bin/env bash
# Installs ONNX Runtime's shared library from PyPI (no other network source is used) and
# prints the ORT_DYLIB_PATH that `ort` (load-dynamic) needs.
#
#   eval "$(scripts/setup-onnxruntime.sh)"          # CPU wheel, into ~/.cache/t2-onnxruntime
#   ORT_PACKAGE=onnxruntime-gpu==1.31.1 scripts/setup-onnxruntime.sh   # CUDA 13 build (GPU hosts)
#   ORT_PREFIX=/opt/ort scripts/setup-onnxruntime.sh                    # another install dir
#
# stdout carries only the `export` line (so it can be eval'd); progress goes to stderr.
# The wheel's capi/ folder is kept whole: providers (.so) are loaded from next to
# libonnxruntime.so. ort is built with `api-30`, so the library must be >= 1.30.
set -euo pipefail

ORT_PACKAGE="${ORT_PACKAGE:-onnxruntime==1.32.0}"
ORT_PREFIX="${ORT_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/t2-onnxruntime}"
PYTHON="${PYTHON:-python3}"

find_lib() {
    find "$ORT_PREFIX" -path '*onnxruntime/capi/libonnxruntime.so.1*' -type f 2>/dev/null \
        | grep -v providers | sort | tail -n 1
}

lib="$(find_lib || true)"
if [[ -z "$lib" ]]; then
    echo "installing $ORT_PACKAGE into $ORT_PREFIX" >&2
    mkdir -p "$ORT_PREFIX"
    # --target keeps it out of any environment; --no-deps: only the shared library is needed.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$ORT_PREFIX" "$ORT_PACKAGE" >&2
    lib="$(find_lib)"
fi
if [[ -z "$lib" ]]; then
    echo "error: no onnxruntime/capi/libonnxruntime.so.1* under $ORT_PREFIX" >&2
    exit 1
fi
echo "ORT_DYLIB_PATH=$lib" >&2
echo "export ORT_DYLIB_PATH=$lib"
