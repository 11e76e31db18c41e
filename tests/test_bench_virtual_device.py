"""`clcdeploy bench --device` end to end on the virtual ARM64 device (emulated arm64 userland behind the
device-side ADB endpoint), including a connection lost mid-run through the endpoint's fault injection."""

import json
import os
import subprocess
import sys

import pytest

from device_fixtures import adb_home, endpoint, pte_runner_input  # noqa: F401  (fixtures)

pytestmark = pytest.mark.device


def bench(*args):
    return subprocess.run([sys.executable, "-m", "clcdeploy", "bench", *args], capture_output=True, text=True,
                          timeout=1200, env=os.environ.copy())


def test_ten_passes_on_the_emulated_arm64_device(virtual_device, tiny_models_dir, tmp_path):
    out = tmp_path / "results"
    result = bench("--device", virtual_device.serial, "--models", "clcnet_tiny", "--models-dir",
                   str(tiny_models_dir), "--runs", "10", "--warmup", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr + result.stdout
    doc = json.loads((out / "results.json").read_text())
    facts = doc["devices"][0]["facts"]
    assert facts["abi"] == "arm64-v8a" and facts["is_emulated"] is True
    assert {r["format"] for r in doc["results"]} == {"pte", "tflite", "onnx"}
    for r in doc["results"]:
        assert len(r["times_ms"]) == 10 and r["mean_ms"] == pytest.approx(sum(r["times_ms"]) / 10)
        assert r["file_bytes"] == next((tiny_models_dir / "clcnet_tiny").glob(f"*.{r['format']}")).stat().st_size
        assert r["outputs_finite"] is True
    assert {r["runner"] for r in doc["results"]} == {"python", "pte_runner"}
    assert next(r for r in doc["results"] if r["format"] == "onnx")["extra"]["machine"] == "aarch64"
    assert "EMULATED" in (out / "report.md").read_text()


def test_side_by_side_on_the_emulated_arm64_device(virtual_device, tiny_models_dir):
    """The device's python3 (ONNX Runtime) and its pte_runner each time both tiny models in one process; with
    --per-op its pte_runner then traces each .pte, whose ETDump comes back over ADB."""
    result = bench("--device", virtual_device.serial, "--models", "mobilenet_v1_tiny,clcnet_tiny", "--formats",
                   "onnx,pte", "--models-dir", str(tiny_models_dir), "--runs", "2", "--warmup", "1",
                   "--side-by-side", "--per-op", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    measurements = json.loads(result.stdout)["results"]
    assert {(m["format"], m["runner"]) for m in measurements} == {("onnx", "python"), ("pte", "pte_runner")}
    for m in measurements:
        assert len(m["times_ms"]) == 2 and m["outputs_finite"] is True
        assert m["extra"]["side_by_side_with"] == [f"{name}/{m['format']}" for name in ("mobilenet_v1_tiny",
                                                                                        "clcnet_tiny")]
        assert ("operators" in m["extra"]) == (m["format"] == "pte")
        if m["format"] == "pte":
            assert any("DWConv" in op and e["count"] > 0 for op, e in m["extra"]["operators"].items())


def test_fused_igc_pte_runs_on_the_emulated_arm64_device(virtual_device, fused_models_dir, tmp_path):
    """`auto` picks pte_runner (the fused kernel compiled in, NEON path) and its output equals the host's."""
    import numpy as np
    import torch
    from executorch.runtime import Runtime

    from clcdeploy.device import open_device
    from clcdeploy.kernels.runtime import prepare_pte

    result = bench("--device", virtual_device.serial, "--models", "clcnet_tiny", "--formats", "pte", "--models-dir",
                   str(fused_models_dir), "--runs", "3", "--warmup", "1", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    (measurement,) = json.loads(result.stdout)["results"]
    assert measurement["runner"] == "pte_runner" and measurement["outputs_finite"] is True

    pte = fused_models_dir / "clcnet_tiny" / "clcnet_tiny.pte"
    with open_device(virtual_device.serial) as device:
        remote = f"{device.ensure_work_dir()}/fused.pte"
        device.push(pte, remote)
        # two executions: the second must not see activations the first left in the input's planned buffer
        device.shell(f"pte_runner --model_path={remote} --num_executions=2 --warmup=0 --output_path={remote}.out",
                     timeout_s=600).check("pte_runner")
        device.pull(f"{remote}.out", tmp_path / "device.out")
    got = np.fromfile(tmp_path / "device.out", dtype=np.float32)
    x = torch.from_numpy(pte_runner_input((1, 3, 32, 32)))  # what pte_runner fed the model
    assert prepare_pte(pte)
    expected = Runtime.get().load_program(pte).load_method("forward").execute((x,))[0].numpy().ravel()
    assert np.abs(got - expected).max() < 1e-4


DEVICE_SCRIPTS = {  # run one fused artifact on the device with clcdeploy's aarch64 library; print the output
    "onnx": ("import numpy as np, onnxruntime as ort; o = ort.SessionOptions(); "
             "o.register_custom_ops_library('{lib}'); s = ort.InferenceSession('{model}', o); "
             "x = np.load('{x}'); print(*s.run(None, {{s.get_inputs()[0].name: x}})[0].ravel().tolist())"),
    "tflite": ("import numpy as np; from ai_edge_litert.interpreter import Interpreter, load_delegate; "
               "it = Interpreter(model_path='{model}', experimental_delegates=[load_delegate('{lib}')]); "
               "it.allocate_tensors(); x = np.load('{x}').transpose(0, 2, 3, 1).copy(); "
               "it.set_tensor(it.get_input_details()[0]['index'], x); it.invoke(); "
               "print(*it.get_tensor(it.get_output_details()[0]['index']).ravel().tolist())"),
}


def test_fused_igc_onnx_and_tflite_run_on_the_emulated_arm64_device(virtual_device, fused_models_dir, tmp_path):
    """The python runner loads the aarch64 builds of the ONNX Runtime custom op and the LiteRT delegate (NEON
    path of the kernel), and their outputs equal the host's."""
    import numpy as np

    from clcdeploy.device import open_device
    from clcdeploy.export import onnx_format, tflite_format
    from clcdeploy.kernels.build import build_litert_kernels, build_onnxruntime_kernels

    result = bench("--device", virtual_device.serial, "--models", "clcnet_tiny", "--formats", "onnx,tflite",
                   "--models-dir", str(fused_models_dir), "--runs", "2", "--warmup", "1", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    measurements = json.loads(result.stdout)["results"]
    assert {m["format"] for m in measurements} == {"onnx", "tflite"}
    for m in measurements:
        assert m["runner"] == "python" and m["outputs_finite"] is True and m["extra"]["fused_igc_kernel"] is True
        assert m["extra"]["machine"] == "aarch64"

    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    libraries = {"onnx": build_onnxruntime_kernels(target="aarch64"), "tflite": build_litert_kernels(target="aarch64")}
    with open_device(virtual_device.serial) as device:
        work = device.ensure_work_dir()
        device.push(tmp_path / "x.npy", f"{work}/x.npy")
        for fmt, module in (("onnx", onnx_format), ("tflite", tflite_format)):
            model = fused_models_dir / "clcnet_tiny" / f"clcnet_tiny.{fmt}"
            device.push(model, f"{work}/check.{fmt}")
            device.push(libraries[fmt], f"{work}/check-{fmt}.so")
            script = DEVICE_SCRIPTS[fmt].format(lib=f"{work}/check-{fmt}.so", model=f"{work}/check.{fmt}",
                                                x=f"{work}/x.npy")
            out = device.shell(f'python3 -c "{script}"', timeout_s=600).check(f"{fmt} on the device").stdout
            got = np.array([float(v) for v in out.split()], dtype=np.float32)
            expected = module.run(model, x).ravel()
            assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4, fmt


def test_connection_lost_mid_run_keeps_what_was_measured(tiny_models_dir, tmp_path):
    from clcdeploy.bench.runners import RUNNER_SCRIPT
    from clcdeploy.device import open_device

    first, second = (tiny_models_dir / m / f"{m}.onnx" for m in ("clcnet_tiny", "mobilenet_v1_tiny"))
    # The connection drops once it has moved the runner script, the first model and some 80 KB of
    # handshake, facts and commands: inside the push of the second model, after the first was measured.
    budget = RUNNER_SCRIPT.stat().st_size + first.stat().st_size + 80_000
    assert second.stat().st_size > 100_000
    with endpoint(tmp_path, plain_root=None, drop_after_bytes=budget) as ep:
        with open_device(ep.serial) as device:  # a connection of its own: start from an empty work folder
            device.shell(f"rm -rf {device.work_dir}", timeout_s=60).check("clearing the work folder")
        out = tmp_path / "results"
        result = bench("--device", ep.serial, "--models", "clcnet_tiny,mobilenet_v1_tiny", "--formats", "onnx",
                       "--models-dir", str(tiny_models_dir), "--runs", "10", "--warmup", "0", "--out", str(out))
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "during mobilenet_v1_tiny/onnx (pushing mobilenet_v1_tiny.onnx)" in line and "lost" in line, line
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] is False and doc["devices"][0]["error"]
    assert [(r["model"], len(r["times_ms"])) for r in doc["results"]] == [("clcnet_tiny", 10)]


def test_a_lost_run_is_named_by_the_pass_the_device_recorded(tmp_path, adb_home):
    from clcdeploy.bench.session import _last_recorded_stage

    with endpoint(tmp_path) as ep:  # plain endpoint: a host folder served as the device, under host paths
        progress = f"{ep.root}/data/local/tmp/progress-clcnet_tiny-onnx.txt"
        from clcdeploy.device import open_device

        with open_device(ep.serial) as device:
            device.shell(f"printf 'loading the model\\ntimed pass 4 of 10\\n' > {progress}", timeout_s=30).check("write")
        assert _last_recorded_stage(ep.serial, progress, {}) == " at timed pass 4 of 10"
    assert "did not come back" in _last_recorded_stage(ep.serial, progress, {"auth_timeout_s": 2})


def test_two_devices_in_parallel_merge_into_one_report(tiny_models_dir, tmp_path):
    with endpoint(tmp_path, plain_root=None) as first, endpoint(tmp_path, plain_root=None) as second:
        out = tmp_path / "results"
        result = bench("--device", first.serial, "--device", second.serial, "--models", "clcnet_tiny",
                       "--formats", "onnx", "--models-dir", str(tiny_models_dir), "--runs", "3", "--warmup", "0",
                       "--out", str(out))
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "results.json").read_text())
    assert [d["serial"] for d in doc["devices"]] == [first.serial, second.serial]
    assert sorted(r["device"] for r in doc["results"]) == sorted([first.serial, second.serial])
    assert all(len(r["times_ms"]) == 3 for r in doc["results"])


def test_the_python_runner_asked_for_a_format_the_device_lacks_is_one_line(virtual_device, tiny_models_dir,
                                                                            tmp_path):
    """The virtual device's python3 has no ExecuTorch bindings (they need torch): say so before any pass."""
    result = bench("--device", virtual_device.serial, "--models", "clcnet_tiny", "--formats", "pte",
                   "--models-dir", str(tiny_models_dir), "--runner", "python", "--out", str(tmp_path / "results"))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("clcdeploy bench: error:")]
    assert len(errors) == 1
    assert f"--runner python: {virtual_device.serial}'s python3 lacks executorch: use --runner auto or pte_runner, " \
           f"which this device has" in errors[0]
    assert not (tmp_path / "results").exists()
