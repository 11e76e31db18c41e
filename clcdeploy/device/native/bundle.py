"""pte_runner for any arm64 device, Android phones included: one folder holding the aarch64 runner, the executorch
wheel's aarch64 libraries, and the cross toolchain's glibc with its dynamic loader.

The runner is started through the bundled loader (`launch_words`), so every library comes from the folder and none
from the device: an Android phone has no glibc (its C library is bionic), and a Linux board's may be older than the
one the runner was linked against. The wheel has no 32-bit ARM build, so there is no bundle for armeabi-v7a phones.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.native import COMPILERS, build_pte_runner, executorch_dir
from clcdeploy.device.paths import cache_dir
from clcdeploy.files import sha256_file

RUNNER = "pte_runner"
LOADER = "ld-linux-aarch64.so.1"  # glibc's dynamic loader on aarch64 (every program's PT_INTERP names it)
READELF = "aarch64-linux-gnu-readelf"  # binutils-aarch64-linux-gnu, which g++-aarch64-linux-gnu depends on
BUNDLE_PREFIX = "pte_runner-bundle-"  # + a digest of the files: the folder's name here and on devices


def build_pte_runner_bundle(log: Callable[[str], None] = print) -> Path:
    """The bundle folder (built once, cached by content): pte_runner, the loader, and every library they need."""
    runner = build_pte_runner("aarch64", log=log)
    libraries = _needed_closure(runner, executorch_dir("aarch64", log) / "lib")
    files = {RUNNER: runner, LOADER: _toolchain_file(LOADER), **libraries}
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name} {sha256_file(files[name])}\n".encode())
    out = cache_dir() / "native" / f"{BUNDLE_PREFIX}{digest.hexdigest()[:16]}"
    if out.is_dir():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=out.name + "."))
    try:
        for name, source in files.items():
            shutil.copyfile(source, staging / name)  # the file a symlink (libc.so.6 -> libc-2.36.so) names
            os.chmod(staging / name, 0o755)
        os.chmod(staging, 0o755)
        os.replace(staging, out)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not out.is_dir():  # another process may have put the same bundle in place first
            raise
    return out


def launch_words(remote_dir: str) -> str:
    """The shell words that start the bundle's runner from `remote_dir` on the device (arguments follow).

    `--library-path` is searched before the runner's own RUNPATH, `--inhibit-cache` skips a device's ld.so.cache,
    so only a library missing from the bundle could come from the device's default folders (none is: tested in a
    filesystem holding nothing else)."""
    folder = shlex.quote(remote_dir)
    return f"{folder}/{LOADER} --inhibit-cache --library-path {folder} {folder}/{RUNNER}"


def _needed_closure(program: Path, executorch_lib: Path) -> dict[str, Path]:
    """Every shared library `program` loads, directly or through another, by name -> file: the executorch wheel's,
    else the cross toolchain's (glibc, libstdc++, libgcc_s)."""
    found: dict[str, Path] = {}
    pending = _needed(program)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = executorch_lib / name
        found[name] = path if path.is_file() else _toolchain_file(name)
        pending.extend(_needed(found[name]))
    return found


def _needed(elf: Path) -> list[str]:
    """The DT_NEEDED entries of an aarch64 ELF file."""
    if shutil.which(READELF) is None:
        raise VirtualDeviceError(f"{READELF} not found: apt-get install binutils-aarch64-linux-gnu")
    proc = subprocess.run([READELF, "--dynamic", "--wide", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise VirtualDeviceError(f"{READELF} could not read {elf}: {proc.stderr.strip()}")
    return [line.rsplit("[", 1)[1].rstrip("]") for line in proc.stdout.splitlines() if "(NEEDED)" in line]


def _toolchain_file(name: str) -> Path:
    """A file of the aarch64 cross toolchain's runtime (its sysroot's glibc, libstdc++, libgcc_s)."""
    answer = subprocess.run([COMPILERS["aarch64"], f"-print-file-name={name}"], capture_output=True, text=True)
    path = Path(answer.stdout.strip())
    if answer.returncode != 0 or not path.is_absolute() or not path.is_file():
        raise VirtualDeviceError(f"{name}, which pte_runner needs on the device, is neither in the executorch wheel "
                                 f"nor in {COMPILERS['aarch64']}'s runtime: apt-get install g++-aarch64-linux-gnu")
    return path.resolve()
