"""scripts/bench_runtimes.py: bad input is refused up front with one line and exit code 2; a tiny real run
writes its table; models are loaded and run in new random orders. Also scripts/bench_litert_delegate_threads.py
on tiny exports."""

from __future__ import annotations

import re
import sys

import pytest

from script_loading import SCRIPTS, load_script


@pytest.fixture(scope="module")
def bench_runtimes():
    return load_script("bench_runtimes")


@pytest.mark.parametrize("argv, message", [
    (["--models", "mobilenet_v1,nonet"], "unknown model nonet"),
    (["--variants", "split-late,zigzag"], "unknown variant zigzag"),
    (["--runtimes", "onnx,coreml"], "unknown runtime coreml"),
    (["--threads", "1,two"], "--threads '1,two'"),
    (["--threads", "0"], "--threads '0'"),
    (["--runs", "0"], "--runs, --block and --repeat must be at least 1"),
    (["--profile", "clcnet_a/split-k", "--variants", "split-late"], "--profile entry 'clcnet_a/split-k'"),
    (["--models", "mobilenet_v1", "--profile", "clcnet_a/standard"], "--profile entry 'clcnet_a/standard'"),
])
def test_bad_input_is_one_line_and_exit_code_2(bench_runtimes, capsys, argv, message):
    assert bench_runtimes.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bench_runtimes: error: ") and message in err


def test_tiny_run_writes_the_table(bench_runtimes, tmp_path, capsys):
    table = tmp_path / "table.md"
    argv = ["--models", "mobilenet_v1", "--variants", "", "--runtimes", "onnx", "--threads", "1", "--runs", "2",
            "--warmup", "0", "--size", "32", "--markdown", str(table)]
    assert bench_runtimes.main(argv) == 0
    text = table.read_text()
    assert "| MobileNet-v1 1.0 | " in text and " = 1.00x |" in text and "1x3x32x32" in text
    assert text in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]  # no temporary file left behind


def test_tiny_run_profiles_executorch_and_litert_per_operator(bench_runtimes, capsys):
    argv = ["--models", "mobilenet_v1", "--variants", "", "--runtimes", "pte,tflite", "--threads", "1", "--runs", "2",
            "--warmup", "0", "--size", "32", "--profile", "mobilenet_v1/standard"]
    assert bench_runtimes.main(argv) == 0
    executorch, litert = capsys.readouterr().out.split("**ExecuTorch XNNPACK**")[1].split("**LiteRT XNNPACK**")
    # MobileNet-v1: 13 depthwise convolutions, the stem, 13 pointwise and the classifier as GEMMs
    for profile in (executorch, litert):
        assert "| Convolution (NHWC, F32) DWConv | " in profile and " (13) |" in profile
        assert "| Fully Connected (NC, F32) GEMM | " in profile and " (14) |" in profile
    from clcdeploy.bench import litert_profile, operator_profile

    outside = re.escape(operator_profile.OUTSIDE_OPERATORS)
    assert re.search(rf"\| {outside} \| \d+\.\d\d \(1\) \|", executorch)  # one delegate call

    outside = re.escape(litert_profile.OUTSIDE_OPERATORS)
    assert re.search(rf"\| {outside} \| \d+\.\d\d \(1\) \|", litert)  # one invoke


def test_models_are_loaded_and_run_in_a_new_order_every_round(bench_runtimes, tmp_path, monkeypatch):
    """Where a model's buffers land moves its time by a few percent, and so does which model ran before it:
    both orders are drawn anew (load order per round, run order per pass), around the real sessions."""
    entries = bench_runtimes.build_entries(["mobilenet_v1", "clcnet_a"], ["floor2"])
    bench_runtimes.export_all(entries, ["onnx"], 32, tmp_path)
    loads, runs = [], []

    class RecordedSession(bench_runtimes.Session):
        def __init__(self, fmt, path, threads, x):
            super().__init__(fmt, path, threads, x)
            self.path = path
            loads.append(path)

        def __call__(self):
            runs.append(self.path)
            super().__call__()

    monkeypatch.setattr(bench_runtimes, "Session", RecordedSession)
    bench_runtimes.time_all(entries, ["onnx"], [1], runs=4, warmup=0, size=32, repeat=3)
    paths = [e.paths["onnx"] for e in entries]
    load_orders = [tuple(loads[i:i + 3]) for i in range(0, 9, 3)]
    run_orders = [tuple(runs[i:i + 3]) for i in range(0, 36, 3)]
    assert all(sorted(o) == sorted(paths) for o in load_orders + run_orders)
    assert len(set(load_orders)) > 1 and len(set(run_orders)) > 1
    assert all(len(e.times[("onnx", 1)]) == 12 for e in entries)  # 4 runs x 3 rounds, each kept by its model


LITERT_THREADS_SCRIPT = SCRIPTS / "bench_litert_delegate_threads.py"


def test_litert_delegate_threads_script_times_every_program_side_by_side(tmp_path):
    """scripts/bench_litert_delegate_threads.py on tiny exports: reference, standard, and the fused .tflite with
    this delegate and a 'baseline' build (here the same library) at 1 and 2 threads; then a missing export."""
    import subprocess

    from clcdeploy.export.pipeline import export_model
    from clcdeploy.kernels.build import build_litert_kernels

    for name in ("mobilenet_v1_tiny", "clcnet_tiny"):
        export_model(name, formats=("tflite",), out_dir=tmp_path / "std")
    export_model("clcnet_tiny", formats=("tflite",), out_dir=tmp_path / "fused", fused_igc=("tflite",))
    args = [sys.executable, str(LITERT_THREADS_SCRIPT), "--models-dir", str(tmp_path), "--reference",
            "mobilenet_v1_tiny", "--model", "clcnet_tiny", "--runs", "3", "--warmup", "1", "--rounds", "2"]
    done = subprocess.run([*args, "--baseline-library", str(build_litert_kernels())], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and " ms = " in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| mobilenet_v1_tiny", "| clcnet_tiny, standard operators", "| clcnet_tiny fused, delegate 1 thread",
        "| clcnet_tiny fused, delegate 2 threads", "| clcnet_tiny fused, baseline delegate 1 thread",
        "| clcnet_tiny fused, baseline delegate 2 threads"]
    assert all(row.count(" ms = ") == 2 for row in rows) and "= 1.00x" in rows[0]
    missing = subprocess.run([*args[:6], "--model", "clcnet_b"], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "clcnet_b.tflite" in missing.stderr
