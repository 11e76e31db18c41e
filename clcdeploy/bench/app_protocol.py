"""The contract between the harness and the bundled demo app (android_app/): shell commands and result parsing.

Pure: builds the device-shell command strings and parses the JSON the app writes; no device I/O, no torch.
The app side of every name here lives in android_app/app/src/main/java/org/clcdeploy/demo/Protocol.kt
(package, activity, extras, result file) and ResultKeys.kt (JSON keys); tests/test_app_android_project.py checks
that the two sides agree.

A run, as the harness drives it:
  1. `install_command(remote_apk)` once, after pushing the debug APK (run-as needs a debuggable app);
  2. models pushed world-readable under /data/local/tmp/…;
  3. per model: `force_stop_command()`, `clear_result_command()`, `wake_command()` (a locked phone would start
     the app behind its keyguard), `start_command(...)` (check its output with `check_start_output`), then poll
     `read_result_command()` until `is_result_pending` is false (bounded; `running_command()` tells a crashed
     app from a slow one), and `parse_result` the text.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from clcdeploy.bench.app_schema import validate
from clcdeploy.errors import BenchError

PACKAGE = "org.clcdeploy.demo"
BENCHMARK_ACTIVITY = f"{PACKAGE}/.BenchmarkActivity"
DEMO_ACTIVITY = f"{PACKAGE}/.MainActivity"
RESULT_FILE = "benchmark_result.json"
LOG_TAG = "clcdeploy"
APK_REMOTE_PATH = "/data/local/tmp/clcdeploy-demo.apk"
RUNTIMES = ("pte", "tflite")

# Intent extras read by BenchmarkActivity (Protocol.kt holds the same strings).
EXTRA_MODEL_PATH = "model_path"
EXTRA_RUNTIME = "runtime"
EXTRA_ITERATIONS = "iterations"
EXTRA_WARMUP = "warmup"
EXTRA_THREADS = "threads"
EXTRA_RUN_ID = "run_id"
EXTRA_INPUT_SHAPE = "input_shape"  # int array: the artifact's input shape, from which the app builds its input

_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AppResultError(BenchError):
    """The app's result is missing, unreadable or not in the agreed shape (or the app could not be started)."""


@dataclass(frozen=True)
class AppResult:
    """One benchmark run of the demo app, as parsed from its JSON result."""

    model: str
    runtime: str
    status: str
    times_ms: list[float]
    load_ms: float | None
    device: dict[str, Any]
    threads: int
    warmup: int
    iterations: int
    run_id: str | None = None
    error: str | None = None
    runtime_library: str | None = None  # Maven coordinates of the runtime that ran it (None: an older app)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when the run completed and every timed pass is present."""
        return self.status == "ok"

    @property
    def mean_ms(self) -> float:
        """Average latency of the timed passes (the paper's 'average of ten inference passes')."""
        if not self.times_ms:
            raise AppResultError(f"run of {self.model} has no timed passes (status {self.status})")
        return sum(self.times_ms) / len(self.times_ms)


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BenchError(f"{name} must be an integer >= {minimum}, got {value!r}")


def start_command(
    model_remote_path: str,
    runtime: str,
    iterations: int,
    warmup: int,
    threads: int,
    run_id: str | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> str:
    """The `am start -W` device-shell command that runs one headless benchmark (threads 0: the app picks one count
    for both runtimes and reports it). `input_shape` is the artifact's own (NCHW for .pte, NHWC for .tflite):
    ExecuTorch's Android API cannot read a program's input shape, and without one it would run every pass on a
    freshly filled sample input."""
    if runtime not in RUNTIMES:
        raise BenchError(f"app runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if not model_remote_path.startswith("/"):
        raise BenchError(f"model path on the device must be absolute, got {model_remote_path!r}")
    suffix = ".pte" if runtime == "pte" else ".tflite"
    if not model_remote_path.endswith(suffix):
        raise BenchError(f"runtime {runtime} needs a {suffix} file, got {model_remote_path!r}")
    _check_int("iterations", iterations, 1)
    _check_int("warmup", warmup, 0)
    _check_int("threads", threads, 0)
    parts = [
        "am", "start", "-W", "-n", BENCHMARK_ACTIVITY,
        "--es", EXTRA_MODEL_PATH, shlex.quote(model_remote_path),
        "--es", EXTRA_RUNTIME, runtime,
        "--ei", EXTRA_ITERATIONS, str(iterations),
        "--ei", EXTRA_WARMUP, str(warmup),
        "--ei", EXTRA_THREADS, str(threads),
    ]
    if run_id is not None:
        if not _RUN_ID.match(run_id):
            raise BenchError(f"run_id must be 1-64 characters of [A-Za-z0-9._-], got {run_id!r}")
        parts += ["--es", EXTRA_RUN_ID, run_id]
    if input_shape is not None:
        if not input_shape or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in input_shape):
            raise BenchError(f"input_shape must be positive integers, got {input_shape!r}")
        parts += ["--eia", EXTRA_INPUT_SHAPE, ",".join(map(str, input_shape))]
    return " ".join(parts)


def check_start_output(output: str) -> None:
    """Raise if `am start -W` reported that the activity could not be started (not installed, not exported, …)."""
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("Error") or line.startswith("Exception occurred") or "SecurityException" in line:
            raise AppResultError(
                f"could not start {BENCHMARK_ACTIVITY}: {line} (is the demo app installed? pass --apk)"
            )


def force_stop_command() -> str:
    """Device-shell command that stops the app, so each model starts in a fresh process."""
    return f"am force-stop {PACKAGE}"


def wake_command() -> str:
    """Device-shell command that wakes the screen and dismisses a keyguard without a PIN, so the activity runs
    in the foreground (a background app may be scheduled on the little cores). Harmless when already awake."""
    return "input keyevent KEYCODE_WAKEUP; wm dismiss-keyguard"


def running_command() -> str:
    """Device-shell command that prints the app's process (ids or a `ps` line) and exits 1 when it is not running:
    pidof, or before Android 6, which has none, toolbox's `ps NAME` (it lists the processes of that name)."""
    return f"if command -v pidof >/dev/null; then pidof {PACKAGE}; else ps {PACKAGE} | grep {PACKAGE}; fi"


def result_path() -> str:
    """The result file, relative to the app's data folder (where `run-as` starts)."""
    return f"files/{RESULT_FILE}"


def read_result_command() -> str:
    """Device-shell command that prints the result JSON (needs the debuggable, i.e. debug-build, APK)."""
    return f"run-as {PACKAGE} cat {result_path()}"


def clear_result_command() -> str:
    """Device-shell command that removes a previous result, so polling cannot pick up a stale one."""
    return f"run-as {PACKAGE} rm -f {result_path()}"


def install_command(remote_apk: str = APK_REMOTE_PATH) -> str:
    """Device-shell command that installs (or replaces) the APK already pushed to `remote_apk`."""
    if not remote_apk.startswith("/") or not remote_apk.endswith(".apk"):
        raise BenchError(f"APK path on the device must be an absolute *.apk path, got {remote_apk!r}")
    return f"pm install -r -t {shlex.quote(remote_apk)}"


def installed_command() -> str:
    """Device-shell command that prints the app's APK path if it is installed (`package:/data/app/...`)."""
    return f"pm path {PACKAGE}"


def is_installed(output: str) -> bool:
    """Whether `installed_command()`'s output names an installed APK."""
    return any(line.startswith("package:") and line.endswith(".apk") for line in output.split())


def _run_as_problem(text: str) -> str | None:
    if "not debuggable" in text:
        return f"{PACKAGE} is not debuggable, so run-as cannot read its result: install the debug APK"
    if "unknown package" in text or ("Package '" in text and "is unknown" in text):
        return f"{PACKAGE} is not installed on the device: pass --apk"
    return None


def is_result_pending(output: str) -> bool:
    """True while `read_result_command()` shows no result file yet (keep polling); False once there is text."""
    problem = _run_as_problem(output)
    if problem:
        raise AppResultError(problem)
    return not output.strip() or "No such file" in output


def parse_result(json_text: str) -> AppResult:
    """Parse and validate the app's result JSON against the shared schema; raise AppResultError naming every fault."""
    problem = _run_as_problem(json_text)
    if problem:
        raise AppResultError(problem)
    if not json_text.strip() or "No such file" in json_text:
        raise AppResultError(f"the app wrote no result ({result_path()} is missing or empty)")
    try:
        data = json.loads(json_text)
    except json.JSONDecodeError as exc:
        raise AppResultError(
            f"app result is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): {json_text[:80]!r}"
        ) from None
    problems = validate(data)
    if not problems:
        problems = _semantic_problems(data)
    if problems:
        raise AppResultError("app result does not match app_result.schema.json: " + "; ".join(problems))
    return AppResult(
        model=data["model"],
        runtime=data["runtime"],
        status=data["status"],
        times_ms=[float(t) for t in data["times_ms"]],
        load_ms=None if data["load_ms"] is None else float(data["load_ms"]),
        device=dict(data["device"]),
        threads=int(data["threads"]),
        warmup=int(data["warmup"]),
        iterations=int(data["iterations"]),
        run_id=data["run_id"],
        error=data["error"],
        runtime_library=data.get("runtime_library"),
        raw=data,
    )


def _semantic_problems(data: dict[str, Any]) -> list[str]:
    """Rules the schema subset cannot say: an ok run is complete, an error run says why."""
    problems = []
    if data["status"] == "ok":
        if len(data["times_ms"]) != data["iterations"]:
            problems.append(f"$.times_ms: status ok needs {data['iterations']} times, has {len(data['times_ms'])}")
        if data["load_ms"] is None:
            problems.append("$.load_ms: status ok needs a load time")
        if data["error"] is not None:
            problems.append("$.error: must be null when status is ok")
    elif not data["error"]:
        problems.append("$.error: status error needs a message")
    return problems
