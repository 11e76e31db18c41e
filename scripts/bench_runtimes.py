#!/usr/bin/env python
"""Side-by-side latency of MobileNet-v1, clcNet-A/B, ShuffleNet 2x and clcNet-A formulations on ONNX Runtime,
ExecuTorch (XNNPACK) and LiteRT (XNNPACK), in one process, models loaded in a new random order every round
and interleaved run by run in a new random order every pass. The runtime `pte-native` times the same .pte
files with clcdeploy's native `pte_runner` (the ExecuTorch C++ runtime with the fused IGC kernel built in, as
on a device), all models in one pte_runner process, loaded and run in random orders the same way (pte_runner's
--order_seed).

Every model gets deterministic random weights with BN statistics measured on random images at the benchmark's
input size and then perturbed (export's `random_weights`, as `clcdeploy export` does), so every layer's
output is of order one and the max abs diffs are comparable across models; BN is folded, and each artifact's
output is compared with eager PyTorch (timing-only floors excepted).
Prints a markdown table per thread count: median latency and ratio to MobileNet-v1 per runtime.

    .venv/bin/python scripts/bench_runtimes.py [--runs 30] [--threads 1,all] [--runtimes onnx,pte,tflite,pte-native]
        [--block 1] [--planned-offset 0]
        [--profile mobilenet_v1/standard,clcnet_a/standard,clcnet_a/floor2]

`--profile` adds per-op profiles at 1 thread, summed per operator type (ms per inference): ONNX Runtime
session profiling (`enable_profiling`), ExecuTorch ETDump and LiteRT's profiler through its C API
(`clcdeploy.bench.litert_profile`); the XNNPACK delegates of both report each of their operators.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import importlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import clcdeploy
from clcdeploy.errors import print_usage_error
from clcdeploy.export.passes import DEFAULT_IGC_LOWERINGS
from clcdeploy.export.quiet import quiet_output
from clcdeploy.export.weights import random_weights
from clcdeploy.files import write_atomic
from clcdeploy.kernels.runtime import litert_delegates, prepare_onnx
from clcdeploy.kernels.variants import CUSTOM_OP, TIMING_ONLY, deploy_variant

FORMAT_MODULES = {"onnx": "clcdeploy.export.onnx_format", "pte": "clcdeploy.export.executorch_format",
                  "tflite": "clcdeploy.export.tflite_format"}
RUNTIME_LABELS = {"onnx": "ORT CPU", "pte": "ExecuTorch XNNPACK", "tflite": "LiteRT XNNPACK",
                  "pte-native": "ExecuTorch XNNPACK, native pte_runner"}
NATIVE = "pte-native"  # a runtime, not a format: it runs the "pte" artifacts
BASELINE = "mobilenet_v1"
# The fused op has an ExecuTorch kernel (NCHW and NHWC), an ONNX Runtime kernel (NCHW, ORT's CPU layout) and a
# LiteRT delegate (NHWC; litert-torch converts the NCHW graph itself).
CUSTOM_OP_FORMATS = {("pte", "fused"), ("pte", "fused-nhwc"), ("onnx", "fused"), ("tflite", "fused")}
CLCNET_A_VARIANTS = {
    "split": "clcNet-A, split: 4 depthwise + quarter-tensor concats",
    "split-k": "clcNet-A, split-K: no concat, sums into the next 1x1",
    "split-late": "clcNet-A, split-late: concat behind stride-2 depthwise",
    "split-dw": "clcNet-A, split, concat behind every depthwise (before the 1x1)",
    "split-gc": "clcNet-A, split, one concat of the depthwise outputs before 2 grouped 1x1",
    "split-k-gc": "clcNet-A, split-K from 28x28 up, split-gc below",
    "grouped": "clcNet-A, naive: grouped conv + interlace",
    "swap": "clcNet-A, paper lowering: 2 depthwise + swap + interlace",
    "floor2": "floor: 2 depthwise per IGC, no permutation (timing only, NOT IGC)",
    "floor1": "floor: 1 depthwise per IGC (timing only, NOT IGC)",
    "floor0": "floor: no IGC work, a 1x1 per-channel scale per IGC (timing only, NOT IGC)",
    "fused": "clcNet-A, fused IGC custom op (ORT: NCHW; LiteRT: NHWC; ExecuTorch: NCHW)",
    "fused-nhwc": "clcNet-A, fused IGC custom op, NHWC activations",
}
MODEL_LABELS = {"mobilenet_v1": "MobileNet-v1 1.0", "clcnet_a": "clcNet-A (export default)",
                "clcnet_b": "clcNet-B (export default)", "shufflenet_v1_2x": "ShuffleNet 2x (g=3)"}


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
    rounds: dict[tuple[str, int, int], list[float]] = field(default_factory=dict)


def build_entries(models: list[str], variants: list[str]) -> list[Entry]:
    entries = [Entry(MODEL_LABELS.get(m, m), m, "standard") for m in models]
    if "clcnet_a" in models:
        entries += [Entry(CLCNET_A_VARIANTS[v], "clcnet_a", v) for v in variants]
    return entries


@contextlib.contextmanager
def exported(entries: list[Entry], runtimes: list[str], size: int, keep: Path | None) -> Iterator[Path]:
    """export_all into `keep`, or into a temporary folder removed afterwards; yields the folder."""
    with tempfile.TemporaryDirectory(prefix="clc_bench_") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        export_all(entries, runtimes, size, folder)
        yield folder


def artifact_format(runtime: str) -> str:
    return "pte" if runtime == NATIVE else runtime


def export_all(entries: list[Entry], runtimes: list[str], size: int, folder: Path) -> None:
    """Export every entry to every runtime's format and record its max abs diff to eager PyTorch."""
    runtimes = list(dict.fromkeys(artifact_format(r) for r in runtimes))
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32))
    for i, entry in enumerate(entries):
        model = clcdeploy.create_model(entry.model)
        random_weights(model, input_size=size)  # uncalibrated BN: ShuffleNet 2x logits ~1e6
        with torch.no_grad():
            expected = model(x).numpy()
        start = time.perf_counter()
        deploys: dict[str, torch.nn.Module] = {}
        for fmt in runtimes:
            if entry.variant in CUSTOM_OP and (fmt, entry.variant) not in CUSTOM_OP_FORMATS:
                continue
            # "standard" = what `clcdeploy export` writes: each format's own default IGC lowering
            key = DEFAULT_IGC_LOWERINGS[fmt] if entry.variant == "standard" else entry.variant
            if key not in deploys:
                with torch.no_grad(), quiet_output():
                    deploys[key] = deploy_variant(model, x, key)
            deploy = deploys[key]
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
            # Every session has its own worker threads, which by default go on spinning after a run: with all
            # models loaded and interleaved they took the cores from the next session (2 threads ran slower than
            # 1). Spinning within a run stays on, as in an app running one model.
            options.add_session_config_entry("session.force_spinning_stop", "1")
            prepare_onnx(options, path)
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

            interp = Interpreter(model_path=str(path), num_threads=threads,
                                 experimental_delegates=litert_delegates(path, threads))
            interp.allocate_tensors()
            index = interp.get_input_details()[0]["index"]
            interp.set_tensor(index, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
            self.run = interp.invoke

    def __call__(self) -> None:
        self.run()


def set_executorch_threads(threads: int) -> None:
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(threads)


def time_native(entries: list[Entry], n: int, runs: int, warmup: int, round_: int, planned_offset: int = 0,
                block: int = 1) -> None:
    """`runs` pte_runner passes per entry, all models in one pte_runner process, in turn `block` passes at a
    time, loaded and run in a new order every round and turn (the same interleaving as the in-process runtimes).
    `planned_offset` > 0 places the planned memory that many bytes past a cache line, as ExecuTorch's Module
    API (and its Python runtime) does with 16."""
    from clcdeploy.bench.parsers import parse_pte_runner_models
    from clcdeploy.device.native import build_pte_runner

    runner = str(build_pte_runner("host", log=lambda _: None))
    native = [e for e in entries if "pte" in e.paths]
    load_order = np.random.default_rng(round_).permutation(len(native))  # as the in-process runtimes (time_all)
    models = [arg for k in load_order for arg in ("--model_path", str(native[k].paths["pte"]))]
    flags = [f"--cpu_threads={n}", f"--num_executions={runs}", f"--warmup={warmup}",
             f"--planned_offset={planned_offset}", f"--block={block}", f"--order_seed={round_ + 1}"]  # 0 = fixed
    done = subprocess.run([runner, *models, *flags], capture_output=True, text=True, check=True)
    results = parse_pte_runner_models(done.stdout)
    for entry in native:
        times = results[str(entry.paths["pte"]) if len(native) > 1 else ""].times_ms  # one model: no header
        entry.times.setdefault((NATIVE, n), []).extend(times)
        entry.rounds.setdefault((NATIVE, n, round_), []).extend(times)


def time_all(entries: list[Entry], runtimes: list[str], threads: list[int], runs: int, warmup: int,
             size: int, repeat: int = 1, planned_offset: int = 0, block: int = 1) -> None:
    """Median-ready timings: for each runtime and thread count, all models loaded in a random order every round
    and interleaved in a random order every pass, `block` runs at a time (1: run by run, each run starting with
    the caches the other models left; larger: the model's own caches, as when an app runs one model repeatedly).

    With `repeat` > 1 the whole sweep is repeated (rounds interleave runtimes and thread counts too), so the
    spread of the per-round ratios shows how much the machine's load moved them.
    """
    x = np.random.default_rng(1).standard_normal((1, 3, size, size), dtype=np.float32)
    for round_ in range(repeat):
        for fmt in runtimes:
            for n in threads:
                if fmt == NATIVE:
                    time_native(entries, n, runs, warmup, round_, planned_offset, block)
                    continue
                if fmt == "pte":
                    set_executorch_threads(n)
                shuffle = np.random.default_rng(round_)
                # loaded in a new order every round too: where a model's buffers land moves its time (the
                # model loaded right after MobileNet-v1 ran 2-4% slower than an identical copy loaded later)
                present = [e for e in entries if fmt in e.paths]
                live = [(present[k], Session(fmt, present[k].paths[fmt], n, x))
                        for k in shuffle.permutation(len(present))]
                for _ in range(warmup):
                    for _, session in live:
                        session()
                for done in range(0, runs, block):
                    # a fresh model order every pass: no model always runs right after the same (e.g. the
                    # cache-evicting baseline), which biased the fixed order by up to 4% on this host
                    for k in shuffle.permutation(len(live)):
                        entry, session = live[k]
                        for _ in range(min(block, runs - done)):
                            start = time.perf_counter()
                            session()
                            elapsed = (time.perf_counter() - start) * 1e3
                            entry.times.setdefault((fmt, n), []).append(elapsed)
                            entry.rounds.setdefault((fmt, n, round_), []).append(elapsed)
                del live


def profile_onnx(path: Path, x: np.ndarray, runs: int, folder: Path) -> dict[str, tuple[float, int]]:
    """ONNX Runtime session profile at 1 thread: op type -> (ms per inference, nodes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / f"ort_{path.stem}")
    prepare_onnx(options, path)
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(runs):
        sess.run(None, feed)
    events = json.loads(Path(sess.end_profiling()).read_text())
    total, nodes = collections.Counter(), collections.defaultdict(set)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            total[op] += event["dur"] / 1e3 / runs
            nodes[op].add(event["name"])
    return {op: (ms, len(nodes[op])) for op, ms in total.most_common()}


def profile_executorch(path: Path, x: np.ndarray, runs: int, folder: Path) -> dict[str, tuple[float, int]]:
    """ExecuTorch ETDump at 1 thread: XNNPACK operator type (and non-delegated op) -> (ms, calls), plus the time
    of the delegate calls outside their operators (ExecuTorch's XNNPACK executor reshapes and sets up the whole
    XNNPACK runtime on every call, at a cost that grows with the operator count)."""
    from executorch.extension.pybindings import portable_lib

    from clcdeploy.bench.operator_profile import operator_times
    from clcdeploy.kernels.runtime import prepare_pte

    prepare_pte(path)
    portable_lib._unsafe_reset_threadpool(1)
    module = portable_lib._load_for_executorch(str(path), enable_etdump=True, debug_buffer_size=0)
    tensor = torch.from_numpy(x)
    for _ in range(runs):
        module.forward((tensor,))
    dump = folder / f"{path.stem}.etdp"
    module.write_etdump_result_to_file(str(dump))
    return operator_times(dump, skip=5)  # the first passes warm up


def profile_litert(path: Path, x: np.ndarray, runs: int, folder: Path) -> dict[str, tuple[float, int]]:
    """LiteRT profiler at 1 thread: XNNPACK operator type (and non-delegated op) -> (ms, nodes), plus the time
    of each invoke outside its operators."""
    from clcdeploy.bench.litert_profile import profile_tflite

    return profile_tflite(path, x, runs=runs, threads=1)


def profiles_markdown(entries: list[Entry], wanted: list[str], runtimes: list[str], size: int) -> str:
    """Per-op tables for the `model/variant` entries in `wanted` (1 thread)."""
    x = np.random.default_rng(1).standard_normal((1, 3, size, size), dtype=np.float32)
    chosen = [e for e in entries if f"{e.model}/{e.variant}" in wanted]
    lines = ["Per-op profiles, 1 thread, ms per inference summed over the nodes of each operator type "
             "(nodes or calls in parentheses):", ""]
    with tempfile.TemporaryDirectory(prefix="clc_prof_") as tmp:
        for fmt, fn in (("onnx", profile_onnx), ("pte", profile_executorch), ("tflite", profile_litert)):
            if fmt not in runtimes:
                continue
            if fmt == "pte":
                set_executorch_threads(1)
            # LiteRT's CompiledModel has no clcdeploy delegate, so no profile of fused-IGC .tflite files.
            tables = {e.label: fn(e.paths[fmt], x, 30, Path(tmp)) for e in chosen
                      if fmt in e.paths and not (fmt == "tflite" and (fmt, e.variant) in CUSTOM_OP_FORMATS)}
            ops = sorted({op for t in tables.values() for op in t},
                         key=lambda op: -max(t.get(op, (0, 0))[0] for t in tables.values()))
            lines += [f"**{RUNTIME_LABELS[fmt]}**", "", "| operator | " + " | ".join(tables) + " |",
                      "| --- |" + " --- |" * len(tables)]
            for op in ops:
                cells = [f"{t[op][0]:.2f} ({t[op][1]})" if op in t else "-" for t in tables.values()]
                lines.append(f"| {op} | " + " | ".join(cells) + " |")
            lines.append("| **sum** | " + " | ".join(f"**{sum(v[0] for v in t.values()):.2f}**"
                                                    for t in tables.values()) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def markdown(entries: list[Entry], runtimes: list[str], threads: list[int], command: str, runs: int,
             block: int = 1, size: int = 224) -> str:
    base = next((e for e in entries if e.model == BASELINE and e.variant == "standard"), None)
    rounds = 1 + max((k[2] for e in entries for k in e.rounds), default=0)
    lines = [f"Command: `{command}`", "",
             f"Median of {runs * rounds} runs ({rounds} round(s) of {runs}) after warm-up, 1x3x{size}x{size}, "
             f"models interleaved in one process {'run by run' if block == 1 else f'{block} runs at a time'}, "
             "loaded in a new random order every round and run in a new one every turn; "
             f"ratio = latency / MobileNet-v1 on the same runtime and thread count.", ""]
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
    repeat = 1 + max((k[2] for e in entries for k in e.rounds), default=0)
    if repeat > 1 and base is not None:
        lines += [f"Spread of the ratio to MobileNet-v1 over the {repeat} rounds (min-max of the per-round "
                  f"medians):", "",
                  "| model / formulation | " + " | ".join(f"{RUNTIME_LABELS[f]}, {n} thr" for n in threads
                                                         for f in runtimes) + " |",
                  "| --- |" + " --- |" * (len(runtimes) * len(threads))]
        for entry in entries:
            cells = []
            for n in threads:
                for fmt in runtimes:
                    ratios = [statistics.median(entry.rounds[(fmt, n, r)])
                              / statistics.median(base.rounds[(fmt, n, r)])
                              for r in range(repeat) if (fmt, n, r) in entry.rounds and (fmt, n, r) in base.rounds]
                    cells.append(f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "n/a")
            lines.append(f"| {entry.label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Max abs diff to eager PyTorch (floors are not the IGC, so their difference is meaningless) and "
              "ExecuTorch delegate partitions:", "",
              "| model / formulation | " + " | ".join(runtimes) + " | XNNPACK partitions (.pte) |",
              "| --- |" + " --- |" * (len(runtimes) + 1)]
    for entry in entries:
        diffs = [("(timing only)" if entry.variant in TIMING_ONLY else f"{entry.diffs[artifact_format(f)]:.1e}")
                 if artifact_format(f) in entry.diffs else "n/a" for f in runtimes]
        lines.append(f"| {entry.label} | " + " | ".join(diffs) + f" | {entry.partitions or 'n/a'} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mobilenet_v1,clcnet_a,clcnet_b,shufflenet_v1_2x")
    parser.add_argument("--variants", default=",".join(CLCNET_A_VARIANTS),
                        help="clcNet-A formulations besides the export default (empty for none)")
    parser.add_argument("--runtimes", default="onnx,pte,tflite")
    parser.add_argument("--threads", default="1,all", help="comma list; 'all' = os.cpu_count()")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1, help="repeat the whole timing sweep (report the spread)")
    parser.add_argument("--block", type=int, default=1, help="runs per model per turn (1: run by run; e.g. 10: "
                        "each model mostly on its own warm caches)")
    parser.add_argument("--planned-offset", type=int, default=0, choices=range(64), metavar="BYTES",
                        help="pte-native: planned memory this many bytes past a cache line (16 = like the Python "
                             "runtime)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--keep", type=Path, default=None, help="keep the artifacts in this folder")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--profile", default="", help="comma list of model/variant entries to profile per op "
                        "at 1 thread (e.g. clcnet_a/standard,clcnet_a/floor2,mobilenet_v1/standard)")
    return parser.parse_args(argv)


usage_error = functools.partial(print_usage_error, "bench_runtimes")  # one line on stderr, exit code 2


def parse_threads(text: str) -> list[int]:
    """'1,all' -> [1, os.cpu_count()]; raises ValueError on anything but positive integers and 'all'."""
    counts = {(os.cpu_count() or 1) if t == "all" else int(t) for t in text.split(",") if t}
    if not counts or min(counts) < 1:
        raise ValueError(text)
    return sorted(counts)


def input_size_problem(name: str, size: int) -> str | None:
    """None if zoo model `name` takes a `size` x `size` input (`clcdeploy.analysis.input_size`), else a one-line
    message for `--size`: for a size too small, the smallest size above it that works; raises UnknownModelError
    for a name not in the zoo."""
    from clcdeploy.analysis.input_size import MAX_INPUT_SIZE, check_input_size
    from clcdeploy.errors import ConfigurationError, first_line

    model = clcdeploy.create_model(name).eval()

    def problem(candidate: int) -> str | None:
        try:
            check_input_size(model, name, candidate)
        except ConfigurationError as exc:
            return first_line(exc).replace("--input-size", "--size")
        return None

    found = problem(size)
    if found is None or "too small" not in found:
        return found and f"--size {size}: {found}"
    # a size between two that work may not fit (a block's paths round differently), so scan up, not bisect
    smallest = next((s for s in range(max(size, 0) + 1, MAX_INPUT_SIZE + 1) if problem(s) is None), None)
    if smallest is None:
        return f"--size {size} is too small for {name}, and no size up to {MAX_INPUT_SIZE} works"
    return f"--size {size} is too small for {name}: the smallest input size it takes is {smallest}"


def check_known(*checks: tuple[str, list[str], Iterable[str]]) -> None:
    """Raise ValueError naming, for the first (what, given, allowed) check that fails, the unknown names and the
    allowed ones."""
    for what, given, allowed in checks:
        unknown = [g for g in dict.fromkeys(given) if g not in allowed]
        if unknown:
            raise ValueError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")


def publish(text: str, markdown_path: Path | None) -> None:
    """Print the tables, and write them atomically to --markdown if given."""
    print(text)
    if markdown_path:
        write_atomic(markdown_path, text)


def command_line(argv: list[str] | None) -> str:
    """How this script was run, for the table's header."""
    return "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])


def check_choices(models: list[str], variants: list[str], runtimes: list[str], profile: list[str]) -> None:
    """Raise ValueError naming the first bad name and the allowed ones."""
    profile_models = [p.partition("/")[0] for p in profile]
    check_known(("model", models + profile_models, clcdeploy.list_models()), ("variant", variants, CLCNET_A_VARIANTS),
                ("runtime", runtimes, RUNTIME_LABELS))
    for entry in profile:
        model, _, variant = entry.partition("/")
        benchmarked = model in models and (variant == "standard" or (model == "clcnet_a" and variant in variants))
        if not benchmarked:
            raise ValueError(f"--profile entry {entry!r} is not among the benchmarked entries; use MODEL/standard "
                             "for a model in --models or clcnet_a/VARIANT for a variant in --variants")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    runtimes = [r for r in args.runtimes.split(",") if r]
    wanted = [p for p in args.profile.split(",") if p]
    try:
        threads = parse_threads(args.threads)
    except ValueError:
        return usage_error(f"--threads {args.threads!r}: give a comma list of positive integers or 'all' (e.g. 1,all)")
    try:
        check_choices(models, variants, runtimes, wanted)
    except ValueError as exc:
        return usage_error(str(exc))
    if args.block < 1 or args.runs < 1 or args.repeat < 1 or args.warmup < 0 or args.size < 32:
        return usage_error("--runs, --block and --repeat must be at least 1, --warmup at least 0, --size at least 32")
    entries = build_entries(models, variants)
    with exported(entries, runtimes, args.size, args.keep):
        time_all(entries, runtimes, threads, args.runs, args.warmup, args.size, args.repeat, args.planned_offset,
                 args.block)
        profiles = profiles_markdown(entries, wanted, runtimes, args.size) if wanted else ""
    text = markdown(entries, runtimes, threads, command_line(argv), args.runs, args.block, args.size)
    text += "\n" + profiles if profiles else ""
    publish(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
