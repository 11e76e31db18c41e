#!/usr/bin/env bash
# Install what the virtual ARM64 device needs (Debian packages, root) and build its cached rootfs.
# Cold: ~1 min of apt + a few minutes of debootstrap under qemu; cached afterwards (~/.cache/clcdeploy).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
missing=()
for pkg in qemu-user-static qemu-user debootstrap adb g++-aarch64-linux-gnu; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
"$PY" -c "from clcdeploy.device.virtual.rootfs import build_rootfs; build_rootfs()"
