"""Build ort_runner.cpp for aarch64: against ONNX Runtime's C/C++ API headers (the ones clcdeploy's custom-op
library is built with, from Debian's libonnxruntime-dev) and the aarch64 library of the onnxruntime wheel of this
host's version, downloaded once. Cached by content; bundle.py ships it with its libraries."""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path
from typing import Callable

from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.native import COMPILERS, compile_atomically, require_compiler
from clcdeploy.device.paths import cache_dir, virtual_device_dir

SOURCE = Path(__file__).with_name("ort_runner.cpp")


def onnxruntime_lib_dir(log: Callable[[str], None] = print) -> Path:
    """The folder holding the aarch64 onnxruntime wheel's libonnxruntime.so.* (the version installed here)."""
    from clcdeploy.device.virtual.rootfs import aarch64_wheel_files

    version = importlib.metadata.version("onnxruntime")
    dest = aarch64_wheel_files(f"onnxruntime=={version}", ("onnxruntime/capi/",),
                               virtual_device_dir() / f"onnxruntime-aarch64-{version}", log)
    return dest / "onnxruntime/capi"


def build_ort_runner(log: Callable[[str], None] = print) -> Path:
    """Compile ort_runner.cpp for aarch64 (once per source, headers and library) and return the binary's path."""
    from clcdeploy.kernels.headers import ONNXRUNTIME, include_dir

    compiler = COMPILERS["aarch64"]
    require_compiler(compiler)
    libraries = sorted(onnxruntime_lib_dir(log).glob("libonnxruntime.so.*"))
    if not libraries:
        raise VirtualDeviceError("the aarch64 onnxruntime wheel holds no libonnxruntime.so.*")
    headers = include_dir(ONNXRUNTIME).resolve()
    key = hashlib.sha256(SOURCE.read_bytes() + f"{libraries[-1]} {headers}".encode()).hexdigest()[:16]
    out = cache_dir() / "native" / f"ort_runner-aarch64-{key}"
    if out.exists():
        return out
    return compile_atomically(out, lambda tmp: [compiler, "-std=c++17", "-O2", "-o", tmp, str(SOURCE), f"-I{headers}",
                                                str(libraries[-1]), "-Wl,-rpath,$ORIGIN"],
                              f"ort_runner for aarch64 with {compiler}", log)
