#!/usr/bin/env python
"""ARM64 instructions per inference of MobileNet-v1, clcNet-A/B, ShuffleNet 2x and clcNet-A formulations on ONNX
Runtime, ExecuTorch (XNNPACK, the native pte_runner) and LiteRT (XNNPACK), counted in the virtual device.

Each artifact runs in the virtual device's rootfs under qemu-user with clcdeploy's instruction-counting plugin
(`clcdeploy.device.virtual.instructions`), at one thread, in the device's runner (pte_runner, or the Python
runner for .onnx and .tflite): one warm-up, then --passes timed passes, which the runner brackets with two
marks; the count between the marks divided by --passes is one inference. These are the aarch64 builds of the
three runtimes with the NEON kernels XNNPACK picks for a Cortex-A53, so the counts are a phone's instruction
stream (not its time: memory stalls and issue width are not modelled). They do not depend on the machine's
load, so unlike latencies on this shared host the ratios need no repetition, and the processes may run in
parallel (--jobs).

Artifacts are exported and checked against PyTorch as by scripts/bench_runtimes.py (same weights, same
formulations). Custom-op variants (fused, fused-nhwc) run with clcdeploy's kernel: compiled into pte_runner, and
for .onnx and .tflite its aarch64 ONNX Runtime custom op / LiteRT delegate loaded by the Python runner.

    .venv/bin/python scripts/bench_arm64_instructions.py [--models mobilenet_v1,clcnet_a,clcnet_b,shufflenet_v1_2x]
        [--variants floor2,floor1,fused-nhwc] [--runtimes pte,tflite,onnx] [--size 224] [--passes 2] [--jobs 2]
        [--caches [--l2-kb 512]]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runtimes import (BASELINE, CLCNET_A_VARIANTS, Entry, build_entries, check_known,  # noqa: E402
                            command_line, exported, publish)

import clcdeploy  # noqa: E402
from clcdeploy.bench.arm64_count import aarch64_kernel_library, runner_argv  # noqa: E402
from clcdeploy.device.errors import VirtualDeviceError  # noqa: E402
from clcdeploy.device.virtual import instructions  # noqa: E402
from clcdeploy.device.virtual.instructions import Counts  # noqa: E402
from clcdeploy.errors import print_usage_error  # noqa: E402
from clcdeploy.kernels.variants import CUSTOM_OP  # noqa: E402

RUNTIME_LABELS = {"pte": "ExecuTorch XNNPACK (pte_runner)", "tflite": "LiteRT XNNPACK", "onnx": "ORT CPU"}
FLOOR = "floor2"  # the issue-6 reference: two depthwise convolutions per IGC, no permutation (not IGC)


def input_shape(runtime: str, size: int) -> tuple[int, ...]:
    return (1, size, size, 3) if runtime == "tflite" else (1, 3, size, size)  # clcdeploy's .tflite takes NHWC


def count_all(entries: list[Entry], runtimes: list[str], size: int, passes: int, jobs: int, caches: bool,
              l2_kb: int, rootfs: Path) -> dict[tuple[str, str], Counts]:
    """Counts per (entry label, runtime); runs `jobs` emulated processes at a time (counts do not depend on load)."""
    tasks = [(e, r) for e in entries for r in runtimes if r in e.paths]

    def one(task: tuple[Entry, str]) -> Counts:
        entry, runtime = task
        library = aarch64_kernel_library(runtime) if entry.variant in CUSTOM_OP and runtime != "pte" else None
        argv_for = runner_argv(rootfs, runtime, entry.paths[runtime], input_shape(runtime, size), library)
        counts = instructions.count_per_pass(rootfs, argv_for, passes=passes, caches=caches, l2_kb=l2_kb)
        print(f"counted {entry.model}/{entry.variant} on {runtime}: {counts.instructions / 1e6:.1f} M instructions",
              file=sys.stderr)
        return counts

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return {(e.label, r): c for (e, r), c in zip(tasks, pool.map(one, tasks))}


def markdown(entries: list[Entry], runtimes: list[str], counts: dict[tuple[str, str], Counts], command: str,
             size: int, passes: int, l2_kb: int = instructions.L2_KB) -> str:
    """Per runtime: M instructions and M memory accesses per inference (with the cache model also M L1 misses and
    MB of DRAM traffic), and the ratios to MobileNet-v1 and to the floor (clcNet-A formulations)."""
    baseline = next((e.label for e in entries if e.model == BASELINE and e.variant == "standard"), None)
    floor = next((e.label for e in entries if e.variant == FLOOR), None)

    def table(what: str) -> list[str]:
        rows = ["| model / formulation | " + " | ".join(RUNTIME_LABELS[r] for r in runtimes) + " |",
                "| --- |" + " --- |" * len(runtimes)]
        for e in entries:
            cells = []
            for r in runtimes:
                if (e.label, r) not in counts:
                    cells.append("n/a")
                    continue
                value = getattr(counts[e.label, r], what)
                ratio = (f" ({value / getattr(counts[baseline, r], what):.3f}x)" if (baseline, r) in counts else "")
                cells.append(f"{value / 1e6:.1f}{ratio}")
            rows.append(f"| {e.label} | " + " | ".join(cells) + " |")
        return rows

    caches = any(c.dram_bytes is not None for c in counts.values())
    measures = ["instructions", "memory_accesses"] + (["l1_misses", "dram_bytes"] if caches else [])
    lines = [f"ARM64 instructions per inference, M (ratio to MobileNet-v1), {size}x{size}, 1 thread, "
             f"counted under qemu-user (Cortex-A53 model), {passes} passes; `{command}`", "", *table("instructions"),
             "", "Memory accesses (as QEMU performs them) per inference, M (ratio to MobileNet-v1):", "",
             *table("memory_accesses")]
    if caches:
        lines += ["", "L1 data cache misses per inference, M (ratio to MobileNet-v1; 32 KB 4-way model):", "",
                  *table("l1_misses"), "", f"DRAM traffic per inference, MB (ratio to MobileNet-v1; {l2_kb} KB 16-way "
                  "L2 model: misses + dirty evictions, 64-byte lines):", "", *table("dram_bytes")]
    if floor:
        lines += ["", f"clcNet-A formulations / {FLOOR} ({'; '.join(m.replace('_', ' ') for m in measures)}):", "",
                  "| formulation | " + " | ".join(RUNTIME_LABELS[r] for r in runtimes) + " |",
                  "| --- |" + " --- |" * len(runtimes)]
        for e in entries:
            if e.model != "clcnet_a" or e.variant == FLOOR:
                continue
            cells = ["; ".join(f"{getattr(counts[e.label, r], m) / getattr(counts[floor, r], m):.3f}" for m in measures)
                     if (e.label, r) in counts and (floor, r) in counts else "n/a" for r in runtimes]
            lines.append(f"| {e.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mobilenet_v1,clcnet_a,clcnet_b,shufflenet_v1_2x")
    parser.add_argument("--variants", default="floor2,floor1,fused-nhwc",
                        help="clcNet-A formulations besides the export default (empty for none)")
    parser.add_argument("--runtimes", default="pte,tflite,onnx")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--passes", type=int, default=2, help="timed passes counted per artifact (default 2)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="emulated processes at a time")
    parser.add_argument("--keep", type=Path, default=None, help="keep the artifacts in this folder")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    parser.add_argument("--caches", action="store_true", help="also count L1 misses and DRAM traffic with the "
                        "plugin's data cache model (32 KB L1, 512 KB L2)")
    parser.add_argument("--l2-kb", type=int, default=instructions.L2_KB, help="with --caches: the modelled L2's "
                        "size in KB (default 512)")
    return parser.parse_args(argv)


usage_error = functools.partial(print_usage_error, "bench_arm64_instructions")  # one line on stderr, exit code 2


def check_choices(models: list[str], variants: list[str], runtimes: list[str]) -> None:
    """Raise ValueError naming the first bad name and the allowed ones."""
    check_known(("model", models, clcdeploy.list_models()), ("variant", variants, CLCNET_A_VARIANTS),
                ("runtime", runtimes, RUNTIME_LABELS))
    if variants and "clcnet_a" not in models:
        raise ValueError("--variants are clcNet-A formulations: add clcnet_a to --models or pass --variants ''")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    runtimes = [r for r in args.runtimes.split(",") if r]
    try:
        check_choices(models, variants, runtimes)
    except ValueError as exc:
        return usage_error(str(exc))
    if args.passes < 1 or args.jobs < 1 or args.size < 32:
        return usage_error("--passes and --jobs must be at least 1, --size at least 32")
    try:
        instructions.check_l2_kb(args.l2_kb)
        rootfs = instructions.counting_rootfs(log=lambda m: print(m, file=sys.stderr))
    except (ValueError, VirtualDeviceError) as exc:
        return usage_error(str(exc))
    entries = build_entries(models, variants)
    with exported(entries, runtimes, args.size, args.keep):
        counts = count_all(entries, runtimes, args.size, args.passes, args.jobs, args.caches, args.l2_kb, rootfs)
    text = markdown(entries, runtimes, counts, command_line(argv), args.size, args.passes, args.l2_kb)
    publish(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
