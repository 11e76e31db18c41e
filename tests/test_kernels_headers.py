"""The runtimes' API headers (`clcdeploy.kernels.headers`): ONNX Runtime's .deb is read from its ar and tar
layers, a download that does not match its pinned SHA-256 is refused, the TensorFlow Lite headers are
vendored, and an override without the headers is one clear error."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator

import pytest

from clcdeploy.kernels.build import KernelBuildError
from clcdeploy.kernels.headers import (
    ONNXRUNTIME, TFLITE_REQUIRED, _download, _headers_from_deb, include_dir, tflite_include_dir,
)


def deb(files: dict[str, bytes]) -> bytes:
    """A .deb as dpkg-deb writes it: ar with debian-binary, control.tar.xz and data.tar.xz."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))

    def member(name: str, content: bytes) -> bytes:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n".encode()
        return header + content + (b"\n" if len(content) % 2 else b"")

    return (b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("control.tar.xz", b"abc")
            + member("data.tar.xz", data.getvalue()))


def test_headers_are_read_from_the_package() -> None:
    files = {"./usr/include/onnxruntime/onnxruntime_cxx_api.h": b"// cxx\n",
             "./usr/include/onnxruntime/core/providers/resource.h": b"// odd length\n",
             "./usr/share/doc/libonnxruntime-dev/copyright": b"x"}
    assert _headers_from_deb(deb(files), ONNXRUNTIME) == {"onnxruntime_cxx_api.h": b"// cxx\n",
                                                          "core/providers/resource.h": b"// odd length\n"}


def test_a_package_without_the_required_header_or_not_a_deb_is_refused() -> None:
    with pytest.raises(KernelBuildError, match="has no onnxruntime_cxx_api.h"):
        _headers_from_deb(deb({"./usr/include/onnxruntime/other.h": b""}), ONNXRUNTIME)
    with pytest.raises(KernelBuildError, match="not a .deb"):
        _headers_from_deb(b"PK\x03\x04", ONNXRUNTIME)


def test_include_dir_overrides_without_headers_are_one_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ONNXRUNTIME.env, str(tmp_path))
    with pytest.raises(KernelBuildError, match=f"has no {ONNXRUNTIME.required}"):
        include_dir(ONNXRUNTIME)
    monkeypatch.setenv("TFLITE_INCLUDE_DIR", str(tmp_path))
    with pytest.raises(KernelBuildError, match=f"has no {TFLITE_REQUIRED}"):
        tflite_include_dir()


def test_vendored_tflite_headers_are_complete_and_licensed() -> None:
    vendored = tflite_include_dir()
    assert (vendored / TFLITE_REQUIRED).is_file() and "Apache License" in (vendored / "LICENSE").read_text()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, bytes]]:
    """A URL on a local HTTP server (127.0.0.1, any free port) and the bytes it serves: a real download, offline."""
    body = deb({"./usr/include/onnxruntime/onnxruntime_cxx_api.h": b"// cxx\n"})

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy set for CI must not be asked for this machine
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/libonnxruntime-dev.deb", body
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_download_that_does_not_match_the_pinned_hash_is_refused(served: tuple[str, bytes]) -> None:
    url, body = served
    pinned = dataclasses.replace(ONNXRUNTIME, url=url, sha256=hashlib.sha256(body).hexdigest())
    assert _download(pinned) == body
    with pytest.raises(KernelBuildError, match="does not have the pinned SHA-256"):
        _download(dataclasses.replace(pinned, sha256=hashlib.sha256(body + b"x").hexdigest()))
