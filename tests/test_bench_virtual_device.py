"""`clcdeploy bench --device` end to end on the virtual ARM64 device (emulated arm64 userland behind the
device-side ADB endpoint), including a connection lost mid-run through the endpoint's fault injection."""

import json
import os
import subprocess
import sys

import pytest

from bench_fixtures import tiny_models_dir  # noqa: F401  (fixture)
from device_fixtures import endpoint, virtual_device  # noqa: F401  (fixture)

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


def test_connection_lost_mid_run_keeps_what_was_measured(tiny_models_dir, tmp_path):
    # Enough bytes for the handshake, facts and the first model; then the endpoint drops the connection.
    with endpoint(tmp_path, plain_root=None, drop_after_bytes=400_000) as ep:
        out = tmp_path / "results"
        result = bench("--device", ep.serial, "--models", "clcnet_tiny,mobilenet_v1_tiny", "--formats", "onnx",
                       "--models-dir", str(tiny_models_dir), "--runs", "10", "--warmup", "0", "--out", str(out))
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "during" in line and ("clcnet_tiny" in line or "mobilenet_v1_tiny" in line), line
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] is False and doc["devices"][0]["error"]
    assert all(len(r["times_ms"]) == 10 for r in doc["results"])
