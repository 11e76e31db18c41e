"""Where a .pte's time goes on the device (`clcdeploy bench --per-op`): one more run of clcdeploy's pte_runner with
ExecuTorch's ETDump event tracer (`--etdump_path`), whose dump is pulled back and read on this host with
executorch.devtools.Inspector. The XNNPACK delegate reports each of its operators; kernels outside the delegate (the
fused IGC kernel's) and the delegate calls themselves are events too.

Tracing costs time of its own, so the profile is a run of its own, after the timed ones: its milliseconds are those
of traced passes, to be read as shares of an inference, not as its latency.
"""

from __future__ import annotations

import collections
import re
import shlex
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from clcdeploy.bench.runners import NativeRunner, RunRequest
from clcdeploy.device import Device

if TYPE_CHECKING:  # session imports this module
    from clcdeploy.bench.session import Measurement

# Events around the ones that are counted (an inference, a program load, each delegate or kernel call)
WRAPPERS = {"Method::execute", "Program::load_method", "Method::init", "DELEGATE_CALL", "OPERATOR_CALL"}
OUTSIDE_OPERATORS = "XNNPACK delegate calls, outside their operators"
UNNAMED_KERNELS = "kernels outside the XNNPACK delegate"
TOP_IN_SUMMARY = 4


def operator_times(dump: Path, skip: int = 0) -> dict[str, tuple[float, int]]:
    """Operator type -> (ms per inference, operators of that type), the largest first, from an ETDump; `skip`: the
    first passes of each event to leave out (warm-up).

    Each delegate call's time beyond its operators is one more row (ExecuTorch's XNNPACK executor reshapes and
    sets up its runtime on every call). Kernels outside the delegate are rows by name where the runtime names them
    (the Python runtime does), else one row of their calls (pte_runner's ETDump has only `OPERATOR_CALL`)."""
    from executorch.devtools import Inspector

    total: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    delegate_calls = delegated = kernel_calls = 0.0
    named_kernels = False
    for block in Inspector(etdump_path=str(dump)).event_blocks:
        for event in block.events:
            if event.perf_data is None:
                continue
            raw = event.perf_data.raw[min(skip, len(event.perf_data.raw) - 1):]
            ms = sum(raw) / len(raw)
            if event.name == "DELEGATE_CALL":
                delegate_calls += ms
                count[OUTSIDE_OPERATORS] += 1
            elif event.name == "OPERATOR_CALL":
                kernel_calls += ms
                count[UNNAMED_KERNELS] += 1
            if event.name in WRAPPERS:
                continue
            op = re.sub(r" #\d+$", "", event.name)
            total[op] += ms
            count[op] += 1
            if event.is_delegated_op:
                delegated += ms
            else:
                named_kernels = True
    if count[OUTSIDE_OPERATORS]:
        total[OUTSIDE_OPERATORS] = max(delegate_calls - delegated, 0.0)
    if count[UNNAMED_KERNELS] and not named_kernels:
        total[UNNAMED_KERNELS] = kernel_calls
    return {op: (ms, count[op]) for op, ms in total.most_common()}


def profile_operators(device: Device, runner: NativeRunner, request: RunRequest) -> dict[str, dict]:
    """Run `request` once more in pte_runner with the event tracer, pull its ETDump and summarise it: operator type
    -> {"ms": per traced inference, "count": operators of the type}."""
    dump_path = f"{device.work_dir}/{Path(request.artifact).stem}.etdp"
    try:
        runner.profile(device, request, dump_path)
        with tempfile.TemporaryDirectory(prefix="clcdeploy-etdump-") as tmp:
            local = Path(tmp) / "profile.etdp"
            device.pull(dump_path, local)
            times = operator_times(local, skip=request.warmup)
    finally:
        device.shell(f"rm -f {shlex.quote(dump_path)}", timeout_s=30)
    return {op: {"ms": ms, "count": n} for op, (ms, n) in times.items()}


def shares(operators: dict[str, dict]) -> dict[str, float]:
    """Each operator type's share of the traced inference (the sum of all rows)."""
    whole = sum(entry["ms"] for entry in operators.values())
    return {op: entry["ms"] / whole if whole else 0.0 for op, entry in operators.items()}


def summary_line(m: Measurement) -> str:
    """The terminal's line for a profiled measurement: its largest operator types and their shares."""
    top = list(shares(m.extra["operators"]).items())[:TOP_IN_SUMMARY]
    return (f"{m.model} pte on {m.device}, time per operator type (--per-op): "
            + ", ".join(f"{op} {100 * share:.0f}%" for op, share in top))


def markdown_lines(profiled: list[Measurement]) -> list[str]:
    """report.md's section: per device a table of operator types (rows) by model (columns), so that models can be
    compared type by type: each cell ms per traced inference, (operators), share of the model's traced time."""
    lines = ["", "## Where the time goes (--per-op)", "",
             "ExecuTorch's ETDump of one more pte_runner run after the timed ones (the same warm-up and passes, "
             "traced): ms per traced inference for each XNNPACK operator type, how many operators of the type, and "
             "their share of the model's traced time. Tracing adds time of its own: compare the shares and the "
             "models, not these milliseconds with the latencies above."]
    for device in dict.fromkeys(m.device for m in profiled):
        models = [m for m in profiled if m.device == device]
        types = sorted({op for m in models for op in m.extra["operators"]},
                       key=lambda op: -max(m.extra["operators"].get(op, {"ms": 0.0})["ms"] for m in models))
        lines += ["", f"**{device}**", "", "| operator type | " + " | ".join(m.model for m in models) + " |",
                  "| --- |" + " --- |" * len(models)]
        for op in types:
            cells = [_cell(m.extra["operators"].get(op), shares(m.extra["operators"]).get(op, 0.0)) for m in models]
            lines.append(f"| {op} | " + " | ".join(cells) + " |")
        totals = [sum(entry["ms"] for entry in m.extra["operators"].values()) for m in models]
        lines.append("| **sum** | " + " | ".join(f"**{total:.3g}**" for total in totals) + " |")
    return lines


def _cell(entry: dict | None, share: float) -> str:
    return "-" if entry is None else f"{entry['ms']:.3g} ({entry['count']}) {100 * share:.0f}%"
