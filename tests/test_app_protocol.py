"""The harness side of the demo-app contract: command construction and result parsing."""

from __future__ import annotations

import copy
import json
import shlex

import pytest

from clcdeploy.bench import app_protocol as ap
from clcdeploy.errors import BenchError, ClcDeployError

DEVICE = {
    "manufacturer": "BLU",
    "model": "Advance 5.2",
    "hardware": "mt6580",
    "abis": ["armeabi-v7a", "armeabi"],
    "process_64bit": False,
    "sdk_int": 22,
    "release": "5.1",
    "cores": 4,
    "total_mem_mb": 1024,  # org.json writes a whole double without ".0"
}
OK = {
    "schema_version": 1,
    "run_id": "r1",
    "status": "ok",
    "error": None,
    "model": "/data/local/tmp/clcdeploy/clcnet_a/clcnet_a.tflite",
    "runtime": "tflite",
    "threads": 4,
    "warmup": 1,
    "iterations": 3,
    "load_ms": 12.5,
    "times_ms": [10.25, 11, 10.5],
    "device": DEVICE,
}


def test_start_command_is_the_exact_am_invocation() -> None:
    cmd = ap.start_command("/data/local/tmp/m/clcnet_a.pte", "pte", iterations=10, warmup=2, threads=4)
    assert cmd == (
        "am start -W -n org.clcdeploy.demo/.BenchmarkActivity"
        " --es model_path /data/local/tmp/m/clcnet_a.pte --es runtime pte"
        " --ei iterations 10 --ei warmup 2 --ei threads 4"
    )


def test_start_command_quotes_paths_and_appends_run_id() -> None:
    cmd = ap.start_command("/data/local/tmp/my models/a.tflite", "tflite", 5, 0, 0, run_id="abc-1")
    words = shlex.split(cmd)
    assert words[words.index("model_path") + 1] == "/data/local/tmp/my models/a.tflite"
    assert words[-3:] == ["--es", "run_id", "abc-1"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("/d/a.onnx", "onnx", 10, 1, 1), "pte, tflite"),
        (("d/a.pte", "pte", 10, 1, 1), "absolute"),
        (("/d/a.tflite", "pte", 10, 1, 1), "needs a .pte"),
        (("/d/a.pte", "pte", 0, 1, 1), "iterations"),
        (("/d/a.pte", "pte", 10, -1, 1), "warmup"),
        (("/d/a.pte", "pte", 10, 1, -2), "threads"),
        (("/d/a.pte", "pte", True, 1, 1), "iterations"),
    ],
)
def test_start_command_rejects_bad_arguments(args: tuple, fragment: str) -> None:
    with pytest.raises(BenchError, match=fragment):
        ap.start_command(*args)


def test_start_command_sends_the_input_shape_as_an_int_array() -> None:
    cmd = ap.start_command("/d/a.tflite", "tflite", 5, 0, 0, input_shape=(1, 224, 224, 3))
    assert cmd.endswith(" --eia input_shape 1,224,224,3")


@pytest.mark.parametrize("shape", [(), (1, 0, 4, 4), (1, 3, 4.0, 4), (True, 3, 4, 4)])
def test_start_command_rejects_a_bad_input_shape(shape: tuple) -> None:
    with pytest.raises(BenchError, match="input_shape must be positive integers"):
        ap.start_command("/d/a.pte", "pte", 1, 0, 0, input_shape=shape)


def test_start_command_rejects_run_id_that_needs_quoting() -> None:
    with pytest.raises(BenchError, match="run_id"):
        ap.start_command("/d/a.pte", "pte", 1, 0, 0, run_id="a b;rm")


def test_other_commands() -> None:
    assert ap.force_stop_command() == "am force-stop org.clcdeploy.demo"
    assert ap.result_path() == "files/benchmark_result.json"
    assert ap.read_result_command() == "run-as org.clcdeploy.demo cat files/benchmark_result.json"
    assert ap.clear_result_command() == "run-as org.clcdeploy.demo rm -f files/benchmark_result.json"
    assert ap.install_command() == "pm install -r -t /data/local/tmp/clcdeploy-demo.apk"
    with pytest.raises(BenchError):
        ap.install_command("relative.apk")


def test_check_start_output() -> None:
    ap.check_start_output("Starting: Intent { cmp=org.clcdeploy.demo/.BenchmarkActivity }\nStatus: ok\nTotalTime: 80\n")
    with pytest.raises(ap.AppResultError, match="installed"):
        ap.check_start_output(
            "Starting: Intent { cmp=org.clcdeploy.demo/.BenchmarkActivity }\n"
            "Error type 3\nError: Activity class {org.clcdeploy.demo/org.clcdeploy.demo.BenchmarkActivity} does not exist.\n"
        )


def test_parse_ok_result() -> None:
    result = ap.parse_result(json.dumps(OK, indent=2))
    assert result.ok and result.runtime == "tflite" and result.run_id == "r1"
    assert result.times_ms == [10.25, 11.0, 10.5]
    assert result.mean_ms == pytest.approx(31.75 / 3)
    assert result.load_ms == 12.5 and result.device["sdk_int"] == 22


def test_parse_error_result_keeps_the_apps_message() -> None:
    data = dict(OK, status="error", error="RuntimeUnavailableException: no ExecuTorch", load_ms=None, times_ms=[])
    result = ap.parse_result(json.dumps(data))
    assert not result.ok and "ExecuTorch" in (result.error or "")
    with pytest.raises(ap.AppResultError, match="no timed passes"):
        _ = result.mean_ms


def _mutated(**changes: object) -> str:
    data = copy.deepcopy(OK)
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


_DELETE = object()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "wrote no result"),
        ("cat: files/benchmark_result.json: No such file or directory", "wrote no result"),
        ("run-as: package not debuggable: org.clcdeploy.demo", "debug APK"),
        ('{"schema_version": 1, "status": "ok"', "not valid JSON"),
        ("[1, 2]", "expected object"),
        (_mutated(times_ms=_DELETE), "missing required key 'times_ms'"),
        (_mutated(runtime="onnx"), r"\$\.runtime: must be one of"),
        (_mutated(schema_version=2), r"\$\.schema_version: must be 1"),
        (_mutated(times_ms=[1.0, "fast", 2.0]), r"\$\.times_ms\[1\]: expected number"),
        (_mutated(times_ms=[1.0, -2.0, 2.0]), ">= 0"),
        (_mutated(iterations=True), r"\$\.iterations: expected integer"),
        (_mutated(extra=1), "unexpected key 'extra'"),
        (_mutated(device={**DEVICE, "cores": "4"}), r"\$\.device\.cores: expected integer"),
        (_mutated(times_ms=[1.0]), "status ok needs 3 times"),
        (_mutated(load_ms=None), "needs a load time"),
        (_mutated(status="error", error=None), "status error needs a message"),
    ],
)
def test_parse_rejects_malformed_results(text: str, fragment: str) -> None:
    with pytest.raises(ap.AppResultError, match=fragment) as info:
        ap.parse_result(text)
    assert isinstance(info.value, ClcDeployError) and info.value.exit_code == 2


def test_parse_lists_every_schema_violation_at_once() -> None:
    data = copy.deepcopy(OK)
    del data["device"]["abis"]
    data["threads"] = -1
    with pytest.raises(ap.AppResultError) as info:
        ap.parse_result(json.dumps(data))
    assert "'abis'" in str(info.value) and "$.threads" in str(info.value)


def test_is_result_pending() -> None:
    assert ap.is_result_pending("")
    assert ap.is_result_pending("cat: files/benchmark_result.json: No such file or directory\n")
    assert not ap.is_result_pending(json.dumps(OK))
    with pytest.raises(ap.AppResultError, match="not installed"):
        ap.is_result_pending("run-as: unknown package: org.clcdeploy.demo")
