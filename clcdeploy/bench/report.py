"""The benchmark report: the clcNet paper's Table 6 layout in the terminal, and results.json, results.csv,
report.md and latency_vs_macs.png in the output folder (each written atomically)."""

from __future__ import annotations

import csv
import io
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from clcdeploy.bench import operator_profile
from clcdeploy.bench.session import DeviceRun, Measurement
from clcdeploy.bench.stability import unsteadiness, unsteady_warning
from clcdeploy.files import write_atomic
from clcdeploy.units import millions

# clcNet paper, Table 6: BLU Advance 5.2 (MediaTek MT6580, 4x Cortex-A7 1.3 GHz), ONNX -> Caffe2, average of
# ten passes. Reference figures printed beside ours, never used in any computation.
PAPER_TABLE_6 = {
    "mobilenet_v1": {"latency_ms": 1780, "onnx_mb": 17.1},
    "shufflenet_v1_2x": {"latency_ms": 1812, "onnx_mb": 22.3},
    "clcnet_a": {"latency_ms": 1431, "onnx_mb": 17.3},
    "clcnet_b": {"latency_ms": 1692, "onnx_mb": 21.6},
}
BASELINE = "mobilenet_v1"
T = TypeVar("T")


def baseline_among(rows: list[T], model: Callable[[T], str]) -> T | None:
    """The MobileNet-v1 row among `rows` (those a comparison may divide by), or where it is not there the first
    of its variants (the tiny test model), or None."""
    variants = [row for row in rows if model(row).startswith(BASELINE)]
    return next((row for row in variants if model(row) == BASELINE), variants[0] if variants else None)


def relative_speed(m: Measurement, all_measurements: list[Measurement]) -> float | None:
    """Latency relative to MobileNet-v1 on the same device and format at the same input size (< 1: faster)."""
    same = [b for b in all_measurements if (b.device, b.format, b.input_shape) == (m.device, m.format, m.input_shape)]
    base = baseline_among(same, lambda b: b.model)
    return m.mean_ms / base.mean_ms if base else None


def _latency(m: Measurement) -> str:
    if m.aggregate_only:
        return f"{_ms(m.mean_ms)} (agg.)"
    if m.std_ms is None:
        return f"{_ms(m.mean_ms)} (1 pass)"
    return f"{_ms(m.mean_ms)} ± {_ms(m.std_ms, like=m.mean_ms)}"


def _ms(value: float | None, like: float | None = None) -> str:
    """Milliseconds in the precision `like` (default: `value` itself) calls for, so that a spread reads in its
    mean's decimals ("4.98 ± 0.09")."""
    if value is None:
        return "-"
    like = value if like is None else like
    if like < 0.1:  # tiny test models: three significant digits, not "0.04 ± 0.00"
        return f"{value:.3g}"
    return f"{value:.2f}" if like < 10 else f"{value:.1f}" if like < 1000 else f"{value:.0f}"


def table_rows(runs: list[DeviceRun], *, full: bool = True) -> list[dict]:
    """One row per measurement: the paper's Table 6 columns, plus the details when `full`."""
    measurements = [m for run in runs for m in run.measurements]
    rows = []
    for m in measurements:
        ratio = relative_speed(m, measurements)
        row = {"device": m.device} if full or len(runs) > 1 else {}
        row |= {
            "model": m.model, "format": m.format + (" (fused IGC)" if m.extra.get("fused_igc_kernel") else ""),
            "mult-adds": millions(m.macs) if m.macs else "?",
            "params": f"{m.params / 1e6:.2f}M" if m.params else "?",
            "size": f"{m.file_bytes / 1e6:.1f} MB",
            "latency ms": _latency(m),
            "vs MobileNet": f"{ratio:.2f}x" if ratio is not None else "-",
            "paper ms": str(PAPER_TABLE_6.get(m.model, {}).get("latency_ms", "-")),
        }
        if full:
            rounds = m.extra.get("round_means_ms")
            row |= {
                "median": _ms(m.median_ms),
                "round means": f"{_ms(min(rounds))} - {_ms(max(rounds))}" if rounds else "-",
                "min / max": f"{_ms(m.min_ms)} / {_ms(m.max_ms)}",
                "load ms": _ms(m.load_ms),
                "peak MB": f"{m.peak_memory_mb:.0f}" if m.peak_memory_mb is not None else "-",
                "finite": {True: "yes", False: "NO", None: "?"}[m.outputs_finite],
            }
        rows.append(row)
    return rows


def facts_lines(run: DeviceRun) -> list[str]:
    f = run.facts
    cores = ", ".join(sorted(set(f.get("cpu_core_names") or []))) or f.get("cpu_hardware") or "?"
    freqs = sorted({v for v in f.get("max_freq_khz") or [] if v})
    governors = sorted({g for g in f.get("governors") or [] if g})
    online = f.get("cores_online")
    offline = f" ({online} online)" if online and f.get("cores") and online < f["cores"] else ""
    return [
        f"device {run.serial}: {f.get('manufacturer', '')} {f.get('model', '')} "
        f"(Android {f.get('android_version') or '-'}, {f.get('abi') or f.get('kernel_machine', '?')})"
        + (" [EMULATED: times are not phone times]" if f.get("is_emulated") else ""),
        f"  CPU: {cores}, {f.get('cores', '?')} cores{offline}, max freq "
        f"{', '.join(f'{v / 1e3:.0f} MHz' for v in freqs) or '?'}, governor {', '.join(governors) or '?'}",
        f"  temperature before: {_temps(run.thermal_before)}; after: {_temps(run.thermal_after)}",
    ]


def _temps(readings: dict) -> str:
    return ", ".join(f"{k} {v:.1f} C" for k, v in readings.items()) or "not readable"


def print_table(runs: list[DeviceRun], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    # Into a pipe or a log, rich would assume 80 columns and cut the table's cells short: give it room instead.
    console = console or (Console() if sys.stdout.isatty() else Console(width=240))
    for run in runs:
        for line in facts_lines(run):
            console.print(line, markup=False, highlight=False)
    rows = table_rows(runs, full=False)
    if rows:
        table = Table(title="Latency: average of the timed passes ± std (paper: Table 6, BLU Advance 5.2)")
        for column in rows[0]:
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(*row.values())
        console.print(table)
    for m in (m for run in runs for m in run.measurements if "operators" in m.extra):
        console.print(operator_profile.summary_line(m), markup=False, highlight=False)
    for run in runs:
        if run.error:
            console.print(f"[red]incomplete:[/] {run.error}")


def results_document(runs: list[DeviceRun], options: dict, command: list[str], tools: dict) -> dict:
    return {
        "complete": all(run.complete for run in runs),
        "command": command,
        "options": options,
        "tools": tools,
        "paper_table_6": PAPER_TABLE_6,
        "devices": [{"serial": r.serial, "facts": r.facts, "thermal_before": r.thermal_before,
                     "thermal_after": r.thermal_after, "complete": r.complete, "error": r.error} for r in runs],
        "results": [m.to_dict() for run in runs for m in run.measurements],
        "unsteady": [{"device": m.device, "model": m.model, "format": m.format, "reason": reason}
                     for run in runs for m in run.measurements if (reason := unsteadiness(m))],
    }


def _csv(runs: list[DeviceRun]) -> str:
    buffer = io.StringIO()
    fields = ["device", "model", "format", "runner", "macs", "params", "file_bytes", "mean_ms", "std_ms",
              "median_ms", "min_ms", "max_ms", "load_ms", "peak_memory_mb", "aggregate_only", "outputs_finite",
              "times_ms"]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for run in runs:
        for m in run.measurements:
            row = m.to_dict()
            row["times_ms"] = ";".join(f"{t:.4f}" for t in m.times_ms or [])
            writer.writerow(row)
    return buffer.getvalue()


def _markdown(runs: list[DeviceRun], command: list[str], options: dict) -> str:
    lines = ["# clcdeploy benchmark", "", f"Command: `{shlex.join(command)}`", ""]
    for run in runs:
        lines += [line.strip() + "  " for line in facts_lines(run)]
    rows = table_rows(runs)
    if rows:
        lines += ["", "| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
        lines += ["| " + " | ".join(row.values()) + " |" for row in rows]
    lines += ["", "Latency: average of the timed passes after warm-up (as the paper), ± sample std; with "
              "--rounds, of all rounds' passes (round means: the lowest and highest round's average); "
              "(agg.): the runner reported only an aggregate. Paper column: clcNet paper Table 6, BLU Advance "
              "5.2 (MT6580, Cortex-A7), Caffe2."]
    libraries = sorted({(m.format, m.extra["runtime_library"]) for run in runs for m in run.measurements
                        if m.extra.get("runtime_library")})
    if libraries:
        lines += ["", "Runtimes in the demo app: " + "; ".join(f"{fmt} {library}" for fmt, library in libraries)
                  + " (the tools in results.json are this host's Python packages)."]
    if any(m.extra.get("side_by_side_with") for run in runs for m in run.measurements):
        lines += ["", "Side by side: the models of each format ran in one runner process, one pass of each per "
                  "turn in a new order every turn (warm-up first); peak memory is then not per model."]
    warning = unsteady_warning([m for run in runs for m in run.measurements], rounds=options.get("rounds", 1),
                               side_by_side=bool(options.get("side_by_side")), threads=options.get("threads", 0))
    lines += ["", warning] if warning else []
    lines += [f"\n**Incomplete:** {run.error}" for run in runs if run.error]
    profiled = [m for run in runs for m in run.measurements if "operators" in m.extra]
    lines += operator_profile.markdown_lines(profiled) if profiled else []
    return "\n".join(lines) + "\n"


def _plot(runs: list[DeviceRun]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    measurements = [m for run in runs for m in run.measurements if m.macs]
    for key in sorted({(m.device, m.format) for m in measurements}):
        series = [m for m in measurements if (m.device, m.format) == key]
        ax.scatter([m.macs / 1e6 for m in series], [m.mean_ms for m in series],
                   s=[max(m.file_bytes / 1e5, 10) for m in series], alpha=0.6, label=f"{key[1]} on {key[0]}")
        for m in series:
            ax.annotate(m.model, (m.macs / 1e6, m.mean_ms), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("mult-adds (M)")
    ax.set_ylabel("latency, average of timed passes (ms)")
    ax.set_title("Latency against mult-adds (marker area: file size)")
    if measurements:
        ax.legend(fontsize=7)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def write_outputs(out_dir: Path, runs: list[DeviceRun], options: dict, command: list[str], tools: dict) -> None:
    """results.json first (it holds every pass), then the derived files."""
    document = results_document(runs, options, command, tools)
    write_atomic(out_dir / "results.json", json.dumps(document, indent=2) + "\n")
    write_atomic(out_dir / "results.csv", _csv(runs))
    write_atomic(out_dir / "report.md", _markdown(runs, command, options))
    write_atomic(out_dir / "latency_vs_macs.png", _plot(runs))
