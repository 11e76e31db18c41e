#!/usr/bin/env python
"""Side-by-side latency of MobileNet-v1, clcNet-A/B, ShuffleNet 2x and clcNet-A formulations on ONNX Runtime,
ExecuTorch (XNNPACK) and LiteRT (XNNPACK), in one process, models interleaved run by run.

Every model gets deterministic random weights with randomised BN statistics (export's `random_weights`),
BN is folded, and each artifact's output is compared with eager PyTorch (timing-only floors excepted).
Prints a markdown table per thread count: median latency and ratio to MobileNet-v1 per runtime.

    .venv/bin/python scripts/bench_runtimes.py [--runs 30] [--threads 1,all] [--runtimes onnx,pte,tflite]
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import clcdeploy
from clcdeploy.export.quiet import quiet_output
from clcdeploy.export.weights import random_weights
from clcdeploy.kernels.variants import CUSTOM_OP, TIMING_ONLY, deploy_variant

FORMAT_MODULES = {"onnx": "clcdeploy.export.onnx_format", "pte": "clcdeploy.export.executorch_format",
                  "tflite": "clcdeploy.export.tflite_format"}
RUNTIME_LABELS = {"onnx": "ORT CPU", "pte": "ExecuTorch XNNPACK", "tflite": "LiteRT XNNPACK"}
BASELINE = "mobilenet_v1"
CLCNET_A_VARIANTS = {
    "grouped": "clcNet-A, naive: grouped conv + interlace",
    "swap": "clcNet-A, paper lowering: 2 depthwise + swap + interlace",
    "floor2": "floor: 2 depthwise per IGC, no permutation (timing only, NOT IGC)",
    "floor1": "floor: 1 depthwise per IGC (timing only, NOT IGC)",
    "fused": "clcNet-A, fused IGC custom op (NCHW)",
    "fused-nhwc": "clcNet-A, fused IGC custom op, NHWC activations",
}
MODEL_LABELS = {"mobilenet_v1": "MobileNet-v1 1.0", "clcnet_a": "clcNet-A (export default: split)",
                "clcnet_b": "clcNet-B (export default: split)", "shufflenet_v1_2x": "ShuffleNet 2x (g=3)"}


@dataclass
class Entry:
    """One benchmarked artifact set: a zoo model in one deployment formulation."""

    label: str
    model: str
    variant: str
    paths: dict[str, Path] = field(default_factory=dict)
    diffs: dict[str, float] = field(default_factory=dict)
    partitions: int | None = None
    times: dict[tuple[str, int], list[float]] = field(default_factory=dict)


def build_entries(models: list[str], variants: list[str]) -> list[Entry]:
    entries = [Entry(MODEL_LABELS.get(m, m), m, "standard") for m in models]
    if "clcnet_a" in models:
        entries += [Entry(CLCNET_A_VARIANTS[v], "clcnet_a", v) for v in variants]
    return entries


def export_all(entries: list[Entry], runtimes: list[str], size: int, folder: Path) -> None:
    """Export every entry to every runtime's format and record its max abs diff to eager PyTorch."""
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32))
    for i, entry in enumerate(entries):
        model = clcdeploy.create_model(entry.model)
        random_weights(model)
        with torch.no_grad():
            expected = model(x).numpy()
            start = time.perf_counter()
            with quiet_output():
                deploy = deploy_variant(model, x, entry.variant)
        for fmt in runtimes:
            if entry.variant in CUSTOM_OP and fmt != "pte":
                continue
            module = importlib.import_module(FORMAT_MODULES[fmt])
            path = folder / f"{i:02d}_{entry.model}_{entry.variant}{module.SUFFIX}"
            with torch.no_grad(), quiet_output():
                module.export(deploy, x, path)
                if fmt == "pte":
                    from clcdeploy.export.delegation import executorch_report
                    from clcdeploy.kernels.runtime import prepare_pte

                    prepare_pte(path)
                    entry.partitions = sum(executorch_report(path)["delegate_calls"].values())
                got = module.run(path, x.numpy())
            entry.paths[fmt] = path
            entry.diffs[fmt] = float(np.abs(got - expected).max())
        print(f"exported {entry.model}/{entry.variant} in {time.perf_counter() - start:.1f} s "
              f"(max abs diff {', '.join(f'{k} {v:.1e}' for k, v in entry.diffs.items())})", file=sys.stderr)


class Session:
    """A loaded artifact with a `__call__` that runs one inference."""

    def __init__(self, fmt: str, path: Path, threads: int, x: np.ndarray) -> None:
        if fmt == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: x}
            self.run = lambda: sess.run(None, feed)
        elif fmt == "pte":
            from executorch.runtime import Runtime

            from clcdeploy.kernels.runtime import prepare_pte

            prepare_pte(path)
            method = Runtime.get().load_program(path).load_method("forward")
            tensor = (torch.from_numpy(x),)
            self.run = lambda: method.execute(tensor)
        else:
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_path=str(path), num_threads=threads)
            interp.allocate_tensors()
            index = interp.get_input_details()[0]["index"]
            interp.set_tensor(index, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
            self.run = interp.invoke

    def __call__(self) -> None:
        self.run()


def set_executorch_threads(threads: int) -> None:
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(threads)


def time_all(entries: list[Entry], runtimes: list[str], threads: list[int], runs: int, warmup: int,
             size: int) -> None:
    """Median-ready timings: for each runtime and thread count, all models interleaved run by run."""
    x = np.random.default_rng(1).standard_normal((1, 3, size, size), dtype=np.float32)
    for fmt in runtimes:
        for n in threads:
            if fmt == "pte":
                set_executorch_threads(n)
            live = [(e, Session(fmt, e.paths[fmt], n, x)) for e in entries if fmt in e.paths]
            for _ in range(warmup):
                for _, session in live:
                    session()
            for _ in range(runs):
                for entry, session in live:
                    start = time.perf_counter()
                    session()
                    entry.times.setdefault((fmt, n), []).append((time.perf_counter() - start) * 1e3)
            del live


def markdown(entries: list[Entry], runtimes: list[str], threads: list[int], command: str, runs: int) -> str:
    base = next((e for e in entries if e.model == BASELINE and e.variant == "standard"), None)
    lines = [f"Command: `{command}`", "",
             f"Median of {runs} runs after warm-up, 1x3x224x224 unless stated, models interleaved in one "
             f"process; ratio = latency / MobileNet-v1 on the same runtime and thread count.", ""]
    for n in threads:
        lines += [f"**{n} thread{'s' if n > 1 else ''}**", "",
                  "| model / formulation | " + " | ".join(RUNTIME_LABELS[f] for f in runtimes) + " |",
                  "| --- |" + " --- |" * len(runtimes)]
        for entry in entries:
            cells = []
            for fmt in runtimes:
                times = entry.times.get((fmt, n))
                if not times:
                    cells.append("n/a")
                    continue
                med = statistics.median(times)
                ref = base.times.get((fmt, n)) if base else None
                ratio = f" = {med / statistics.median(ref):.2f}x" if ref else ""
                cells.append(f"{med:.2f} ms{ratio}")
            lines.append(f"| {entry.label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Max abs diff to eager PyTorch (floors are not the IGC, so their difference is meaningless) and "
              "ExecuTorch delegate partitions:", "",
              "| model / formulation | " + " | ".join(runtimes) + " | XNNPACK partitions (.pte) |",
              "| --- |" + " --- |" * (len(runtimes) + 1)]
    for entry in entries:
        diffs = [("(timing only)" if entry.variant in TIMING_ONLY else f"{entry.diffs[f]:.1e}")
                 if f in entry.diffs else "n/a" for f in runtimes]
        lines.append(f"| {entry.label} | " + " | ".join(diffs) + f" | {entry.partitions or 'n/a'} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenet_v1,clcnet_a,clcnet_b,shufflenet_v1_2x")
    parser.add_argument("--variants", default=",".join(CLCNET_A_VARIANTS),
                        help="clcNet-A formulations besides the export default (empty for none)")
    parser.add_argument("--runtimes", default="onnx,pte,tflite")
    parser.add_argument("--threads", default="1,all", help="comma list; 'all' = os.cpu_count()")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--keep", type=Path, default=None, help="keep the artifacts in this folder")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    runtimes = [r for r in args.runtimes.split(",") if r]
    threads = sorted({(os.cpu_count() or 1) if t == "all" else int(t) for t in args.threads.split(",")})
    for name, allowed, given in (("variant", CLCNET_A_VARIANTS, variants), ("runtime", FORMAT_MODULES, runtimes)):
        unknown = [g for g in given if g not in allowed]
        if unknown:
            raise SystemExit(f"unknown {name} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    entries = build_entries(models, variants)
    with tempfile.TemporaryDirectory(prefix="clc_bench_") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        export_all(entries, runtimes, args.size, folder)
        time_all(entries, runtimes, threads, args.runs, args.warmup, args.size)
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    text = markdown(entries, runtimes, threads, command, args.runs)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
