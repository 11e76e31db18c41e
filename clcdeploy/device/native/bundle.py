"""clcdeploy's native runners for any arm64 device, Android phones included: one folder per runner holding the
aarch64 program (pte_runner, ort_runner), its runtime's aarch64 libraries (the executorch wheel's, the onnxruntime
wheel's), and the cross toolchain's glibc with its dynamic loader.

The runner is started through the bundled loader (`launch_words`), so every library comes from the folder and none
from the device: an Android phone has no glibc (its C library is bionic), and a Linux board's may be older than the
one the runner was linked against. The wheels have no 32-bit ARM build, so there are no bundles for armeabi-v7a.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
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

RUNNERS = ("pte_runner", "ort_runner")
LOADER = "ld-linux-aarch64.so.1"  # glibc's dynamic loader on aarch64 (every program's PT_INTERP names it)
READELF = "aarch64-linux-gnu-readelf"  # binutils-aarch64-linux-gnu, which g++-aarch64-linux-gnu depends on


def bundle_prefix(runner: str) -> str:
    """A bundle folder's name, here and on devices, before the digest of its files."""
    return f"{runner}-bundle-"


def build_bundle(runner: str, log: Callable[[str], None] = print) -> Path:
    """The bundle folder of `runner` (built once, cached by content): the program, the loader, and every library
    they need."""
    program, library_dir = _program(runner, log)
    files = {runner: program, LOADER: _toolchain_file(LOADER), **_needed_closure(program, library_dir)}
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name} {sha256_file(files[name])}\n".encode())
    out = cache_dir() / "native" / f"{bundle_prefix(runner)}{digest.hexdigest()[:16]}"
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


def launch_words(runner: str, remote_dir: str) -> str:
    """The shell words that start the bundle's runner from `remote_dir` on the device (arguments follow).

    `--library-path` is searched before the runner's own RUNPATH, `--inhibit-cache` skips a device's ld.so.cache,
    so only a library missing from the bundle could come from the device's default folders (none is: tested in a
    filesystem holding nothing else)."""
    folder = shlex.quote(remote_dir)
    return f"{folder}/{LOADER} --inhibit-cache --library-path {folder} {folder}/{runner}"


def _program(runner: str, log: Callable[[str], None]) -> tuple[Path, Path]:
    """The runner's aarch64 build and the folder of its runtime's libraries."""
    if runner == "pte_runner":
        return build_pte_runner("aarch64", log=log), executorch_dir("aarch64", log) / "lib"
    if runner == "ort_runner":
        from clcdeploy.device.native.ort import build_ort_runner, onnxruntime_lib_dir

        return build_ort_runner(log), onnxruntime_lib_dir(log)
    raise VirtualDeviceError(f"no bundle for {runner!r}: choose one of {', '.join(RUNNERS)}")


def _needed_closure(program: Path, runtime_lib: Path) -> dict[str, Path]:
    """Every shared library `program` loads, directly or through another, by name -> file: the runtime's (by file
    name or by SONAME, as libonnxruntime.so.1 is libonnxruntime.so.1.31.1), else the cross toolchain's (glibc,
    libstdc++, libgcc_s)."""
    runtime = {_dynamic(path).get("SONAME", [path.name])[0]: path
               for path in runtime_lib.glob("*.so*") if path.is_file()}
    found: dict[str, Path] = {}
    pending = list(_dynamic(program).get("NEEDED", []))
    while pending:
        name = pending.pop()
        if name in found or name == LOADER:  # the loader is bundled as itself
            continue
        found[name] = runtime.get(name) or _toolchain_file(name)
        pending.extend(_dynamic(found[name]).get("NEEDED", []))
    return found


@functools.lru_cache(maxsize=None)  # each file is read once per process (read-only results)
def _dynamic(elf: Path) -> dict[str, list[str]]:
    """An aarch64 ELF file's dynamic entries that name something (NEEDED, SONAME, RUNPATH): tag -> values."""
    if shutil.which(READELF) is None:
        raise VirtualDeviceError(f"{READELF} not found: apt-get install binutils-aarch64-linux-gnu")
    proc = subprocess.run([READELF, "--dynamic", "--wide", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise VirtualDeviceError(f"{READELF} could not read {elf}: {proc.stderr.strip()}")
    entries: dict[str, list[str]] = {}
    for tag, value in re.findall(r"\((\w+)\)[ \t]+[^\[\n]*\[([^\]\n]*)\]", proc.stdout):  # one entry a line
        entries.setdefault(tag, []).append(value)
    return entries


def _toolchain_file(name: str) -> Path:
    """A file of the aarch64 cross toolchain's runtime (its sysroot's glibc, libstdc++, libgcc_s)."""
    answer = subprocess.run([COMPILERS["aarch64"], f"-print-file-name={name}"], capture_output=True, text=True)
    path = Path(answer.stdout.strip())
    if answer.returncode != 0 or not path.is_absolute() or not path.is_file():
        raise VirtualDeviceError(f"{name}, which a runner needs on the device, is neither in its runtime's wheel nor "
                                 f"in {COMPILERS['aarch64']}'s runtime: apt-get install g++-aarch64-linux-gnu")
    return path.resolve()
