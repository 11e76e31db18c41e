"""scripts/bench_litert_delegate_threads.py: one line and exit code 2 for bad input, a --baseline-library that is
not a loadable LiteRT delegate included (checked before LiteRT loads it)."""

from __future__ import annotations

import gc

import pytest

from script_loading import load_script


@pytest.fixture(scope="module")
def bench_litert_delegate_threads():
    return load_script("bench_litert_delegate_threads")


@pytest.fixture
def models_dir(tmp_path):
    """Placeholders where the exports go: the checks look at paths, not contents."""
    for path in ("std/mobilenet_v1/mobilenet_v1.tflite", "std/clcnet_a/clcnet_a.tflite",
                 "fused/clcnet_a/clcnet_a.tflite"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    return tmp_path


def run(script, capsys, argv: list[str]) -> str:
    assert script.main(argv) == 2
    gc.collect()  # a half-built LiteRT Delegate complained from its __del__ here
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("bench_litert_delegate_threads: error: ")
    return captured.err


def test_missing_exports_are_named(bench_litert_delegate_threads, capsys, tmp_path):
    err = run(bench_litert_delegate_threads, capsys, ["--models-dir", str(tmp_path)])
    assert "mobilenet_v1.tflite" in err and "export them as the docstring shows" in err


def test_bad_counts(bench_litert_delegate_threads, capsys, models_dir):
    err = run(bench_litert_delegate_threads, capsys, ["--models-dir", str(models_dir), "--runs", "0"])
    assert "--threads, --runs and --rounds must be at least 1" in err


@pytest.mark.parametrize("library, message", [
    ("missing.so", "no such file"),
    ("junk.so", "cannot be loaded"),
])
def test_a_baseline_library_that_cannot_load(bench_litert_delegate_threads, capsys, models_dir, library, message):
    (models_dir / "junk.so").write_text("not a shared library\n")
    err = run(bench_litert_delegate_threads, capsys,
              ["--models-dir", str(models_dir), "--baseline-library", str(models_dir / library)])
    assert f"--baseline-library {models_dir / library}" in err and message in err


def test_a_shared_library_that_is_no_delegate(bench_litert_delegate_threads, capsys, models_dir):
    import _ctypes  # any shared library without the delegate's entry points: a CPython extension module

    err = run(bench_litert_delegate_threads, capsys, ["--models-dir", str(models_dir), "--baseline-library",
                                                      _ctypes.__file__])
    assert "is not a LiteRT external delegate (no tflite_plugin_create_delegate" in err
