"""clcdeploy's ort_runner: .onnx timed on arm64 devices without Python's onnxruntime (Android phones), pushed with
the onnxruntime wheel's aarch64 library and its own glibc (device/native/bundle.py). Run here on the virtual device,
whose /proc/cpuinfo shows the emulated Cortex-A53 (ONNX Runtime's cpuinfo cannot read an x86 host's under qemu)."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from android_shell_fixtures import HOST_PATH, android_arm64_shell, fake_android  # noqa: F401  (fixtures)
from device_fixtures import adb_home, endpoint  # noqa: F401  (fixtures)



def bench(*args):
    return subprocess.run([sys.executable, "-m", "clcdeploy", "bench", "--no-export", *args], capture_output=True,
                          text=True, timeout=900)


def ramp(shape) -> np.ndarray:
    """The input ort_runner (and pte_runner) feeds: i % 97 / 48.5 - 1 in memory order."""
    n = int(np.prod(shape))
    return ((np.arange(n) % 97) / np.float32(48.5) - 1).astype(np.float32).reshape(shape)


@pytest.mark.device
def test_standard_and_fused_onnx_are_timed_and_match_the_host(virtual_device, tiny_models_dir, fused_models_dir):
    import onnxruntime as ort

    from clcdeploy.bench.runners import push_bundle
    from clcdeploy.device import open_device
    from clcdeploy.kernels.runtime import prepare_onnx

    for folder, models in ((tiny_models_dir, "mobilenet_v1_tiny,clcnet_tiny"), (fused_models_dir, "clcnet_tiny")):
        done = bench("--device", virtual_device.serial, "--runner", "ort_runner", "--formats", "onnx", "--models",
                     models, "--models-dir", str(folder), "--runs", "2", "--warmup", "1", "--json")
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)["results"]
        assert [(r["model"], r["runner"], len(r["times_ms"]), r["outputs_finite"]) for r in rows] == [
            (m, "ort_runner", 2, True) for m in models.split(",")]
        assert all(r["extra"].get("fused_igc_kernel", False) == (folder == fused_models_dir) for r in rows)

    with open_device(virtual_device.serial) as device:  # the outputs, against this host's ONNX Runtime
        launch = push_bundle(device, "ort_runner")
        for model, library in (("mobilenet_v1_tiny.onnx", None), ("fused.onnx", "custom-op.so")):
            source = (fused_models_dir / "clcnet_tiny/clcnet_tiny.onnx" if model == "fused.onnx"
                      else tiny_models_dir / "mobilenet_v1_tiny" / model)
            device.push(source, f"{device.work_dir}/{model}")
            flags = ""
            if library:
                from clcdeploy.kernels.build import build_onnxruntime_kernels

                device.push(build_onnxruntime_kernels(target="aarch64"), f"{device.work_dir}/{library}")
                flags = f" --custom_op_library={device.work_dir}/{library}"
            out = device.shell(f"{launch} --model_path={device.work_dir}/{model}{flags}", timeout_s=300)
            got = [float(v) for v in re.search(r"first=\[([^\]]*)\]", out.check("ort_runner").stdout).group(1)
                   .split(", ")]
            options = ort.SessionOptions()
            prepare_onnx(options, source)
            session = ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
            x = ramp(session.get_inputs()[0].shape)
            expected = session.run(None, {session.get_inputs()[0].name: x})[0].ravel()[:len(got)]
            assert np.abs(np.array(got) - expected).max() < 1e-4, (model, got, expected)


@pytest.mark.device
@pytest.mark.parametrize("args, message", [
    (["--num_executions", "0"], "ort_runner: error: --num_executions must be >= 1 (see --help)"),
    (["--cpu_threads", "0"], "ort_runner: error: --cpu_threads must be 1 to 256, or -1 for the runtime's default"),
    (["--frobnicate", "1"], "ort_runner: error: unknown flag --frobnicate (see --help)"),
    (["--model_path", "/nonexistent.onnx"], "ort_runner: error: "),
])
def test_bad_input_is_one_line(virtual_device, args, message):
    from clcdeploy.bench.runners import push_bundle
    from clcdeploy.device import open_device

    with open_device(virtual_device.serial) as device:
        words = " ".join(args if "--model_path" in args else ["--model_path", "m.onnx", *args])
        done = device.shell(f"{push_bundle(device, 'ort_runner')} {words}", timeout_s=300)
    code = 1 if "--model_path" in args else 2
    assert done.exit_code == code and done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr


def test_ort_runner_on_this_x86_host_is_refused_in_one_line(tiny_models_dir):
    done = bench("--runner", "ort_runner", "--formats", "onnx", "--models", "clcnet_tiny", "--models-dir",
                 str(tiny_models_dir))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.strip().endswith(
        "clcdeploy's ort_runner is built for arm64 devices only (the runtimes' wheels have no 32-bit ARM build), and "
        "local runs x86_64, x86: pass --runner python, which times .onnx on this host"), done.stderr


@pytest.mark.device
def test_auto_gives_an_onnx_to_ort_runner_on_an_arm64_phone(android_arm64_shell, tmp_path, adb_home, monkeypatch):
    """Choosing it pushes its bundle (not run here: it would read the x86 host's /proc/cpuinfo)."""
    from clcdeploy.bench.runners import PythonRunner, auto_runner_for
    from clcdeploy.device import open_device

    with endpoint(tmp_path) as ep, open_device(ep.serial, work_dir=f"{ep.root}/data/local/tmp/w") as device:
        monkeypatch.setenv("PATH", HOST_PATH)  # the harness's own: it builds the bundle
        assert auto_runner_for(device, "onnx", PythonRunner()).name == "ort_runner"
        assert list((tmp_path / "device-root/data/local/tmp/w").glob("ort_runner-bundle-*/libonnxruntime.so.1"))


@pytest.mark.parametrize("build", ["pte_runner", "ort_runner"])
def test_a_missing_cross_compiler_is_one_line_naming_its_package(build, monkeypatch):
    """Refused before the runtime's wheel is downloaded (ort_runner's build ran the compiler regardless and raised
    FileNotFoundError)."""
    from clcdeploy.device.errors import VirtualDeviceError
    from clcdeploy.device.native import build_pte_runner
    from clcdeploy.device.native.ort import build_ort_runner

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(VirtualDeviceError) as caught:
        build_ort_runner() if build == "ort_runner" else build_pte_runner("aarch64")
    assert str(caught.value) == "aarch64-linux-gnu-g++ not found: apt-get install g++-aarch64-linux-gnu"
