"""Build and cache the virtual device's arm64 Debian userland: python3, numpy, onnxruntime, ai-edge-litert,
the ExecuTorch runtime libraries and a native `.pte` runner, plus an Android-like identity."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.native import LIBS as RUNNER_LIBS  # (native imports this module only inside functions)
from clcdeploy.device.paths import virtual_device_dir
from clcdeploy.device.virtual import emulation

SUITE = "bookworm"  # python3.11, matching the cp311 aarch64 wheels below
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Bump when the recipe changes so cached rootfs folders are rebuilt.
RECIPE_VERSION = "3"
DEVICE_WHEELS = ("numpy", "onnxruntime>=1.31,<1.32", "ai-edge-litert>=2.3,<2.4")
EXECUTORCH_WHEEL = "executorch==1.5.1"
# Bookworm has glibc 2.36: any manylinux tag up to that fits (ai-edge-litert 2.3 is manylinux_2_27).
WHEEL_PLATFORMS = ("manylinux_2_36_aarch64", "manylinux_2_35_aarch64", "manylinux_2_34_aarch64",
                   "manylinux_2_31_aarch64", "manylinux_2_28_aarch64", "manylinux_2_27_aarch64",
                   "manylinux_2_17_aarch64", "manylinux2014_aarch64")
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"
EXECUTORCH_PREFIX = "opt/executorch"
RUNNER_PATH = "opt/clcdeploy/bin/pte_runner"
# The runtime libraries the native runner links; the rest of the wheel's lib/ is not needed on the device.
EXECUTORCH_LIBS = tuple(f"lib{name}.so" for name in RUNNER_LIBS)
# What every use of a built rootfs needs and only a rebuild restores: the dynamic loader (without it qemu says
# "Could not open '/lib/ld-linux-aarch64.so.1'" for any program), python3 and the runtimes the device runner
# imports. The ExecuTorch libraries, pte_runner and the identity files are put back on every use (build_rootfs).
REQUIRED_FILES = (
    "lib/ld-linux-aarch64.so.1",
    "usr/bin/python3",
    f"{SITE_PACKAGES}/numpy/__init__.py",
    f"{SITE_PACKAGES}/onnxruntime/__init__.py",
    f"{SITE_PACKAGES}/ai_edge_litert/__init__.py",
)

# Reports print "manufacturer model" and `adb devices -l` shows product, model (spaces as _) and device.
BUILD_PROP = {
    "ro.product.model": "virtual arm64 Cortex-A53",
    "ro.product.manufacturer": "clcdeploy",
    "ro.product.name": "clc_virtual_arm64",
    "ro.product.device": "clc_virtual_arm64",
    "ro.product.brand": "clcdeploy",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.hardware": "qemu-user",
    "ro.kernel.qemu": "1",
    "ro.serialno": "clcvirtual0",
}

# qemu-user 7.2 shows the host's /proc/cpuinfo; the device shows the emulated CPU instead (MIDR 0x410fd034).
CPUINFO_TEMPLATE = """processor\t: {n}
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd03
CPU revision\t: 4
"""

GETPROP = """#!/bin/sh
# Android-like getprop over /system/build.prop
if [ $# -eq 0 ]; then
  sed -n 's/^\\([^#=][^=]*\\)=\\(.*\\)$/[\\1]: [\\2]/p' /system/build.prop
  exit 0
fi
v=$(grep -m1 "^$1=" /system/build.prop | cut -d= -f2-)
if [ -z "$v" ] && [ $# -ge 2 ]; then v="$2"; fi
echo "$v"
"""

Log = Callable[[str], None]


def rootfs_dir() -> Path:
    return virtual_device_dir() / f"rootfs-{SUITE}-arm64"


def _is_stamped(rootfs: Path) -> bool:
    """Whether a build of the current recipe finished in `rootfs` (it writes the stamp last)."""
    stamp = rootfs / "etc/clcdeploy-rootfs"
    return stamp.exists() and stamp.read_text().strip() == RECIPE_VERSION


def _exists_in(rootfs: Path, path: str) -> bool:
    """Whether `path` exists in `rootfs` as its programs see it: symlinks, absolute ones too, resolve inside
    the rootfs (testing the host path would follow an absolute link to the host's own file)."""
    parts, current, hops = list(PurePosixPath(path).parts), PurePosixPath("/"), 0
    while parts:
        part = parts.pop(0)
        if part in ("/", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        host = rootfs / (current / part).relative_to("/")
        if host.is_symlink():
            hops += 1
            if hops > 40:  # a loop, as the kernel's ELOOP
                return False
            target = PurePosixPath(os.readlink(host))
            if target.is_absolute():
                current = PurePosixPath("/")
            parts = [*target.parts, *parts]
            continue
        if not host.exists():
            return False
        current = current / part
    return True


def missing_files(rootfs: Path | None = None) -> list[str]:
    """The REQUIRED_FILES that `rootfs` lacks (all of them if it does not exist)."""
    rootfs = rootfs or rootfs_dir()
    return [path for path in REQUIRED_FILES if not _exists_in(rootfs, path)]


def is_built(rootfs: Path | None = None) -> bool:
    """Whether `rootfs` holds a finished build of the current recipe with every file its uses need."""
    rootfs = rootfs or rootfs_dir()
    return _is_stamped(rootfs) and not missing_files(rootfs)


def describe(rootfs: Path | None = None) -> str:
    """The rootfs's state for `clcdeploy device status`: built, not built yet, outdated, or incomplete (and what
    happens next)."""
    rootfs = rootfs or rootfs_dir()
    if not _is_stamped(rootfs):
        if (rootfs / "etc/clcdeploy-rootfs").exists():
            return "built by an older clcdeploy: `clcdeploy device start` rebuilds it"
        return "not built yet"
    missing = missing_files(rootfs)
    if missing:
        return f"incomplete, missing /{', /'.join(missing)}: `clcdeploy device start` rebuilds it"
    return "built"


def _check_not_in_use(rootfs: Path, why: str) -> None:
    """Refuse to replace `rootfs` while a virtual device serves it (its shells run in it)."""
    from clcdeploy.device.virtual import daemon  # local import: daemon imports this module lazily

    users = [ep.serial for ep in daemon.status() if ep.running and Path(ep.root) == rootfs]
    if users:
        raise VirtualDeviceError(f"{why} and the virtual device {', '.join(users)} is using it: stop it with "
                                 f"`clcdeploy device stop`, then retry, which rebuilds it")


def _run(argv: list[str], what: str, log: Log, **kw) -> None:
    start = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if proc.returncode != 0:
        tail = " | ".join(proc.stdout.strip().splitlines()[-3:])
        raise VirtualDeviceError(f"{what} failed (exit {proc.returncode}): {tail}")
    log(f"  {what}: {time.monotonic() - start:.0f} s")


def _pip_download_args(target: Path) -> list[str]:
    args = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--target", str(target)]
    for plat in WHEEL_PLATFORMS:
        args += ["--platform", plat]
    return args


def aarch64_executorch_dir(log: Log = print) -> Path:
    """The aarch64 executorch wheel's `executorch/` folder (include/ and lib/), downloaded once and cached."""
    dest = aarch64_wheel_files(EXECUTORCH_WHEEL, ("executorch/include/", "executorch/lib/"),
                               virtual_device_dir() / "executorch-aarch64", log)
    return dest / "executorch"


def aarch64_wheel_files(requirement: str, prefixes: tuple[str, ...], dest: Path, log: Log = print) -> Path:
    """The files under `prefixes` of the aarch64 wheel of `requirement` ("name==version"), extracted into `dest`
    once (downloaded from PyPI; the wheel is kept under the virtual device's folder)."""
    if (dest / prefixes[-1]).is_dir():
        return dest
    wheels = virtual_device_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
            "--only-binary=:all:", "--python-version", "3.11", "-d", str(wheels), requirement]
    for plat in WHEEL_PLATFORMS:
        argv += ["--platform", plat]
    _run(argv, f"download aarch64 {name} wheel", log)
    wheel = sorted(wheels.glob(f"{name.replace('-', '_')}-{version}-*aarch64*.whl"))[-1]
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp, [m for m in zf.namelist() if m.startswith(prefixes)])
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def remove_tree(path: Path) -> None:
    """rm -rf, refusing to descend into anything still mounted under `path` (e.g. a leftover /proc)."""
    if not path.exists():
        return
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as fh:
        mounted = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for point in sorted(mounted, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    with open("/proc/self/mounts") as fh:
        if any(line.split()[1].startswith(prefix) for line in fh):
            raise VirtualDeviceError(f"{path} still has mounts under it; unmount them, then retry")
    shutil.rmtree(path)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `text` unless the file already holds it (a running device may have it open or bind-mounted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.exists() and path.read_text() == text):
        path.write_text(text)
    path.chmod(mode)


def _install_identity(rootfs: Path) -> None:
    _write(rootfs / "system/build.prop", "".join(f"{k}={v}\n" for k, v in BUILD_PROP.items()))
    _write(rootfs / "system/bin/getprop", GETPROP, 0o755)
    cores = os.cpu_count() or 1
    _write(rootfs / "etc/clcdeploy/cpuinfo", "\n".join(CPUINFO_TEMPLATE.format(n=i) for i in range(cores)))
    for folder in ("data/local/tmp", "sdcard"):
        (rootfs / folder).mkdir(parents=True, exist_ok=True)
        (rootfs / folder).chmod(0o1777)


def _install_executorch(rootfs: Path, log: Log) -> None:
    """Put the ExecuTorch runtime libraries (those missing or differing) and pte_runner into the rootfs."""
    et = aarch64_executorch_dir(log)
    libdir = rootfs / EXECUTORCH_PREFIX / "lib"
    libdir.mkdir(parents=True, exist_ok=True)
    for name in EXECUTORCH_LIBS:
        source, installed = et / "lib" / name, libdir / name
        if installed.exists() and (installed.stat().st_size, installed.stat().st_mtime_ns) == (
                source.stat().st_size, source.stat().st_mtime_ns):
            continue
        # Copied beside and renamed over: a running device may have the old file mapped.
        shutil.copy2(source, installed.with_name(name + ".new"))
        os.replace(installed.with_name(name + ".new"), installed)
    _install_runner(rootfs, log)


def _install_runner(rootfs: Path, log: Log) -> None:
    """Put the current pte_runner build into the rootfs (rebuilt when its or the kernel's sources change)."""
    from clcdeploy.device.native import build_pte_runner  # local import: native imports rootfs

    runner, installed = build_pte_runner("aarch64", log=log), rootfs / RUNNER_PATH
    if installed.exists() and installed.read_bytes() == runner.read_bytes():
        return
    installed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(runner, installed.with_name(installed.name + ".new"))
    os.replace(installed.with_name(installed.name + ".new"), installed)


def build_rootfs(*, mirror: str | None = None, log: Log = print, force: bool = False) -> Path:
    """Build the cached rootfs if missing, outdated or incomplete (debootstrap + wheels + ExecuTorch runner),
    else bring its identity, ExecuTorch libraries and pte_runner up to date; return its path."""
    rootfs = rootfs_dir()
    if is_built(rootfs) and not force:
        _install_identity(rootfs)  # cheap: a cached rootfs gets the current build.prop
        _install_executorch(rootfs, log)
        return rootfs
    if _is_stamped(rootfs) and not force:  # stamped but files gone: rebuilt, as an outdated one is
        why = f"the rootfs in {rootfs} is incomplete (missing /{', /'.join(missing_files(rootfs))})"
        _check_not_in_use(rootfs, why)
        log(f"{why}: rebuilding it")
    for tool in ("debootstrap", emulation.QEMU_BINARY):
        if shutil.which(tool) is None:
            raise VirtualDeviceError(f"{tool} not found: apt-get install debootstrap qemu-user-static")
    emulation.ensure_binfmt()
    mirror = mirror or os.environ.get("CLCDEPLOY_DEBIAN_MIRROR") or DEFAULT_MIRROR
    tmp = rootfs.with_name(rootfs.name + ".partial")
    debootstrapped = tmp / "etc/clcdeploy-debootstrap-done"
    if not debootstrapped.exists():  # a previous attempt that got past debootstrap is resumed
        remove_tree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    log(f"building the virtual device's arm64 rootfs in {rootfs} (one time, a few minutes)")
    if not debootstrapped.exists():
        # A private mount namespace: the /proc debootstrap mounts inside the target cannot outlive it.
        _run(["unshare", "--mount", "--propagation", "private", "debootstrap", "--arch=arm64",
              "--variant=minbase", "--include=python3", SUITE, str(tmp), mirror], f"debootstrap {SUITE} arm64", log)
        debootstrapped.write_text("ok\n")
    _run(_pip_download_args(tmp / SITE_PACKAGES) + list(DEVICE_WHEELS), "aarch64 wheels (numpy, onnxruntime, ai-edge-litert)", log)
    _install_identity(tmp)
    _install_executorch(tmp, log)
    _run(["chroot", str(tmp), "/usr/bin/python3", "-c", "import numpy, onnxruntime, ai_edge_litert"],
         "import check under qemu", log, env=emulation.device_env())
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        shutil.rmtree(tmp / junk, ignore_errors=True)
    (tmp / "etc/clcdeploy-rootfs").write_text(RECIPE_VERSION + "\n")
    remove_tree(rootfs)
    os.replace(tmp, rootfs)
    log(f"rootfs ready in {time.monotonic() - start:.0f} s")
    return rootfs
