#!/usr/bin/env bash
# Set up a fresh machine for clcdeploy: system packages (when root), a virtualenv in .venv, the package.
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-user-static/debootstrap: the virtual ARM64 device; qemu-user: a dynamic qemu-aarch64, which can load the
# instruction-counting plugin (scripts/bench_arm64_instructions.py); adb: the stock client the device is checked
# against; g++-aarch64-linux-gnu: the native ExecuTorch runner for the device; cmake, g++: clcdeploy's kernels.
APT_PACKAGES=(qemu-user-static qemu-user debootstrap adb g++-aarch64-linux-gnu binfmt-support cmake g++)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "setup: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: missing Debian packages ${missing[*]} (needed for the virtual device); install them as root" >&2
    fi
fi

PYTHON=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
# torch==2.13.0 (pinned in pyproject.toml) is the CPU wheel; a looser spec would pull a CUDA build.
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import clcdeploy, torch; print(f'setup: clcdeploy {clcdeploy.__version__}, torch {torch.__version__}')"
# The fused IGC kernel libraries (`clcdeploy export --fused-igc`), built once: against the executorch wheel,
# and against the ONNX Runtime API headers (downloaded from Debian's archive, pinned by SHA-256, as the
# onnxruntime wheel ships none). Without cmake they are built on first use instead.
if command -v cmake >/dev/null; then
    echo "setup: fused IGC kernel library (ExecuTorch) $(.venv/bin/python -c \
        'from clcdeploy.kernels.build import build_executorch_kernels as build; print(build())')"
    echo "setup: fused IGC kernel library (ONNX Runtime) $(.venv/bin/python -c \
        'from clcdeploy.kernels.build import build_onnxruntime_kernels as build; print(build())')"
fi
