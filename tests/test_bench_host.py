"""`clcdeploy bench` end to end on the host: real exports, real runtimes, real files."""

import json
import os
import subprocess
import sys

import pytest

from bench_fixtures import TINY_MODELS


def bench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "clcdeploy", "bench", *args], capture_output=True, text=True,
                          timeout=900, cwd=cwd)


def test_ten_passes_per_model_and_format(tiny_models_dir, tmp_path):
    out = tmp_path / "results"
    result = bench("--models", ",".join(TINY_MODELS), "--models-dir", str(tiny_models_dir), "--runs", "10",
                   "--warmup", "2", "--threads", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] is True and doc["devices"][0]["facts"]["cores"] >= 1
    assert {(r["model"], r["format"]) for r in doc["results"]} == {
        (m, f) for m in TINY_MODELS for f in ("pte", "tflite", "onnx")}
    for r in doc["results"]:
        assert len(r["times_ms"]) == 10 and all(t > 0 for t in r["times_ms"])
        assert r["mean_ms"] == pytest.approx(sum(r["times_ms"]) / 10)
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        artifact = next((tiny_models_dir / r["model"]).glob(f"*.{r['format']}"))
        assert r["file_bytes"] == artifact.stat().st_size
        assert r["outputs_finite"] is True and r["load_ms"] > 0
    for name in ("results.csv", "report.md", "latency_vs_macs.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "latency_vs_macs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "clcnet_tiny" in (out / "report.md").read_text()


def test_json_output_matches_results_file(tiny_models_dir, tmp_path):
    result = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(tiny_models_dir),
                   "--runs", "3", "--warmup", "0", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert len(doc["results"]) == 1 and len(doc["results"][0]["times_ms"]) == 3


def test_rounds_alternate_their_order_and_pool_the_passes(tiny_models_dir, tmp_path):
    out = tmp_path / "results"
    result = bench("--models", ",".join(TINY_MODELS), "--formats", "onnx", "--models-dir", str(tiny_models_dir),
                   "--runs", "2", "--warmup", "0", "--threads", "1", "--rounds", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    started = [line.split(":")[0] for line in result.stdout.splitlines()
               if line.endswith("timed passes (python runner)")]
    forward = [f"[local] {model} onnx" for model in TINY_MODELS]
    assert started == [f"{name} (round {index} of 3)" for index, names in
                       ((1, forward), (2, forward[::-1]), (3, forward)) for name in names]
    doc = json.loads((out / "results.json").read_text())
    assert doc["options"]["rounds"] == 3 and len(doc["results"]) == len(TINY_MODELS)
    for r in doc["results"]:
        round_means = r["extra"]["round_means_ms"]
        assert len(r["times_ms"]) == 6 and len(round_means) == 3
        assert r["mean_ms"] == pytest.approx(sum(r["times_ms"]) / 6) == pytest.approx(sum(round_means) / 3)
    assert "round means" in (out / "report.md").read_text()


def test_side_by_side_runs_each_formats_models_in_one_process(tiny_models_dir, tmp_path):
    out = tmp_path / "results"
    result = bench("--models", ",".join(TINY_MODELS), "--models-dir", str(tiny_models_dir), "--runs", "3",
                   "--warmup", "1", "--threads", "1", "--side-by-side", "--out", str(out))
    assert result.returncode == 0, result.stderr
    started = [line for line in result.stdout.splitlines() if "side by side" in line]
    assert started == [f"[local] {', '.join(f'{m}/{fmt}' for m in TINY_MODELS)}: 1 warm-up + 3 timed passes each, "
                       f"side by side (python runner)" for fmt in ("pte", "tflite", "onnx")]
    doc = json.loads((out / "results.json").read_text())
    assert doc["options"]["side_by_side"] is True and len(doc["results"]) == 3 * len(TINY_MODELS)
    for r in doc["results"]:
        assert len(r["times_ms"]) == 3 and r["outputs_finite"] is True and r["runner"] == "python"
        assert r["extra"]["side_by_side_with"] == [f"{m}/{r['format']}" for m in TINY_MODELS]
        assert r["peak_memory_mb"] is None  # the process held every model
    assert "Side by side:" in (out / "report.md").read_text()


def test_side_by_side_with_clcdeploys_pte_runner(tiny_models_dir, tmp_path):
    from clcdeploy.device.native import build_pte_runner

    binary = build_pte_runner("host", log=lambda _: None)
    result = bench("--models", ",".join(TINY_MODELS), "--formats", "pte", "--models-dir", str(tiny_models_dir),
                   "--runs", "3", "--warmup", "1", "--side-by-side", "--runner", "pte_runner", "--runner-bin",
                   str(binary), "--json")
    assert result.returncode == 0, result.stderr
    measurements = json.loads(result.stdout)["results"]
    assert [m["model"] for m in measurements] == list(TINY_MODELS)
    for m in measurements:
        assert m["runner"] == "pte_runner" and len(m["times_ms"]) == 3 and m["outputs_finite"] is True
        assert m["extra"]["side_by_side_with"] == [f"{name}/pte" for name in TINY_MODELS]


def test_the_python_runner_alternates_the_models_pass_by_pass(tiny_models_dir):
    """Every turn times each model once, in a new order: no model always runs first."""
    from clcdeploy.bench.runners import RUNNER_SCRIPT

    paths = [str(next((tiny_models_dir / m).glob("*.onnx"))) for m in TINY_MODELS]
    done = subprocess.run([sys.executable, str(RUNNER_SCRIPT), *[a for p in paths for a in ("--model", p)],
                           "--format", "onnx", "--input-shape", "1,3,32,32", "--runs", "8", "--warmup", "1",
                           "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert [len(m["times_ms"]) for m in report["models"]] == [8, 8]
    passes = [line.rsplit("(", 1)[1].rstrip(")") for line in done.stderr.splitlines() if line.startswith("pass ")]
    turns = [passes[i:i + 2] for i in range(0, len(passes), 2)]
    assert len(turns) == 8 and all(sorted(turn) == sorted(paths) for turn in turns)
    assert {turn[0] for turn in turns} == set(paths)


@pytest.mark.parametrize("args, message", [
    (("--models", "clcnet_zz", "--no-export"), "unknown model 'clcnet_zz'"),
    (("--formats", "caffe2"), "unknown format caffe2"),
    (("--models", "clcnet_tiny", "--no-export", "--models-dir", "EMPTY"), "run `clcdeploy export clcnet_tiny"),
    (("--runner", "benchmark_model", "--formats", "tflite", "--runner-bin", "/nonexistent/benchmark_model"),
     "not a readable file"),
    (("--runner", "benchmark_model", "--formats", "tflite"), "needs --runner-bin"),
    (("--runner", "benchmark_model", "--runner-bin", __file__, "--formats", "pte,tflite"),
     "--runner benchmark_model runs only tflite artifacts, not pte: pass --formats tflite"),
    (("--runner-bin", __file__), "--runner-bin is the binary of a native runner"),
    (("--side-by-side", "--runner", "executor_runner", "--runner-bin", __file__, "--formats", "pte"),
     "--side-by-side times several models in one process, which --runner executor_runner cannot"),
    (("--runs", "0"), "--runs must be at least 1"),
    (("--rounds", "0"), "--rounds must be at least 1"),
    (("--warmup", "-1"), "--warmup must not be negative"),
    (("--threads", "100000"), "--threads 100000 is more than 256"),
    (("--timeout", "0"), "--timeout is the seconds allowed per model run, more than 0"),
    (("--timeout", "inf"), "--timeout is the seconds allowed per model run, more than 0"),
    (("--cooldown", "nan"), "--cooldown is the seconds of idle before each model"),
    (("--cooldown", "1e20"), "--cooldown is the seconds of idle before each model"),
    (("--cpu-mask", "zz"), "hexadecimal CPU mask"),
    (("--cpu-mask", "0"), "--cpu-mask 0 selects no CPU"),
    (("--models", "../models/clcnet_tiny"), "--models takes model names, not paths"),
    (("--models", "CLCNET_TINY", "--no-export"), "did you mean clcnet_tiny"),
    (("--device", "all", "--device", "127.0.0.1:1"), "--device all already means every reachable ADB device"),
    (("--device", "127.0.0.1:1", "--device", "localhost:1"),
     "--device 127.0.0.1:1 and --device localhost:1 name the same device"),
])
def test_bad_input_is_one_line_exit_2(args, message, tmp_path):
    args = tuple(str(tmp_path / "empty") if a == "EMPTY" else a for a in args)
    result = bench(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "models").exists()  # refused before exporting anything (the default --models-dir)


def test_an_unreachable_device_fails_before_the_missing_artifacts_are_exported(tmp_path):
    models_dir = tmp_path / "models"
    result = bench("--device", "127.0.0.1:1", "--models", "clcnet_tiny", "--formats", "onnx", "--models-dir",
                   str(models_dir))
    assert result.returncode == 2
    assert "device 127.0.0.1:1 is not reachable" in result.stderr and "connection refused" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not models_dir.exists() and result.stdout == ""


def test_an_unwritable_out_folder_is_refused_before_anything_is_exported_or_timed(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(tmp_path / "models"),
                   "--out", str(blocker / "results"))
    assert result.returncode == 2
    assert f"output folder {blocker / 'results'} cannot be made: {blocker} is a file, not a folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "models").exists() and result.stdout == ""


def test_runner_crash_reports_exit_status_and_stderr(tiny_models_dir, tmp_path):
    crashing = tmp_path / "benchmark_model"
    crashing.write_text("#!/bin/sh\necho 'ERROR: Failed to allocate tensors' >&2\nexit 3\n")
    crashing.chmod(0o755)
    out = tmp_path / "results"
    result = bench("--models", "clcnet_tiny", "--formats", "tflite", "--models-dir", str(tiny_models_dir),
                   "--runner", "benchmark_model", "--runner-bin", str(crashing), "--out", str(out))
    assert result.returncode == 2
    assert "exit status 3" in result.stderr and "Failed to allocate tensors" in result.stderr
    assert not out.exists()  # nothing was measured (results of a partly measured run: test_bench_virtual_device)


@pytest.mark.parametrize("runner, expected", [([], "pte_runner"), (["--runner", "python"], "python")])
def test_fused_igc_pte_runs_with_the_kernel_on_the_host(fused_models_dir, tmp_path, runner, expected):
    """`auto` takes the host's pte_runner (kernel built in, aligned planned memory); the python runner loads
    the kernel library."""
    result = bench("--models", "clcnet_tiny", "--formats", "pte", "--models-dir", str(fused_models_dir),
                   "--runs", "3", "--warmup", "1", "--json", "--out", str(tmp_path / "results"), *runner)
    assert result.returncode == 0, result.stderr
    (measurement,) = json.loads(result.stdout)["results"]
    assert measurement["runner"] == expected
    assert len(measurement["times_ms"]) == 3 and measurement["outputs_finite"] is True
    assert measurement["extra"]["fused_igc_kernel"] is True
    assert "pte (fused IGC)" in (tmp_path / "results" / "report.md").read_text()


def test_fused_igc_onnx_and_tflite_run_with_their_kernel_libraries_on_the_host(fused_models_dir, tmp_path):
    result = bench("--models", "clcnet_tiny", "--formats", "onnx,tflite", "--models-dir", str(fused_models_dir),
                   "--runs", "3", "--warmup", "1", "--threads", "2", "--json", "--out", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    measurements = json.loads(result.stdout)["results"]
    assert {m["format"] for m in measurements} == {"onnx", "tflite"}
    for measurement in measurements:
        assert len(measurement["times_ms"]) == 3 and measurement["outputs_finite"] is True
        assert measurement["extra"]["fused_igc_kernel"] is True
    report = (tmp_path / "results" / "report.md").read_text()
    assert "onnx (fused IGC)" in report and "tflite (fused IGC)" in report


def test_fused_igc_tflite_with_a_runner_lacking_the_delegate_is_refused_before_connecting(fused_models_dir):
    result = bench("--device", "127.0.0.1:1", "--models", "clcnet_tiny", "--formats", "tflite",
                   "--models-dir", str(fused_models_dir), "--runs", "3", "--runner", "benchmark_model",
                   "--runner-bin", __file__)
    assert result.returncode == 2
    assert "LiteRT delegate" in result.stderr and "--runner auto or python" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("runner", [["--runner", "python"], ["--runner", "executor_runner", "--runner-bin", __file__]])
def test_fused_igc_pte_with_a_runner_lacking_the_kernel_is_refused_before_connecting(fused_models_dir, runner):
    result = bench("--device", "127.0.0.1:1", "--models", "clcnet_tiny", "--formats", "pte",
                   "--models-dir", str(fused_models_dir), "--runs", "3", *runner)
    assert result.returncode == 2
    assert "fused IGC kernel" in result.stderr and "pte_runner" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_non_finite_outputs_are_flagged(tmp_path):
    """A real ONNX model whose output is NaN (log of a negative number), with a manifest as export writes."""
    import onnx
    from onnx import TensorProto, helper

    from clcdeploy.files import sha256_file

    graph = helper.make_graph(
        [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["n"]),
         helper.make_node("Log", ["n"], ["y"])], "nan",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    folder = tmp_path / "models" / "nan_model"
    folder.mkdir(parents=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, folder / "nan_model.onnx")
    manifest = {"model": "nan_model", "mult_adds": 0, "params": 0, "formats": {"onnx": {
        "file": "nan_model.onnx", "sha256": sha256_file(folder / "nan_model.onnx"), "input_shape": [1, 3, 8, 8]}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = bench("--models", "nan_model", "--formats", "onnx", "--models-dir", str(tmp_path / "models"),
                   "--runs", "2", "--json")
    assert result.returncode == 1
    assert "non-finite outputs: nan_model/onnx" in result.stderr
    assert json.loads(result.stdout)["results"][0]["outputs_finite"] is False


def test_a_run_that_measures_nothing_keeps_the_previous_results(tiny_models_dir, tmp_path):
    """Here taskset refuses a mask of cpu63 only (no such CPU): one line, and --out keeps the last results."""
    out = tmp_path / "results"
    good = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(tiny_models_dir), "--runs", "2",
                 "--out", str(out))
    assert good.returncode == 0, good.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(tiny_models_dir), "--runs", "2",
                   "--cpu-mask", "8000000000000000", "--out", str(out))
    assert result.returncode == 2
    assert "--cpu-mask 8000000000000000 selects no CPU that local can run on" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_timed_out_run_says_so_and_names_no_stage_of_an_earlier_run(tiny_models_dir, tmp_path):
    result = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(tiny_models_dir),
                   "--timeout", "0.001", "--out", str(tmp_path / "results"))
    assert result.returncode == 2
    assert "clcnet_tiny/onnx did not finish within --timeout 0.001 s" in result.stderr
    assert "raise --timeout" in result.stderr and " at done" not in result.stderr
    assert not (tmp_path / "results").exists()  # nothing measured, nothing written


def test_a_model_or_format_named_twice_runs_once(tiny_models_dir):
    result = bench("--models", "clcnet_tiny,clcnet_tiny", "--formats", "onnx,onnx", "--models-dir",
                   str(tiny_models_dir), "--runs", "2", "--warmup", "0", "--json")
    assert result.returncode == 0, result.stderr
    (measurement,) = json.loads(result.stdout)["results"]
    assert len(measurement["times_ms"]) == 2 and "round_means_ms" not in measurement["extra"]


def test_a_changed_artifact_is_refused_with_the_export_command(tiny_models_dir, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir / "clcnet_tiny", models / "clcnet_tiny")
    onnx_file = models / "clcnet_tiny" / "clcnet_tiny.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    result = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(models), "--no-export")
    assert result.returncode == 2
    assert f"{onnx_file} does not match its manifest" in result.stderr
    assert "clcdeploy export clcnet_tiny --formats onnx" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("manifest", ['{"formats": "x"}', "[1, 2]", "{not json",
                                      '{"formats": {"onnx": {"file": "clcnet_tiny.onnx"}}}',
                                      '{"formats": {"onnx": {"file": "/etc/passwd", "sha256": "0", '
                                      '"input_shape": [1, 3, 32, 32]}}}'])
def test_a_malformed_manifest_is_one_line(tiny_models_dir, tmp_path, manifest):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir / "clcnet_tiny", models / "clcnet_tiny")
    (models / "clcnet_tiny" / "manifest.json").write_text(manifest)
    result = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(models))
    assert result.returncode == 2
    assert "manifest.json is not a manifest clcdeploy export wrote" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_missing_format_is_exported_alone_at_the_size_of_the_others(tmp_path):
    models = tmp_path / "models"
    subprocess.run([sys.executable, "-m", "clcdeploy", "export", "clcnet_tiny", "--formats", "onnx", "--input-size",
                    "40", "--out", str(models)], check=True, capture_output=True, timeout=600)
    onnx_bytes = (models / "clcnet_tiny" / "clcnet_tiny.onnx").read_bytes()
    result = bench("--models", "clcnet_tiny", "--formats", "onnx,tflite", "--models-dir", str(models), "--runs", "2",
                   "--json")
    assert result.returncode == 0, result.stderr
    assert "exporting clcnet_tiny (tflite)" in result.stderr and "at 40x40" in result.stderr
    manifest = json.loads((models / "clcnet_tiny" / "manifest.json").read_text())
    assert manifest["input_shape"] == [1, 3, 40, 40] and set(manifest["formats"]) == {"onnx", "tflite"}
    assert (models / "clcnet_tiny" / "clcnet_tiny.onnx").read_bytes() == onnx_bytes


def test_pte_runner_on_the_host_needs_no_runner_bin(tiny_models_dir):
    result = bench("--models", "clcnet_tiny", "--formats", "pte", "--models-dir", str(tiny_models_dir), "--runs", "2",
                   "--runner", "pte_runner", "--json")
    assert result.returncode == 0, result.stderr
    (measurement,) = json.loads(result.stdout)["results"]
    assert measurement["runner"] == "pte_runner" and len(measurement["times_ms"]) == 2


def test_a_second_bench_on_a_busy_device_is_refused(tiny_models_dir, tmp_path):
    """This test holds the host's lock as a running bench would; a bench started meanwhile stops at once."""
    import os

    from clcdeploy.bench.device_lock import bench_lock

    with bench_lock("local"):
        result = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(tiny_models_dir),
                       "--out", str(tmp_path / "results"))
    assert result.returncode == 2
    assert f"another clcdeploy bench (pid {os.getpid()}) is using local" in result.stderr
    assert not (tmp_path / "results").exists()
    again = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(tiny_models_dir), "--runs", "1")
    assert again.returncode == 0, again.stderr


def test_a_busy_device_is_refused_before_missing_artifacts_are_exported(tmp_path):
    from clcdeploy.bench.device_lock import bench_lock

    with bench_lock("local"):
        result = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(tmp_path / "models"))
    assert result.returncode == 2 and "another clcdeploy bench" in result.stderr, result.stderr
    assert not (tmp_path / "models").exists()


def test_a_lock_folder_blocked_by_a_file_is_one_line(tiny_models_dir, tmp_path):
    import os

    (tmp_path / "cache" / "clcdeploy").mkdir(parents=True)
    (tmp_path / "cache" / "clcdeploy" / "locks").write_text("")
    result = subprocess.run([sys.executable, "-m", "clcdeploy", "bench", "--models", "clcnet_tiny", "--formats",
                             "onnx", "--models-dir", str(tiny_models_dir), "--runs", "1"], capture_output=True,
                            text=True, timeout=600, env=dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache")))
    assert result.returncode == 2 and "cannot open the lock" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_model_folder_copied_under_another_name_is_benchmarked(tiny_models_dir, tmp_path):
    """Two exports of one model kept side by side (say, other weights) under names of the user's choosing."""
    import shutil

    shutil.copytree(tiny_models_dir / "clcnet_tiny", tmp_path / "models" / "clcnet_tiny_trained")
    result = bench("--models", "clcnet_tiny_trained", "--formats", "onnx", "--models-dir", str(tmp_path / "models"),
                   "--no-export", "--runs", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["model"] == "clcnet_tiny_trained"


def test_a_bench_killed_before_it_measured_anything_leaves_no_out_folder(tiny_models_dir, tmp_path):
    """kill -9 cannot be cleaned up after: the results' own writes create --out, at the end."""
    import os
    import signal
    import time

    from clcdeploy.device.paths import cache_dir

    lock = cache_dir() / "locks" / "bench-local.lock"
    out = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "clcdeploy", "bench", "--models", "clcnet_tiny", "--formats", "onnx",
                             "--models-dir", str(tiny_models_dir), "--cooldown", "600", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip() == str(proc.pid)):
            time.sleep(0.2)  # until it holds the device: past the --out check, into the run
        assert lock.read_text().strip() == str(proc.pid), "the bench did not start"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not out.exists()


def test_a_cpu_mask_reaches_taskset_without_0x(tiny_models_dir, tmp_path, monkeypatch):
    """toybox's taskset (every Android from 6) refuses a mask written "0x1"; util-linux's, here, takes it. A
    stand-in that refuses it as toybox does is first on the PATH."""
    import shutil

    stub = tmp_path / "bin" / "taskset"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\ncase "$1" in *x*|*X*) echo "taskset: bad mask \'$1\'" >&2; exit 1 ;; esac\n'
                    f'exec {shutil.which("taskset")} "$@"\n')
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}{os.pathsep}{os.environ['PATH']}")
    result = bench("--models", "clcnet_tiny", "--formats", "onnx", "--models-dir", str(tiny_models_dir), "--runs", "2",
                   "--cpu-mask", "0x1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["options"]["cpu_mask"] == "1"


def _elf_header(machine: int) -> bytes:
    """The first 64 bytes of a 64-bit little-endian ELF program for `machine` (what the check reads)."""
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)


def test_a_runner_built_for_another_cpu_is_refused_before_it_is_pushed(tiny_models_dir, tmp_path):
    """A benchmark_model for 32-bit ARM phones (the paper's) given to this host; it is not started."""
    import platform

    from clcdeploy.bench.program_abi import KERNEL_ABIS

    armv7 = tmp_path / "benchmark_model"
    armv7.write_bytes(_elf_header(40))
    armv7.chmod(0o755)
    result = bench("--models", "clcnet_tiny", "--formats", "tflite", "--models-dir", str(tiny_models_dir),
                   "--runner", "benchmark_model", "--runner-bin", str(armv7))
    assert result.returncode == 2
    host = ", ".join(KERNEL_ABIS[platform.machine()])
    assert result.stderr.strip().endswith(f"--runner-bin {armv7} is built for armeabi-v7a, and local runs {host}: "
                                          f"build it for the device"), result.stderr


def test_onnx_runtime_telemetry_stays_off_in_validation_and_timing(tiny_models_dir, tmp_path):
    """ONNX Runtime 1.31 starts Microsoft's telemetry on its first session (a device id and an event store under the
    cache folder, HTTPS uploads) unless ORT_DISABLE_TELEMETRY is set: clcdeploy sets it, and so does the runner
    script it pushes to devices, which does not import clcdeploy."""
    from clcdeploy.bench.runners import RUNNER_SCRIPT

    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env |= {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    model = tiny_models_dir / "clcnet_tiny" / "clcnet_tiny.onnx"
    shape = ",".join(map(str, json.loads((model.parent / "manifest.json").read_text())["formats"]["onnx"]
                         ["input_shape"]))
    commands = [
        [sys.executable, "-m", "clcdeploy", "export", "mobilenet_v1_tiny", "--formats", "onnx", "--out",
         str(tmp_path / "models")],
        [sys.executable, str(RUNNER_SCRIPT), "--model", str(model), "--format", "onnx", "--input-shape", shape,
         "--runs", "1", "--warmup", "0"],
    ]
    for argv in commands:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr
    assert not [p for p in tmp_path.rglob("*") if p.name in ("Microsoft", ".onnxruntime")]
