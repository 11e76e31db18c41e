"""Build the C++ kernel library with CMake against the installed executorch wheel; cached by content hash."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from clcdeploy.errors import ClcDeployError

CSRC = Path(__file__).with_name("csrc")
LIBRARY_NAME = "libclcdeploy_igc_executorch.so"


class KernelBuildError(ClcDeployError):
    """The custom kernel library could not be built or loaded."""


def executorch_cmake_dir() -> Path:
    """The executorch wheel's CMake package directory (`executorch/share/cmake`)."""
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise KernelBuildError("executorch is not installed; install it to build the fused IGC kernel")
    path = Path(list(spec.submodule_search_locations)[0]) / "share" / "cmake"
    if not (path / "executorch-config.cmake").exists():
        raise KernelBuildError(f"the executorch wheel has no CMake config at {path}; use executorch >= 1.5")
    return path


def _source_hash(native: bool) -> str:
    digest = hashlib.sha256(str(native).encode())
    for path in sorted(CSRC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(str(executorch_cmake_dir().resolve()).encode())
    return digest.hexdigest()[:16]


def build_dir(native: bool = True) -> Path:
    """Where the library for the current sources is built (`CLCDEPLOY_KERNEL_CACHE` or ~/.cache)."""
    root = Path(os.environ.get("CLCDEPLOY_KERNEL_CACHE", Path.home() / ".cache" / "clcdeploy" / "kernels"))
    return root / _source_hash(native)


def build_executorch_kernels(*, native: bool = True, jobs: int = 2) -> Path:
    """Configure and build the ExecuTorch kernel library if needed; return the .so path."""
    out = build_dir(native)
    library = out / LIBRARY_NAME
    if library.exists():
        return library
    if shutil.which("cmake") is None:
        raise KernelBuildError("cmake is not on PATH; install cmake and a C++17 compiler to build the kernel")
    scratch = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    commands = [
        ["cmake", "-S", str(CSRC), "-B", str(scratch), "-DCMAKE_BUILD_TYPE=Release",
         f"-Dexecutorch_DIR={executorch_cmake_dir()}", f"-DCLCDEPLOY_NATIVE={'ON' if native else 'OFF'}"],
        ["cmake", "--build", str(scratch), "-j", str(jobs)],
    ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise KernelBuildError(f"kernel build failed ({' '.join(command[:2])}): {' | '.join(tail)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        scratch.rename(out)
    except OSError:  # another process finished first
        shutil.rmtree(scratch, ignore_errors=True)
    return library
