#!/usr/bin/env python
"""SIC models with topologically subdivided convolutions (F, G, I; seed 003), exported both ways: each such
layer as one dense convolution (`clcdeploy export`'s default) and as written, a channel gather plus a grouped
convolution with one output per group (`--topological gather`). Per runtime, every artifact is loaded in one
process and timed pass by pass in a new random order every pass; each round reports dense / gather.

    .venv/bin/python scripts/bench_topological.py [--models sic_f,sic_g,sic_i] [--runtimes onnx,pte,tflite]
        [--runs 10] [--warmup 2] [--repeat 2] [--threads 1] [--size N] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runtimes import FORMAT_MODULES, RUNTIME_LABELS, Session, set_executorch_threads  # noqa: E402

import clcdeploy  # noqa: E402
from clcdeploy.errors import ClcDeployError  # noqa: E402
from clcdeploy.analysis.cost import count_costs  # noqa: E402
from clcdeploy.export.passes import TOPOLOGICAL_LOWERINGS, deployment_passes, densify_topological  # noqa: E402
from clcdeploy.export.quiet import quiet_output  # noqa: E402
from clcdeploy.export.weights import random_weights  # noqa: E402
from clcdeploy.files import write_atomic  # noqa: E402
from clcdeploy.units import millions  # noqa: E402
from clcdeploy.zoo import model_spec  # noqa: E402
from clcdeploy.zoo.sic import TopologicalConv  # noqa: E402

FORMS = TOPOLOGICAL_LOWERINGS  # ("dense", "gather")


def usage_error(message: str) -> int:
    print(f"bench_topological: error: {message}", file=sys.stderr)
    return 2


def export_forms(name: str, runtimes: list[str], size: int | None, folder: Path) -> dict:
    """Both forms of `name` in every runtime's format: paths, max abs diffs to eager PyTorch, mult-adds."""
    model = clcdeploy.create_model(name)
    if not any(isinstance(m, TopologicalConv) for m in model.modules()):
        raise ValueError(f"{name} has no topologically subdivided convolution")
    size = size or model_spec(name).input_size
    random_weights(model, input_size=size)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32))
    with torch.no_grad():
        expected = model(x).numpy()
    result = {"size": size, "macs": {"gather": count_costs(model, size).macs,
                                     "dense": count_costs(densify_topological(model), size).macs},
              "paths": {}, "diffs": {}}
    for form in FORMS:
        with torch.no_grad(), quiet_output():
            deploy = deployment_passes(model, x, topological=form)
        for fmt in runtimes:
            module = importlib.import_module(FORMAT_MODULES[fmt])
            path = folder / f"{name}_{form}{module.SUFFIX}"
            with torch.no_grad(), quiet_output():
                module.export(deploy, x, path)
                got = module.run(path, x.numpy())
            result["paths"][form, fmt] = path
            result["diffs"][form, fmt] = float(np.abs(got - expected).max())
    print(f"exported {name} ({', '.join(f'{k[0]}/{k[1]} {v:.1e}' for k, v in result['diffs'].items())})",
          file=sys.stderr)
    return result


def time_forms(exports: dict[str, dict], runtimes: list[str], threads: int, runs: int, warmup: int,
               repeat: int) -> dict[tuple[str, str, str, int], list[float]]:
    """Per (model, form, runtime, round), the pass times in ms; all artifacts of a runtime interleaved."""
    times: dict[tuple[str, str, str, int], list[float]] = {}
    for round_ in range(repeat):
        shuffle = np.random.default_rng(round_)
        for fmt in runtimes:
            if fmt == "pte":
                set_executorch_threads(threads)
            keys = [(name, form) for name in exports for form in FORMS]
            live = [(key, Session(fmt, exports[key[0]]["paths"][key[1], fmt], threads,
                                  np.random.default_rng(1).standard_normal(
                                      (1, 3, exports[key[0]]["size"], exports[key[0]]["size"]), dtype=np.float32)))
                    for key in (keys[k] for k in shuffle.permutation(len(keys)))]
            for _ in range(warmup):
                for _, session in live:
                    session()
            for _ in range(runs):
                for k in shuffle.permutation(len(live)):
                    (name, form), session = live[k]
                    start = time.perf_counter()
                    session()
                    times.setdefault((name, form, fmt, round_), []).append((time.perf_counter() - start) * 1e3)
            del live
    return times


def markdown(exports: dict[str, dict], times: dict, runtimes: list[str], repeat: int, command: str) -> str:
    lines = [f"`{command}`", "",
             "| model | mult-adds: model (gather) / computed dense | runtime | gather ms | dense ms | dense / gather "
             "(rounds) | max abs diff gather / dense |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, export in exports.items():
        macs = export["macs"]
        for fmt in runtimes:
            medians = {form: [statistics.median(times[name, form, fmt, r]) for r in range(repeat)] for form in FORMS}
            ratios = [d / g for d, g in zip(medians["dense"], medians["gather"])]
            pooled = {form: statistics.median(t for r in range(repeat) for t in times[name, form, fmt, r])
                      for form in FORMS}
            lines.append(f"| {name} | {millions(macs['gather'])} / {millions(macs['dense'])} | "
                         f"{RUNTIME_LABELS[fmt]} | {pooled['gather']:.4g} | {pooled['dense']:.4g} | "
                         f"{pooled['dense'] / pooled['gather']:.3f} ({min(ratios):.3f}-{max(ratios):.3f}) | "
                         f"{export['diffs']['gather', fmt]:.1e} / {export['diffs']['dense', fmt]:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="sic_f,sic_g,sic_i")
    parser.add_argument("--runtimes", default="onnx,pte,tflite")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, help="input resolution (default: each model's)")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    runtimes = [r for r in args.runtimes.split(",") if r]
    if min(args.runs, args.repeat, args.threads) < 1 or args.warmup < 0:
        return usage_error("--runs, --repeat and --threads must be at least 1, --warmup at least 0")
    unknown = [r for r in runtimes if r not in FORMAT_MODULES]
    if unknown or not runtimes:
        return usage_error(f"unknown runtime {', '.join(unknown) or '(none)'}; choose from "
                           f"{', '.join(FORMAT_MODULES)}")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_topological_") as tmp:
        try:
            exports = {name: export_forms(name, runtimes, args.size, Path(tmp)) for name in models}
        except (ValueError, ClcDeployError) as exc:
            return usage_error(str(exc).splitlines()[0])
        times = time_forms(exports, runtimes, args.threads, args.runs, args.warmup, args.repeat)
    command = "python scripts/bench_topological.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table = markdown(exports, times, runtimes, args.repeat, command.strip())
    print(table)
    if args.out:
        write_atomic(args.out, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
