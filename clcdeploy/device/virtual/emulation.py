"""Running arm64 programs on an x86 host: binfmt_misc + qemu-user (chroot as root) or `qemu -L` otherwise."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from clcdeploy.device.errors import VirtualDeviceError

QEMU_CPU = "cortex-a53"
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
QEMU_BINARY = "qemu-aarch64-static"
DEVICE_PATH = "/system/bin:/opt/clcdeploy/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def is_root() -> bool:
    return os.geteuid() == 0


def host_is_arm64() -> bool:
    return platform.machine() in ("aarch64", "arm64")


def ensure_binfmt() -> None:
    """Register qemu-aarch64 with binfmt_misc so the kernel runs arm64 ELF files (root only)."""
    if host_is_arm64():
        return
    if shutil.which(QEMU_BINARY) is None:
        raise VirtualDeviceError(f"{QEMU_BINARY} not found: install it with `apt-get install qemu-user-static`")
    if not is_root():
        raise VirtualDeviceError("registering qemu-aarch64 with binfmt_misc needs root (run as root, or use --no-chroot)")
    if not (BINFMT_DIR / "register").exists():
        rc = os.system(f"mount -t binfmt_misc binfmt_misc {BINFMT_DIR} 2>/dev/null")
        if rc != 0 or not (BINFMT_DIR / "register").exists():
            raise VirtualDeviceError(f"cannot mount binfmt_misc on {BINFMT_DIR}")
    entry = BINFMT_DIR / "qemu-aarch64"
    if entry.exists():
        if entry.read_text().startswith("enabled"):
            return
        entry.write_text("1")
        return
    if not BINFMT_CONF.exists():
        raise VirtualDeviceError(f"{BINFMT_CONF} missing: install qemu-user-static")
    line = BINFMT_CONF.read_text().strip()
    try:
        (BINFMT_DIR / "register").write_text(line)
    except OSError as exc:
        raise VirtualDeviceError(f"cannot register qemu-aarch64 with binfmt_misc: {exc}") from exc


def device_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for processes inside the device: Android-like PATH and the emulated CPU model."""
    env = {
        "PATH": DEVICE_PATH,
        "HOME": "/data/local/tmp",
        "TMPDIR": "/data/local/tmp",
        "ANDROID_DATA": "/data",
        "LANG": "C.UTF-8",
        # qemu-user reads QEMU_CPU for every arm64 binary the kernel hands it through binfmt_misc.
        "QEMU_CPU": QEMU_CPU,
    }
    env.update(extra or {})
    return env


def shell_argv(rootfs: Path, command: str, *, chroot: bool = True) -> list[str]:
    """argv that runs `command` with the device's /bin/sh inside `rootfs`."""
    if chroot:
        return ["chroot", str(rootfs), "/bin/sh", "-c", f"cd / && {command}" if command else "/bin/sh"]
    # Without root: no chroot, so child processes of the shell that are arm64 binaries need binfmt too.
    return [QEMU_BINARY, "-L", str(rootfs), "-cpu", QEMU_CPU, str(rootfs / "bin/sh"), "-c", command]
