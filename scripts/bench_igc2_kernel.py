#!/usr/bin/env python
"""Micro-benchmark of the fused IGC kernel on a zoo model's IGC layers (one thread).

Finds the shapes of every IGC the kernel fuses (channel receptive field 2) by running the model once,
compiles `scripts/igc2_kernel_bench.cpp` with the kernel's C++ core, and prints per layer the best time of the
NHWC path on cache-line aligned tensors next to, alternated pass by pass in one process, either the NHWC path
on tensors `--offset` bytes past a cache line (ExecuTorch's Module API and its Python runtime allocate planned
memory 16 bytes past one) or, with `--compare nchw`, the NCHW path (ONNX Runtime's binding).

    .venv/bin/python scripts/bench_igc2_kernel.py [--model clcnet_a] [--size 224] [--offset 16] [--rounds 60]
        [--compare offset|nchw]
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from clcdeploy.errors import print_usage_error
from clcdeploy.kernels.build import CSRC
from clcdeploy.kernels.fuse import fusable
from clcdeploy.zoo import create_model, list_models

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runtimes import input_size_problem  # noqa: E402

DRIVER = Path(__file__).with_name("igc2_kernel_bench.cpp")


def igc_shapes(model_name: str, size: int) -> list[tuple[int, int, int]]:
    """(channels, input height, stride) of each fusable IGC, in forward order (square inputs)."""
    model = create_model(model_name).eval()
    shapes: list[tuple[int, int, int]] = []
    hooks = [m.register_forward_pre_hook(lambda m, args: shapes.append(
        (args[0].shape[1], args[0].shape[2], m.conv.stride[0]))) for m in model.modules() if fusable(m)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return shapes


usage_error = functools.partial(print_usage_error, "bench_igc2_kernel")  # one line on stderr, exit code 2


def compile_problem(compiler: str, march: str, stderr: str) -> str:
    """A one-line account of a failed compile, naming the -march value when the compiler rejected it."""
    errors = [line.strip() for line in stderr.splitlines() if "error:" in line]
    first = errors[0].split("error:", 1)[-1].strip() if errors else "no error message"
    if "march" in first:
        return f"{compiler} rejected -march={march} ({first}); pass a value it knows, e.g. native or x86-64-v3"
    return f"{compiler} could not compile {DRIVER.name}: {first}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="clcnet_a")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--offset", type=int, default=16, help="bytes past a cache line (multiple of 4, < 64)")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--compare", choices=("offset", "nchw"), default="offset",
                        help="second column: NHWC at --offset bytes, or the NCHW path")
    parser.add_argument("--compiler", default="g++")
    parser.add_argument("--march", default="native", help="-march value (e.g. x86-64-v3 for AVX2 only)")
    args = parser.parse_args(argv)
    if args.offset % 4 or not 0 <= args.offset < 64:
        return usage_error("--offset must be a multiple of 4 in [0, 64)")
    if args.rounds < 1:
        return usage_error("--rounds must be at least 1")
    if args.model not in list_models():
        return usage_error(f"unknown model {args.model!r}: run `clcdeploy models` for the list")
    if shutil.which(args.compiler) is None:
        return usage_error(f"{args.compiler} not found: apt-get install g++, or pass --compiler")
    problem = input_size_problem(args.model, args.size)
    if problem:
        return usage_error(problem)
    shapes = igc_shapes(args.model, args.size)
    if not shapes:
        return usage_error(f"{args.model} has no IGC with channel receptive field 2")

    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "igc2_kernel_bench"
        built = subprocess.run([args.compiler, "-std=c++17", "-O3", "-fno-math-errno", f"-march={args.march}",
                                f"-I{CSRC}", str(DRIVER), str(CSRC / "igc2_core.cpp"), "-o", str(binary)],
                               capture_output=True, text=True)
        if built.returncode:
            return usage_error(compile_problem(args.compiler, args.march, built.stderr))
        env = {"IGC2_BENCH_ROUNDS": str(args.rounds), "IGC2_BENCH_OFFSET": str(args.offset),
               "IGC2_BENCH_COMPARE": args.compare}
        out = subprocess.run([str(binary), *[str(v) for shape in shapes for v in shape]], env=env,
                             capture_output=True, text=True, check=True).stdout

    print(f"{args.model} at {args.size}x{args.size}, -march={args.march}, best of {args.rounds} per layer, 1 thread\n")
    other = f"+{args.offset} B ms" if args.compare == "offset" else "NCHW ms"
    print(f"| layer | C | input | stride | MMACs | NHWC aligned ms | GMAC/s | {other} | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    totals = [0.0, 0.0, 0.0]
    for layer, line in enumerate(out.split("\n")[:len(shapes)], 1):
        c, h, s, aligned, offset = line.split()
        out_hw = (int(h) - 1) // int(s) + 1
        mmacs = 18 * int(c) * out_hw * out_hw / 1e6
        aligned_ms, offset_ms = float(aligned), float(offset)
        totals = [totals[0] + mmacs, totals[1] + aligned_ms, totals[2] + offset_ms]
        print(f"| {layer} | {c} | {h}x{h} | {s} | {mmacs:.1f} | {aligned_ms:.3f} | {mmacs / aligned_ms:.1f} | "
              f"{offset_ms:.3f} | {offset_ms / aligned_ms:.2f}x |")
    print(f"| all | | | | {totals[0]:.1f} | {totals[1]:.3f} | {totals[0] / totals[1]:.1f} | {totals[2]:.3f} | "
          f"{totals[2] / totals[1]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
