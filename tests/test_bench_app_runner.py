"""The demo-app runner's side of a run (`--runner app`): the command it starts the app with, and what it makes of
the app's answer. Android cannot run here, so the host device's shell finds stand-ins for its tools first on its
PATH (android_shell_fixtures); the harness code, the shell and the result files are the real ones."""

import json
import os
import subprocess
import sys

from android_shell_fixtures import fake_android  # noqa: F401  (fixture)


def bench(*args):
    return subprocess.run([sys.executable, "-m", "clcdeploy", "bench", "--runner", "app", "--models", "clcnet_tiny",
                           "--runs", "3", "--warmup", "1", *args], capture_output=True, text=True, timeout=600,
                          env=os.environ.copy())


def test_a_run_sends_the_artifacts_input_shape_and_wakes_the_phone_first(fake_android, tiny_models_dir, tmp_path):
    result = bench("--formats", "pte,tflite", "--models-dir", str(tiny_models_dir), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    calls = (fake_android / "calls.log").read_text().splitlines()
    starts = [line for line in calls if line.startswith("am start")]
    manifest = json.loads((tiny_models_dir / "clcnet_tiny" / "manifest.json").read_text())
    for fmt, start in zip(("pte", "tflite"), starts, strict=True):
        shape = ",".join(map(str, manifest["formats"][fmt]["input_shape"]))
        assert f"--eia input_shape {shape} " in f"{start} " and f"--es runtime {fmt}" in start
        assert calls.index("input keyevent KEYCODE_WAKEUP") < calls.index(start)
    assert manifest["formats"]["pte"]["input_shape"] != manifest["formats"]["tflite"]["input_shape"]  # NCHW, NHWC
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert [row["times_ms"] for row in rows] == [[10.0, 11.0, 12.0]] * 2
    assert all(row["extra"]["threads"] == 4 for row in rows)  # the count the app used, not the 0 requested
    assert [row["extra"]["runtime_library"] for row in rows] == [
        "org.pytorch:executorch-android:1.5.1", "com.google.ai.edge.litert:litert:1.4.2"]
    assert ("Runtimes in the demo app: pte org.pytorch:executorch-android:1.5.1; tflite "
            "com.google.ai.edge.litert:litert:1.4.2 (the tools in results.json are this host's Python packages)."
            ) in (tmp_path / "out" / "report.md").read_text()


def test_the_apps_error_message_is_shown(fake_android, tiny_models_dir):
    (fake_android / "mode").write_text("error")
    result = bench("--formats", "pte", "--models-dir", str(tiny_models_dir))
    assert result.returncode == 2
    assert "the demo app failed on clcnet_tiny/pte: ExecuTorch has no native library for this device's ABIs" in (
        result.stderr), result.stderr


def test_a_result_of_another_run_is_refused(fake_android, tiny_models_dir):
    (fake_android / "mode").write_text("stale")
    result = bench("--formats", "tflite", "--models-dir", str(tiny_models_dir))
    assert result.returncode == 2 and "belongs to another run ('another-run'" in result.stderr, result.stderr


def test_an_app_that_dies_without_a_result_ends_the_run_at_once(fake_android, tiny_models_dir):
    (fake_android / "mode").write_text("crash")
    result = bench("--formats", "pte", "--models-dir", str(tiny_models_dir), "--timeout", "3600")
    assert result.returncode == 2, result.stderr
    assert "the demo app's process ended without a result for clcnet_tiny/pte (a crash: see `adb logcat" in (
        result.stderr)
    # one result read, one process check, one read again: no polling until the hour's timeout
    calls = (fake_android / "calls.log").read_text().splitlines()
    assert sum(line.startswith("pidof") for line in calls) == 1


def test_cpu_mask_with_the_app_is_refused_before_any_work(fake_android, tmp_path):
    result = bench("--formats", "pte", "--cpu-mask", "f", "--models-dir", str(tmp_path / "models"))
    assert result.returncode == 2 and not (tmp_path / "models").exists()
    assert result.stderr.strip() == ("clcdeploy bench: error: --cpu-mask cannot pin the demo app: Android starts its "
                                     "process, not the shell that taskset wraps; drop --cpu-mask, or use a runner "
                                     "started from the shell (pte_runner, --runner-bin)")
