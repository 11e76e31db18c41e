#!/usr/bin/env python
"""Zoo layers that `clcdeploy export` rewrites for speed, timed in both forms side by side:

- `--kind topological`: SIC models F, G, I (seed 003). Each topologically subdivided convolution as one dense
  convolution (the export default) or as written, a channel gather plus a grouped convolution with one output
  per group (`--topological gather`).
- `--kind handwritten-igc`: sparse-kernel nets (seed 004) that write clcNet's IGC as a grouped convolution with
  2 channels per group and a channel shuffle: lowered like an IGC (the export default) or as written.
- `--kind small-groups`: sparse-kernel nets (seed 004) whose pw-gconv-pw blocks have 3x3 grouped convolutions
  with 2-4 channels per group, and clcNet-Ap: as depthwise convolutions (the export default) or as written.
- `--kind merged-groups`: grouped convolutions with fewer than 8 outputs per group (seed 004's
  `sk_t4_pwgconv100_dw_pwgconv2_w700` and others) with their groups merged into block-diagonal ones (the `.pte`
  and `.tflite` export default) or as written (the `.onnx` default).
- `--kind channelwise`: ChannelNets (seed 002). Channel-wise convolutions and the convolutional classifier
  with the pixels as the channels of a depthwise convolution, or as written, one-channel convolutions over the
  (channels, pixels) plane (the export picks per format).

Per runtime, every artifact is loaded in one process and timed pass by pass in a new random order every pass;
each round gives the ratio of the first form to the second.

    .venv/bin/python scripts/bench_layer_lowerings.py
        --kind topological|channelwise|handwritten-igc|small-groups|merged-groups
        [--models a,b] [--runtimes onnx,pte,tflite] [--runs 10] [--warmup 2] [--repeat 2] [--threads 1] [--size N]
        [--out FILE.md]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runtimes import (FORMAT_MODULES, RUNTIME_LABELS, Session, input_size_problem,  # noqa: E402
                            set_executorch_threads)

import clcdeploy  # noqa: E402
from clcdeploy.analysis.cost import count_costs  # noqa: E402
from clcdeploy.errors import ClcDeployError, print_usage_error  # noqa: E402
from clcdeploy.export.passes import deployment_passes, densify_topological  # noqa: E402
from clcdeploy.export.passes.lower_grouped import is_small_group_conv  # noqa: E402
from clcdeploy.export.passes.merge_groups import is_mergeable_conv, merge_small_groups  # noqa: E402
from clcdeploy.export.quiet import quiet_output  # noqa: E402
from clcdeploy.export.weights import random_weights  # noqa: E402
from clcdeploy.files import write_atomic  # noqa: E402
from clcdeploy.units import millions  # noqa: E402
from clcdeploy.zoo import model_spec  # noqa: E402
from clcdeploy.zoo.channelnet import ChannelWiseConv, ConvClassifier  # noqa: E402
from clcdeploy.zoo.layers import ChannelShuffle  # noqa: E402
from clcdeploy.zoo.sic import TopologicalConv  # noqa: E402


@dataclass(frozen=True)
class Kind:
    option: str  # the deployment_passes keyword, or with `at_export` the format exports' flag (on for forms[0])
    forms: tuple[str, str]  # (rewritten, as written)
    has_layer: Callable[[nn.Module], bool]  # whether a module is a layer this kind rewrites
    description: str
    models: str
    computed: Callable[[nn.Module], nn.Module] = lambda model: model  # the model as forms[0] computes it
    at_export: bool = False


KINDS = {
    "topological": Kind("topological", ("dense", "gather"), lambda m: isinstance(m, TopologicalConv),
                        "topologically subdivided convolution", "sic_f,sic_g,sic_i", densify_topological),
    "channelwise": Kind("channelwise", ("pixels", "plane"),
                        lambda m: isinstance(m, (ChannelWiseConv, ConvClassifier)),
                        "channel-wise convolution", "channelnet_v1,channelnet_v2,channelnet_v3"),
    "handwritten-igc": Kind("handwritten_igc", ("lowered", "grouped"), lambda m: isinstance(m, ChannelShuffle),
                            "channel shuffle", "sk_t4_gconv100_pwgconv2_w200"),
    "small-groups": Kind("small_groups", ("depthwise", "grouped"), is_small_group_conv,
                         "grouped convolution with 2-4 channels per group",
                         "sk_t2_pw_gconv32_pw_w256,sk_t2_pw_gconv64_pw_w512,clcnet_ap"),
    "merged-groups": Kind("merge_groups", ("merged", "separate"), is_mergeable_conv,
                          "grouped convolution with fewer than 8 outputs per group",
                          "sk_t4_pwgconv100_dw_pwgconv2_w700,sk_t3_gconv4_pwgconv32_w128,sk_t4_gconv100_pwgconv2_w200",
                          merge_small_groups, at_export=True),
}


usage_error = functools.partial(print_usage_error, "bench_layer_lowerings")  # one line on stderr, exit code 2


def export_forms(kind: Kind, name: str, runtimes: list[str], size: int | None, folder: Path) -> dict:
    """Both forms of `name` in every runtime's format: paths, max abs diffs to eager PyTorch, mult-adds."""
    model = clcdeploy.create_model(name)
    if not any(kind.has_layer(m) for m in model.modules()):
        raise ValueError(f"{name} has no {kind.description}")
    size = size or model_spec(name).input_size
    random_weights(model, input_size=size)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32))
    with torch.no_grad():
        expected = model(x).numpy()
    result = {"size": size, "macs": {kind.forms[0]: count_costs(kind.computed(model), size).macs,
                                     kind.forms[1]: count_costs(model, size).macs},
              "paths": {}, "diffs": {}}
    deploys = {}  # an export-time option: both forms export the same rewritten module
    for form in kind.forms:
        passes_options = {} if kind.at_export else {kind.option: form}
        export_options = {kind.option: form == kind.forms[0]} if kind.at_export else {}
        key = tuple(passes_options.items())
        if key not in deploys:
            with torch.no_grad(), quiet_output():
                deploys[key] = deployment_passes(model, x, **passes_options)
        deploy = deploys[key]
        for fmt in runtimes:
            module = importlib.import_module(FORMAT_MODULES[fmt])
            path = folder / f"{name}_{form}{module.SUFFIX}"
            with torch.no_grad(), quiet_output():
                module.export(deploy, x, path, **export_options)
                got = module.run(path, x.numpy())
            result["paths"][form, fmt] = path
            result["diffs"][form, fmt] = float(np.abs(got - expected).max())
    print(f"exported {name} ({', '.join(f'{k[0]}/{k[1]} {v:.1e}' for k, v in result['diffs'].items())})",
          file=sys.stderr)
    return result


def time_forms(kind: Kind, exports: dict[str, dict], runtimes: list[str], threads: int, runs: int, warmup: int,
               repeat: int) -> dict[tuple[str, str, str, int], list[float]]:
    """Per (model, form, runtime, round), the pass times in ms; all artifacts of a runtime interleaved."""
    times: dict[tuple[str, str, str, int], list[float]] = {}
    for round_ in range(repeat):
        shuffle = np.random.default_rng(round_)
        for fmt in runtimes:
            if fmt == "pte":
                set_executorch_threads(threads)
            keys = [(name, form) for name in exports for form in kind.forms]
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


def markdown(kind: Kind, exports: dict[str, dict], times: dict, runtimes: list[str], repeat: int,
             command: str) -> str:
    new, old = kind.forms
    lines = [f"`{command}`", "",
             f"| model | mult-adds computed: {old} / {new} | runtime | {old} ms | {new} ms | {new} / {old} (rounds) "
             f"| max abs diff {old} / {new} |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, export in exports.items():
        macs, diffs = export["macs"], export["diffs"]
        for fmt in runtimes:
            rounds = [{form: statistics.median(times[name, form, fmt, r]) for form in kind.forms}
                      for r in range(repeat)]
            ratios = [medians[new] / medians[old] for medians in rounds]
            pooled = {form: statistics.median(t for r in range(repeat) for t in times[name, form, fmt, r])
                      for form in kind.forms}
            lines.append(f"| {name} | {millions(macs[old])} / {millions(macs[new])} | {RUNTIME_LABELS[fmt]} | "
                         f"{pooled[old]:.4g} | {pooled[new]:.4g} | {pooled[new] / pooled[old]:.3f} "
                         f"({min(ratios):.3f}-{max(ratios):.3f}) | {diffs[old, fmt]:.1e} / {diffs[new, fmt]:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    # the docstring up to its usage example, line breaks kept: the list of kinds is what --kind needs
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n    .venv/")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", required=True, choices=sorted(KINDS))
    parser.add_argument("--models", help="comma-separated (default: the kind's paper models)")
    parser.add_argument("--runtimes", default="onnx,pte,tflite")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, help="input resolution (default: each model's)")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    kind = KINDS[args.kind]
    models = [m for m in (args.models or kind.models).split(",") if m]
    runtimes = [r for r in args.runtimes.split(",") if r]
    if min(args.runs, args.repeat, args.threads) < 1 or args.warmup < 0:
        return usage_error("--runs, --repeat and --threads must be at least 1, --warmup at least 0")
    unknown = [r for r in runtimes if r not in FORMAT_MODULES]
    if unknown or not runtimes:
        return usage_error(f"unknown runtime {', '.join(unknown) or '(none)'}; choose from "
                           f"{', '.join(FORMAT_MODULES)}")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_layer_lowerings_") as tmp:
        try:
            problems = [input_size_problem(name, args.size) for name in models] if args.size is not None else []
            if any(problems):
                return usage_error(next(p for p in problems if p))
            exports = {name: export_forms(kind, name, runtimes, args.size, Path(tmp)) for name in models}
        except (ValueError, ClcDeployError) as exc:
            return usage_error(str(exc).splitlines()[0])
        times = time_forms(kind, exports, runtimes, args.threads, args.runs, args.warmup, args.repeat)
    command = "python scripts/bench_layer_lowerings.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table = markdown(kind, exports, times, runtimes, args.repeat, command.strip())
    print(table)
    if args.out:
        write_atomic(args.out, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
