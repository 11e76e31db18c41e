"""Building the kernel libraries into their cache: a cache folder whose library was removed is built again, a
failed build leaves no scratch folder, and a cache nothing can be written to is one clear error before any
download or compile."""

from __future__ import annotations

from pathlib import Path

import pytest

from clcdeploy.kernels.build import KernelBuildError, build_executorch_kernels, build_onnxruntime_kernels
from clcdeploy.kernels.headers import ONNXRUNTIME, include_dir


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty kernel cache; ONNX Runtime's headers from the usual one (downloaded there once)."""
    monkeypatch.setenv(ONNXRUNTIME.env, str(include_dir(ONNXRUNTIME).resolve()))
    monkeypatch.setenv("CLCDEPLOY_KERNEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_cached_build_whose_library_was_removed_is_built_again(fresh_cache: Path) -> None:
    library = build_onnxruntime_kernels()
    library.unlink()
    assert build_onnxruntime_kernels() == library and library.is_file()


def test_a_failed_build_leaves_no_scratch_folder(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    with pytest.raises(KernelBuildError, match="kernel build failed"):
        build_executorch_kernels()
    assert not fresh_cache.exists() or list(fresh_cache.iterdir()) == []


def test_an_unwritable_cache_is_one_error_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ONNXRUNTIME.env, raising=False)
    monkeypatch.setenv("CLCDEPLOY_KERNEL_CACHE", "/proc/clcdeploy-kernels")  # /proc takes no folders, even from root
    with pytest.raises(KernelBuildError, match="the kernel cache /proc/clcdeploy-kernels is not writable .*"
                                               "set CLCDEPLOY_KERNEL_CACHE to a writable folder"):
        build_onnxruntime_kernels()


def test_native_builds_are_cached_per_cpu_and_cross_builds_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache shared by two machines (a network home) must not hand one the other's -march=native library."""
    from clcdeploy.kernels import build

    here = build._source_hash(True, []), build._source_hash(False, [])
    monkeypatch.setattr(build, "_cpu_features", lambda: "x86_64 flags : fpu sse2")
    assert build._source_hash(True, []) != here[0] and build._source_hash(False, []) == here[1]
