"""What executes a model on a device and reports its passes.

- `python`: clcdeploy's own runner script (device_runner.py) with the device's python3 and runtime; times
  every pass itself. Hosts, ARM Linux boards, the virtual device.
- `executor_runner`, `benchmark_model`, `onnxruntime_perf_test`: native binaries the user supplies
  (`--runner-bin`), pushed to the device; their output is parsed (parsers.py).
- `pte_runner`: clcdeploy's native ExecuTorch runner with the fused IGC kernel compiled in (executor_runner
  output format): preinstalled on the virtual device, and on other arm64 devices (Android phones too) pushed
  with its own libraries (device/native/bundle.py); used for .pte where the device has no ExecuTorch Python
  bindings or the .pte calls the fused kernel.
- `ort_runner`: clcdeploy's native ONNX Runtime runner (executor_runner output format), for .onnx on arm64 devices
  without Python's onnxruntime (Android phones), pushed with its own libraries like pte_runner; it registers
  clcdeploy's custom-op library for a fused .onnx.
- `app`: the bundled Android demo app's BenchmarkActivity (app_protocol.py); auto picks it for .pte and
  .tflite on a device without python3 (an Android phone) where the app is installed.
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from clcdeploy.bench import app_protocol
from clcdeploy.bench.device_runner import RUNTIME_MODULES
from clcdeploy.bench.parsers import (
    RunnerOutput, outputs_finite, parse_benchmark_model, parse_executor_runner, parse_onnxruntime_perf_test,
    pte_runner_sections,
)
from clcdeploy.bench.program_abi import abi_problem, device_abis
from clcdeploy.device import Device
from clcdeploy.errors import BenchError

RUNNER_SCRIPT = Path(__file__).with_name("device_runner.py")


@dataclass(frozen=True)
class RunRequest:
    model: str
    fmt: str
    artifact: str  # path on the device
    input_shape: tuple[int, ...]
    runs: int
    warmup: int
    threads: int  # 0: the runtime's default
    cpu_mask: str | None
    timeout_s: float
    kernel_library: str | None = None  # path on the device of clcdeploy's kernel library, when needed


class RunnerCrashed(BenchError):
    """The runner exited non-zero: its exit status and the tail of its stderr are in the message."""


def _pinned(command: str, cpu_mask: str | None) -> str:
    return f"taskset {cpu_mask} {command}" if cpu_mask else command


CPU_MASK_APP = ("--cpu-mask cannot pin the demo app: Android starts its process, not the shell that taskset "
                "wraps; drop --cpu-mask, or use a runner started from the shell (pte_runner, --runner-bin)")


def check_cpu_mask(device: Device, cpu_mask: str, cores: int | None) -> None:
    """The device has taskset (Android 5 has none), and the mask selects a CPU it can run on (taskset refuses one
    that does not, but only once the runner starts)."""
    result = device.shell(f"command -v taskset >/dev/null || exit 127; taskset {cpu_mask} true", timeout_s=30)
    if result.exit_code == 127:
        raise BenchError(f"--cpu-mask needs taskset on {device.serial}, which has none (Android 5 has no toybox, "
                         f"which brings it from Android 6): drop --cpu-mask")
    if result.exit_code != 0:
        reason = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["taskset failed"]
        raise BenchError(f"--cpu-mask {cpu_mask} selects no CPU that {device.serial} can run on ({cores or '?'} "
                         f"online; 1 = cpu0, 3 = cpu0-cpu1): {reason[0]}")


def _names(requests: list[RunRequest]) -> str:
    return ", ".join(f"{r.model}/{r.fmt}" for r in requests)


def _check_exit(result, requests: list[RunRequest], runner: str) -> None:
    if result.exit_code != 0:
        tail = " | ".join((result.stderr.strip() or result.stdout.strip()).splitlines()[-4:]) or "no output"
        raise RunnerCrashed(f"{runner} crashed on {_names(requests)} with exit status {result.exit_code}: {tail}")


class Runner(ABC):
    name: str
    formats: tuple[str, ...]
    side_by_side = False  # whether run_side_by_side can time several models in one process

    def run_side_by_side(self, device: Device, requests: list[RunRequest]) -> list[RunnerOutput]:
        """Time the models of `requests` (one format, same passes and threads) in one process, each turn one
        pass of every model in a new order; one output per request, in order."""
        raise BenchError(f"the {self.name} runner times one model at a time")

    def prepare(self, device: Device) -> None:
        """Put whatever the runner needs on the device (once per device)."""

    @abstractmethod
    def run(self, device: Device, request: RunRequest) -> RunnerOutput:
        """Warm up, run exactly `request.runs` timed passes, and report them."""


def device_python(device: Device) -> str:
    """The interpreter with the runtimes: this process's own on the host, the device's python3 elsewhere."""
    return shlex.quote(sys.executable) if device.serial == "local" else "python3"


def push_if_changed(device: Device, local: Path, remote: str, sha256: str | None = None) -> bool:
    """Push `local` unless a file with the same content is already at `remote`; True if it was pushed. `sha256`:
    `local`'s, where the caller has already checked it (an artifact against its manifest)."""
    remote_digest = device.remote_digest(remote)
    if remote_digest is not None and remote_digest.matches(local, sha256):
        return False
    device.push(local, remote)
    return True


class PythonRunner(Runner):
    name = "python"
    formats = ("onnx", "tflite", "pte")
    side_by_side = True

    def prepare(self, device: Device) -> None:
        self.script = f"{device.work_dir}/clcdeploy_runner.py"
        push_if_changed(device, RUNNER_SCRIPT, self.script)

    @staticmethod
    def progress_file(device: Device, requests: list[RunRequest]) -> str:
        """Where the runner records the pass it is on: readable after a dropped connection."""
        first = requests[0]
        which = f"{first.model}-{first.fmt}" if len(requests) == 1 else f"side-by-side-{first.fmt}"
        return f"{device.work_dir}/progress-{which}.txt"

    def run(self, device: Device, request: RunRequest) -> RunnerOutput:
        report = self._report(device, [request])
        return self._output(report, report)

    def run_side_by_side(self, device: Device, requests: list[RunRequest]) -> list[RunnerOutput]:
        report = self._report(device, requests)
        return [self._output(model, report, side_by_side=True) for model in report["models"]]

    def _report(self, device: Device, requests: list[RunRequest]) -> dict:
        first = requests[0]
        models = " ".join(f"--model {shlex.quote(r.artifact)}" for r in requests)
        library = next((r.kernel_library for r in requests if r.kernel_library), None)  # one per format
        progress = shlex.quote(self.progress_file(device, requests))
        command = _pinned(
            f"{device_python(device)} {shlex.quote(self.script)} {models} "
            f"--format {first.fmt} --input-shape {','.join(map(str, first.input_shape))} "
            f"--runs {first.runs} --warmup {first.warmup} --threads {first.threads} --progress {progress}"
            + (f" --kernel-library {shlex.quote(library)}" if library else ""),
            first.cpu_mask)
        # The progress file names the pass a lost or timed-out run had reached: an earlier run's must not stand
        # in for it, and a finished run's is of no use.
        command = f"rm -f {progress}; {command}; status=$?; [ $status -ne 0 ] || rm -f {progress}; exit $status"
        result = device.shell(command, timeout_s=sum(r.timeout_s for r in requests))
        _check_exit(result, requests, "the python runner")
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise BenchError(f"the python runner printed no result for {_names(requests)}: "
                             f"{result.stdout[-200:]!r}") from None

    @staticmethod
    def _output(model: dict, report: dict, side_by_side: bool = False) -> RunnerOutput:
        """One model's output; with every model in one process its peak memory is not its own."""
        return RunnerOutput(model["times_ms"], sum(model["times_ms"]) / len(model["times_ms"]), model["load_ms"],
                            None if side_by_side else report["peak_rss_mb"],
                            extra={"outputs_finite": model["outputs_finite"], "runtime": model["runtime"],
                                   "machine": report["machine"]})


# Native runners: the formats each runs and the parser of what it prints.
NATIVE_RUNNERS = {
    "executor_runner": (("pte",), parse_executor_runner),
    "pte_runner": (("pte",), parse_executor_runner),
    "ort_runner": (("onnx",), parse_executor_runner),
    "benchmark_model": (("tflite",), parse_benchmark_model),
    "onnxruntime_perf_test": (("onnx",), parse_onnxruntime_perf_test),
}


class NativeRunner(Runner):
    """A native runner binary: user supplied (`--runner-bin`, pushed) or already on the device's PATH."""

    def __init__(self, name: str, binary: Path | None = None) -> None:
        self.name, self.binary = name, binary
        self.formats, self.parse = NATIVE_RUNNERS[name]
        self.side_by_side = name == "pte_runner"  # clcdeploy's own runner takes several --model_path

    def prepare(self, device: Device) -> None:
        """Find or push the binary; `self.launch` becomes the shell words that start it."""
        if self.binary is None and self.name == "pte_runner" and device.serial == "local":
            from clcdeploy.device.native import build_pte_runner

            self.binary = build_pte_runner("host", log=lambda _: None)
        if self.binary is None and self.name in BUNDLED_RUNNERS and not on_path(device, self.name):
            self.launch = push_bundle(device, self.name)
            return
        if self.binary is None:
            self.launch = self.name  # on PATH
            return
        problem = abi_problem(self.binary, device, "--runner-bin")
        if problem:
            raise BenchError(problem)
        remote = f"{device.work_dir}/{self.binary.name}"
        push_if_changed(device, self.binary, remote)
        device.shell(f"chmod 755 {shlex.quote(remote)}", timeout_s=30).check(f"chmod {remote}")
        self.launch = shlex.quote(remote)

    def command(self, requests: list[RunRequest]) -> str:
        """The command line for one request, or for several side by side (pte_runner only)."""
        request = requests[0]
        model, runs, warmup, threads = shlex.quote(request.artifact), request.runs, request.warmup, request.threads
        binary = self.launch
        if self.name in ("executor_runner", "pte_runner"):
            # Upstream executor_runner has no warm-up flag: it runs warm-up + runs and we drop the first ones.
            flags = f" --warmup={warmup}" if self.name == "pte_runner" else ""
            flags += " --order_seed=1" if len(requests) > 1 else ""  # a new model order every turn
            total = runs if self.name == "pte_runner" else runs + warmup
            models = " ".join(f"--model_path={shlex.quote(r.artifact)}" for r in requests)
            return f"{binary} {models} --num_executions={total} --cpu_threads={threads or -1}{flags}"
        if self.name == "ort_runner":
            library = f" --custom_op_library={shlex.quote(request.kernel_library)}" if request.kernel_library else ""
            return (f"{binary} --model_path={model} --num_executions={runs} --warmup={warmup} "
                    f"--cpu_threads={threads or -1}{library}")
        if self.name == "benchmark_model":
            # --min_secs=0 and --warmup_min_secs=0: exactly the requested number of passes.
            return (f"{binary} --graph={model} --num_threads={threads or -1} --warmup_runs={warmup} "
                    f"--warmup_min_secs=0 --num_runs={runs} --min_secs=0 --max_secs=100000 "
                    f"--report_peak_memory_footprint=true")
        return f"{binary} -e cpu -m times -r {runs} -x {threads or 0} -I -s {model}"

    def profile(self, device: Device, request: RunRequest, dump_path: str) -> None:
        """pte_runner: run `request` once more with ExecuTorch's event tracer, which writes an ETDump to `dump_path`
        on the device (operator_profile.py reads it)."""
        command = f"{self.command([request])} --etdump_path={shlex.quote(dump_path)}"
        result = device.shell(_pinned(command, request.cpu_mask), timeout_s=request.timeout_s)
        _check_exit(result, [request], self.name)

    def run(self, device: Device, request: RunRequest) -> RunnerOutput:
        result = device.shell(_pinned(self.command([request]), request.cpu_mask), timeout_s=request.timeout_s)
        _check_exit(result, [request], self.name)
        text = result.stdout + "\n" + result.stderr
        output = self.parse(text)
        if self.name == "executor_runner" and output.times_ms is not None:
            output.times_ms = output.times_ms[request.warmup:]
            output.mean_ms = sum(output.times_ms) / max(len(output.times_ms), 1)
        finite = outputs_finite(text)
        if finite is not None:
            output.extra["outputs_finite"] = finite
        return output

    def run_side_by_side(self, device: Device, requests: list[RunRequest]) -> list[RunnerOutput]:
        if not self.side_by_side:
            return super().run_side_by_side(device, requests)
        result = device.shell(_pinned(self.command(requests), requests[0].cpu_mask),
                              timeout_s=sum(r.timeout_s for r in requests))
        _check_exit(result, requests, self.name)
        sections = pte_runner_sections(result.stdout)
        missing = [r.artifact for r in requests if r.artifact not in sections]
        if missing:
            raise BenchError(f"{self.name} printed no result for {', '.join(missing)}")
        outputs = []
        for request in requests:
            output = parse_executor_runner(sections[request.artifact])
            output.extra["outputs_finite"] = outputs_finite(sections[request.artifact])
            outputs.append(output)
        return outputs


class AppRunner(Runner):
    """The demo app's headless BenchmarkActivity (Android only)."""

    name = "app"
    formats = app_protocol.RUNTIMES

    def __init__(self, apk: Path | None = None, poll_timeout_s: float = 600.0) -> None:
        self.apk, self.poll_timeout_s = apk, poll_timeout_s

    def prepare(self, device: Device) -> None:
        if self.apk is not None:
            device.push(self.apk, app_protocol.APK_REMOTE_PATH)
            device.shell(app_protocol.install_command(), timeout_s=300).check("installing the demo app")
        found = device.shell(app_protocol.installed_command(), timeout_s=60)
        if found.exit_code == 127:  # the shell found no `pm`
            raise BenchError(f"--runner app drives clcdeploy's demo app on an Android phone, and {device.serial} is "
                             f"not one (no `pm`): use --runner auto")
        if not app_protocol.is_installed(found.stdout):
            raise BenchError(f"the demo app is not installed on {device.serial}: add --apk PATH (build android_app/, "
                             f"README)")

    def run(self, device: Device, request: RunRequest) -> RunnerOutput:
        device.shell(f"chmod 644 {shlex.quote(request.artifact)}", timeout_s=30)
        device.shell(app_protocol.force_stop_command(), timeout_s=60).check("force-stopping the demo app")
        device.shell(app_protocol.clear_result_command(), timeout_s=60)
        device.shell(app_protocol.wake_command(), timeout_s=30)  # best effort: fails harmlessly on some builds
        run_id = f"{request.model}-{int(time.time())}"
        start = app_protocol.start_command(request.artifact, request.fmt, request.runs, request.warmup,
                                           request.threads, run_id=run_id, input_shape=request.input_shape)
        app_protocol.check_start_output(device.shell(start, timeout_s=120).check("starting the demo app").stdout)
        what = f"{request.model}/{request.fmt}"
        result = app_protocol.parse_result(self._wait_for_result(device, request, what))
        if result.run_id != run_id:
            raise RunnerCrashed(f"the demo app's result for {what} belongs to another run ({result.run_id!r}, not "
                                f"{run_id!r}): is another harness driving the app on {device.serial}?")
        if not result.ok:
            raise RunnerCrashed(f"the demo app failed on {what}: {result.error}")
        library = {"runtime_library": result.runtime_library} if result.runtime_library else {}
        return RunnerOutput(list(result.times_ms), result.mean_ms, result.load_ms,
                            extra={"device": result.device, "threads": result.threads, **library})

    def _wait_for_result(self, device: Device, request: RunRequest, what: str) -> str:
        """Poll for the result file until it appears; stop early when the app's process has gone without
        writing one (a native crash writes nothing), and at the deadline."""
        limit = min(self.poll_timeout_s, request.timeout_s)
        deadline = time.monotonic() + limit
        while True:
            out = device.shell(app_protocol.read_result_command(), timeout_s=60).stdout
            if not app_protocol.is_result_pending(out):
                return out
            running = device.shell(app_protocol.running_command(), timeout_s=30)
            if running.exit_code == 1 and not running.stdout.strip():  # other failures: unknown, poll on
                # it may have written the result and exited between the two commands
                out = device.shell(app_protocol.read_result_command(), timeout_s=60).stdout
                if not app_protocol.is_result_pending(out):
                    return out
                raise RunnerCrashed(f"the demo app's process ended without a result for {what} (a crash: see "
                                    f"`adb logcat -s {app_protocol.LOG_TAG} AndroidRuntime DEBUG`)")
            if time.monotonic() > deadline:
                raise BenchError(f"the demo app wrote no result for {what} within {limit:.0f} s: raise --timeout")
            time.sleep(2)


RUNNER_NAMES = ("auto", "python", "app", *NATIVE_RUNNERS)
# The formats each named runner runs (auto: whatever the device has).
RUNNER_FORMATS = {"python": PythonRunner.formats, "app": AppRunner.formats,
                  **{name: formats for name, (formats, _parse) in NATIVE_RUNNERS.items()}}


def make_runner(name: str, binary: Path | None = None, apk: Path | None = None) -> Runner:
    """The runner called `name`; native ones may take a user binary."""
    if name == "python":
        return PythonRunner()
    if name == "app":
        return AppRunner(apk)
    if name in NATIVE_RUNNERS:
        if name not in BUNDLED_RUNNERS and binary is None:
            raise BenchError(f"--runner {name} needs --runner-bin PATH (the {name} binary for the device)")
        return NativeRunner(name, binary)
    raise BenchError(f"unknown runner {name!r}; choose one of {', '.join(RUNNER_NAMES)}")


# A native runner for each format, for devices where clcdeploy's own runners cannot run it.
NATIVE_RUNNER_FOR = {"pte": "executor_runner", "tflite": "benchmark_model", "onnx": "onnxruntime_perf_test"}


@functools.lru_cache(maxsize=None)
def python_runs(device: Device, fmt: str) -> bool:
    """Whether the device's python3 has the runtime that clcdeploy's runner script needs for `fmt`. ExecuTorch's
    bindings are imported, since they also need torch; the other runtimes are only located, which is quicker
    (an emulated device takes seconds to import them)."""
    module = RUNTIME_MODULES[fmt]
    check = (f"import {module}" if fmt == "pte"
             else f"import importlib.util as u, sys; sys.exit(u.find_spec({module!r}) is None)")
    probe = f"{device_python(device)} -c {shlex.quote(check)} >/dev/null 2>&1"
    return device.shell(probe, timeout_s=120).exit_code == 0


@functools.lru_cache(maxsize=None)
def on_path(device: Device, program: str) -> bool:
    return device.shell(f"command -v {shlex.quote(program)} >/dev/null", timeout_s=30).exit_code == 0


@functools.lru_cache(maxsize=None)
def runs_arm64(device: Device) -> bool:
    """Whether the device runs arm64 programs, as clcdeploy's bundled runners are."""
    return "arm64-v8a" in device_abis(device)


# clcdeploy's own native runners: pushed to arm64 devices with their libraries (device/native/bundle.py)
BUNDLED_RUNNERS = {"pte_runner": "pte", "ort_runner": "onnx"}


def runner_problem(device: Device, name: str) -> str | None:
    """Why clcdeploy's runner `name` (pte_runner, ort_runner) cannot run on `device`, or None if it can: a device
    with it on its PATH, any arm64 device, and for pte_runner this host (its own build)."""
    if (device.serial == "local" and name == "pte_runner") or on_path(device, name) or runs_arm64(device):
        return None
    builds = "this host and arm64 devices" if name == "pte_runner" else "arm64 devices"
    abis = ", ".join(device_abis(device)) or "programs of an unknown ABI"
    return (f"clcdeploy's {name} is built for {builds} only (the runtimes' wheels have no 32-bit ARM build), and "
            f"{device.serial} runs {abis}")


def push_bundle(device: Device, name: str) -> str:
    """Push clcdeploy's runner `name` with its libraries (only files that changed) to the device's work folder,
    remove the bundles of it earlier clcdeploy versions left there, and return the shell words that start it.
    Refused in one line on a device that does not run arm64."""
    from clcdeploy.device.native.bundle import build_bundle, bundle_prefix, launch_words

    if problem := runner_problem(device, name):
        fmt = BUNDLED_RUNNERS[name]
        other = (f"--formats tflite, or --runner {NATIVE_RUNNER_FOR[fmt]} --runner-bin PATH (built for the device)"
                 if device.serial != "local" else f"--runner python, which times .{fmt} on this host")
        raise BenchError(f"{problem}: pass {other}")
    bundle = build_bundle(name, log=lambda _: None)
    remote = f"{device.work_dir}/{bundle.name}"
    for file in sorted(bundle.iterdir()):
        push_if_changed(device, file, f"{remote}/{file.name}")
    stale = (f"for d in {shlex.quote(device.work_dir)}/{bundle_prefix(name)}*; do [ \"$d\" = {shlex.quote(remote)} ] "
             f"|| rm -rf \"$d\"; done")
    device.shell(f"chmod 755 {shlex.quote(remote)}/*; {stale}", timeout_s=60).check(f"chmod {remote}")
    return launch_words(name, remote)


@functools.lru_cache(maxsize=None)
def demo_app_installed(device: Device) -> bool:
    """Whether the bundled demo app is installed (only Android has `pm`)."""
    result = device.shell(app_protocol.installed_command(), timeout_s=60)
    return result.exit_code == 0 and app_protocol.is_installed(result.stdout)


@functools.lru_cache(maxsize=None)
def app_pte_problem(device: Device) -> str | None:
    """Why the demo app cannot run a .pte on this device, or None: ExecuTorch's Android library has arm64-v8a
    code only and needs Android 6 (SDK 23; older phones can install only the app's legacy build, without it)."""
    abi, _, sdk = device.shell("getprop ro.product.cpu.abi; getprop ro.build.version.sdk",
                               timeout_s=30).stdout.strip().partition("\n")
    abi, sdk = abi.strip(), sdk.strip()
    if abi == "arm64-v8a" and sdk.isdigit() and int(sdk) >= 23:
        return None
    return (f"ExecuTorch's Android library needs an arm64-v8a phone with Android 6 (SDK 23) or later, and "
            f"{device.serial} is {abi or 'of unknown ABI'}, SDK {sdk or '?'}")


def auto_runner_for(device: Device, fmt: str, python: PythonRunner, needs_kernel_library: bool = False) -> Runner:
    """`--runner auto`: the Python runner where the device's python3 has the format's runtime (hosts, ARM Linux
    boards, the virtual device); for a .pte without ExecuTorch's Python bindings, or one calling clcdeploy's
    fused IGC kernel, clcdeploy's pte_runner (kernel compiled in): on this host a build of it, elsewhere the one
    on the device's PATH (the virtual device's); for a .pte or .tflite on an Android phone without python3, the
    demo app if installed (a .pte only where the app has ExecuTorch: app_pte_problem); for any other .pte on an
    arm64 device, clcdeploy's pte_runner pushed with its own libraries; for a .onnx on an arm64 device without
    Python's onnxruntime, clcdeploy's ort_runner, pushed likewise.
    One runner object per device and kind, so that --side-by-side can give it several models at once."""
    fused_pte = fmt == "pte" and needs_kernel_library
    if fused_pte and device.serial == "local":
        # Not the Python runtime: its Module API places planned memory 16 bytes past a cache line, which costs
        # the fused program 6-8% here (BENCHMARKS.md, section 3); pte_runner aligns it, as on a device.
        return native_runner_for(device, "pte_runner")
    if not fused_pte and python_runs(device, fmt):
        return python
    if fmt == "pte" and on_path(device, "pte_runner"):
        return native_runner_for(device, "pte_runner")
    if fmt == "onnx" and runs_arm64(device):
        return native_runner_for(device, "ort_runner")  # pushed with its own libraries
    app = fmt in AppRunner.formats and not needs_kernel_library and demo_app_installed(device)
    app_problem = app and fmt == "pte" and app_pte_problem(device)
    if app and not app_problem:
        return _demo_app(device)
    if fmt == "pte" and runs_arm64(device):
        return native_runner_for(device, "pte_runner")  # pushed with its own libraries
    if app_problem:
        raise BenchError(f"no runner for .pte: the device has no python3 with ExecuTorch, and the demo app "
                         f"cannot run it: {app_problem}; pass --formats tflite, or --runner "
                         f"{NATIVE_RUNNER_FOR['pte']} --runner-bin PATH (built for the device)")
    raise BenchError(no_runner_message(fmt, needs_kernel_library, on_path(device, "python3")))


def no_runner_message(fmt: str, needs_kernel_library: bool, has_python3: bool) -> str:
    """What to do on a device where `--runner auto` finds nothing that runs `fmt` (one line)."""
    runtime = RUNTIME_MODULES[fmt].split(".")[0]
    if needs_kernel_library and fmt == "pte":  # reached only on a device that does not run arm64 programs
        return ("no runner for .pte artifacts calling clcdeploy's fused IGC kernel: only clcdeploy's pte_runner runs "
                "them, which is built for this host and for arm64 devices (the executorch wheels have no 32-bit ARM "
                "build): export without --fused-igc")
    if needs_kernel_library and fmt == "onnx":  # reached only on a device that does not run arm64 programs
        return ("no runner for .onnx artifacts calling clcdeploy's fused IGC kernel: only clcdeploy's runner script "
                "with python3 and onnxruntime, or clcdeploy's ort_runner on arm64 devices, runs them: export without "
                "--fused-igc")
    if needs_kernel_library:
        return (f"no runner for .{fmt} artifacts calling clcdeploy's fused IGC kernel: only clcdeploy's runner "
                f"script with python3 and {runtime} on an aarch64 Linux device runs them; on an Android phone build "
                f"clcdeploy/kernels/csrc into the app with the NDK, or export without --fused-igc")
    python = (f"the device's python3 lacks {runtime}" if has_python3
              else "the device has no python3 (an Android phone has none)")
    native = f"--runner {NATIVE_RUNNER_FOR[fmt]} --runner-bin PATH (built for the device)"
    app_formats = ",".join(AppRunner.formats)
    if fmt not in AppRunner.formats:
        return (f"no runner for .{fmt}: {python}, and the demo app runs only {app_formats}: pass --formats "
                f"{app_formats}, or {native}")
    return (f"no runner for .{fmt}: {python} and the demo app is not installed: install it (build android_app/, "
            f"then --runner app --apk PATH --formats {app_formats}), or pass {native}")


@functools.lru_cache(maxsize=None)
def _demo_app(device: Device) -> AppRunner:
    runner = AppRunner()
    runner.prepare(device)
    return runner


@functools.lru_cache(maxsize=None)
def native_runner_for(device: Device, name: str) -> NativeRunner:
    """clcdeploy's runner `name` (pte_runner, ort_runner), prepared: pte_runner's build for this host, the device's
    own (on its PATH, as the virtual device's pte_runner), or on any other arm64 device the bundle pushed there."""
    runner = NativeRunner(name)
    runner.prepare(device)
    return runner
