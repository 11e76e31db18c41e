"""Build the C++ kernel libraries with CMake: the ExecuTorch binding against the installed executorch wheel,
the ONNX Runtime custom op and the LiteRT delegate against those runtimes' API headers (`headers`). Cached
by content hash."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from clcdeploy.device.paths import cache_dir
from clcdeploy.errors import ClcDeployError

CSRC = Path(__file__).with_name("csrc")
LIBRARY_NAME = "libclcdeploy_igc_executorch.so"
ONNXRUNTIME_LIBRARY_NAME = "libclcdeploy_igc_onnxruntime.so"
LITERT_LIBRARY_NAME = "libclcdeploy_igc_litert_delegate.so"
# Where a library runs: this machine (tuned with -march=native unless native=False), or aarch64 Linux (glibc)
# devices such as the virtual device, cross-compiled.
Target = Literal["host", "aarch64"]
CROSS_ARGS = {"aarch64": ["-DCMAKE_SYSTEM_NAME=Linux", "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
                          "-DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++"]}


class KernelBuildError(ClcDeployError):
    """The custom kernel library could not be built or loaded."""


def cache_root() -> Path:
    """Where built kernel libraries and downloaded headers live: `CLCDEPLOY_KERNEL_CACHE`, else the kernels
    folder of clcdeploy's cache (`$XDG_CACHE_HOME/clcdeploy`, default ~/.cache/clcdeploy)."""
    return Path(os.environ.get("CLCDEPLOY_KERNEL_CACHE") or cache_dir() / "kernels")


def executorch_cmake_dir() -> Path:
    """The executorch wheel's CMake package directory (`executorch/share/cmake`)."""
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise KernelBuildError("executorch is not installed; install it to build the fused IGC kernel")
    path = Path(list(spec.submodule_search_locations)[0]) / "share" / "cmake"
    if not (path / "executorch-config.cmake").exists():
        raise KernelBuildError(f"the executorch wheel has no CMake config at {path}; use executorch >= 1.5")
    return path


def _source_hash(native: bool, cmake_args: list[str], key: str = "") -> str:
    digest = hashlib.sha256(f"{native} {key}".encode())
    if native:  # -march=native: a cache shared by two machines must not hand one the other's instruction set
        digest.update(_cpu_features().encode())
    for path in sorted(CSRC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    for arg in cmake_args:  # the runtime binding and where its headers or CMake package came from
        digest.update(arg.encode())
    return digest.hexdigest()[:16]


def _cpu_features() -> str:
    """This CPU's architecture and feature flags (what -march=native compiles for)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    flags = next((line for line in lines if line.split(":")[0].strip() in ("flags", "Features")), "")
    return f"{platform.machine()} {flags}"


def _executorch_args() -> list[str]:
    return ["-DCLCDEPLOY_RUNTIME=executorch", f"-Dexecutorch_DIR={executorch_cmake_dir().resolve()}"]


def build_executorch_kernels(*, native: bool = True, jobs: int = 2) -> Path:
    """Configure and build the ExecuTorch kernel library if needed; return the .so path."""
    # Keyed by the wheel's version too: an upgrade in place keeps the CMake package's path but changes the ABI.
    return _build(_executorch_args(), LIBRARY_NAME, native, jobs, key=importlib.metadata.version("executorch"))


def build_onnxruntime_kernels(*, native: bool = True, jobs: int = 2, target: Target = "host") -> Path:
    """Configure and build the ONNX Runtime custom-op library (`clcdeploy.IGC2`) if needed; return the .so."""
    from clcdeploy.kernels.headers import ONNXRUNTIME, include_dir

    args = ["-DCLCDEPLOY_RUNTIME=onnxruntime", f"-DONNXRUNTIME_INCLUDE_DIR={include_dir(ONNXRUNTIME).resolve()}"]
    return _build(args + _target_args(target), ONNXRUNTIME_LIBRARY_NAME, native and target == "host", jobs)


def build_litert_kernels(*, native: bool = True, jobs: int = 2, target: Target = "host") -> Path:
    """Configure and build the LiteRT external delegate that runs the custom op `custom_call.CLCDEPLOY_IGC2`
    if needed; return the .so (load it with `ai_edge_litert.interpreter.load_delegate`)."""
    from clcdeploy.kernels.headers import tflite_include_dir

    args = ["-DCLCDEPLOY_RUNTIME=litert", f"-DTFLITE_INCLUDE_DIR={tflite_include_dir().resolve()}"]
    return _build(args + _target_args(target), LITERT_LIBRARY_NAME, native and target == "host", jobs)


def _target_args(target: Target) -> list[str]:
    if target == "host":
        return []
    compiler = CROSS_ARGS[target][-1].split("=", 1)[1]
    if shutil.which(compiler) is None:
        raise KernelBuildError(f"{compiler} is not on PATH; install g++-aarch64-linux-gnu to build the kernel "
                               f"library for {target} devices")
    return CROSS_ARGS[target]


def _build(cmake_args: list[str], library_name: str, native: bool, jobs: int, key: str = "") -> Path:
    """Build `library_name` into the cache folder named by the sources, `cmake_args`, `native` (with this CPU's
    features) and `key`, unless it is there."""
    out = cache_root() / _source_hash(native, cmake_args, key)
    library = out / library_name
    if library.is_file():
        return library
    if shutil.which("cmake") is None:
        raise KernelBuildError("cmake is not on PATH; install cmake and a C++17 compiler to build the kernel")
    writable_cache_root()
    scratch = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    commands = [
        ["cmake", "-S", str(CSRC), "-B", str(scratch), "-DCMAKE_BUILD_TYPE=Release", *cmake_args,
         f"-DCLCDEPLOY_NATIVE={'ON' if native else 'OFF'}"],
        ["cmake", "--build", str(scratch), "-j", str(jobs)],
    ]
    try:
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
                raise KernelBuildError(f"kernel build failed ({' '.join(command[:2])}): {' | '.join(tail)}")
        if out.exists() and not library.is_file():  # an earlier build whose library was removed: replace it
            shutil.rmtree(out, ignore_errors=True)
        try:
            scratch.rename(out)
        except OSError:  # another process finished first
            pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # a failed build's, or the loser's of two
    if not library.is_file():
        raise KernelBuildError(f"the kernel build finished without {library}; remove {out} and try again")
    return library


def writable_cache_root() -> Path:
    """`cache_root()`, created; KernelBuildError when nothing can be written there (before any slow work)."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()
    except OSError as exc:
        raise KernelBuildError(f"the kernel cache {root} is not writable ({exc.strerror or exc}): set "
                               f"CLCDEPLOY_KERNEL_CACHE to a writable folder") from None
    return root
