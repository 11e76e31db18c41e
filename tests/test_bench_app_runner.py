"""The demo-app runner's side of a run (`--runner app`): the command it starts the app with, and what it makes of
the app's answer. Android cannot run here, so the host device's shell finds stand-ins for its tools first on its
PATH (android_shell_fixtures); the harness code, the shell and the result files are the real ones."""

import json
import os
import subprocess
import sys

import pytest
from android_shell_fixtures import android_5_shell, fake_android  # noqa: F401  (fixtures)
from device_fixtures import adb_home, endpoint  # noqa: F401  (fixtures)


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


def test_on_android_5_an_app_that_died_is_found_with_toolbox_ps(android_5_shell, tiny_models_dir):
    """Android 5 has no pidof: toolbox's `ps NAME` tells that the app's process has gone (pidof's 127 had made
    the harness poll until --timeout)."""
    (android_5_shell / "mode").write_text("crash")
    result = bench("--formats", "tflite", "--models-dir", str(tiny_models_dir), "--timeout", "30")
    assert result.returncode == 2, result.stderr
    assert "the demo app's process ended without a result for clcnet_tiny/tflite (a crash" in result.stderr, (
        result.stderr)
    assert "ps org.clcdeploy.demo" in (android_5_shell / "calls.log").read_text().splitlines()


def test_on_android_5_the_app_is_timed_and_the_facts_read_with_toolbox(android_5_shell, tiny_models_dir, tmp_path):
    from clcdeploy.device.facts import count_cpus

    result = bench("--formats", "tflite", "--models-dir", str(tiny_models_dir), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [row["times_ms"] for row in document["results"]] == [[10.0, 11.0, 12.0]]
    facts = document["devices"][0]["facts"]
    assert (facts["android_version"], facts["abi"], facts["kernel_machine"]) == ("5.1", "armeabi-v7a", "")
    with open("/sys/devices/system/cpu/present") as present:  # no nproc: cores from the kernel's CPU list
        assert facts["cores"] == count_cpus(present.read()) and 1 <= facts["cores_online"] <= facts["cores"]


def test_on_android_5_a_cpu_mask_needs_the_taskset_it_lacks(android_5_shell, tiny_models_dir):
    result = bench("--runner", "python", "--formats", "onnx", "--models-dir", str(tiny_models_dir), "--cpu-mask", "1")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("--cpu-mask needs taskset on local, which has none (Android 5 has no "
                                          "toybox, which brings it from Android 6): drop --cpu-mask"), result.stderr


def test_auto_gives_a_pte_to_the_app_only_where_it_has_executorch(android_5_shell, tmp_path, adb_home):
    """An armeabi-v7a Android 5.1 phone (the paper's) with the demo app: its build there has no ExecuTorch, so
    auto refuses the .pte at once, naming why, and gives the .tflite to the app."""
    from clcdeploy.bench.runners import PythonRunner, auto_runner_for
    from clcdeploy.device import open_device
    from clcdeploy.errors import BenchError

    with endpoint(tmp_path) as ep, open_device(ep.serial) as dev:  # its shells have android_5_shell's PATH
        with pytest.raises(BenchError) as caught:
            auto_runner_for(dev, "pte", PythonRunner())
        assert str(caught.value) == (
            f"no runner for .pte: the device has no python3 with ExecuTorch, and the demo app cannot run it: "
            f"ExecuTorch's Android library needs an arm64-v8a phone with Android 6 (SDK 23) or later, and "
            f"{ep.serial} is armeabi-v7a, SDK 22; pass --formats tflite, or --runner executor_runner --runner-bin "
            f"PATH (built for the device)")
        assert auto_runner_for(dev, "tflite", PythonRunner()).name == "app"
