"""The virtual ARM64 device end to end: arm64 userland under qemu, adb-shell and the stock adb client,
tiny ONNX / TFLite / .pte models run inside it. The rootfs is built on first use (cached afterwards)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from clcdeploy.device import open_device
from device_fixtures import (TINY_Y, make_tiny_onnx, make_tiny_pte, make_tiny_tflite,  # noqa: F401
                             stock_adb, stock_adb_client)

pytestmark = pytest.mark.device
# This session's folder: the cached rootfs, and with it /data/local/tmp, is shared with other sessions.
WORK = f"/data/local/tmp/clcdeploy-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
RUNNER_LINES = (r"Model loaded in [0-9.]+ ms\.", r"Iteration 1 of 3: [0-9.]+ ms", r"Iteration 3 of 3: [0-9.]+ ms",
                r"Model executed successfully 3 time\(s\) in [0-9.]+ ms\.")


@pytest.fixture(scope="module")
def dev(virtual_device):
    with open_device(virtual_device.serial, auth_timeout_s=20) as device:
        device.shell(f"mkdir -p {WORK}").check("preparing the work folder")
        try:
            yield device
        finally:
            device.shell(f"rm -rf {WORK}")


@pytest.fixture(scope="session")
def tiny_pte(tmp_path_factory) -> Path:
    return make_tiny_pte(tmp_path_factory.mktemp("pte") / "tiny.pte")


def test_identity_is_android_like_arm64(dev) -> None:
    assert dev.shell("uname -m").stdout.strip() == "aarch64"
    assert dev.shell("getprop ro.product.cpu.abi").stdout.strip() == "arm64-v8a"
    assert dev.shell("getprop ro.build.version.release").stdout.strip()
    assert dev.shell("touch /data/local/tmp/.w && rm /data/local/tmp/.w").exit_code == 0
    assert dev.shell("exit 42").exit_code == 42


def test_sync_refuses_paths_escaping_the_device_root(dev, tmp_path) -> None:
    from clcdeploy.device.errors import TransferError

    with pytest.raises(TransferError, match="escapes the device root"):
        dev.pull("/../../../etc/hostname", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_sync_follows_symlinks_inside_the_device(dev, tmp_path) -> None:
    """A link to an absolute path means the device's file, never the host's (which the host would follow to)."""
    # One name for both sides, and for this run only: the host's /tmp and the cached rootfs (the device's /tmp and
    # /data/local/tmp) are shared with any other test session running at the same time.
    name = f"clcdeploy-sync-marker-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    host_marker = Path("/tmp") / name
    marker_link, tmp_link = f"/data/local/tmp/{name}-link", f"/data/local/tmp/{name}-tmp-link"
    host_marker.write_text("host side\n")
    try:
        dev.shell(f"echo device side > /tmp/{name} && ln -sf /tmp/{name} {marker_link} && "
                  f"ln -sfn /tmp {tmp_link}").check("making links")
        dev.pull(marker_link, tmp_path / "pulled")
        assert (tmp_path / "pulled").read_text() == "device side\n"
        assert name in dev.listdir(tmp_link)
        assert dev.stat(f"{marker_link}/")[0] == 0  # a file followed by "/": not a directory
    finally:
        host_marker.unlink()
        dev.shell(f"rm -f /tmp/{name} {marker_link} {tmp_link}")


def test_facts_decode_the_emulated_core(dev) -> None:
    facts = dev.facts()
    assert facts.abi == "arm64-v8a" and facts.kernel_machine == "aarch64"
    assert facts.is_emulated is True
    assert facts.cores >= 1 and set(facts.cpu_core_names) == {"Cortex-A53"}
    # Reports print "manufacturer model": no word twice.
    assert (facts.manufacturer, facts.model) == ("clcdeploy", "virtual arm64 Cortex-A53")


def test_tiny_onnx_model_runs_in_the_arm64_userland(dev, tmp_path) -> None:
    dev.push(make_tiny_onnx(tmp_path / "tiny.onnx"), f"{WORK}/tiny.onnx")
    script = ("import platform, numpy as np, onnxruntime as ort; "
              f"s = ort.InferenceSession('{WORK}/tiny.onnx'); "
              "y = s.run(None, {'x': np.array([[1, 2, 3, 4]], dtype=np.float32)})[0]; "
              "print(platform.machine(), *y.ravel().tolist())")
    out = dev.shell(f'python3 -c "{script}"', timeout_s=240).check("onnxruntime on the device").stdout.split()
    assert out[0] == "aarch64"
    np.testing.assert_allclose([float(v) for v in out[1:]], TINY_Y.ravel(), rtol=1e-6)


def test_tiny_tflite_model_runs_in_the_arm64_userland(dev, tmp_path) -> None:
    dev.push(make_tiny_tflite(tmp_path / "tiny.tflite"), f"{WORK}/tiny.tflite")
    script = ("import platform, numpy as np; from ai_edge_litert.interpreter import Interpreter; "
              f"it = Interpreter(model_path='{WORK}/tiny.tflite'); it.allocate_tensors(); "
              "it.set_tensor(it.get_input_details()[0]['index'], np.array([[1, 2, 3, 4]], dtype=np.float32)); "
              "it.invoke(); print(platform.machine(), *it.get_tensor(it.get_output_details()[0]['index']).ravel().tolist())")
    out = dev.shell(f'python3 -c "{script}"', timeout_s=240).check("LiteRT on the device").stdout.split()
    assert out[0] == "aarch64"
    np.testing.assert_allclose([float(v) for v in out[1:]], TINY_Y.ravel(), rtol=1e-6)


def _host_runner_output(runner: Path, pte: Path, out: Path) -> str:
    proc = subprocess.run([str(runner), "--model_path", str(pte), "--num_executions", "3", "--warmup", "1",
                           "--cpu_threads", "1", "--output_path", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_native_pte_runner_on_host_and_device_agree(dev, tiny_pte, tmp_path) -> None:
    from clcdeploy.device.native import build_pte_runner

    host_stdout = _host_runner_output(build_pte_runner("host"), tiny_pte, tmp_path / "host.bin")
    dev.push(tiny_pte, f"{WORK}/tiny.pte")
    result = dev.shell(f"pte_runner --model_path {WORK}/tiny.pte --num_executions 3 --warmup 1 --cpu_threads 1 "
                       f"--output_path {WORK}/out.bin", timeout_s=240).check("pte_runner on the device")
    for stdout in (host_stdout, result.stdout):
        for pattern in RUNNER_LINES:
            assert re.search(pattern, stdout), f"missing {pattern!r} in:\n{stdout}"
        assert "finite=1" in stdout
    dev.pull(f"{WORK}/out.bin", tmp_path / "device.bin")
    host = np.fromfile(tmp_path / "host.bin", dtype=np.float32)
    device = np.fromfile(tmp_path / "device.bin", dtype=np.float32)
    assert host.size == 5 and np.isfinite(device).all()
    np.testing.assert_allclose(device, host, rtol=1e-4, atol=1e-5)


def test_pte_runner_rejects_a_missing_model(dev) -> None:
    result = dev.shell(f"pte_runner --model_path {WORK}/nope.pte")
    assert result.exit_code != 0 and "cannot open" in result.stderr


@pytest.mark.skipif(stock_adb() is None and not os.environ.get("CI"), reason="stock adb client not installed")
def test_stock_adb_client_against_the_virtual_device(virtual_device, tmp_path) -> None:
    serial = virtual_device.serial
    with stock_adb_client(tmp_path) as adb:
        adb.connect(serial)
        listed = adb("devices", "-l").stdout
        assert re.search(rf"^{re.escape(serial)}\s+device product:clc_virtual_arm64 model:virtual_arm64_Cortex_A53 "
                         rf"device:clc_virtual_arm64\b", listed, re.M), listed
        shell = adb("-s", serial, "shell", "uname -m; echo oops >&2; exit 9")
        assert (shell.returncode, shell.stdout.strip(), shell.stderr.strip()) == (9, "aarch64", "oops")
        blob = tmp_path / "blob.bin"
        blob.write_bytes(os.urandom(3 * 1024 * 1024))
        assert adb("-s", serial, "push", str(blob), f"{WORK}/blob.bin").returncode == 0
        assert adb("-s", serial, "pull", f"{WORK}/blob.bin", str(tmp_path / "back.bin")).returncode == 0
        assert (tmp_path / "back.bin").read_bytes() == blob.read_bytes()
        tty = adb("-s", serial, "shell", "-tt", "tty", stdin=subprocess.DEVNULL)  # the arm64 userland on a pty
        assert tty.returncode == 0 and re.fullmatch(r"/dev/pts/\d+", tty.stdout.strip()), tty


def test_cli_device_start_status_stop(virtual_device) -> None:
    cli = [sys.executable, "-m", "clcdeploy"]
    cwd = Path(__file__).resolve().parent.parent
    # --port 0: the endpoint binds a free port itself and prints it (a port found free here and released could
    # be taken by another program before the endpoint binds it).
    started = subprocess.run([*cli, "device", "start", "--port", "0"], capture_output=True, text=True,
                             timeout=120, cwd=cwd)
    served = re.fullmatch(r"127\.0\.0\.1:(\d+)", started.stdout.strip())
    assert started.returncode == 0 and served, started.stdout + started.stderr
    port = int(served[1])
    assert port != 0
    try:
        status = subprocess.run([*cli, "device", "status"], capture_output=True, text=True, timeout=60, cwd=cwd)
        assert f"127.0.0.1:{port}" in status.stdout and "running" in status.stdout
        listed = subprocess.run([*cli, "devices", "--json", "--connect", f"127.0.0.1:{port}"], capture_output=True,
                                text=True, timeout=120, cwd=cwd)
        assert '"abi": "arm64-v8a"' in listed.stdout, listed.stdout + listed.stderr
    finally:
        stopped = subprocess.run([*cli, "device", "stop", "--port", str(port)], capture_output=True, text=True,
                                 timeout=60, cwd=cwd)
    assert f"stopped 127.0.0.1:{port}" in stopped.stdout
