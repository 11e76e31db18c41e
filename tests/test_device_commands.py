"""`clcdeploy device start|stop|facts` on bad input: one line, exit 2, nothing left behind.

Endpoints run in plain mode (host shell) in this test's own cache folder, so no rootfs is needed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clcdeploy.device import open_device
from clcdeploy.device.errors import UnknownDeviceError, VirtualDeviceError
from clcdeploy.device.virtual import daemon
from device_fixtures import (adb_home, cli_env, endpoint, http_server, refusing_port,  # noqa: F401
                             registered_endpoint, tcp_server)


def device(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clcdeploy", "device", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error line of a failed command, checking it is the only output."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


def run_folder_files(env: dict[str, str]) -> list[str]:
    run = Path(env["XDG_CACHE_HOME"]) / "clcdeploy/virtual-device/run"
    return sorted(p.name for p in run.iterdir()) if run.exists() else []


@pytest.mark.parametrize("option, message", [
    (("--port", "70000"), "--port 70000: a TCP port is 1 to 65535 (0 picks a free one)"),
    (("--port", "-1"), "--port -1: a TCP port is 1 to 65535 (0 picks a free one)"),
    (("--latency-ms", "-5"), "--latency-ms -5: the delay must be a finite number of milliseconds, 0 or more"),
    (("--latency-ms", "nan"), "--latency-ms nan: the delay must be a finite number of milliseconds, 0 or more"),
    (("--latency-ms", "inf"), "--latency-ms inf: the delay must be a finite number of milliseconds, 0 or more"),
    (("--drop-after-bytes", "-1"), "--drop-after-bytes -1: must be 0 or more (leave it out to never drop)"),
])
def test_start_refuses_bad_options_up_front(cli_env, option, message) -> None:
    result = device("start", *option, env=cli_env)
    assert one_line_error(result) == f"clcdeploy device: error: {message}"
    assert run_folder_files(cli_env) == []


def test_start_on_a_taken_port_says_so_and_leaves_no_log(cli_env) -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]
        result = device("start", "--port", str(port), env=cli_env)
    assert one_line_error(result) == (f"clcdeploy device: error: port {port} is in use (by another program): "
                                      f"pick another --port")
    assert [name for name in run_folder_files(cli_env) if name.endswith(".log")] == []


def test_an_endpoint_that_fails_at_start_leaves_no_log(tmp_path) -> None:
    """Port 0 skips the up-front check: the endpoint's own bind fails, and its log goes with it."""
    with pytest.raises(VirtualDeviceError, match="exited at start.*cannot listen on 192.0.2.1:0"):
        with endpoint(tmp_path, host="192.0.2.1"):  # TEST-NET-1: no local interface has it
            pass
    assert list(tmp_path.glob("adbd-state-*/*.log")) == []
    assert list(tmp_path.glob("adbd-state-*/ready-*")) == []


def test_start_with_other_settings_on_a_running_port_refuses(tmp_path, cli_env) -> None:
    with registered_endpoint(tmp_path, cli_env) as ep:
        same = device("start", "--port", str(ep.port), env=cli_env)
        other = device("start", "--port", str(ep.port), "--auth", "none", "--latency-ms", "5", env=cli_env)
    assert same.returncode == 0 and same.stdout.strip() == ep.serial, same.stderr
    assert one_line_error(other) == (
        f"clcdeploy device: error: a virtual device already runs on port {ep.port} (pid {ep.pid}) with --auth "
        f"accept --latency-ms 0; to start it with --auth none --latency-ms 5, stop it first: clcdeploy device stop "
        f"--port {ep.port}")


def test_stop_on_a_port_with_nothing_names_the_running_ones(tmp_path, cli_env) -> None:
    with registered_endpoint(tmp_path, cli_env) as ep, refusing_port() as port:
        result = device("stop", "--port", str(port), env=cli_env)
        assert daemon._alive(ep.pid)
    assert one_line_error(result) == (f"clcdeploy device: error: no virtual device on port {port} "
                                      f"(running: {ep.serial})")
    nothing = device("stop", env=cli_env)
    assert (nothing.returncode, nothing.stderr.strip()) == (0, "no virtual device running")


def test_facts_of_an_endpoint_that_is_not_adb_is_one_line(http_server, cli_env) -> None:
    result = device("facts", http_server, env=cli_env)
    assert one_line_error(result) == (f"clcdeploy device: error: {http_server} does not speak ADB (its answer is "
                                      f"not an ADB packet): check the address and port")


def test_a_silent_endpoint_is_not_taken_for_an_auth_prompt(adb_home) -> None:
    with tcp_server(None) as serial:
        with pytest.raises(UnknownDeviceError, match=f"{serial} did not answer the ADB handshake within 1 s"):
            open_device(serial, transport_timeout_s=1)


def test_facts_auth_timeout_bounds_the_wait_for_the_key(tmp_path, cli_env) -> None:
    """--auth-timeout reaches the wait for the key (not the 60 s default): both lines name it. The wait itself is
    adb-shell's; that it ends after the given time is not timed here (no upper bound on a shared machine), only
    that it lasts at least that long (the device was given the time to accept)."""
    with registered_endpoint(tmp_path, cli_env, auth="refuse") as ep:
        began = time.monotonic()
        result = device("facts", ep.serial, "--auth-timeout", "1.5", env=cli_env)
        elapsed = time.monotonic() - began
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.splitlines() == [
        f"{ep.serial}: accept the 'Allow USB debugging?' prompt on the device (waiting up to 1.5 s)",
        f"clcdeploy device: error: {ep.serial} did not accept our key within 1.5 s: accept the 'Allow USB "
        f"debugging?' prompt on the device and retry"], result.stderr
    assert elapsed >= 1.5
