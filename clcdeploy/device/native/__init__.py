"""Build the native ExecuTorch `.pte` runner (pte_runner.cpp) for the host or for aarch64, cached by source hash."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Literal

from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.paths import cache_dir

SOURCE = Path(__file__).with_name("pte_runner.cpp")
# clcdeploy's fused IGC kernel (`clcdeploy::igc2.out`, registered in a static initialiser), compiled into the
# runner so that a .pte exported with --fused-igc runs on any device the runner runs on. By path, not by
# import: the kernels package imports torch, which device-side tooling must not need.
KERNEL_DIR = Path(__file__).parents[2] / "kernels" / "csrc"
KERNEL_SOURCES = (KERNEL_DIR / "igc2_core.cpp", KERNEL_DIR / "igc2_executorch.cpp")
COMPILERS = {"host": "g++", "aarch64": "aarch64-linux-gnu-g++"}
# The Debian package of each compiler clcdeploy builds with (scripts/setup.sh installs them)
COMPILER_PACKAGES = {"g++": "g++", "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu", "gcc": "gcc"}
# Libraries that register kernels/backends in static initialisers: must stay linked though unreferenced.
LIBS = ("executorch_backend_xnnpack", "executorch_kernels_optimized", "executorch_threadpool", "executorch_etdump",
        "executorch")
# The wheel's CMake config gives its users ET_USE_THREADPOOL; without it `executorch::extension::parallel_for`
# (the fused kernel's) compiles to a serial loop, so the kernel ran on one thread whatever --cpu_threads said.
DEFINES = ("-DET_USE_THREADPOOL",)
# Where the runtime libraries are looked up on the device: next to the runner, then the rootfs install.
DEVICE_RPATH = "$ORIGIN:$ORIGIN/lib:/opt/executorch/lib"

Target = Literal["host", "aarch64"]


def _package_dir(name: str) -> Path | None:
    """A package's folder without importing it (executorch is a namespace package; torch is heavy)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def executorch_dir(target: Target, log: Callable[[str], None] = print) -> Path:
    """The executorch wheel folder (include/, lib/) for `target`."""
    if target == "host":
        found = _package_dir("executorch")
        if found is None or not (found / "lib/libexecutorch.so").exists():
            raise VirtualDeviceError("the executorch wheel is not installed: pip install executorch==1.5.1")
        return found
    from clcdeploy.device.virtual.rootfs import aarch64_executorch_dir

    return aarch64_executorch_dir(log)


def _c10_macros_include() -> Path:
    """A folder providing torch/headeronly/macros/cmake_macros.h (needed by the c10 headers; header-only)."""
    torch_dir = _package_dir("torch")
    if torch_dir is not None and (torch_dir / "include/torch/headeronly/macros/cmake_macros.h").exists():
        return torch_dir / "include"
    # Without torch: the generated header only declares a shared-library build.
    shim = cache_dir() / "native/c10-shim"
    header = shim / "torch/headeronly/macros/cmake_macros.h"
    if not header.exists():
        header.parent.mkdir(parents=True, exist_ok=True)
        header.write_text("#ifndef C10_MACROS_CMAKE_MACROS_H_\n#define C10_MACROS_CMAKE_MACROS_H_\n"
                          "#define C10_BUILD_SHARED_LIBS\n#endif\n")
    return shim


def require_compiler(compiler: str) -> None:
    """Raise VirtualDeviceError naming the package to install if `compiler` is not on PATH (before any download)."""
    if shutil.which(compiler) is None:
        raise VirtualDeviceError(f"{compiler} not found: apt-get install {COMPILER_PACKAGES[compiler]}")


def compile_atomically(out: Path, argv: Callable[[str], list[str]], what: str, log: Callable[[str], None]) -> Path:
    """Run the compiler command `argv(path)` writing `out`'s content to a temporary path beside it, and put it in
    place only if the command succeeded (a killed or failed build leaves no file that looks built)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".")
    os.close(fd)
    log(f"  compiling {what}")
    proc = subprocess.run(argv(tmp), capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        raise VirtualDeviceError(f"building {what} failed: {tail}")
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)
    return out


def build_pte_runner(target: Target = "host", *, log: Callable[[str], None] = print, force: bool = False) -> Path:
    """Compile pte_runner.cpp (with clcdeploy's fused IGC kernel) for `target` ("host" or "aarch64") and
    return the cached binary's path.

    The host binary finds the venv's libraries through its rpath; the aarch64 one looks next to itself,
    in ./lib, and in /opt/executorch/lib (where the virtual device's rootfs has them).
    """
    if target not in COMPILERS:
        raise VirtualDeviceError(f"unknown runner target {target!r}: use 'host' or 'aarch64'")
    compiler = COMPILERS[target]
    require_compiler(compiler)
    et = executorch_dir(target, log)
    sources = b"".join(p.read_bytes() for p in (SOURCE, *KERNEL_SOURCES, KERNEL_DIR / "igc2.h"))
    build = " ".join((target, *DEFINES, *LIBS)).encode()
    key = hashlib.sha256(sources + str(et).encode() + build).hexdigest()[:16]
    out = cache_dir() / "native" / f"pte_runner-{target}-{key}"
    if out.exists() and not force:
        return out
    rpath = f"{et / 'lib'}" if target == "host" else DEVICE_RPATH
    tuning = ["-march=native"] if target == "host" else []  # the host binary only runs on this machine
    return compile_atomically(out, lambda tmp: [
        compiler, "-std=c++17", "-O3", "-fno-math-errno", *tuning, *DEFINES, "-o", tmp,
        str(SOURCE), *map(str, KERNEL_SOURCES),
        f"-I{et / 'include'}", f"-I{_c10_macros_include()}", f"-I{KERNEL_DIR}",
        f"-L{et / 'lib'}", "-Wl,--no-as-needed", *[f"-l{lib}" for lib in LIBS], "-Wl,--as-needed",
        f"-Wl,-rpath,{rpath}", "-Wl,--allow-shlib-undefined", "-lpthread"], f"pte_runner for {target} with {compiler}",
        log)
