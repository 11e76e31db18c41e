"""`clcdeploy devices`: the host, and ADB devices over TCP (the virtual ARM64 device), as rows or JSON."""

import json
import subprocess
import sys

from device_fixtures import adb_home, cli_env, http_server, registered_endpoint  # noqa: F401  (fixtures)


def devices(*args, env=None):
    return subprocess.run([sys.executable, "-m", "clcdeploy", "devices", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_the_host_and_the_virtual_device_are_listed(virtual_device):
    result = devices("--connect", virtual_device.serial, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0]["serial"] == "local" and rows[0]["state"] == "device"
    (connected,) = [r for r in rows if r["serial"] == virtual_device.serial]
    assert connected["transport"] == "tcp" and connected["state"] == "device" and connected["abi"] == "arm64-v8a"


def test_an_unreachable_address_is_listed_offline_with_the_reason(adb_home):
    result = devices("--connect", "127.0.0.1:1")
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1:1" in result.stdout and "offline" in result.stdout and "connection refused" in result.stdout


def test_a_malformed_address_is_one_line_exit_2():
    result = devices("--connect", "phone:adb")
    assert result.returncode == 2
    assert result.stderr.strip() == ("clcdeploy devices: error: --connect phone:adb: expected host:port, e.g. "
                                     "192.168.1.20:5555")


def test_a_running_virtual_device_is_listed_without_connect(tmp_path, cli_env):
    with registered_endpoint(tmp_path, cli_env) as ep:
        result = devices("--json", env=cli_env)
        again = devices("--json", "--connect", ep.serial, env=cli_env)
    assert result.returncode == 0, result.stderr
    (row,) = [r for r in json.loads(result.stdout) if r["serial"] == ep.serial]
    assert (row["transport"], row["state"]) == ("tcp", "device")  # what `bench --device all` picks
    assert [r["serial"] for r in json.loads(again.stdout)].count(ep.serial) == 1


def test_an_endpoint_that_is_not_adb_is_listed_offline_with_the_reason(http_server, cli_env):
    result = devices("--connect", http_server, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (row,) = [line for line in result.stdout.splitlines() if line.startswith(http_server)]
    assert row.split()[2] == "offline" and "does not speak ADB" in result.stdout


def test_a_bad_auth_timeout_is_one_line_exit_2():
    result = devices("--auth-timeout", "-1")
    assert (result.returncode, result.stderr.strip()) == (
        2, "clcdeploy devices: error: --auth-timeout -1: give a number of seconds above 0")
