#!/usr/bin/env python
"""The LiteRT IGC2 delegate's threads: the fused clcNet-A .tflite with the delegate at 1 thread and at the
interpreter's thread count, next to MobileNet-v1 and the standard-operator clcNet-A, all interleaved pass by
pass in one process (new random order every pass). With `--baseline-library`, the same .tflite also runs
with another build of the delegate (e.g. an older commit's), so two versions are compared side by side.

    .venv/bin/clcdeploy export mobilenet_v1 --formats tflite --out bench_models/std
    .venv/bin/clcdeploy export clcnet_a --formats tflite --out bench_models/std
    .venv/bin/clcdeploy export clcnet_a --formats tflite --fused-igc --out bench_models/fused
    .venv/bin/python scripts/bench_litert_delegate_threads.py --models-dir bench_models --threads 2 \
        [--baseline-library OLD.so] [--runs 60] [--rounds 3] [--reference mobilenet_v1] [--model clcnet_a]
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path

import numpy as np


def interpreter(path: Path, threads: int, library: str | None, delegate_threads: int):
    from ai_edge_litert.interpreter import Interpreter, load_delegate

    delegates = [load_delegate(library, {"num_threads": str(delegate_threads)})] if library else []
    loaded = Interpreter(model_path=str(path), num_threads=threads, experimental_delegates=delegates)
    loaded.allocate_tensors()
    detail = loaded.get_input_details()[0]
    loaded.set_tensor(detail["index"], np.random.default_rng(0).standard_normal(detail["shape"], np.float32))
    return loaded


def library_problem(path: str) -> str | None:
    """None if `path` is a shared library with the external-delegate entry points, else what is wrong with it.

    Checked before LiteRT sees it: `load_delegate` on a bad path raises OSError from inside its Delegate's
    constructor, whose `__del__` then fails too (AttributeError, no `_library`)."""
    if not Path(path).is_file():
        return f"--baseline-library {path}: no such file; pass a built libclcdeploy_igc_litert_delegate.so"
    try:
        library = ctypes.CDLL(str(Path(path).resolve()))
    except OSError as exc:
        return f"--baseline-library {path} cannot be loaded ({str(exc).splitlines()[0]})"
    missing = [name for name in ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")
               if not hasattr(library, name)]
    if missing:
        return f"--baseline-library {path} is not a LiteRT external delegate (no {', '.join(missing)})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, required=True, help="holds std/ and fused/ exports")
    parser.add_argument("--reference", default="mobilenet_v1", help="the model ratios are taken to (std/ only)")
    parser.add_argument("--model", default="clcnet_a", help="the clcNet exported to std/ and fused/")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline-library", help="another build of libclcdeploy_igc_litert_delegate.so")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    std, fused = args.models_dir / "std", args.models_dir / "fused" / args.model / f"{args.model}.tflite"
    reference, standard = (std / name / f"{name}.tflite" for name in (args.reference, args.model))
    missing = [str(path) for path in (reference, standard, fused) if not path.is_file()]
    problem = None
    if args.threads < 1 or args.runs < 1 or args.rounds < 1 or args.warmup < 0:
        problem = "--threads, --runs and --rounds must be at least 1, --warmup not negative"
    elif missing:
        problem = f"no {', '.join(missing)}: export them as the docstring shows"
    elif args.baseline_library:
        problem = library_problem(args.baseline_library)
    if problem:
        print(f"bench_litert_delegate_threads: error: {problem}", file=sys.stderr)
        return 2

    from clcdeploy.kernels.build import build_litert_kernels

    library, t = str(build_litert_kernels()), args.threads
    programs = {
        args.reference: (reference, None, 0),
        f"{args.model}, standard operators": (standard, None, 0),
        f"{args.model} fused, delegate 1 thread": (fused, library, 1),
        f"{args.model} fused, delegate {t} threads": (fused, library, t),
    }
    if args.baseline_library:
        programs[f"{args.model} fused, baseline delegate 1 thread"] = (fused, args.baseline_library, 1)
        programs[f"{args.model} fused, baseline delegate {t} threads"] = (fused, args.baseline_library, t)
    try:
        loaded = {name: interpreter(path, t, lib, d) for name, (path, lib, d) in programs.items()}
    except ValueError as exc:  # a .tflite LiteRT cannot read, or a delegate that refused its options
        message = " ".join(str(exc).split())
        print(f"bench_litert_delegate_threads: error: {message}", file=sys.stderr)
        return 2
    names, rng = list(loaded), np.random.default_rng(1)
    medians: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        times: dict[str, list[float]] = {name: [] for name in names}
        for index in range(args.warmup + args.runs):
            for name in rng.permutation(names):
                start = time.perf_counter()
                loaded[name].invoke()
                if index >= args.warmup:
                    times[name].append((time.perf_counter() - start) * 1e3)
        for name in names:
            medians[name].append(float(np.median(times[name])))
    print(f"LiteRT XNNPACK, interpreter at {t} thread(s); per round: median of {args.runs} passes, ratio to "
          f"{args.reference} in that round\n")
    print("| program | " + " | ".join(f"round {i + 1}" for i in range(args.rounds)) + " |")
    print("| --- |" + " --- |" * args.rounds)
    base = medians[args.reference]
    for name in names:
        print(f"| {name} | " + " | ".join(f"{ms:.2f} ms = {ms / b:.2f}x" for ms, b in zip(medians[name], base))
              + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
