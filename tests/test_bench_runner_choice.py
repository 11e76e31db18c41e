"""`--runner auto`: which runner each format gets on a device, probed on real devices (the host, an ADB device
whose python3 has no runtimes, the virtual ARM64 device), and the line it prints when nothing can run one."""

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from device_fixtures import adb_home, endpoint  # noqa: F401  (fixtures)
from clcdeploy.bench import app_protocol
from clcdeploy.bench.runners import PythonRunner, auto_runner_for, no_runner_message, python_runs


def bench(*args):
    return subprocess.run([sys.executable, "-m", "clcdeploy", "bench", *args], capture_output=True, text=True,
                          timeout=600, env=os.environ.copy())


def test_the_host_runs_every_format_with_the_python_runner():
    from clcdeploy.device.local import LocalDevice

    device, python = LocalDevice(), PythonRunner()
    assert all(python_runs(device, fmt) for fmt in ("onnx", "tflite", "pte"))
    assert auto_runner_for(device, "onnx", python) is python and auto_runner_for(device, "tflite", python) is python


@pytest.fixture
def python_without_runtimes(tmp_path, monkeypatch):
    """A device python3 with the standard library only: a fresh venv first on the PATH that devices inherit."""
    folder = tmp_path / "bare-python"
    venv.create(folder, with_pip=False)
    monkeypatch.setenv("PATH", f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return folder


def test_a_device_without_the_runtimes_gets_one_line_before_anything_is_pushed(
        tiny_models_dir, python_without_runtimes, tmp_path, adb_home):
    from clcdeploy.bench.artifacts import ensure_artifacts
    from clcdeploy.bench.session import BenchOptions, bench_device

    with endpoint(tmp_path) as device:  # commands run in the host shell, with the PATH above
        work = f"{device.root}/data/local/tmp/clcdeploy"  # a plain endpoint serves host paths under its root
        for fmt, expected in (
                ("tflite", "no runner for .tflite: the device's python3 lacks ai_edge_litert and the demo app is "
                           "not installed: install it (build android_app/, then --runner app --apk PATH --formats "
                           "pte,tflite), or pass --runner benchmark_model --runner-bin PATH"),
                ("onnx", "no runner for .onnx: the device's python3 lacks onnxruntime, and the demo app runs only "
                         "pte,tflite: pass --formats pte,tflite, or --runner onnxruntime_perf_test")):
            models = ["mobilenet_v1_tiny", "clcnet_tiny"]
            artifacts = ensure_artifacts(tiny_models_dir, models, [fmt], export_missing=False, log=lambda _: None)
            run = bench_device(device.serial, artifacts, BenchOptions(models, [fmt], runs=2), None,
                               log=lambda _: None, work_dir=work)
            assert run.error.startswith(f"device {device.serial} during mobilenet_v1_tiny/{fmt} (choosing a "
                                        f"runner): {expected}"), run.error
            assert "\n" not in run.error and run.measurements == []
            assert not list(Path(device.root).rglob(f"*.{fmt}")), "pushed an artifact it cannot run"


def test_runner_probes_on_the_virtual_device(virtual_device):
    """Its python3 has ONNX Runtime and LiteRT but not ExecuTorch's bindings (they need torch), so .pte goes to
    the pte_runner on its PATH; it is no Android, so there is no demo app to find."""
    from clcdeploy.bench.runners import demo_app_installed
    from clcdeploy.device import open_device

    with open_device(virtual_device.serial) as device:
        assert python_runs(device, "onnx") and python_runs(device, "tflite") and not python_runs(device, "pte")
        assert not demo_app_installed(device)
        assert auto_runner_for(device, "pte", PythonRunner()).name == "pte_runner"


def test_messages_for_an_android_phone_without_python():
    tflite = no_runner_message("tflite", needs_kernel_library=False, has_python3=False)
    assert tflite.startswith("no runner for .tflite: the device has no python3 (an Android phone has none) and "
                             "the demo app is not installed")
    assert "--runner app --apk PATH" in tflite and "--runner benchmark_model --runner-bin PATH" in tflite
    pte = no_runner_message("pte", needs_kernel_library=False, has_python3=False)
    assert "--runner executor_runner --runner-bin PATH" in pte
    fused = no_runner_message("tflite", needs_kernel_library=True, has_python3=False)
    assert "fused IGC kernel" in fused and "NDK" in fused and "without --fused-igc" in fused
    assert "pte_runner" in no_runner_message("pte", needs_kernel_library=True, has_python3=True)
    assert all("\n" not in m for m in (tflite, pte, fused))


def test_installed_app_is_recognised_from_pm_path_output():
    assert app_protocol.installed_command() == "pm path org.clcdeploy.demo"
    assert app_protocol.is_installed("package:/data/app/~~Xy1==/org.clcdeploy.demo-Ab2==/base.apk\n")
    assert app_protocol.is_installed("package:/data/app/org.clcdeploy.demo-1/base.apk\r\n"
                                     "package:/data/app/org.clcdeploy.demo-1/split_config.arm64_v8a.apk\r\n")
    assert not app_protocol.is_installed("")
    assert not app_protocol.is_installed("/system/bin/sh: pm: not found")


def test_apk_without_the_app_runner_is_refused(tmp_path):
    apk = tmp_path / "demo.apk"
    apk.write_bytes(b"PK")
    result = bench("--apk", str(apk), "--models", "clcnet_tiny", "--no-export")
    assert result.returncode == 2
    assert result.stderr.strip() == ("clcdeploy bench: error: --apk installs the demo app for --runner app, not "
                                     "for --runner auto: add --runner app (the app runs .pte and .tflite)")


def test_the_app_runner_on_a_device_without_android_is_refused_before_any_pass(tiny_models_dir):
    result = bench("--runner", "app", "--models", "clcnet_tiny", "--formats", "pte", "--models-dir",
                   str(tiny_models_dir))
    assert result.returncode == 2
    assert result.stderr.strip() == ("clcdeploy bench: error: device local during preparing the app runner: --runner "
                                     "app drives clcdeploy's demo app on an Android phone, and local is not one (no "
                                     "`pm`): use --runner auto")
