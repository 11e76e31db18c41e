"""C/C++ API headers of the runtimes whose wheels ship none.

- ONNX Runtime: Debian 13 ("trixie") `libonnxruntime-dev` 1.21.0, from Debian's package archive. C API
  version 21; the C API is append-only, so a custom-op library built with these headers runs in any newer
  ONNX Runtime (1.31 here). The .deb is pinned by URL and SHA-256, downloaded once into the kernel cache and
  unpacked in Python (a .deb is an `ar` archive holding `data.tar.*`); the headers are
  architecture-independent, so the amd64 package serves cross builds too.
- TensorFlow Lite / LiteRT: the five headers the delegate needs, vendored from Debian's
  `libtensorflow-lite-dev` 2.14.1 (`third_party/tflite-2.14.1`: only Debian's rolling suites carry that
  package, so its pool file will not stay).

`ONNXRUNTIME_INCLUDE_DIR` / `TFLITE_INCLUDE_DIR` point at other headers (offline machines, other versions).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from clcdeploy.kernels.build import KernelBuildError, cache_root, writable_cache_root

POOL = "https://deb.debian.org/debian/pool/main"


@dataclass(frozen=True)
class HeaderPackage:
    name: str
    url: str
    sha256: str
    prefix: str      # the package's files under this path are the headers, by path relative to it
    required: str    # a header the include directory must have
    env: str         # environment variable that overrides the download

    @property
    def cache_name(self) -> str:
        return f"headers-{self.name}-{self.sha256[:12]}"


ONNXRUNTIME = HeaderPackage(
    "onnxruntime", f"{POOL}/o/onnxruntime/libonnxruntime-dev_1.21.0+dfsg-1_amd64.deb",
    "14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08",
    prefix="usr/include/onnxruntime/", required="onnxruntime_cxx_api.h", env="ONNXRUNTIME_INCLUDE_DIR")
TFLITE_VENDORED = Path(__file__).with_name("third_party") / "tflite-2.14.1"
TFLITE_REQUIRED = "tensorflow/lite/c/common.h"


def tflite_include_dir() -> Path:
    """The TensorFlow Lite C headers: `TFLITE_INCLUDE_DIR` if set, else the vendored 2.14.1 copy."""
    return _override("TFLITE_INCLUDE_DIR", TFLITE_REQUIRED) or TFLITE_VENDORED


def include_dir(package: HeaderPackage) -> Path:
    """A directory holding `package`'s headers (its `required` header among them), downloading them if needed."""
    override = _override(package.env, package.required)
    if override:
        return override
    target = cache_root() / package.cache_name
    if (target / package.required).is_file():
        return target
    writable_cache_root()  # before the download, not after it
    headers = _headers_from_deb(_download(package), package)
    scratch = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    for name, content in headers.items():
        path = scratch / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    try:
        scratch.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _override(env: str, required: str) -> Path | None:
    """The include directory the environment variable `env` names, if set; it must hold `required`."""
    value = os.environ.get(env)
    if not value:
        return None
    if not (Path(value) / required).is_file():
        raise KernelBuildError(f"{env}={value} has no {required}; point it at an include directory that has it, "
                               f"or unset it")
    return Path(value)


def _download(package: HeaderPackage) -> bytes:
    try:
        with urllib.request.urlopen(package.url, timeout=120) as response:
            data = response.read()
    except OSError as exc:
        raise KernelBuildError(f"cannot download the {package.name} headers from {package.url} ({exc}); set "
                               f"{package.env} to a local include directory") from None
    if hashlib.sha256(data).hexdigest() != package.sha256:
        raise KernelBuildError(f"{package.url} does not have the pinned SHA-256 {package.sha256}; refusing it")
    return data


def _ar_members(data: bytes) -> dict[str, bytes]:
    """Members of a System V `ar` archive (the .deb container)."""
    if not data.startswith(b"!<arch>\n"):
        raise KernelBuildError("the downloaded header package is not a .deb (ar) archive")
    members, offset = {}, 8
    while offset + 60 <= len(data):
        header = data[offset:offset + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        members[name] = data[offset + 60:offset + 60 + size]
        offset += 60 + size + (size % 2)  # members are 2-byte aligned
    return members


def _headers_from_deb(deb: bytes, package: HeaderPackage) -> dict[str, bytes]:
    """The package's files under `prefix`, by path relative to it."""
    members = _ar_members(deb)
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if data_name is None:
        raise KernelBuildError(f"the {package.name} header package has no data archive")
    headers = {}
    with tarfile.open(fileobj=io.BytesIO(members[data_name])) as archive:
        for member in archive.getmembers():
            name = member.name.removeprefix("./")
            if member.isfile() and name.startswith(package.prefix) and ".." not in Path(name).parts:
                headers[name[len(package.prefix):]] = archive.extractfile(member).read()
    if package.required not in headers:
        raise KernelBuildError(f"the {package.name} header package has no {package.required}")
    return headers
