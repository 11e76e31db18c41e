"""Parsers for what native on-device runners print (formats: shared/design/RUNNER_FORMATS.md).

Each returns a `RunnerOutput`. Runners that print every pass give `times_ms`; runners that print only an
aggregate (TFLite benchmark_model, onnxruntime_perf_test) give `mean_ms` and `times_ms = None`, and the
report says so rather than inventing samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clcdeploy.errors import BenchError

_NUMBER = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"


@dataclass
class RunnerOutput:
    times_ms: list[float] | None
    mean_ms: float
    load_ms: float | None = None
    peak_memory_mb: float | None = None
    aggregate_only: bool = False
    extra: dict = field(default_factory=dict)


def _find(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def parse_executor_runner(text: str) -> RunnerOutput:
    """ExecuTorch executor_runner (and clcdeploy's pte_runner): `Iteration i of n: X ms` per pass.

    Accepts the POSIX log prefix (`I 00:00:01.2 executorch:file:line] `) and Android logcat lines.
    """
    times = [float(m.group(2)) for m in re.finditer(rf"Iteration (\d+) of \d+: {_NUMBER} ms", text)]
    total = re.search(rf"Model executed successfully (\d+) time\(s\) in {_NUMBER} ms", text)
    if not times and not total:
        raise BenchError("executor_runner printed no 'Iteration' or 'Model executed successfully' line")
    load = _find(rf"Model loaded in {_NUMBER} ms", text)
    if times:
        return RunnerOutput(times, sum(times) / len(times), load)
    count, total_ms = int(total.group(1)), float(total.group(2))  # the total, not an average
    return RunnerOutput(None, total_ms / count, load, aggregate_only=True)


def pte_runner_sections(text: str) -> dict[str, str]:
    """clcdeploy's pte_runner with several --model_path: model path -> the lines it printed for that model.

    Each model's lines follow a `== Model k of n: PATH` line; a single-model run has none and maps all of its
    text to the empty path.
    """
    headers = list(re.finditer(r"^== Model \d+ of \d+: (.*)$", text, flags=re.MULTILINE))
    if not headers:
        return {"": text}
    ends = [h.start() for h in headers[1:]] + [len(text)]
    return {h.group(1): text[h.end():end] for h, end in zip(headers, ends)}


def parse_pte_runner_models(text: str) -> dict[str, RunnerOutput]:
    """clcdeploy's pte_runner with several --model_path: model path -> its executor_runner lines' result."""
    return {path: parse_executor_runner(section) for path, section in pte_runner_sections(text).items()}


def outputs_finite(text: str) -> bool | None:
    """From `Output i: ... finite=0|1` lines (clcdeploy's pte_runner): False if any output had a NaN or an
    infinity, None if the runner printed no such line."""
    flags = re.findall(r"\bfinite=([01])\b", text)
    return None if not flags else "0" not in flags


def parse_benchmark_model(text: str) -> RunnerOutput:
    """TFLite/LiteRT benchmark_model: the summary line, or the last `count=... avg=...` line."""
    summary = re.search(
        rf"Inference timings in us: Init: {_NUMBER}, First inference: {_NUMBER}, "
        rf"Warmup \(avg\): {_NUMBER}, Inference \(avg\): {_NUMBER}", text)
    stats = list(re.finditer(rf"count=(\d+)(?: first=\d+)? curr={_NUMBER}(\(all same\))?"
                             rf"(?: min={_NUMBER} max={_NUMBER} avg={_NUMBER} std={_NUMBER})?", text))
    if summary:
        init_us, mean_us = float(summary.group(1)), float(summary.group(4))
    elif stats:
        last = stats[-1]
        mean_us = float(last.group(2)) if last.group(3) else float(last.group(6))
        init_us = None
    else:
        raise BenchError("benchmark_model printed no 'Inference timings' or 'count=' line")
    extra = {}
    if stats:
        last = stats[-1]
        extra["count"] = int(last.group(1))
        if not last.group(3) and last.group(7):
            extra["std_ms"] = float(last.group(7)) / 1e3
    peak = _find(rf"Overall peak memory footprint \(MB\) via periodic monitoring: {_NUMBER}", text)
    if peak is None:  # without --report_peak_memory_footprint: the overall footprint delta
        peak = _find(rf"Memory footprint delta from the start of the tool \(MB\): init=\S+ overall={_NUMBER}", text)
    return RunnerOutput(None, mean_us / 1e3, None if init_us is None else init_us / 1e3, peak,
                        aggregate_only=True, extra=extra)


def parse_onnxruntime_perf_test(text: str) -> RunnerOutput:
    """onnxruntime_perf_test: `Average inference time cost: X ms` (+ session creation, peak working set)."""
    mean = _find(rf"Average inference time cost: {_NUMBER} ms", text)
    if mean is None:
        raise BenchError("onnxruntime_perf_test printed no 'Average inference time cost' line")
    session_s = _find(rf"Session creation time cost: {_NUMBER} s", text)
    peak_bytes = _find(rf"Peak working set size: {_NUMBER} bytes", text)
    extra = {}
    for label in ("Min", "Max", "P50", "P90", "P95", "P99", "P999"):
        value = _find(rf"{label} Latency: {_NUMBER} s", text)
        if value is not None:
            extra[f"{label.lower()}_ms"] = value * 1e3
    return RunnerOutput(None, mean, None if session_s is None else session_s * 1e3,
                        None if peak_bytes is None else peak_bytes / 2**20, aggregate_only=True, extra=extra)
