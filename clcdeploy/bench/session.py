"""A benchmark session: per device (one worker each), push artifacts, run warm-up + timed passes per
model and format, and collect measurements. What was measured before a failure is kept.

With several rounds every artifact is run once per round, in the given order in odd rounds and in reverse in
even ones (so no artifact always follows the same one), and its rounds' passes are pooled into one measurement.
Side by side (`--side-by-side`), the models of each format run in one runner process, one pass of each per turn
in a new order every turn, so that a machine whose speed drifts slows them all alike and their ratios hold.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from clcdeploy.bench.artifacts import Artifact
from clcdeploy.bench.parsers import RunnerOutput
from clcdeploy.bench.device_lock import bench_lock
from clcdeploy.bench.operator_profile import profile_operators
from clcdeploy.bench.runners import (CPU_MASK_APP, AppRunner, PythonRunner, Runner, RunRequest, auto_runner_for,
                                     check_cpu_mask, native_runner_for, no_runner_message, on_path, push_if_changed,
                                     python_runs, runner_problem)
from clcdeploy.bench.stats import summarize
from clcdeploy.device import Device, open_device
from clcdeploy.device.errors import CommandTimeoutError
from clcdeploy.errors import BenchError, ClcDeployError, DeviceError


@dataclass
class BenchOptions:
    models: list[str]
    formats: list[str]
    runs: int = 10
    warmup: int = 3
    threads: int = 0
    cpu_mask: str | None = None
    cooldown_s: float = 0.0
    timeout_s: float = 3600.0
    rounds: int = 1
    side_by_side: bool = False
    per_op: bool = False  # after the timed runs, one traced pte_runner run per .pte (operator_profile.py)


@dataclass
class Measurement:
    device: str
    model: str
    format: str
    runner: str
    file_bytes: int
    macs: int | None
    params: int | None
    times_ms: list[float] | None
    mean_ms: float
    input_shape: list[int] | None = None
    std_ms: float | None = None
    median_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    load_ms: float | None = None
    peak_memory_mb: float | None = None
    aggregate_only: bool = False
    outputs_finite: bool | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DeviceRun:
    serial: str
    facts: dict = field(default_factory=dict)
    thermal_before: dict = field(default_factory=dict)
    thermal_after: dict = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None


# Formats whose kernel library the python runner loads on any device clcdeploy builds it for (this host, and
# aarch64 Linux devices such as the virtual device: the ONNX Runtime custom op, the LiteRT delegate).
PYTHON_RUNNER_KERNEL_FORMATS = {"onnx": "ONNX Runtime custom-op library", "tflite": "LiteRT delegate"}
GLIBC_AARCH64_LOADER = "/lib/ld-linux-aarch64.so.1"


def check_devices_reachable(serials: list[str | None], **device_options) -> None:
    """Connect to every named device once and let go: a mistyped serial, a phone held by a running `adb
    server`, one that has not yet trusted our key or one another bench is using fails in seconds instead of
    after minutes of exports."""
    for serial in serials:
        try:
            with open_device(serial, **device_options) as device, bench_lock(device.serial):
                pass
        except DeviceError as exc:
            raise BenchError(f"device {serial} is not reachable (nothing exported or measured): {exc}") from None


def check_kernel_library_reachable(serials: list[str | None], artifacts: dict, runner: Runner | None) -> None:
    """Artifacts exported with --fused-igc need clcdeploy's fused IGC kernel. A .pte: the python runner loads
    this host's kernel library, and clcdeploy's pte_runner has the kernel compiled in (the virtual device's
    copy too). A .onnx or .tflite: the python runner, which registers the custom-op library or delegate built
    for the device (`_kernel_library`); a .onnx also clcdeploy's ort_runner. Refuse other runners before
    connecting to any device."""
    remote = any(s not in (None, "local") for s in serials)
    for fmt, library in PYTHON_RUNNER_KERNEL_FORMATS.items():
        needy_here = sorted(a.path.name for a in artifacts.values() if a.needs_kernel_library and a.fmt == fmt)
        if needy_here and not (runner is None or _loads_kernel_library(runner, fmt)):
            also = " and clcdeploy's ort_runner" if fmt == "onnx" else ""
            raise BenchError(f"{', '.join(needy_here)} {_call(needy_here)} clcdeploy's fused IGC kernel, whose "
                             f"{library} only the python runner{also} loads: use --runner auto or python, or export "
                             f"without --fused-igc")
    needy = sorted(a.path.name for a in artifacts.values() if a.needs_kernel_library and a.fmt == "pte")
    if not needy or runner is None:  # `auto` picks a runner that has the kernel (auto_runner_for)
        return
    if isinstance(runner, PythonRunner) and not remote or getattr(runner, "name", None) == "pte_runner":
        return
    raise BenchError(f"{', '.join(needy)} {_call(needy)} clcdeploy's fused IGC kernel, which only clcdeploy's "
                     f"pte_runner and the python runner on this host carry: use --runner auto or pte_runner, or "
                     f"export without --fused-igc")


def _call(files: list[str]) -> str:
    return "calls" if len(files) == 1 else "call"


def _loads_kernel_library(runner: Runner, fmt: str) -> bool:
    """Whether `runner` loads clcdeploy's kernel library for a fused artifact of `fmt` (.onnx, .tflite)."""
    return isinstance(runner, PythonRunner) or (fmt == "onnx" and runner.name == "ort_runner")


def _kernel_library(device: Device, facts: dict, artifact: Artifact, runner: Runner) -> str | None:
    """Where on the device the runner finds clcdeploy's kernel library for an artifact exported with --fused-igc
    (pte_runner has the kernel compiled in): this host's build, or for a remote device the aarch64 Linux build of
    the ONNX Runtime custom op / LiteRT delegate, pushed to the device's work folder."""
    if not (artifact.needs_kernel_library and _loads_kernel_library(runner, artifact.fmt)):
        return None
    # cmake plus the executorch wheel / the runtimes' API headers, on this machine
    from clcdeploy.kernels import build

    builders = {"pte": build.build_executorch_kernels, "onnx": build.build_onnxruntime_kernels,
                "tflite": build.build_litert_kernels}
    if device.serial == "local":
        return str(builders[artifact.fmt]())
    # The cross build links against glibc: the device's Python must be a glibc userland (the virtual device's
    # Debian), not Android's bionic; ort_runner runs on arm64 devices only, with its own glibc (bundle.py).
    own_glibc = runner.name == "ort_runner"
    glibc = own_glibc or device.shell(f"test -e {GLIBC_AARCH64_LOADER}", timeout_s=30).exit_code == 0
    if not (own_glibc or facts.get("kernel_machine") == "aarch64") or not glibc:
        raise BenchError(f"{artifact.path.name} needs clcdeploy's {PYTHON_RUNNER_KERNEL_FORMATS[artifact.fmt]}, "
                         f"which clcdeploy builds for this host and for aarch64 glibc Linux (the virtual device), "
                         f"not for this {facts.get('abi') or facts.get('kernel_machine')} device: build "
                         f"clcdeploy/kernels/csrc with the NDK into the app, or export without --fused-igc")
    library = builders[artifact.fmt](target="aarch64")
    remote = f"{device.work_dir}/{artifact.fmt}-{library.parent.name}-{library.name}"
    push_if_changed(device, library, remote)
    return remote


def _request(artifact: Artifact, remote: str, options: BenchOptions, runner: Runner,
             kernel_library: str | None) -> RunRequest:
    return RunRequest(artifact.model, artifact.fmt, remote, artifact.input_shape, options.runs, options.warmup,
                      options.threads, options.cpu_mask, options.timeout_s, kernel_library)


def _measure(device: Device, runner: Runner, artifact: Artifact, request: RunRequest) -> Measurement:
    return _measurement(device, runner, artifact, request, runner.run(device, request))


def _measure_side_by_side(device: Device, runner: Runner, artifacts: list[Artifact],
                          requests: list[RunRequest]) -> list[Measurement]:
    outputs = runner.run_side_by_side(device, requests)
    if len(outputs) != len(requests):
        raise BenchError(f"{runner.name} reported {len(outputs)} models, not the {len(requests)} it was given")
    side_by_side = [f"{a.model}/{a.fmt}" for a in artifacts]
    measurements = [_measurement(device, runner, a, r, o) for a, r, o in zip(artifacts, requests, outputs)]
    for measurement in measurements:
        measurement.extra["side_by_side_with"] = side_by_side
    return measurements


def _measurement(device: Device, runner: Runner, artifact: Artifact, request: RunRequest,
                 output: RunnerOutput) -> Measurement:
    if output.times_ms is not None and len(output.times_ms) != request.runs:
        raise BenchError(f"{runner.name} reported {len(output.times_ms)} passes of {artifact.model}/"
                         f"{artifact.fmt}, not the {request.runs} asked for")
    stats = summarize(output.times_ms) if output.times_ms else {"mean_ms": output.mean_ms}
    return Measurement(
        device=device.serial, model=artifact.model, format=artifact.fmt, runner=runner.name,
        file_bytes=artifact.bytes, macs=artifact.macs, params=artifact.params, times_ms=output.times_ms,
        input_shape=list(artifact.input_shape), **stats, load_ms=output.load_ms, peak_memory_mb=output.peak_memory_mb,
        aggregate_only=output.aggregate_only, outputs_finite=output.extra.pop("outputs_finite", None),
        extra=output.extra | ({"fused_igc_kernel": True} if artifact.needs_kernel_library else {})
        | ({"computed_mult_adds": artifact.computed_macs} if artifact.computed_macs else {}),
    )


def _last_recorded_stage(serial: str | None, progress_path: str | None, device_options: dict) -> str:
    """After a lost connection: reconnect once and read which pass the runner had reached, if it can."""
    if progress_path is None:
        return ""
    try:
        with open_device(serial, **device_options) as device:
            lines = device.shell(f"cat {progress_path}", timeout_s=30).stdout.strip().splitlines()
    except ClcDeployError:
        return " (the device did not come back, so the pass is unknown)"
    return f" at {lines[-1]}" if lines else " before the first pass"


def bench_device(serial: str | None, artifacts: dict[tuple[str, str], Artifact], options: BenchOptions,
                 runner: Runner | None, log: Callable[[str], None] = print, **device_options) -> DeviceRun:
    """Benchmark every artifact on one device. Errors end this device's run; results so far are kept."""
    run = DeviceRun(serial or "local")
    current, progress_path, timing = "connecting", None, False
    rounds: dict[tuple[str, str], list[Measurement]] = {}  # per artifact, one measurement per round
    profiles: dict[tuple[str, str], dict] = {}  # --per-op: per .pte, its operators' times
    try:
        with open_device(serial, **device_options) as device, bench_lock(device.serial):
            run.serial = device.serial
            current = "reading device facts"
            run.facts = device.facts().to_dict()
            run.thermal_before = device.thermal()
            device.ensure_work_dir()
            if options.cpu_mask:
                current = "checking --cpu-mask"
                check_cpu_mask(device, options.cpu_mask, run.facts.get("cores_online"))
            python = PythonRunner()
            python.prepare(device)
            if runner is not None and runner is not python:
                current = f"preparing the {runner.name} runner"
                runner.prepare(device)
            # What runs together: each artifact alone, or side by side every model of one format
            steps = ([[(model, fmt) for model in options.models] for fmt in options.formats] if options.side_by_side
                     else [[(model, fmt)] for model in options.models for fmt in options.formats])
            # Every runner chosen before anything is pushed or timed: an artifact the device cannot run ends the
            # session at once. Each artifact is pushed when it is first needed.
            chosen_runners: dict[tuple[str, str], Runner] = {}
            for key in (key for step in steps for key in step):
                current = f"{key[0]}/{key[1]} (choosing a runner)"
                chosen_runners[key] = _choose_runner(device, artifacts[key], runner, python)
                if options.cpu_mask and isinstance(chosen_runners[key], AppRunner):
                    raise BenchError(CPU_MASK_APP)
            profiler = None
            if options.per_op and "pte" in options.formats:  # whichever runner times the .pte, pte_runner traces it
                current = "preparing pte_runner for --per-op"
                if problem := runner_problem(device, "pte_runner"):
                    raise BenchError(f"--per-op traces each .pte in clcdeploy's pte_runner: {problem}; drop --per-op")
                profiler = native_runner_for(device, "pte_runner")
            requests: dict[tuple[str, str], RunRequest] = {}
            for index in range(options.rounds):
                tag = f" (round {index + 1} of {options.rounds})" if options.rounds > 1 else ""
                for step in steps if index % 2 == 0 else steps[::-1]:
                    for key in step:
                        if key not in requests:
                            current = f"{key[0]}/{key[1]} (pushing {artifacts[key].path.name})"
                            requests[key] = _prepare(device, run.facts, artifacts[key], options, chosen_runners[key])
                    for chosen, keys in _by_runner(step, chosen_runners):
                        if options.cooldown_s:
                            time.sleep(options.cooldown_s)
                        current = ", ".join(f"{model}/{fmt}" for model, fmt in keys) + tag
                        group = [requests[k] for k in keys]
                        progress_path = (chosen.progress_file(device, group) if isinstance(chosen, PythonRunner)
                                         else None)
                        timing = True
                        measured = _run_group(device, chosen, [artifacts[k] for k in keys], group, tag, log)
                        progress_path, timing = None, False
                        for key, measurement in zip(keys, measured):
                            rounds.setdefault(key, []).append(measurement)
            run.thermal_after = device.thermal()
            for key in [key for key in requests if key[1] == "pte"] if profiler else []:
                current = f"{key[0]}/pte (per-operator profile)"
                log(f"[{device.serial}] {key[0]} pte: per-operator profile, {options.warmup} warm-up + "
                    f"{options.runs} traced passes (pte_runner)")
                profiles[key] = profile_operators(device, profiler, requests[key])
    except DeviceError as exc:
        stage = _last_recorded_stage(serial, progress_path, device_options)
        if isinstance(exc, CommandTimeoutError) and timing:  # --timeout, not one of our own command limits
            run.error = (f"device {run.serial}: {current} did not finish within --timeout {options.timeout_s:g} s"
                         f"{' each' if ', ' in current else ''}{stage}: raise --timeout if it needs longer")
        else:
            run.error = f"device {run.serial} failed during {current}{stage}: {exc}"
    except ClcDeployError as exc:
        run.error = f"device {run.serial} during {current}: {exc}"
    run.measurements = [pool_rounds(measured) for measured in rounds.values()]
    for key, measurement in zip(rounds, run.measurements):
        if key in profiles:
            measurement.extra["operators"] = profiles[key]
    return run


def _run_group(device: Device, runner: Runner, artifacts: list[Artifact], requests: list[RunRequest], tag: str,
               log: Callable[[str], None]) -> list[Measurement]:
    """Run one artifact, or several side by side in one process, logging the start and each average."""
    first, together = requests[0], len(requests) > 1
    label = ", ".join(f"{a.model}/{a.fmt}" for a in artifacts) if together else f"{first.model} {first.fmt}"
    log(f"[{device.serial}] {label}{tag}: {first.warmup} warm-up + {first.runs} timed passes"
        f"{' each, side by side' if together else ''} ({runner.name} runner)")
    if together:
        measured = _measure_side_by_side(device, runner, artifacts, requests)
    else:
        measured = [_measure(device, runner, artifacts[0], first)]
    for measurement in measured:
        log(f"[{device.serial}] {measurement.model} {measurement.format}{tag}: {measurement.mean_ms:.2f} ms average")
    return measured


def _by_runner(step: list[tuple[str, str]],
               chosen_runners: dict[tuple[str, str], Runner]) -> list[tuple[Runner, list[tuple[str, str]]]]:
    """The step's artifacts grouped by the runner chosen for each (in order); a runner that cannot time
    several models in one process gets one group per artifact."""
    groups: list[tuple[Runner, list[tuple[str, str]]]] = []
    for key in step:
        chosen = chosen_runners[key]
        together = next((keys for runner, keys in groups if runner is chosen and runner.side_by_side), None)
        if together is None:
            groups.append((chosen, [key]))
        else:
            together.append(key)
    return groups


def _choose_runner(device: Device, artifact: Artifact, runner: Runner | None, python: PythonRunner) -> Runner:
    """The runner given with --runner, or auto's choice for this device and artifact."""
    chosen = runner or auto_runner_for(device, artifact.fmt, python, artifact.needs_kernel_library)
    if artifact.fmt not in chosen.formats:
        raise BenchError(f"runner {chosen.name} cannot run {artifact.fmt} artifacts")
    if isinstance(runner, PythonRunner) and not python_runs(device, artifact.fmt):
        if artifact.fmt == "pte" and on_path(device, "pte_runner"):
            raise BenchError(f"--runner python: {device.serial}'s python3 lacks executorch: use --runner auto or "
                             f"pte_runner, which this device has")
        raise BenchError("--runner python: " + no_runner_message(artifact.fmt, artifact.needs_kernel_library,
                                                                 on_path(device, "python3")))
    return chosen


def _prepare(device: Device, facts: dict, artifact: Artifact, options: BenchOptions, chosen: Runner) -> RunRequest:
    """Push `artifact` (and the kernel library it may need) for its runner: once per session."""
    remote = f"{device.work_dir}/{artifact.path.name}"
    push_if_changed(device, artifact.path, remote, artifact.sha256)  # checked against the file by ensure_artifacts
    return _request(artifact, remote, options, chosen, _kernel_library(device, facts, artifact, chosen))


def pool_rounds(measured: list[Measurement]) -> Measurement:
    """One measurement of an artifact from its rounds: their passes pooled (the latency is the mean of all),
    each round's mean kept in `extra["round_means_ms"]`, the largest peak memory, the median load time."""
    if len(measured) == 1:
        return measured[0]
    if all(m.times_ms for m in measured):
        times = [t for m in measured for t in m.times_ms]
        stats = summarize(times)
    else:  # runners that report only an aggregate
        times = None
        stats = {"mean_ms": statistics.fmean(m.mean_ms for m in measured), "std_ms": None, "median_ms": None,
                 "min_ms": None, "max_ms": None}
    finite = {m.outputs_finite for m in measured}
    loads = [m.load_ms for m in measured if m.load_ms is not None]
    peaks = [m.peak_memory_mb for m in measured if m.peak_memory_mb is not None]
    return replace(measured[0], times_ms=times, **stats, load_ms=statistics.median(loads) if loads else None,
                   peak_memory_mb=max(peaks) if peaks else None,
                   aggregate_only=any(m.aggregate_only for m in measured),
                   outputs_finite=False if False in finite else None if None in finite else True,
                   extra=measured[0].extra | {"round_means_ms": [m.mean_ms for m in measured]})


def bench_devices(serials: list[str | None], artifacts, options: BenchOptions, runner_factory,
                  log=print, **device_options) -> list[DeviceRun]:
    """One worker per device, in parallel; results in the order of `serials`."""
    if len(serials) == 1:
        return [bench_device(serials[0], artifacts, options, runner_factory(), log, **device_options)]
    with ThreadPoolExecutor(max_workers=len(serials)) as pool:
        futures = [pool.submit(bench_device, s, artifacts, options, runner_factory(), log, **device_options)
                   for s in serials]
        return [f.result() for f in futures]
