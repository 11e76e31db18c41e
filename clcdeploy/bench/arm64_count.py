"""`clcdeploy bench --arm64-instructions`: the ARM64 instructions and loads/stores that one inference of each
exported artifact executes, counted in the virtual device's rootfs with the device's own runners (pte_runner,
the Python runner on the aarch64 runtimes) under qemu-user (`clcdeploy.device.virtual.instructions`).

The counts do not depend on the machine's load, so they need neither rounds nor an idle host. They are a
phone's instruction stream, not its latency: issue width and memory bandwidth are not modelled, and cache
misses only with the plugin's cache model (`--cache-model`: a 32 KB L1 / 512 KB L2 data cache, no prefetcher;
`--l2-kb` for another L2).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from clcdeploy.bench import arm64_ops, device_runner, parsers
from clcdeploy.bench.arm64_ops import OperatorCounts
from clcdeploy.bench.artifacts import Artifact
from clcdeploy.bench.report import PAPER_TABLE_6, baseline_among
from clcdeploy.device.virtual import instructions, rootfs as device_rootfs
from clcdeploy.device.virtual.instructions import Counts
from clcdeploy.files import write_atomic
from clcdeploy.units import millions

TITLE = "ARM64 instructions per inference, counted in the virtual device (Cortex-A53 model, 1 thread)"


@dataclass(frozen=True)
class Counted:
    artifact: Artifact
    counts: Counts
    operators: OperatorCounts | None = None  # per XNNPACK operator (.pte, with per_op)
    outputs_finite: bool | None = None  # as the runner reported (None: it did not say)
    operators_skipped: str | None = None  # why --per-op did not cut this artifact into operators


FUSED_NOT_CUT = "calls clcdeploy's fused IGC kernel outside XNNPACK"


def runner_outputs_finite(fmt: str, stdout: str) -> bool | None:
    """Whether the runner's outputs were all finite: pte_runner's `finite=` lines, the Python runner's JSON."""
    if fmt == "pte":
        return parsers.outputs_finite(stdout)
    lines = stdout.strip().splitlines()
    try:
        return bool(json.loads(lines[-1])["outputs_finite"]) if lines else None
    except (ValueError, KeyError, TypeError):
        return None


def runner_argv(rootfs: Path, fmt: str, model: Path, input_shape: tuple[int, ...],
                kernel_library: str | None = None) -> Callable[[int], list[str]]:
    """argv_for(n): the device's runner for `fmt` doing one warm-up and n timed passes at one thread (paths on
    this host: qemu-user's -L finds what is not inside the rootfs on the host)."""
    if fmt == "pte":  # pte_runner has clcdeploy's fused kernel compiled in
        runner = str(rootfs / device_rootfs.RUNNER_PATH)
        return lambda n: [runner, "--model_path", str(model), "--cpu_threads=1", f"--num_executions={n}",
                          "--warmup=1"]
    argv = [str(rootfs / "usr/bin/python3"), str(Path(device_runner.__file__)), "--model", str(model),
            "--format", fmt, "--input-shape", ",".join(map(str, input_shape)), "--threads", "1", "--warmup", "1"]
    argv += ["--kernel-library", kernel_library] if kernel_library else []
    return lambda n: [*argv, "--runs", str(n)]


def aarch64_kernel_library(fmt: str) -> str:
    """clcdeploy's ONNX Runtime custom op or LiteRT delegate built for aarch64 glibc Linux (the rootfs's)."""
    from clcdeploy.kernels import build  # cmake and the runtimes' headers, on this host

    builders = {"onnx": build.build_onnxruntime_kernels, "tflite": build.build_litert_kernels}
    return str(builders[fmt](target="aarch64"))


def profiles_operators(artifact: Artifact) -> bool:
    """Whether --per-op cuts this artifact into XNNPACK operators: a .pte without clcdeploy's fused kernel (which
    runs outside XNNPACK, between its partitions)."""
    return artifact.fmt == "pte" and not artifact.needs_kernel_library


def count_artifacts(artifacts: list[Artifact], *, passes: int, jobs: int, timeout: float = 3600.0,
                    caches: bool = False, l2_kb: int = instructions.L2_KB, per_op: bool = False,
                    log: Callable[[str], None] = print) -> list[Counted]:
    """Counts of one inference of every artifact, in the given order: `passes` timed passes each, `jobs` emulated
    processes at a time, each allowed `timeout` seconds, through the plugin's data cache model with an `l2_kb` L2
    if `caches`; with `per_op` also per XNNPACK operator for the .pte artifacts (profiles_operators), in a second
    run each. Raises VirtualDeviceError if the rootfs cannot be built or a runner fails."""
    rootfs = instructions.counting_rootfs(log=log)
    libraries = {a.fmt: aarch64_kernel_library(a.fmt) for a in artifacts if a.needs_kernel_library and a.fmt != "pte"}
    # The operators' names come from the host's ExecuTorch runtime, one program at a time.
    names = {a.path: arm64_ops.xnnpack_operators(a.path, a.input_shape) for a in artifacts
             if per_op and profiles_operators(a)}
    not_cut = {a.path for a in artifacts if per_op and a.fmt == "pte" and not profiles_operators(a)}
    for a in artifacts:
        if a.path in not_cut:
            log(f"not cut into operators: {a.model} (pte) {FUSED_NOT_CUT}")

    def one(artifact: Artifact) -> Counted:
        argv_for = runner_argv(rootfs, artifact.fmt, artifact.path, artifact.input_shape,
                               libraries.get(artifact.fmt) if artifact.needs_kernel_library else None)
        run = instructions.count_passes(rootfs, argv_for, passes=passes, timeout=timeout, caches=caches, l2_kb=l2_kb)
        log(f"counted {artifact.model} ({artifact.fmt}): {run.per_pass.instructions / 1e6:.1f} M instructions")
        operators = (arm64_ops.count_operators(rootfs, artifact.path, names[artifact.path], caches=caches,
                                               l2_kb=l2_kb, timeout=timeout) if artifact.path in names else None)
        return Counted(artifact, run.per_pass, operators, runner_outputs_finite(artifact.fmt, run.stdout),
                       FUSED_NOT_CUT if artifact.path in not_cut else None)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, artifacts))


def _baseline(c: Counted, counted: list[Counted]) -> Counted | None:
    """MobileNet-v1 in the same format at the same input size, chosen as the timing table's `relative_speed`
    chooses it."""
    same = [b for b in counted if (b.artifact.fmt, b.artifact.input_shape) == (c.artifact.fmt, c.artifact.input_shape)]
    return baseline_among(same, lambda b: b.artifact.model)


def _m(count: int) -> str:
    """Millions, with two decimals below ten (tiny test models)."""
    return f"{count / 1e6:.1f}" if count >= 10_000_000 else f"{count / 1e6:.2f}"


def table_rows(counted: list[Counted]) -> list[dict]:
    """The paper's Table 6 columns with instructions in place of latency, and instructions per mult-add."""
    rows = []
    for c in counted:
        a, base = c.artifact, _baseline(c, counted)
        rows.append({
            "model": a.model, "format": a.fmt + (" (fused IGC)" if a.needs_kernel_library else ""),
            "mult-adds": millions(a.macs) if a.macs else "?",
            "size": f"{a.bytes / 1e6:.1f} MB",
            "M instructions": _m(c.counts.instructions),
            "instr. vs MobileNet": f"{c.counts.instructions / base.counts.instructions:.3f}x" if base else "-",
            "M loads/stores": _m(c.counts.memory_accesses),
            "ld/st vs MobileNet": f"{c.counts.memory_accesses / base.counts.memory_accesses:.3f}x" if base else "-",
            "instructions / mult-add": f"{c.counts.instructions / a.macs:.2f}" if a.macs else "-",
        })
        if c.counts.dram_bytes is not None:  # counted with the cache model
            rows[-1] |= {
                "M L1 misses": _m(c.counts.l1_misses),
                "DRAM MB": f"{c.counts.dram_bytes / 1e6:.1f}",
                "DRAM vs MobileNet": f"{c.counts.dram_bytes / base.counts.dram_bytes:.3f}x" if base else "-",
            }
        rows[-1]["paper ms"] = str(PAPER_TABLE_6.get(a.model, {}).get("latency_ms", "-"))
    return rows


def _cached(counted: list[Counted]) -> bool:
    return any(c.counts.dram_bytes is not None for c in counted)


def document(counted: list[Counted], passes: int, command: list[str], tools: dict,
             l2_kb: int = instructions.L2_KB) -> dict:
    return {
        "kind": "arm64_instructions", "command": command, "passes": passes, "tools": tools,
        **({"cache_model": instructions.cache_model(l2_kb)} if _cached(counted) else {}),
        "paper_table_6": PAPER_TABLE_6,
        "results": [{"model": c.artifact.model, "format": c.artifact.fmt, "file": str(c.artifact.path.resolve()),
                     "input_shape": list(c.artifact.input_shape), "outputs_finite": c.outputs_finite,
                     "file_bytes": c.artifact.bytes, "macs": c.artifact.macs, "params": c.artifact.params,
                     "fused_igc_kernel": c.artifact.needs_kernel_library,
                     **c.counts.as_dict(),
                     **({"per_operator": arm64_ops.as_json(c.operators)} if c.operators is not None else {}),
                     **({"per_operator_skipped": c.operators_skipped} if c.operators_skipped else {})}
                    for c in counted],
    }


def markdown(counted: list[Counted], passes: int, command: list[str], l2_kb: int = instructions.L2_KB) -> str:
    rows = table_rows(counted)
    lines = [f"# {TITLE}", "", f"Command: `{' '.join(command)}`", ""]
    if rows:
        lines += ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
        lines += ["| " + " | ".join(row.values()) + " |" for row in rows]
    lines += ["", f"Counted between the runner's marks around {passes} timed passes after one warm-up, divided by "
              f"{passes}; loads/stores are memory accesses as QEMU performs them, not bytes. The aarch64 builds of "
              "the runtimes a phone runs, but not a latency (no pipeline model). With --cache-model: misses of a "
              f"modelled 32 KB 4-way L1 / {l2_kb} KB 16-way L2 data cache (64-byte lines, LRU, no prefetcher); DRAM = "
              "(L2 misses + dirty L2 evictions) x 64 bytes. Paper column: clcNet paper Table 6, BLU Advance 5.2 "
              "(MT6580, Cortex-A7), Caffe2, ms."]
    flagged = non_finite_lines(counted)
    if flagged:
        lines += ["", *flagged]
    profiled = [c for c in counted if c.operators is not None]
    if profiled:
        lines += ["", "## Per XNNPACK operator (.pte, one inference after one warm-up)",
                  *arm64_ops.markdown_tables([c.artifact.model for c in profiled], [c.operators for c in profiled])]
    not_cut = [f"{c.artifact.model} (pte) {c.operators_skipped}" for c in counted if c.operators_skipped]
    if not_cut:
        lines += ["", "Not cut into XNNPACK operators: " + "; ".join(not_cut) + "."]
    return "\n".join(lines) + "\n"


def non_finite_lines(counted: list[Counted]) -> list[str]:
    """One line naming the artifacts whose outputs had a NaN or an infinity (their counts are a broken run's), or
    none."""
    flagged = [f"{c.artifact.model}/{c.artifact.fmt}" for c in counted if c.outputs_finite is False]
    return ["non-finite outputs: " + ", ".join(flagged)] if flagged else []


def print_table(counted: list[Counted], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or (Console() if sys.stdout.isatty() else Console(width=240))
    rows = table_rows(counted)
    table = Table(title=TITLE)
    for column in rows[0] if rows else []:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
    profiled = [c for c in counted if c.operators is not None]
    profiles = [c.operators for c in profiled]
    for attribute, title, unit in arm64_ops.measures(profiles):
        table = Table(title=f"{title} per inference, by XNNPACK operator type (.pte; operators in parentheses)")
        for column in ["operator", *(c.artifact.model for c in profiled)]:
            table.add_column(column, no_wrap=True)
        for row in arm64_ops.table_rows(profiles, attribute, unit):
            table.add_row(*row)
        console.print(table)


def write_outputs(out_dir: Path, counted: list[Counted], passes: int, command: list[str], tools: dict,
                  l2_kb: int = instructions.L2_KB) -> None:
    write_atomic(out_dir / "arm64_instructions.json",
                 json.dumps(document(counted, passes, command, tools, l2_kb), indent=2) + "\n")
    write_atomic(out_dir / "arm64_instructions.md", markdown(counted, passes, command, l2_kb))
